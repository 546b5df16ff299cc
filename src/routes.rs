//! The route table the build compiled, and the lookups that pick a route.
//!
//! The table is data, not code: the build (`scripts/build.mjs`, which runs
//! the table compiler of `src/route_table/` as WASI) turns `routes.toml`
//! into `table.bin`, and the entry copies those bytes into this module's
//! buffer once per isolate and calls `load`. `route_table/layout.rs` has
//! the format: one string pool, each route a record of 3-byte references
//! into it. [`Route`]'s fields are read out of it. One committed planner
//! thus serves every table; nothing is read from KV, the environment or a
//! request to add a route, so the worker can only ever contact the
//! upstreams and realms listed there (and the targets of their redirects).
//! Native builds (tests, fuzzing) start with the table `build.rs` compiled
//! from `routes.toml` (or `$ROUTES`), and a test thread can [`install`]
//! another.
//!
//! A request finds its route one of three ways:
//! - containerd's `?ns=<registry>` (and the mirror's own `/token/<registry>`)
//!   name a route by its `registry`, among every route of the table;
//! - a path `/v2/<prefix>/<name>/...` on a host a prefixed route serves, or
//!   on a host no route names (the `workers.dev` address a first deploy
//!   lands on), where every prefix of the table applies;
//! - otherwise the host: its route without a prefix, or the only route it
//!   has, or else the table's default route.

#[path = "route_table/layout.rs"]
#[allow(dead_code)]
mod layout;

pub use layout::MAX as TABLE_MAX;

/// A reference into the table: an offset (two bytes, little endian) and a
/// length (one byte), into the pool for a string or into the hosts, allow
/// or fallback entries for a list; length 0 is "not set".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Str([u8; 3]);

/// Not set.
const NONE: Str = Str([0; 3]);

impl Str {
    fn span(self) -> (usize, usize) {
        let Str([lo, hi, len]) = self;
        let at = usize::from(u16::from_le_bytes([lo, hi]));
        (at, at + usize::from(len))
    }

    /// The string; "" when not set.
    pub fn get(self) -> &'static str {
        let (a, b) = self.span();
        match table().pool.get(a..b) {
            // SAFETY: [`parse`] accepted the pool only as ASCII, and every
            // slice of ASCII is UTF-8. Slicing the bytes skips core's
            // boundary checks.
            Some(bytes) => unsafe { core::str::from_utf8_unchecked(bytes) },
            None => "",
        }
    }

    fn of<T>(self, items: &'static [T]) -> &'static [T] {
        let (a, b) = self.span();
        items.get(a..b).unwrap_or(&[])
    }

    fn len(self) -> usize {
        let Str([_, _, len]) = self;
        usize::from(len)
    }

    /// Whether the string is `s`, ignoring ASCII case. (The lookups compare
    /// without taking the string out: a function returning a `&str` returns
    /// it through memory in wasm32, which costs code at every call.)
    fn is(self, s: &[u8]) -> bool {
        let (a, b) = self.span();
        table().pool.get(a..b).is_some_and(|p| p.eq_ignore_ascii_case(s))
    }
}

/// A host name a route answers on: a name of its own, or a label under the
/// table's domain (`quay` for `quay.{domain}`, empty for the domain itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Host {
    name: Str,
    /// 1 when the domain follows the name (any other byte: it does not).
    domain: u8,
}

impl Host {
    /// Whether `host` (port and trailing dot already removed) is this one,
    /// ignoring case.
    pub fn is(self, host: &str) -> bool {
        let h = host.as_bytes();
        let n = self.name.len();
        let domain = table().domain;
        if self.domain != 1 || n == 0 {
            return (if self.domain == 1 { domain } else { self.name }).is(h);
        }
        // LABEL "." DOMAIN
        h.get(n) == Some(&b'.')
            && h.get(..n).is_some_and(|label| self.name.is(label))
            && h.get(n + 1..).is_some_and(|d| domain.is(d))
    }
}

/// One route as the table stores it: twelve references and the route's
/// flags (`layout::RECORD` bytes). `Record::route` reads it out.
#[derive(Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    fields: [Str; 12],
    flags: u8,
}

// The table's entries are read in place: types of bytes only (any value is
// valid), alignment 1, the layout's sizes.
const _: () = assert!(
    core::mem::size_of::<Record>() == layout::RECORD
        && core::mem::size_of::<Host>() == layout::HOST
        && core::mem::size_of::<Str>() == layout::ALLOW
        && core::mem::align_of::<Record>() == 1
        && core::mem::align_of::<Host>() == 1
        && core::mem::align_of::<Str>() == 1
);

impl Record {
    fn str(&self, i: usize) -> Str {
        self.fields.get(i).copied().unwrap_or(NONE)
    }

    /// An optional string: `None` when not set (or, in a damaged table,
    /// empty).
    fn opt(&self, i: usize) -> Option<&'static str> {
        let s = self.str(i).get();
        (!s.is_empty()).then_some(s)
    }

    fn serves(&self, host: &str) -> bool {
        self.str(1).of(table().hosts).iter().any(|h| h.is(host))
    }

    /// The route, its fields read out of the table once (the planner then
    /// reads plain fields, which is less code than decoding at each use).
    #[inline(never)]
    fn route(&self, id: usize) -> Route {
        let t = table();
        Route {
            id,
            name: self.str(0).get(),
            hosts: self.str(1).of(t.hosts),
            prefix: self.opt(2),
            registry: self.str(3).get(),
            upstream: self.str(4).get(),
            realm: self.opt(5),
            service: self.opt(6),
            repository: self.opt(7),
            credentials: self.opt(8),
            allow: self.str(9).of(t.allow),
            fallback: self.str(10).of(t.fallback),
            search: self.opt(11),
            library: self.flags & layout::LIBRARY != 0,
            follow_redirects: self.flags & layout::FOLLOW != 0,
        }
    }
}

/// One mirror route, read out of the compiled table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Its position in the table: two routes are the same route when their
    /// ids are equal.
    pub id: usize,
    /// The route's name in the table; kept only when the table logs (it
    /// appears in nothing else), "" otherwise.
    pub name: &'static str,
    pub hosts: &'static [Host],
    /// Path components that select this route on its hosts (`ghcr.io`).
    pub prefix: Option<&'static str>,
    /// The name clients use for the upstream (containerd's `ns`).
    pub registry: &'static str,
    /// `scheme://authority` of the upstream registry.
    pub upstream: &'static str,
    /// The upstream's token endpoint, when the table names it.
    pub realm: Option<&'static str>,
    pub service: Option<&'static str>,
    /// Upstream path components in front of every name (`my-project`).
    pub repository: Option<&'static str>,
    /// The Worker secret (`user:token`) for anonymous token requests.
    pub credentials: Option<&'static str>,
    /// Repository patterns served (each read with [`Str::get`]); empty
    /// means all.
    pub allow: &'static [Str],
    /// Positions in the table of the routes to try, in order, when this
    /// route's upstream throttles or fails a manifest or blob request.
    pub fallback: &'static [u8],
    /// `scheme://authority` of the index that answers `docker search`
    /// (`/v1/search`) for this route.
    pub search: Option<&'static str>,
    /// Docker Hub rule: single-component names get `library/`.
    pub library: bool,
    pub follow_redirects: bool,
}

/// The table as the planner reads it: the sections of its bytes and the
/// header's settings.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    records: &'static [Record],
    hosts: &'static [Host],
    allow: &'static [Str],
    fallback: &'static [u8],
    pool: &'static [u8],
    domain: Str,
    /// The default route's position (none when past the last route).
    default: usize,
    flags: u8,
}

impl Table {
    const EMPTY: Table =
        Table { records: &[], hosts: &[], allow: &[], fallback: &[], pool: &[], domain: NONE, default: 0, flags: 0 };
}

/// `bytes` read in place as `T`s (as many whole ones as fit).
fn items<T>(bytes: &'static [u8]) -> &'static [T] {
    let n = bytes.len() / core::mem::size_of::<T>().max(1);
    // SAFETY: only called for Record, Host and Str (and u8): plain bytes
    // with alignment 1, of which any value is valid (asserted above), and
    // `n` of them fit in `bytes`.
    unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), n) }
}


/// Reads a compiled table (`route_table/layout.rs`): `None` unless it has
/// this planner's magic and format, its sections lie in order within it,
/// its text is ASCII and it has a route. Every reference is bounds-checked
/// where it is read, so a wrong one reads as "not set" (a default past the
/// last route as no default), never out of the table.
pub fn parse(b: &'static [u8]) -> Option<Table> {
    let mut t = Table::EMPTY;
    t.read(b).then_some(t)
}

impl Table {
    /// [`parse`] in place (the planner's buffer is read once, into a
    /// static): false, and no routes, when `b` is not a table.
    fn read(&mut self, b: &'static [u8]) -> bool {
        self.records = &[];
        let Some(&[m0, m1, m2, m3, r0, r1, h0, h1, a0, a1, f0, f1, d0, d1, s0, s1, s2, flags, p0, p1]) = b.first_chunk::<{ layout::HEADER }>()
        else {
            return false;
        };
        let at = |lo: u8, hi: u8| usize::from(u16::from_le_bytes([lo, hi]));
        let (records, hosts, allow, fallback, pool) = (at(r0, r1), at(h0, h1), at(a0, a1), at(f0, f1), at(p0, p1));
        let (Some(r), Some(h), Some(a), Some(f), Some(pool)) =
            (b.get(layout::HEADER..records), b.get(records..hosts), b.get(hosts..allow), b.get(allow..fallback), b.get(fallback..pool))
        else {
            return false;
        };
        if [m0, m1, m2, m3] != layout::MAGIC || pool.iter().any(|&c| c >= 0x80) {
            return false;
        }
        self.hosts = items(h);
        self.allow = items(a);
        self.fallback = f;
        self.pool = pool;
        self.domain = Str([s0, s1, s2]);
        self.default = at(d0, d1);
        self.flags = flags;
        self.records = items(r);
        !self.records.is_empty()
    }
}

#[cfg(target_arch = "wasm32")]
mod store {
    use super::{Table, TABLE_MAX};
    use core::cell::UnsafeCell;

    struct Bytes(UnsafeCell<[u8; TABLE_MAX]>);
    struct Loaded(UnsafeCell<Table>);
    // SAFETY: wasm32 without threads: one caller at a time.
    unsafe impl Sync for Bytes {}
    unsafe impl Sync for Loaded {}

    /// Where the entry copies `table.bin`. Zero-initialised, so it lives in
    /// .bss and costs no bytes of the module.
    static BYTES: Bytes = Bytes(UnsafeCell::new([0; TABLE_MAX]));
    static LOADED: Loaded = Loaded(UnsafeCell::new(Table::EMPTY));

    pub fn buffer() -> *mut u8 {
        BYTES.0.get().cast()
    }

    pub fn load(len: usize) -> bool {
        // SAFETY: the entry writes the buffer once per instance, before this
        // call and before any request; nothing writes it afterwards, so the
        // table's slices into it stay valid and unchanged.
        let bytes: &'static [u8] = unsafe { &*BYTES.0.get() };
        // SAFETY: single-threaded, and no reference to LOADED is held across
        // this write (the planner runs only inside `step`, not now).
        let table = unsafe { &mut *LOADED.0.get() };
        match bytes.get(..len) {
            Some(b) => table.read(b),
            None => {
                table.records = &[];
                false
            }
        }
    }

    pub fn table() -> &'static Table {
        // SAFETY: written only by `load`, outside any `step` call.
        unsafe { &*LOADED.0.get() }
    }
}

#[cfg(target_arch = "wasm32")]
pub use store::{buffer, load};
#[cfg(target_arch = "wasm32")]
use store::table;

/// Native builds: the table `build.rs` compiled (from `$ROUTES`, default
/// `routes.toml`), unless this thread installed another.
#[cfg(not(target_arch = "wasm32"))]
mod store {
    use super::{Table, TABLE_MAX};
    use std::cell::Cell;
    use std::sync::OnceLock;

    static BUILT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/table.bin"));

    /// A thread's own table, as the wasm has one: a buffer the bytes are
    /// copied into and the table read from it (each made once per thread
    /// and kept, so installing again allocates nothing: the fuzz target
    /// installs millions).
    struct Own {
        bytes: *mut u8,
        table: *mut Table,
    }

    thread_local! {
        static OWN: Cell<Option<(*mut u8, *mut Table)>> = const { Cell::new(None) };
        static INSTALLED: Cell<bool> = const { Cell::new(false) };
    }

    fn own() -> Own {
        let (bytes, table) = OWN.get().unwrap_or_else(|| {
            let made = (Box::leak(vec![0u8; TABLE_MAX].into_boxed_slice()).as_mut_ptr(), Box::into_raw(Box::new(Table::EMPTY)));
            OWN.set(Some(made));
            made
        });
        Own { bytes, table }
    }

    pub fn table() -> &'static Table {
        static DEFAULT: OnceLock<Table> = OnceLock::new();
        if INSTALLED.get() {
            // SAFETY: made by `own` and never freed; written only by
            // `install` on this thread.
            return unsafe { &*own().table };
        }
        DEFAULT.get_or_init(|| super::parse(BUILT).unwrap_or(Table::EMPTY))
    }

    /// Makes `bytes` this thread's table, as the wasm's `load` does (tests:
    /// each test thread can run on a table of its own): false when they do
    /// not read as one, and the thread then has no table. Routes read from
    /// this thread's earlier table must not be used afterwards (their text
    /// is overwritten), which no test does.
    pub fn install(bytes: &[u8]) -> bool {
        let own = own();
        INSTALLED.set(true);
        // SAFETY: the buffer is TABLE_MAX bytes, made for this thread and
        // used only here and through the table read from it (see above).
        unsafe {
            let n = bytes.len().min(TABLE_MAX);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), own.bytes, n);
            let b: &'static [u8] = if bytes.len() > TABLE_MAX { &[] } else { std::slice::from_raw_parts(own.bytes, n) };
            (*own.table).read(b)
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use store::install;
#[cfg(not(target_arch = "wasm32"))]
use store::table;

/// Whether a table is loaded (one has at least one route): without one,
/// the planner answers every request with
/// [`crate::messages::Msg::TableUnusable`].
pub fn loaded() -> bool {
    !table().records.is_empty()
}

/// Serve the browser page on `GET /`.
pub fn page() -> bool {
    table().flags & layout::PAGE != 0
}

/// One JSON line per request on the Workers log.
pub fn log() -> bool {
    table().flags & layout::LOG != 0
}

/// The client's address in those lines.
pub fn log_client() -> bool {
    table().flags & layout::LOG_CLIENT != 0
}

/// The route with `default = true`, if any.
pub fn default_route() -> Option<usize> {
    let t = table();
    (t.default < t.records.len()).then_some(t.default)
}

/// Every route of the table, in order.
pub fn routes() -> impl Iterator<Item = Route> {
    (0..table().records.len()).filter_map(get)
}

/// The route at position `i` of the table (what the lookups below return:
/// the caller reads the route out once, where it keeps it).
pub fn get(i: usize) -> Option<Route> {
    table().records.get(i).map(|r| r.route(i))
}

/// The route a registry name (`?ns=`, `/token/<registry>`) names. A route
/// without hosts that is not the default exists only as another route's
/// fallback: no request selects it.
pub fn by_registry(name: &str) -> Option<usize> {
    let t = table();
    let name = name.strip_suffix(".").unwrap_or(name);
    let i = t.records.iter().position(|r| r.str(3).is(name.as_bytes()))?;
    let serves = |r: &Record| r.str(1).len() != 0 || t.default == i;
    t.records.get(i).is_some_and(serves).then_some(i)
}

/// The route for names without a prefix on `host` (port already removed, a
/// trailing dot and case ignored): its route without a prefix, or the only
/// route it has, or the default route.
pub fn by_host(host: &str) -> Option<usize> {
    let t = table();
    let host = host.strip_suffix(".").unwrap_or(host);
    let (mut first, mut count) = (0, 0);
    for (i, r) in t.records.iter().enumerate() {
        if r.serves(host) {
            if r.str(2) == NONE {
                return Some(i);
            }
            first = i;
            count += 1;
        }
    }
    if count == 1 {
        Some(first)
    } else {
        default_route()
    }
}

/// The route for repository `name` on `host`, and the name with the route's
/// prefix removed (`None` when no prefix was used).
///
/// On a host no route names (a first deploy's `workers.dev` address, before
/// the table's domain is attached), every route with hosts counts as
/// serving it: each prefix reaches its route there, as on the table's
/// shared host, and a name without one goes to the default route.
///
/// On a host several routes share, a name whose first component looks like
/// a registry (it has a `.` or `:`, or is `localhost`, as in Docker's
/// reference grammar) but is no route's prefix names a registry this mirror
/// does not serve: `None`, rather than the default route's upstream asked
/// for a repository it cannot have (Docker Hub namespaces have no dots).
pub fn by_name<'a>(host: &str, name: &'a str) -> Option<(usize, Option<&'a str>)> {
    let t = table();
    let host = host.strip_suffix(".").unwrap_or(host);
    let named = t.records.iter().any(|r| r.serves(host));
    let mut shared = 0;
    for (i, r) in t.records.iter().enumerate() {
        if !(if named { r.serves(host) } else { r.str(1).len() != 0 }) {
            continue;
        }
        if let Some(rest) = r.opt(2).and_then(|p| crate::strip_prefix_then(name, p, b'/')) {
            return Some((i, Some(rest)));
        }
        shared += 1;
    }
    let first = crate::before(name, b'/');
    if shared > 1 && name.len() > first.len() && (crate::has(first, b'.') || crate::has(first, b':') || first == "localhost") {
        return None;
    }
    by_host(host).map(|r| (r, None))
}

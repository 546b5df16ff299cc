//! The compiled route table and the lookups that pick a route.
//!
//! `build.rs` turns `routes.toml` (or `$ROUTES`) into `OUT_DIR/routes.rs`,
//! included here: the table as data (one string pool, each route a record of
//! 3-byte references into it; `src/route_table/render.rs` says how it is
//! laid out), the default route and the table-wide settings. [`Route`]'s
//! methods read a route's fields out of it. There is no runtime configuration, KV lookup or query parameter
//! that adds a route, so the worker can only ever contact the upstreams and
//! realms listed here (and the targets of their redirects).
//!
//! A request finds its route one of three ways:
//! - containerd's `?ns=<registry>` (and the mirror's own `/token/<registry>`)
//!   name a route by its `registry`, among every route of the table;
//! - a path `/v2/<prefix>/<name>/...` on a host a prefixed route serves;
//! - otherwise the host: its route without a prefix, or the only route it
//!   has, or else the table's default route.
//!
//! The `USES_*` constants say whether any route sets a key, so the code for
//! a key no route uses compiles away.

/// A reference into the compiled table: an offset (two bytes, little endian)
/// and a length (one byte), into `POOL` for a string or into `HOSTS` or
/// `ALLOW` for a list; length 0 is "not set".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str([u8; 3]);

/// Not set.
const NONE: Str = Str([0; 3]);

/// `len` bytes of `POOL` from `at` (the generated table's constructor).
const fn s(at: u16, len: u8) -> Str {
    let [lo, hi] = at.to_le_bytes();
    Str([lo, hi, len])
}

/// `count` items of `HOSTS` or `ALLOW` from `start`.
const fn range(start: u16, count: u8) -> Str {
    s(start, count)
}

impl Str {
    fn span(self) -> (usize, usize) {
        let Str([lo, hi, len]) = self;
        let at = usize::from(u16::from_le_bytes([lo, hi]));
        (at, at + usize::from(len))
    }

    /// The string; "" when not set.
    pub fn get(self) -> &'static str {
        let (a, b) = self.span();
        match POOL.as_bytes().get(a..b) {
            // SAFETY: the pool is a `str`, and render.rs points every string
            // at an occurrence of a whole `str` in it (`str::find`), which
            // starts and ends on character boundaries. Slicing the bytes
            // skips core's boundary checks.
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
        POOL.as_bytes().get(a..b).is_some_and(|p| p.eq_ignore_ascii_case(s))
    }
}

/// A host name a route answers on: a name of its own, or a label under the
/// table's domain (`quay` for `quay.{domain}`, empty for the domain itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    name: Str,
    domain: bool,
}

impl Host {
    /// Whether `host` (port and trailing dot already removed) is this one,
    /// ignoring case.
    pub fn is(self, host: &str) -> bool {
        let h = host.as_bytes();
        let n = self.name.len();
        if !self.domain || n == 0 {
            return (if self.domain { DOMAIN } else { self.name }).is(h);
        }
        // LABEL "." DOMAIN
        h.get(n) == Some(&b'.')
            && h.get(..n).is_some_and(|label| self.name.is(label))
            && h.get(n + 1..).is_some_and(|domain| DOMAIN.is(domain))
    }
}

/// `Record::flags` bits.
const LIBRARY: u8 = 1;
const FOLLOW: u8 = 2;

/// One route as the generated table stores it: eleven references into the
/// table (34 bytes with the flags). [`Record::route`] reads it out.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    fields: [Str; 11],
    flags: u8,
}

impl Record {
    /// The generated table's constructor, in the order of [`Route`]'s fields.
    #[allow(clippy::too_many_arguments)]
    const fn new(
        name: Str,
        hosts: Str,
        prefix: Str,
        registry: Str,
        upstream: Str,
        realm: Str,
        service: Str,
        repository: Str,
        credentials: Str,
        allow: Str,
        fallback: Str,
        flags: u8,
    ) -> Record {
        Record { fields: [name, hosts, prefix, registry, upstream, realm, service, repository, credentials, allow, fallback], flags }
    }

    fn str(&self, i: usize) -> Str {
        self.fields.get(i).copied().unwrap_or(NONE)
    }

    fn opt(&self, i: usize) -> Option<&'static str> {
        let s = self.str(i);
        (s != NONE).then(|| s.get())
    }

    fn serves(&self, host: &str) -> bool {
        self.str(1).of(HOSTS).iter().any(|h| h.is(host))
    }

    /// The route, its fields read out of the table once (the planner then
    /// reads plain fields, which is less code than decoding at each use).
    #[inline(never)]
    fn route(&self, id: usize) -> Route {
        Route {
            id,
            name: self.str(0).get(),
            hosts: self.str(1).of(HOSTS),
            prefix: self.opt(2),
            registry: self.str(3).get(),
            upstream: self.str(4).get(),
            realm: self.opt(5),
            service: self.opt(6),
            repository: self.opt(7),
            credentials: self.opt(8),
            allow: self.str(9).of(ALLOW),
            fallback: self.str(10).of(FALLBACK),
            library: self.flags & LIBRARY != 0,
            follow_redirects: self.flags & FOLLOW != 0,
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
    /// Docker Hub rule: single-component names get `library/`.
    pub library: bool,
    pub follow_redirects: bool,
}

/// Every route of the table, in order.
pub fn routes() -> impl Iterator<Item = Route> {
    (0..TABLE.len()).filter_map(get)
}

include!(concat!(env!("OUT_DIR"), "/routes.rs"));

/// The route at position `i` of the table (what the lookups below return:
/// the caller reads the route out once, where it keeps it).
pub fn get(i: usize) -> Option<Route> {
    TABLE.get(i).map(|r| r.route(i))
}

/// The route a registry name (`?ns=`, `/token/<registry>`) names. A route
/// without hosts that is not the default exists only as another route's
/// fallback: no request selects it.
pub fn by_registry(name: &str) -> Option<usize> {
    let name = name.strip_suffix(".").unwrap_or(name);
    let i = TABLE.iter().position(|r| r.str(3).is(name.as_bytes()))?;
    let serves = |r: &Record| r.str(1).len() != 0 || DEFAULT_ROUTE == Some(i);
    (!USES_FALLBACK || TABLE.get(i).is_some_and(serves)).then_some(i)
}

/// The route for names without a prefix on `host` (port already removed, a
/// trailing dot and case ignored): its route without a prefix, or the only
/// route it has, or the default route.
pub fn by_host(host: &str) -> Option<usize> {
    let host = host.strip_suffix(".").unwrap_or(host);
    let (mut first, mut count) = (0, 0);
    for (i, r) in TABLE.iter().enumerate() {
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
        DEFAULT_ROUTE
    }
}

/// The route for repository `name` on `host`, and the name with the route's
/// prefix removed (`None` when no prefix was used).
///
/// On a host several routes share, a name whose first component looks like
/// a registry (it has a `.` or `:`, or is `localhost`, as in Docker's
/// reference grammar) but is no route's prefix names a registry this mirror
/// does not serve: `None`, rather than the default route's upstream asked
/// for a repository it cannot have (Docker Hub namespaces have no dots).
pub fn by_name<'a>(host: &str, name: &'a str) -> Option<(usize, Option<&'a str>)> {
    if USES_PREFIX {
        let host = host.strip_suffix(".").unwrap_or(host);
        let mut shared = 0;
        for (i, r) in TABLE.iter().enumerate() {
            if !r.serves(host) {
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
    }
    by_host(host).map(|r| (r, None))
}

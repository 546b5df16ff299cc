//! The wasm side of the entry: synchronous exports over one I/O buffer, and
//! the route table's buffer the entry fills once per instance.
//!
//! `src/edge.js` is the worker's entry. It writes the request's facts (and,
//! after a fetch, the upstream's) into the buffer [`io`] points at, calls
//! [`step`] with their length, and reads the action from the same buffer.
//! Each call is complete in itself: nothing in wasm memory outlives it, so
//! requests interleaving in one isolate share nothing, and a trap (there is
//! no panic path, but an allocation failure would trap) loses no request but
//! the one that caused it; the entry then instantiates the module afresh.
//!
//! What it deliberately does not do: async, `JsValue`s, imports of any
//! runtime API, wasm-bindgen. The exports are plain `extern "C"` functions
//! of numbers, which the entry calls on the instance it makes itself (214 B
//! of wasm less than the same exports through `#[wasm_bindgen]`, and no JS
//! glue). The buffer holds numbers and length-prefixed UTF-8 fields
//! (`crate::wire` has the layout): the entry copies an ASCII field byte by
//! byte (anything else with `TextEncoder.encodeInto`), reads the action's
//! numbers as bytes and decodes only the fields it hands to the runtime; no
//! allocator call.

use core::cell::UnsafeCell;

/// Size of the I/O buffer: the request URL (at most 8 KiB), a token form (at
/// most 16 KiB, three times that once re-encoded) and an upstream challenge
/// fit with room to spare.
pub const IO_LEN: usize = 64 * 1024;

struct Io(UnsafeCell<[u8; IO_LEN]>);

// SAFETY: wasm32 without threads: one caller at a time.
unsafe impl Sync for Io {}

/// Zero-initialised, so it lives in .bss and costs no bytes of the module.
static IO: Io = Io(UnsafeCell::new([0; IO_LEN]));

/// Where the entry writes its input and reads the action.
#[no_mangle]
pub extern "C" fn io() -> *mut u8 {
    IO.0.get().cast()
}

/// Where the entry copies the route table (`table.bin`), once per instance,
/// before [`load`].
#[no_mangle]
pub extern "C" fn table() -> *mut u8 {
    crate::routes::buffer()
}

/// Reads the `len` bytes of route table at [`table`]; false when they are
/// not a table of this planner's format (every request then answers 500
/// saying so).
#[no_mangle]
pub extern "C" fn load(len: usize) -> bool {
    crate::routes::load(len)
}

/// Whether the table logs requests: the entry then times each fetch (read
/// once, after [`load`]).
#[no_mangle]
pub extern "C" fn logs() -> bool {
    crate::routes::log()
}

/// Whether the table logs client addresses: the entry then passes each
/// request's address (read once, after [`load`]).
#[no_mangle]
pub extern "C" fn client_address() -> bool {
    crate::routes::log_client()
}

/// Plans one step from the `len` bytes at [`io`] and writes the action there;
/// returns its length. `len` above [`IO_LEN`] means the entry could not fit
/// its input.
#[no_mangle]
pub extern "C" fn step(len: usize) -> usize {
    // SAFETY: single-threaded, and the entry does not touch the buffer while
    // this call runs; this is the only reference to it during the call.
    let buf = unsafe { &mut *IO.0.get() };
    let out = match buf.get(..len) {
        Some(input) => crate::wire::step(input, probe().as_str()),
        None => crate::wire::too_large(),
    };
    let out = if out.len() > IO_LEN { crate::wire::too_large() } else { out };
    let n = out.len();
    if n <= IO_LEN {
        // SAFETY: `out` holds `n` bytes, and `n` fit in the buffer; the two
        // do not overlap (`out` is on the heap). (copy_from_slice would
        // check the lengths again and carry a panic path for it.)
        unsafe { core::ptr::copy_nonoverlapping(out.as_ptr(), buf.as_mut_ptr(), n) }
    }
    n
}

/// Test builds (`memory-probe`): the linear-memory size in 64 KiB pages, for
/// the soak, reported on local answers.
#[cfg(feature = "memory-probe")]
fn probe() -> String {
    let mut s = String::new();
    crate::push_number(&mut s, core::arch::wasm32::memory_size(0));
    s
}

#[cfg(not(feature = "memory-probe"))]
fn probe() -> String {
    String::new()
}

//! The wasm heap: a bump allocator that starts over whenever nothing is live.
//!
//! Every allocation the worker makes lives inside one `step` call (see
//! `edge.rs`): the planner builds its strings, the action is copied into the
//! I/O buffer, and everything is dropped before the call returns. So the heap
//! needs no free lists: allocating moves a pointer forward, and when the
//! count of live allocations falls to zero the pointer goes back to the start
//! of the heap. The last allocation can grow or shrink in place (strings
//! being appended to), anything else is copied. Linear memory grows to the
//! most one call ever needed and stays there; the soak measures it.
//!
//! It replaced wee_alloc, which the design card names: size-report.md has the
//! two builds side by side (about 1.3 KB of wasm), and wee_alloc is
//! unmaintained (RUSTSEC-2022-0054) with an open report of unbounded growth.
//! `--features wee_alloc` builds with it, for that measurement.
//!
//! What it does not do: reuse memory freed while other allocations are live
//! (within one call that is a few kilobytes at most), or thread safety (wasm32
//! without threads).

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32::{memory_grow, memory_size};
use core::cell::Cell;

const PAGE: usize = 65536;

pub struct Bump {
    /// Next free byte; 0 until the first allocation.
    next: Cell<usize>,
    /// End of linear memory.
    end: Cell<usize>,
    live: Cell<usize>,
}

// SAFETY: wasm32 without threads: one caller at a time.
unsafe impl Sync for Bump {}

impl Bump {
    pub const fn new() -> Bump {
        Bump { next: Cell::new(0), end: Cell::new(0), live: Cell::new(0) }
    }

    fn heap_base() -> usize {
        extern "C" {
            static __heap_base: u8;
        }
        // The linker defines __heap_base; only its address is taken.
        core::ptr::addr_of!(__heap_base) as usize
    }

    /// Makes sure memory reaches `to`; false when it cannot grow.
    fn reach(&self, to: usize) -> bool {
        if self.end.get() == 0 {
            self.end.set(memory_size(0) * PAGE);
        }
        if to > self.end.get() {
            let pages = (to - self.end.get()).div_ceil(PAGE);
            if memory_grow(0, pages) == usize::MAX {
                return false;
            }
            self.end.set(self.end.get() + pages * PAGE);
        }
        true
    }
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = match self.next.get() {
            0 => Bump::heap_base(),
            n => n,
        };
        let start = (next + layout.align() - 1) & !(layout.align() - 1);
        let Some(end) = start.checked_add(layout.size()) else { return core::ptr::null_mut() };
        if !self.reach(end) {
            return core::ptr::null_mut();
        }
        self.next.set(end);
        self.live.set(self.live.get() + 1);
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let live = self.live.get().saturating_sub(1);
        self.live.set(live);
        if live == 0 {
            self.next.set(Bump::heap_base());
        } else if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The last allocation grows or shrinks where it is.
        if ptr as usize + layout.size() == self.next.get() {
            let Some(end) = (ptr as usize).checked_add(new_size) else { return core::ptr::null_mut() };
            if !self.reach(end) {
                return core::ptr::null_mut();
            }
            self.next.set(end);
            return ptr;
        }
        // SAFETY: as GlobalAlloc::realloc's default: a fresh block, the old
        // contents copied, the old block freed.
        unsafe {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

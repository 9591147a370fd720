//! The connector's allocator inside the sandbox: a bump arena over the
//! memory a fresh instance starts with, then the standard allocator.
//!
//! Why: Rust's allocator on `wasm32` (dlmalloc) gets memory only by growing
//! the instance's memory; it never uses the pages between the end of the
//! data and the memory's initial size. Every connector call runs on a fresh
//! instance, so every call grew its memory, and the host's pooling
//! allocator then had to take those pages back (`mprotect`, with a TLB
//! flush on every CPU of the server) before the next instance could use
//! the slot: two system calls and about 6 % of the server's CPU per
//! payment (docs/performance.md, "Group commit on SQLite").
//!
//! A connector call is short and its instance is thrown away after it, so
//! a bump allocator over the initial memory serves it without growing: our
//! connectors are linked with a 4 MiB initial memory
//! (`plugins/.cargo/config.toml`), the 1 MiB stack and the data included.
//! The last allocation can be given back or resized in place (a string
//! built then dropped, a vector pushed to); any other free is forgotten
//! until the instance ends. When the arena is spent, allocations go to the
//! standard allocator, as every allocation did before.
//!
//! On by default (feature `call-arena`); a connector with an allocator of
//! its own turns the feature off.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

extern "C" {
    /// Where the linker (wasm-ld) put the start of the heap: after the
    /// stack and the data.
    static __heap_base: u8;
}

const WASM_PAGE: usize = 65_536;

struct CallArena {
    /// Next free byte; 0 until the first allocation.
    next: Cell<usize>,
    start: Cell<usize>,
    /// The end of the memory the instance started with.
    end: Cell<usize>,
}

// A wasm32 connector has one thread: nothing is shared.
unsafe impl Sync for CallArena {}

#[global_allocator]
static ALLOCATOR: CallArena = CallArena {
    next: Cell::new(0),
    start: Cell::new(0),
    end: Cell::new(0),
};

impl CallArena {
    fn bounds(&self) -> (usize, usize) {
        if self.next.get() == 0 {
            // Only the symbol's address is taken, never its value.
            let start = core::ptr::addr_of!(__heap_base) as usize;
            let end = core::arch::wasm32::memory_size(0) * WASM_PAGE;
            self.start.set(start);
            self.end.set(end.max(start));
            self.next.set(start.max(1));
        }
        (self.start.get(), self.end.get())
    }

    fn owns(&self, addr: usize) -> bool {
        let (start, end) = self.bounds();
        (start..end).contains(&addr)
    }

    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let (_, end) = self.bounds();
        let at = self.next.get().checked_next_multiple_of(layout.align())?;
        let after = at.checked_add(layout.size())?;
        if after > end {
            return None;
        }
        self.next.set(after);
        Some(at as *mut u8)
    }
}

unsafe impl GlobalAlloc for CallArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let addr = ptr as usize;
        if self.owns(addr) {
            if addr + layout.size() == self.next.get() {
                self.next.set(addr);
            }
            return;
        }
        // SAFETY: not ours, so the standard allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let addr = ptr as usize;
        if !self.owns(addr) {
            // SAFETY: not ours, so the standard allocator's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let (_, end) = self.bounds();
        let is_last = addr + layout.size() == self.next.get();
        if is_last && addr.checked_add(new_size).is_some_and(|after| after <= end) {
            self.next.set(addr + new_size);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `GlobalAlloc::realloc`'s contract: the alignment is the
        // old layout's, the size non-zero and not overflowing.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid layout.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct, the old one
            // `layout.size()` bytes long, the new one longer.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

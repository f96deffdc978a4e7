//! A global allocator that zeroes every block before it is freed.
//!
//! The service wipes the buffers it owns (body, pixels, tensors) itself; this catches the copies
//! it does not own — the HTTP stack's read buffers, the multipart parser's, the image decoders'
//! scratch space — so no selfie bytes linger in freed heap memory. ONNX Runtime allocates through
//! its own C++ allocator and is not covered. The binary installs it; measured cost is in
//! BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};

/// Zero-on-free wrapper around the system allocator.
pub struct WipeOnFree;

// SAFETY: allocation is delegated to `System` unchanged; `dealloc` only writes zeros to the
// block it is about to free, which the caller owns for the whole call.
unsafe impl GlobalAlloc for WipeOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe {
            std::ptr::write_bytes(ptr, 0, layout.size());
            // Keep the compiler from treating the zeroing as a dead store before `free`.
            std::hint::black_box(ptr);
            std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
            System.dealloc(ptr, layout)
        }
    }
}

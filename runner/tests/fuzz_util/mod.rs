//! What the parser property tests share: how many cases a run makes, and the largest single
//! allocation a piece of code asks for on this thread, so that a test can assert that no length
//! field of a damaged input makes a parser allocate beyond a bound. Allocations of libtorch (its
//! own allocator) and of other threads are not seen.
#![allow(unsafe_code)] // a counting global allocator needs `unsafe impl GlobalAlloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use nas_runner::data::{load_balanced_sample, DataSource, Split};

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the slot is gone while the thread exits; those allocations are not ours.
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
}

// SAFETY: every call forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

/// Most bytes one allocation may take while a parser reads a damaged input of `input_len`
/// bytes: a fixed allowance for buffers (a decoded image, an inflate window) plus a multiple of
/// the input; a length field trusted before it is checked asks for far more.
pub fn allocation_bound(input_len: usize) -> usize {
    (16 << 20) + 64 * input_len
}

/// Cases per property: `PROPTEST_CASES` when set (a long fuzzing run, `scripts/fuzz.sh`), else
/// `default` (the brief run of every CI). An explicit `cases` in a `ProptestConfig` would
/// otherwise override the variable.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Bytes under `path` (a file, or a folder's files, recursively).
pub fn bytes_under(path: &Path) -> usize {
    if path.is_file() {
        return std::fs::metadata(path).map_or(0, |m| m.len() as usize);
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| bytes_under(&e.path()))
        .sum()
}

/// Runs `f` on an input of `input_len` bytes and panics (fails the property) when one of its
/// allocations passes [`allocation_bound`].
pub fn bounded<T>(what: &str, input_len: usize, f: impl FnOnce() -> T) -> T {
    let (out, largest) = largest_allocation(f);
    let bound = allocation_bound(input_len);
    assert!(
        largest <= bound,
        "{what}: one allocation of {largest} bytes for an input of {input_len} bytes (bound {bound})"
    );
    out
}

/// Reads every split the folder claims, through the public reader API; errors are fine, an
/// allocation beyond the bound for the folder's bytes is not.
pub fn read_all(dir: &Path) {
    let loc = dir.to_string_lossy().into_owned();
    bounded(&loc, bytes_under(dir), || {
        if let Ok(src) = DataSource::open(&loc) {
            for split in [Split::Train, Split::Test] {
                let _ = src.classes(split);
            }
        }
        let _ = load_balanced_sample(&loc, Split::Train, 2, 0);
    });
}

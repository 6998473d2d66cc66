//! Replays the fuzz corpus (`fuzz/corpus/TARGET/`, minimised by `scripts/fuzz.sh`) through the
//! fuzz targets' entry points in the ordinary test build: every input must come back as a value
//! or an error, without a panic and without one allocation over [`LIMIT`] (a size read from the
//! input and believed: this binary's allocator aborts and names the input).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::prelude::Device;

/// libFuzzer's default `-malloc_limit_mb` (the RSS limit, 2 GiB).
const LIMIT: usize = 2 << 30;

/// The input being replayed, for the allocator's report (written without allocating).
static CURRENT: Mutex<[u8; 512]> = Mutex::new([0; 512]);

struct Bounded;

impl Bounded {
    fn check(size: usize) {
        if size > LIMIT {
            let mut err = std::io::stderr();
            let _ = err.write_all(b"fuzz corpus: an allocation over 2 GiB while replaying ");
            if let Ok(name) = CURRENT.try_lock() {
                let _ = err.write_all(name.split(|&b| b == 0).next().unwrap_or_default());
            }
            let _ = err.write_all(b"\n");
            std::process::abort();
        }
    }
}

unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/fuzz.sh writes the corpus)", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Runs `entry` on every input of `target`'s corpus; returns how many it accepted.
fn replay<T, E>(target: &str, entry: impl Fn(&[u8]) -> Result<T, E>) -> usize {
    let files = corpus(target);
    assert!(files.len() >= 10, "{target}: only {} inputs in the corpus", files.len());
    let mut accepted = 0;
    for file in &files {
        {
            let mut name = CURRENT.lock().unwrap();
            let text = file.display().to_string();
            let n = text.len().min(name.len() - 1);
            name.fill(0);
            name[..n].copy_from_slice(&text.as_bytes()[..n]);
        }
        let bytes = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(&bytes).is_ok()));
        match outcome {
            Ok(ok) => accepted += ok as usize,
            Err(_) => panic!("{target}: {} panicked", file.display()),
        }
    }
    accepted
}

/// Each target's corpus holds inputs that parse, not only rejects: the replay reaches past the
/// first check.
#[test]
fn weights() {
    let device = Device::flex();
    assert!(replay("weights", |b| clip_model::fuzz::weights(b, &device)) > 0);
}

#[test]
fn pytorch() {
    let device = Device::flex();
    replay("pytorch", |b| clip_model::fuzz::pytorch(b, &device));
}

#[test]
fn image() {
    assert!(replay("image", clip_model::fuzz::image) > 0);
}

#[test]
fn text() {
    assert!(replay("text", clip_model::fuzz::text) > 0);
}

#[test]
fn config() {
    assert!(replay("config", clip_model::fuzz::config) > 0);
}

#[test]
fn shard() {
    assert!(replay("shard", clip_trainer::fuzz::shard) > 0);
}

#[test]
fn table() {
    assert!(replay("table", clip_trainer::fuzz::table) > 0);
}

#[test]
fn pattern() {
    assert!(replay("pattern", clip_trainer::fuzz::pattern) > 0);
}

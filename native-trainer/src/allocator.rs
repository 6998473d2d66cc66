//! glibc's allocator, tuned for inference on the CPU.
//!
//! glibc hands out blocks above its mmap threshold (128 KiB at start, rising with use to at most
//! 32 MiB) as fresh mappings and unmaps them on free, and gives the heap's top back to the kernel
//! past 128 KiB. A forward pass frees and allocates tensors of a few to tens of MiB in every
//! layer, and each time the kernel maps and zeroes their pages again. Keeping freed memory in the
//! process took `embed` of 32 texts with ViT-B-32 from 4.6 to 3.7 s on 2 Xeon cores, the model
//! load included (medians; tests/bench/allocator.sh, BENCHMARKS.md). Training steps did not get
//! faster and peaked 7% higher, so `train` keeps glibc's defaults. A `MALLOC_*` variable or
//! `GLIBC_TUNABLES` in the environment means the user tunes the allocator: then nothing changes.

/// Keeps freed memory for reuse: an mmap threshold and a trim threshold of 1 GiB, and the heap
/// grown 256 MiB at a time. Returns whether glibc took the settings (false elsewhere, or when
/// the environment tunes the allocator).
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if environment_tunes_allocator() {
            return false;
        }
        // SAFETY: mallopt only sets glibc's allocator parameters; it is thread-safe.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TOP_PAD, 256 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// A `MALLOC_*` variable (glibc's older knobs) or `GLIBC_TUNABLES` is set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn environment_tunes_allocator() -> bool {
    std::env::vars_os()
        .any(|(key, _)| key.to_str().is_some_and(|k| k.starts_with("MALLOC_") || k == "GLIBC_TUNABLES"))
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn mapped_bytes() -> usize {
        // SAFETY: mallinfo2 reads the allocator's statistics.
        unsafe { libc::mallinfo2() }.hblkhd
    }

    #[test]
    fn a_large_block_comes_from_the_heap_not_a_fresh_mapping() {
        if environment_tunes_allocator() {
            return; // keep_freed_memory leaves a tuned allocator alone
        }
        assert!(keep_freed_memory(), "glibc refused the settings");
        // 48 MiB is above glibc's largest automatic mmap threshold (32 MiB): with its defaults
        // this block is always a mapping of its own. Other tests running beside this one can
        // only unmap blocks (lowering the count) while the threshold is 1 GiB.
        let before = mapped_bytes();
        let block = vec![1u8; 48 << 20];
        let after = mapped_bytes();
        assert_eq!(block[block.len() - 1], 1);
        assert!(after < before + (48 << 20), "the block was mapped: {before} -> {after} bytes");
    }
}

//! Gives the system back the memory glibc's allocator keeps after the
//! program freed it.
//!
//! glibc returns freed memory to the kernel only from the top of each
//! arena, and a multi-threaded program has up to eight arenas a core. After
//! a burst on many threads (decrypting a 100,000-message mailbox for a
//! SEARCH, opening its sort fields) the freed pages stay resident: the
//! daemon measured 112 MiB after such a run against 64 MiB with a single
//! arena (docs/benchmarks.md). `malloc_trim(0)` walks every arena and
//! releases its free pages, also those below live allocations.
//!
//! This is mailnode's only `unsafe`, kept in its own crate so every other
//! crate keeps `forbid(unsafe_code)`.

/// Asks glibc to return the free pages of every arena to the system.
/// Returns whether it released anything. It locks each arena in turn, so
/// call it when the process is quiet, not in the middle of a burst.
/// Elsewhere (musl, other systems) it does nothing and returns `false`:
/// those allocators return memory themselves or have no such call.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_freed_memory() -> bool {
    // SAFETY: `malloc_trim` takes no pointer and touches only glibc's own
    // free lists, under the same locks as every other allocator call.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Does nothing off glibc (see the glibc version).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() -> bool {
    false
}

/// Caps the number of glibc arenas at `max` (`M_ARENA_MAX`). Fewer arenas
/// means freed memory is shared instead of stranded per thread; glibc's
/// per-thread caches still serve small allocations without the lock. Call
/// it first thing in `main`, before other threads allocate: arenas made
/// before stay. Returns whether glibc took the setting.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_arenas(max: u16) -> bool {
    // SAFETY: `mallopt` takes two integers and changes a glibc setting
    // under its own lock.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, i32::from(max)) == 1 }
}

/// Does nothing off glibc (see the glibc version).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas(_max: u16) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_after_a_burst_of_frees_is_safe_to_repeat() {
        // Freed memory below a live allocation: the case plain free()
        // cannot return.
        let burst: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 64 * 1024]).collect();
        let keep = vec![1u8; 1024];
        drop(burst);
        let first = release_freed_memory();
        // Nothing is left to release the second time.
        let _ = release_freed_memory();
        assert_eq!(keep[1023], 1);
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(first, "glibc released the freed burst");
        }
    }
}

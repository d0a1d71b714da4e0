//! Keeps the daemon's resident memory near what it uses (issue 7).
//!
//! glibc keeps memory that threads freed in their arenas (see the
//! `alloc-trim` crate), so after a burst (a SEARCH that decrypted a large
//! mailbox, the first SORT of it, a queue of deliveries) the resident set
//! stays at the burst's peak. Once a second, this task reads the resident
//! set (`/proc/self/status`) and asks the allocator to return its free
//! pages when the set has grown by [`GROWTH`] since the last trim (in the
//! middle of a burst), or by [`SETTLED_GROWTH`] and then stayed where it
//! was for a second (after one, so what the burst's end freed goes too).
//! Growth that is live data (a larger mailbox index, cached sort fields)
//! is not released, and the baseline simply moves up to it: the trim runs
//! again only after more growth.

use std::time::Duration;

use tokio::sync::watch;

/// How often the resident set is read.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Growth of the resident set, in bytes, that makes the task trim.
pub const GROWTH: u64 = 8 * 1024 * 1024;

/// Growth that makes the task trim once the resident set is steady.
pub const SETTLED_GROWTH: u64 = 1024 * 1024;

/// Change between two readings, in bytes, that still counts as steady.
const STEADY: u64 = 64 * 1024;

/// The process's resident set in bytes (`VmRSS` of `/proc/self/status`),
/// if readable.
pub fn resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Whether a resident set of `now` bytes, after `baseline` at the last
/// trim and `last` a second ago, calls for a trim.
pub fn should_trim(baseline: u64, last: u64, now: u64) -> bool {
    let steady = now.abs_diff(last) <= STEADY;
    now >= baseline.saturating_add(GROWTH)
        || (steady && now >= baseline.saturating_add(SETTLED_GROWTH))
}

/// Runs until `shutdown` turns true.
pub async fn run(mut shutdown: watch::Receiver<bool>) {
    let Some(mut baseline) = resident() else {
        tracing::debug!("no /proc/self/status: the allocator is not trimmed");
        return;
    };
    let mut last = baseline;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let Some(now) = resident() else { continue };
        let previous = std::mem::replace(&mut last, now);
        if should_trim(baseline, previous, now) {
            // It walks every arena: off the async workers.
            let trimmed = tokio::task::spawn_blocking(alloc_trim::release_freed_memory).await;
            let after = resident().unwrap_or(now);
            tracing::debug!(
                before = now,
                after,
                released = trimmed.unwrap_or(false),
                "returned freed memory to the system"
            );
            baseline = after;
            last = after;
        } else if now < baseline {
            // Memory went back by itself: measure growth from here.
            baseline = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_growth_only() {
        let mib = 1024 * 1024;
        // Growing: only a large growth trims.
        assert!(!should_trim(40 * mib, 30 * mib, 40 * mib));
        assert!(!should_trim(40 * mib, 44 * mib, 47 * mib));
        assert!(should_trim(40 * mib, 44 * mib, 48 * mib));
        // Steady: a smaller growth trims, none does not.
        assert!(should_trim(40 * mib, 41 * mib, 41 * mib));
        assert!(!should_trim(
            40 * mib,
            40 * mib + mib / 2,
            40 * mib + mib / 2
        ));
        assert!(!should_trim(40 * mib, 40 * mib, 40 * mib));
    }

    #[test]
    fn reads_its_own_resident_set() {
        let resident = resident().expect("Linux has /proc/self/status");
        // More than the binary's first page, less than this machine.
        assert!(resident > 1024 * 1024, "{resident}");
        assert!(resident < 64 * 1024 * 1024 * 1024, "{resident}");
    }
}

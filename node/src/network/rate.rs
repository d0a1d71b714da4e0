//! Token buckets for inbound delivery requests, keyed by peer (or, for
//! senders who are not contacts, by IP address).
//!
//! Each peer has a bucket of `burst` tokens refilled at `per_second` tokens
//! per second; a request takes one token, and a request finding the bucket
//! empty is answered `TryLater` by the event loop. The limiter owns only its
//! buckets; time is passed in so the arithmetic is testable without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use libp2p::PeerId;

use super::RateLimit;

/// Buckets kept before idle ones are pruned; bounds memory against a flood
/// of fresh PeerIds (which are free to create).
const PRUNE_ABOVE: usize = 4096;

/// Token buckets, one per key (a PeerId unless said otherwise).
#[derive(Debug)]
pub(crate) struct RateLimiter<K = PeerId> {
    per_second: f64,
    capacity: f64,
    buckets: HashMap<K, Bucket>,
    /// Size at which the next prune runs; doubles when pruning frees little,
    /// so that pruning stays amortised O(1) per request.
    prune_at: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// A limiter for `limit`; `per_second == 0` disables it, and a burst
    /// below 1 is raised to 1 so that a limited peer can send at all.
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            per_second: f64::from(limit.per_second),
            capacity: f64::from(limit.burst.max(1)),
            buckets: HashMap::new(),
            prune_at: PRUNE_ABOVE,
        }
    }

    /// Takes one token from `peer`'s bucket at time `now`; false when empty.
    pub(crate) fn allow(&mut self, peer: K, now: Instant) -> bool {
        if self.per_second <= 0.0 {
            return true;
        }
        if self.buckets.len() >= self.prune_at && !self.buckets.contains_key(&peer) {
            self.prune(now);
            self.prune_at = PRUNE_ABOVE.max(self.buckets.len().saturating_mul(2));
        }
        let capacity = self.capacity;
        let per_second = self.per_second;
        let bucket = self.buckets.entry(peer).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        // Never move backwards: a later call with an earlier `now` must not
        // be credited the same interval twice.
        bucket.updated = bucket.updated.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets buckets that would be full by `now`: a fresh bucket is the
    /// same thing, so nothing is lost.
    fn prune(&mut self, now: Instant) {
        let (capacity, per_second) = (self.capacity, self.per_second);
        self.buckets.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * per_second < capacity
        });
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimit { per_second, burst })
    }

    #[test]
    fn burst_then_refill() {
        let mut limiter = limiter(2, 3);
        let peer = PeerId::random();
        let start = Instant::now();
        for n in 0..3 {
            assert!(limiter.allow(peer, start), "request {n} of the burst");
        }
        assert!(!limiter.allow(peer, start), "the burst is spent");
        // Half a second at 2/s refills one token, and only one.
        let later = start + Duration::from_millis(500);
        assert!(limiter.allow(peer, later));
        assert!(!limiter.allow(peer, later));
        // A long pause refills up to the burst, not beyond.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.allow(peer, much_later));
        }
        assert!(!limiter.allow(peer, much_later));
    }

    #[test]
    fn peers_have_separate_buckets() {
        let mut limiter = limiter(1, 1);
        let (a, b) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        assert!(limiter.allow(a, now));
        assert!(!limiter.allow(a, now));
        assert!(limiter.allow(b, now));
    }

    #[test]
    fn zero_per_second_disables_the_limit() {
        let mut limiter = limiter(0, 0);
        let peer = PeerId::random();
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.allow(peer, now)));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn zero_burst_still_allows_one() {
        let mut limiter = limiter(1, 0);
        let peer = PeerId::random();
        let now = Instant::now();
        assert!(limiter.allow(peer, now));
        assert!(!limiter.allow(peer, now));
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let mut limiter = limiter(10, 1);
        let start = Instant::now();
        for _ in 0..PRUNE_ABOVE {
            assert!(limiter.allow(PeerId::random(), start));
        }
        assert_eq!(limiter.tracked(), PRUNE_ABOVE);
        let later = start + Duration::from_secs(1);
        assert!(limiter.allow(PeerId::random(), later));
        assert_eq!(limiter.tracked(), 1, "refilled buckets were forgotten");
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let mut limiter = limiter(1, 1);
        let peer = PeerId::random();
        let now = Instant::now() + Duration::from_secs(10);
        assert!(limiter.allow(peer, now));
        assert!(!limiter.allow(peer, now - Duration::from_secs(5)));
        assert!(!limiter.allow(peer, now), "no interval is credited twice");
    }
}

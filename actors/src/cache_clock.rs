//! The prompt cache's clock: when a session's cached prefix goes cold.
//!
//! Anthropic keeps a cached prefix for its TTL (5 minutes, or an hour),
//! counted from the *start* of the last request that read or wrote it. A
//! session remembers that start, the TTL it asked for and how many tokens
//! are cached, and so knows — without asking anyone — until when its cache
//! is warm, and what letting it go cold would cost.
//!
//! [`TimeScale`] divides every cache duration panel uses (TTLs, the
//! keep-warm lead and silence cap), so tests and benchmarks can play a
//! five-minute TTL in a fraction of a second against a mock scaled the same
//! way. It is a testing aid: a real provider's TTL does not shrink.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::event::{CacheTtl, Timestamp, Usage};

/// Divides cache durations by a factor (1 in real use).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale(f64);

impl TimeScale {
    pub const REAL: Self = Self(1.0);

    /// `factor` ≥ 1 speeds time up; anything not a positive number is taken as 1.
    pub fn new(factor: f64) -> Self {
        Self(if factor.is_finite() && factor > 0.0 { factor } else { 1.0 })
    }

    pub fn shrink(self, d: Duration) -> Duration {
        d.div_f64(self.0)
    }

    pub fn factor(self) -> f64 {
        self.0
    }
}

impl Default for TimeScale {
    fn default() -> Self {
        Self::REAL
    }
}

/// The cache state of a session, as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheState {
    /// The TTL in (scaled) seconds; `None` for a cache that does not expire.
    pub ttl_s: Option<f64>,
    /// When the cached prefix goes cold; `None` when it does not expire or nothing is cached.
    pub warm_until: Option<Timestamp>,
    /// Tokens in the cached prefix.
    pub prefix_tokens: u64,
    pub warm: bool,
    /// Seconds of warmth left when this was reported: a browser counts down
    /// from it, whatever its own clock says.
    pub remaining_s: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct CacheClock {
    ttl: Option<CacheTtl>,
    scale: TimeScale,
    /// When the last request that read or wrote the prefix started.
    used: Option<(Instant, Timestamp)>,
    prefix_tokens: u64,
}

impl CacheClock {
    /// A clock for a cache with `ttl` (`None`: one that lasts until evicted).
    pub fn new(ttl: Option<CacheTtl>, scale: TimeScale) -> Self {
        Self { ttl, scale, used: None, prefix_tokens: 0 }
    }

    /// A request that started at `started` read or wrote the cache as `usage` says.
    pub fn used(&mut self, started: (Instant, Timestamp), usage: &Usage) {
        let cached = usage.cache_read + usage.cache_write;
        if cached > 0 {
            self.used = Some(started);
            self.prefix_tokens = cached;
        }
    }

    /// The clock as a log recorded it: a request that wrote the prefix
    /// ended its warmth at `warm_until` (a replay knows no `Instant`, so it
    /// places the start by wall-clock time).
    pub fn restore(&mut self, warm_until: Option<Timestamp>, prefix_tokens: u64) {
        let (Some(until), Some(ttl)) = (warm_until, self.ttl()) else { return };
        let left = (until.0 - chrono::Utc::now()).to_std().unwrap_or_default();
        let since = ttl.saturating_sub(left);
        let started = Instant::now().checked_sub(since).unwrap_or_else(Instant::now);
        let ts = until.0 - chrono::Duration::from_std(ttl).unwrap_or_default();
        self.used = Some((started, Timestamp(ts)));
        self.prefix_tokens = prefix_tokens;
    }

    /// The TTL, scaled.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl.map(|t| self.scale.shrink(t.duration()))
    }

    pub fn cache_ttl(&self) -> Option<CacheTtl> {
        self.ttl
    }

    pub fn scale(&self) -> TimeScale {
        self.scale
    }

    pub fn prefix_tokens(&self) -> u64 {
        self.prefix_tokens
    }

    /// How long the cache stays warm from `now`; `None` if it does not expire.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        let ttl = self.ttl()?;
        Some(self.used.map_or(Duration::ZERO, |(at, _)| (at + ttl).saturating_duration_since(now)))
    }

    pub fn warm_until(&self) -> Option<Timestamp> {
        let ttl = chrono::Duration::from_std(self.ttl()?).ok()?;
        self.used.map(|(_, ts)| Timestamp::at(ts.0 + ttl))
    }

    pub fn warm(&self, now: Instant) -> bool {
        self.prefix_tokens > 0 && self.remaining(now).is_none_or(|left| !left.is_zero())
    }

    pub fn state(&self, now: Instant) -> CacheState {
        CacheState {
            ttl_s: self.ttl().map(|t| t.as_secs_f64()),
            warm_until: self.warm_until(),
            prefix_tokens: self.prefix_tokens,
            warm: self.warm(now),
            remaining_s: self.remaining(now).filter(|_| self.prefix_tokens > 0).map(|d| d.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_warm_for_the_scaled_ttl_from_the_start_of_the_last_request() {
        let mut clock = CacheClock::new(Some(CacheTtl::FiveMinutes), TimeScale::new(100.0));
        let t0 = Instant::now();
        assert!(!clock.warm(t0), "nothing cached yet");
        clock.used((t0, Timestamp::now()), &Usage { cache_write: 2000, ..Usage::default() });
        assert_eq!(clock.ttl(), Some(Duration::from_secs(3)));
        assert!(clock.warm(t0 + Duration::from_millis(2900)));
        assert!(!clock.warm(t0 + Duration::from_millis(3001)));
        assert_eq!(clock.prefix_tokens(), 2000);
        // A request below the cache's minimum caches nothing and leaves the clock alone.
        clock.used((t0 + Duration::from_secs(1), Timestamp::now()), &Usage { input: 10, ..Usage::default() });
        assert_eq!(clock.remaining(t0), Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_cache_without_a_ttl_never_counts_down() {
        let mut clock = CacheClock::new(None, TimeScale::REAL);
        clock.used((Instant::now(), Timestamp::now()), &Usage { cache_read: 500, ..Usage::default() });
        let state = clock.state(Instant::now() + Duration::from_secs(86_400));
        assert_eq!((state.ttl_s, state.warm_until, state.warm), (None, None, true));
    }
}

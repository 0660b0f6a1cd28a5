//! A simulation of a provider's prompt-prefix cache, after the Anthropic
//! rules in `shared/reference/llm-wire.md` §4: entries are written only at
//! breakpoints, as a cumulative hash of the prefix ending at that block; a
//! request reads the longest prefix that a prior request wrote, looking back
//! up to 20 blocks from each breakpoint; prefixes shorter than the model's
//! minimum are not cached at all; a hit refreshes the entry's TTL.
//!
//! The rehearsal engine uses it so its cost meter behaves like a real
//! provider's, and the test suite's Anthropic mock uses the same rules.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How far back from a breakpoint the cache looks for an earlier entry.
pub const LOOKBACK_BLOCKS: usize = 20;

/// A rough token count: about four bytes of English per token.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// One block of a request as the cache sees it.
#[derive(Debug, Clone, Copy)]
pub struct CacheBlock<'a> {
    pub text: &'a str,
    pub tokens: u64,
    pub breakpoint: bool,
}

/// How a request's input tokens split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCharge {
    pub input: u64,
    pub cache_write: u64,
    pub cache_read: u64,
}

#[derive(Debug)]
pub struct PrefixCache {
    entries: HashMap<[u8; 32], Instant>,
    min_tokens: u64,
}

impl PrefixCache {
    pub fn new(min_tokens: u64) -> Self {
        Self { entries: HashMap::new(), min_tokens }
    }

    /// Charges one request made at `now`, whose marks ask for `ttl`, and
    /// records what it writes; a hit refreshes the entry for `ttl` too.
    pub fn charge(&mut self, blocks: &[CacheBlock<'_>], now: Instant, ttl: Duration) -> CacheCharge {
        let mut hashes = Vec::with_capacity(blocks.len());
        let mut cumulative = Vec::with_capacity(blocks.len());
        let mut h = Sha256::new();
        let mut tokens = 0;
        for b in blocks {
            h.update((b.text.len() as u64).to_le_bytes());
            h.update(b.text.as_bytes());
            hashes.push(<[u8; 32]>::from(h.clone().finalize()));
            tokens += b.tokens;
            cumulative.push(tokens);
        }
        let total = tokens;
        let Some(last) = blocks.iter().rposition(|b| b.breakpoint) else {
            return CacheCharge { input: total, ..CacheCharge::default() };
        };
        if cumulative[last] < self.min_tokens {
            return CacheCharge { input: total, ..CacheCharge::default() };
        }
        let live =
            |at: usize, entries: &HashMap<[u8; 32], Instant>| entries.get(&hashes[at]).is_some_and(|&exp| exp > now);
        let hit = blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.breakpoint)
            .filter_map(|(bp, _)| (bp.saturating_sub(LOOKBACK_BLOCKS - 1)..=bp).rev().find(|&j| live(j, &self.entries)))
            .max();
        let read = hit.map_or(0, |j| cumulative[j]);
        if let Some(j) = hit {
            self.entries.insert(hashes[j], now + ttl);
        }
        for (i, b) in blocks.iter().enumerate() {
            if b.breakpoint && cumulative[i] >= self.min_tokens && cumulative[i] > read {
                self.entries.insert(hashes[i], now + ttl);
            }
        }
        if self.entries.len() > 100_000 {
            self.entries.retain(|_, exp| *exp > now);
        }
        CacheCharge { input: total - cumulative[last], cache_write: cumulative[last] - read, cache_read: read }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks<'a>(texts: &[&'a str]) -> Vec<CacheBlock<'a>> {
        let last = texts.len() - 1;
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| CacheBlock { text: t, tokens: 100, breakpoint: i == 0 || i == last })
            .collect()
    }

    #[test]
    fn a_growing_conversation_reads_what_the_previous_turn_wrote() {
        let mut cache = PrefixCache::new(150);
        let now = Instant::now();
        let ttl = Duration::from_secs(300);
        let first = cache.charge(&blocks(&["head", "u1"]), now, ttl);
        assert_eq!(first, CacheCharge { input: 0, cache_write: 200, cache_read: 0 });
        let second = cache.charge(&blocks(&["head", "u1", "a1", "u2"]), now, ttl);
        assert_eq!(second, CacheCharge { input: 0, cache_write: 200, cache_read: 200 });
    }

    #[test]
    fn short_prompts_are_not_cached_and_entries_expire() {
        let mut cache = PrefixCache::new(1000);
        let now = Instant::now();
        let ttl = Duration::from_secs(300);
        let c = cache.charge(&blocks(&["head", "u1"]), now, ttl);
        assert_eq!(c, CacheCharge { input: 200, cache_write: 0, cache_read: 0 });
        let mut cache = PrefixCache::new(100);
        cache.charge(&blocks(&["head", "u1"]), now, ttl);
        let later = cache.charge(&blocks(&["head", "u1", "a1", "u2"]), now + Duration::from_secs(301), ttl);
        assert_eq!(later.cache_read, 0);
    }
}

//! Prices per model, and what one call cost.
//!
//! The table is a data file (`roster/pricing.toml`) the user can edit; a copy
//! is compiled in so panel prices correctly even without the file. Dated model
//! ids (`claude-haiku-4-5-20251001`) fall back to their dateless alias.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

use crate::event::{CacheTtl, Cost};

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub cache_read: f64,
    pub output: f64,
    /// The model's input window, in tokens, when the provider does not say.
    #[serde(default)]
    pub context_tokens: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    models: BTreeMap<String, Price>,
}

const EMBEDDED: &str = include_str!("../../roster/pricing.toml");

impl Price {
    /// USD per million tokens to write the cache for `ttl`.
    pub fn cache_write(&self, ttl: CacheTtl) -> f64 {
        match ttl {
            CacheTtl::FiveMinutes => self.cache_write_5m,
            CacheTtl::OneHour => self.cache_write_1h,
        }
    }
}

impl Pricing {
    /// What writing `tokens` of cached prefix again costs (USD, rounded to
    /// a millionth), when the model is priced: the price of a cold cache.
    pub fn rewrite_usd(&self, model: &str, ttl: CacheTtl, tokens: u64) -> Option<f64> {
        let usd = self.price(model)?.cache_write(ttl) * tokens as f64 / 1e6;
        Some((usd * 1e6).round() / 1e6)
    }

    /// The table compiled into panel.
    pub fn embedded() -> Self {
        toml::from_str(EMBEDDED).unwrap_or_default()
    }

    /// Reads the table at `path`, or the embedded one if there is no file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("bad pricing table {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::embedded()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.models.get(model) {
            return Some(*p);
        }
        // `claude-haiku-4-5-20251001` → `claude-haiku-4-5`.
        let (alias, date) = model.rsplit_once('-')?;
        (date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit())).then(|| self.models.get(alias).copied()).flatten()
    }

    /// The input window of `model`, as the table records it.
    pub fn context_tokens(&self, model: &str) -> Option<u64> {
        self.price(model)?.context_tokens
    }

    /// The models the table prices, by id.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// The USD price of `cost`'s tokens, or `None` for an unknown model.
    pub fn usd(&self, cost: &Cost) -> Option<f64> {
        let p = self.price(&cost.model)?;
        let write_5m = cost.cache_write.saturating_sub(cost.cache_write_1h);
        let micro = cost.input as f64 * p.input
            + write_5m as f64 * p.cache_write_5m
            + cost.cache_write_1h as f64 * p.cache_write_1h
            + cost.cache_read as f64 * p.cache_read
            + cost.output as f64 * p.output;
        Some(micro / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_parses_and_prices_a_call() {
        let pricing = Pricing::embedded();
        let cost = Cost {
            model: "claude-sonnet-5".into(),
            input: 1_000_000,
            cache_write: 1_000_000,
            cache_write_1h: 0,
            cache_read: 1_000_000,
            output: 1_000_000,
            ..Cost::default()
        };
        let usd = pricing.usd(&cost).unwrap();
        assert!((usd - (2.0 + 2.5 + 0.2 + 10.0)).abs() < 1e-9, "{usd}");
    }

    #[test]
    fn dated_ids_fall_back_to_their_alias_and_unknown_models_have_no_price() {
        let pricing = Pricing::embedded();
        assert!(pricing.price("claude-haiku-4-5-20251001").is_some());
        assert!(pricing.price("gpt-oss-20b").is_none());
    }
}

//! The providers a server offers, and the models each one has.
//!
//! Every provider whose settings are present is available side by side (the
//! rehearsal engine always is). Its models: for Anthropic, the Claude models
//! the pricing table knows plus whatever its models endpoint lists when it
//! answers; for an OpenAI-compatible server, what its `GET /v1/models`
//! lists; for the rehearsal engine, itself. A session picks one provider
//! and one of its models when it opens, and keeps them.

use serde::Serialize;

use crate::event::KeepWarm;
use crate::pricing::Pricing;
use crate::provider::{CacheTtl, Dialect, ModelFacts, ProviderFacts, ProviderInfo};

/// How the OpenAI-compatible provider's turns are held to the format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Constrain {
    /// Whatever the server identifies itself as (llama.cpp, vLLM); else none.
    #[default]
    Auto,
    Gbnf,
    Vllm,
    Off,
}

impl Constrain {
    /// The grammar dialect to send to a server whose facts are `facts`.
    pub fn dialect(self, facts: Option<&ProviderFacts>) -> Option<Dialect> {
        match self {
            Self::Auto => facts.and_then(|f| f.dialect),
            Self::Gbnf => Some(Dialect::Gbnf),
            Self::Vllm => Some(Dialect::Vllm),
            Self::Off => None,
        }
    }
}

/// One provider, as `GET /api/providers` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderListing {
    pub name: String,
    pub default_model: String,
    pub offline: bool,
    /// Whether its prompt cache expires (so a TTL and keep-warm apply).
    pub cache_expires: bool,
    pub cache_ttls: Vec<CacheTtl>,
    pub keep_warm: Vec<KeepWarm>,
    pub models: Vec<ModelFacts>,
    /// How its turns are held to the format, when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Dialect>,
}

impl ProviderListing {
    pub fn new(info: &ProviderInfo, facts: Option<&ProviderFacts>, pricing: &Pricing, constrain: Constrain) -> Self {
        let mut models: Vec<ModelFacts> = facts.map(|f| f.models.clone()).unwrap_or_default();
        let mut add = |id: &str| {
            if !models.iter().any(|m| m.id == id) {
                models.push(ModelFacts { id: id.to_owned(), window: pricing.context_tokens(id) });
            }
        };
        add(&info.model);
        if info.name == "anthropic" {
            for id in pricing.models().filter(|id| id.starts_with("claude-")) {
                add(id);
            }
        }
        let (cache_ttls, keep_warm) = if info.cache_expires {
            (vec![CacheTtl::FiveMinutes, CacheTtl::OneHour], vec![KeepWarm::Off, KeepWarm::Auto, KeepWarm::Always])
        } else {
            (Vec::new(), vec![KeepWarm::Off])
        };
        let constraint = if info.name == "openai" { constrain.dialect(facts) } else { None };
        Self {
            name: info.name.clone(),
            default_model: info.model.clone(),
            offline: info.offline,
            cache_expires: info.cache_expires,
            cache_ttls,
            keep_warm,
            models,
            constraint,
        }
    }

    pub fn offers(&self, model: &str) -> bool {
        self.models.iter().any(|m| m.id == model)
    }
}

//! Which model providers a server offers, from its flags and environment.
//!
//! Every provider whose settings are present is offered, side by side: the
//! rehearsal engine always, Anthropic when `ANTHROPIC_API_KEY` is set, an
//! OpenAI-compatible server when `OPENAI_BASE_URL` is. One of them is the
//! default a session gets when it does not choose (`--provider`, or
//! Anthropic, else OpenAI, else the rehearsal engine). API keys come only
//! from the environment, never from a flag, so they stay out of `ps` and
//! shell history.

use std::time::Duration;

use panel_actors::provider::anthropic::AnthropicConfig;
use panel_actors::provider::http::ApiKey;
use panel_actors::provider::openai::OpenAiConfig;

use super::ServeArgs;
use crate::exit::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    Anthropic,
    Openai,
    Rehearsal,
}

impl ProviderArg {
    /// The name sessions and `/api/providers` know it by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Openai => "openai",
            Self::Rehearsal => "rehearsal",
        }
    }
}

/// A model provider, fully configured.
#[derive(Debug, Clone)]
pub enum ProviderChoice {
    Rehearsal,
    Anthropic(AnthropicConfig),
    OpenAi(OpenAiConfig),
}

impl ProviderChoice {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rehearsal => "rehearsal",
            Self::Anthropic(_) => "anthropic",
            Self::OpenAi(_) => "openai",
        }
    }
}

/// How long a provider may take to start answering (the response head).
const HEAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a streaming answer may stay silent before it counts as stalled.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

impl ServeArgs {
    /// The default provider, configured from the arguments and `env` (the
    /// process environment, in `main`).
    pub fn provider(&self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<ProviderChoice> {
        Ok(self.providers(env)?.0)
    }

    /// The default provider, then every other one the environment configures.
    pub fn providers(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<(ProviderChoice, Vec<ProviderChoice>)> {
        let var = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let chosen = self.provider.unwrap_or(if var("ANTHROPIC_API_KEY").is_some() {
            ProviderArg::Anthropic
        } else if var("OPENAI_BASE_URL").is_some() {
            ProviderArg::Openai
        } else {
            ProviderArg::Rehearsal
        });
        // PANEL_MODEL names the default provider's model; the other one takes its own.
        let model_for = |which: ProviderArg, own: &str| {
            if which == chosen { self.model.clone() } else { var(own) }
        };
        let anthropic = |required: bool| -> anyhow::Result<Option<ProviderChoice>> {
            let Some(key) = var("ANTHROPIC_API_KEY") else {
                if required {
                    return Err(Exit::Usage.error("the anthropic provider needs ANTHROPIC_API_KEY in the environment"));
                }
                return Ok(None);
            };
            Ok(Some(ProviderChoice::Anthropic(AnthropicConfig {
                base_url: var("ANTHROPIC_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".into()),
                api_key: ApiKey::new(key),
                model: model_for(ProviderArg::Anthropic, "PANEL_ANTHROPIC_MODEL")
                    .unwrap_or_else(|| "claude-sonnet-5".into()),
                head_timeout: HEAD_TIMEOUT,
                idle_timeout: IDLE_TIMEOUT,
            })))
        };
        let openai = |required: bool| -> anyhow::Result<Option<ProviderChoice>> {
            let base_url = match var("OPENAI_BASE_URL") {
                Some(url) => url,
                None if required => "https://api.openai.com/v1".into(),
                None => return Ok(None),
            };
            let key = var("OPENAI_API_KEY");
            if key.is_none() && base_url.contains("api.openai.com") {
                return Err(Exit::Usage.error(format!(
                    "the openai provider needs OPENAI_API_KEY for {base_url} (set OPENAI_BASE_URL for a local server)"
                )));
            }
            let model = model_for(ProviderArg::Openai, "PANEL_OPENAI_MODEL");
            let Some(model) = model.or_else(|| (!required).then(|| "default".to_owned())) else {
                return Err(Exit::Usage.error("the openai provider needs a model: set PANEL_MODEL or --model"));
            };
            Ok(Some(ProviderChoice::OpenAi(OpenAiConfig {
                base_url,
                api_key: key.map(ApiKey::new),
                model,
                head_timeout: HEAD_TIMEOUT,
                idle_timeout: IDLE_TIMEOUT,
            })))
        };
        let default = match chosen {
            ProviderArg::Rehearsal => ProviderChoice::Rehearsal,
            ProviderArg::Anthropic => anthropic(true)?.unwrap_or(ProviderChoice::Rehearsal),
            ProviderArg::Openai => openai(true)?.unwrap_or(ProviderChoice::Rehearsal),
        };
        let mut others = Vec::new();
        if chosen != ProviderArg::Anthropic {
            others.extend(anthropic(false)?);
        }
        if chosen != ProviderArg::Openai {
            others.extend(openai(false)?);
        }
        if chosen != ProviderArg::Rehearsal {
            others.push(ProviderChoice::Rehearsal);
        }
        Ok((default, others))
    }
}

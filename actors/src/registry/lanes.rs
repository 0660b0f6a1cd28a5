//! Lanes: the arbiters (threads with an event loop each) that sessions and
//! gateways run on, one per core, each with its own model client.
//!
//! Why: with every actor on one thread, one busy session — a long parse, a
//! fan-out to thousands of subscribers — stalls every other session's
//! stream. A session and its gateway always land on the same lane (chosen
//! from the session id), so a restarted actor finds its gateway next door,
//! and the lane's model client streams its completions on that thread too
//! (the HTTP client is single-threaded, so each lane builds its own).

use std::hash::{Hash, Hasher};

use actix::prelude::*;

use crate::id::SessionId;
use crate::model_client::{ModelClient, RetryPolicy};
use crate::provider::ProviderFactory;

#[derive(Clone)]
pub struct Lane {
    pub arbiter: ArbiterHandle,
    pub model: Addr<ModelClient>,
}

/// The lanes, and the arbiters behind them (kept so they can be stopped).
pub struct Lanes {
    lanes: Vec<Lane>,
    arbiters: Vec<Arbiter>,
}

impl Lanes {
    /// `n` new arbiters, each with a model client able to reach every provider.
    pub fn start(n: usize, providers: &[(String, ProviderFactory)], policy: RetryPolicy) -> Self {
        let mut lanes = Vec::new();
        let mut arbiters = Vec::new();
        for _ in 0..n.max(1) {
            let arbiter = Arbiter::new();
            let handle = arbiter.handle();
            let factories = providers.to_vec();
            let model = ModelClient::start_in_arbiter(&handle, move |_| {
                ModelClient::with_providers(factories.iter().map(|(name, build)| (name.clone(), build())), policy)
            });
            lanes.push(Lane { arbiter: handle, model });
            arbiters.push(arbiter);
        }
        Self { lanes, arbiters }
    }

    /// One lane on the current arbiter, with a model client already running:
    /// for tools and tests that run everything on one thread.
    pub fn local(model: Addr<ModelClient>) -> Self {
        Self { lanes: vec![Lane { arbiter: Arbiter::current(), model }], arbiters: Vec::new() }
    }

    /// The lane a session (and its gateway) runs on.
    pub fn pick(&self, id: &SessionId) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        (h.finish() % self.lanes.len() as u64) as usize
    }

    pub fn get(&self, lane: usize) -> &Lane {
        &self.lanes[lane % self.lanes.len()]
    }

    pub fn len(&self) -> usize {
        self.lanes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

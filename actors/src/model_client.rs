//! The model-client actor: streams completions for every session.
//!
//! A session sends [`Complete`] with an id it chose and a [`Recipient`] to
//! stream into; the client forwards each piece as a [`StreamEvent`], then
//! `Done` with the final usage, or `Failed`. Forwarding uses `send().await`,
//! so a busy session slows only its own stream, and a session that has gone
//! away (its mailbox closed) cancels its stream at the next piece. [`Cancel`]
//! stops a stream at once, e.g. when a turn is aborted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::prelude::*;
use futures_util::StreamExt as _;

use crate::provider::{CompletionRequest, ModelError, ModelEvent, Provider, ProviderInfo, Usage};

/// Names one stream, unique in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId(u64);

impl StreamId {
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Text(String),
    Done(Usage),
    Failed(ModelError),
}

/// One piece of a stream, delivered to the session that asked for it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StreamEvent {
    pub stream: StreamId,
    pub item: StreamItem,
}

/// Start streaming a completion into `sink`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Complete {
    pub stream: StreamId,
    pub request: CompletionRequest,
    pub sink: Recipient<StreamEvent>,
}

/// Stop a stream; nothing more is delivered for it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Cancel(pub StreamId);

/// Which provider and model answer.
#[derive(Debug, Message)]
#[rtype(result = "ProviderInfo")]
pub struct Describe;

pub struct ModelClient {
    provider: Box<dyn Provider>,
    streams: HashMap<StreamId, SpawnHandle>,
}

impl ModelClient {
    pub fn new(provider: Box<dyn Provider>) -> Self {
        Self { provider, streams: HashMap::new() }
    }
}

impl Actor for ModelClient {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Every session talks to this one actor; a burst of turn starts must
        // not bounce off the default 16-slot mailbox.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<Complete> for ModelClient {
    type Result = ();

    fn handle(&mut self, msg: Complete, ctx: &mut Self::Context) {
        let Complete { stream: id, request, sink } = msg;
        let mut stream = self.provider.stream(request);
        let pump = async move {
            let mut usage = Usage::default();
            while let Some(next) = stream.next().await {
                let item = match next {
                    Ok(ModelEvent::Text(text)) if text.is_empty() => continue,
                    Ok(ModelEvent::Text(text)) => StreamItem::Text(text),
                    Ok(ModelEvent::Usage(u)) => {
                        usage = u;
                        continue;
                    }
                    Err(e) => StreamItem::Failed(e),
                };
                let failed = matches!(item, StreamItem::Failed(_));
                if sink.send(StreamEvent { stream: id, item }).await.is_err() || failed {
                    // The session is gone, or the stream is over.
                    return;
                }
            }
            let _ = sink.send(StreamEvent { stream: id, item: StreamItem::Done(usage) }).await;
        };
        let handle = ctx.spawn(pump.into_actor(self).map(move |(), act, _| {
            act.streams.remove(&id);
        }));
        self.streams.insert(id, handle);
    }
}

impl Handler<Cancel> for ModelClient {
    type Result = ();

    fn handle(&mut self, Cancel(id): Cancel, ctx: &mut Self::Context) {
        if let Some(handle) = self.streams.remove(&id) {
            ctx.cancel_future(handle);
        }
    }
}

impl Handler<Describe> for ModelClient {
    type Result = MessageResult<Describe>;

    fn handle(&mut self, _: Describe, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.provider.info())
    }
}

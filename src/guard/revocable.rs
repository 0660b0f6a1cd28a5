//! A response body that ends when its invite is revoked.
//!
//! The guard wraps the answer to every request an invite admitted, so a
//! stream any route opens for it — the session's SSE, the multiplexed
//! stream, a replay's, and whatever stream is added later — ends promptly
//! when the invite is revoked, without the route knowing about invites.
//! Only streams are cut: a sized body (a file, a JSON answer) is already
//! bounded, and cutting it would break its framing. A WebSocket's `101`
//! body is left alone: the socket route closes it itself with a close
//! frame that says why (see `routes/ws.rs`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;

use crate::invite::Grant;

pub struct Revocable<B> {
    body: Pin<Box<B>>,
    /// Resolves when the invite is revoked; `None` when nothing is to be cut.
    revoked: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

impl<B: MessageBody> Revocable<B> {
    /// `body`, cut short when `grant`'s invite is revoked, if it is a
    /// stream and `cut` (not an upgrade).
    pub fn new(body: B, grant: Grant, cut: bool) -> Self {
        let streaming = matches!(body.size(), BodySize::Stream);
        let revoked = (cut && streaming).then(|| {
            let wait: Pin<Box<dyn Future<Output = ()>>> = Box::pin(async move { grant.revoked().await });
            wait
        });
        Self { body: Box::pin(body), revoked }
    }
}

impl<B: MessageBody> MessageBody for Revocable<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if let Some(revoked) = self.revoked.as_mut()
            && revoked.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        self.body.as_mut().poll_next(cx)
    }
}

//! One completion gathered whole: the recap request is not a turn, has no
//! session to stream into, and is wanted as one text. A throwaway actor is
//! the sink the model client streams into (so the request gets the same
//! retries, timeouts and limits as a turn), and it stops once it has
//! answered.

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::model_client::{Complete, ModelClient, StreamEvent, StreamId, StreamItem};
use crate::provider::{CompletionRequest, ModelError, ResponseMeta, Usage};

/// A completed answer: its text, usage, and what the server said about it.
pub type Collected = (String, Usage, ResponseMeta);

struct Collector {
    text: String,
    answer: Option<oneshot::Sender<Result<Collected, ModelError>>>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<StreamEvent> for Collector {
    type Result = ();

    fn handle(&mut self, msg: StreamEvent, ctx: &mut Self::Context) {
        let done = match msg.item {
            StreamItem::Text(t) => {
                self.text.push_str(&t);
                return;
            }
            StreamItem::Done(usage, meta) => Ok((std::mem::take(&mut self.text), usage, meta)),
            StreamItem::Failed(e) => Err(e),
        };
        if let Some(answer) = self.answer.take() {
            let _ = answer.send(done);
        }
        ctx.stop();
    }
}

/// Asks `provider` (through `model`) for `request`, and waits for all of it.
pub async fn complete(
    model: &Addr<ModelClient>,
    provider: String,
    request: CompletionRequest,
) -> Result<Collected, ModelError> {
    let (tx, rx) = oneshot::channel();
    let sink = Collector { text: String::new(), answer: Some(tx) }.start().recipient();
    let gone = || ModelError::new("model-unavailable", "the model client went away", false);
    model.send(Complete { stream: StreamId::next(), provider, request, sink }).await.map_err(|_| gone())?;
    rx.await.unwrap_or_else(|_| Err(gone()))
}

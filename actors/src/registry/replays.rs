//! `StartReplay`: one turn of a session played again (see
//! [`crate::counterfactual`]). The registry's part is what only it knows:
//! that the session exists, the providers on offer with their models, and
//! the lane — model client and thread — the session runs on, so a replay
//! reads the same provider's cache the session's turns wrote. The session's
//! actor is never asked: a replay reads its log, open or closed.

use actix::prelude::*;

use super::{Registry, RegistryError};
use crate::counterfactual::book::Begin;
use crate::counterfactual::summary::ReplayListing;
use crate::counterfactual::{Offer, ReplayRequest};
use crate::id::SessionId;

/// Play turn `ask.turn` of session `id` again.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ReplayListing, RegistryError>")]
pub struct StartReplay {
    pub id: SessionId,
    pub ask: ReplayRequest,
}

impl Handler<StartReplay> for Registry {
    type Result = ResponseFuture<Result<ReplayListing, RegistryError>>;

    fn handle(&mut self, msg: StartReplay, _: &mut Self::Context) -> Self::Result {
        let StartReplay { id, ask } = msg;
        if !self.directory.contains(&id) {
            return Box::pin(std::future::ready(Err(RegistryError::NotFound(id))));
        }
        let Some(book) = self.replays.clone() else {
            let message = "this server plays no replays".to_owned();
            return Box::pin(std::future::ready(Err(RegistryError::BadRequest { code: "no-replays", message })));
        };
        let lane = self.lanes.get(self.lanes.pick(&id));
        let (model, arbiter) = (lane.model.clone(), lane.arbiter.clone());
        let listings = self.listings();
        Box::pin(async move {
            let offers = listings
                .await
                .into_iter()
                .map(|l| Offer {
                    name: l.name,
                    default_model: l.default_model,
                    models: l.models.into_iter().map(|m| m.id).collect(),
                    offline: l.offline,
                })
                .collect();
            let begin = Begin { session: id.clone(), ask, offers, model, arbiter };
            book.send(begin).await.map_err(|_| RegistryError::Unavailable(id))?.map_err(RegistryError::Replay)
        })
    }
}

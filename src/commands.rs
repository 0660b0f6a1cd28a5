//! The commands besides `serve`: closing sessions offline, rebuilding and
//! auditing artefacts. (`export` has its own module.)

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use anyhow::Context as _;
use panel_actors::audit;
use panel_actors::event_log::LogWriter;
use panel_actors::id::SessionId;
use panel_actors::model_client::ModelClient;
use panel_actors::pricing::Pricing;
use panel_actors::provider::Provider;
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::record;
use panel_actors::roster::{Library, Roster};
use panel_actors::session::{Close, Session, SessionDeps};
use panel_actors::templates::{Renderer, Templates};

use crate::config::{AuditArgs, CloseArgs, LogsArg};

pub(crate) fn ids(raw: &[String]) -> anyhow::Result<Vec<SessionId>> {
    raw.iter().map(|s| SessionId::parse(s).map_err(anyhow::Error::from)).collect()
}

/// Closes sessions straight from their logs (for sessions no server is
/// serving: with a server running, use its close route instead).
pub fn close(args: CloseArgs) -> anyhow::Result<ExitCode> {
    let logs = args.logs.logs.clone();
    let ids = ids(&args.ids)?;
    actix::System::new().block_on(async move {
        let roster = Roster::load(&args.roster.join("characters"))?;
        let prompts = args.roster.join("prompts");
        // No turn runs while closing; the rehearsal engine only fills the slot.
        let provider = Rehearsal::load(&prompts, Duration::ZERO)?;
        let renderer = Arc::new(Renderer::new(Templates::load(&prompts)?)?);
        let info = provider.info();
        let model = ModelClient::new(Box::new(provider)).start();
        let deps = SessionDeps {
            pricing: Arc::new(Pricing::load(&args.roster.join("pricing.toml"))?),
            ..SessionDeps::new(logs.clone(), Library::fixed(roster), renderer, model, info, LogWriter::start(1, None))
        };
        for id in ids {
            let session =
                Session::open(deps.clone(), id.clone(), None).with_context(|| format!("cannot open session {id}"))?;
            if session.info().closed {
                println!("{id}: already closed");
            } else {
                let totals = session.start().send(Close).await??;
                println!("{id}: closed after {} turns, ${:.4}", totals.turns, totals.usd);
            }
            record::write_session(&logs, &id)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn rebuild(args: LogsArg) -> anyhow::Result<ExitCode> {
    let done = record::rebuild(&args.logs)?;
    println!("rebuilt {} closed session(s) and {}", done.sessions.len(), args.logs.join("index.json").display());
    for (id, problem) in &done.problems {
        eprintln!("skipped {id}: {problem}");
    }
    Ok(if done.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let ids = if args.all || args.ids.is_empty() { record::session_ids(&args.logs.logs) } else { ids(&args.ids)? };
    let mut failed = 0;
    for id in &ids {
        let findings = audit::audit(&args.logs.logs, id);
        if findings.is_empty() {
            println!("ok    {id}");
        } else {
            failed += 1;
            println!("FAIL  {id}");
            for f in findings {
                println!("      {f}");
            }
        }
    }
    println!("{} session(s) audited, {failed} with problems", ids.len());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

//! `panel replay ID --turn N`: one turn played again with its history held
//! fixed (see `panel_actors::counterfactual`), on a running server or an
//! in-process one over `--logs`, then the summary of that turn against
//! every sample of its replays — the original lead against each sample's,
//! per character how often they spoke or passed, and how far their solo
//! answer is from what they said with the others.
//!
//! The command only asks and reads: the replay is the server's, recorded
//! beside the session, so what is printed is what the API and the viewer
//! show.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use panel_actors::counterfactual::summary::{Said, Summary};
use panel_actors::id::SessionId;
use serde_json::{Value, json};

use crate::config::ReplayArgs;
use crate::run::connect;

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let id = SessionId::parse(&args.id)?;
    actix_web::rt::System::new().block_on(async move {
        let (api, local) = connect(args.url.as_deref(), &args.serve).await?;
        let outcome = ask(&api, &id, &args).await;
        if let Some(local) = local {
            local.stop().await;
        }
        let (replay, summary) = outcome?;
        let mut out = std::io::stdout().lock();
        if args.json {
            serde_json::to_writer_pretty(&mut out, &json!({ "replay": replay, "summary": summary }))?;
            writeln!(out)?;
        } else {
            print(&replay, &summary, &mut out)?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Starts the replay, follows it to its end, and reads its summary.
async fn ask(api: &crate::client::Api, id: &SessionId, args: &ReplayArgs) -> anyhow::Result<(Value, Summary)> {
    let mut body = json!({ "turn": args.turn, "mode": args.mode, "n": args.n });
    if let Some(provider) = args.serve.provider.filter(|_| args.asked.provider) {
        body["provider"] = json!(provider.name());
    }
    if let Some(model) = args.serve.model.as_ref().filter(|_| args.asked.model) {
        body["model"] = json!(model);
    }
    if let Some(depth) = args.depth {
        body["depth"] = json!(depth);
    }
    let started = api.post(&format!("/api/sessions/{id}/replay"), &body).await?;
    let rid = started["id"].as_str().context("the server named no replay")?.to_owned();
    let quiet = args.json;
    api.until(&format!("/api/sessions/{id}/replays/{rid}/events?since=0"), "replay-close", |kind, e| {
        if !quiet && kind == "turn-end" {
            eprintln!("sample {} ended", e["sample"]);
        }
    })
    .await?;
    let detail = api.get(&format!("/api/sessions/{id}/replays/{rid}")).await?;
    let summary = serde_json::from_value(detail["summary"].clone()).context("the replay's summary")?;
    Ok((detail["replay"].clone(), summary))
}

fn said(s: &Said) -> String {
    match s {
        Said::Spoke { text } => format!("spoke: {text}"),
        Said::Passed => "passed".into(),
    }
}

fn print(replay: &Value, s: &Summary, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "replay {} of turn {} · {} ×{} · {} {} · depth {} · ${:.4} (apart from the session)",
        replay["id"].as_str().unwrap_or_default(),
        s.turn,
        replay["mode"].as_str().unwrap_or_default(),
        replay["n"],
        replay["provider"].as_str().unwrap_or_default(),
        replay["model"].as_str().unwrap_or_default(),
        replay["depth"],
        replay["totals"]["usd"].as_f64().unwrap_or_default(),
    )?;
    let lead = |l: &Option<panel_actors::id::CharacterId>| l.as_ref().map_or("nobody".to_owned(), |c| c.to_string());
    writeln!(out, "original lead: {}", lead(&s.original.lead))?;
    for v in &s.samples {
        let who = v.who.as_ref().map_or(String::new(), |w| format!(" ({w} alone)"));
        let mode = v.mode.map_or("", |m| m.as_str());
        writeln!(out, "  {mode} sample {}{who}: lead {}", v.sample.unwrap_or_default(), lead(&v.lead))?;
    }
    if s.rerolls > 0 {
        writeln!(out, "rerolls keeping the original lead: {} of {}", s.same_lead, s.rerolls)?;
    }
    for c in &s.characters {
        writeln!(out, "{}:", c.character)?;
        writeln!(out, "  original {}", c.original.as_ref().map_or("silent".to_owned(), said))?;
        if c.rerolls > 0 {
            writeln!(out, "  rerolls: spoke {}, passed {}, silent {} of {}", c.spoke, c.passed, c.silent, c.rerolls)?;
        }
        for solo in &c.solo {
            writeln!(out, "  alone {}", said(solo))?;
        }
        if let Some(overlap) = c.solo_overlap {
            writeln!(out, "  word overlap, alone vs with the others: {overlap:.2}")?;
        }
    }
    Ok(())
}

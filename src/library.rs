//! `panel roster import FILE…` and `panel roster export ID`: Character
//! Cards in and out of the roster folder, without a server (a running one
//! picks the new files up by itself).

use std::process::ExitCode;

use anyhow::Context as _;
use panel_actors::cards::{self, mapping};
use panel_actors::id::CharacterId;
use panel_actors::roster::{Roster, write};

use crate::config::{CardFormat, RosterAction, RosterArgs};

pub fn roster(args: RosterArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        RosterAction::Import { files, roster } => {
            let dir = roster.join("characters");
            let mut failed = 0;
            for file in &files {
                match import(&dir, file) {
                    Ok(id) => println!("{}: imported as {id}", file.display()),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}: {e:#}", file.display());
                    }
                }
            }
            Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        RosterAction::Export { id, format, out, roster } => {
            let dir = roster.join("characters");
            let library = Roster::load(&dir)?;
            let id = CharacterId::parse(&id)?;
            let c = library.get(&id).with_context(|| format!("no character {id} in {}", dir.display()))?;
            let sidecar =
                std::fs::read(dir.join(format!("{id}.card.json"))).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let v3 = mapping::card_of(c, sidecar.as_ref());
            let bytes = match format {
                CardFormat::Json => serde_json::to_vec_pretty(&v3)?,
                CardFormat::Png => {
                    let image = c
                        .avatar
                        .as_deref()
                        .filter(|a| a.ends_with(".png"))
                        .and_then(|a| std::fs::read(dir.join(a)).ok())
                        .unwrap_or_else(|| cards::png::generated_avatar(&c.colour));
                    cards::png::with_card(&image, &mapping::v2_backfill(&v3).to_string(), &v3.to_string())?
                }
            };
            std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
            println!("{id}: written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn import(dir: &std::path::Path, file: &std::path::Path) -> anyhow::Result<CharacterId> {
    let meta = std::fs::metadata(file).context("cannot read it")?;
    anyhow::ensure!(meta.len() <= cards::MAX_FILE as u64, "larger than {} MiB", cards::MAX_FILE >> 20);
    let bytes = std::fs::read(file).context("cannot read it")?;
    let imported = cards::read(&bytes)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let draft = mapping::draft(&imported, name.as_deref()).ok_or(cards::CardError::NoName)?;
    Ok(write::add(dir, &draft, imported.avatar.as_ref(), Some(&imported.card.json))?)
}

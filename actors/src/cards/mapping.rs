//! A card as a panel character, and a panel character as a card.
//!
//! Into the roster: the display name (the V3 `nickname` when set) cleaned
//! of anything the output format would read as syntax; a one-line tagline;
//! a stable colour from the name; materials from the description,
//! personality, scenario and example dialogue (`{{char}}`/`<BOT>` → the
//! name, `{{user}}`/`<USER>` → "the floor", `<START>` blocks as sample
//! exchanges), with the greetings as sample lines and constant lorebook
//! entries as lore. What a card writes for a one-character chat app —
//! `system_prompt`, `post_history_instructions`, keyed lorebook entries —
//! is not pasted into panel's rules: it is kept (in the sidecar) and the
//! library says so. `creator_notes` are for people: the library shows them,
//! the prompt never sees them.
//!
//! Out of the roster: a V3 card of what the library holds. An imported
//! character unedited gives back its original card (a V2 one lifted to V3,
//! every field and unknown `extensions` key kept); edited in the app, the
//! same card with the edits written over it (name, description from the
//! materials, greetings from the sample lines — the fields the materials
//! were made of — and the rest kept). Panel's own characters and edited
//! ones carry their exact state under `extensions.panel`, so importing an
//! export gives the same character back.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Card, Imported};

pub use crate::roster::{Draft, Source};

/// Characters a display name may not hold (the output format's syntax).
const FORBIDDEN: [char; 11] = ['<', '>', '"', ':', '(', ')', '*', '_', '[', ']', '#'];

/// A card's name made usable: tags dropped, format syntax removed,
/// whitespace collapsed, at most 48 characters.
pub fn clean_name(raw: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in raw.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if FORBIDDEN.contains(&c) || c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    words.join(" ").chars().take(48).collect::<String>().trim().to_owned()
}

/// `{{char}}` / `<BOT>` → the name, `{{user}}` / `<USER>` → "the floor", in any case.
pub fn macros(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for (pattern, with) in [("{{char}}", name), ("<bot>", name), ("{{user}}", "the floor"), ("<user>", "the floor")]
        {
            if rest.len() >= pattern.len()
                && rest.is_char_boundary(pattern.len())
                && rest[..pattern.len()].eq_ignore_ascii_case(pattern)
            {
                out.push_str(with);
                rest = &rest[pattern.len()..];
                continue 'scan;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A stable colour for a name: its hash picks the hue.
pub fn colour_of(name: &str) -> String {
    let hash = Sha256::digest(name.as_bytes());
    let hue = f64::from(u16::from_be_bytes([hash[0], hash[1]]) % 360);
    let (s, l) = (0.55, 0.45);
    let c = (1.0 - (2.0 * l - 1.0_f64).abs()) * s;
    let x = c * (1.0 - ((hue / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match hue as u32 / 60 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
}

/// The first sentence of `text`, at most 100 characters.
fn first_sentence(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let end =
        flat.char_indices().find(|(i, c)| matches!(c, '.' | '!' | '?') && *i > 8).map_or(flat.len(), |(i, _)| i + 1);
    let sentence = &flat[..end];
    if sentence.chars().count() <= 100 {
        return sentence.to_owned();
    }
    let cut: String = sentence.chars().take(99).collect();
    format!("{}…", cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head))
}

fn section(out: &mut String, title: &str, body: &str) {
    if !body.trim().is_empty() {
        out.push_str(&format!("\n## {title}\n{}\n", body.trim()));
    }
}

/// The roster entry for an imported card. `file`: the file it came in.
pub fn draft(imported: &Imported, file: Option<&str>) -> Option<Draft> {
    let card = &imported.card;
    if let Some(own) = panel_own(&card.json) {
        return Some(own);
    }
    let shown = card.nickname.as_deref().unwrap_or(&card.name);
    let name = clean_name(shown);
    if name.is_empty() {
        return None;
    }
    let m = |t: &str| macros(t, &name);
    let mut materials = format!("# {name}\n");
    section(&mut materials, "Description", &m(&card.description));
    section(&mut materials, "Personality", &m(&card.personality));
    section(&mut materials, "Scenario", &m(&card.scenario));
    let greetings: Vec<String> = std::iter::once(&card.first_mes)
        .chain(&card.alternate_greetings)
        .map(|g| m(g).split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|g| !g.is_empty())
        .map(|g| format!("- {g}"))
        .collect();
    section(&mut materials, "Sample lines", &greetings.join("\n"));
    section(&mut materials, "Sample exchanges", &exchanges(&card.mes_example, &name));
    let lore: Vec<String> = card
        .book
        .iter()
        .filter(|e| e.constant && e.enabled)
        .enumerate()
        .map(|(i, e)| {
            let title = if e.name.is_empty() { format!("Lore {}", i + 1) } else { m(&e.name) };
            format!("### {title}\n{}", m(&e.content).trim())
        })
        .collect();
    section(&mut materials, "Lore", &lore.join("\n\n"));
    if materials.trim() == format!("# {name}") {
        materials.push_str("\nA character from a card that describes nothing more than a name.\n");
    }

    let mut kept = Vec::new();
    for (field, text) in
        [("system_prompt", &card.system_prompt), ("post_history_instructions", &card.post_history_instructions)]
    {
        if !text.trim().is_empty() {
            kept.push(format!("{field} (written for a one-character chat; panel's own rules apply)"));
        }
    }
    let keyed = card.book.iter().filter(|e| !e.constant).count();
    if keyed > 0 {
        kept.push(format!("{keyed} keyed lorebook entr{} (kept, not used)", if keyed == 1 { "y" } else { "ies" }));
    }
    let tagline = [&card.description, &card.personality, &card.scenario]
        .into_iter()
        .map(|t| first_sentence(&m(t)))
        .find(|t| !t.is_empty())
        .unwrap_or_else(|| "From a character card".to_owned());
    Some(Draft {
        colour: colour_of(&name),
        tagline,
        farewell: None,
        materials,
        creator_notes: Some(card.creator_notes.trim().to_owned()).filter(|n| !n.is_empty()),
        source: Some(Source {
            format: card.shape.name().to_owned(),
            file: file.map(super::printable),
            creator: card.creator.trim().to_owned(),
            version: card.character_version.trim().to_owned(),
            card_name: (name != shown.trim()).then(|| super::printable(shown.trim())),
            kept,
        }),
        name,
    })
}

/// `<START>` blocks as numbered exchanges, speakers named.
fn exchanges(examples: &str, name: &str) -> String {
    let text = macros(examples, name);
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    loop {
        let found = rest.to_ascii_lowercase().find("<start>");
        let (block, next) = match found {
            Some(i) => (&rest[..i], Some(&rest[i + 7..])),
            None => (rest, None),
        };
        let lines: Vec<&str> = block.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if !lines.is_empty() {
            blocks.push(lines.iter().map(|l| capital_floor(l)).collect::<Vec<_>>().join("\n"));
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    blocks.iter().enumerate().map(|(i, b)| format!("### Exchange {}\n{b}", i + 1)).collect::<Vec<_>>().join("\n\n")
}

fn capital_floor(line: &str) -> String {
    match line.strip_prefix("the floor:") {
        Some(rest) => format!("The floor:{rest}"),
        None => line.to_owned(),
    }
}

/// A card panel exported of one of its own characters: given back exactly.
fn panel_own(json: &Value) -> Option<Draft> {
    let p = &json["data"]["extensions"]["panel"];
    let s = |k: &str| p[k].as_str().map(str::to_owned);
    Some(Draft {
        name: s("name")?,
        tagline: s("tagline")?,
        colour: s("colour")?,
        farewell: s("farewell"),
        materials: s("materials")?,
        creator_notes: None,
        source: None,
    })
}

/// A character as a V3 card. `original`: the card it was imported from.
pub fn card_of(character: &crate::roster::Character, original: Option<&Value>) -> Value {
    let Some(original) = original else { return own_card(character) };
    let mut card = original_v3(character, original);
    if !edited(character, original) {
        return card;
    }
    let c = character;
    let samples: Vec<String> = c.section_items("sample lines").into_iter().map(str::to_owned).collect();
    let data = &mut card["data"];
    data["name"] = json!(c.name);
    if data["nickname"].as_str().is_some_and(|n| !n.trim().is_empty()) {
        data["nickname"] = json!(c.name);
    }
    data["description"] = json!(c.materials);
    for k in ["personality", "scenario", "mes_example"] {
        data[k] = json!("");
    }
    if let Some((first, rest)) = samples.split_first() {
        data["first_mes"] = json!(first);
        data["alternate_greetings"] = json!(rest);
    }
    if !data["extensions"].is_object() {
        data["extensions"] = json!({});
    }
    data["extensions"]["panel"] = panel_state(c);
    card
}

/// Whether the library's character differs from what its card maps to.
fn edited(c: &crate::roster::Character, original: &Value) -> bool {
    let Ok(card) = super::parse(&original.to_string()) else { return true };
    let Some(d) = draft(&Imported { card, avatar: None }, None) else { return true };
    (d.name.trim(), d.tagline.trim(), d.colour.as_str(), d.materials.trim(), d.farewell.as_deref())
        != (c.name.as_str(), c.tagline.as_str(), c.colour.as_str(), c.materials.trim(), c.farewell.as_deref())
}

/// The card a character was imported from, as V3.
fn original_v3(character: &crate::roster::Character, original: &Value) -> Value {
    match original["spec"].as_str() {
        Some("chara_card_v3") => original.clone(),
        Some("chara_card_v2") => {
            let mut data = original["data"].clone();
            if data["group_only_greetings"].is_null() {
                data["group_only_greetings"] = json!([]);
            }
            json!({ "spec": "chara_card_v3", "spec_version": "3.0", "data": data })
        }
        // V1 and Pygmalion: lifted field by field, the original kept whole.
        _ => match super::parse(&original.to_string()) {
            Ok(card) => lifted(&card),
            Err(_) => own_card(character),
        },
    }
}

fn lifted(card: &Card) -> Value {
    json!({
        "spec": "chara_card_v3", "spec_version": "3.0",
        "data": {
            "name": card.name, "description": card.description, "personality": card.personality,
            "scenario": card.scenario, "first_mes": card.first_mes, "mes_example": card.mes_example,
            "creator_notes": card.creator_notes, "system_prompt": card.system_prompt,
            "post_history_instructions": card.post_history_instructions,
            "alternate_greetings": card.alternate_greetings, "tags": card.tags, "creator": card.creator,
            "character_version": card.character_version, "group_only_greetings": [],
            "extensions": { "panel_original": { "shape": card.shape.name(), "card": card.json } },
        }
    })
}

fn own_card(c: &crate::roster::Character) -> Value {
    let first = c.section_items("sample lines").first().map(|s| s.to_string()).unwrap_or_default();
    json!({
        "spec": "chara_card_v3", "spec_version": "3.0",
        "data": {
            "name": c.name, "description": c.materials, "personality": c.tagline, "scenario": "",
            "first_mes": first, "mes_example": "", "creator_notes": format!("{} — a character from panel.", c.tagline),
            "system_prompt": "", "post_history_instructions": "", "alternate_greetings": [],
            "tags": ["panel"], "creator": "panel", "character_version": "1", "group_only_greetings": [],
            "extensions": { "panel": panel_state(c) },
        }
    })
}

/// A character exactly as the library holds it, for `extensions.panel`.
fn panel_state(c: &crate::roster::Character) -> Value {
    json!({
        "id": c.id, "name": c.name, "tagline": c.tagline, "colour": c.colour,
        "farewell": c.farewell, "materials": c.materials,
    })
}

/// A V2 card for apps that read only `chara`: the V3 data without V3's own fields.
pub fn v2_backfill(v3: &Value) -> Value {
    let mut data = v3["data"].clone();
    if let Some(d) = data.as_object_mut() {
        for k in [
            "group_only_greetings",
            "nickname",
            "assets",
            "creation_date",
            "modification_date",
            "source",
            "creator_notes_multilingual",
        ] {
            d.remove(k);
        }
    }
    json!({ "spec": "chara_card_v2", "spec_version": "2.0", "data": data })
}

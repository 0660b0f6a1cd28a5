//! What the rehearsal engine writes: one turn of the output format (or a
//! recap), composed from the brief — the floor's line, the cast on stage and
//! their materials — with an RNG seeded by the brief, so the same brief
//! always gives the same text.

use minijinja::context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Rehearsal;
use super::prose::{content_words, quotable, tidy};
use crate::event::{DeliveredTurn, Line, TurnMode};
use crate::provider::{Brief, Task};
use crate::roster::Character;

#[derive(Serialize)]
struct ConferLine<'a> {
    name: &'a str,
    text: String,
}

#[derive(Serialize)]
struct Reply<'a> {
    name: &'a str,
    text: String,
    pass: bool,
}

impl Rehearsal {
    /// The whole output of one turn (or recap). Deterministic in the brief.
    pub fn compose(&self, brief: &Brief) -> String {
        if let Task::Recap(turns) = &brief.task {
            return self.recap(turns);
        }
        let mut rng = fastrand::Rng::with_seed(seed(brief));
        let words = content_words(&brief.floor, &self.phrases.stopwords);
        let topic = match quotable(&brief.floor, &self.phrases.stopwords) {
            Some(fragment) => format!("“{fragment}”"),
            None => self.phrases.no_topic.clone(),
        };
        let mut ranked: Vec<(f64, &Character)> = brief
            .cast
            .iter()
            .map(|c| {
                let materials = c.materials.to_lowercase();
                let overlap = words.iter().filter(|w| materials.contains(w.as_str())).count();
                (overlap as f64 + rng.f64() * 1.5, c)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let ranked: Vec<&Character> = ranked.into_iter().map(|(_, c)| c).collect();

        let mut confer = Vec::new();
        let mut replies = Vec::new();
        let say = |rng: &mut fastrand::Rng, list: &str, who: &Character, lead: &str, prev: &str| {
            let fallback: Vec<&str> = self.phrases.no_concern.iter().map(String::as_str).collect();
            let concern = pick(rng, &who.section_items("cares about"))
                .or_else(|| pick(rng, &fallback))
                .unwrap_or(&self.phrases.no_topic)
                .to_owned();
            let sample = pick(rng, &who.section_items("sample lines")).unwrap_or(&who.tagline).to_owned();
            let name = format!("{list}-{}", rng.usize(..self.phrases.count(list).max(1)));
            let ctx = context! { topic, concern, sample, lead, prev, name => who.name };
            let line = self.env.get_template(&name).and_then(|t| t.render(ctx));
            tidy(&line.unwrap_or_else(|_| sample.clone()))
        };

        let alone = match brief.mode {
            TurnMode::Addressed => brief.cast.iter().find(|c| Some(&c.id) == brief.to.as_ref()),
            TurnMode::OneToOne => brief.cast.first(),
            TurnMode::Panel => None,
        };
        if let Some(who) = alone.or_else(|| (ranked.len() == 1).then(|| ranked[0])) {
            let text = say(&mut rng, "speak_alone", who, &who.name, "");
            replies.push(Reply { name: &who.name, text, pass: false });
        } else if let Some(lead) = ranked.first() {
            let lead_name = lead.name.as_str();
            let mut prev = *lead;
            confer.push(ConferLine { name: lead_name, text: say(&mut rng, "confer_open", lead, lead_name, "") });
            for _ in 2..brief.depth.max(2) {
                let others: Vec<&Character> = ranked.iter().copied().filter(|c| c.id != prev.id).collect();
                let who = others[rng.usize(..others.len())];
                let text = say(&mut rng, "confer_reply", who, lead_name, &prev.name);
                confer.push(ConferLine { name: &who.name, text });
                prev = who;
            }
            let closer = if prev.id == lead.id { ranked[1] } else { *lead };
            let text = say(&mut rng, "confer_close", closer, lead_name, &prev.name);
            confer.push(ConferLine { name: &closer.name, text });

            let mut prev = *lead;
            replies.push(Reply {
                name: lead_name,
                text: say(&mut rng, "speak_lead", lead, lead_name, ""),
                pass: false,
            });
            for (i, who) in ranked.iter().enumerate().skip(1) {
                // Someone may pass, but in a panel of three or more at least
                // two voices answer.
                let speakers = replies.iter().filter(|r| !r.pass).count();
                if ranked.len() >= 3 && (speakers >= 2 || i + 1 < ranked.len()) && rng.f64() < 0.25 {
                    replies.push(Reply { name: &who.name, text: String::new(), pass: true });
                    continue;
                }
                let text = say(&mut rng, "speak_follow", who, lead_name, &prev.name);
                replies.push(Reply { name: &who.name, text, pass: false });
                prev = who;
            }
        }
        let rendered = self.env.get_template("turn").and_then(|t| t.render(context! { confer, replies }));
        rendered.unwrap_or_default()
    }
}

impl Rehearsal {
    /// Recap notes: each speaker's share and latest line, the floor's first
    /// and last questions. A rehearsal of notes, not a reading of them.
    fn recap(&self, turns: &[DeliveredTurn]) -> String {
        #[derive(Serialize)]
        struct Speaker<'a> {
            name: &'a str,
            count: usize,
            last: String,
        }
        let short = |text: &str| {
            let words: Vec<&str> = text.split_whitespace().collect();
            let mut s = words[..words.len().min(18)].join(" ");
            if words.len() > 18 {
                s.push('…');
            }
            s
        };
        let lines = turns.iter().flat_map(|t| &t.lines);
        let floors: Vec<&str> = lines
            .clone()
            .filter_map(|l| if let Line::Floor { text, .. } = l { Some(text.as_str()) } else { None })
            .collect();
        let mut speakers: Vec<Speaker> = Vec::new();
        for line in lines {
            if let Line::Speak { name, text } = line {
                match speakers.iter_mut().find(|s| s.name == name) {
                    Some(s) => {
                        s.count += 1;
                        s.last = short(text);
                    }
                    None => speakers.push(Speaker { name, count: 1, last: short(text) }),
                }
            }
        }
        let mut busiest: Vec<&str> = {
            let mut by_count: Vec<&Speaker> = speakers.iter().collect();
            by_count.sort_by_key(|s| std::cmp::Reverse(s.count));
            by_count.iter().take(2).map(|s| s.name).collect()
        };
        let pair = (busiest.len() == 2).then(|| std::mem::take(&mut busiest));
        let ctx = context! {
            turns => turns.len(),
            first_floor => floors.first().map(|f| short(f)).unwrap_or_default(),
            last_floor => floors.last().map(|f| short(f)).unwrap_or_default(),
            speakers,
            pair,
        };
        self.env.get_template("recap").and_then(|t| t.render(ctx)).unwrap_or_default()
    }
}

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> Option<&'a str> {
    (!items.is_empty()).then(|| items[rng.usize(..items.len())])
}

pub(super) fn seed(brief: &Brief) -> u64 {
    let mut h = Sha256::new();
    h.update(brief.seed.to_le_bytes());
    h.update(brief.turn.to_le_bytes());
    h.update(&brief.floor);
    h.update(brief.to.as_ref().map_or("", |t| t.as_str()));
    for c in &brief.cast {
        h.update(c.id.as_str());
        h.update([0]);
    }
    // A replay's samples differ from the turn they replay and from each other.
    if let Task::Sample(sample) = brief.task {
        h.update(b"sample");
        h.update(sample.to_le_bytes());
    }
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

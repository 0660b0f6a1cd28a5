//! Parsing: throughput on realistic output, and time that grows linearly —
//! not quadratically — with the length of a line, for the output parser and
//! for the provider-side SSE decoder.

use std::time::{Duration, Instant};

use panel_actors::id::SessionId;
use panel_actors::parser::{Parsed, Parser};
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::provider::sse::SseDecoder;
use panel_actors::provider::{Brief, Task};
use panel_actors::roster::Roster;

use crate::{cid, ms};

/// Feeds a few megabytes of rehearsal output through the parser in small
/// chunks, as a stream would deliver it.
pub fn throughput(roster: &Roster) {
    let rehearsal = Rehearsal::embedded(Duration::ZERO);
    let cast: Vec<_> = ["ada", "byron", "cleo", "otto"].iter().map(|c| roster.get(&cid(c)).unwrap().clone()).collect();
    let mut text = String::new();
    let mut turn = 0;
    while text.len() < 4 << 20 {
        turn += 1;
        let brief = Brief {
            session: SessionId::parse("bench").unwrap(),
            turn,
            mode: panel_actors::event::TurnMode::Panel,
            cast: cast.clone(),
            to: None,
            floor: format!("Question number {turn} about hospitals, trust and evidence"),
            depth: 4,
            task: Task::Turn,
            seed: 7,
        };
        text.push_str(&rehearsal.compose(&brief));
    }
    let on: Vec<_> = cast.iter().map(|c| (&c.id, c.name.as_str())).collect();
    for chunk in [16usize, 256] {
        let chunks: Vec<&str> = split(&text, chunk);
        let start = Instant::now();
        let mut events = 0usize;
        let mut logged = 0usize;
        let mut parser = Parser::new(on.iter().copied(), []);
        for c in &chunks {
            for e in parser.feed(c) {
                events += 1;
                logged += usize::from(!matches!(e, Parsed::SpeakDelta { .. }));
            }
        }
        events += parser.finish().len();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "parser: {:.1} MB in {}-byte chunks: {:.0} MB/s, {:.0} events/s ({} logged events, {} in all)",
            text.len() as f64 / 1e6,
            chunk,
            text.len() as f64 / 1e6 / secs,
            events as f64 / secs,
            logged,
            events
        );
    }
}

fn split(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

/// One confer line of `len` bytes, fed in 16-byte chunks: time per length.
/// Linear parsing shows as a flat time per megabyte across the lengths.
pub fn long_lines() {
    for len in [16 << 10, 160 << 10, 1600 << 10] {
        let text = format!("<confer>\nAda: {}\nByron: done\n</confer>", "word ".repeat(len / 5));
        let ada = cid("ada");
        let byron = cid("byron");
        let on = [(&ada, "Ada"), (&byron, "Byron")];
        let mut parser = Parser::new(on, []);
        let start = Instant::now();
        let mut lines = 0;
        for chunk in split(&text, 16) {
            lines += parser.feed(chunk).iter().filter(|e| matches!(e, Parsed::Deliberation { .. })).count();
        }
        lines += parser.finish().len();
        let t = start.elapsed();
        println!(
            "parser, one {:>5} KB confer line in 16-byte chunks: {:>8.2} ms ({:.1} ms per MB, {lines} lines)",
            len >> 10,
            ms(t),
            ms(t) / (len as f64 / 1e6)
        );
    }
    for len in [40 << 10, 400 << 10, 4000 << 10] {
        let text = format!("data: {}\n\n", "x".repeat(len));
        let mut decoder = SseDecoder::new();
        let start = Instant::now();
        let mut events = 0;
        for chunk in text.as_bytes().chunks(16) {
            events += decoder.feed(chunk).map_or(0, |e| e.len());
        }
        let t = start.elapsed();
        println!(
            "SSE decoder, one {:>5} KB line in 16-byte reads: {:>8.2} ms ({:.1} ms per MB, {events} event)",
            len >> 10,
            ms(t),
            ms(t) / (len as f64 / 1e6)
        );
    }
}

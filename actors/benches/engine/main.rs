//! Engine benchmarks: parsing (throughput, and linear time in the length of
//! a line), how soon a line is logged after the byte that settles it, and
//! rebuilding a session actor from a 200-turn log.
//!
//! Run: `cargo bench -p panel-actors --bench engine`. Prints its figures.
//! Goals: a line logged within 1 ms of its settling byte; a 200-turn
//! rebuild under 100 ms on a 2-core machine.

mod latency;
mod parse;
mod rebuild;

use std::path::Path;
use std::time::Duration;

use panel_actors::id::CharacterId;
use panel_actors::roster::Roster;
use panel_actors::templates::Templates;

fn main() {
    let roster_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../roster");
    let roster = Roster::load(&roster_dir.join("characters")).expect("roster");
    let templates = Templates::load(&roster_dir.join("prompts")).expect("templates");
    parse::throughput(&roster);
    parse::long_lines();
    latency::byte_to_log(&roster, &templates);
    rebuild::rebuild(roster, templates);
}

fn cid(s: &str) -> CharacterId {
    CharacterId::parse(s).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

//! A speak line that cannot open with an on-stage name and a colon.
//!
//! The bleed group-chat users complain about most is one character's speak
//! carrying another's lines (`Cleo: …` inside Ada's). GBNF has no "not this
//! prefix", so the `line` rule walks a trie of the forbidden prefixes —
//! every on-stage name followed by `:` or ` :`, letters in either case — and
//! at each step a line may end, continue along the trie, or leave it on any
//! character that is not the trie's next one; only the prefix's last step
//! (the colon) has no way on. Once off the trie the rest of the line is
//! free text. Case is folded per character (`[aA]`), which is as far as
//! GBNF's character classes go.
//!
//! The line's length bound holds exactly whatever the route: the tail after
//! leaving the trie at depth `d` is at most `max - d - 1`, and tails of
//! neighbouring lengths share one chain of rules, so the trie costs a rule
//! per node and per depth, not per node and per character.

use std::collections::BTreeMap;

use super::Grammar;

/// Characters outside a speak line's own class.
const LINE_CLASS: &str = "<\\n";

#[derive(Default)]
struct Node {
    depth: usize,
    /// Folded character → the next node; `None` ends a forbidden prefix.
    next: BTreeMap<char, Option<usize>>,
}

/// Writes `line`: at most `max` characters, no `<` or newline, not opening
/// with any of `names` followed by a colon.
pub(super) fn line(g: &mut Grammar, names: &[&str], max: usize) {
    let max = max.max(1);
    let nodes = trie(names);
    let mut tails = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if i > 0 && node.depth >= max {
            // Never entered: a line that long is already whole.
            continue;
        }
        let room = max - node.depth - 1;
        let off = format!("[^{LINE_CLASS}{}]", node.next.keys().map(|c| variants(*c)).collect::<String>());
        let mut alternatives = vec![if room == 0 { off } else { format!("{off} tail-{room}") }];
        tails.push(room);
        for (c, to) in &node.next {
            match to {
                Some(to) if nodes[*to].depth < max => alternatives.push(format!("[{}] gl-{to}", variants(*c))),
                Some(_) => alternatives.push(format!("[{}]", variants(*c))),
                None => {}
            }
        }
        let name = if i == 0 { "line".to_owned() } else { format!("gl-{i}") };
        g.rule(&name, &format!("( {} )?", alternatives.join(" | ")));
    }
    tails.retain(|t| *t > 0);
    let (Some(&lo), Some(&hi)) = (tails.iter().min(), tails.iter().max()) else { return };
    g.rule(&format!("tail-{lo}"), &format!("[^{LINE_CLASS}]{{0,{lo}}}"));
    for k in lo + 1..=hi {
        g.rule(&format!("tail-{k}"), &format!("( [^{LINE_CLASS}] tail-{} )?", k - 1));
    }
}

/// The trie of forbidden prefixes; node 0 is the root.
fn trie(names: &[&str]) -> Vec<Node> {
    let mut nodes = vec![Node::default()];
    for name in names {
        for prefix in [format!("{name}:"), format!("{name} :")] {
            let chars: Vec<char> = prefix.chars().map(fold).collect();
            let mut at = 0;
            for (k, c) in chars.iter().enumerate() {
                if k + 1 == chars.len() {
                    nodes[at].next.insert(*c, None);
                    break;
                }
                at = match nodes[at].next.get(c) {
                    Some(Some(to)) => *to,
                    // Already forbidden one step earlier: nothing longer to add.
                    Some(None) => break,
                    None => {
                        nodes.push(Node { depth: nodes[at].depth + 1, next: BTreeMap::new() });
                        let to = nodes.len() - 1;
                        nodes[at].next.insert(*c, Some(to));
                        to
                    }
                };
            }
        }
    }
    nodes
}

/// The character a case-insensitive comparison sees.
fn fold(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// `c` and its upper case, as the inside of a GBNF character class.
fn variants(c: char) -> String {
    let mut upper = c.to_uppercase();
    let mut out = class_char(c);
    if let (Some(u), None) = (upper.next(), upper.next())
        && u != c
    {
        out.push_str(&class_char(u));
    }
    out
}

/// One character inside a class: ASCII punctuation as `\xHH`, so no name can
/// close the class, make a range or negate it.
fn class_char(c: char) -> String {
    if c.is_ascii_alphanumeric() || c == ' ' || !c.is_ascii() { c.to_string() } else { format!("\\x{:02X}", c as u32) }
}

//! The rehearsal engine's prose: picking what the floor is talking about,
//! quoting a grammatical fragment of it, and tidying each line so that no
//! sentence ends twice. Plain functions over text, deterministic.

/// Lowercased words of five letters or more that are not stopwords: a cheap
/// stand-in for "what the floor is talking about".
pub(super) fn content_words(text: &str, stopwords: &[String]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        let w = w.to_lowercase();
        if w.chars().count() >= 5 && !words.contains(&w) && !stopwords.contains(&w) {
            words.push(w);
        }
    }
    words
}

/// Most words quoted from the floor's line.
const QUOTE_WORDS: usize = 12;

/// Words a quoted fragment does not start or end with: it would read as cut.
const EDGE_WORDS: [&str; 30] = [
    "a", "an", "and", "are", "as", "at", "but", "by", "for", "if", "in", "is", "it", "of", "on", "or", "so", "than",
    "that", "the", "then", "these", "this", "those", "to", "was", "were", "whether", "which", "with",
];

/// A fragment of the floor's own words to quote as the topic: the clause
/// with the most content words, cut to a few words around them. Quoting
/// keeps it grammatical whatever the floor wrote; `None` when nothing in the
/// line is worth quoting. Never holds `<` or `>`, which would break the
/// output format.
pub(super) fn quotable(floor: &str, stopwords: &[String]) -> Option<String> {
    let is_content = |w: &str| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        w.chars().count() >= 5 && !stopwords.contains(&w)
    };
    let content = |words: &[&str]| words.iter().filter(|w| is_content(w)).count();
    let clauses = floor.split(['.', '?', '!', ';', ':', '\n', '(', ')', '"', '“', '”', '<', '>', '—']);
    let best = clauses
        .map(|c| c.split_whitespace().collect::<Vec<_>>())
        .filter(|words| !words.is_empty())
        .max_by_key(|words| (content(words), std::cmp::Reverse(words.len())))?;
    if content(&best) == 0 {
        return None;
    }
    // The window of words with the most content words, earliest first.
    let width = best.len().min(QUOTE_WORDS);
    let start =
        (0..=best.len() - width).max_by_key(|&i| (content(&best[i..i + width]), std::cmp::Reverse(i))).unwrap_or(0);
    let mut words = &best[start..start + width];
    let edge = |w: &str| EDGE_WORDS.contains(&w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase().as_str());
    while let [first, rest @ ..] = words
        && edge(first)
    {
        words = rest;
    }
    while let [rest @ .., last] = words
        && (edge(last) || last.ends_with(','))
        && !rest.is_empty()
    {
        words = if edge(last) { rest } else { words };
        if !edge(last) {
            break;
        }
    }
    let fragment = words.join(" ");
    let fragment = fragment.trim_matches(|c: char| c.is_ascii_punctuation() && c != '\'');
    (!fragment.is_empty()).then(|| fragment.to_owned())
}

/// One clean line: sentences end once (a phrase ending in `a.m.` before a
/// template's own full stop, or a question before one, is not ended twice;
/// `a.m.?` keeps its question mark), and spaces are single.
pub(super) fn tidy(line: &str) -> String {
    let line = line.replace("...", "…");
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        let last = out.chars().last();
        match c {
            '.' if last.is_some_and(|l| matches!(l, '.' | '?' | '!')) => {}
            '?' | '!' if last.is_some_and(|l| matches!(l, '?' | '!')) => {}
            ' ' if last.is_none_or(|l| l == ' ') => {}
            '.' | ',' | '?' | '!' | ';' | ':' if last == Some(' ') => {
                out.pop();
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.trim().to_owned()
}

//! What a perfect cache would bill: every token seen in an earlier request
//! read, every new token written once (it must be, to be read later). The
//! cost and pauses benchmarks compare panel's bills against it.

use panel_actors::prefix_cache::estimate_tokens;
use serde_json::Value;

/// A request's blocks as texts: system blocks, then message blocks.
pub fn blocks(request: &Value) -> Vec<String> {
    let system = request["system"].as_array().into_iter().flatten();
    let messages = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["content"].as_array().into_iter().flatten());
    system.chain(messages).map(|b| b["text"].as_str().unwrap_or_default().to_owned()).collect()
}

/// For each request, the tokens a perfect cache reads (its longest common
/// block prefix with any earlier request) and writes (the rest).
pub fn read_write(requests: &[Value]) -> Vec<(u64, u64)> {
    let mut seen: Vec<Vec<String>> = Vec::new();
    requests
        .iter()
        .map(|r| {
            let b = blocks(r);
            let common = seen.iter().map(|s| s.iter().zip(&b).take_while(|(x, y)| x == y).count()).max().unwrap_or(0);
            let read = b[..common].iter().map(|t| estimate_tokens(t)).sum();
            let write = b[common..].iter().map(|t| estimate_tokens(t)).sum();
            seen.push(b);
            (read, write)
        })
        .collect()
}

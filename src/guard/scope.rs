//! What an invite may reach: ONE table of method + path pattern → the role
//! it needs. Whatever the table does not name is refused, so a route added
//! later is closed to invitees until someone writes it here.
//!
//! Invariants:
//! - `{sid}` matches only the invite's own session; `*` any one segment;
//!   `**` whatever follows (zero or more segments). The first row that
//!   matches decides.
//! - The path is judged as the router and the file service will read it:
//!   each segment percent-decoded. A path with an empty, `.` or `..`
//!   segment, or a segment that decodes to a slash, is refused outright:
//!   the file service resolves `..`, which would walk out of `/logs/{sid}/`.
//! - Rows are what the app fetches to show one session (its page, scripts,
//!   roster faces, the session's detail, history, streams, dynamics and
//!   replays, its recorded files) and, for a speaker, the two ways in which
//!   the app speaks. The cast, settings, closing, forking, replaying,
//!   invites, the roster's writes and every other session stay the token
//!   holder's. `GET /api/sessions` is refused too: the chat needs no list.

use actix_web::http::Method;
use panel_actors::id::SessionId;

use crate::invite::{Grant, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    /// GET or HEAD.
    Read,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Any invite to the session.
    Watcher,
    /// A speaker's invite.
    Speaker,
    /// No invite at all (named to carve out of a wider row below it).
    Nobody,
}

/// A check of the query beyond the path, for rows that need one.
type QueryCheck = fn(&str, &SessionId) -> bool;

const TABLE: &[(Verb, &str, Needs, Option<QueryCheck>)] = &[
    // The app itself.
    (Verb::Read, "/", Needs::Watcher, None),
    (Verb::Read, "/index.html", Needs::Watcher, None),
    (Verb::Read, "/app.css", Needs::Watcher, None),
    (Verb::Read, "/js/**", Needs::Watcher, None),
    (Verb::Read, "/vendor/**", Needs::Watcher, None),
    (Verb::Read, "/healthz", Needs::Watcher, None),
    // The faces and names the chat draws.
    (Verb::Read, "/api/roster", Needs::Watcher, None),
    (Verb::Read, "/api/roster/*/avatar", Needs::Watcher, None),
    // The session, read and streamed.
    (Verb::Read, "/api/events", Needs::Watcher, Some(only_its_session)),
    (Verb::Read, "/api/sessions/{sid}", Needs::Watcher, None),
    (Verb::Read, "/api/sessions/{sid}/events", Needs::Watcher, None),
    (Verb::Read, "/api/sessions/{sid}/history", Needs::Watcher, None),
    (Verb::Read, "/api/sessions/{sid}/dynamics", Needs::Watcher, None),
    (Verb::Read, "/api/sessions/{sid}/replays", Needs::Watcher, None),
    (Verb::Read, "/api/sessions/{sid}/replays/*", Needs::Watcher, None),
    (Verb::Read, "/api/sessions/{sid}/replays/*/events", Needs::Watcher, None),
    // Its recorded files, but not the digests of its invites.
    (Verb::Read, "/logs/{sid}/invites.json", Needs::Nobody, None),
    (Verb::Read, "/logs/{sid}/**", Needs::Watcher, None),
    // Speaking in it.
    (Verb::Post, "/api/sessions/{sid}/say", Needs::Speaker, None),
    (Verb::Read, "/api/sessions/{sid}/ws", Needs::Speaker, None),
];

/// Whether `grant` lets a request with this method, raw path and query in.
pub fn allows(grant: &Grant, method: &Method, raw_path: &str, query: &str) -> bool {
    let verb = match *method {
        Method::GET | Method::HEAD => Verb::Read,
        Method::POST => Verb::Post,
        _ => return false,
    };
    let Some(segments) = segments(raw_path) else { return false };
    let Some((_, _, needs, check)) =
        TABLE.iter().find(|(v, pattern, _, _)| *v == verb && matches(pattern, &segments, grant.session.as_str()))
    else {
        return false;
    };
    let role = match needs {
        Needs::Nobody => return false,
        Needs::Watcher => true,
        Needs::Speaker => grant.role == Role::Speaker,
    };
    role && check.is_none_or(|check| check(query, &grant.session))
}

/// The path's segments, decoded; `None` for a path that must not be judged.
fn segments(raw: &str) -> Option<Vec<String>> {
    let rest = raw.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.split('/')
        .map(|s| {
            let decoded = decode(s)?;
            let bad = decoded.is_empty() || decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0']);
            (!bad).then_some(decoded)
        })
        .collect()
}

/// Percent-decoding; `None` for a broken escape or bytes that are not UTF-8.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn matches(pattern: &str, segments: &[String], sid: &str) -> bool {
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let mut given = segments.iter();
    for part in parts {
        if part == "**" {
            return true;
        }
        let Some(segment) = given.next() else { return false };
        let ok = match part {
            "*" => true,
            "{sid}" => segment == sid,
            literal => segment == literal,
        };
        if !ok {
            return false;
        }
    }
    given.next().is_none()
}

/// The multiplexed stream names this session alone, and no directory notes
/// (which would tell when other sessions change).
fn only_its_session(query: &str, sid: &SessionId) -> bool {
    let Ok(pairs) = actix_web::web::Query::<Vec<(String, String)>>::from_query(query) else { return false };
    let mut listed = false;
    for (key, value) in pairs.0 {
        match key.as_str() {
            "sessions" => {
                for id in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if id != sid.as_str() {
                        return false;
                    }
                    listed = true;
                }
            }
            "directory" => return false,
            _ => {}
        }
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: Role) -> Grant {
        Grant::for_tests(SessionId::parse("s-mine").unwrap(), role)
    }

    #[test]
    fn a_watcher_reads_its_session_and_nothing_else() {
        let w = grant(Role::Watcher);
        let get = Method::GET;
        for path in [
            "/",
            "/js/main.js",
            "/vendor/vega.min.js",
            "/api/sessions/s-mine",
            "/api/sessions/s-mine/events",
            "/api/sessions/s-mine/replays/r1/events",
            "/logs/s-mine/events.jsonl",
            "/logs/s-mine/replays/index.json",
            "/api/sessions/s-%6dine/history",
        ] {
            assert!(allows(&w, &get, path, ""), "{path}");
        }
        for path in [
            "/api/sessions",
            "/api/sessions/s-other",
            "/api/sessions/s-mine/",
            "/api/sessions/s-mine/ws",
            "/logs/index.json",
            "/logs/s-mine/invites.json",
            "/logs/s-mine/../s-other/events.jsonl",
            "/logs/s-mine/%2e%2e/s-other/events.jsonl",
            "/logs/s-mine/a%2fb",
            "//api/sessions/s-mine",
            "/api/providers",
            "/viewer.html",
        ] {
            assert!(!allows(&w, &get, path, ""), "{path}");
        }
        assert!(!allows(&w, &Method::POST, "/api/sessions/s-mine/say", ""));
    }

    #[test]
    fn a_speaker_may_also_speak_but_change_nothing() {
        let s = grant(Role::Speaker);
        assert!(allows(&s, &Method::POST, "/api/sessions/s-mine/say", ""));
        assert!(allows(&s, &Method::GET, "/api/sessions/s-mine/ws", "events=none"));
        assert!(!allows(&s, &Method::POST, "/api/sessions/s-other/say", ""));
        for path in ["cast", "close", "settings", "fork", "continue", "actor", "replay", "invites"] {
            assert!(!allows(&s, &Method::POST, &format!("/api/sessions/s-mine/{path}"), ""), "{path}");
        }
        assert!(!allows(&s, &Method::DELETE, "/api/sessions/s-mine/actor", ""));
        assert!(!allows(&s, &Method::POST, "/api/sessions", ""));
        assert!(!allows(&s, &Method::POST, "/api/roster", ""));
    }

    #[test]
    fn the_multiplexed_stream_carries_its_session_alone() {
        let w = grant(Role::Watcher);
        let ok = |q: &str| allows(&w, &Method::GET, "/api/events", q);
        assert!(ok("sessions=s-mine&since=s-mine%3A3&deltas=s-mine"));
        assert!(!ok("sessions=s-mine,s-other"));
        assert!(!ok("sessions=s-mine&sessions=s-other"));
        assert!(!ok("sessions=s-mine&directory=1"));
        assert!(!ok("directory=1"));
        assert!(!ok(""));
    }
}

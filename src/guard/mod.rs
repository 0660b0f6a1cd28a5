//! The localhost guard, in front of every route.
//!
//! - **Host allow-list** (DNS rebinding): a request whose `Host` is not a
//!   local name is refused. The raw header is used, never `Forwarded` /
//!   `X-Forwarded-Host`, which a client controls.
//! - **Own origin only** (CSRF, cross-site WebSocket hijacking): WebSocket
//!   upgrades and state-changing requests are accepted only from this
//!   server's own origin, as bound ([`origin`]). Requests without `Origin`
//!   come from scripts, not pages, and stay allowed.
//! - **Token**: when one is set, a request must carry it (`Authorization:
//!   Bearer …` for scripts, `?token=…` in a browser's address bar) or a
//!   session cookie issued for it ([`cookie`]). A page loaded with the token
//!   is redirected to its own URL without it, so the token leaves the address
//!   bar (and the history) once the cookie is set. With a token the Host
//!   allow-list is lifted: that is what lets panel listen beyond loopback.
//!
//! No response carries the token: errors are fixed texts, and the redirect
//! rebuilds the query without it.

mod cookie;
mod origin;

use std::net::IpAddr;

use actix_web::HttpResponse;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::ApiError;
use cookie::Sessions;

/// What the guard checks against, shared by every worker.
#[derive(Debug)]
pub struct GuardConfig {
    token: Option<String>,
    /// The port the listener actually bound (not the one asked for: tests bind 0).
    port: u16,
    cookie_name: String,
    sessions: Sessions,
}

impl GuardConfig {
    pub fn new(token: Option<String>, port: u16) -> Self {
        Self { token, port, cookie_name: cookie::name(port), sessions: Sessions::default() }
    }
}

/// How a request got in.
struct Admission {
    /// A session cookie should be issued with the answer: the token was shown
    /// by a browser that holds no valid session yet.
    issue_cookie: bool,
    /// The browser already holds a valid session cookie.
    has_cookie: bool,
    /// A valid token came in the query, i.e. from the address bar.
    query_token: bool,
}

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let Some(config) = req.app_data::<web::Data<GuardConfig>>().cloned() else {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the guard is not configured").into());
    };
    let admission = check(&req, &config)?;
    let set_cookie = admission
        .issue_cookie
        .then(|| config.sessions.issue())
        .flatten()
        .map(|value| cookie::set_cookie(&config.cookie_name, &value));
    // Redirect only a browser that will hold a session afterwards, or the
    // page it lands on would be refused.
    if admission.query_token && (admission.has_cookie || set_cookie.is_some()) && is_page(&req) {
        let mut res = HttpResponse::SeeOther();
        res.insert_header((header::LOCATION, without_token(req.uri().path(), req.query_string())))
            .insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(c) = set_cookie {
            res.insert_header((header::SET_COOKIE, c));
        }
        return Ok(req.into_response(res.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    if let Some(v) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res.map_into_left_body())
}

fn check(req: &ServiceRequest, config: &GuardConfig) -> Result<Admission, ApiError> {
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let admission = match &config.token {
        Some(token) => {
            let shown = |g: &str| constant_time_eq(g.as_bytes(), token.as_bytes());
            let query_token = query_token(req.query_string()).as_deref().is_some_and(shown);
            let bearer = text(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer ")).is_some_and(shown);
            let has_cookie = cookie::carried(req, &config.cookie_name).is_some_and(|v| config.sessions.is_valid(&v));
            if !(has_cookie || query_token || bearer) {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, "token-required", "this server needs its token"));
            }
            // Scripts send the header on every request and keep no cookies:
            // only a browser (which says where its fetch comes from) is
            // given a session for it, so scripts cannot churn the store.
            let browser = query_token || headers.contains_key("sec-fetch-site");
            Admission { issue_cookie: !has_cookie && browser, has_cookie, query_token }
        }
        None => {
            let host = text(header::HOST).unwrap_or("");
            if !is_local_host(host) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden-host",
                    format!("requests must be addressed to a local name (localhost, 127.0.0.1, [::1]), not {host:?}"),
                ));
            }
            Admission { issue_cookie: false, has_cookie: false, query_token: false }
        }
    };
    let upgrade = text(header::UPGRADE).is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if upgrade || changes_state {
        let what = if upgrade { "WebSocket upgrade" } else { "request" };
        let host = text(header::HOST).unwrap_or("");
        if let Some(given) = text(header::ORIGIN)
            && !origin::is_own_origin(given, host, config.port, config.token.is_some())
        {
            log::warn!("refused a {what} from origin {given:?}");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden-origin",
                format!("only this server's own pages may change anything; refused a {what} from origin {given:?}"),
            ));
        }
        if origin::foreign_fetch(text(header::HeaderName::from_static("sec-fetch-site"))) {
            log::warn!("refused a {what} a browser marked as coming from another origin");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden-origin",
                format!("only this server's own pages may change anything; refused a {what} started by another origin"),
            ));
        }
    }
    Ok(admission)
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn query_token(query: &str) -> Option<String> {
    web::Query::<TokenQuery>::from_query(query).ok().and_then(|q| q.0.token)
}

/// A page a browser navigates to (as opposed to an asset, an API call or a
/// script): only those are redirected, since a redirected script would lose
/// the token it relies on.
fn is_page(req: &ServiceRequest) -> bool {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return false;
    }
    let headers = req.headers();
    if let Some(dest) = headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) {
        return dest.eq_ignore_ascii_case("document");
    }
    let path = req.path();
    !path.starts_with("/api/")
        && path != "/healthz"
        && headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// The same URL without any `token` parameter. The path is made to start
/// with exactly one slash, so `//evil.example` cannot become a redirect to
/// another host.
fn without_token(path: &str, query: &str) -> String {
    let path = format!("/{}", path.trim_start_matches(['/', '\\']));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            web::Query::<Vec<(String, String)>>::from_query(&format!("{key}="))
                .map_or(true, |q| q.0.first().is_none_or(|(k, _)| k != "token"))
        })
        .collect();
    if kept.is_empty() { path } else { format!("{path}?{}", kept.join("&")) }
}

/// `localhost`, `*.localhost`, a loopback IP, with or without a port.
pub fn is_local_host(host: &str) -> bool {
    let name = strip_port(host);
    if name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(ip, _)| &host[..ip.len() + 2]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_with_or_without_ports_are_accepted() {
        for h in [
            "localhost",
            "localhost:7878",
            "LOCALHOST",
            "a.localhost:1",
            "127.0.0.1",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]",
            "[::1]:7878",
        ] {
            assert!(is_local_host(h), "{h}");
        }
    }

    #[test]
    fn foreign_names_are_refused() {
        for h in ["", "evil.com", "evil.com:7878", "localhost.evil.com", "10.0.0.1", "[::2]:1", "127.0.0.1.nip.io"] {
            assert!(!is_local_host(h), "{h}");
        }
    }

    #[test]
    fn the_redirect_keeps_every_parameter_but_the_token() {
        assert_eq!(without_token("/", "token=s3cret"), "/");
        assert_eq!(without_token("/viewer.html", "session=abc&token=s3cret&x=1"), "/viewer.html?session=abc&x=1");
        assert_eq!(without_token("/", "tok%65n=s3cret&token=again"), "/");
        assert_eq!(without_token("//evil.example/x", "token=s3cret"), "/evil.example/x");
        assert_eq!(without_token("/\\\\evil.example", "token=a"), "/evil.example");
    }
}

//! The localhost guard, in front of every route.
//!
//! - **Host allow-list** (DNS rebinding): a request whose `Host` is not a
//!   local name is refused. The raw header is used, never `Forwarded` /
//!   `X-Forwarded-Host`, which a client controls.
//! - **Origin check** (CSRF, cross-site WebSocket hijacking): WebSocket
//!   upgrades and state-changing requests that carry a foreign `Origin` are
//!   refused. Requests without `Origin` come from scripts, not pages.
//! - **Token**: when one is set, every request must carry it, as
//!   `Authorization: Bearer …` or `?token=…` (EventSource cannot set
//!   headers). With a token the Host allow-list is lifted: that is what lets
//!   panel listen beyond loopback.

use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::ApiError;

/// What the guard checks against.
#[derive(Debug, Clone, Default)]
pub struct GuardConfig {
    pub token: Option<String>,
}

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let config = req.app_data::<web::Data<GuardConfig>>().map(|c| c.get_ref().clone()).unwrap_or_default();
    check(&req, &config)?;
    next.call(req).await
}

fn check(req: &ServiceRequest, config: &GuardConfig) -> Result<(), ApiError> {
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    match &config.token {
        Some(token) => {
            let bearer = text(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
            let query = web::Query::<TokenQuery>::from_query(req.query_string()).ok().and_then(|q| q.0.token);
            let given = bearer.map(str::to_owned).or(query);
            if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, "token-required", "this server needs its token"));
            }
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
        }
    }
    let upgrade = text(header::UPGRADE).is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if (upgrade || changes_state)
        && let Some(origin) = text(header::ORIGIN)
        && !is_local_origin(origin, text(header::HOST).unwrap_or(""), config.token.is_some())
    {
        log::warn!("refused a {} from origin {origin:?}", if upgrade { "WebSocket upgrade" } else { "request" });
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden-origin",
            format!("cross-origin requests are refused (origin {origin:?})"),
        ));
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
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

/// An Origin is local when its host is; with a token set, the page must at
/// least come from the host it is talking to.
fn is_local_origin(origin: &str, host: &str, token_set: bool) -> bool {
    let Some(authority) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    if token_set {
        return authority.eq_ignore_ascii_case(host);
    }
    is_local_host(authority)
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
    fn origins_must_be_local_http_pages() {
        assert!(is_local_origin("http://localhost:7878", "localhost:7878", false));
        assert!(is_local_origin("http://127.0.0.1:7878", "localhost:7878", false));
        assert!(!is_local_origin("http://evil.com:7878", "localhost:7878", false));
        assert!(!is_local_origin("null", "localhost:7878", false));
        assert!(is_local_origin("http://10.0.0.5:7878", "10.0.0.5:7878", true));
        assert!(!is_local_origin("http://evil.com", "10.0.0.5:7878", true));
    }
}

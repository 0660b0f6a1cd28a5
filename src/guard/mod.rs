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
//! - **Invites** (only with a token): an invite's secret, shown the same
//!   ways (`?invite=…`, `Authorization: Bearer …`) or through a cookie bound
//!   to that invite, admits a request to ONE session ([`crate::invite`]); what it
//!   may reach there is one table ([`scope`]), everything else is `403
//!   invite-forbidden`. The request carries its [`Grant`], and its answer's
//!   stream ends when the invite is revoked ([`revocable`]). A revoked
//!   invite is `401 invite-revoked` from its next request on.
//!
//! No response carries the token or an invite's secret: errors are fixed
//! texts, and the redirect rebuilds the query without them.

mod cookie;
mod origin;
mod revocable;
mod scope;

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpResponse, web};

use crate::error::ApiError;
use crate::invite::{Grant, Invites, Refused, Role};
use cookie::Sessions;
use revocable::Revocable;

/// Most browsers one invite keeps signed in at once (a holder's phone,
/// laptop, a browser or two more); a further one signs out its oldest.
const INVITE_BROWSERS: usize = 8;

/// What the guard checks against, shared by every worker.
#[derive(Debug)]
pub struct GuardConfig {
    token: Option<String>,
    /// The port the listener actually bound (not the one asked for: tests bind 0).
    port: u16,
    cookie_name: String,
    /// Browsers let in by the token.
    sessions: Sessions,
    /// Browsers let in by an invite, by its id.
    invite_sessions: Sessions<String>,
    /// The invites on file; `None` without a token (there are none then:
    /// nobody beyond the token holder could be let in).
    invites: Option<Arc<Invites>>,
}

impl GuardConfig {
    pub fn new(token: Option<String>, port: u16) -> Self {
        Self {
            token,
            port,
            cookie_name: cookie::name(port),
            sessions: Sessions::default(),
            invite_sessions: Sessions::per_bound(INVITE_BROWSERS),
            invites: None,
        }
    }

    /// Admits the holders of these invites too (with a token only).
    pub fn with_invites(mut self, invites: Option<Arc<Invites>>) -> Self {
        self.invites = invites.filter(|_| self.token.is_some());
        self
    }
}

/// What a fresh session cookie is to be bound to.
enum Bound {
    Token,
    Invite(String),
}

/// How a request got in.
struct Admission {
    /// What an invite lets it do; `None` for the token holder (or, without
    /// a token, anyone local).
    grant: Option<Grant>,
    /// A session cookie should be issued with the answer: a browser showed a
    /// secret and holds no valid session for it yet.
    issue: Option<Bound>,
    /// The browser already holds a valid session cookie for what it showed.
    has_cookie: bool,
    /// A valid secret (the token or an invite's) came in the query, i.e.
    /// from the address bar.
    query_secret: bool,
}

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let Some(config) = req.app_data::<web::Data<GuardConfig>>().cloned() else {
        return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the guard is not configured").into());
    };
    let Admission { grant, issue, has_cookie, query_secret } = check(&req, &config)?;
    let set_cookie = issue
        .and_then(|bound| match bound {
            Bound::Token => config.sessions.issue(()),
            Bound::Invite(id) => config.invite_sessions.issue(id),
        })
        .map(|value| cookie::set_cookie(&config.cookie_name, &value));
    // Redirect only a browser that will hold a session afterwards, or the
    // page it lands on would be refused.
    if query_secret && (has_cookie || set_cookie.is_some()) && is_page(&req) {
        let mut res = HttpResponse::SeeOther();
        res.insert_header((header::LOCATION, without_secrets(req.uri().path(), req.query_string())))
            .insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(c) = set_cookie {
            res.insert_header((header::SET_COOKIE, c));
        }
        return Ok(req.into_response(res.finish()).map_into_right_body());
    }
    if let Some(grant) = &grant {
        req.extensions_mut().insert(grant.clone());
    }
    let mut req = req;
    consume_secrets(&mut req);
    let mut res = next.call(req).await?;
    if let Some(v) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    // Only an invite's answers are wrapped: the token holder's go out as ever.
    let res = match grant {
        None => res.map_into_left_body(),
        Some(grant) => res
            .map_body(|head, body| {
                let upgrade = head.status == StatusCode::SWITCHING_PROTOCOLS;
                Revocable::new(body, grant, !upgrade)
            })
            .map_into_right_body(),
    };
    Ok(res.map_into_left_body())
}

fn token_required() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "token-required", "this server needs its token")
}

fn refused(why: Refused) -> ApiError {
    match why {
        Refused::Revoked => ApiError::new(StatusCode::UNAUTHORIZED, "invite-revoked", "this invite has been revoked"),
        Refused::Unknown => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invite-unknown",
            "this invite is not known here (mistyped, or from another server)",
        ),
    }
}

/// The grant of an invite secret shown in the query or as a bearer, and
/// whether it came in the query. An unknown secret shows nothing (a bearer
/// may be a wrong token); a revoked one is refused.
fn shown_invite(
    config: &GuardConfig,
    query: Option<&str>,
    bearer: Option<&str>,
) -> Result<Option<(Grant, bool)>, ApiError> {
    let Some(invites) = &config.invites else { return Ok(None) };
    for (secret, from_query) in [(query, true), (bearer, false)] {
        match secret.map(|s| invites.admit(s)) {
            Some(Ok(grant)) => return Ok(Some((grant, from_query))),
            Some(Err(Refused::Revoked)) => return Err(refused(Refused::Revoked)),
            Some(Err(Refused::Unknown)) | None => {}
        }
    }
    Ok(None)
}

/// Who a request is, with a token set: the token (shown, or by its
/// cookie), or an invite (shown, or by its cookie). What is shown wins over
/// what the cookie says, so opening an invite link replaces the browser's
/// session with the invite's.
fn admit_with_token(req: &ServiceRequest, config: &GuardConfig, token: &str) -> Result<Admission, ApiError> {
    let headers = req.headers();
    let shown = |g: &str| constant_time_eq(g.as_bytes(), token.as_bytes());
    let query = secrets(req.query_string());
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let carried = cookie::carried(req, &config.cookie_name);
    // Scripts send the header on every request and keep no cookies: only a
    // browser (which says where its fetch comes from) is given a session
    // for it, so scripts cannot churn the store.
    let browser = headers.contains_key("sec-fetch-site");
    let query_token = query.token.as_deref().is_some_and(shown);
    if query_token || bearer.is_some_and(shown) {
        let has_cookie = carried.as_deref().is_some_and(|v| config.sessions.bound(v).is_some());
        let issue = (!has_cookie && (browser || query_token)).then_some(Bound::Token);
        return Ok(Admission { grant: None, issue, has_cookie, query_secret: query_token });
    }
    if let Some((grant, from_query)) = shown_invite(config, query.invite.as_deref(), bearer)? {
        let has_cookie =
            carried.as_deref().and_then(|v| config.invite_sessions.bound(v)).is_some_and(|id| id == grant.invite);
        let issue = (!has_cookie && (browser || from_query)).then(|| Bound::Invite(grant.invite.clone()));
        return Ok(Admission { grant: Some(grant), issue, has_cookie, query_secret: from_query });
    }
    if let Some(value) = carried.as_deref() {
        if config.sessions.bound(value).is_some() {
            return Ok(Admission { grant: None, issue: None, has_cookie: true, query_secret: false });
        }
        if let (Some(id), Some(invites)) = (config.invite_sessions.bound(value), &config.invites) {
            let grant = invites.by_id(&id).map_err(refused)?;
            return Ok(Admission { grant: Some(grant), issue: None, has_cookie: true, query_secret: false });
        }
    }
    if query.invite.is_some() && config.invites.is_some() {
        return Err(refused(Refused::Unknown));
    }
    Err(token_required())
}

fn check(req: &ServiceRequest, config: &GuardConfig) -> Result<Admission, ApiError> {
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let admission = match &config.token {
        Some(token) => admit_with_token(req, config, token)?,
        None => {
            let host = text(header::HOST).unwrap_or("");
            if !is_local_host(host) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden-host",
                    format!("requests must be addressed to a local name (localhost, 127.0.0.1, [::1]), not {host:?}"),
                ));
            }
            Admission { grant: None, issue: None, has_cookie: false, query_secret: false }
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
    if let Some(grant) = &admission.grant
        && !scope::allows(grant, req.method(), req.path(), req.query_string())
    {
        let may = match grant.role {
            Role::Watcher => "watch",
            Role::Speaker => "watch and speak in",
        };
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invite-forbidden",
            format!("this invite lets you {may} session {} only; this request is not part of that", grant.session),
        ));
    }
    Ok(admission)
}

/// The secrets a query may carry (a duplicated key carries none).
#[derive(Default, serde::Deserialize)]
struct Secrets {
    token: Option<String>,
    invite: Option<String>,
}

fn secrets(query: &str) -> Secrets {
    web::Query::<Secrets>::from_query(query).map(|q| q.0).unwrap_or_default()
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

/// Takes the `token` and `invite` parameters out of the request once they
/// have been read: the routes never see a secret (nor refuse it as a
/// parameter they do not know).
fn consume_secrets(req: &mut ServiceRequest) {
    let query = req.query_string();
    let shown = secrets(query);
    if shown.token.is_none() && shown.invite.is_none() {
        return;
    }
    let Ok(uri) = without_secrets(req.path(), query).parse::<actix_web::http::Uri>() else { return };
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

/// The same URL without any `token` or `invite` parameter. The path is
/// made to start with exactly one slash, so `//evil.example` cannot become
/// a redirect to another host.
fn without_secrets(path: &str, query: &str) -> String {
    let path = format!("/{}", path.trim_start_matches(['/', '\\']));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            web::Query::<Vec<(String, String)>>::from_query(&format!("{key}="))
                .map_or(true, |q| q.0.first().is_none_or(|(k, _)| k != "token" && k != "invite"))
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
    fn the_redirect_keeps_every_parameter_but_the_secrets() {
        assert_eq!(without_secrets("/", "token=s3cret"), "/");
        assert_eq!(without_secrets("/viewer.html", "session=abc&token=s3cret&x=1"), "/viewer.html?session=abc&x=1");
        assert_eq!(without_secrets("/", "tok%65n=s3cret&token=again"), "/");
        assert_eq!(without_secrets("//evil.example/x", "token=s3cret"), "/evil.example/x");
        assert_eq!(without_secrets("/\\\\evil.example", "token=a"), "/evil.example");
        assert_eq!(without_secrets("/", "invite=abc&x=1&%69nvite=again"), "/?x=1");
    }
}

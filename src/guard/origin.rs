//! Which pages may change anything: only panel's own.
//!
//! Browsers send cookies to every port of a host, and `SameSite` ignores
//! ports too, so a page served from `http://localhost:8000` counts as the
//! same site as panel on `localhost:7878`. It could post a `text/plain` body
//! (no preflight) or open a WebSocket (no CORS at all). The only thing that
//! tells such a page apart is its `Origin`, so a state-changing request or a
//! WebSocket upgrade that carries one must name this server exactly:
//! scheme `http`, the port the listener actually bound, and a host that is
//! this server — a local name on loopback, or with a token the very `Host`
//! the browser addressed.
//!
//! `Sec-Fetch-Site` (which every current browser sends, and scripts do not)
//! backs this up: a request a browser marks as started by another site, or
//! another origin of this site, is refused even without an `Origin`.

use super::is_local_host;

/// Whether `origin` is this server's own origin.
pub fn is_own_origin(origin: &str, host: &str, port: u16, token_set: bool) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let Some((origin_host, origin_port)) = split_authority(authority) else {
        return false;
    };
    if origin_port != port {
        return false;
    }
    if token_set {
        // Beyond loopback any name may reach the server, so the page must
        // come from the host it is talking to, on the port it bound.
        return split_authority(host)
            .is_some_and(|(name, host_port)| host_port == port && name.eq_ignore_ascii_case(origin_host));
    }
    is_local_host(origin_host)
}

/// Whether a browser says this request was started by a page of another
/// origin (`cross-site`, or `same-site` — another port or subdomain).
pub fn foreign_fetch(sec_fetch_site: Option<&str>) -> bool {
    sec_fetch_site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site") || s.eq_ignore_ascii_case("same-site"))
}

/// `host[:port]` → (host, port), the port defaulting to http's 80. An IPv6
/// host keeps its brackets. Anything with a path, user info or a bad port is
/// not an authority.
fn split_authority(authority: &str) -> Option<(&str, u16)> {
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return None;
    }
    let (name, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (name, rest) = authority.split_at(end + 1);
        (name, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    (!name.is_empty()).then_some((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_loopback_only_a_local_name_on_the_bound_port_is_own() {
        for o in ["http://localhost:7878", "http://127.0.0.1:7878", "http://[::1]:7878", "http://LOCALHOST:7878"] {
            assert!(is_own_origin(o, "127.0.0.1:7878", 7878, false), "{o}");
        }
        for o in [
            "http://localhost:8000",
            "http://127.0.0.1:7879",
            "http://localhost",
            "https://localhost:7878",
            "http://evil.com:7878",
            "http://localhost:7878/",
            "http://user@localhost:7878",
            "null",
            "",
        ] {
            assert!(!is_own_origin(o, "127.0.0.1:7878", 7878, false), "{o}");
        }
    }

    #[test]
    fn with_a_token_the_origin_must_be_the_host_the_browser_used() {
        assert!(is_own_origin("http://10.0.0.5:7878", "10.0.0.5:7878", 7878, true));
        assert!(is_own_origin("http://Box.lan:7878", "box.lan:7878", 7878, true));
        assert!(!is_own_origin("http://10.0.0.5:8000", "10.0.0.5:7878", 7878, true));
        assert!(!is_own_origin("http://evil.com:7878", "10.0.0.5:7878", 7878, true));
        // A port-80 server is addressed without a port.
        assert!(is_own_origin("http://box.lan", "box.lan", 80, true));
        assert!(!is_own_origin("http://box.lan", "box.lan", 7878, true));
    }

    #[test]
    fn browsers_marking_a_fetch_as_foreign_are_believed() {
        assert!(foreign_fetch(Some("cross-site")));
        assert!(foreign_fetch(Some("same-site")));
        assert!(!foreign_fetch(Some("same-origin")));
        assert!(!foreign_fetch(Some("none")));
        assert!(!foreign_fetch(None));
    }
}

//! Browser sessions behind `--token`, the way Jupyter does it: a browser
//! shows the token once, gets a session cookie, and from then on every
//! request it makes — assets, API, SSE, WebSocket, the shared worker, the
//! viewer's `logs/…` fetches — is let in by the cookie.
//!
//! Invariants:
//! - A cookie value is 256 random bits from the OS, never derived from the
//!   token: a leaked cookie does not reveal the token, and the token never
//!   has to sit in a cookie jar.
//! - Only values this process issued are accepted; they live in memory, so a
//!   restart signs every browser out (the token lets it back in).
//! - The store is bounded: when full, the oldest value is forgotten, so no
//!   stream of requests can grow it without limit.
//! - The cookie's name carries the bound port. Cookies ignore ports, so two
//!   servers on one host would otherwise overwrite each other's sessions.
//! - A value is bound to what let the browser in: the token (`()`), or one
//!   invite (its id). Each kind has a store of its own, so invitees opening
//!   their links again and again cannot push the token holder's session out;
//!   and one invite holds a few sessions at most (its oldest is forgotten
//!   first), so one invitee cannot push out the others'.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use actix_web::dev::ServiceRequest;
use actix_web::http::header;

/// Most browser sessions remembered at once.
const CAPACITY: usize = 4096;

/// The cookie values this server has issued, each with what it is bound to.
#[derive(Debug)]
pub struct Sessions<T = ()> {
    inner: Mutex<Store<T>>,
    /// Most values bound to one thing at once.
    per_bound: usize,
}

impl<T> Default for Sessions<T> {
    fn default() -> Self {
        Self { inner: Mutex::new(Store { known: HashMap::new(), order: VecDeque::new() }), per_bound: CAPACITY }
    }
}

impl<T> Sessions<T> {
    /// A store that keeps at most `n` values bound to any one thing.
    pub fn per_bound(n: usize) -> Self {
        Self { per_bound: n.max(1), ..Self::default() }
    }
}

#[derive(Debug)]
struct Store<T> {
    known: HashMap<String, T>,
    order: VecDeque<String>,
}

impl<T: Clone + PartialEq> Sessions<T> {
    /// A fresh value, remembered as bound to `bound`. `None` only if the OS
    /// has no randomness to give, in which case no cookie is set (the token
    /// or the invite's secret still works).
    pub fn issue(&self, bound: T) -> Option<String> {
        let mut bytes = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut bytes) {
            log::error!("no randomness for a session cookie: {e}");
            return None;
        }
        let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut store = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if self.per_bound < CAPACITY {
            let Store { known, order } = &mut *store;
            let same: Vec<usize> =
                order.iter().enumerate().filter(|(_, v)| known.get(*v) == Some(&bound)).map(|(i, _)| i).collect();
            if same.len() >= self.per_bound
                && let Some(oldest) = order.remove(same[0])
            {
                known.remove(&oldest);
            }
        }
        if store.order.len() >= CAPACITY
            && let Some(oldest) = store.order.pop_front()
        {
            store.known.remove(&oldest);
        }
        store.known.insert(value.clone(), bound);
        store.order.push_back(value.clone());
        Some(value)
    }

    /// What a value this server issued is bound to.
    pub fn bound(&self, value: &str) -> Option<T> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).known.get(value).cloned()
    }
}

/// The name of this server's session cookie.
pub fn name(port: u16) -> String {
    format!("panel-session-{port}")
}

/// The value of the cookie `name` the request carries, if any.
pub fn carried(req: &ServiceRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(::cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The `Set-Cookie` value for a fresh session: script-proof (`HttpOnly`),
/// never sent on requests other sites start (`SameSite=Strict`), for every path.
pub fn set_cookie(name: &str, value: &str) -> String {
    ::cookie::Cookie::build((name, value))
        .http_only(true)
        .same_site(::cookie::SameSite::Strict)
        .path("/")
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_values_are_long_random_and_remembered() {
        let sessions = Sessions::<&str>::default();
        let a = sessions.issue("one").unwrap();
        let b = sessions.issue("two").unwrap();
        assert_eq!(a.len(), 64, "256 bits in hex");
        assert_ne!(a, b);
        assert_eq!((sessions.bound(&a), sessions.bound(&b)), (Some("one"), Some("two")));
        assert_eq!(sessions.bound("0123"), None);
    }

    #[test]
    fn a_full_store_forgets_its_oldest_value() {
        let sessions = Sessions::<()>::default();
        let first = sessions.issue(()).unwrap();
        for _ in 0..CAPACITY {
            sessions.issue(());
        }
        assert!(sessions.bound(&first).is_none());
        assert_eq!(sessions.inner.lock().unwrap().known.len(), CAPACITY);
    }

    #[test]
    fn one_binding_holds_a_few_values_and_forgets_its_own_oldest_first() {
        let sessions = Sessions::<&str>::per_bound(2);
        let other = sessions.issue("b").unwrap();
        let first = sessions.issue("a").unwrap();
        let second = sessions.issue("a").unwrap();
        let third = sessions.issue("a").unwrap();
        assert_eq!(sessions.bound(&first), None);
        assert_eq!((sessions.bound(&second), sessions.bound(&third)), (Some("a"), Some("a")));
        assert_eq!(sessions.bound(&other), Some("b"), "another binding keeps its value");
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_for_every_path() {
        let text = set_cookie("panel-session-7878", "abc");
        for part in ["panel-session-7878=abc", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(text.contains(part), "{text}");
        }
    }
}

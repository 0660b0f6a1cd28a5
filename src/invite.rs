//! Invites: links that let someone watch ONE session, or speak in it, on a
//! server served with `--token`, without ever holding the token.
//!
//! Invariants:
//! - A secret is 256 random bits from the OS (`getrandom`), url-safe base64.
//!   It is shown once, in the answer that creates the invite, and never
//!   again: the server keeps only its SHA-256 digest, in memory and in
//!   `<logs>/<session>/invites.json` (written whole, to a temporary file
//!   renamed over the old one), so invites survive a restart and the file
//!   gives nothing away. No log line, error message or listing carries it.
//! - A revoked invite stays on file with its `revoked_at`, so its holder is
//!   told `invite-revoked` rather than a puzzling "unknown". Revoking flips
//!   the invite's watch channel, which every [`Grant`] made from it holds:
//!   the guard ends that holder's open streams on it, and the WebSocket
//!   route closes its socket.
//! - This module keeps invites and says who holds what; the guard admits
//!   requests with them, and what an invite may reach there is decided by
//!   the guard's table (`guard/scope.rs`), never here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use actix_web::HttpMessage as _;
use base64::Engine as _;
use panel_actors::id::SessionId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

/// The file beside a session's log that holds its invites.
pub const FILE: &str = "invites.json";

/// What an invite lets its holder do in its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read and stream the session.
    Watcher,
    /// That, and speak in it.
    Speaker,
}

impl Role {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "watcher" => Some(Self::Watcher),
            "speaker" => Some(Self::Speaker),
            _ => None,
        }
    }
}

/// What a request admitted by an invite may do, in the request's extensions
/// (see [`grant`]). A request admitted by the token carries none.
#[derive(Debug, Clone)]
pub struct Grant {
    pub session: SessionId,
    pub role: Role,
    /// The seat a speaker speaks as, when the invite fixes one.
    pub seat: Option<String>,
    /// The invite's id (not its secret).
    pub invite: String,
    revoked: watch::Receiver<bool>,
}

impl Grant {
    /// Resolves once the invite is revoked (at once if it already is).
    pub async fn revoked(&self) {
        let mut rx = self.revoked.clone();
        // A sender gone (never, while the store lives) counts as revoked.
        let _ = rx.wait_for(|revoked| *revoked).await;
    }
}

#[cfg(test)]
impl Grant {
    pub fn for_tests(session: SessionId, role: Role) -> Self {
        Self { session, role, seat: None, invite: "test".into(), revoked: watch::Sender::new(false).subscribe() }
    }
}

/// The grant a request was admitted with, if an invite admitted it. The
/// say and WebSocket routes use it to force an invite's seat.
pub fn grant(req: &actix_web::HttpRequest) -> Option<Grant> {
    req.extensions().get::<Grant>().cloned()
}

/// One invite as its file keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seat: Option<String>,
    /// SHA-256 of the secret, hex.
    digest: String,
    /// RFC 3339, UTC.
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    invites: Vec<Record>,
}

/// An invite as listed: everything but the secret (and its digest).
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub id: String,
    pub session: SessionId,
    pub role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    pub created: String,
}

/// Why a secret or an invite id admits nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    Revoked,
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("no randomness for an invite's secret")]
    NoRandomness,
    #[error("the session's invites could not be saved")]
    Save(#[source] panel_actors::record::RecordError),
}

struct Entry {
    session: SessionId,
    record: Record,
    revoked: watch::Sender<bool>,
}

impl Entry {
    fn new(session: SessionId, record: Record) -> Self {
        let revoked = watch::Sender::new(record.revoked_at.is_some());
        Self { session, record, revoked }
    }

    fn grant(&self) -> Result<Grant, Refused> {
        if self.record.revoked_at.is_some() {
            return Err(Refused::Revoked);
        }
        Ok(Grant {
            session: self.session.clone(),
            role: self.record.role,
            seat: self.record.seat.clone(),
            invite: self.record.id.clone(),
            revoked: self.revoked.subscribe(),
        })
    }

    fn listing(&self) -> Listing {
        Listing {
            id: self.record.id.clone(),
            session: self.session.clone(),
            role: self.record.role,
            seat: self.record.seat.clone(),
            created: self.record.created.clone(),
        }
    }
}

#[derive(Default)]
struct Store {
    /// By invite id.
    entries: HashMap<String, Entry>,
    /// Digest → invite id.
    by_digest: HashMap<String, String>,
}

/// Every invite of this server's sessions.
pub struct Invites {
    logs: PathBuf,
    store: Mutex<Store>,
}

impl std::fmt::Debug for Invites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invites").field("logs", &self.logs).finish_non_exhaustive()
    }
}

impl Invites {
    /// The invites on file under `logs`. A file that cannot be read is
    /// skipped with a warning: its invites admit nobody.
    pub fn load(logs: &Path) -> Self {
        let mut store = Store::default();
        for dir in std::fs::read_dir(logs).into_iter().flatten().flatten() {
            let Ok(session) = SessionId::parse(&dir.file_name().to_string_lossy()) else { continue };
            let path = dir.path().join(FILE);
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            match serde_json::from_str::<File>(&text) {
                Ok(file) => {
                    for record in file.invites {
                        store.by_digest.insert(record.digest.clone(), record.id.clone());
                        store.entries.insert(record.id.clone(), Entry::new(session.clone(), record));
                    }
                }
                Err(e) => log::warn!("session {session}: its invites cannot be read ({e}); they admit nobody"),
            }
        }
        Self { logs: logs.to_owned(), store: Mutex::new(store) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new invite to `session`, saved before it is answered; returns it
    /// and its secret. Blocking (it writes the session's file).
    pub fn create(
        &self,
        session: &SessionId,
        role: Role,
        seat: Option<String>,
    ) -> Result<(Listing, String), InviteError> {
        let secret = secret()?;
        let record = Record {
            id: hex(&random_bytes::<8>()?),
            role,
            seat,
            digest: digest(&secret),
            created: now(),
            revoked_at: None,
        };
        let mut store = self.lock();
        let entry = Entry::new(session.clone(), record);
        let listing = entry.listing();
        store.by_digest.insert(entry.record.digest.clone(), entry.record.id.clone());
        store.entries.insert(entry.record.id.clone(), entry);
        if let Err(e) = self.save(&store, session) {
            // Not on file, so not given out.
            if let Some(entry) = store.entries.remove(&listing.id) {
                store.by_digest.remove(&entry.record.digest);
            }
            return Err(e);
        }
        Ok((listing, secret))
    }

    /// The session's invites that still admit, oldest first.
    pub fn list(&self, session: &SessionId) -> Vec<Listing> {
        let store = self.lock();
        let mut listed: Vec<Listing> = store
            .entries
            .values()
            .filter(|e| &e.session == session && e.record.revoked_at.is_none())
            .map(Entry::listing)
            .collect();
        listed.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        listed
    }

    /// Revokes invite `id` of `session`: `false` if it has no such invite.
    /// Revoking twice is harmless. Blocking (it writes the session's file).
    pub fn revoke(&self, session: &SessionId, id: &str) -> Result<bool, InviteError> {
        let mut store = self.lock();
        let Some(entry) = store.entries.get_mut(id).filter(|e| &e.session == session) else {
            return Ok(false);
        };
        if entry.record.revoked_at.is_some() {
            return Ok(true);
        }
        entry.record.revoked_at = Some(now());
        let result = self.save(&store, session);
        // Revoked in memory even if the file could not say so: the holder is
        // stopped now, and the error tells the token holder to look.
        if let Some(entry) = store.entries.get(id) {
            entry.revoked.send_replace(true);
        }
        result.map(|()| true)
    }

    /// The grant a secret carries.
    pub fn admit(&self, secret: &str) -> Result<Grant, Refused> {
        let store = self.lock();
        let id = store.by_digest.get(&digest(secret)).ok_or(Refused::Unknown)?;
        store.entries.get(id).ok_or(Refused::Unknown)?.grant()
    }

    /// The grant of invite `id` (a browser's cookie names its invite).
    pub fn by_id(&self, id: &str) -> Result<Grant, Refused> {
        self.lock().entries.get(id).ok_or(Refused::Unknown)?.grant()
    }

    /// Writes every invite of `session` to its file, atomically.
    fn save(&self, store: &Store, session: &SessionId) -> Result<(), InviteError> {
        let mut invites: Vec<Record> =
            store.entries.values().filter(|e| &e.session == session).map(|e| e.record.clone()).collect();
        invites.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        let text = serde_json::to_string_pretty(&File { invites }).expect("invites serialize") + "\n";
        let path = self.logs.join(session.as_str()).join(FILE);
        panel_actors::record::write_atomic(&path, &text).map_err(InviteError::Save)
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], InviteError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| InviteError::NoRandomness)?;
    Ok(bytes)
}

/// A fresh secret: 256 random bits, url-safe base64 without padding.
fn secret() -> Result<String, InviteError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(dir: &Path, id: &str) -> SessionId {
        std::fs::create_dir_all(dir.join(id)).unwrap();
        SessionId::parse(id).unwrap()
    }

    #[test]
    fn a_secret_is_long_url_safe_and_only_its_digest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sid = session(dir.path(), "s-1");
        let invites = Invites::load(dir.path());
        let (listing, secret) = invites.create(&sid, Role::Watcher, None).unwrap();
        assert_eq!(secret.len(), 43, "256 bits in url-safe base64");
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{secret}");
        let file = std::fs::read_to_string(dir.path().join("s-1").join(FILE)).unwrap();
        assert!(!file.contains(&secret) && file.contains(&digest(&secret)), "{file}");
        assert_eq!(invites.admit(&secret).unwrap().invite, listing.id);
        assert_eq!(invites.admit("nope").unwrap_err(), Refused::Unknown);
    }

    #[test]
    fn invites_and_their_revocation_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let sid = session(dir.path(), "s-2");
        let invites = Invites::load(dir.path());
        let (kept, kept_secret) = invites.create(&sid, Role::Speaker, Some("Maya".into())).unwrap();
        let (gone, gone_secret) = invites.create(&sid, Role::Watcher, None).unwrap();
        let held = invites.admit(&gone_secret).unwrap();
        assert!(invites.revoke(&sid, &gone.id).unwrap());
        assert!(*held.revoked.borrow(), "a grant already given out hears of it");
        assert!(!invites.revoke(&SessionId::parse("s-3").unwrap(), &kept.id).unwrap(), "only its own session's");

        let again = Invites::load(dir.path());
        let grant = again.admit(&kept_secret).unwrap();
        assert_eq!((grant.role, grant.seat.as_deref()), (Role::Speaker, Some("Maya")));
        assert_eq!(again.admit(&gone_secret).unwrap_err(), Refused::Revoked);
        assert_eq!(again.list(&sid).iter().map(|l| l.id.clone()).collect::<Vec<_>>(), vec![kept.id]);
    }
}

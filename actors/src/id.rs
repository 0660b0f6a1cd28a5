//! Validated identifiers for sessions and characters.
//!
//! Both kinds of id end up as path components (`logs/<session>/`,
//! `roster/characters/<id>.md`), so the only way to make one is through
//! [`SessionId::parse`] / [`CharacterId::parse`], which accept nothing but
//! short `[a-z0-9-]` strings that do not start with a dash. No id can
//! therefore name `..`, an absolute path, or a hidden file.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a string was refused as an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} id {given:?} is not valid: use 1–{max} characters of a–z, 0–9 and '-', not starting with '-'")]
pub struct InvalidId {
    what: &'static str,
    given: String,
    max: usize,
}

fn check(what: &'static str, max: usize, s: &str) -> Result<(), InvalidId> {
    let ok = !s.is_empty()
        && s.len() <= max
        && !s.starts_with('-')
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        // Cap what we echo back: the input may be a megabyte of junk.
        let given: String = s.chars().take(80).collect();
        Err(InvalidId { what, given, max })
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The longest id accepted.
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                check($what, Self::MAX_LEN, s).map(|()| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        // Deserialising validates too, so a tampered log or request body
        // cannot smuggle a path in through serde.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// Names one session and its folder under `logs/`.
    SessionId,
    "session",
    64
);

id_type!(
    /// Names one character of the roster (`roster/characters/<id>.md`).
    CharacterId,
    "character",
    32
);

impl SessionId {
    /// A fresh id that sorts by creation time and is readable in a folder
    /// listing: `20261125-200431-k3qz`. The random suffix makes collisions
    /// within one second unlikely; the caller still creates the folder with
    /// `create_new` semantics and retries on a clash.
    pub fn generate(now: chrono::DateTime<chrono::Utc>) -> Self {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let suffix: String = (0..4).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect();
        Self(format!("{}-{suffix}", now.format("%Y%m%d-%H%M%S")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_the_logs_folder_are_refused() {
        for bad in ["", "..", "../etc", "a/b", "-x", "Ada", "a b", "a\0", "é", ".hidden"] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(SessionId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn plain_ids_are_accepted() {
        for good in ["ada", "20261125-200431-k3qz", "a-1", "0"] {
            assert_eq!(SessionId::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn generated_ids_are_valid() {
        let id = SessionId::generate(chrono::Utc::now());
        assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<CharacterId>("\"../x\"").is_err());
        assert!(serde_json::from_str::<CharacterId>("\"ada\"").is_ok());
    }
}

//! What the library is handed to store: a character before it has an id
//! (from a card, or made in the app), where an imported one came from, and
//! the image it shows. Plain values of the roster, so that the card formats
//! (`crate::cards`, above the roster) produce them and the roster's writer
//! stores them without knowing any card format.

/// What an import adds to the library, before it is given an id.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub name: String,
    pub tagline: String,
    pub colour: String,
    pub farewell: Option<String>,
    pub materials: String,
    /// For people, not for the prompt.
    pub creator_notes: Option<String>,
    pub source: Option<Source>,
}

/// Where an imported character came from, and what of it panel keeps unused.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub creator: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The card's own name, when it could not be used as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_name: Option<String>,
    /// Parts of the card kept but not used in panel's prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

/// An image to show for a character.
#[derive(Debug, Clone, PartialEq)]
pub struct Avatar {
    pub bytes: Vec<u8>,
    /// `png`, `jpg`, `webp` or `gif`.
    pub ext: &'static str,
}

impl Avatar {
    /// Takes `bytes` if they are an image panel can show.
    pub fn sniff(bytes: Vec<u8>) -> Option<Self> {
        let ext = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "png"
        } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            "jpg"
        } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            "webp"
        } else if bytes.starts_with(b"GIF8") {
            "gif"
        } else {
            return None;
        };
        Some(Self { bytes, ext })
    }
}

/// `text` without control characters (C0 but newline and tab, DEL, C1 —
/// ESC among them): card text reaches terminals and logs, and an escape
/// sequence in a greeting must not retitle a window, write a clipboard or
/// clear a screen. What is left of a sequence shows as plain text.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect()
}

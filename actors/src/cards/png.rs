//! Cards inside PNG files: reading the `ccv3` / `chara` text chunk, and
//! writing both into an avatar on export.
//!
//! A PNG is an 8-byte signature and chunks (length, type, data, CRC-32 of
//! type and data). Every chunk's CRC is checked; a card may sit in `tEXt`,
//! `zTXt` (zlib) or `iTXt` (optionally zlib), usually after the image data,
//! so the whole file is walked. Keywords match in any case; `ccv3` wins over
//! `chara`; of two chunks with the same keyword the first counts (as in
//! SillyTavern). Only the card chunk that counts is ever inflated — a
//! keyword is read before its text, so the thousands of other compressed
//! chunks a file may hold cost nothing — and inflation has one budget for
//! the whole file, [`MAX_INFLATE`]: a zlib bomb stops there and is refused.

use std::io::Read as _;

use base64::Engine as _;

use super::{CardError, MAX_CHUNK};

/// The most a card file may inflate to, all its chunks together.
pub const MAX_INFLATE: usize = MAX_CHUNK;

pub const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// One chunk: its type and data.
struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
}

/// Every chunk of `bytes`, checked; ends at IEND.
fn chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>, CardError> {
    let bad = |m: &str| CardError::BadPng(m.to_owned());
    if !bytes.starts_with(SIGNATURE) {
        return Err(bad("not a PNG (no PNG signature)"));
    }
    let mut at = SIGNATURE.len();
    let mut out = Vec::new();
    loop {
        let header = bytes.get(at..at + 8).ok_or_else(|| bad("truncated: the file ends inside a chunk header"))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = [header[4], header[5], header[6], header[7]];
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(bad("a chunk with an invalid type"));
        }
        let data = bytes.get(at + 8..at + 8 + len).ok_or_else(|| bad("truncated: the file ends inside a chunk"))?;
        let crc = bytes.get(at + 8 + len..at + 12 + len).ok_or_else(|| bad("truncated: a chunk has no CRC"))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&kind);
        hasher.update(data);
        if hasher.finalize().to_be_bytes() != crc {
            let name = String::from_utf8_lossy(&kind).into_owned();
            return Err(bad(&format!("the {name} chunk fails its CRC check (the file is damaged)")));
        }
        at += 12 + len;
        let end = &kind == b"IEND";
        out.push(Chunk { kind, data });
        if end {
            return Ok(out);
        }
    }
}

/// zlib-inflates `data`, spending `budget`; refused past it.
fn inflate(data: &[u8], budget: &mut usize) -> Result<Vec<u8>, CardError> {
    let mut out = Vec::new();
    let mut reader = flate2::read::ZlibDecoder::new(data).take(*budget as u64 + 1);
    reader.read_to_end(&mut out).map_err(|e| CardError::BadPng(format!("a compressed text chunk is corrupt: {e}")))?;
    if out.len() > *budget {
        return Err(CardError::InflatesTooFar(MAX_INFLATE));
    }
    *budget -= out.len();
    Ok(out)
}

/// A text chunk: its keyword (lowercased) and its text, not yet inflated.
struct Text<'a> {
    keyword: String,
    body: &'a [u8],
    compressed: bool,
}

impl Text<'_> {
    fn read(&self, budget: &mut usize) -> Result<Vec<u8>, CardError> {
        if self.compressed { inflate(self.body, budget) } else { Ok(self.body.to_vec()) }
    }
}

/// A text chunk's keyword and text, or `None` for other chunks.
fn text_of<'a>(chunk: &Chunk<'a>) -> Option<Text<'a>> {
    let data = chunk.data;
    let nul = data.iter().position(|b| *b == 0)?;
    let keyword = String::from_utf8_lossy(&data[..nul]).to_lowercase();
    let at = nul + 1;
    let (body, compressed) = match &chunk.kind {
        b"tEXt" => (&data[at..], false),
        // Compression method 0 (zlib) is the only one there is.
        b"zTXt" if data.get(at) == Some(&0) => (&data[at + 1..], true),
        b"iTXt" => {
            let flag = data.get(at).copied();
            // Language tag, NUL, translated keyword, NUL, then the text.
            let mut parts = data.get(at + 2..).unwrap_or_default().splitn(3, |b| *b == 0);
            let (_, _, text) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
            (text, flag == Some(1))
        }
        _ => return None,
    };
    Some(Text { keyword, body, compressed })
}

/// Base64 as SillyTavern reads it: whitespace and stray characters skipped,
/// padding optional.
pub fn lenient_base64(text: &[u8]) -> Result<Vec<u8>, CardError> {
    let clean: Vec<u8> =
        text.iter().copied().filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/')).collect();
    if clean.is_empty() {
        return Err(CardError::BadBase64("the card chunk is empty".into()));
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(&clean).map_err(|e| CardError::BadBase64(e.to_string()))
}

/// The card JSON inside a PNG (`ccv3` preferred over `chara`), as text.
pub fn card_text(bytes: &[u8]) -> Result<String, CardError> {
    card_text_within(bytes, MAX_INFLATE).map(|(text, _)| text)
}

/// [`card_text`] with an inflation budget of `budget` bytes for the whole
/// file; also says how many bytes were inflated.
pub fn card_text_within(bytes: &[u8], budget: usize) -> Result<(String, usize), CardError> {
    let chunks = chunks(bytes)?;
    let texts: Vec<Text<'_>> = chunks.iter().filter_map(text_of).collect();
    let first = |keyword: &str| texts.iter().find(|t| t.keyword == keyword);
    let card = first("ccv3").or_else(|| first("chara")).ok_or(CardError::NoCard)?;
    let mut left = budget;
    let text = card.read(&mut left)?;
    let json = lenient_base64(&text)?;
    Ok((String::from_utf8_lossy(&json).into_owned(), budget - left))
}

/// `png` with its card chunks replaced by `chara` (V2) and `ccv3` (V3)
/// `tEXt` chunks, just before IEND.
pub fn with_card(png: &[u8], v2: &str, v3: &str) -> Result<Vec<u8>, CardError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = SIGNATURE.to_vec();
    for chunk in chunks(png)? {
        let is_card = text_of(&chunk).is_some_and(|t| t.keyword == "chara" || t.keyword == "ccv3");
        if is_card {
            continue;
        }
        if &chunk.kind == b"IEND" {
            for (keyword, json) in [("chara", v2), ("ccv3", v3)] {
                let mut data = keyword.as_bytes().to_vec();
                data.push(0);
                data.extend(b64.encode(json).into_bytes());
                put(&mut out, b"tEXt", &data);
            }
        }
        put(&mut out, &chunk.kind, chunk.data);
    }
    Ok(out)
}

fn put(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(kind);
    hasher.update(data);
    out.extend(hasher.finalize().to_be_bytes());
}

/// A plain avatar for a character without one: a disc of its colour.
pub fn generated_avatar(colour: &str) -> Vec<u8> {
    const SIZE: u32 = 128;
    let hex = colour.trim_start_matches('#');
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("88"), 16).unwrap_or(0x88);
    let (r, g, b) = (byte(0), byte(2), byte(4));
    let mut pixels = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    let c = SIZE as f64 / 2.0;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let d = ((x as f64 + 0.5 - c).powi(2) + (y as f64 + 0.5 - c).powi(2)).sqrt();
            let alpha = ((c - d) * 2.0).clamp(0.0, 1.0);
            pixels.extend([r, g, b, (alpha * 255.0) as u8]);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, SIZE, SIZE);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    // Writing to memory cannot fail.
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(&pixels);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_written_into_a_png_reads_back_and_ccv3_wins() {
        let png = generated_avatar("#2f7dd1");
        let with = with_card(&png, r#"{"v":2}"#, r#"{"v":3}"#).unwrap();
        assert_eq!(card_text(&with).unwrap(), r#"{"v":3}"#);
        // Written again: the old card chunks are replaced, not added to.
        let again = with_card(&with, r#"{"v":22}"#, r#"{"v":33}"#).unwrap();
        assert_eq!(card_text(&again).unwrap(), r#"{"v":33}"#);
        let card_chunks = chunks(&again)
            .unwrap()
            .iter()
            .filter(|c| text_of(c).is_some_and(|t| t.keyword == "chara" || t.keyword == "ccv3"))
            .count();
        assert_eq!(card_chunks, 2);
    }

    #[test]
    fn base64_is_read_leniently() {
        assert_eq!(lenient_base64(b"eyJh\nIjox fQ").unwrap(), br#"{"a":1}"#);
    }
}

//! A small, strict decoder for `text/event-stream` bodies, as the WHATWG
//! spec (§9.2.6) reads them: bytes are buffered until a whole line, so a
//! multi-byte character or a CRLF split across reads is never mangled; lines
//! end in LF, CR or CRLF; `:` lines are comments; one space after the colon
//! is dropped; several `data:` lines join with `\n`; a blank line dispatches.
//! Unknown fields are kept (llama.cpp once sent errors as `error:` lines).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseMessage {
    /// The `event:` field, empty if none was given.
    pub event: String,
    pub data: String,
    /// Fields other than event/data/id/retry, in order.
    pub other: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    current: SseMessage,
    has_data: bool,
    /// The previous chunk ended in CR: a leading LF now belongs to it.
    skip_lf: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseMessage> {
        let mut out = Vec::new();
        let mut bytes = bytes;
        if self.skip_lf && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.skip_lf = false;
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                let line = self.buf[start..i].to_vec();
                let mut next = i + 1;
                if b == b'\r' {
                    match self.buf.get(next) {
                        Some(b'\n') => next += 1,
                        None => self.skip_lf = true,
                        _ => {}
                    }
                }
                self.line(&line, &mut out);
                start = next;
                i = next;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        out
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseMessage>) {
        if line.is_empty() {
            if self.has_data || !self.current.event.is_empty() || !self.current.other.is_empty() {
                out.push(std::mem::take(&mut self.current));
            }
            self.current = SseMessage::default();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*text, ""),
        };
        match field {
            "event" => self.current.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "id" | "retry" => {}
            other => self.current.other.push((other.to_owned(), value.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseMessage> {
        let mut d = SseDecoder::new();
        chunks.iter().flat_map(|c| d.feed(c)).collect()
    }

    #[test]
    fn events_survive_any_split_and_any_line_ending() {
        let text = "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n: comment\n\nevent: x\rdata:a\rdata: b\r\r";
        let whole = all(&[text.as_bytes()]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].event, "ping");
        assert_eq!(whole[0].data, "{\"type\": \"ping\"}");
        assert_eq!(whole[1].data, "a\nb");
        for cut in 0..text.len() {
            let (a, b) = text.as_bytes().split_at(cut);
            assert_eq!(all(&[a, b]), whole, "split at {cut}");
        }
    }

    #[test]
    fn multibyte_characters_split_across_reads_are_kept_whole() {
        let text = "data: é✓\n\n".as_bytes();
        let out = all(&[&text[..7], &text[7..]]);
        assert_eq!(out[0].data, "é✓");
    }

    #[test]
    fn unknown_fields_are_kept() {
        let out = all(&[b"error: {\"code\":400}\n\n"]);
        assert_eq!(out[0].other, [("error".to_owned(), "{\"code\":400}".to_owned())]);
    }
}

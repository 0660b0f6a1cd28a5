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

/// Longest line accepted. A server that sends more without a line break is
/// broken or hostile; the decoder refuses rather than buffer without bound.
pub const MAX_LINE: usize = 4 << 20;

/// A line longer than [`MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the event stream sent a line longer than {MAX_LINE} bytes")]
pub struct LineTooLong;

#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already scanned: they hold no line end,
    /// so each byte is looked at once however the stream is chunked.
    scanned: usize,
    current: SseMessage,
    has_data: bool,
    /// The last byte seen was a CR: a leading LF now belongs to it.
    skip_lf: bool,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseMessage>, LineTooLong> {
        let mut out = Vec::new();
        let Some((&first, rest)) = bytes.split_first() else {
            // An empty read says nothing, not even that a CR was not followed by LF.
            return Ok(out);
        };
        let bytes = if std::mem::take(&mut self.skip_lf) && first == b'\n' { rest } else { bytes };
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut i = self.scanned;
        while let Some(offset) = self.buf[i..].iter().position(|&b| b == b'\n' || b == b'\r') {
            let end = i + offset;
            let mut next = end + 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.skip_lf = true,
                    _ => {}
                }
            }
            let line = self.buf[start..end].to_vec();
            self.line(&line, &mut out);
            start = next;
            i = next;
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        if self.buf.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        Ok(out)
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
        chunks.iter().flat_map(|c| d.feed(c).unwrap()).collect()
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
    fn an_empty_read_between_cr_and_lf_does_not_split_an_event() {
        let out = all(&[b"data: a\r", b"", b"\ndata: b\r\n\r\n"]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].data, "a\nb");
    }

    #[test]
    fn a_line_without_end_past_the_cap_is_refused() {
        let mut d = SseDecoder::new();
        let chunk = vec![b'x'; 1 << 20];
        let results: Vec<_> = (0..5).map(|_| d.feed(&chunk)).collect();
        assert!(results[..4].iter().all(Result::is_ok));
        assert_eq!(results[4], Err(LineTooLong));
    }

    #[test]
    fn unknown_fields_are_kept() {
        let out = all(&[b"error: {\"code\":400}\n\n"]);
        assert_eq!(out[0].other, [("error".to_owned(), "{\"code\":400}".to_owned())]);
    }
}

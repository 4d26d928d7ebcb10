//! Bytes to lines with a maximum length: what keeps a server that never prints a newline from growing
//! catwalk's memory without bound.

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One item read from a newline-delimited stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its `\n` (or `\r\n`).
    Text(Bytes),
    /// A line longer than the limit; its bytes were discarded as they arrived, all but its first and last
    /// [`EDGE`] bytes (enough to find a JSON-RPC id at either end).
    TooLong {
        len: usize,
        head: Bytes,
        tail: Bytes,
    },
}

/// How much of each end of an oversized line is kept.
pub const EDGE: usize = 512;

/// Reads lines of at most `max` bytes; longer lines are skipped, never buffered whole.
pub struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
}

/// The state of a line being discarded: its length so far and its two ends.
struct Discard {
    len: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Discard {
    fn add(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        let room = EDGE.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.tail
            .extend_from_slice(&bytes[bytes.len().saturating_sub(EDGE)..]);
        let excess = self.tail.len().saturating_sub(EDGE);
        self.tail.drain(..excess);
    }

    fn finish(self) -> Line {
        Line::TooLong {
            len: self.len,
            head: self.head.into(),
            tail: self.tail.into(),
        }
    }
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// The next line, or `None` at end of stream.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut discarded: Option<Discard> = None;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return Ok(match discarded {
                    Some(d) => Some(d.finish()),
                    None if self.buf.is_empty() => None,
                    None => Some(Line::Text(self.take())),
                });
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = newline.unwrap_or(available.len());
            match discarded.as_mut() {
                Some(d) => d.add(&available[..chunk]),
                None if self.buf.len() + chunk > self.max => {
                    let mut d = Discard {
                        len: 0,
                        head: Vec::new(),
                        tail: Vec::new(),
                    };
                    d.add(&std::mem::take(&mut self.buf));
                    d.add(&available[..chunk]);
                    discarded = Some(d);
                }
                None => self.buf.extend_from_slice(&available[..chunk]),
            }
            self.inner.consume(chunk + usize::from(newline.is_some()));
            if newline.is_some() {
                return Ok(Some(match discarded {
                    Some(d) => d.finish(),
                    None => Line::Text(self.take()),
                }));
            }
        }
    }

    fn take(&mut self) -> Bytes {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Bytes::from(std::mem::take(&mut self.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn all(input: &[u8], max: usize, cap: usize) -> Vec<Line> {
        let mut r = LineReader::new(BufReader::with_capacity(cap, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn splits_and_caps_lines_across_buffer_boundaries() {
        for cap in [1, 3, 64] {
            let got = all(b"ab\r\n0123456789\ncd\n\nxyz", 5, cap).await;
            let digits = Bytes::from_static(b"0123456789");
            assert_eq!(
                got,
                vec![
                    Line::Text(Bytes::from_static(b"ab")),
                    Line::TooLong {
                        len: 10,
                        head: digits.clone(),
                        tail: digits
                    },
                    Line::Text(Bytes::from_static(b"cd")),
                    Line::Text(Bytes::new()),
                    Line::Text(Bytes::from_static(b"xyz")),
                ],
                "buffer capacity {cap}"
            );
        }
        let long: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let got = all(&long, 100, 7).await;
        assert_eq!(
            got,
            vec![Line::TooLong {
                len: 5000,
                head: Bytes::copy_from_slice(&long[..EDGE]),
                tail: Bytes::copy_from_slice(&long[5000 - EDGE..]),
            }]
        );
    }
}

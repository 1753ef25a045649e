//! A minimal HTTP/1.1 client connection: raw tokio TCP, `httparse` for response heads, and a
//! body decoder for `Content-Length`, chunked and close-delimited bodies. Every byte read or
//! written is counted, so the bench reports what went over the wire, headers included.
//!
//! A full client (hyper) keeps read and write buffers of several KB per connection; with tens of
//! thousands of mostly idle connections per process, a socket and a small growable buffer is
//! what fits.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::clients::Open;
use super::measure::Tally;

/// Most headers a response may have.
const MAX_HEADERS: usize = 32;
/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest body read in full (a Snapshot is ~60 bytes; this is generous for any server).
const MAX_BODY: usize = 256 * 1024;
/// What a connection's read buffer starts at and grows by: most responses fit at once.
const READ_CHUNK: usize = 512;

/// Opens a TCP connection to `addr`, from `source` when given (a loopback alias such as
/// 127.0.0.2, so one destination can take more than one address's worth of ports).
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The parts of a response head the bench needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub close: bool,
    pub etag: Option<String>,
    pub content_type: Option<String>,
}

impl Head {
    /// How this response's body is delimited (RFC 9112 §6.3).
    pub fn body(&self) -> BodyDecoder {
        if self.status == 304 || self.status == 204 || (100..200).contains(&self.status) {
            BodyDecoder::Length(0)
        } else if self.chunked {
            BodyDecoder::Chunked(Chunked::default())
        } else if let Some(n) = self.content_length {
            BodyDecoder::Length(n)
        } else {
            BodyDecoder::UntilClose
        }
    }
}

/// Parses a response head from the start of `buf`: `Ok(Some((head, len)))` when complete,
/// `Ok(None)` when more bytes are needed.
pub fn parse_head(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(invalid("response head too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("bad response head: {e}"))),
    };
    let mut head = Head {
        status: response.code.unwrap_or(0),
        content_length: None,
        chunked: false,
        close: response.version == Some(0),
        etag: None,
        content_type: None,
    };
    for h in response.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            head.content_length =
                Some(value.parse().map_err(|_| invalid("bad Content-Length header"))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().ends_with("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            head.close = v.contains("close") || (head.close && !v.contains("keep-alive"));
        } else if h.name.eq_ignore_ascii_case("etag") {
            head.etag = Some(value.to_owned());
        } else if h.name.eq_ignore_ascii_case("content-type") {
            head.content_type = Some(value.to_owned());
        }
    }
    Ok(Some((head, len)))
}

/// How a body ends, and the decoding state while it is read.
#[derive(Debug)]
pub enum BodyDecoder {
    Length(usize),
    Chunked(Chunked),
    UntilClose,
}

impl BodyDecoder {
    /// Decodes what it can from the front of `input` into `out`; returns how many bytes of
    /// `input` it used and whether the body is complete.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<(usize, bool)> {
        match self {
            BodyDecoder::Length(remaining) => {
                let n = input.len().min(*remaining);
                out.extend_from_slice(&input[..n]);
                *remaining -= n;
                Ok((n, *remaining == 0))
            }
            BodyDecoder::Chunked(chunked) => chunked.feed(input, out),
            BodyDecoder::UntilClose => {
                out.extend_from_slice(input);
                Ok((input.len(), false))
            }
        }
    }

    /// Whether the end of the connection is a proper end of this body.
    pub fn ends_at_close(&self) -> bool {
        matches!(self, BodyDecoder::UntilClose)
    }
}

/// Incremental decoder of `Transfer-Encoding: chunked` (RFC 9112 §7.1).
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    size: usize,
    /// Digits seen in the current size line (a size line without any is malformed).
    digits: u8,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    /// Chunk extensions, up to the end of the size line.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Trailer lines after the last chunk: `at_line_start` tells an empty line (the end).
    Trailer {
        at_line_start: bool,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
}

impl Chunked {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<(usize, bool)> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                ChunkState::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).unwrap_or(0) as usize;
                        self.size = self
                            .size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(digit))
                            .filter(|&s| s <= MAX_BODY * 64)
                            .ok_or_else(|| invalid("chunk size too large"))?;
                        self.digits = self.digits.saturating_add(1);
                    }
                    b';' | b' ' | b'\t' => self.state = ChunkState::Extension,
                    b'\r' => self.state = ChunkState::SizeLf,
                    b'\n' => self.end_size_line()?,
                    _ => return Err(invalid("bad chunk size")),
                },
                ChunkState::Extension => match b {
                    b'\r' => self.state = ChunkState::SizeLf,
                    b'\n' => self.end_size_line()?,
                    _ => {}
                },
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err(invalid("chunk size line not ended by CRLF"));
                    }
                    self.end_size_line()?;
                }
                ChunkState::Data => {
                    let n = (input.len() - i).min(self.size);
                    out.extend_from_slice(&input[i..i + n]);
                    self.size -= n;
                    i += n;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    continue;
                }
                ChunkState::DataCr => match b {
                    b'\r' => self.state = ChunkState::DataLf,
                    b'\n' => self.state = ChunkState::Size,
                    _ => return Err(invalid("chunk data not followed by CRLF")),
                },
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer { at_line_start } => match b {
                    b'\r' => self.state = ChunkState::TrailerLf { empty: at_line_start },
                    b'\n' if at_line_start => self.state = ChunkState::Done,
                    b'\n' => self.state = ChunkState::Trailer { at_line_start: true },
                    _ => self.state = ChunkState::Trailer { at_line_start: false },
                },
                ChunkState::TrailerLf { empty } => {
                    if b != b'\n' {
                        return Err(invalid("trailer line not ended by CRLF"));
                    }
                    self.state = if empty {
                        ChunkState::Done
                    } else {
                        ChunkState::Trailer { at_line_start: true }
                    };
                }
                ChunkState::Done => break,
            }
            i += 1;
            if self.state == ChunkState::Done {
                break;
            }
        }
        Ok((i, self.state == ChunkState::Done))
    }

    fn end_size_line(&mut self) -> io::Result<()> {
        if self.digits == 0 {
            return Err(invalid("chunk size line without a size"));
        }
        self.digits = 0;
        self.state = if self.size == 0 {
            ChunkState::Trailer { at_line_start: true }
        } else {
            ChunkState::Data
        };
        Ok(())
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One client connection: the socket, a small read buffer, and the tally its bytes go to.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    tally: Arc<Tally>,
    _open: Open,
    /// Responses read whole on this connection.
    served: u64,
    /// Bytes read since the last request was sent.
    answered: usize,
}

impl Conn {
    pub fn new((stream, open): (TcpStream, Open), tally: Arc<Tally>) -> Self {
        Conn { stream, buf: BytesMut::new(), tally, _open: open, served: 0, answered: 0 }
    }

    /// Writes `bytes` in full.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.answered = 0;
        self.stream.write_all(bytes).await?;
        self.tally.bytes_up.fetch_add(bytes.len() as u64, Relaxed);
        Ok(())
    }

    /// Sends a request and counts it in the tally.
    pub async fn request(&mut self, request: &[u8]) -> io::Result<()> {
        self.send(request).await?;
        self.tally.requests.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Sends a request, counts it, and reads its whole response.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<(Head, Vec<u8>)> {
        self.request(request).await?;
        let head = self.head().await?;
        let body = self.body(&head).await?;
        Ok((head, body))
    }

    /// Whether `e` means the server had closed this kept-alive connection before the request
    /// (an idle timeout): the request was never answered, and a client (as a browser does)
    /// retries it at once on a new connection rather than reporting a failure.
    pub fn closed_while_idle(&self, e: &io::Error) -> bool {
        use io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
        self.served > 0
            && self.answered == 0
            && matches!(e.kind(), UnexpectedEof | ConnectionReset | BrokenPipe)
    }

    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        self.answered += n;
        self.tally.bytes_down.fetch_add(n as u64, Relaxed);
        Ok(())
    }

    /// Reads the next response head.
    pub async fn head(&mut self) -> io::Result<Head> {
        loop {
            if let Some((head, len)) = parse_head(&self.buf)? {
                self.buf.advance(len);
                self.served += 1;
                return Ok(head);
            }
            self.fill().await?;
        }
    }

    /// Reads a whole body delimited as `head` says.
    pub async fn body(&mut self, head: &Head) -> io::Result<Vec<u8>> {
        let mut decoder = head.body();
        let mut out = Vec::new();
        loop {
            let (used, done) = decoder.feed(&self.buf, &mut out)?;
            self.buf.advance(used);
            if done {
                return Ok(out);
            }
            if out.len() > MAX_BODY {
                return Err(invalid("response body too large"));
            }
            match self.fill().await {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && decoder.ends_at_close() => {
                    return Ok(out);
                }
                other => other?,
            }
        }
    }

    /// Reads the next part of a streamed body into `out`, however much arrives; `Ok(false)`
    /// when the body has ended.
    pub async fn stream_body(
        &mut self,
        decoder: &mut BodyDecoder,
        out: &mut Vec<u8>,
    ) -> io::Result<bool> {
        loop {
            if !self.buf.is_empty() {
                let (used, done) = decoder.feed(&self.buf, out)?;
                self.buf.advance(used);
                if done {
                    return Ok(false);
                }
                if !out.is_empty() {
                    return Ok(true);
                }
            }
            self.fill().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_chunked_split(input: &[u8]) -> Vec<u8> {
        let mut whole = Vec::new();
        let (used, done) = Chunked::default().feed(input, &mut whole).unwrap();
        assert!(done);
        for cut in 0..=used {
            let mut c = Chunked::default();
            let mut out = Vec::new();
            let (a, d1) = c.feed(&input[..cut], &mut out).unwrap();
            assert_eq!(a, cut);
            let (b, d2) = c.feed(&input[cut..], &mut out).unwrap();
            assert!(d2 || d1, "split at {cut}");
            assert_eq!(a + b, used, "split at {cut}");
            assert_eq!(out, whole, "split at {cut}");
        }
        whole
    }

    #[test]
    fn chunked_bodies_decode_at_every_split() {
        let body = decode_chunked_split(b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\nNEXT");
        assert_eq!(body, b"hello, world");
        let body = decode_chunked_split(b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n");
        assert_eq!(body, b"abcdefghijklmnopqrstuvwxyz");
    }

    #[test]
    fn malformed_chunks_are_errors() {
        assert!(Chunked::default().feed(b"zz\r\n", &mut Vec::new()).is_err());
        assert!(Chunked::default().feed(b"\r\n", &mut Vec::new()).is_err());
        assert!(Chunked::default().feed(b"2\r\nabX", &mut Vec::new()).is_err());
        assert!(Chunked::default().feed(b"ffffffffffffffffff\r\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn heads_are_parsed() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"42\"\r\ncontent-length: 12\r\n\r\n{\"count\":1}";
        let (head, len) = parse_head(raw).unwrap().unwrap();
        assert_eq!(&raw[len..], b"{\"count\":1}");
        assert_eq!((head.status, head.content_length, head.chunked), (200, Some(12), false));
        assert_eq!(head.etag.as_deref(), Some("\"42\""));
        assert!(!head.close);
        assert!(matches!(head.body(), BodyDecoder::Length(12)));
        assert!(parse_head(&raw[..20]).unwrap().is_none());
        let (h304, _) = parse_head(b"HTTP/1.1 304 Not Modified\r\n\r\n").unwrap().unwrap();
        assert!(matches!(h304.body(), BodyDecoder::Length(0)));
        let (sse, _) =
            parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").unwrap().unwrap();
        assert!(matches!(sse.body(), BodyDecoder::Chunked(_)));
        let (old, _) = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert!(old.close && matches!(old.body(), BodyDecoder::UntilClose));
        assert!(parse_head(b"NOT HTTP\r\n\r\n").is_err());
    }
}

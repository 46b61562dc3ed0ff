//! The traffic's HTTP/1.1 client: one keep-alive connection per worker, written and read by the
//! worker itself. A request is one buffer written at once (head and body); an answer is read into
//! a buffer the connection keeps, and its body is handed out as a slice of it. No task, channel,
//! pool lock or allocation per request: the generator's CPU per request stays far below the
//! server's, so that on a shared machine it measures the server rather than itself. Setup and
//! the money check, outside the measured traffic, use `reqwest`.

use std::io;
use std::ops::Range;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take, connection included, before it counts as unanswered.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where requests go: `host:port` and the path every request path is appended to.
#[derive(Clone, Debug)]
pub struct Endpoint {
    authority: String,
    base_path: String,
}

impl Endpoint {
    /// An `http://host:port[/path]` URL (no TLS); a trailing `/` of the path is dropped.
    pub fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let Some(rest) = url.strip_prefix("http://") else {
            anyhow::bail!("{url}: only http:// URLs are supported");
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        anyhow::ensure!(!authority.is_empty(), "{url}: no host");
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint {
            authority,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }
}

/// One keep-alive connection, opened on first use and again after an error or a
/// `Connection: close`.
pub struct Connection {
    endpoint: Endpoint,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    input: Vec<u8>,
    /// The last answer's body: a range of `input`, or of `decoded` for a chunked one.
    body: Range<usize>,
    chunked: bool,
    decoded: Vec<u8>,
}

impl Connection {
    pub fn new(endpoint: Endpoint) -> Connection {
        Connection {
            endpoint,
            stream: None,
            request: Vec::with_capacity(4096),
            input: Vec::with_capacity(16 * 1024),
            body: 0..0,
            chunked: false,
            decoded: Vec::new(),
        }
    }

    /// The body of the last answer.
    pub fn body(&self) -> &[u8] {
        let buffer = if self.chunked {
            &self.decoded
        } else {
            &self.input
        };
        buffer.get(self.body.clone()).unwrap_or_default()
    }

    /// Sends a request (`key` as a bearer token unless empty, `body` as JSON) and reads the
    /// answer; its status, or `None` when none came (the connection is dropped then).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&[u8]>,
    ) -> Option<u16> {
        let r = &mut self.request;
        r.clear();
        r.extend_from_slice(method.as_bytes());
        r.push(b' ');
        r.extend_from_slice(self.endpoint.base_path.as_bytes());
        r.extend_from_slice(path.as_bytes());
        if self.endpoint.base_path.is_empty() && path.is_empty() {
            r.push(b'/');
        }
        r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        r.extend_from_slice(self.endpoint.authority.as_bytes());
        if !key.is_empty() {
            r.extend_from_slice(b"\r\nAuthorization: Bearer ");
            r.extend_from_slice(key.as_bytes());
        }
        if let Some(body) = body {
            r.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
            push_decimal(r, body.len());
            r.extend_from_slice(b"\r\n\r\n");
            r.extend_from_slice(body);
        } else {
            r.extend_from_slice(b"\r\n\r\n");
        }
        match tokio::time::timeout(TIMEOUT, self.exchange()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                self.stream = None;
                None
            }
        }
    }

    async fn exchange(&mut self) -> io::Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.endpoint.authority).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        stream.write_all(&self.request).await?;
        self.input.clear();
        self.chunked = false;
        let mut searched = 0;
        let head_end = loop {
            if let Some(at) = find(&self.input[searched..], b"\r\n\r\n") {
                break searched + at + 4;
            }
            searched = self.input.len().saturating_sub(3);
            read_more(stream, &mut self.input).await?;
        };
        let head = parse_head(&self.input[..head_end])?;
        match head.framing {
            Framing::Length(length) => {
                while self.input.len() < head_end + length {
                    read_more(stream, &mut self.input).await?;
                }
                self.body = head_end..head_end + length;
            }
            Framing::Chunked => {
                self.chunked = true;
                loop {
                    self.decoded.clear();
                    if decode_chunked(&self.input[head_end..], &mut self.decoded)? {
                        break;
                    }
                    read_more(stream, &mut self.input).await?;
                }
                self.body = 0..self.decoded.len();
            }
            Framing::UntilClose => {
                loop {
                    self.input.reserve(8192);
                    if stream.read_buf(&mut self.input).await? == 0 {
                        break;
                    }
                }
                self.body = head_end..self.input.len();
            }
        }
        if head.close || matches!(head.framing, Framing::UntilClose) {
            self.stream = None;
        }
        Ok(head.status)
    }
}

async fn read_more(stream: &mut TcpStream, input: &mut Vec<u8>) -> io::Result<()> {
    input.reserve(8192);
    if stream.read_buf(input).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// `n` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

struct Head {
    status: u16,
    framing: Framing,
    close: bool,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// The status line and the headers that say where the body ends and whether the connection
/// stays open.
fn parse_head(head: &[u8]) -> io::Result<Head> {
    let text = std::str::from_utf8(head).map_err(|_| invalid("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("status line"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| invalid("content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        }
    }
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(length) = length {
        Framing::Length(length)
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else {
        Framing::UntilClose
    };
    Ok(Head {
        status,
        framing,
        close,
    })
}

/// Decodes a chunked body into `out`: `true` when it is complete, `false` when more input is
/// needed.
fn decode_chunked(mut data: &[u8], out: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        let Some(line_end) = find(data, b"\r\n") else {
            return Ok(false);
        };
        let line = std::str::from_utf8(&data[..line_end]).map_err(|_| invalid("chunk size"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("chunk size"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailers, if any, end with an empty line.
            return Ok(data.starts_with(b"\r\n") || find(data, b"\r\n\r\n").is_some());
        }
        if data.len() < size + 2 {
            return Ok(false);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://127.0.0.1:8090/v1/purchases/").unwrap();
        assert_eq!(e.authority, "127.0.0.1:8090");
        assert_eq!(e.base_path, "/v1/purchases");
        let e = Endpoint::parse("http://localhost").unwrap();
        assert_eq!(e.authority, "localhost:80");
        assert_eq!(e.base_path, "");
        assert!(Endpoint::parse("https://example.com").is_err());
    }

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 201 Created\r\ncontent-length: 12\r\n\r\n").unwrap();
        assert_eq!(h.status, 201);
        assert!(matches!(h.framing, Framing::Length(12)));
        assert!(!h.close);
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert!(matches!(h.framing, Framing::Chunked));
        assert!(h.close);
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        assert!(!decode_chunked(b"4\r\nab", &mut out).unwrap());
        out.clear();
        assert!(decode_chunked(b"4\r\nabcd\r\n2;x=y\r\nef\r\n0\r\n\r\n", &mut out).unwrap());
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 450, 123_456_789] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    /// A request and its answer over a real socket, twice on one connection.
    #[tokio::test]
    async fn round_trip() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in [
                &b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"[..],
                &b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbad\r\n0\r\n\r\n"[..],
            ] {
                let mut buffer = vec![0u8; 4096];
                let n = socket.read(&mut buffer).await.unwrap();
                seen.push(String::from_utf8_lossy(&buffer[..n]).to_string());
                socket.write_all(answer).await.unwrap();
            }
            seen
        });
        let mut c = Connection::new(Endpoint::parse(&format!("http://{address}/base")).unwrap());
        assert_eq!(c.send("POST", "/p", "k", Some(b"{}")).await, Some(201));
        assert_eq!(c.body(), b"ok");
        assert_eq!(c.send("GET", "/w", "", None).await, Some(400));
        assert_eq!(c.body(), b"bad");
        let seen = server.await.unwrap();
        assert!(
            seen[0].starts_with("POST /base/p HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("Authorization: Bearer k\r\n"));
        assert!(seen[0].ends_with("Content-Length: 2\r\n\r\n{}"));
        assert!(seen[1].starts_with("GET /base/w HTTP/1.1\r\n"));
        assert!(!seen[1].contains("Authorization"));
    }
}

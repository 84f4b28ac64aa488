//! The HTTP load generator's connections: a prepared, signed request written whole, and
//! just enough HTTP/1.1 to read the answer; [`Api`] for set-up calls.

use crate::*;

// ---------------------------------------------------------------------------------------------
// The HTTP load generator
// ---------------------------------------------------------------------------------------------

/// A prepared awsJson1_1 request: the whole HTTP/1.1 message, written with one system call,
/// SigV4-signed with `test`/`test` for us-east-1 now (valid for 5 minutes on a server that
/// verifies: requests are prepared again for each run and each slice).
pub(crate) fn request(addr: SocketAddr, op: &str, body: &[u8]) -> Bytes {
    let host = addr.to_string();
    let target = format!("TrentService.{op}");
    let headers = vec![
        ("content-type".to_string(), AMZ_JSON.to_string()),
        ("host".to_string(), host.clone()),
        ("x-amz-target".to_string(), target.clone()),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let date = cks_sim::auth::format_amz_date(now);
    let scope = cks_sim::auth::sigv4::Scope {
        date: date[..8].to_string(),
        region: "us-east-1".into(),
        service: "kms".into(),
    };
    let unsigned = cks_sim::auth::SignedRequest {
        method: "POST",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body,
    };
    let [(_, amz_date), (_, auth)] =
        cks_sim::auth::sign_headers(("test", "test"), &scope, &date, &unsigned);
    let mut r = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {AMZ_JSON}\r\n\
         X-Amz-Target: {target}\r\nX-Amz-Date: {amz_date}\r\nAuthorization: {auth}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    Bytes::from(r)
}

/// How a response's body ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Framing {
    Length(usize),
    Chunked,
    /// Neither length nor chunks: the body runs until the server closes.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, PartialEq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// Bytes of the status line and headers, blank line included.
    pub(crate) len: usize,
    pub(crate) framing: Framing,
    pub(crate) close: bool,
}

/// Parse a response head from `buf`; `Ok(None)` while it is incomplete.
pub(crate) fn parse_head(buf: &[u8]) -> Res<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut head = Head {
        status,
        len: end + 4,
        framing: Framing::UntilClose,
        close: status_line.starts_with("HTTP/1.0"),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") && head.framing != Framing::Chunked {
            let n = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            head.framing = Framing::Length(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            head.framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some(head))
}

/// Where a chunked body that starts at `buf[0]` ends (the byte after its last chunk and the
/// blank line after it, trailers not expected); `Ok(None)` while it is incomplete.
pub(crate) fn chunked_end(buf: &[u8]) -> Res<Option<usize>> {
    let mut at = 0;
    loop {
        let Some(nl) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[at..at + nl]).map_err(|_| "bad chunk size")?;
        let hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size {hex:?}"))?;
        at += nl + 2 + size + 2;
        if at > buf.len() {
            return Ok(None);
        }
        if size == 0 {
            return Ok(Some(at));
        }
    }
}

/// One HTTP/1.1 connection to a loopback server speaking just enough of the protocol for this
/// load (and no more than `wrk` would): a prepared request written whole, one request in
/// flight, the response read by its length (or chunks, or until the server closes). No
/// headers are copied and nothing is allocated per request, so the load generator spends its
/// CPU on system calls rather than on a general-purpose client, leaving the machine to the
/// server under test.
pub(crate) struct Conn {
    pub(crate) addr: SocketAddr,
    pub(crate) stream: Option<tokio::net::TcpStream>,
    pub(crate) buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> Res<Conn> {
        let mut c = Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 << 10),
        };
        c.reconnect().await?;
        Ok(c)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    pub(crate) async fn reconnect(&mut self) -> Res<()> {
        if !self.addr.ip().is_loopback() {
            return Err(format!("refusing to send load to {}: loopback only", self.addr).into());
        }
        self.stream = None;
        let s = tokio::net::TcpStream::connect(self.addr).await?;
        s.set_nodelay(true)?;
        self.stream = Some(s);
        Ok(())
    }

    /// Send `req`, read the response; returns the status and the body's range in
    /// [`Conn::body`]. A connection the server closes (or asks to close) is dropped; the next
    /// call must [`Conn::reconnect`] first.
    pub(crate) async fn exchange(&mut self, req: &[u8]) -> Res<(u16, std::ops::Range<usize>)> {
        let r = self.exchange_inner(req).await;
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    pub(crate) async fn exchange_inner(
        &mut self,
        req: &[u8],
    ) -> Res<(u16, std::ops::Range<usize>)> {
        let stream = self.stream.as_ref().ok_or("connection closed")?;
        let mut off = 0;
        while off < req.len() {
            match stream.try_write(&req[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.writable().await?,
                Err(e) => return Err(e.into()),
            }
        }
        self.buf.clear();
        let mut head: Option<Head> = None;
        let mut chunk = [0u8; 16 << 10];
        loop {
            if let Some(h) = &head {
                let body = &self.buf[h.len..];
                let done = match h.framing {
                    Framing::Length(n) => (body.len() >= n).then_some(n),
                    Framing::Chunked => chunked_end(body)?,
                    Framing::UntilClose => None,
                };
                if let Some(n) = done {
                    let (status, start, close) = (h.status, h.len, h.close);
                    if close {
                        self.stream = None;
                    }
                    return Ok((status, start..start + n));
                }
            }
            stream.readable().await?;
            match stream.try_read(&mut chunk) {
                Ok(0) => {
                    return match head {
                        Some(h) if h.framing == Framing::UntilClose => {
                            self.stream = None;
                            Ok((h.status, h.len..self.buf.len()))
                        }
                        _ => Err("the server closed the connection mid-response".into()),
                    };
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if head.is_none() {
                        head = parse_head(&self.buf)?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The bytes of the last response's body (`range` from [`Conn::exchange`]).
    pub(crate) fn body(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.buf[range]
    }
}

/// One connection for set-up calls: sends `TrentService.<op>` and parses the JSON answer.
pub(crate) struct Api {
    pub(crate) conn: Conn,
}

impl Api {
    pub(crate) async fn new(addr: SocketAddr) -> Res<Api> {
        Ok(Api {
            conn: Conn::open(addr).await?,
        })
    }

    pub(crate) async fn call(&mut self, op: &str, body: Value) -> Res<Value> {
        let req = request(self.conn.addr, op, body.to_string().as_bytes());
        if !self.conn.is_open() {
            self.conn.reconnect().await?;
        }
        let (status, range) = match self.conn.exchange(&req).await {
            Ok(r) => r,
            Err(_) => {
                // The server may have closed an idle keep-alive connection: one retry.
                self.conn.reconnect().await?;
                self.conn.exchange(&req).await?
            }
        };
        let out = self.conn.body(range);
        if status != 200 {
            return Err(format!("{op}: HTTP {status}: {}", String::from_utf8_lossy(out)).into());
        }
        Ok(serde_json::from_slice(out).unwrap_or(Value::Null))
    }

    /// `GET path` on the simulator's control door, parsed as JSON.
    pub(crate) async fn get(&mut self, path: &str) -> Res<Value> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.conn.addr);
        if !self.conn.is_open() {
            self.conn.reconnect().await?;
        }
        let (status, range) = self.conn.exchange(req.as_bytes()).await?;
        let out = self.conn.body(range);
        if status != 200 {
            return Err(format!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(out)
            )
            .into());
        }
        Ok(serde_json::from_slice(out)?)
    }
}

/// A server under load: where to send, and which process to charge CPU time to.
#[derive(Clone, Copy)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
}

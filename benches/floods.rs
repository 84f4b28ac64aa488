//! Floods (issue 20, item 10): what hostile or careless clients can make the server hold.
//!
//! Starts a release `cks-sim serve` (`CKS_SIM_BIN`, set by `scripts/bench --floods`) with a
//! short idle timeout, and reports its peak resident memory (`VmHWM`) after each flood:
//!
//! 1. 1,000 parallel requests, each a 1 MiB rpc-v2-cbor body that is one array of tiny items
//!    (the worst case for a decoder that builds a tree: about a million items per body);
//! 2. the same with awsJson1_1 bodies of half a million tiny JSON values;
//! 3. 2,000 slow clients that send half a request line and stall (more than `max_connections`),
//!    while a normal request waits for a free connection slot.
//!
//! Plain std: threads and TCP sockets on loopback, bounded in count and time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Res<()> {
    let bin = PathBuf::from(std::env::var("CKS_SIM_BIN").map_err(|_| "set CKS_SIM_BIN")?);
    let dir = tempfile::tempdir()?;
    let (mut child, addr) = start(&bin, dir.path())?;
    let pid = child.id();
    let base = peak_kib(pid)?;
    println!("| flood | answers | server peak RSS (VmHWM) |");
    println!("| --- | --- | --- |");
    println!("| (idle, after start-up) | - | {} MiB |", base / 1024);
    let cbor = cbor_body(1 << 20);
    let answers = parallel(addr, 1000, &cbor_request(&cbor))?;
    println!(
        "| 1,000 × 1 MiB CBOR arrays of tiny items | {answers} | {} MiB |",
        peak_kib(pid)? / 1024
    );
    let json = json_body(1 << 20);
    let answers = parallel(addr, 1000, &json_request(&json))?;
    println!(
        "| 1,000 × 1 MiB JSON arrays of tiny values | {answers} | {} MiB |",
        peak_kib(pid)? / 1024
    );
    let waited = slow_clients(addr, 2000)?;
    println!(
        "| 2,000 stalled clients (idle timeout 2 s) | health answered after {} ms | {} MiB |",
        waited.as_millis(),
        peak_kib(pid)? / 1024
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    Ok(())
}

fn start(bin: &PathBuf, dir: &std::path::Path) -> Res<(Child, SocketAddr)> {
    let config = dir.join("floods.toml");
    std::fs::write(&config, "[server]\nidle_timeout_ms = 2000\n")?;
    let port_file = dir.join("port");
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--port-file")
        .arg(&port_file)
        .env("CKS_SIM_LOG", "error")
        .stdin(Stdio::null())
        .spawn()?;
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(format!("cks-sim serve exited: {status}").into());
        }
        if let Ok(a) = std::fs::read_to_string(&port_file)
            && !a.trim().is_empty()
        {
            return Ok((child, a.trim().parse()?));
        }
        if t0.elapsed() > Duration::from_secs(120) {
            return Err("cks-sim did not start within 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn peak_kib(pid: u32) -> Res<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no VmHWM".into())
}

/// A CBOR map `{"Filters": [0, 0, …]}` of about `size` bytes.
fn cbor_body(size: usize) -> Vec<u8> {
    let n = size - 16;
    let mut b = vec![0xa1, 0x67];
    b.extend_from_slice(b"Filters");
    b.push(0x9a);
    b.extend_from_slice(&(n as u32).to_be_bytes());
    b.extend(std::iter::repeat_n(0u8, n));
    b
}

fn json_body(size: usize) -> Vec<u8> {
    let mut b = b"{\"Tags\":[".to_vec();
    while b.len() < size - 4 {
        b.extend_from_slice(b"0,");
    }
    b.extend_from_slice(b"0]}");
    b
}

fn cbor_request(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /service/BaldrApiService/operation/DescribeClusters HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         smithy-protocol: rpc-v2-cbor\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn json_request(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nx-amz-target: TrentService.CreateKey\r\n\
         content-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Send `request` on `n` connections at once; returns a summary of the status lines.
fn parallel(addr: SocketAddr, n: usize, request: &[u8]) -> Res<String> {
    let request = std::sync::Arc::new(request.to_vec());
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let request = std::sync::Arc::clone(&request);
            std::thread::spawn(move || -> Option<String> {
                let mut s = TcpStream::connect(addr).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
                s.write_all(&request).ok()?;
                let mut head = [0u8; 12];
                s.read_exact(&mut head).ok()?;
                Some(String::from_utf8_lossy(&head[9..12]).into_owned())
            })
        })
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for t in threads {
        let status = t
            .join()
            .ok()
            .flatten()
            .unwrap_or_else(|| "no answer".into());
        *counts.entry(status).or_insert(0) += 1;
    }
    Ok(counts
        .iter()
        .map(|(k, v)| format!("{v} × {k}"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// Open `n` connections that send half a request line and stall; then time a health request.
fn slow_clients(addr: SocketAddr, n: usize) -> Res<Duration> {
    let stalled: Vec<TcpStream> = (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(b"POST / HT").ok()?;
            Some(s)
        })
        .collect();
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.write_all(b"GET /_sim/health HTTP/1.1\r\nHost: 127.0.0.1\r\nconnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let waited = t0.elapsed();
    drop(stalled);
    Ok(waited)
}

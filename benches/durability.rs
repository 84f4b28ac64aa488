//! Durability's price (issue 20, item 7): what `[server] durability = "full"` (SQLite
//! `synchronous=FULL`, the default: every acknowledged change is synced to disk) costs against
//! `"normal"` (survives a crashed process, not a power loss).
//!
//! Starts two release servers (`CKS_SIM_BIN`, set by `scripts/bench --durability`), each with
//! its own data directory and tokens, identical but for `durability`, and measures on each, in
//! alternating A B B A blocks so that both see the same disk and CPU weather:
//!
//! 1. CreateKey in a connected CloudHSM key store (a token key generation and one commit);
//! 2. a connect and disconnect cycle of that store (a kmsuser login, a password rotation on the
//!    token, and the commits of each state change);
//! 3. Encrypt, which writes nothing and must not be slower.
//!
//! One keep-alive connection per server, one request at a time (mutations are serialised by
//! the simulator anyway). Plain std: loopback TCP, bounded in count and time.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Blocks per workload (each an A B B A quartet: both servers measured twice).
const QUARTETS: usize = 3;

fn main() -> Res<()> {
    let bin = PathBuf::from(std::env::var("CKS_SIM_BIN").map_err(|_| "set CKS_SIM_BIN")?);
    let dir = tempfile::tempdir()?;
    let mut full = Sim::start(&bin, dir.path(), "full")?;
    let mut normal = Sim::start(&bin, dir.path(), "normal")?;
    // The two servers are dropped (stopped by PID) before `dir` is removed.
    let (full_store, normal_store) = (full.connected_store()?, normal.connected_store()?);
    let (full_key, normal_key) = (
        full.create_key(Some(&full_store))?,
        normal.create_key(Some(&normal_store))?,
    );
    println!("| workload | durability full | durability normal | full / normal |");
    println!("|---|---:|---:|---:|");
    progress("CreateKey");
    let create = paired(&mut full, &mut normal, 25, |s, i| {
        let store = if i == 0 { &full_store } else { &normal_store };
        s.create_key(Some(store)).map(drop)
    })?;
    row("CreateKey in a CloudHSM key store, 1 conn", create, "/s");
    progress("disconnect + connect");
    let cycle = paired(&mut full, &mut normal, 5, |s, i| {
        let store = if i == 0 { &full_store } else { &normal_store };
        s.reconnect(store)
    })?;
    row(
        "DisconnectCustomKeyStore + ConnectCustomKeyStore to CONNECTED",
        cycle,
        "/s",
    );
    progress("Encrypt");
    let encrypt = paired(&mut full, &mut normal, 2000, |s, i| {
        let key = if i == 0 { &full_key } else { &normal_key };
        s.call(
            "Encrypt",
            json!({ "KeyId": key, "Plaintext": "AAAAAAAAAAAAAAAAAAAAAA==" }),
        )
        .map(drop)
    })?;
    row("Encrypt 16 B, CloudHSM key, 1 conn", encrypt, "/s");
    Ok(())
}

fn progress(what: &str) {
    eprintln!("bench: durability: {what}");
}

/// Rates (per second) of the same `n`-operation block on both servers, A B B A, `QUARTETS`
/// times: the totals over every block of each side.
fn paired(
    a: &mut Sim,
    b: &mut Sim,
    n: usize,
    mut op: impl FnMut(&mut Sim, usize) -> Res<()>,
) -> Res<(f64, f64)> {
    let mut spent = [Duration::ZERO; 2];
    for _ in 0..QUARTETS {
        for side in [0, 1, 1, 0] {
            let sim = if side == 0 { &mut *a } else { &mut *b };
            let t0 = Instant::now();
            for _ in 0..n {
                op(sim, side)?;
            }
            spent[side] += t0.elapsed();
        }
    }
    let ops = (2 * QUARTETS * n) as f64;
    Ok((ops / spent[0].as_secs_f64(), ops / spent[1].as_secs_f64()))
}

fn row(what: &str, (full, normal): (f64, f64), unit: &str) {
    println!(
        "| {what} | {full:.1} {unit} | {normal:.1} {unit} | {:.0}% |",
        100.0 * full / normal
    );
}

/// One `cks-sim serve` child and a keep-alive connection to it.
struct Sim {
    child: Child,
    data: PathBuf,
    conn: BufReader<TcpStream>,
}

impl Sim {
    fn start(bin: &Path, dir: &Path, durability: &str) -> Res<Sim> {
        let config = dir.join(format!("{durability}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\ndurability = \"{durability}\"\n[auth]\nmode = \"none\"\n\
                 [simulation]\nconnect_delay_ms = 1\ndisconnect_delay_ms = 1\n"
            ),
        )?;
        let data = dir.join(durability);
        let port_file = dir.join(format!("{durability}.port"));
        let child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .arg("--port-file")
            .arg(&port_file)
            .env("CKS_SIM_LOG", "error")
            .stdin(Stdio::null())
            .spawn()?;
        let mut child = child;
        let within = Duration::from_secs(120);
        let addr = match cks_sim::testing::wait_for_port_file(&mut child, &port_file, within) {
            Ok(a) => a,
            Err(e) => {
                stop(&mut child);
                return Err(e.to_string().into());
            }
        };
        let conn = match TcpStream::connect(addr).and_then(|c| c.set_nodelay(true).map(|()| c)) {
            Ok(c) => BufReader::new(c),
            Err(e) => {
                stop(&mut child);
                return Err(e.into());
            }
        };
        Ok(Sim { child, data, conn })
    }

    /// One KMS operation; an error answer is an error.
    fn call(&mut self, op: &str, body: Value) -> Res<Value> {
        let body = body.to_string();
        let mut request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nx-amz-target: TrentService.{op}\r\n\
             content-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body.as_bytes());
        // One write: a request split over two segments would wait for the delayed ACK.
        if let Err(e) = self.conn.get_mut().write_all(&request) {
            let status = self.child.try_wait()?;
            return Err(format!("{op}: sending failed ({e}); the server: {status:?}").into());
        }
        let (status, answer) = self.read_response()?;
        if status != 200 {
            return Err(format!("{op}: HTTP {status}: {answer}").into());
        }
        Ok(serde_json::from_str(&answer)?)
    }

    /// Status and body of one response with a `content-length`.
    fn read_response(&mut self) -> Res<(u16, String)> {
        let mut line = String::new();
        self.conn.read_line(&mut line)?;
        let status = line.split(' ').nth(1).ok_or("no status")?.parse()?;
        let mut length = 0;
        loop {
            line.clear();
            self.conn.read_line(&mut line)?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.conn.read_exact(&mut body)?;
        Ok((status, String::from_utf8(body)?))
    }

    fn read_data(&self, file: &str) -> Res<String> {
        Ok(std::fs::read_to_string(self.data.join(file))?
            .trim()
            .to_string())
    }

    /// Create and connect a key store on the default cluster.
    fn connected_store(&mut self) -> Res<String> {
        let v = self.call(
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "durability",
                "CloudHsmClusterId": self.read_data("default-cluster-id")?,
                "TrustAnchorCertificate": self.read_data("customerCA.crt")?,
                "KeyStorePassword": self.read_data("kmsuser-password")?,
            }),
        )?;
        let id = v["CustomKeyStoreId"]
            .as_str()
            .ok_or("no store ID")?
            .to_string();
        self.call("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": id }))?;
        self.wait_for(&id, "CONNECTED")?;
        Ok(id)
    }

    fn create_key(&mut self, store: Option<&str>) -> Res<String> {
        let body = match store {
            Some(s) => json!({ "CustomKeyStoreId": s, "Origin": "AWS_CLOUDHSM" }),
            None => json!({}),
        };
        let v = self.call("CreateKey", body)?;
        Ok(v["KeyMetadata"]["KeyId"]
            .as_str()
            .ok_or("no KeyId")?
            .to_string())
    }

    fn reconnect(&mut self, store: &str) -> Res<()> {
        let id = json!({ "CustomKeyStoreId": store });
        self.call("DisconnectCustomKeyStore", id.clone())?;
        self.wait_for(store, "DISCONNECTED")?;
        self.call("ConnectCustomKeyStore", id)?;
        self.wait_for(store, "CONNECTED")
    }

    /// Poll until key store `id` is in `state` (60 s at most).
    fn wait_for(&mut self, id: &str, state: &str) -> Res<()> {
        let t0 = Instant::now();
        loop {
            let d = self.call("DescribeCustomKeyStores", json!({ "CustomKeyStoreId": id }))?;
            let now = d["CustomKeyStores"][0]["ConnectionState"]
                .as_str()
                .unwrap_or("");
            if now == state {
                return Ok(());
            }
            if now == "FAILED" || t0.elapsed() > Duration::from_secs(60) {
                return Err(format!("store {id} is {now}, not {state}: {d}").into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Stop a server by its PID and reap it.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

//! Child processes (stopped by PID): `cks-sim serve` and moto_server, and the set-up of a
//! server through the KMS API.

use crate::*;

// ---------------------------------------------------------------------------------------------
// Child processes (stopped by PID)
// ---------------------------------------------------------------------------------------------

pub(crate) struct Proc {
    pub(crate) child: Option<Child>,
    pub(crate) what: &'static str,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub(crate) fn check_alive(&mut self) -> Res<()> {
        if let Some(c) = self.child.as_mut()
            && let Some(status) = c.try_wait()?
        {
            return Err(format!("{} exited early: {status}", self.what).into());
        }
        Ok(())
    }

    /// SIGTERM by PID, wait up to 15 s, then SIGKILL. Returns how long the stop took.
    pub(crate) fn stop(&mut self) -> Duration {
        let t0 = Instant::now();
        let Some(mut child) = self.child.take() else {
            return Duration::ZERO;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = child.try_wait() {
                return t0.elapsed();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        t0.elapsed()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) struct Sim {
    pub(crate) proc: Proc,
    pub(crate) addr: SocketAddr,
    pub(crate) data: PathBuf,
}

/// Start `cks-sim serve` on 127.0.0.1:0 with `data` as its data directory; returns it with the
/// time from spawn until its port file appeared (it is written once start-up is complete:
/// tokens open, stores resumed and logged in).
pub(crate) fn start_sim(
    set: &Settings,
    data: &Path,
    run: &str,
    seed: Option<&Path>,
    config: Option<&Path>,
) -> Res<(Sim, Duration)> {
    let port_file = set.dir.join(format!("port-{run}"));
    let log = std::fs::File::create(set.dir.join(format!("cks-sim-{run}.log")))?;
    let t0 = Instant::now();
    let mut cmd = Command::new(&set.sim_bin);
    cmd.arg("serve");
    if let Some(seed) = seed {
        cmd.arg("--seed").arg(seed);
    }
    // The load generator sends one fixed, unverifiable signature: every server it measures
    // runs with `[auth] mode = "none"` unless its own configuration says otherwise.
    let default_config = set.dir.join("auth-none.toml");
    let config = match config {
        Some(c) => c.to_path_buf(),
        None => {
            std::fs::write(&default_config, AUTH_NONE)?;
            default_config
        }
    };
    cmd.arg("--config").arg(config);
    let child = cmd
        .args(["--listen", "127.0.0.1:0", "--connect-delay-ms", "0"])
        .arg("--data-dir")
        .arg(data)
        .arg("--port-file")
        .arg(&port_file)
        .env("CKS_SIM_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let mut proc = Proc {
        child: Some(child),
        what: "cks-sim serve",
    };
    let child = proc.child.as_mut().ok_or("cks-sim serve is not running")?;
    // Shared with the HTTP tests (tests/common).
    let addr = cks_sim::testing::wait_for_port_file(child, &port_file, Duration::from_secs(300))?;
    let took = t0.elapsed();
    Ok((
        Sim {
            proc,
            addr,
            data: data.to_path_buf(),
        },
        took,
    ))
}

pub(crate) fn settle_disk() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_millis(500));
}

pub(crate) fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Start moto_server on a free loopback port and wait until it answers ListKeys.
pub(crate) async fn start_moto(set: &Settings, bin: &Path) -> Res<(Proc, SocketAddr, Duration)> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = std::fs::File::create(set.dir.join("moto.log"))?;
    let t0 = Instant::now();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let mut proc = Proc {
        child: Some(child),
        what: "moto_server",
    };
    loop {
        proc.check_alive()?;
        if let Ok(mut api) = Api::new(addr).await
            && api.call("ListKeys", json!({})).await.is_ok()
        {
            break;
        }
        if t0.elapsed() > Duration::from_secs(90) {
            return Err("moto_server did not answer within 90 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((proc, addr, t0.elapsed()))
}

// ---------------------------------------------------------------------------------------------
// cks-sim set-up through the KMS API
// ---------------------------------------------------------------------------------------------

pub(crate) fn read_data(data: &Path, file: &str) -> Res<String> {
    Ok(std::fs::read_to_string(data.join(file))
        .map_err(|e| format!("read {file}: {e}"))?
        .trim()
        .to_string())
}

/// Create and connect a key store on the default cluster; returns its ID.
pub(crate) async fn connected_store(sim: &Sim, api: &mut Api) -> Res<String> {
    let cluster = read_data(&sim.data, "default-cluster-id")?;
    let anchor = std::fs::read_to_string(sim.data.join("customerCA.crt"))?;
    let password = read_data(&sim.data, "kmsuser-password")?;
    let v = api
        .call(
            "CreateCustomKeyStore",
            json!({
                "CustomKeyStoreName": "bench",
                "CloudHsmClusterId": cluster,
                "TrustAnchorCertificate": anchor,
                "KeyStorePassword": password,
            }),
        )
        .await?;
    let id = v["CustomKeyStoreId"]
        .as_str()
        .ok_or("no CustomKeyStoreId")?
        .to_string();
    api.call("ConnectCustomKeyStore", json!({ "CustomKeyStoreId": id }))
        .await?;
    wait_connected(api, &id).await?;
    Ok(id)
}

/// The session copies of keys the cluster's token holds (`None` if the server does not say).
pub(crate) async fn session_copies(api: &mut Api, cluster: &str) -> Res<Option<u64>> {
    Ok(api
        .get(&format!("/_sim/clusters/{cluster}/token/stats"))
        .await?
        .get("session_copies")
        .and_then(Value::as_u64))
}

/// Poll until key store `id` is CONNECTED (60 s at most).
pub(crate) async fn wait_connected(api: &mut Api, id: &str) -> Res<()> {
    let t0 = Instant::now();
    loop {
        let d = api
            .call("DescribeCustomKeyStores", json!({ "CustomKeyStoreId": id }))
            .await?;
        let state = d["CustomKeyStores"][0]["ConnectionState"]
            .as_str()
            .unwrap_or("");
        match state {
            "CONNECTED" => return Ok(()),
            "FAILED" => return Err(format!("store failed to connect: {d}").into()),
            _ if t0.elapsed() > Duration::from_secs(60) => {
                return Err(format!("store still {state} after 60 s").into());
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// A second cluster with its own token, a connected key store and [`SMALL_KEYS`]: the scale
/// figures compare the default cluster's growing token with this one in interleaved slices.
pub(crate) const SMALL_STORE: &str = "cks-0000000000000be9c";
pub(crate) const SMALL_KEYS: usize = 10;

pub(crate) fn small_key_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

pub(crate) fn small_token_seed() -> String {
    let mut s = format!(
        "[[cluster]]\nid = \"cluster-benchsmallkeys\"\nazs = 2\n\
         [[cluster.user]]\nname = \"kmsuser\"\nrole = \"crypto-user\"\npassword = \"benchKmsuser1\"\n\n\
         [[key_store]]\nid = \"{SMALL_STORE}\"\nname = \"bench-small\"\n\
         cluster_id = \"cluster-benchsmallkeys\"\npassword = \"benchKmsuser1\"\nconnect = true\n"
    );
    for i in 0..SMALL_KEYS {
        s.push_str(&format!(
            "\n[[key]]\nid = \"{}\"\nkey_store = \"{SMALL_STORE}\"\n",
            small_key_id(i)
        ));
    }
    s
}

pub(crate) fn create_key_body(store: &str) -> Bytes {
    Bytes::from(json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": store}).to_string())
}

pub(crate) async fn create_key(api: &mut Api, store: Option<&str>) -> Res<String> {
    let body = match store {
        Some(s) => json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": s}),
        None => json!({}),
    };
    let v = api.call("CreateKey", body).await?;
    Ok(v["KeyMetadata"]["KeyId"]
        .as_str()
        .ok_or("no KeyId")?
        .to_string())
}

/// Page through ListKeys with `limit`; returns every key ID and the time the pass took.
pub(crate) async fn list_all(api: &mut Api, limit: u32) -> Res<(Vec<String>, Duration, u32)> {
    let t0 = Instant::now();
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0u32;
    loop {
        let mut body = json!({ "Limit": limit });
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let v = api.call("ListKeys", body).await?;
        pages += 1;
        for k in v["Keys"].as_array().ok_or("ListKeys without Keys")? {
            ids.push(k["KeyId"].as_str().unwrap_or_default().to_string());
        }
        match v["NextMarker"].as_str() {
            Some(m) if v["Truncated"] == json!(true) => marker = Some(m.to_string()),
            _ => break,
        }
        if pages > 100_000 || t0.elapsed() > Duration::from_secs(300) {
            return Err("ListKeys pagination did not end".into());
        }
    }
    Ok((ids, t0.elapsed(), pages))
}

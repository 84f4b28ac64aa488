//! The promises at the edges (hostile or absurd input, exposure, secrets at rest): each test
//! fails on the defect it names.

use crate::common::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

#[test]
fn an_oversized_control_door_body_gets_413_and_is_never_held_in_memory() {
    let sim = Sim::start();
    // Warm up on a body just within the limit (1 MiB of spaces is an empty JSON body), so the
    // baseline includes what any large request costs: buffers, threads, allocator arenas.
    let mut within = vec![b' '; (1 << 20) - 2];
    within.extend_from_slice(b"{}");
    let (status, v) =
        block_on(sim.control().raw("POST", "/_sim/settings", &[], within)).expect("an answer");
    assert_eq!(status, 200, "{v}");
    let before = peak_rss_kib(sim.pid());
    let body = vec![b' '; 60 << 20];
    let (status, v) = block_on(sim.control().raw(
        "POST",
        "/_sim/settings",
        &[("content-type", "application/json")],
        body,
    ))
    .expect("an answer");
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["__type"], "RequestEntityTooLarge", "{v}");
    assert_eq!(
        v["message"],
        "The request body is larger than 1048576 bytes."
    );
    let grown = peak_rss_kib(sim.pid()).saturating_sub(before);
    assert!(
        grown < 24 * 1024,
        "a 60 MiB body grew the peak resident memory by {grown} KiB"
    );
}

#[test]
fn a_clock_advance_that_is_not_finite_or_past_1000_years_is_refused_and_the_data_dir_restarts() {
    let mut sim = Sim::start();
    let c = sim.control();
    for body in [json!({"seconds": 1e308}), json!({"days": 400_000})] {
        let e = block_on(c.call("POST", "/_sim/clock/advance", Some(body.clone())))
            .expect_err("refused");
        assert!(e.to_string().contains("at most 1000 years"), "{body}: {e}");
    }
    let e = block_on(c.call(
        "POST",
        "/_sim/clock/advance",
        Some(json!({"seconds": 1e308, "hours": 1e308})),
    ))
    .expect_err("refused");
    assert!(e.to_string().contains("only moves forward"), "{e}");
    let now = block_on(c.call("GET", "/_sim/clock", None)).expect("clock");
    assert!(now["now"].as_f64().is_some_and(f64::is_finite), "{now}");
    sim.restart();
    let after = block_on(sim.control().call("GET", "/_sim/clock", None)).expect("clock");
    assert_eq!(after["offset_seconds"], 0.0);
}

#[test]
fn a_start_on_an_unreadable_record_names_the_file_the_record_and_the_way_out() {
    let mut sim = Sim::start();
    block_on(
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 1}))),
    )
    .expect("advance");
    sim.stop();
    let db = sim.data_dir().join("cks-sim.sqlite");
    let conn = rusqlite::Connection::open(&db).expect("open the store");
    conn.execute(
        "UPDATE meta SET doc = '{\"offset_seconds\": null}' WHERE id = 'clock'",
        [],
    )
    .expect("corrupt the clock record");
    drop(conn);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(sim.data_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(
        err.contains("the record meta/clock cannot be read"),
        "{err}"
    );
    assert!(err.contains("DELETE FROM meta WHERE id = 'clock'"), "{err}");
    assert!(err.contains("another --data-dir"), "{err}");
}

#[test]
fn a_listen_address_beyond_loopback_is_refused_without_allow_remote() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
            "/nonexistent/never",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("0.0.0.0:0 is reachable from other machines"),
        "{err}"
    );
    assert!(err.contains("--allow-remote"), "{err}");
}

#[test]
fn allow_remote_accepts_a_listen_address_beyond_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port_file = dir.path().join("port");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
        .args([
            "serve",
            "--allow-remote",
            "--listen",
            "0.0.0.0:0",
            "--no-default-seed",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--port-file")
        .arg(&port_file)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("run serve");
    let addr = deadline_poll("the port file", 60, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve --allow-remote exited: {status}");
        }
        std::fs::read_to_string(&port_file)
            .ok()
            .filter(|s| !s.is_empty())
    });
    let port = addr.rsplit(':').next().unwrap().to_string();
    let c = cks_sim::client::ControlClient::new(&format!("http://127.0.0.1:{port}"));
    let health = block_on(c.call("GET", "/_sim/health", None));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(addr.starts_with("0.0.0.0:"), "{addr}");
    assert_eq!(health.expect("health")["status"], "ok");
}

/// One HTTP/1.1 request over a raw socket, with `host` as its Host header.
fn get_with_host(sim: &Sim, path: &str, host: &str) -> (u16, String) {
    let addr = sim.endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn the_control_door_answers_only_requests_addressed_to_a_loopback_name() {
    let sim = Sim::start();
    let port = sim.endpoint.rsplit(':').next().unwrap().to_string();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "[::1]".into(),
    ] {
        let (status, text) = get_with_host(&sim, "/_sim/health", &host);
        assert_eq!(status, 200, "{host}: {text}");
    }
    for host in [
        format!("attacker.example:{port}"),
        "127.0.0.1.nip.io".into(),
    ] {
        let (status, text) = get_with_host(&sim, "/_sim/clusters", &host);
        assert_eq!(status, 403, "{host}: {text}");
        assert!(text.contains("\"__type\":\"Forbidden\""), "{text}");
    }
}

#[test]
fn the_data_dir_and_every_file_with_a_secret_are_private_to_their_owner() {
    let sim = Sim::start();
    let dir = sim.data_dir();
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&dir), 0o700);
    for f in [
        "cks-sim.sqlite",
        "internal-token-pin",
        "kmsuser-password",
        "admin-password",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let m = mode(&entry.path());
        assert_eq!(m & 0o077, 0, "{} is {m:o}", entry.path().display());
    }
}

#[test]
fn a_cli_password_can_come_from_standard_input_so_it_never_shows_in_ps() {
    let sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
        .args([
            "user",
            "login",
            "--endpoint",
            &sim.endpoint,
            "--cluster-id",
            &cluster,
        ])
        .args(["--username", "admin", "--password-file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the CLI");
    writeln!(child.stdin.take().unwrap(), "{}", sim.admin_password()).unwrap();
    let out = child.wait_with_output().expect("CLI output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let users = block_on(sim.control().call(
        "GET",
        &format!("/_sim/clusters/{cluster}/users"),
        None,
    ))
    .expect("users");
    let admin = users["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["username"] == "admin"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(admin["logged_in"], true, "{users}");
}

#[test]
fn a_json_request_with_more_than_10000_values_is_refused_before_it_is_decoded() {
    let sim = Sim::start();
    let body = format!("{{\"Tags\":[{}0]}}", "0,".repeat(20_000));
    let (status, v) = block_on(sim.control().raw(
        "POST",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "TrentService.CreateKey"),
        ],
        body.into_bytes(),
    ))
    .expect("an answer");
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["__type"], "SerializationException");
    assert_eq!(
        v["message"],
        "the request body holds more than 10000 JSON values"
    );
}

#[test]
fn a_cbor_request_with_more_than_10000_items_is_refused_before_it_is_decoded() {
    let sim = Sim::start();
    let n: u32 = 20_000;
    let mut body = vec![0xa1, 0x67];
    body.extend_from_slice(b"Filters");
    body.push(0x9a);
    body.extend_from_slice(&n.to_be_bytes());
    body.extend(std::iter::repeat_n(0x00, n as usize));
    let (status, v) = block_on(sim.control().raw(
        "POST",
        "/service/BaldrApiService/operation/DescribeClusters",
        &[
            ("smithy-protocol", "rpc-v2-cbor"),
            ("content-type", "application/cbor"),
        ],
        body,
    ))
    .expect("an answer");
    assert_eq!(status, 400, "{v}");
    let text = v.as_str().unwrap_or_default();
    assert!(text.contains("SerializationException"), "{v}");
    assert!(text.contains("more than 10000 CBOR items"), "{v}");
}

/// Send one request with a secret in it and return the whole answer as text.
fn answer(sim: &Sim, method: &str, path: &str, target: Option<&str>, body: &Value) -> String {
    let mut headers = vec![("content-type", "application/x-amz-json-1.1")];
    if let Some(t) = target {
        headers.push(("x-amz-target", t));
    }
    let (status, v) =
        block_on(
            sim.control()
                .raw(method, path, &headers, body.to_string().into_bytes()),
        )
        .expect("an answer");
    assert!(status >= 400, "{path} {target:?} accepted {body}: {v}");
    v.to_string()
}

/// Requests that put `secret` (not a valid value) in each sensitive member of each door.
fn requests_with(
    secret: &str,
    cluster: &str,
    store: &str,
    key: &str,
) -> Vec<(&'static str, String, Option<&'static str>, Value)> {
    let users = format!("/_sim/clusters/{cluster}/users");
    let anchor = "-----BEGIN CERTIFICATE-----";
    let long = format!("{secret}{}", "x".repeat(40));
    let short = &secret[..6];
    let plaintext = base64_of(&format!("{secret}{}", "p".repeat(4100)));
    vec![
        (
            "POST",
            "/".into(),
            Some("TrentService.CreateCustomKeyStore"),
            json!({
            "CustomKeyStoreName": "s", "CloudHsmClusterId": cluster,
            "TrustAnchorCertificate": anchor, "KeyStorePassword": long}),
        ),
        (
            "POST",
            "/".into(),
            Some("TrentService.CreateCustomKeyStore"),
            json!({
            "CustomKeyStoreName": "s", "CloudHsmClusterId": cluster,
            "TrustAnchorCertificate": anchor, "KeyStorePassword": short}),
        ),
        (
            "POST",
            "/".into(),
            Some("TrentService.UpdateCustomKeyStore"),
            json!({
            "CustomKeyStoreId": store, "KeyStorePassword": long}),
        ),
        (
            "POST",
            "/".into(),
            Some("TrentService.Encrypt"),
            json!({"KeyId": key, "Plaintext": plaintext}),
        ),
        (
            "POST",
            users.clone(),
            None,
            json!({"username": "u1", "role": "crypto-user", "password": long}),
        ),
        (
            "POST",
            users.clone(),
            None,
            json!({"username": "u1", "role": "crypto-user", "password": short}),
        ),
        (
            "POST",
            format!("{users}/admin/password"),
            None,
            json!({
            "new_password": long, "auth_user": "admin", "auth_password": secret}),
        ),
        (
            "POST",
            format!("{users}/admin/login"),
            None,
            json!({"password": secret}),
        ),
        (
            "POST",
            format!("/_sim/clusters/{cluster}/activate"),
            None,
            json!({"admin_password": secret}),
        ),
        (
            "POST",
            users,
            None,
            json!({"username": "u1", "role": "crypto-user", "password": secret.len() as u64 * 1_000_003}),
        ),
    ]
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Property: for any secret, sent as an invalid value of each sensitive member of each door,
/// the secret appears in no answer and no log line (the server logs at debug level).
#[test]
fn no_sensitive_value_is_echoed_in_any_answer_or_log_line() {
    use proptest::test_runner::{Config, TestRunner};
    let sim = Sim::start_logged(&[]);
    let (store, cluster) = block_on(connected_store(&sim, "secrets"));
    let key = block_on(cloudhsm_key(&sim, &store));
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let sent = std::cell::RefCell::new(Vec::new());
    runner
        .run(&"[A-Za-z0-9]{12,20}", |secret| {
            let secret = format!("Zq{secret}");
            for (method, path, target, body) in requests_with(&secret, &cluster, &store, &key) {
                let text = answer(&sim, method, &path, target, &body);
                proptest::prop_assert!(
                    !text.contains(&secret[..8]),
                    "{path} {target:?} echoed: {text}"
                );
                let number = (secret.len() as u64 * 1_000_003).to_string();
                proptest::prop_assert!(!text.contains(&number), "{path} echoed the number: {text}");
            }
            sent.borrow_mut().push(secret);
            Ok(())
        })
        .expect("no answer echoes a secret");
    let log = sim.log();
    assert!(log.contains("DEBUG"), "the server logged at debug level");
    for secret in sent.borrow().iter() {
        assert!(!log.contains(&secret[..8]), "the log holds a secret");
    }
}

#[test]
fn bodies_beyond_the_shared_budget_are_throttled_not_held() {
    let conf_dir = tempfile::tempdir().expect("tempdir");
    let conf = conf_dir.path().join("budget.toml");
    std::fs::write(&conf, "[server]\nmax_body_bytes_in_flight = 1048576\n").unwrap();
    let sim = Sim::start_with(&["--config", conf.to_str().unwrap()]);
    // A client that sends 700 KiB of a 1 MiB body and stalls holds 700 KiB of the budget.
    let addr = sim.endpoint.trim_start_matches("http://").to_string();
    let mut stalled = std::net::TcpStream::connect(&addr).expect("connect");
    write!(
        stalled,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nx-amz-target: TrentService.ListKeys\r\n\
         content-type: application/x-amz-json-1.1\r\ncontent-length: 1048576\r\n\r\n"
    )
    .unwrap();
    stalled.write_all(&vec![b' '; 700 << 10]).unwrap();
    let c = sim.control();
    deadline_poll("the stalled body held", 30, || {
        let h = block_on(c.call("GET", "/_sim/health", None)).expect("health");
        (h["body_bytes_in_flight"].as_u64() >= Some(700 << 10)).then_some(())
    });
    let body = format!("{{\"Description\":\"{}\"}}", "d".repeat(500 << 10));
    let throttled = block_on(c.raw(
        "POST",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "TrentService.CreateKey"),
        ],
        body.into_bytes(),
    ))
    .expect("an answer");
    assert_eq!(
        throttled.1["__type"], "ThrottlingException",
        "{}",
        throttled.1
    );
    assert_eq!(throttled.0, 400, "{}", throttled.1);
    drop(stalled);
    // Once the stalled body is gone, its share is back.
    let ok = deadline_poll("the budget back", 30, || {
        let r = block_on(c.aws("TrentService.ListKeys", json!({})));
        r.ok()
    });
    assert!(ok["Keys"].is_array());
}

//! The foundation: health, awsJson1_1 framing and errors, shutdown.
//!
//! Each framing error is its own test, on one shared server, checked for its status,
//! exception and exact message.

use crate::common::{Sim, block_on, module_path};
use serde_json::json;
use std::sync::{Arc, Mutex, Weak};

// ---- One behaviour per test, on one shared server ----

static SHARED: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

/// The file's shared server (kept while any test that uses it runs); the tests that stop or
/// restart a server start their own.
fn server() -> Arc<Sim> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sim) = shared.upgrade() {
        return sim;
    }
    let sim = Arc::new(Sim::start());
    *shared = Arc::downgrade(&sim);
    sim
}

/// POST `body` to `/` with these headers: the status and the JSON answer.
fn post(sim: &Sim, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, serde_json::Value) {
    block_on(sim.control().raw("POST", "/", headers, body)).expect("an answer")
}

/// POST `body` as ListKeys.
fn list_keys(sim: &Sim, body: &[u8]) -> (u16, serde_json::Value) {
    post(
        sim,
        &[("x-amz-target", "TrentService.ListKeys")],
        body.to_vec(),
    )
}

fn health(sim: &Sim) -> serde_json::Value {
    block_on(sim.control().call("GET", "/_sim/health", None)).expect("health")
}

#[test]
fn health_is_ok_and_names_the_module_served() {
    let sim = server();
    let h = health(&sim);
    assert_eq!(h["status"], "ok");
    assert_eq!(
        h["module"].as_str().unwrap(),
        module_path().display().to_string(),
        "{h}"
    );
}

#[test]
fn an_unknown_operation_is_unknown_operation_exception() {
    let sim = server();
    assert_answer(
        post(
            &sim,
            &[("x-amz-target", "TrentService.NoSuchThing")],
            b"{}".to_vec(),
        ),
        400,
        "UnknownOperationException",
        "cks-sim does not serve the operation \"TrentService.NoSuchThing\".",
    );
}

#[test]
fn a_request_without_x_amz_target_is_unknown_operation_exception() {
    let sim = server();
    assert_answer(
        post(&sim, &[], b"{}".to_vec()),
        400,
        "UnknownOperationException",
        "Missing or malformed X-Amz-Target header \"\": \
         expected TrentService.<Operation> or BaldrApiService.<Operation>.",
    );
}

#[test]
fn a_body_that_is_not_json_is_a_serialization_exception() {
    let sim = server();
    assert_answer(
        list_keys(&sim, b"{not json"),
        400,
        "SerializationException",
        "the request body is not valid JSON: key must be a string at line 1 column 2",
    );
}

#[test]
fn a_member_of_the_wrong_type_is_a_serialization_exception() {
    let sim = server();
    assert_answer(
        list_keys(&sim, br#"{"Limit":"ten"}"#),
        400,
        "SerializationException",
        "Cannot deserialize member 'Limit': it must be an integer.",
    );
}

#[test]
fn a_member_out_of_its_range_is_a_validation_exception() {
    let sim = server();
    assert_answer(
        list_keys(&sim, br#"{"Limit":0}"#),
        400,
        "ValidationException",
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: \
         Member must have value greater than or equal to 1",
    );
}

#[test]
fn a_body_over_one_mebibyte_is_refused_with_413() {
    let sim = server();
    assert_answer(
        list_keys(&sim, &vec![b' '; 2 << 20]),
        413,
        "ValidationException",
        "The request body is larger than 1048576 bytes.",
    );
}

#[test]
fn the_server_stays_up_after_malformed_and_oversized_requests() {
    let sim = server();
    assert_eq!(list_keys(&sim, b"{not json").0, 400);
    assert_eq!(list_keys(&sim, &vec![b' '; 2 << 20]).0, 413);
    let h = health(&sim);
    assert_eq!(h["status"], "ok", "health after bad input: {h}");
}

/// An idle keep-alive connection does not hold the shutdown up: the server stops serving at
/// once (no connection is left to drop after the grace period) and exits cleanly.
#[test]
fn sigterm_stops_the_server_with_an_idle_connection_open() {
    use std::io::{Read, Write};
    let mut sim = Sim::start_logged(&[]);
    let addr = sim.endpoint.trim_start_matches("http://").to_string();
    let mut idle = std::net::TcpStream::connect(&addr).expect("connect");
    write!(idle, "GET /_sim/health HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).expect("an answer");
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    let status = sim.stop();
    assert!(status.success(), "{status:?}");
    let log = sim.log();
    assert!(log.contains("stopped"), "{log}");
    assert!(!log.contains("were dropped"), "{log}");
    drop(idle);
}

#[test]
fn clock_advances_and_persists_across_restart() {
    let mut sim = Sim::start();
    let before = block_on(async {
        sim.control()
            .call("GET", "/_sim/clock", None)
            .await
            .unwrap()
    });
    let after = block_on(async {
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 2})))
            .await
            .unwrap()
    });
    let moved = after["now"].as_f64().unwrap() - before["now"].as_f64().unwrap();
    assert!(moved >= 2.0 * 86_400.0, "{moved}");
    sim.restart();
    let again = block_on(async {
        sim.control()
            .call("GET", "/_sim/clock", None)
            .await
            .unwrap()
    });
    assert!(
        again["offset_seconds"].as_f64().unwrap() >= 2.0 * 86_400.0,
        "{again}"
    );
    let bad = block_on(async {
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": -1})))
            .await
    });
    match bad {
        Err(cks_sim::client::ClientError::Api {
            status,
            type_name,
            message,
        }) => assert_eq!(
            (status, type_name.as_str(), message.as_str()),
            (
                400,
                "InvalidRequest",
                "the clock only moves forward: give a non-negative seconds, hours or days"
            ),
            "the clock must not go back"
        ),
        other => panic!("the clock must not go back: {other:?}"),
    }
    let unmoved = block_on(async {
        sim.control()
            .call("GET", "/_sim/clock", None)
            .await
            .unwrap()
    });
    assert_eq!(
        unmoved["offset_seconds"], again["offset_seconds"],
        "a refused advance leaves the clock where it was"
    );
}

/// The answer is exactly this status, exception and message. cks-sim's own wording where
/// AWS documents none: the messages for unknown targets, unreadable JSON, a wrongly typed
/// member and an oversized body are pinned from today's server; the `ValidationException`
/// text follows AWS's "1 validation error detected" form.
fn assert_answer(got: (u16, serde_json::Value), status: u16, exception: &str, message: &str) {
    let (st, v) = got;
    assert_eq!(
        (st, v["__type"].as_str(), v["message"].as_str()),
        (status, Some(exception), Some(message)),
        "{v}"
    );
}

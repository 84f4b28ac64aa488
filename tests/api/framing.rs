//! The foundation: health, awsJson1_1 framing and errors, shutdown.

use crate::common::{Sim, block_on, module_path};
use serde_json::json;

#[test]
fn health_unknown_target_malformed_json_and_oversized_body() {
    let sim = Sim::start();
    block_on(async {
        let c = sim.control();
        let h = c.call("GET", "/_sim/health", None).await.expect("health");
        assert_eq!(h["status"], "ok");
        assert_eq!(
            h["module"].as_str().unwrap(),
            module_path().display().to_string(),
            "{h}"
        );

        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[("x-amz-target", "TrentService.NoSuchThing")],
                b"{}".to_vec(),
            )
            .await
            .unwrap();
        assert_answer(
            (st, v),
            400,
            "UnknownOperationException",
            "cks-sim does not serve the operation \"TrentService.NoSuchThing\".",
        );

        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[("x-amz-target", "TrentService.ListKeys")],
                b"{not json".to_vec(),
            )
            .await
            .unwrap();
        assert_answer(
            (st, v),
            400,
            "SerializationException",
            "the request body is not valid JSON: key must be a string at line 1 column 2",
        );

        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[("x-amz-target", "TrentService.ListKeys")],
                br#"{"Limit":"ten"}"#.to_vec(),
            )
            .await
            .unwrap();
        assert_answer(
            (st, v),
            400,
            "SerializationException",
            "Cannot deserialize member 'Limit': it must be an integer.",
        );

        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[("x-amz-target", "TrentService.ListKeys")],
                br#"{"Limit":0}"#.to_vec(),
            )
            .await
            .unwrap();
        assert_answer(
            (st, v),
            400,
            "ValidationException",
            "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: \
             Member must have value greater than or equal to 1",
        );

        let big = vec![b' '; 2 << 20];
        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[("x-amz-target", "TrentService.ListKeys")],
                big,
            )
            .await
            .unwrap();
        assert_answer(
            (st, v),
            413,
            "ValidationException",
            "The request body is larger than 1048576 bytes.",
        );

        // Still up afterwards.
        let h = c
            .call("GET", "/_sim/health", None)
            .await
            .expect("health after bad input");
        assert_eq!(h["status"], "ok");
        let (st, v) = c.raw("POST", "/", &[], b"{}".to_vec()).await.unwrap();
        assert_answer(
            (st, v),
            400,
            "UnknownOperationException",
            "Missing or malformed X-Amz-Target header \"\": \
             expected TrentService.<Operation> or BaldrApiService.<Operation>.",
        );
    });
}

#[test]
fn sigterm_stops_the_server_within_a_second() {
    let mut sim = Sim::start();
    // An idle keep-alive connection must not hold the shutdown up.
    block_on(async {
        sim.control()
            .call("GET", "/_sim/health", None)
            .await
            .expect("health");
    });
    let took = sim.stop();
    assert!(took < std::time::Duration::from_secs(1), "took {took:?}");
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

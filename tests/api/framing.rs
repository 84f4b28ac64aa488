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
        assert_eq!(
            (st, v["__type"].as_str()),
            (400, Some("UnknownOperationException")),
            "{v}"
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
        assert_eq!(
            (st, v["__type"].as_str()),
            (400, Some("SerializationException")),
            "{v}"
        );
        assert!(v["message"].as_str().unwrap().contains("JSON"), "{v}");

        let (st, v) = c
            .raw(
                "POST",
                "/",
                &[("x-amz-target", "TrentService.ListKeys")],
                br#"{"Limit":"ten"}"#.to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(
            (st, v["__type"].as_str()),
            (400, Some("SerializationException")),
            "{v}"
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
        assert_eq!(
            (st, v["__type"].as_str()),
            (400, Some("ValidationException")),
            "{v}"
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
        assert_eq!(st, 413, "{v}");
        assert!(v["__type"].is_string(), "{v}");

        // Still up afterwards.
        let h = c
            .call("GET", "/_sim/health", None)
            .await
            .expect("health after bad input");
        assert_eq!(h["status"], "ok");
        let (st, v) = c.raw("POST", "/", &[], b"{}".to_vec()).await.unwrap();
        assert_eq!(
            (st, v["__type"].as_str()),
            (400, Some("UnknownOperationException")),
            "{v}"
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
    assert!(bad.is_err(), "the clock must not go back");
}

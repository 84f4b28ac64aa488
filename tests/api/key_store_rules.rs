//! Rules of CloudHSM key stores that the lifecycle tests of `key_stores` do not single out, one
//! behaviour per test: finding a store by name, the limits of the idempotent create retry (same
//! name, cluster, trust anchor and password), renaming a store to its own name, which
//! reconnection after a restart rotates kmsuser's password, a disconnect under way at a
//! restart, and the connect delay. Each was found by mutation testing (`scripts/mutants
//! src/kms/key_store.rs`, see docs/testing.md).
//!
//! One server for the tests that do not restart it (kept while any of them runs); a test that
//! restarts the server starts its own.

use crate::common::*;
use crate::key_stores::new_cluster;
use cks_sim::cluster::certs;
use serde_json::json;
use std::sync::{Arc, Mutex, Weak};

static SHARED: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

/// The file's shared server: the running one, or a new one if none is running.
fn shared() -> Arc<Sim> {
    let mut s = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sim) = s.upgrade() {
        return sim;
    }
    let sim = Arc::new(Sim::start());
    *s = Arc::downgrade(&sim);
    sim
}

/// The IDs of the stores DescribeCustomKeyStores answers for `name`.
async fn described_by_name(sim: &Sim, name: &str) -> Vec<String> {
    sim.kms()
        .describe_custom_key_stores()
        .custom_key_store_name(name)
        .send()
        .await
        .expect("describe by name")
        .custom_key_stores()
        .iter()
        .map(|e| e.custom_key_store_id().expect("id").to_string())
        .collect()
}

#[test]
fn describe_by_name_answers_the_store_of_that_name_only() {
    let sim = shared();
    block_on(async {
        let a = new_cluster(&sim, 2).await;
        let b = new_cluster(&sim, 2).await;
        let first = create_store_with(&sim, "by-name-1", &a.id, &a.anchor, "password1").await;
        let second = create_store_with(&sim, "by-name-2", &b.id, &b.anchor, "password2").await;
        assert_eq!(described_by_name(&sim, "by-name-2").await, vec![second]);
        assert_eq!(described_by_name(&sim, "by-name-1").await, vec![first]);
    });
}

#[test]
fn describe_by_an_unknown_name_is_refused_as_not_found() {
    let sim = shared();
    block_on(async {
        let r = sim
            .kms()
            .describe_custom_key_stores()
            .custom_key_store_name("no-store-has-this-name")
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreNotFoundException");
    });
}

#[test]
fn a_create_reusing_a_name_on_another_cluster_is_refused_as_name_in_use() {
    let sim = shared();
    block_on(async {
        let a = new_cluster(&sim, 2).await;
        let b = new_cluster(&sim, 2).await;
        let pw = "samePassword1";
        create_store_with(&sim, "taken-name", &a.id, &a.anchor, pw).await;
        // The same name, anchor and password as the first store, but another cluster: not a
        // retry of the first create.
        let r = sim
            .kms()
            .create_custom_key_store()
            .custom_key_store_name("taken-name")
            .cloud_hsm_cluster_id(&b.id)
            .trust_anchor_certificate(&a.anchor)
            .key_store_password(pw)
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreNameInUseException");
    });
}

#[test]
fn a_create_reusing_a_name_with_another_trust_anchor_is_refused_as_name_in_use() {
    let sim = shared();
    block_on(async {
        let a = new_cluster(&sim, 2).await;
        let other_ca = certs::new_customer_ca("another CA").expect("CA").cert_pem;
        let pw = "samePassword2";
        create_store_with(&sim, "anchored-name", &a.id, &a.anchor, pw).await;
        // The same name, cluster and password as the first store, but another certificate:
        // not a retry of the first create.
        let r = sim
            .kms()
            .create_custom_key_store()
            .custom_key_store_name("anchored-name")
            .cloud_hsm_cluster_id(&a.id)
            .trust_anchor_certificate(other_ca)
            .key_store_password(pw)
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreNameInUseException");
    });
}

#[test]
fn update_renaming_a_store_to_its_own_name_is_accepted() {
    let sim = shared();
    block_on(async {
        let a = new_cluster(&sim, 2).await;
        let store = create_store_with(&sim, "keeps-its-name", &a.id, &a.anchor, "password3").await;
        sim.kms()
            .update_custom_key_store()
            .custom_key_store_id(&store)
            .new_custom_key_store_name("keeps-its-name")
            .send()
            .await
            .expect("rename to its own name");
        assert_eq!(described_by_name(&sim, "keeps-its-name").await, vec![store]);
    });
}

/// A server with a store on a cluster of its own, `state` before a restart (CONNECTED, or
/// CONNECTING held by the `hold_connections` knob), and that cluster's token PIN then.
fn restarted_with_store(state: &str) -> (Sim, String, String) {
    let mut sim = Sim::start();
    let (store, pin_before) = block_on(async {
        let c = new_cluster(&sim, 2).await;
        let store =
            create_store_with(&sim, "restarted", &c.id, &c.anchor, &c.kmsuser_password).await;
        if state == "CONNECTING" {
            set(&sim, json!({"hold_connections": true})).await;
        }
        ask_connect(&sim, &store).await;
        wait_state(&sim.kms(), &store, state).await;
        (store, token_pin(&sim, &c.id).await)
    });
    sim.restart();
    (sim, store, pin_before)
}

/// The cluster of `store`.
async fn cluster_of(sim: &Sim, store: &str) -> String {
    wait_state(&sim.kms(), store, "CONNECTED")
        .await
        .cloud_hsm_cluster_id()
        .expect("cluster")
        .to_string()
}

#[test]
fn a_store_connected_before_a_restart_reconnects_without_rotating_kmsusers_password() {
    let (sim, store, pin_before) = restarted_with_store("CONNECTED");
    block_on(async {
        let cluster = cluster_of(&sim, &store).await;
        assert_eq!(token_pin(&sim, &cluster).await, pin_before);
    });
}

#[test]
fn a_store_connecting_at_a_restart_connects_and_rotates_kmsusers_password() {
    let (sim, store, pin_before) = restarted_with_store("CONNECTING");
    block_on(async {
        let cluster = cluster_of(&sim, &store).await;
        assert_ne!(token_pin(&sim, &cluster).await, pin_before);
    });
}

#[test]
fn a_store_disconnecting_at_a_restart_ends_disconnected() {
    let mut sim = Sim::start();
    let store = block_on(async {
        let c = new_cluster(&sim, 2).await;
        let store = create_store_with(&sim, "stops", &c.id, &c.anchor, &c.kmsuser_password).await;
        sim.kms()
            .connect_custom_key_store()
            .custom_key_store_id(&store)
            .send()
            .await
            .expect("connect");
        wait_state(&sim.kms(), &store, "CONNECTED").await;
        // An hour: the disconnect is still under way when the server stops.
        sim.control()
            .call(
                "POST",
                "/_sim/settings",
                Some(json!({"disconnect_delay_ms": 3_600_000})),
            )
            .await
            .expect("delay disconnects");
        sim.kms()
            .disconnect_custom_key_store()
            .custom_key_store_id(&store)
            .send()
            .await
            .expect("disconnect");
        wait_state(&sim.kms(), &store, "DISCONNECTING").await;
        store
    });
    sim.restart();
    block_on(wait_state(&sim.kms(), &store, "DISCONNECTED"));
}

/// The connection state DescribeCustomKeyStores answers for `store` now.
async fn state_now(sim: &Sim, store: &str) -> String {
    let described = sim
        .kms()
        .describe_custom_key_stores()
        .custom_key_store_id(store)
        .send()
        .await
        .expect("describe");
    let entry = &described.custom_key_stores()[0];
    entry
        .connection_state()
        .expect("a state")
        .as_str()
        .to_string()
}

/// Change the simulator's `/_sim/settings` (connect delay, holding connections).
async fn set(sim: &Sim, settings: serde_json::Value) {
    sim.control()
        .call("POST", "/_sim/settings", Some(settings))
        .await
        .expect("settings");
}

async fn set_connect_delay(sim: &Sim, ms: u64) {
    set(sim, json!({"connect_delay_ms": ms})).await;
}

/// The connect delay keeps a store `CONNECTING`: a store connected with an hour's delay is
/// still `CONNECTING` after a store connected later without delay has connected (each connect
/// takes the delay in force when it is asked).
#[test]
fn a_connect_delay_keeps_the_store_connecting_while_an_undelayed_connect_completes() {
    let sim = Sim::start();
    block_on(async {
        let a = new_cluster(&sim, 2).await;
        let b = new_cluster(&sim, 2).await;
        let slow = create_store_with(&sim, "slow", &a.id, &a.anchor, &a.kmsuser_password).await;
        let quick = create_store_with(&sim, "quick", &b.id, &b.anchor, &b.kmsuser_password).await;
        set_connect_delay(&sim, 3_600_000).await;
        ask_connect(&sim, &slow).await;
        set_connect_delay(&sim, 0).await;
        ask_connect(&sim, &quick).await;
        wait_state(&sim.kms(), &quick, "CONNECTED").await;
        assert_eq!(state_now(&sim, &slow).await, "CONNECTING");
    });
}

/// A connection attempt cancelled by a disconnect stays cancelled: released while the next
/// attempt on the store is under way (delayed an hour), it does not connect the store, which
/// is still `CONNECTING` once a later connect of another store has completed.
#[test]
fn a_connect_cancelled_by_a_disconnect_does_not_connect_the_store_during_the_next_attempt() {
    let sim = Sim::start();
    block_on(async {
        let (a, b) = (new_cluster(&sim, 2).await, new_cluster(&sim, 2).await);
        let store = create_store_with(&sim, "once", &a.id, &a.anchor, &a.kmsuser_password).await;
        let other = create_store_with(&sim, "other", &b.id, &b.anchor, &b.kmsuser_password).await;
        set(&sim, json!({"hold_connections": true})).await;
        ask_connect(&sim, &store).await;
        disconnect(&sim, &store).await;
        set_connect_delay(&sim, 3_600_000).await;
        ask_connect(&sim, &store).await;
        set(
            &sim,
            json!({"hold_connections": false, "connect_delay_ms": 0}),
        )
        .await;
        ask_connect(&sim, &other).await;
        wait_state(&sim.kms(), &other, "CONNECTED").await;
        assert_eq!(state_now(&sim, &store).await, "CONNECTING");
    });
}

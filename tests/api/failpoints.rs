//! Crash safety at named steps (D20): the process is stopped exactly at a failpoint inside a
//! mutation, started again on the same data directory, and must show nothing acknowledged
//! lost, nothing half-done visible, every key still usable and the token and the metadata in
//! agreement. Also: requests whose clients hang up mid-flight.

use crate::common::*;
use serde_json::{Value, json};

fn arm(sim: &Sim, step: &str) {
    block_on(
        sim.control()
            .call("POST", "/_sim/failpoints", Some(json!({"name": step}))),
    )
    .expect("arm the failpoint");
}

fn health(sim: &Sim) -> Value {
    block_on(sim.control().call("GET", "/_sim/health", None)).expect("health")
}

async fn encrypt(sim: &Sim, key: &str, text: &[u8]) -> aws_sdk_kms::primitives::Blob {
    sim.kms()
        .encrypt()
        .key_id(key)
        .plaintext(aws_sdk_kms::primitives::Blob::new(text))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .expect("ciphertext")
        .clone()
}

async fn decrypt(sim: &Sim, blob: aws_sdk_kms::primitives::Blob) -> Vec<u8> {
    sim.kms()
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt")
        .plaintext()
        .expect("plaintext")
        .as_ref()
        .to_vec()
}

/// The token's view of the cluster, logged in with the PIN the server says it has: fails if
/// the server's record of the PIN and the token disagree.
fn token_objects(sim: &Sim, cluster: &str) -> Vec<Value> {
    sim.inspect_token(cluster, &block_on(token_pin(sim, cluster)))
}

#[test]
fn a_crash_at_each_step_of_a_connects_password_rotation_leaves_a_store_that_connects() {
    let mut sim = Sim::start();
    let (store, cluster) = block_on(connected_store(&sim, "rotation"));
    let key = block_on(cloudhsm_key(&sim, &store));
    let blob = block_on(encrypt(&sim, &key, b"kept across crashes"));
    for step in [
        "pin.intent_recorded",
        "pin.token_changed",
        "connect.committed",
    ] {
        block_on(disconnect(&sim, &store));
        arm(&sim, step);
        block_on(ask_connect(&sim, &store));
        assert!(
            !sim.wait_exit(60).success(),
            "{step}: the process stopped there"
        );
        sim.respawn();
        block_on(wait_state(&sim.kms(), &store, "CONNECTED"));
        assert_eq!(
            block_on(decrypt(&sim, blob.clone())),
            b"kept across crashes",
            "{step}"
        );
        let objects = token_objects(&sim, &cluster);
        assert!(
            objects
                .iter()
                .any(|o| o["label"].as_str().is_some_and(|l| l.ends_with(&key))),
            "{step}"
        );
    }
}

fn reset_kmsuser(sim: &Sim, cluster: &str) {
    let _ = block_on(sim.control().call(
        "POST",
        &format!("/_sim/clusters/{cluster}/users/kmsuser/password"),
        Some(
            json!({"new_password": "Reset-Password-1", "auth_user": "admin",
                    "auth_password": sim.admin_password()}),
        ),
    ));
}

#[test]
fn a_crash_in_an_admins_reset_of_kmsusers_password_is_undone_at_start_up() {
    let mut sim = Sim::start();
    let (store, cluster) = block_on(connected_store(&sim, "reset"));
    let key = block_on(cloudhsm_key(&sim, &store));
    let blob = block_on(encrypt(&sim, &key, b"reset"));
    block_on(disconnect(&sim, &store));
    for step in ["pin.intent_recorded", "pin.token_changed"] {
        arm(&sim, step);
        reset_kmsuser(&sim, &cluster);
        assert!(!sim.wait_exit(60).success(), "{step}");
        sim.respawn();
        // Never acknowledged, so undone: the store's password is still kmsuser's.
        block_on(ask_connect(&sim, &store));
        block_on(wait_state(&sim.kms(), &store, "CONNECTED"));
        assert_eq!(block_on(decrypt(&sim, blob.clone())), b"reset", "{step}");
        token_objects(&sim, &cluster);
        block_on(disconnect(&sim, &store));
    }
}

#[test]
fn a_pin_change_interrupted_after_the_token_changed_is_undone_at_start_up_before_any_connect() {
    let mut sim = Sim::start();
    let (store, cluster) = block_on(connected_store(&sim, "settle"));
    block_on(disconnect(&sim, &store));
    let recorded = block_on(token_pin(&sim, &cluster));
    arm(&sim, "pin.token_changed");
    reset_kmsuser(&sim, &cluster);
    assert!(!sim.wait_exit(60).success());
    sim.respawn();
    // Start-up itself restored the token's PIN: kmsuser's recorded password opens it, with
    // no connect (which would settle the change too) in between.
    assert_eq!(block_on(token_pin(&sim, &cluster)), recorded);
    let objects = sim.inspect_token(&cluster, &recorded);
    assert!(objects.is_empty(), "{objects:?}");
}

#[test]
fn a_crash_while_deleting_kmsuser_is_undone_at_start_up() {
    let mut sim = Sim::start();
    let (store, cluster) = block_on(connected_store(&sim, "delete-user"));
    block_on(disconnect(&sim, &store));
    arm(&sim, "pin.token_changed");
    let _ = block_on(sim.control().call(
        "DELETE",
        &format!("/_sim/clusters/{cluster}/users/kmsuser"),
        None,
    ));
    assert!(!sim.wait_exit(60).success());
    sim.respawn();
    let users = block_on(sim.control().call(
        "GET",
        &format!("/_sim/clusters/{cluster}/users"),
        None,
    ))
    .expect("users");
    assert!(users.to_string().contains("\"kmsuser\""), "{users}");
    block_on(ask_connect(&sim, &store));
    block_on(wait_state(&sim.kms(), &store, "CONNECTED"));
}

#[test]
fn material_made_for_a_key_never_committed_is_recorded_as_an_orphan_at_start_up() {
    let mut sim = Sim::start();
    let (store, cluster) = block_on(connected_store(&sim, "unacknowledged"));
    let kept = block_on(cloudhsm_key(&sim, &store));
    arm(&sim, "create_key.material_made");
    let c = sim.control();
    let _ = block_on(c.aws(
        "TrentService.CreateKey",
        json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": store}),
    ));
    assert!(!sim.wait_exit(60).success());
    sim.respawn();
    let h = health(&sim);
    assert_eq!(h["reconciliation"]["orphans_found"], 1, "{h}");
    assert_eq!(h["reconciliation"]["keys_missing_material"], 0, "{h}");
    let orphans = block_on(sim.control().call("GET", "/_sim/orphans", None)).expect("orphans");
    let list = orphans["orphans"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{orphans}");
    assert_eq!(list[0]["reason"], "found on the token at start-up");
    assert_ne!(list[0]["key_arn"].as_str().unwrap_or(""), "");
    assert!(!list[0]["key_arn"].as_str().unwrap_or("").ends_with(&kept));
    let objects = token_objects(&sim, &cluster);
    assert_eq!(objects.len(), 2, "the kept key and the orphan: {objects:?}");
}

#[test]
fn a_crash_between_destroying_a_deleted_keys_material_and_committing_leaves_no_phantom_orphan() {
    let mut sim = Sim::start();
    let (store, cluster) = block_on(connected_store(&sim, "deletion"));
    let key = block_on(cloudhsm_key(&sim, &store));
    block_on(
        sim.kms()
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(7)
            .send(),
    )
    .expect("schedule");
    arm(&sim, "deletion.material_destroyed");
    let _ = block_on(
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 8}))),
    );
    assert!(!sim.wait_exit(60).success());
    sim.respawn();
    let gone = block_on(sim.kms().describe_key().key_id(&key).send());
    assert_eq!(code(gone), "NotFoundException");
    let orphans = block_on(sim.control().call("GET", "/_sim/orphans", None)).expect("orphans");
    assert_eq!(orphans["orphans"], json!([]), "{orphans}");
    let h = health(&sim);
    assert_eq!(h["reconciliation"]["orphans_found"], 0, "{h}");
    assert!(token_objects(&sim, &cluster).is_empty());
}

#[test]
fn thousands_of_cancelled_mutations_leave_memory_sqlite_and_the_tokens_in_agreement() {
    let mut sim = Sim::start();
    let (store, cluster) = block_on(connected_store(&sim, "cancelled"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cancelled = rt.block_on(async {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
        let mut tasks = Vec::new();
        for i in 0..2000u64 {
            let permit = std::sync::Arc::clone(&gate).acquire_owned().await.unwrap();
            let (c, store) = (sim.control(), store.clone());
            tasks.push(tokio::spawn(async move {
                let body = if i % 2 == 0 {
                    json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": store})
                } else {
                    json!({"Description": format!("cancelled #{i}")})
                };
                let wait = std::time::Duration::from_micros(200 + (i * 7919) % 3000);
                let call = c.aws("TrentService.CreateKey", body);
                let timed_out = tokio::time::timeout(wait, call).await.is_err();
                drop(permit);
                timed_out
            }));
        }
        let mut n = 0;
        for t in tasks {
            n += usize::from(t.await.unwrap());
        }
        n
    });
    assert!(
        cancelled > 100,
        "only {cancelled} requests were cancelled in flight"
    );
    deadline_poll("detached requests to finish", 120, || {
        (health(&sim)["requests_in_flight"] == 1).then_some(())
    });
    let in_memory = block_on(all_key_ids(&sim));
    let objects = token_objects(&sim, &cluster);
    for o in &objects {
        let label = o["label"].as_str().unwrap_or("");
        let id = label.rsplit('/').next().unwrap_or("");
        assert!(in_memory.contains(id), "material no live key owns: {o}");
    }
    sim.restart();
    assert_eq!(
        block_on(all_key_ids(&sim)),
        in_memory,
        "memory and SQLite disagree"
    );
    let h = health(&sim);
    assert_eq!(h["reconciliation"]["orphans_found"], 0, "{h}");
    assert_eq!(h["reconciliation"]["keys_missing_material"], 0, "{h}");
    assert_eq!(h["orphans"], 0, "{h}");
}

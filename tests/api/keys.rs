//! KMS keys in CloudHSM key stores (and AWS_KMS keys): deletion, orphans, restarts, listing
//! (managing keys: key_management.rs; cryptography: key_crypto.rs).

use crate::common::*;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, Tag};
use serde_json::json;

fn pt(b: &[u8]) -> Blob {
    Blob::new(b.to_vec())
}

async fn advance_days(sim: &Sim, days: u32) {
    sim.control()
        .call("POST", "/_sim/clock/advance", Some(json!({"days": days})))
        .await
        .unwrap();
}

#[test]
fn the_documented_life_with_orphans_and_the_customers_clean_up() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let c = sim.control();
        let (store, cluster) = connected_store(&sim, "life").await;
        let k1 = cloudhsm_key(&sim, &store).await;
        let k2 = cloudhsm_key(&sim, &store).await;
        let blob = kms
            .encrypt()
            .key_id(&k1)
            .plaintext(pt(b"old data"))
            .send()
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .clone();
        for k in [&k1, &k2] {
            kms.schedule_key_deletion()
                .key_id(k)
                .pending_window_in_days(7)
                .send()
                .await
                .unwrap();
        }
        disconnect(&sim, &store).await;
        advance_days(&sim, 8).await;
        for k in [&k1, &k2] {
            assert_eq!(
                code(kms.describe_key().key_id(k).send().await),
                "NotFoundException"
            );
        }
        let listed = kms.list_keys().send().await.unwrap();
        assert!(
            listed
                .keys()
                .iter()
                .all(|k| k.key_id() != Some(k1.as_str()))
        );
        let orphans = c.call("GET", "/_sim/orphans", None).await.unwrap();
        assert_eq!(orphans["orphans"].as_array().unwrap().len(), 2, "{orphans}");

        // Customer: reset kmsuser's password as admin, look at the material independently.
        let pin = "Cleanup12345";
        c.call(
            "POST",
            &format!("/_sim/clusters/{cluster}/users/kmsuser/password"),
            Some(json!({"new_password": pin, "auth_user": "admin", "auth_password": sim.admin_password()})),
        )
        .await
        .unwrap();
        let before = sim.inspect_token(&cluster, pin);
        assert_eq!(before.len(), 2);
        kms.delete_custom_key_store()
            .custom_key_store_id(&store)
            .send()
            .await
            .unwrap();
        let after = sim.inspect_token(&cluster, pin);
        assert_eq!(
            before, after,
            "orphans keep their labels, ids and fingerprints"
        );
        let marked = c
            .call("GET", &format!("/_sim/clusters/{cluster}/token"), None)
            .await
            .unwrap();
        assert!(
            marked["objects"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["owner"] == "orphan"),
            "{marked}"
        );

        // Clean up with pkcs11-tool, by label, logged in as kmsuser.
        for o in &after {
            let label = o["label"].as_str().unwrap();
            sim.pkcs11_tool(
                &cluster,
                pin,
                &["--delete-object", "--type", "secrkey", "--label", label],
            );
        }
        assert!(sim.inspect_token(&cluster, pin).is_empty());

        // A new store on the same cluster: the old ciphertext stays dead.
        let store2 = kms
            .create_custom_key_store()
            .custom_key_store_name("life-2")
            .cloud_hsm_cluster_id(&cluster)
            .trust_anchor_certificate(sim.trust_anchor())
            .key_store_password(pin)
            .send()
            .await
            .unwrap()
            .custom_key_store_id()
            .unwrap()
            .to_string();
        kms.connect_custom_key_store()
            .custom_key_store_id(&store2)
            .send()
            .await
            .unwrap();
        wait_state(&kms, &store2, "CONNECTED").await;
        let k3 = cloudhsm_key(&sim, &store2).await;
        assert_eq!(
            code(kms.decrypt().ciphertext_blob(blob.clone()).send().await),
            "NotFoundException"
        );
        let r = kms.decrypt().ciphertext_blob(blob).key_id(&k3).send().await;
        assert!(matches!(
            code(r).as_str(),
            "NotFoundException" | "IncorrectKeyException"
        ));
    });
}

#[test]
fn deletion_while_connected_destroys_the_material() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let (store, cluster) = connected_store(&sim, "tidy").await;
        let k = cloudhsm_key(&sim, &store).await;
        let keep = cloudhsm_key(&sim, &store).await;
        kms.schedule_key_deletion()
            .key_id(&k)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        advance_days(&sim, 7).await;
        advance_days(&sim, 1).await;
        assert_eq!(
            code(kms.describe_key().key_id(&k).send().await),
            "NotFoundException"
        );
        disconnect(&sim, &store).await;
        let pin = "Tidy12345678";
        sim.control()
            .call(
                "POST",
                &format!("/_sim/clusters/{cluster}/users/kmsuser/password"),
                Some(json!({"new_password": pin, "auth_user": "admin", "auth_password": sim.admin_password()})),
            )
            .await
            .unwrap();
        let objs = sim.inspect_token(&cluster, pin);
        assert_eq!(
            objs.len(),
            1,
            "only the live key's material is left: {objs:?}"
        );
        assert!(objs[0]["label"].as_str().unwrap().ends_with(&keep));
        let orphans = sim
            .control()
            .call("GET", "/_sim/orphans", None)
            .await
            .unwrap();
        assert!(orphans["orphans"].as_array().unwrap().is_empty());
    });
}

#[test]
fn a_deletion_after_kmsusers_password_changed_behind_kms_leaves_an_orphan() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let (store, cluster) = connected_store(&sim, "behind").await;
        let k = cloudhsm_key(&sim, &store).await;
        // A store on another cluster keeps its session: its key's material is destroyed.
        let other = crate::key_stores::new_cluster(&sim, 2).await;
        let other_store = create_store_with(
            &sim,
            "elsewhere",
            &other.id,
            &other.anchor,
            &other.kmsuser_password,
        )
        .await;
        kms.connect_custom_key_store()
            .custom_key_store_id(&other_store)
            .send()
            .await
            .unwrap();
        wait_state(&kms, &other_store, "CONNECTED").await;
        let elsewhere = cloudhsm_key(&sim, &other_store).await;
        for key in [&k, &elsewhere] {
            kms.schedule_key_deletion()
                .key_id(key)
                .pending_window_in_days(7)
                .send()
                .await
                .unwrap();
        }
        // An admin resets kmsuser's password while the store is CONNECTED: KMS's session
        // can no longer delete material.
        let pin = "Behind12345678";
        sim.control()
            .call(
                "POST",
                &format!("/_sim/clusters/{cluster}/users/kmsuser/password"),
                Some(json!({"new_password": pin, "auth_user": "admin", "auth_password": sim.admin_password()})),
            )
            .await
            .unwrap();
        advance_days(&sim, 8).await;
        for key in [&k, &elsewhere] {
            assert_eq!(
                code(kms.describe_key().key_id(key).send().await),
                "NotFoundException"
            );
        }
        let orphans = sim
            .control()
            .call("GET", "/_sim/orphans", None)
            .await
            .unwrap();
        let orphans = orphans["orphans"].as_array().unwrap();
        assert_eq!(orphans.len(), 1, "only the first store's key: {orphans:?}");
        assert!(orphans[0]["key_arn"].as_str().unwrap().ends_with(&k));
        assert_eq!(
            orphans[0]["reason"],
            "the kmsuser password was changed behind KMS's back"
        );
        let objs = sim.inspect_token(&cluster, pin);
        assert_eq!(objs.len(), 1, "the material stays: {objs:?}");
    });
}

#[test]
fn keys_aliases_tags_and_due_deletions_survive_restart() {
    let mut sim = Sim::start();
    let (store, k, gone) = block_on(async {
        let kms = sim.kms();
        let (store, _) = connected_store(&sim, "persist").await;
        let k = cloudhsm_key(&sim, &store).await;
        let gone = cloudhsm_key(&sim, &store).await;
        kms.create_alias()
            .alias_name("alias/persist")
            .target_key_id(&k)
            .send()
            .await
            .unwrap();
        kms.tag_resource()
            .key_id(&k)
            .tags(Tag::builder().tag_key("t").tag_value("v").build().unwrap())
            .send()
            .await
            .unwrap();
        kms.disable_key().key_id(&k).send().await.unwrap();
        kms.schedule_key_deletion()
            .key_id(&gone)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        // Move the clock to one second before the deletion falls due.
        sim.control()
            .call(
                "POST",
                "/_sim/clock/advance",
                Some(json!({"seconds": 7.0 * 86_400.0 - 1.0})),
            )
            .await
            .unwrap();
        (store, k, gone)
    });
    sim.stop();
    // Let the deletion fall due while the process is down (real time passes; poll, no sleep).
    let until = std::time::Instant::now() + std::time::Duration::from_millis(1100);
    deadline_poll("one second of wall-clock time", 5, || {
        (std::time::Instant::now() >= until).then_some(())
    });
    sim.respawn();
    block_on(async {
        let kms = sim.kms();
        wait_state(&kms, &store, "CONNECTED").await;
        let orphans = sim
            .control()
            .call("GET", "/_sim/orphans", None)
            .await
            .unwrap();
        assert!(
            orphans["orphans"].as_array().unwrap().is_empty(),
            "connected at start-up: material destroyed"
        );
        assert_eq!(
            code(kms.describe_key().key_id(&gone).send().await),
            "NotFoundException"
        );
        let d = kms
            .describe_key()
            .key_id("alias/persist")
            .send()
            .await
            .unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), k);
        assert_eq!(
            d.key_metadata().unwrap().key_state(),
            Some(&KeyState::Disabled)
        );
        let tags = kms.list_resource_tags().key_id(&k).send().await.unwrap();
        assert_eq!(tags.tags().len(), 1);
    });
}

#[test]
fn list_keys_paginates_through_the_sdk_paginator() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let mut made = std::collections::BTreeSet::new();
        for _ in 0..7 {
            made.insert(
                kms.create_key()
                    .send()
                    .await
                    .unwrap()
                    .key_metadata()
                    .unwrap()
                    .key_id()
                    .to_string(),
            );
        }
        let pages: Vec<_> = kms
            .list_keys()
            .limit(3)
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await;
        assert_eq!(pages.len(), 3);
        let seen: std::collections::BTreeSet<String> = pages
            .iter()
            .flat_map(|p| {
                p.as_ref()
                    .unwrap()
                    .keys()
                    .iter()
                    .map(|k| k.key_id().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(seen, made);
        assert_eq!(
            code(kms.list_keys().marker("garbage").send().await),
            "InvalidMarkerException"
        );
    });
}

/// The orphans after a key of `store` (CONNECTED, on `cluster`) is scheduled for deletion,
/// `kmsuser` is deleted behind KMS's back (by the cluster's admin, `admin_password`), and the
/// deletion falls due.
pub async fn orphans_after_kmsuser_is_deleted(
    sim: &Sim,
    cluster: &str,
    store: &str,
) -> Vec<serde_json::Value> {
    let kms = sim.kms();
    let k = cloudhsm_key(sim, store).await;
    kms.schedule_key_deletion()
        .key_id(&k)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule");
    sim.control()
        .call(
            "DELETE",
            &format!("/_sim/clusters/{cluster}/users/kmsuser"),
            None,
        )
        .await
        .expect("delete kmsuser");
    advance_days(sim, 8).await;
    assert_eq!(
        code(kms.describe_key().key_id(&k).send().await),
        "NotFoundException"
    );
    let orphans = sim
        .control()
        .call("GET", "/_sim/orphans", None)
        .await
        .expect("orphans");
    orphans["orphans"].as_array().cloned().unwrap_or_default()
}

/// Deleting `kmsuser` ends KMS's session on the cluster: a key deletion that falls due after
/// it cannot destroy the material, which is left as an orphan.
#[test]
fn a_deletion_after_kmsuser_was_deleted_behind_kms_leaves_an_orphan() {
    let sim = Sim::start();
    block_on(async {
        let (store, cluster) = connected_store(&sim, "kmsuser-gone").await;
        let orphans = orphans_after_kmsuser_is_deleted(&sim, &cluster, &store).await;
        assert_eq!(orphans.len(), 1, "{orphans:?}");
    });
}

//! KMS keys in CloudHSM key stores (and AWS_KMS keys): crypto, deletion, orphans, restarts
//! (managing keys, one behaviour per test: key_management.rs).

use crate::common::*;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, Tag};
use serde_json::json;

fn pt(b: &[u8]) -> Blob {
    Blob::new(b.to_vec())
}

#[test]
fn crypto_on_the_token_binds_key_and_context() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let (store, cluster) = connected_store(&sim, "crypto").await;
        let a = cloudhsm_key(&sim, &store).await;
        let b = cloudhsm_key(&sim, &store).await;
        let plain = kms
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string();

        for key in [&a, &plain] {
            let enc = kms
                .encrypt()
                .key_id(key)
                .plaintext(pt(b"secret"))
                .encryption_context("purpose", "test")
                .send()
                .await
                .unwrap();
            let blob = enc.ciphertext_blob().unwrap().clone();
            let dec = kms
                .decrypt()
                .ciphertext_blob(blob.clone())
                .encryption_context("purpose", "test")
                .send()
                .await
                .unwrap();
            assert_eq!(dec.plaintext().unwrap().as_ref(), b"secret");
            assert!(dec.key_id().unwrap().ends_with(key.as_str()));
            assert_eq!(
                code(kms.decrypt().ciphertext_blob(blob.clone()).send().await),
                "InvalidCiphertextException"
            );
            assert_eq!(
                code(
                    kms.decrypt()
                        .ciphertext_blob(blob.clone())
                        .encryption_context("purpose", "other")
                        .send()
                        .await
                ),
                "InvalidCiphertextException"
            );
            assert_eq!(
                code(
                    kms.decrypt()
                        .ciphertext_blob(blob.clone())
                        .key_id(&b)
                        .encryption_context("purpose", "test")
                        .send()
                        .await
                ),
                "IncorrectKeyException"
            );
            let mut tampered = blob.clone().into_inner();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            assert_eq!(
                code(
                    kms.decrypt()
                        .ciphertext_blob(Blob::new(tampered))
                        .encryption_context("purpose", "test")
                        .send()
                        .await
                ),
                "InvalidCiphertextException"
            );
            // ReEncrypt to the other key.
            let re = kms
                .re_encrypt()
                .ciphertext_blob(blob)
                .source_encryption_context("purpose", "test")
                .destination_key_id(&b)
                .send()
                .await
                .unwrap();
            let back = kms
                .decrypt()
                .ciphertext_blob(re.ciphertext_blob().unwrap().clone())
                .send()
                .await
                .unwrap();
            assert_eq!(back.plaintext().unwrap().as_ref(), b"secret");
            assert!(back.key_id().unwrap().ends_with(b.as_str()));
        }
        // The control door shows the token's key index and D7's session copies: both keys were
        // used for cryptography, so both have a copy (none on a module without C_CopyObject).
        let stats = sim
            .control()
            .call(
                "GET",
                &format!("/_sim/clusters/{cluster}/token/stats"),
                None,
            )
            .await
            .unwrap();
        assert!(stats["indexed_keys"].as_u64().unwrap() >= 2, "{stats}");
        let copies = stats["session_copies"].as_u64().unwrap();
        assert!(copies == 2 || copies == 0, "{stats}");

        let dk = kms
            .generate_data_key()
            .key_id(&a)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .send()
            .await
            .unwrap();
        assert_eq!(dk.plaintext().unwrap().as_ref().len(), 32);
        let again = kms
            .decrypt()
            .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            again.plaintext().unwrap().as_ref(),
            dk.plaintext().unwrap().as_ref()
        );
        let nopt = kms
            .generate_data_key_without_plaintext()
            .key_id(&a)
            .number_of_bytes(16)
            .send()
            .await
            .unwrap();
        assert!(nopt.ciphertext_blob().is_some());
        assert_eq!(
            code(kms.generate_data_key().key_id(&a).send().await),
            "ValidationException"
        );
        assert_eq!(
            code(
                kms.encrypt()
                    .key_id(&a)
                    .plaintext(pt(&[0u8; 4097]))
                    .send()
                    .await
            ),
            "ValidationException"
        );
        let r = kms
            .generate_random()
            .number_of_bytes(64)
            .custom_key_store_id(&store)
            .send()
            .await
            .unwrap();
        assert_eq!(r.plaintext().unwrap().as_ref().len(), 64);
        assert_eq!(
            code(
                kms.encrypt()
                    .key_id(&a)
                    .plaintext(pt(b"x"))
                    .dry_run(true)
                    .send()
                    .await
            ),
            "DryRunOperationException"
        );

        // A connected store whose cluster lost its HSMs: KMSInvalidStateException, still CONNECTED.
        let info = sim
            .control()
            .call("GET", &format!("/_sim/clusters/{cluster}"), None)
            .await
            .unwrap();
        for h in info["hsms"].as_array().unwrap() {
            sim.control()
                .call(
                    "POST",
                    &format!("/_sim/clusters/{cluster}/faults"),
                    Some(json!({"fault": "hsm-down", "target": h["hsm_id"]})),
                )
                .await
                .unwrap();
        }
        assert_eq!(
            code(kms.encrypt().key_id(&a).plaintext(pt(b"x")).send().await),
            "KMSInvalidStateException"
        );
        wait_state(&kms, &store, "CONNECTED").await;
        // The AWS_KMS key is unaffected.
        kms.encrypt()
            .key_id(&plain)
            .plaintext(pt(b"x"))
            .send()
            .await
            .unwrap();
    });
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

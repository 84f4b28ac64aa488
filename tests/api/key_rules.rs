//! Limits and rules of KMS key management that the scenario tests do not single out, one
//! behaviour per test: the 32 KB key policy limit on CreateKey and PutKeyPolicy, the tag count
//! of a key after TagResource, the only key policy name, ListKeyPolicies, the exact refusals of
//! origins, CreateKey in a store whose cluster lost an HSM or its network, and UpdateAlias and
//! DeleteAlias taking effect. Each aims at mutants of `src/kms/key.rs` that would otherwise go
//! unnoticed (`scripts/mutants src/kms/key.rs`, see docs/testing.md).
//!
//! One server for the file (kept while any of its tests runs); the tests work on AWS_KMS keys
//! of their own (the rules are the same for keys in a CloudHSM key store), except those of
//! CreateKey in a store, which make a cluster and a store of their own.

use crate::common::*;
use crate::key_stores::new_cluster;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::{OriginType, Tag};
use serde_json::json;
use std::sync::{Arc, Mutex, Weak};

/// The largest key policy KMS takes, in bytes.
const POLICY_LIMIT: usize = 32 * 1024;

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

/// A new AWS_KMS key.
async fn key(kms: &Client) -> String {
    kms.create_key()
        .send()
        .await
        .expect("create key")
        .key_metadata()
        .expect("metadata")
        .key_id()
        .to_string()
}

/// A key policy document of exactly `len` bytes (its `Id` pads it).
fn policy_of_len(len: usize) -> String {
    let shell = r#"{"Version":"2012-10-17","Id":"","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
    let pad = len.checked_sub(shell.len()).expect("len fits the shell");
    let p = shell.replacen(r#""Id":"""#, &format!(r#""Id":"{}""#, "p".repeat(pad)), 1);
    assert_eq!(p.len(), len);
    p
}

/// The exception and message of a refused request.
fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, E>,
) -> (String, String) {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => (
            e.code().unwrap_or_default().to_string(),
            e.message().unwrap_or_default().to_string(),
        ),
    }
}

fn too_large() -> (String, String) {
    (
        "LimitExceededException".into(),
        "The key policy exceeds the 32 KB limit.".into(),
    )
}

fn tags(from: usize, n: usize) -> Vec<Tag> {
    (from..from + n)
        .map(|i| {
            Tag::builder()
                .tag_key(format!("k{i}"))
                .tag_value("v")
                .build()
                .expect("tag")
        })
        .collect()
}

#[test]
fn create_key_takes_a_policy_of_exactly_32_kb() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let policy = policy_of_len(POLICY_LIMIT);
        let out = kms
            .create_key()
            .policy(&policy)
            .send()
            .await
            .expect("create");
        let id = out.key_metadata().expect("metadata").key_id();
        let got = kms.get_key_policy().key_id(id).send().await.expect("get");
        assert_eq!(got.policy(), Some(policy.as_str()));
    });
}

#[test]
fn create_key_refuses_a_policy_one_byte_over_32_kb() {
    let sim = shared();
    block_on(async {
        let r = sim
            .kms()
            .create_key()
            .policy(policy_of_len(POLICY_LIMIT + 1))
            .send()
            .await;
        assert_eq!(refusal(r), too_large());
    });
}

#[test]
fn put_key_policy_takes_a_policy_of_exactly_32_kb() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let id = key(&kms).await;
        let policy = policy_of_len(POLICY_LIMIT);
        kms.put_key_policy()
            .key_id(&id)
            .policy(&policy)
            .send()
            .await
            .expect("put");
        let got = kms.get_key_policy().key_id(&id).send().await.expect("get");
        assert_eq!(got.policy(), Some(policy.as_str()));
    });
}

#[test]
fn put_key_policy_refuses_a_policy_one_byte_over_32_kb() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let id = key(&kms).await;
        let r = kms
            .put_key_policy()
            .key_id(&id)
            .policy(policy_of_len(POLICY_LIMIT + 1))
            .send()
            .await;
        assert_eq!(refusal(r), too_large());
    });
}

#[test]
fn tag_resource_takes_tags_up_to_fifty_on_the_key_in_all() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let id = key(&kms).await;
        for (from, n) in [(0, 49), (49, 1)] {
            kms.tag_resource()
                .key_id(&id)
                .set_tags(Some(tags(from, n)))
                .send()
                .await
                .expect("tag");
        }
        let listed = kms
            .list_resource_tags()
            .key_id(&id)
            .send()
            .await
            .expect("list");
        assert_eq!(listed.tags().len(), 50);
    });
}

#[test]
fn tag_resource_refuses_a_tag_beyond_fifty_on_the_key_in_all_and_keeps_the_fifty() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let id = key(&kms).await;
        kms.tag_resource()
            .key_id(&id)
            .set_tags(Some(tags(0, 50)))
            .send()
            .await
            .expect("tag");
        let r = kms
            .tag_resource()
            .key_id(&id)
            .set_tags(Some(tags(50, 1)))
            .send()
            .await;
        assert_eq!(
            refusal(r),
            ("TagException".to_string(), "Too many tags".to_string())
        );
        let listed = kms
            .list_resource_tags()
            .key_id(&id)
            .send()
            .await
            .expect("list");
        assert_eq!(listed.tags().len(), 50);
    });
}

#[test]
fn get_key_policy_of_a_policy_name_other_than_default_is_not_found() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let id = key(&kms).await;
        let r = kms
            .get_key_policy()
            .key_id(&id)
            .policy_name("other")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            (
                "NotFoundException".to_string(),
                "Policy 'other' does not exist: the only key policy name is 'default'.".to_string()
            )
        );
    });
}

#[test]
fn list_key_policies_answers_the_default_policy_only() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let id = key(&kms).await;
        let out = kms
            .list_key_policies()
            .key_id(&id)
            .send()
            .await
            .expect("list");
        assert_eq!(out.policy_names(), ["default".to_string()]);
        assert!(!out.truncated());
    });
}

#[test]
fn an_external_key_with_a_custom_key_store_id_is_refused_as_not_for_a_cloudhsm_key_store() {
    let sim = shared();
    block_on(async {
        let r = sim
            .kms()
            .create_key()
            .origin(OriginType::External)
            .custom_key_store_id("cks-1234567890abcdef0")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            (
                "UnsupportedOperationException".to_string(),
                "A CustomKeyStoreId requires Origin AWS_CLOUDHSM: imported key material (Origin EXTERNAL) cannot be used in a CloudHSM key store.".to_string()
            )
        );
    });
}

#[test]
fn create_key_with_origin_external_key_store_is_unsupported() {
    let sim = shared();
    block_on(async {
        let r = sim
            .kms()
            .create_key()
            .origin(OriginType::ExternalKeyStore)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            (
                "UnsupportedOperationException".to_string(),
                "cks-sim does not simulate external key stores (Origin EXTERNAL_KEY_STORE)."
                    .to_string()
            )
        );
    });
}

/// A CONNECTED store on a new cluster of its own (two HSMs): (store, cluster, HSM IDs).
async fn own_store(sim: &Sim, name: &str) -> (String, String, Vec<String>) {
    let c = new_cluster(sim, 2).await;
    let store = create_store_with(sim, name, &c.id, &c.anchor, &c.kmsuser_password).await;
    sim.kms()
        .connect_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await
        .expect("connect");
    wait_state(&sim.kms(), &store, "CONNECTED").await;
    let info = sim
        .control()
        .call("GET", &format!("/_sim/clusters/{}", c.id), None)
        .await
        .expect("cluster");
    let hsms = info["hsms"]
        .as_array()
        .expect("hsms")
        .iter()
        .map(|h| h["hsm_id"].as_str().expect("hsm id").to_string())
        .collect();
    (store, c.id, hsms)
}

async fn fault(sim: &Sim, cluster: &str, name: &str, target: Option<&str>) {
    sim.control()
        .call(
            "POST",
            &format!("/_sim/clusters/{cluster}/faults"),
            Some(json!({"fault": name, "target": target})),
        )
        .await
        .expect("fault");
}

async fn create_key_in(sim: &Sim, store: &str) -> (String, String) {
    refusal(
        sim.kms()
            .create_key()
            .origin(OriginType::AwsCloudhsm)
            .custom_key_store_id(store)
            .send()
            .await,
    )
}

#[test]
fn create_key_in_a_store_whose_cluster_has_one_active_hsm_is_refused_as_invalid_configuration() {
    let sim = shared();
    block_on(async {
        let (store, cluster, hsms) = own_store(&sim, "one-hsm-left").await;
        fault(&sim, &cluster, "hsm-down", Some(&hsms[0])).await;
        assert_eq!(
            create_key_in(&sim, &store).await,
            (
                "CloudHsmClusterInvalidConfigurationException".to_string(),
                // AWS's words, from a recorded response (see tests/api/wording.rs).
                "CloudHSM cluster must contain active HSMs in at least two Availability Zones"
                    .to_string()
            )
        );
    });
}

#[test]
fn create_key_in_a_store_whose_clusters_network_is_down_is_refused_as_kms_invalid_state() {
    let sim = shared();
    block_on(async {
        let (store, cluster, _) = own_store(&sim, "network-down").await;
        fault(&sim, &cluster, "network-down", None).await;
        assert_eq!(
            create_key_in(&sim, &store).await,
            (
                "KMSInvalidStateException".to_string(),
                format!("KMS cannot communicate with your CloudHSM cluster {cluster}.")
            )
        );
    });
}

/// The key an alias names, through DescribeKey.
async fn aliased_key(kms: &Client, alias: &str) -> Result<String, String> {
    kms.describe_key()
        .key_id(alias)
        .send()
        .await
        .map(|o| o.key_metadata().expect("metadata").key_id().to_string())
        .map_err(|e| e.code().unwrap_or_default().to_string())
}

#[test]
fn update_alias_points_the_alias_at_the_new_key() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let (first, second) = (key(&kms).await, key(&kms).await);
        let alias = "alias/moves-to-second";
        kms.create_alias()
            .alias_name(alias)
            .target_key_id(&first)
            .send()
            .await
            .expect("create alias");
        kms.update_alias()
            .alias_name(alias)
            .target_key_id(&second)
            .send()
            .await
            .expect("update alias");
        assert_eq!(aliased_key(&kms, alias).await, Ok(second));
    });
}

#[test]
fn delete_alias_removes_the_alias() {
    let sim = shared();
    block_on(async {
        let kms = sim.kms();
        let id = key(&kms).await;
        let alias = "alias/deleted-again";
        kms.create_alias()
            .alias_name(alias)
            .target_key_id(&id)
            .send()
            .await
            .expect("create alias");
        kms.delete_alias()
            .alias_name(alias)
            .send()
            .await
            .expect("delete alias");
        assert_eq!(
            aliased_key(&kms, alias).await,
            Err("NotFoundException".to_string())
        );
    });
}

/// The simulator's clock, in seconds since the epoch.
async fn clock_now(sim: &Sim) -> f64 {
    let clock = sim
        .control()
        .call("GET", "/_sim/clock", None)
        .await
        .expect("clock");
    clock["now"].as_f64().expect("a number of seconds")
}

/// DescribeKey of a key in a CloudHSM key store answers every member AWS sends for one, and
/// no other: among them the account, the creation date (by the simulator's clock), the key
/// manager and both spec members.
#[test]
fn describe_key_of_a_cloudhsm_key_answers_every_member_aws_sends() {
    let sim = shared();
    block_on(async {
        let c = new_cluster(&sim, 2).await;
        let store =
            create_store_with(&sim, "described", &c.id, &c.anchor, &c.kmsuser_password).await;
        ask_connect(&sim, &store).await;
        wait_state(&sim.kms(), &store, "CONNECTED").await;
        let before = clock_now(&sim).await;
        let id = cloudhsm_key(&sim, &store).await;
        let after = clock_now(&sim).await;
        let described = sim
            .control()
            .aws("TrentService.DescribeKey", json!({"KeyId": id}))
            .await
            .expect("describe");
        let m = &described["KeyMetadata"];
        let created = m["CreationDate"].as_f64().expect("a number");
        assert!(
            before <= created && created <= after,
            "{before} {created} {after}"
        );
        let expected = json!({
            "AWSAccountId": "111122223333",
            "KeyId": id,
            "Arn": format!("arn:aws:kms:us-east-1:111122223333:key/{id}"),
            "CreationDate": created,
            "Enabled": true,
            "Description": "",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": "Enabled",
            "Origin": "AWS_CLOUDHSM",
            "CustomKeyStoreId": store,
            "CloudHsmClusterId": c.id,
            "KeyManager": "CUSTOMER",
            "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            "MultiRegion": false,
        });
        assert_eq!(*m, expected);
    });
}

/// A key in a CloudHSM key store has no key material ID (AWS gives them for the keys whose
/// material can rotate): Encrypt, Decrypt and GenerateDataKey answer without `KeyMaterialId`.
#[test]
fn cryptographic_answers_of_a_cloudhsm_key_name_no_key_material() {
    let sim = shared();
    block_on(async {
        let c = new_cluster(&sim, 2).await;
        let store = create_store_with(
            &sim,
            "no-material-id",
            &c.id,
            &c.anchor,
            &c.kmsuser_password,
        )
        .await;
        ask_connect(&sim, &store).await;
        wait_state(&sim.kms(), &store, "CONNECTED").await;
        let id = cloudhsm_key(&sim, &store).await;
        let kms = |op: &str, body| {
            let control = sim.control();
            let target = format!("TrentService.{op}");
            async move { control.aws(&target, body).await.expect("answered") }
        };
        let sealed = kms("Encrypt", json!({"KeyId": id, "Plaintext": "aGVsbG8="})).await;
        let opened = kms(
            "Decrypt",
            json!({"CiphertextBlob": sealed["CiphertextBlob"]}),
        )
        .await;
        let data_key = kms(
            "GenerateDataKey",
            json!({"KeyId": id, "KeySpec": "AES_256"}),
        )
        .await;
        assert_eq!(opened["Plaintext"], "aGVsbG8=");
        for answer in [&sealed, &opened, &data_key] {
            assert!(answer.get("KeyMaterialId").is_none(), "{answer}");
        }
    });
}

//! The CloudHSM side through the control door and cloudhsmv2: user rules, the token PIN
//! following kmsuser's password (D3), and persistence across restarts.

use crate::common::*;
use serde_json::json;

fn opens(sim: &Sim, cluster: &str, pin: &str) -> bool {
    std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
        .arg("inspect-token")
        .arg("--data-dir")
        .arg(sim.data_dir())
        .args(["--label", cluster, "--pin", pin])
        .output()
        .expect("inspect-token")
        .status
        .success()
}

#[test]
fn lockout_after_the_sixth_bad_password_and_admin_reset_unlocks() {
    let sim = Sim::start();
    block_on(async {
        let c = sim.control();
        let cluster = default_cluster(&sim).await;
        let users = format!("/_sim/clusters/{cluster}/users");
        c.call(
            "POST",
            &users,
            Some(json!({"username": "App_User", "role": "crypto-user", "password": "appPassw0rd"})),
        )
        .await
        .unwrap();
        let list = c.call("GET", &users, None).await.unwrap();
        assert!(
            list["users"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["username"] == "app_user" && u["role"] == "crypto-user"),
            "{list}"
        );
        for i in 1..=6 {
            let r = c
                .call(
                    "POST",
                    &format!("{users}/app_user/login"),
                    Some(json!({"password": "wrong-password"})),
                )
                .await;
            assert!(r.is_err(), "bad password {i} accepted");
            let list = c.call("GET", &users, None).await.unwrap();
            let u = list["users"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["username"] == "app_user")
                .unwrap()
                .clone();
            assert_eq!(u["locked"], i == 6, "after {i} bad passwords: {u}");
        }
        // Locked: even the right password is refused.
        let r = c
            .call(
                "POST",
                &format!("{users}/app_user/login"),
                Some(json!({"password": "appPassw0rd"})),
            )
            .await;
        assert!(
            matches!(r, Err(cks_sim::client::ClientError::Api { ref type_name, .. }) if type_name == "CloudHsmAccessDeniedException"),
            "{r:?}"
        );
        // A crypto user cannot reset another's password; an admin can, and that unlocks.
        c.call(
            "POST",
            &users,
            Some(json!({"username": "other", "role": "crypto-user", "password": "otherPassw0rd"})),
        )
        .await
        .unwrap();
        let r = c
            .call("POST", &format!("{users}/app_user/password"), Some(json!({"new_password": "newPassw0rd", "auth_user": "other", "auth_password": "otherPassw0rd"})))
            .await;
        assert!(r.is_err());
        c.call(
            "POST",
            &format!("{users}/app_user/password"),
            Some(json!({"new_password": "newPassw0rd", "auth_user": "admin", "auth_password": sim.admin_password()})),
        )
        .await
        .unwrap();
        c.call(
            "POST",
            &format!("{users}/app_user/login"),
            Some(json!({"password": "newPassw0rd"})),
        )
        .await
        .unwrap();
        c.call("POST", &format!("{users}/app_user/logout"), None)
            .await
            .unwrap();
        // Bad input names the field.
        let r = c
            .call(
                "POST",
                &users,
                Some(json!({"username": "x", "role": "wizard", "password": "whatever1"})),
            )
            .await;
        assert!(format!("{r:?}").contains("role"), "{r:?}");
    });
}

#[test]
fn the_token_pin_follows_kmsusers_password() {
    let sim = Sim::start();
    block_on(async {
        let c = sim.control();
        let cluster = default_cluster(&sim).await;
        let old = sim.kmsuser_password();
        assert!(opens(&sim, &cluster, &old));
        // kmsuser changes its own password.
        c.call(
            "POST",
            &format!("/_sim/clusters/{cluster}/users/kmsuser/password"),
            Some(json!({"new_password": "Changed12345", "auth_user": "kmsuser", "auth_password": old})),
        )
        .await
        .unwrap();
        assert!(
            opens(&sim, &cluster, "Changed12345"),
            "the new password opens the token"
        );
        assert!(
            !opens(&sim, &cluster, &old),
            "the old password no longer does"
        );
        // pkcs11-tool (OpenSC), as a customer would.
        sim.pkcs11_tool(&cluster, "Changed12345", &["--list-objects"]);
        // Deleting kmsuser leaves no known PIN on the token.
        c.call(
            "DELETE",
            &format!("/_sim/clusters/{cluster}/users/kmsuser"),
            None,
        )
        .await
        .unwrap();
        assert!(!opens(&sim, &cluster, "Changed12345"));
    });
}

#[test]
fn clusters_hsms_users_and_faults_survive_a_restart() {
    let mut sim = Sim::start();
    let (cluster, before_desc, before_users, before_faults) = block_on(async {
        let c = sim.control();
        let cl = super::key_stores::new_cluster(&sim, 2).await;
        c.call(
            "POST",
            &format!("/_sim/clusters/{}/faults", cl.id),
            Some(json!({"fault": "network-down"})),
        )
        .await
        .unwrap();
        let users = format!("/_sim/clusters/{}/users", cl.id);
        c.call("POST", &users, Some(json!({"username": "locked_one", "role": "crypto-user", "password": "lockedPassw0rd"}))).await.unwrap();
        for _ in 0..6 {
            let _ = c
                .call(
                    "POST",
                    &format!("{users}/locked_one/login"),
                    Some(json!({"password": "nope-nope"})),
                )
                .await;
        }
        let desc = c
            .aws(
                "BaldrApiService.DescribeClusters",
                json!({"Filters": {"clusterIds": [cl.id]}}),
            )
            .await
            .unwrap();
        let u = c.call("GET", &users, None).await.unwrap();
        let f = c
            .call("GET", &format!("/_sim/clusters/{}/faults", cl.id), None)
            .await
            .unwrap();
        (cl, desc, u, f)
    });
    sim.restart();
    block_on(async {
        let c = sim.control();
        let desc = c
            .aws(
                "BaldrApiService.DescribeClusters",
                json!({"Filters": {"clusterIds": [cluster.id]}}),
            )
            .await
            .unwrap();
        assert_eq!(desc, before_desc);
        assert_eq!(
            c.call("GET", &format!("/_sim/clusters/{}/users", cluster.id), None)
                .await
                .unwrap(),
            before_users
        );
        assert_eq!(
            c.call(
                "GET",
                &format!("/_sim/clusters/{}/faults", cluster.id),
                None
            )
            .await
            .unwrap(),
            before_faults
        );
        assert!(
            opens(&sim, &cluster.id, &cluster.kmsuser_password),
            "the token and its PIN survive"
        );
    });
}

#[test]
fn a_seed_declares_clusters_stores_and_keys_and_applying_it_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        r#"
[[cluster]]
id = "cluster-seedtestabcde"
azs = 2
hsms = 2
admin_password = "seedAdmin123"
[[cluster.user]]
name = "kmsuser"
role = "crypto-user"
password = "seedKmsuser1"

[[key_store]]
id = "cks-1234567890abcdef0"
name = "SeededStore"
cluster_id = "cluster-seedtestabcde"
password = "seedKmsuser1"
connect = true

[[key]]
id = "1234abcd-12ab-34cd-56ef-1234567890ab"
key_store = "cks-1234567890abcdef0"
description = "seeded key"
aliases = ["alias/seeded"]
"#,
    )
    .unwrap();
    let seed_arg = seed.to_string_lossy().to_string();
    let mut sim = Sim::start_with(&["--seed", &seed_arg]);
    let first = seeded_world(&sim);
    assert_eq!(
        (
            first.stores.len(),
            first.keys.len(),
            first.clusters["clusters"].as_array().map(Vec::len),
        ),
        (1, 1, Some(2)),
        "seeded store, key, and the default + seeded clusters"
    );
    let seeded_objects: Vec<&serde_json::Value> = first.token_objects.iter().flatten().collect();
    assert_eq!(
        seeded_objects.len(),
        1,
        "one token object: the seeded key's"
    );
    assert_eq!(
        seeded_objects[0][0],
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    );
    sim.restart();
    let second = seeded_world(&sim);
    assert_eq!(second.clusters, first.clusters, "clusters and their HSMs");
    assert_eq!(second.users, first.users, "users and their counters");
    assert_eq!(second.token_objects, first.token_objects, "token objects");
    assert_eq!(second.stores, first.stores, "key stores");
    assert_eq!(second.keys, first.keys, "keys");
    assert_eq!(second.aliases, first.aliases, "aliases");
}

/// The whole observable state after a seed: clusters with their HSMs, every cluster's users
/// with their counters, every token object (label, ID, fingerprint), key stores, keys and
/// aliases.
#[derive(Debug, PartialEq)]
struct SeededWorld {
    clusters: serde_json::Value,
    users: Vec<serde_json::Value>,
    token_objects: Vec<Vec<serde_json::Value>>,
    stores: Vec<serde_json::Value>,
    keys: Vec<serde_json::Value>,
    aliases: Vec<serde_json::Value>,
}

fn seeded_world(sim: &Sim) -> SeededWorld {
    block_on(async {
        let kms = sim.kms();
        wait_state(&kms, "cks-1234567890abcdef0", "CONNECTED").await;
        seeded_key_works(&kms).await;
        let c = sim.control();
        let get = |path: String| {
            let c = sim.control();
            async move { c.call("GET", &path, None).await.unwrap() }
        };
        let list = |op: &str, member: &str| {
            let (c, op, member) = (sim.control(), op.to_string(), member.to_string());
            async move {
                let v = c
                    .aws(&format!("TrentService.{op}"), json!({}))
                    .await
                    .unwrap();
                v[member.as_str()].as_array().unwrap().clone()
            }
        };
        let clusters = get("/_sim/clusters".into()).await;
        let (mut users, mut token_objects) = (vec![], vec![]);
        for cluster in clusters["clusters"].as_array().unwrap() {
            let id = cluster["cluster_id"].as_str().unwrap();
            users.push(get(format!("/_sim/clusters/{id}/users")).await);
            let pin = get(format!("/_sim/clusters/{id}/token/pin")).await;
            let objects = sim.inspect_token(id, pin["user_pin"].as_str().unwrap());
            token_objects.push(
                objects
                    .iter()
                    .map(|o| json!([o["label"], o["id"], o["fingerprint"]]))
                    .collect(),
            );
        }
        let mut keys = vec![];
        for k in list("ListKeys", "Keys").await {
            let described = c
                .aws("TrentService.DescribeKey", json!({"KeyId": k["KeyId"]}))
                .await
                .unwrap();
            keys.push(described);
        }
        SeededWorld {
            clusters,
            users,
            token_objects,
            stores: list("DescribeCustomKeyStores", "CustomKeyStores").await,
            keys,
            aliases: list("ListAliases", "Aliases").await,
        }
    })
}

/// The seeded key answers by its alias, lives in the seeded store and encrypts.
async fn seeded_key_works(kms: &aws_sdk_kms::Client) {
    let d = kms
        .describe_key()
        .key_id("alias/seeded")
        .send()
        .await
        .unwrap();
    let m = d.key_metadata().unwrap();
    assert_eq!(m.key_id(), "1234abcd-12ab-34cd-56ef-1234567890ab");
    assert_eq!(m.custom_key_store_id(), Some("cks-1234567890abcdef0"));
    assert_eq!(m.cloud_hsm_cluster_id(), Some("cluster-seedtestabcde"));
    let enc = kms
        .encrypt()
        .key_id("alias/seeded")
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"seeded".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(enc.ciphertext_blob().is_some());
}

//! The CloudHSM side through the control door and cloudhsmv2: user rules, the token PIN
//! following kmsuser's password (D3), and persistence across restarts. The user rules are
//! one behaviour per test on one shared server (at the end of the file).

use crate::common::*;
use cks_sim::client::ClientError;
use serde_json::json;
use std::sync::{Arc, Mutex, Weak};

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

// ---- Users: one behaviour per test, on one shared server ----
//
// The tests below share one server (kept while any of them runs) and its default cluster,
// each with users of its own.

static SHARED: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

/// The shared server: the running one, or a new one if none is running.
fn server() -> Arc<Sim> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sim) = shared.upgrade() {
        return sim;
    }
    let sim = Arc::new(Sim::start());
    *shared = Arc::downgrade(&sim);
    sim
}

/// The control door's refusal: (status, exception, message).
fn api_refusal(r: Result<serde_json::Value, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Api {
            status,
            type_name,
            message,
        }) => (status, type_name, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn refused(status: u16, exception: &str, message: &str) -> (u16, String, String) {
    (status, exception.to_string(), message.to_string())
}

/// The default cluster's users route.
async fn users_path(sim: &Sim) -> String {
    format!("/_sim/clusters/{}/users", default_cluster(sim).await)
}

/// A crypto user `name` with `password` on the default cluster.
async fn crypto_user(sim: &Sim, name: &str, password: &str) {
    sim.control()
        .call(
            "POST",
            &users_path(sim).await,
            Some(json!({"username": name, "role": "crypto-user", "password": password})),
        )
        .await
        .expect("create a crypto user");
}

/// `name` logs in on the default cluster with `password`.
async fn login(sim: &Sim, name: &str, password: &str) -> Result<serde_json::Value, ClientError> {
    sim.control()
        .call(
            "POST",
            &format!("{}/{name}/login", users_path(sim).await),
            Some(json!({"password": password})),
        )
        .await
}

/// `name`'s entry in the default cluster's user list.
async fn listed(sim: &Sim, name: &str) -> serde_json::Value {
    let list = sim
        .control()
        .call("GET", &users_path(sim).await, None)
        .await
        .unwrap();
    list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {list}"))
        .clone()
}

/// Six logins of `name` with a wrong password: the sixth locks it.
async fn lock_out(sim: &Sim, name: &str) {
    for _ in 0..6 {
        login(sim, name, "wrong-password").await.unwrap_err();
    }
}

/// `auth_user` (password `auth_password`) sets `name`'s password to `new_password`.
async fn change_password(
    sim: &Sim,
    name: &str,
    new_password: &str,
    auth_user: &str,
    auth_password: &str,
) -> Result<serde_json::Value, ClientError> {
    sim.control()
        .call(
            "POST",
            &format!("{}/{name}/password", users_path(sim).await),
            Some(json!({"new_password": new_password, "auth_user": auth_user, "auth_password": auth_password})),
        )
        .await
}

#[test]
fn a_new_users_name_is_lowercased_and_listed_with_its_role() {
    let sim = server();
    block_on(async {
        crypto_user(&sim, "App_User", "appPassw0rd").await;
        assert_eq!(listed(&sim, "app_user").await["role"], "crypto-user");
    });
}

#[test]
fn the_sixth_bad_password_in_a_row_locks_the_user() {
    let sim = server();
    block_on(async {
        crypto_user(&sim, "locking", "appPassw0rd").await;
        for i in 1..=6 {
            let r = login(&sim, "locking", "wrong-password").await;
            let want = if i == 6 {
                "Wrong password for user locking; the user is now locked"
            } else {
                "Wrong password for user locking"
            };
            assert_eq!(
                api_refusal(r),
                refused(400, "CloudHsmAccessDeniedException", want),
                "bad password {i}"
            );
            let u = listed(&sim, "locking").await;
            assert_eq!(u["locked"], i == 6, "after {i} bad passwords: {u}");
        }
    });
}

#[test]
fn a_locked_user_is_refused_even_with_the_right_password() {
    let sim = server();
    block_on(async {
        crypto_user(&sim, "locked", "appPassw0rd").await;
        lock_out(&sim, "locked").await;
        assert_eq!(
            api_refusal(login(&sim, "locked", "appPassw0rd").await),
            refused(
                400,
                "CloudHsmAccessDeniedException",
                "user is locked: an admin must reset the password of locked"
            )
        );
    });
}

#[test]
fn a_crypto_user_cannot_reset_another_users_password() {
    let sim = server();
    block_on(async {
        crypto_user(&sim, "target", "appPassw0rd").await;
        crypto_user(&sim, "other", "otherPassw0rd").await;
        let r = change_password(&sim, "target", "newPassw0rd", "other", "otherPassw0rd").await;
        assert_eq!(
            api_refusal(r),
            refused(
                400,
                "CloudHsmAccessDeniedException",
                "The user other is not an admin and cannot change the password of target"
            )
        );
        login(&sim, "target", "appPassw0rd")
            .await
            .expect("the old password still opens");
    });
}

#[test]
fn an_admins_password_reset_unlocks_a_locked_user() {
    let sim = server();
    block_on(async {
        crypto_user(&sim, "unlocked", "appPassw0rd").await;
        lock_out(&sim, "unlocked").await;
        change_password(
            &sim,
            "unlocked",
            "newPassw0rd",
            "admin",
            &sim.admin_password(),
        )
        .await
        .expect("the admin resets the password");
        assert_eq!(listed(&sim, "unlocked").await["locked"], false);
        login(&sim, "unlocked", "newPassw0rd").await.unwrap();
        sim.control()
            .call(
                "POST",
                &format!("{}/unlocked/logout", users_path(&sim).await),
                None,
            )
            .await
            .unwrap();
    });
}

#[test]
fn a_new_user_with_an_unknown_role_is_refused_naming_the_role() {
    let sim = server();
    block_on(async {
        let r = sim
            .control()
            .call(
                "POST",
                &users_path(&sim).await,
                Some(json!({"username": "x", "role": "wizard", "password": "whatever1"})),
            )
            .await;
        assert_eq!(
            api_refusal(r),
            refused(
                400,
                "InvalidRequest",
                "role \"wizard\": use \"admin\" or \"crypto-user\""
            )
        );
    });
}

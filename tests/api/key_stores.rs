//! CloudHSM key stores through aws-sdk-kms: the whole lifecycle and every exception.

use crate::common::*;
use aws_sdk_kms::types::ConnectionErrorCodeType;
use cks_sim::cluster::certs;
use serde_json::{Value, json};

/// A cluster made the customer's way through the cloudhsmv2 API and the control door:
/// CreateCluster → sign the CSR → InitializeCluster → activate → `hsms` HSMs → kmsuser.
pub struct NewCluster {
    pub id: String,
    pub anchor: String,
    pub kmsuser_password: String,
    pub admin_password: String,
}

pub async fn new_cluster(sim: &Sim, hsms: usize) -> NewCluster {
    let c = sim.control();
    let created = c
        .aws(
            "BaldrApiService.CreateCluster",
            json!({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}),
        )
        .await
        .expect("CreateCluster");
    let id = created["Cluster"]["ClusterId"]
        .as_str()
        .unwrap()
        .to_string();
    let csr = created["Cluster"]["Certificates"]["ClusterCsr"]
        .as_str()
        .expect("CSR")
        .to_string();
    let ca = certs::new_customer_ca("test CA").unwrap();
    let signed = certs::sign_csr(&ca, &csr).unwrap();
    c.aws(
        "BaldrApiService.InitializeCluster",
        json!({"ClusterId": id, "SignedCert": signed, "TrustAnchor": ca.cert_pem}),
    )
    .await
    .expect("InitializeCluster");
    let admin_password = "adminPassw0rd".to_string();
    c.call(
        "POST",
        &format!("/_sim/clusters/{id}/activate"),
        Some(json!({"admin_password": admin_password})),
    )
    .await
    .expect("activate");
    let azs: Vec<String> = created["Cluster"]["SubnetMapping"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for i in 0..hsms {
        c.aws(
            "BaldrApiService.CreateHsm",
            json!({"ClusterId": id, "AvailabilityZone": azs[i % azs.len()]}),
        )
        .await
        .expect("CreateHsm");
    }
    let kmsuser_password = "kmsuserPassw0rd".to_string();
    c.call(
        "POST",
        &format!("/_sim/clusters/{id}/users"),
        Some(json!({"username": "kmsuser", "role": "crypto-user", "password": kmsuser_password})),
    )
    .await
    .expect("create kmsuser");
    NewCluster {
        id,
        anchor: ca.cert_pem,
        kmsuser_password,
        admin_password,
    }
}

async fn describe(sim: &Sim, id: &str) -> aws_sdk_kms::types::CustomKeyStoresListEntry {
    sim.kms()
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("describe")
        .custom_key_stores()[0]
        .clone()
}

/// Everything observable about a cluster: the control door's view, its users, and an
/// independent look at its token objects (labels, ids, material fingerprints).
async fn snapshot(sim: &Sim, cluster: &str, pin: &str) -> (Value, Value, Vec<Value>) {
    let c = sim.control();
    let mut info = c
        .call("GET", &format!("/_sim/clusters/{cluster}"), None)
        .await
        .unwrap();
    info.as_object_mut().unwrap().remove("custom_key_stores");
    let users = c
        .call("GET", &format!("/_sim/clusters/{cluster}/users"), None)
        .await
        .unwrap();
    (info, users, sim.inspect_token(cluster, pin))
}

async fn token_calls(sim: &Sim, cluster: &str) -> u64 {
    sim.control()
        .call(
            "GET",
            &format!("/_sim/clusters/{cluster}/token/stats"),
            None,
        )
        .await
        .unwrap()["calls"]
        .as_u64()
        .unwrap()
}

#[test]
fn lifecycle_create_connect_rotate_disconnect_delete() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let cluster = default_cluster(&sim).await;
        let original = sim.kmsuser_password();
        let id = create_store(&sim, "ExampleKeyStore", &cluster, &original).await;
        assert!(id.starts_with("cks-") && id.len() == 21, "{id}");
        let e = describe(&sim, &id).await;
        assert_eq!(e.connection_state().unwrap().as_str(), "DISCONNECTED");
        assert_eq!(e.custom_key_store_type().unwrap().as_str(), "AWS_CLOUDHSM");
        assert_eq!(e.cloud_hsm_cluster_id(), Some(cluster.as_str()));
        assert_eq!(
            e.trust_anchor_certificate(),
            Some(sim.trust_anchor().as_str())
        );
        assert!(e.connection_error_code().is_none());

        // No response ever carries the password.
        let (_, raw) = sim
            .control()
            .raw(
                "POST",
                "/",
                &[("x-amz-target", "TrentService.DescribeCustomKeyStores")],
                b"{}".to_vec(),
            )
            .await
            .unwrap();
        assert!(!raw.to_string().contains(&original));

        kms.connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        wait_state(&kms, &id, "CONNECTED").await;
        // The connect rotated kmsuser's password (and the token PIN): the customer's one no
        // longer opens the token.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
            .arg("inspect-token")
            .arg("--data-dir")
            .arg(sim.data_dir())
            .args(["--label", &cluster, "--pin", &original])
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "the old password must no longer open the token"
        );

        // Connect while CONNECTED is a no-op.
        kms.connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            describe(&sim, &id)
                .await
                .connection_state()
                .unwrap()
                .as_str(),
            "CONNECTED"
        );

        // Delete while connected: refused, nothing changes.
        let r = kms
            .delete_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreInvalidStateException");

        disconnect(&sim, &id).await;
        let r = kms
            .disconnect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
        kms.delete_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        for r in [
            code(
                kms.describe_custom_key_stores()
                    .custom_key_store_id(&id)
                    .send()
                    .await,
            ),
            code(
                kms.describe_custom_key_stores()
                    .custom_key_store_name("ExampleKeyStore")
                    .send()
                    .await,
            ),
            code(
                kms.delete_custom_key_store()
                    .custom_key_store_id(&id)
                    .send()
                    .await,
            ),
            code(
                kms.connect_custom_key_store()
                    .custom_key_store_id(&id)
                    .send()
                    .await,
            ),
            code(
                kms.disconnect_custom_key_store()
                    .custom_key_store_id(&id)
                    .send()
                    .await,
            ),
            code(
                kms.update_custom_key_store()
                    .custom_key_store_id(&id)
                    .new_custom_key_store_name("x")
                    .send()
                    .await,
            ),
            code(
                kms.generate_random()
                    .number_of_bytes(8)
                    .custom_key_store_id(&id)
                    .send()
                    .await,
            ),
        ] {
            assert_eq!(r, "CustomKeyStoreNotFoundException");
        }
        // The cluster and the name can back a new store; the new ID differs.
        let again = create_store(&sim, "ExampleKeyStore", &cluster, "whatever1").await;
        assert_ne!(again, id);
    });
}

#[test]
fn delete_changes_nothing_in_the_cluster_and_makes_no_pkcs11_call() {
    let sim = Sim::start();
    block_on(async {
        let (id, cluster) = connected_store(&sim, "audit").await;
        let key = cloudhsm_key(&sim, &id).await;
        let kms = sim.kms();
        kms.schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        disconnect(&sim, &id).await;
        // The key pending deletion still blocks the delete.
        let r = kms
            .delete_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreHasCMKsException");
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 8})))
            .await
            .unwrap();

        // The admin resets kmsuser's password so we (like the customer) can look inside.
        let pin = "auditPassw0rd";
        sim.control()
            .call(
                "POST",
                &format!("/_sim/clusters/{cluster}/users/kmsuser/password"),
                Some(json!({"new_password": pin, "auth_user": "admin", "auth_password": sim.admin_password()})),
            )
            .await
            .unwrap();
        let before = snapshot(&sim, &cluster, pin).await;
        assert_eq!(
            before.2.len(),
            1,
            "the orphaned material is on the token: {:?}",
            before.2
        );
        let calls = token_calls(&sim, &cluster).await;
        kms.delete_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            token_calls(&sim, &cluster).await,
            calls,
            "DeleteCustomKeyStore made a PKCS#11 call"
        );
        let after = snapshot(&sim, &cluster, pin).await;
        assert_eq!(
            before, after,
            "the cluster changed across DeleteCustomKeyStore"
        );
        let label = after.2[0]["label"].as_str().unwrap();
        assert!(
            label.ends_with(&key),
            "orphan labelled with the old key ARN: {label}"
        );
    });
}

#[test]
fn create_refusals_and_the_idempotent_retry() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let cluster = default_cluster(&sim).await;
        let pw = sim.kmsuser_password();
        let create = |name: &str, cluster: &str, anchor: &str, pw: &str| {
            kms.create_custom_key_store()
                .custom_key_store_name(name)
                .cloud_hsm_cluster_id(cluster)
                .trust_anchor_certificate(anchor)
                .key_store_password(pw)
                .send()
        };
        let id = create_store(&sim, "one", &cluster, &pw).await;
        // Identical retry while DISCONNECTED answers the same ID (CRLF-normalised anchor too).
        let crlf = sim.trust_anchor().replace('\n', "\r\n");
        let again = create("one", &cluster, &crlf, &pw).await.unwrap();
        assert_eq!(again.custom_key_store_id(), Some(id.as_str()));
        assert_eq!(
            code(create("one", &cluster, &sim.trust_anchor(), "different1").await),
            "CustomKeyStoreNameInUseException"
        );
        assert_eq!(
            code(create("two", &cluster, &sim.trust_anchor(), &pw).await),
            "CloudHsmClusterInUseException"
        );
        assert_eq!(
            code(create("two", "cluster-234567abcdefg", &sim.trust_anchor(), &pw).await),
            "CloudHsmClusterNotFoundException"
        );

        let other = new_cluster(&sim, 2).await;
        let wrong_anchor = certs::new_customer_ca("someone else").unwrap().cert_pem;
        assert_eq!(
            code(create("two", &other.id, &wrong_anchor, &pw).await),
            "IncorrectTrustAnchorException"
        );
        let one_hsm = new_cluster(&sim, 1).await;
        assert_eq!(
            code(create("three", &one_hsm.id, &one_hsm.anchor, &pw).await),
            "CloudHsmClusterInvalidConfigurationException"
        );
        let fresh = sim
            .control()
            .aws("BaldrApiService.CreateCluster", json!({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}))
            .await
            .unwrap();
        let fresh_id = fresh["Cluster"]["ClusterId"].as_str().unwrap();
        assert_eq!(
            code(create("four", fresh_id, &other.anchor, &pw).await),
            "CloudHsmClusterNotActiveException"
        );

        // Bad input.
        assert_eq!(
            code(create(&"n".repeat(257), &other.id, &other.anchor, &pw).await),
            "ValidationException"
        );
        assert_eq!(
            code(create("five", "cluster-1a23b4cdefg", &other.anchor, &pw).await),
            "ValidationException"
        );
        assert_eq!(
            code(create("five", &other.id, &other.anchor, "short").await),
            "ValidationException"
        );
        let r = kms
            .create_custom_key_store()
            .custom_key_store_name("xks")
            .custom_key_store_type(aws_sdk_kms::types::CustomKeyStoreType::ExternalKeyStore)
            .send()
            .await;
        assert_eq!(code(r), "UnsupportedOperationException");
        // Nothing of the above created a store.
        let all = kms.describe_custom_key_stores().send().await.unwrap();
        assert_eq!(all.custom_key_stores().len(), 1);
    });
}

#[test]
fn quota_of_ten_stores_and_its_release() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let mut ids = Vec::new();
        for i in 0..10 {
            let c = new_cluster(&sim, 2).await;
            let id = kms
                .create_custom_key_store()
                .custom_key_store_name(format!("store-{i}"))
                .cloud_hsm_cluster_id(&c.id)
                .trust_anchor_certificate(&c.anchor)
                .key_store_password(&c.kmsuser_password)
                .send()
                .await
                .unwrap()
                .custom_key_store_id()
                .unwrap()
                .to_string();
            ids.push(id);
        }
        let cluster = default_cluster(&sim).await;
        let over = kms
            .create_custom_key_store()
            .custom_key_store_name("eleventh")
            .cloud_hsm_cluster_id(&cluster)
            .trust_anchor_certificate(sim.trust_anchor())
            .key_store_password(sim.kmsuser_password())
            .send()
            .await;
        assert_eq!(code(over), "LimitExceededException");

        // Pagination through the SDK paginator, one store a page.
        let pages: Vec<_> = kms
            .describe_custom_key_stores()
            .limit(3)
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await;
        let listed: usize = pages
            .iter()
            .map(|p| p.as_ref().unwrap().custom_key_stores().len())
            .sum();
        assert_eq!(listed, 10);
        assert_eq!(pages.len(), 4);
        for (i, p) in pages.iter().enumerate() {
            let p = p.as_ref().unwrap();
            assert_eq!(p.truncated(), i < 3);
            assert_eq!(p.next_marker().is_some(), i < 3);
        }
        let r = kms
            .describe_custom_key_stores()
            .marker("bogus")
            .send()
            .await;
        assert_eq!(code(r), "InvalidMarkerException");

        kms.delete_custom_key_store()
            .custom_key_store_id(&ids[0])
            .send()
            .await
            .unwrap();
        create_store_with(
            &sim,
            "eleventh",
            &cluster,
            &sim.trust_anchor(),
            &sim.kmsuser_password(),
        )
        .await;
    });
}

#[test]
fn update_rules_and_related_clusters() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let (id, cluster) = connected_store(&sim, "upd").await;
        // Rename while CONNECTED works; anything else needs DISCONNECTED.
        kms.update_custom_key_store()
            .custom_key_store_id(&id)
            .new_custom_key_store_name("renamed")
            .send()
            .await
            .unwrap();
        assert_eq!(
            describe(&sim, &id).await.custom_key_store_name(),
            Some("renamed")
        );
        let r = kms
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .key_store_password("newpassword1")
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
        disconnect(&sim, &id).await;

        let unrelated = new_cluster(&sim, 2).await;
        let r = kms
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .cloud_hsm_cluster_id(&unrelated.id)
            .send()
            .await;
        assert_eq!(code(r), "CloudHsmClusterNotRelatedException");
        let r = kms
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .cloud_hsm_cluster_id("cluster-234567abcdefg")
            .send()
            .await;
        assert_eq!(code(r), "CloudHsmClusterNotFoundException");

        // A cluster restored from a backup of ours is related, and in use for a new store.
        let backups = sim
            .control()
            .aws(
                "BaldrApiService.DescribeBackups",
                json!({"Filters": {"clusterIds": [cluster]}}),
            )
            .await
            .unwrap();
        let backup = backups["Backups"][0]["BackupId"]
            .as_str()
            .expect("a backup of the default cluster")
            .to_string();
        let restored = sim
            .control()
            .aws(
                "BaldrApiService.CreateCluster",
                json!({"HsmType": "hsm2m.medium", "SourceBackupId": backup, "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}),
            )
            .await
            .unwrap();
        let rid = restored["Cluster"]["ClusterId"]
            .as_str()
            .unwrap()
            .to_string();
        let r = kms
            .create_custom_key_store()
            .custom_key_store_name("sibling")
            .cloud_hsm_cluster_id(&rid)
            .trust_anchor_certificate(sim.trust_anchor())
            .key_store_password("whatever1")
            .send()
            .await;
        assert_eq!(code(r), "CloudHsmClusterInUseException");
        // Related but without HSMs yet: invalid configuration.
        let r = kms
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .cloud_hsm_cluster_id(&rid)
            .send()
            .await;
        assert_eq!(code(r), "CloudHsmClusterInvalidConfigurationException");
        let azs: Vec<String> = restored["Cluster"]["SubnetMapping"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for az in &azs {
            sim.control()
                .aws(
                    "BaldrApiService.CreateHsm",
                    json!({"ClusterId": rid, "AvailabilityZone": az}),
                )
                .await
                .unwrap();
        }
        kms.update_custom_key_store()
            .custom_key_store_id(&id)
            .cloud_hsm_cluster_id(&rid)
            .key_store_password("newpassword1")
            .send()
            .await
            .unwrap();
        assert_eq!(
            describe(&sim, &id).await.cloud_hsm_cluster_id(),
            Some(rid.as_str())
        );
        // A name used by another store is refused.
        create_store_with(
            &sim,
            "taken",
            &unrelated.id,
            &unrelated.anchor,
            &unrelated.kmsuser_password,
        )
        .await;
        let r = kms
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .new_custom_key_store_name("taken")
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreNameInUseException");
    });
}

#[test]
fn connecting_and_disconnecting_are_observable() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let c = sim.control();
        let cluster = default_cluster(&sim).await;
        let id = create_store(&sim, "slow", &cluster, &sim.kmsuser_password()).await;
        c.call(
            "POST",
            "/_sim/settings",
            Some(json!({"hold_connections": true})),
        )
        .await
        .unwrap();
        kms.connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            describe(&sim, &id)
                .await
                .connection_state()
                .unwrap()
                .as_str(),
            "CONNECTING"
        );
        // Connect again while CONNECTING: accepted, no change.
        kms.connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        let r = kms
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .new_custom_key_store_name("n")
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
        c.call(
            "POST",
            "/_sim/settings",
            Some(json!({"hold_connections": false})),
        )
        .await
        .unwrap();
        wait_state(&kms, &id, "CONNECTED").await;

        c.call(
            "POST",
            "/_sim/settings",
            Some(json!({"disconnect_delay_ms": 3000})),
        )
        .await
        .unwrap();
        kms.disconnect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            describe(&sim, &id)
                .await
                .connection_state()
                .unwrap()
                .as_str(),
            "DISCONNECTING"
        );
        let r = kms
            .connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
        let r = kms
            .disconnect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
        wait_state(&kms, &id, "DISCONNECTED").await;
    });
}

async fn expect_failure(sim: &Sim, id: &str, want: ConnectionErrorCodeType) {
    let kms = sim.kms();
    kms.connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .unwrap();
    let e = wait_state(&kms, id, "FAILED").await;
    assert_eq!(e.connection_error_code(), Some(&want), "{e:?}");
    // FAILED must be disconnected before a new connect.
    let r = kms
        .connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
    disconnect(sim, id).await;
    assert!(describe(sim, id).await.connection_error_code().is_none());
}

async fn expect_success(sim: &Sim, id: &str) {
    sim.kms()
        .connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .unwrap();
    wait_state(&sim.kms(), id, "CONNECTED").await;
    disconnect(sim, id).await;
}

async fn fault(sim: &Sim, cluster: &str, name: &str, target: Option<&str>, on: bool) {
    sim.control()
        .call(
            "POST",
            &format!("/_sim/clusters/{cluster}/faults"),
            Some(json!({"fault": name, "target": target, "on": on})),
        )
        .await
        .unwrap_or_else(|e| panic!("fault {name}: {e}"));
}

#[test]
fn every_connection_error_code_has_a_cause_and_a_cure() {
    let sim = Sim::start();
    block_on(async {
        let c = sim.control();
        let cl = new_cluster(&sim, 2).await;
        let kms = sim.kms();
        let id = kms
            .create_custom_key_store()
            .custom_key_store_name("faulty")
            .cloud_hsm_cluster_id(&cl.id)
            .trust_anchor_certificate(&cl.anchor)
            .key_store_password(&cl.kmsuser_password)
            .send()
            .await
            .unwrap()
            .custom_key_store_id()
            .unwrap()
            .to_string();
        let info = c
            .call("GET", &format!("/_sim/clusters/{}", cl.id), None)
            .await
            .unwrap();
        let subnet = info["subnets"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        let hsms: Vec<String> = info["hsms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["hsm_id"].as_str().unwrap().to_string())
            .collect();

        for (name, target, want) in [
            (
                "cluster-deleted",
                None,
                ConnectionErrorCodeType::ClusterNotFound,
            ),
            (
                "subnet-deleted",
                Some(subnet.as_str()),
                ConnectionErrorCodeType::SubnetNotFound,
            ),
            (
                "subnet-exhausted",
                Some(subnet.as_str()),
                ConnectionErrorCodeType::InsufficientFreeAddressesInSubnet,
            ),
            ("network-down", None, ConnectionErrorCodeType::NetworkErrors),
            (
                "internal-error",
                None,
                ConnectionErrorCodeType::InternalError,
            ),
            (
                "user-partial-coverage",
                Some("kmsuser"),
                ConnectionErrorCodeType::UserNotFound,
            ),
        ] {
            fault(&sim, &cl.id, name, target, true).await;
            expect_failure(&sim, &id, want).await;
            fault(&sim, &cl.id, name, target, false).await;
            expect_success(&sim, &id).await;
        }

        // Zero active HSMs after the request: asynchronous INSUFFICIENT_CLOUDHSM_HSMS.
        c.call(
            "POST",
            "/_sim/settings",
            Some(json!({"hold_connections": true})),
        )
        .await
        .unwrap();
        kms.connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        for h in &hsms {
            fault(&sim, &cl.id, "hsm-down", Some(h), true).await;
        }
        c.call(
            "POST",
            "/_sim/settings",
            Some(json!({"hold_connections": false})),
        )
        .await
        .unwrap();
        let e = wait_state(&kms, &id, "FAILED").await;
        assert_eq!(
            e.connection_error_code(),
            Some(&ConnectionErrorCodeType::InsufficientCloudhsmHsms)
        );
        disconnect(&sim, &id).await;
        // And the fast path while none is active.
        let r = kms
            .connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(code(r), "CloudHsmClusterInvalidConfigurationException");
        for h in &hsms {
            fault(&sim, &cl.id, "hsm-down", Some(h), false).await;
        }
        expect_success(&sim, &id).await;

        // kmsuser logged in elsewhere.
        // (After the successful connects above, KMS rotated kmsuser's password; the admin
        // resets it so a person can log in.)
        let users = |u: &str| format!("/_sim/clusters/{}/users/{u}", cl.id);
        c.call("POST", &format!("{}/password", users("kmsuser")), Some(json!({"new_password": "Reset12345", "auth_user": "admin", "auth_password": cl.admin_password}))).await.unwrap();
        c.call(
            "POST",
            &format!("{}/login", users("kmsuser")),
            Some(json!({"password": "Reset12345"})),
        )
        .await
        .unwrap();
        kms.update_custom_key_store()
            .custom_key_store_id(&id)
            .key_store_password("Reset12345")
            .send()
            .await
            .unwrap();
        expect_failure(&sim, &id, ConnectionErrorCodeType::UserLoggedIn).await;
        c.call("POST", &format!("{}/logout", users("kmsuser")), None)
            .await
            .unwrap();
        expect_success(&sim, &id).await;

        // Wrong password: INVALID_CREDENTIALS, counted toward the lockout.
        c.call("POST", &format!("{}/password", users("kmsuser")), Some(json!({"new_password": "Reset12345", "auth_user": "admin", "auth_password": cl.admin_password}))).await.unwrap();
        kms.update_custom_key_store()
            .custom_key_store_id(&id)
            .key_store_password("WrongPassword1")
            .send()
            .await
            .unwrap();
        for _ in 0..5 {
            expect_failure(&sim, &id, ConnectionErrorCodeType::InvalidCredentials).await;
        }
        // The sixth bad password locks kmsuser.
        expect_failure(&sim, &id, ConnectionErrorCodeType::UserLockedOut).await;
        let list = c
            .call("GET", &format!("/_sim/clusters/{}/users", cl.id), None)
            .await
            .unwrap();
        let k = list["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == "kmsuser")
            .unwrap()
            .clone();
        assert_eq!(k["locked"], true, "{k}");
        // Even the right password cannot unlock it: still locked out.
        kms.update_custom_key_store()
            .custom_key_store_id(&id)
            .key_store_password("Reset12345")
            .send()
            .await
            .unwrap();
        expect_failure(&sim, &id, ConnectionErrorCodeType::UserLockedOut).await;
        // An admin's password reset unlocks.
        c.call("POST", &format!("{}/password", users("kmsuser")), Some(json!({"new_password": "Again12345", "auth_user": "admin", "auth_password": cl.admin_password}))).await.unwrap();
        kms.update_custom_key_store()
            .custom_key_store_id(&id)
            .key_store_password("Again12345")
            .send()
            .await
            .unwrap();
        expect_success(&sim, &id).await;

        // kmsuser deleted: USER_NOT_FOUND; re-created: cured.
        c.call("DELETE", &users("kmsuser"), None).await.unwrap();
        expect_failure(&sim, &id, ConnectionErrorCodeType::UserNotFound).await;
        c.call(
            "POST",
            &format!("/_sim/clusters/{}/users", cl.id),
            Some(json!({"username": "kmsuser", "role": "crypto-user", "password": "Again12345"})),
        )
        .await
        .unwrap();
        // KMS still holds the password it rotated to; tell it the new user's one.
        expect_failure(&sim, &id, ConnectionErrorCodeType::InvalidCredentials).await;
        kms.update_custom_key_store()
            .custom_key_store_id(&id)
            .key_store_password("Again12345")
            .send()
            .await
            .unwrap();
        expect_success(&sim, &id).await;
    });
}

#[test]
fn stores_survive_restarts_and_connected_ones_reconnect() {
    let mut sim = Sim::start();
    let (connected, disconnected) = block_on(async {
        let (a, _) = connected_store(&sim, "stays-connected").await;
        let cluster2 = new_cluster(&sim, 2).await;
        let b = sim
            .kms()
            .create_custom_key_store()
            .custom_key_store_name("stays-disconnected")
            .cloud_hsm_cluster_id(&cluster2.id)
            .trust_anchor_certificate(&cluster2.anchor)
            .key_store_password(&cluster2.kmsuser_password)
            .send()
            .await
            .unwrap()
            .custom_key_store_id()
            .unwrap()
            .to_string();
        (a, b)
    });
    let key = block_on(cloudhsm_key(&sim, &connected));
    let blob = block_on(async {
        sim.kms()
            .encrypt()
            .key_id(&key)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"survives".to_vec()))
            .send()
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .clone()
    });
    sim.restart();
    block_on(async {
        wait_state(&sim.kms(), &connected, "CONNECTED").await;
        assert_eq!(
            describe(&sim, &disconnected)
                .await
                .connection_state()
                .unwrap()
                .as_str(),
            "DISCONNECTED"
        );
        let out = sim
            .kms()
            .decrypt()
            .ciphertext_blob(blob)
            .send()
            .await
            .unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), b"survives");
    });
}

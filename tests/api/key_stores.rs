//! CloudHSM key stores through aws-sdk-kms: the whole lifecycle and every exception.
//!
//! The scenario tests at the top start a server each; the tests after them show one behaviour
//! each on a few shared servers (see "The split tests"), and every refusal among them is
//! checked for its exception and its exact message.

use crate::common::*;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::ConnectionErrorCodeType;
use cks_sim::cluster::certs;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, Weak};

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

// ---- The split tests: shared servers ----
//
// The tests below share a server per section (kept while any of its tests runs): a server
// serialises its changes, so one per section lets the sections run side by side. Each test
// works on a cluster and store of its own and deletes its store at the end, because an
// account holds at most ten stores (a test holds at most two at once, far below the quota
// with scripts/test's four test threads). A test that changes a server-wide setting uses a
// server of its own or one shared with tests wanting the same setting. The section servers
// complete a disconnect at once (no simulated delay): none of their tests observes
// DISCONNECTING, and many of them disconnect several times.

static SHARED: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

static UPDATES: Mutex<Weak<Sim>> = Mutex::new(Weak::new());
static CODES: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

/// The shared server of the lifecycle and CreateCustomKeyStore tests.
fn server() -> Arc<Sim> {
    shared(&SHARED, quick_disconnect_server)
}

/// The shared server of the UpdateCustomKeyStore tests.
fn update_server() -> Arc<Sim> {
    shared(&UPDATES, quick_disconnect_server)
}

/// The shared server of the ConnectionErrorCode tests.
fn codes_server() -> Arc<Sim> {
    shared(&CODES, quick_disconnect_server)
}

fn quick_disconnect_server() -> Sim {
    Sim::start_with_config("[simulation]\ndisconnect_delay_ms = 0\n")
}

/// The server kept in `slot`: the running one, or one `start` starts if none is running.
fn shared(slot: &Mutex<Weak<Sim>>, start: impl FnOnce() -> Sim) -> Arc<Sim> {
    let mut shared = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sim) = shared.upgrade() {
        return sim;
    }
    let sim = Arc::new(start());
    *shared = Arc::downgrade(&sim);
    sim
}

/// A new cluster (two HSMs, in two AZs) with a DISCONNECTED store named `name` on it, made
/// with kmsuser's password.
async fn own_store(sim: &Sim, name: &str) -> (String, NewCluster) {
    let c = new_cluster(sim, 2).await;
    let id = create_store_with(sim, name, &c.id, &c.anchor, &c.kmsuser_password).await;
    (id, c)
}

/// Delete a test's store (disconnecting it first if need be), freeing its place in the quota.
async fn release(sim: &Sim, id: &str) {
    if describe(sim, id)
        .await
        .connection_state()
        .map(|s| s.as_str())
        != Some("DISCONNECTED")
    {
        disconnect(sim, id).await;
    }
    sim.kms()
        .delete_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("delete the test's store");
}

async fn connect(sim: &Sim, id: &str) {
    sim.kms()
        .connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("connect");
    wait_state(&sim.kms(), id, "CONNECTED").await;
}

async fn set_password(sim: &Sim, id: &str, password: &str) {
    sim.kms()
        .update_custom_key_store()
        .custom_key_store_id(id)
        .key_store_password(password)
        .send()
        .await
        .expect("update the store's password");
}

/// The exception and message of a refused request.
fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, E>,
) -> (String, String) {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => (
            e.code().unwrap_or("no code").to_string(),
            e.message().unwrap_or("no message").to_string(),
        ),
    }
}

fn refused(code: &str, message: &str) -> (String, String) {
    (code.to_string(), message.to_string())
}

fn state_of(e: &aws_sdk_kms::types::CustomKeyStoresListEntry) -> &str {
    e.connection_state().expect("state").as_str()
}

// ---- Lifecycle: create, connect, disconnect, delete ----

#[test]
fn a_new_store_is_a_disconnected_cloudhsm_store_of_its_cluster_and_trust_anchor() {
    let sim = server();
    block_on(async {
        let (id, c) = own_store(&sim, "new-store").await;
        assert!(id.starts_with("cks-") && id.len() == 21, "{id}");
        let e = describe(&sim, &id).await;
        assert_eq!(state_of(&e), "DISCONNECTED");
        assert_eq!(e.custom_key_store_type().unwrap().as_str(), "AWS_CLOUDHSM");
        assert_eq!(e.cloud_hsm_cluster_id(), Some(c.id.as_str()));
        assert_eq!(e.trust_anchor_certificate(), Some(c.anchor.as_str()));
        assert!(e.connection_error_code().is_none());
        release(&sim, &id).await;
    });
}

#[test]
fn no_response_carries_the_key_store_password() {
    let sim = server();
    block_on(async {
        let c = new_cluster(&sim, 2).await;
        let password = "NeverEchoed-Passw0rd";
        let id = create_store_with(&sim, "secret-keeper", &c.id, &c.anchor, password).await;
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
        assert!(raw.to_string().contains(&id), "the store is listed: {raw}");
        assert!(!raw.to_string().contains(password));
        release(&sim, &id).await;
    });
}

#[test]
fn connecting_rotates_kmsusers_password_so_the_customers_no_longer_opens_the_token() {
    let sim = server();
    block_on(async {
        let (id, c) = own_store(&sim, "rotated").await;
        assert_eq!(
            token_pin(&sim, &c.id).await,
            c.kmsuser_password,
            "before the connect, the token's PIN is the customer's password"
        );
        connect(&sim, &id).await;
        assert_ne!(
            token_pin(&sim, &c.id).await,
            c.kmsuser_password,
            "the connect rotated the token's PIN"
        );
        let out = sim.inspect_token_output(&c.id, &c.kmsuser_password);
        // Refused for its PIN, not for any other reason.
        assert!(
            !out.status.success(),
            "the old password must no longer open the token"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "cks-sim: the token refused the PIN (PinIncorrect)\n"
        );
        release(&sim, &id).await;
    });
}

#[test]
fn connect_while_connected_is_accepted_and_changes_nothing() {
    let sim = server();
    block_on(async {
        let (id, _) = own_store(&sim, "connected-twice").await;
        connect(&sim, &id).await;
        sim.kms()
            .connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(state_of(&describe(&sim, &id).await), "CONNECTED");
        release(&sim, &id).await;
    });
}

#[test]
fn delete_while_connected_is_refused_and_the_store_stays_connected() {
    let sim = server();
    block_on(async {
        let (id, _) = own_store(&sim, "delete-connected").await;
        connect(&sim, &id).await;
        let r = sim
            .kms()
            .delete_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreInvalidStateException",
                &format!(
                    "Custom key store {id} is CONNECTED: disconnect it (DisconnectCustomKeyStore) before deleting it."
                )
            )
        );
        assert_eq!(state_of(&describe(&sim, &id).await), "CONNECTED");
        release(&sim, &id).await;
    });
}

#[test]
fn disconnect_of_a_disconnected_store_is_refused() {
    let sim = server();
    block_on(async {
        let (id, _) = own_store(&sim, "disconnect-twice").await;
        let r = sim
            .kms()
            .disconnect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreInvalidStateException",
                &format!("Custom key store {id} is DISCONNECTED: there is no connection to end.")
            )
        );
        release(&sim, &id).await;
    });
}

#[test]
fn a_deleted_store_is_not_found_by_every_operation() {
    let sim = server();
    block_on(async {
        let kms = sim.kms();
        let (id, _) = own_store(&sim, "deleted").await;
        kms.delete_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        let not_found = refused(
            "CustomKeyStoreNotFoundException",
            &format!("Custom key store '{id}' does not exist."),
        );
        let by_id = kms.describe_custom_key_stores().custom_key_store_id(&id);
        assert_eq!(refusal(by_id.send().await), not_found, "describe by ID");
        let by_name = kms
            .describe_custom_key_stores()
            .custom_key_store_name("deleted");
        assert_eq!(
            refusal(by_name.send().await),
            refused(
                "CustomKeyStoreNotFoundException",
                "No custom key store is named 'deleted'."
            ),
            "describe by name"
        );
        let delete = kms.delete_custom_key_store().custom_key_store_id(&id);
        assert_eq!(refusal(delete.send().await), not_found, "delete");
        let connect = kms.connect_custom_key_store().custom_key_store_id(&id);
        assert_eq!(refusal(connect.send().await), not_found, "connect");
        let disconnect = kms.disconnect_custom_key_store().custom_key_store_id(&id);
        assert_eq!(refusal(disconnect.send().await), not_found, "disconnect");
        let update = kms
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .new_custom_key_store_name("x");
        assert_eq!(refusal(update.send().await), not_found, "update");
        let random = kms
            .generate_random()
            .number_of_bytes(8)
            .custom_key_store_id(&id);
        assert_eq!(refusal(random.send().await), not_found, "generate random");
    });
}

#[test]
fn a_deleted_stores_cluster_and_name_back_a_new_store_with_a_new_id() {
    let sim = server();
    block_on(async {
        let (id, c) = own_store(&sim, "reborn").await;
        release(&sim, &id).await;
        let again = create_store_with(&sim, "reborn", &c.id, &c.anchor, "whatever1").await;
        assert_ne!(again, id);
        release(&sim, &again).await;
    });
}

// ---- CONNECTING and DISCONNECTING, observable ----
//
// Holding connections and slowing disconnects are server-wide settings, so these tests share
// two servers of their own: one that holds every connection in CONNECTING (never released),
// and one whose disconnects take three seconds. A test that releases held connections starts
// its own.

static HOLDING: Mutex<Weak<Sim>> = Mutex::new(Weak::new());
static SLOW_DISCONNECT: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

/// A server that holds every connection attempt in CONNECTING.
fn holding_server() -> Arc<Sim> {
    shared(&HOLDING, || {
        let sim = Sim::start();
        hold_connections(&sim, true);
        sim
    })
}

/// A server whose disconnects stay DISCONNECTING for three seconds.
fn slow_disconnect_server() -> Arc<Sim> {
    shared(&SLOW_DISCONNECT, || {
        Sim::start_with_config("[simulation]\ndisconnect_delay_ms = 3000\n")
    })
}

fn hold_connections(sim: &Sim, on: bool) {
    block_on(sim.control().call(
        "POST",
        "/_sim/settings",
        Some(json!({"hold_connections": on})),
    ))
    .expect("settings");
}

/// A store of its own on `sim`, asked to connect (held: CONNECTING).
async fn connecting_store(sim: &Sim, name: &str) -> String {
    let (id, _) = own_store(sim, name).await;
    sim.kms()
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    id
}

/// A store of its own on `sim`, connected, then asked to disconnect (DISCONNECTING).
async fn disconnecting_store(sim: &Sim, name: &str) -> String {
    let (id, _) = own_store(sim, name).await;
    connect(sim, &id).await;
    sim.kms()
        .disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    id
}

#[test]
fn a_held_connection_is_observable_as_connecting() {
    let sim = holding_server();
    block_on(async {
        let id = connecting_store(&sim, "held").await;
        assert_eq!(state_of(&describe(&sim, &id).await), "CONNECTING");
    });
}

#[test]
fn connect_while_connecting_is_accepted_and_changes_nothing() {
    let sim = holding_server();
    block_on(async {
        let id = connecting_store(&sim, "held-twice").await;
        sim.kms()
            .connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(state_of(&describe(&sim, &id).await), "CONNECTING");
    });
}

#[test]
fn a_connecting_store_cannot_be_renamed() {
    let sim = holding_server();
    block_on(async {
        let id = connecting_store(&sim, "held-rename").await;
        let r = sim
            .kms()
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .new_custom_key_store_name("n")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreInvalidStateException",
                &format!(
                    "Custom key store {id} is CONNECTING: it can be renamed only while CONNECTED or DISCONNECTED."
                )
            )
        );
        assert_eq!(
            describe(&sim, &id).await.custom_key_store_name(),
            Some("held-rename")
        );
    });
}

/// Starts a server of its own: it releases held connections, a server-wide setting.
#[test]
fn a_held_connection_completes_when_released() {
    let sim = Sim::start();
    hold_connections(&sim, true);
    block_on(async {
        let id = connecting_store(&sim, "released").await;
        assert_eq!(state_of(&describe(&sim, &id).await), "CONNECTING");
        sim.control()
            .call(
                "POST",
                "/_sim/settings",
                Some(json!({"hold_connections": false})),
            )
            .await
            .unwrap();
        wait_state(&sim.kms(), &id, "CONNECTED").await;
    });
}

#[test]
fn a_slow_disconnect_is_observable_as_disconnecting_until_it_completes() {
    let sim = slow_disconnect_server();
    block_on(async {
        let id = disconnecting_store(&sim, "slow").await;
        assert_eq!(state_of(&describe(&sim, &id).await), "DISCONNECTING");
        wait_state(&sim.kms(), &id, "DISCONNECTED").await;
    });
}

#[test]
fn connect_while_disconnecting_is_refused() {
    let sim = slow_disconnect_server();
    block_on(async {
        let id = disconnecting_store(&sim, "slow-connect").await;
        let r = sim
            .kms()
            .connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreInvalidStateException",
                &format!("Custom key store {id} is DISCONNECTING: wait until it is DISCONNECTED.")
            )
        );
    });
}

#[test]
fn disconnect_while_disconnecting_is_refused() {
    let sim = slow_disconnect_server();
    block_on(async {
        let id = disconnecting_store(&sim, "slow-disconnect").await;
        let r = sim
            .kms()
            .disconnect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreInvalidStateException",
                &format!("Custom key store {id} is DISCONNECTING: there is no connection to end.")
            )
        );
    });
}

// ---- UpdateCustomKeyStore ----

#[test]
fn a_connected_store_can_be_renamed() {
    let sim = update_server();
    block_on(async {
        let (id, _) = own_store(&sim, "upd").await;
        connect(&sim, &id).await;
        sim.kms()
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .new_custom_key_store_name("renamed")
            .send()
            .await
            .unwrap();
        assert_eq!(
            describe(&sim, &id).await.custom_key_store_name(),
            Some("renamed")
        );
        release(&sim, &id).await;
    });
}

#[test]
fn a_connected_stores_password_cannot_be_changed() {
    let sim = update_server();
    block_on(async {
        let (id, _) = own_store(&sim, "upd-password").await;
        connect(&sim, &id).await;
        let r = sim
            .kms()
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .key_store_password("newpassword1")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreInvalidStateException",
                &format!(
                    "Custom key store {id} is CONNECTED: disconnect it before changing its password or cluster."
                )
            )
        );
        release(&sim, &id).await;
    });
}

#[test]
fn an_unrelated_cluster_is_refused_with_not_related() {
    let sim = update_server();
    block_on(async {
        let (id, c) = own_store(&sim, "upd-unrelated").await;
        let unrelated = new_cluster(&sim, 2).await;
        let r = sim
            .kms()
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .cloud_hsm_cluster_id(&unrelated.id)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterNotRelatedException",
                &format!(
                    "AWS CloudHSM cluster '{}' does not share a backup history (cluster certificate) with '{}'.",
                    unrelated.id, c.id
                )
            )
        );
        release(&sim, &id).await;
    });
}

#[test]
fn an_unknown_cluster_is_refused_with_not_found() {
    let sim = update_server();
    block_on(async {
        let (id, _) = own_store(&sim, "upd-unknown").await;
        let r = sim
            .kms()
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .cloud_hsm_cluster_id("cluster-234567abcdefg")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterNotFoundException",
                "AWS CloudHSM cluster 'cluster-234567abcdefg' does not exist."
            )
        );
        release(&sim, &id).await;
    });
}

/// A cluster made from the latest backup of `cluster` (related to it), without HSMs, and the
/// Availability Zones of its subnets.
async fn restored_cluster(sim: &Sim, cluster: &str) -> (String, Vec<String>) {
    let c = sim.control();
    let backups = c
        .aws(
            "BaldrApiService.DescribeBackups",
            json!({"Filters": {"clusterIds": [cluster]}}),
        )
        .await
        .unwrap();
    let backup = backups["Backups"][0]["BackupId"]
        .as_str()
        .expect("a backup of the cluster")
        .to_string();
    let restored = c
        .aws(
            "BaldrApiService.CreateCluster",
            json!({"HsmType": "hsm2m.medium", "SourceBackupId": backup, "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}),
        )
        .await
        .unwrap();
    let id = restored["Cluster"]["ClusterId"]
        .as_str()
        .unwrap()
        .to_string();
    let azs = restored["Cluster"]["SubnetMapping"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    (id, azs)
}

#[test]
fn a_cluster_restored_from_a_stores_backup_is_in_use_for_a_new_store() {
    let sim = update_server();
    block_on(async {
        let (id, c) = own_store(&sim, "upd-in-use").await;
        let (restored, _) = restored_cluster(&sim, &c.id).await;
        let r = sim
            .kms()
            .create_custom_key_store()
            .custom_key_store_name("sibling")
            .cloud_hsm_cluster_id(&restored)
            .trust_anchor_certificate(&c.anchor)
            .key_store_password("whatever1")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterInUseException",
                &format!(
                    "AWS CloudHSM cluster '{restored}' (or a cluster that shares its backup history) is already associated with custom key store {id}."
                )
            )
        );
        release(&sim, &id).await;
    });
}

#[test]
fn a_related_cluster_without_hsms_is_refused_with_invalid_configuration() {
    let sim = update_server();
    block_on(async {
        let (id, c) = own_store(&sim, "upd-no-hsm").await;
        let (restored, _) = restored_cluster(&sim, &c.id).await;
        let r = sim
            .kms()
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .cloud_hsm_cluster_id(&restored)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterInvalidConfigurationException",
                "CloudHSM cluster must contain active HSMs in at least two Availability Zones"
            )
        );
        assert_eq!(
            describe(&sim, &id).await.cloud_hsm_cluster_id(),
            Some(c.id.as_str())
        );
        release(&sim, &id).await;
    });
}

#[test]
fn a_related_cluster_with_hsms_in_two_azs_takes_over_a_disconnected_store() {
    let sim = update_server();
    block_on(async {
        let (id, c) = own_store(&sim, "upd-moved").await;
        let (restored, azs) = restored_cluster(&sim, &c.id).await;
        for az in &azs {
            sim.control()
                .aws(
                    "BaldrApiService.CreateHsm",
                    json!({"ClusterId": restored, "AvailabilityZone": az}),
                )
                .await
                .unwrap();
        }
        sim.kms()
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .cloud_hsm_cluster_id(&restored)
            .key_store_password("newpassword1")
            .send()
            .await
            .unwrap();
        assert_eq!(
            describe(&sim, &id).await.cloud_hsm_cluster_id(),
            Some(restored.as_str())
        );
        release(&sim, &id).await;
    });
}

#[test]
fn a_new_name_used_by_another_store_is_refused() {
    let sim = update_server();
    block_on(async {
        let (id, _) = own_store(&sim, "upd-rename").await;
        let (other, _) = own_store(&sim, "taken").await;
        let r = sim
            .kms()
            .update_custom_key_store()
            .custom_key_store_id(&id)
            .new_custom_key_store_name("taken")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreNameInUseException",
                "The custom key store name 'taken' is already used by another custom key store."
            )
        );
        assert_eq!(
            describe(&sim, &id).await.custom_key_store_name(),
            Some("upd-rename")
        );
        release(&sim, &id).await;
        release(&sim, &other).await;
    });
}

// ---- CreateCustomKeyStore: the idempotent retry and every refusal ----

/// CreateCustomKeyStore with these members.
async fn create(
    sim: &Sim,
    name: &str,
    cluster: &str,
    anchor: &str,
    password: &str,
) -> Result<
    aws_sdk_kms::operation::create_custom_key_store::CreateCustomKeyStoreOutput,
    aws_sdk_kms::error::SdkError<
        aws_sdk_kms::operation::create_custom_key_store::CreateCustomKeyStoreError,
    >,
> {
    sim.kms()
        .create_custom_key_store()
        .custom_key_store_name(name)
        .cloud_hsm_cluster_id(cluster)
        .trust_anchor_certificate(anchor)
        .key_store_password(password)
        .send()
        .await
}

/// No store is named `name`: a refused create made none.
async fn assert_no_store_named(sim: &Sim, name: &str) {
    let r = sim
        .kms()
        .describe_custom_key_stores()
        .custom_key_store_name(name)
        .send()
        .await;
    assert_eq!(
        refusal(r),
        refused(
            "CustomKeyStoreNotFoundException",
            &format!("No custom key store is named '{name}'.")
        ),
        "a store named {name} was made"
    );
}

#[test]
fn an_identical_create_retried_while_disconnected_answers_the_same_store() {
    let sim = server();
    block_on(async {
        let (id, c) = own_store(&sim, "retried").await;
        // The anchor with CRLF line ends is the same certificate.
        let crlf = c.anchor.replace('\n', "\r\n");
        let again = create(&sim, "retried", &c.id, &crlf, &c.kmsuser_password)
            .await
            .unwrap();
        assert_eq!(again.custom_key_store_id(), Some(id.as_str()));
        release(&sim, &id).await;
    });
}

#[test]
fn a_create_with_a_name_in_use_and_another_password_is_refused() {
    let sim = server();
    block_on(async {
        let (id, c) = own_store(&sim, "name-in-use").await;
        let r = create(&sim, "name-in-use", &c.id, &c.anchor, "different1").await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreNameInUseException",
                "The custom key store name 'name-in-use' is already used by another custom key store in this account and Region."
            )
        );
        let named = sim
            .kms()
            .describe_custom_key_stores()
            .custom_key_store_name("name-in-use")
            .send()
            .await
            .unwrap();
        let ids: Vec<_> = named
            .custom_key_stores()
            .iter()
            .map(|e| e.custom_key_store_id())
            .collect();
        assert_eq!(
            ids,
            [Some(id.as_str())],
            "only the first store has the name"
        );
        release(&sim, &id).await;
    });
}

#[test]
fn a_create_on_a_cluster_that_backs_a_store_is_refused() {
    let sim = server();
    block_on(async {
        let (id, c) = own_store(&sim, "cluster-in-use").await;
        let r = create(
            &sim,
            "second-on-cluster",
            &c.id,
            &c.anchor,
            &c.kmsuser_password,
        )
        .await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterInUseException",
                &format!(
                    "AWS CloudHSM cluster '{}' (or a cluster that shares its backup history) is already associated with custom key store {id}.",
                    c.id
                )
            )
        );
        assert_no_store_named(&sim, "second-on-cluster").await;
        release(&sim, &id).await;
    });
}

#[test]
fn a_create_on_an_unknown_cluster_is_refused() {
    let sim = server();
    block_on(async {
        let r = create(
            &sim,
            "on-unknown-cluster",
            "cluster-234567abcdefg",
            &sim.trust_anchor(),
            &sim.kmsuser_password(),
        )
        .await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterNotFoundException",
                "AWS CloudHSM cluster 'cluster-234567abcdefg' does not exist."
            )
        );
        assert_no_store_named(&sim, "on-unknown-cluster").await;
    });
}

#[test]
fn a_create_with_another_clusters_trust_anchor_is_refused() {
    let sim = server();
    block_on(async {
        let c = new_cluster(&sim, 2).await;
        let wrong_anchor = certs::new_customer_ca("someone else").unwrap().cert_pem;
        let r = create(
            &sim,
            "wrong-anchor",
            &c.id,
            &wrong_anchor,
            &c.kmsuser_password,
        )
        .await;
        assert_eq!(
            refusal(r),
            refused(
                "IncorrectTrustAnchorException",
                &format!(
                    "The trust anchor certificate does not match the trust anchor of AWS CloudHSM cluster '{}' (the customerCA.crt used to initialize it).",
                    c.id
                )
            )
        );
        assert_no_store_named(&sim, "wrong-anchor").await;
    });
}

#[test]
fn a_create_on_a_cluster_with_one_hsm_is_refused() {
    let sim = server();
    block_on(async {
        let c = new_cluster(&sim, 1).await;
        let r = create(&sim, "one-hsm", &c.id, &c.anchor, &c.kmsuser_password).await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterInvalidConfigurationException",
                "CloudHSM cluster must contain active HSMs in at least two Availability Zones"
            )
        );
        assert_no_store_named(&sim, "one-hsm").await;
    });
}

#[test]
fn a_create_on_a_cluster_not_yet_initialized_is_refused() {
    let sim = server();
    block_on(async {
        let fresh = sim
            .control()
            .aws("BaldrApiService.CreateCluster", json!({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}))
            .await
            .unwrap();
        let fresh = fresh["Cluster"]["ClusterId"].as_str().unwrap();
        let r = create(
            &sim,
            "not-active",
            fresh,
            &sim.trust_anchor(),
            &sim.kmsuser_password(),
        )
        .await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterNotActiveException",
                &format!(
                    "AWS CloudHSM cluster '{fresh}' is UNINITIALIZED, not ACTIVE: initialize and activate it first."
                )
            )
        );
        assert_no_store_named(&sim, "not-active").await;
    });
}

#[test]
fn a_create_with_a_name_over_256_characters_is_refused() {
    let sim = server();
    block_on(async {
        // The default cluster backs no store on this server: only the name is wrong.
        let cluster = default_cluster(&sim).await;
        let name = "n".repeat(257);
        let r = create(
            &sim,
            &name,
            &cluster,
            &sim.trust_anchor(),
            &sim.kmsuser_password(),
        )
        .await;
        assert_eq!(
            refusal(r),
            refused(
                "ValidationException",
                &format!(
                    "1 validation error detected: Value '{name}' at 'customKeyStoreName' failed to satisfy constraint: Member must have length less than or equal to 256"
                )
            )
        );
        let all = sim.kms().describe_custom_key_stores().send().await.unwrap();
        assert!(
            all.custom_key_stores()
                .iter()
                .all(|e| e.custom_key_store_name() != Some(name.as_str())),
            "a store with the long name was made"
        );
    });
}

#[test]
fn a_create_with_a_malformed_cluster_id_is_refused() {
    let sim = server();
    block_on(async {
        let r = create(
            &sim,
            "malformed-cluster-id",
            "cluster-1a23b4cdefg",
            &sim.trust_anchor(),
            &sim.kmsuser_password(),
        )
        .await;
        assert_eq!(
            refusal(r),
            refused(
                "ValidationException",
                "1 validation error detected: Value 'cluster-1a23b4cdefg' at 'cloudHsmClusterId' failed to satisfy constraint: Member must satisfy regular expression pattern: cluster-[2-7a-zA-Z]{11,16}"
            )
        );
        assert_no_store_named(&sim, "malformed-cluster-id").await;
    });
}

#[test]
fn a_create_with_a_password_under_seven_characters_is_refused() {
    let sim = server();
    block_on(async {
        // The default cluster backs no store on this server: only the password is wrong.
        let cluster = default_cluster(&sim).await;
        let r = create(
            &sim,
            "short-password",
            &cluster,
            &sim.trust_anchor(),
            "short",
        )
        .await;
        assert_eq!(
            refusal(r),
            refused(
                "ValidationException",
                "1 validation error detected: Value at 'keyStorePassword' failed to satisfy constraint: Member must have length greater than or equal to 7"
            )
        );
        assert_no_store_named(&sim, "short-password").await;
    });
}

#[test]
fn an_external_key_store_is_unsupported() {
    let sim = server();
    block_on(async {
        let r = sim
            .kms()
            .create_custom_key_store()
            .custom_key_store_name("xks")
            .custom_key_store_type(aws_sdk_kms::types::CustomKeyStoreType::ExternalKeyStore)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "UnsupportedOperationException",
                "cks-sim simulates AWS CloudHSM key stores only; external key stores (EXTERNAL_KEY_STORE) are not supported."
            )
        );
        assert_no_store_named(&sim, "xks").await;
    });
}

// ---- Every ConnectionErrorCode: its cause, and its cure ----

/// Connect, and expect the connection to end FAILED with `want`; then disconnect.
async fn expect_failure(sim: &Sim, id: &str, want: ConnectionErrorCodeType) {
    let kms = sim.kms();
    kms.connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .unwrap();
    let e = wait_state(&kms, id, "FAILED").await;
    assert_eq!(e.connection_error_code(), Some(&want), "{e:?}");
    disconnect(sim, id).await;
}

/// Connect, expect CONNECTED, and disconnect.
async fn expect_success(sim: &Sim, id: &str) {
    connect(sim, id).await;
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

/// What a fault is aimed at.
enum Target {
    Cluster,
    Subnet,
    User(&'static str),
}

/// The cluster's (first subnet, HSM IDs).
async fn subnet_and_hsms(sim: &Sim, cluster: &str) -> (String, Vec<String>) {
    let info = sim
        .control()
        .call("GET", &format!("/_sim/clusters/{cluster}"), None)
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
    let hsms = info["hsms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hsm_id"].as_str().unwrap().to_string())
        .collect();
    (subnet, hsms)
}

/// With the fault `name` on, a connect FAILs with `want`; with it off, the store connects.
fn fault_fails_with_until_cleared(name: &str, target: Target, want: ConnectionErrorCodeType) {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, &format!("fault-{name}")).await;
        let subnet = subnet_and_hsms(&sim, &c.id).await.0;
        let target = match target {
            Target::Cluster => None,
            Target::Subnet => Some(subnet.as_str()),
            Target::User(u) => Some(u),
        };
        fault(&sim, &c.id, name, target, true).await;
        expect_failure(&sim, &id, want).await;
        fault(&sim, &c.id, name, target, false).await;
        expect_success(&sim, &id).await;
        release(&sim, &id).await;
    });
}

#[test]
fn a_deleted_cluster_is_cluster_not_found_and_connects_once_back() {
    fault_fails_with_until_cleared(
        "cluster-deleted",
        Target::Cluster,
        ConnectionErrorCodeType::ClusterNotFound,
    );
}

#[test]
fn a_deleted_subnet_is_subnet_not_found_and_connects_once_back() {
    fault_fails_with_until_cleared(
        "subnet-deleted",
        Target::Subnet,
        ConnectionErrorCodeType::SubnetNotFound,
    );
}

#[test]
fn an_exhausted_subnet_is_insufficient_free_addresses_and_connects_once_freed() {
    fault_fails_with_until_cleared(
        "subnet-exhausted",
        Target::Subnet,
        ConnectionErrorCodeType::InsufficientFreeAddressesInSubnet,
    );
}

#[test]
fn a_network_fault_is_network_errors_and_connects_once_mended() {
    fault_fails_with_until_cleared(
        "network-down",
        Target::Cluster,
        ConnectionErrorCodeType::NetworkErrors,
    );
}

#[test]
fn an_internal_fault_is_internal_error_and_connects_once_cleared() {
    fault_fails_with_until_cleared(
        "internal-error",
        Target::Cluster,
        ConnectionErrorCodeType::InternalError,
    );
}

#[test]
fn kmsuser_missing_on_some_hsms_is_user_not_found_and_connects_once_everywhere() {
    fault_fails_with_until_cleared(
        "user-partial-coverage",
        Target::User("kmsuser"),
        ConnectionErrorCodeType::UserNotFound,
    );
}

#[test]
fn a_failed_store_refuses_connect_until_it_is_disconnected() {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, "failed-connect").await;
        fault(&sim, &c.id, "network-down", None, true).await;
        let kms = sim.kms();
        kms.connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        wait_state(&kms, &id, "FAILED").await;
        let r = kms
            .connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreInvalidStateException",
                &format!(
                    "Custom key store {id} is FAILED: disconnect it (DisconnectCustomKeyStore) before connecting again."
                )
            )
        );
        assert_eq!(state_of(&describe(&sim, &id).await), "FAILED");
        release(&sim, &id).await;
    });
}

#[test]
fn disconnecting_a_failed_store_clears_its_connection_error_code() {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, "failed-cleared").await;
        fault(&sim, &c.id, "network-down", None, true).await;
        expect_failure(&sim, &id, ConnectionErrorCodeType::NetworkErrors).await;
        assert!(describe(&sim, &id).await.connection_error_code().is_none());
        release(&sim, &id).await;
    });
}

/// Starts a server of its own: it holds connections, a server-wide setting.
#[test]
fn hsms_lost_during_the_connection_are_insufficient_cloudhsm_hsms_and_connects_once_back() {
    let sim = Sim::start();
    block_on(async {
        let c = sim.control();
        let kms = sim.kms();
        let (id, cl) = own_store(&sim, "hsms-lost").await;
        let (_, hsms) = subnet_and_hsms(&sim, &cl.id).await;
        let hold = |on: bool| {
            c.call(
                "POST",
                "/_sim/settings",
                Some(json!({"hold_connections": on})),
            )
        };
        hold(true).await.unwrap();
        kms.connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        for h in &hsms {
            fault(&sim, &cl.id, "hsm-down", Some(h), true).await;
        }
        hold(false).await.unwrap();
        let e = wait_state(&kms, &id, "FAILED").await;
        assert_eq!(
            e.connection_error_code(),
            Some(&ConnectionErrorCodeType::InsufficientCloudhsmHsms)
        );
        disconnect(&sim, &id).await;
        for h in &hsms {
            fault(&sim, &cl.id, "hsm-down", Some(h), false).await;
        }
        expect_success(&sim, &id).await;
    });
}

#[test]
fn connect_without_an_active_hsm_is_refused_at_once_and_connects_once_one_is_back() {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, "no-active-hsm").await;
        let (_, hsms) = subnet_and_hsms(&sim, &c.id).await;
        for h in &hsms {
            fault(&sim, &c.id, "hsm-down", Some(h), true).await;
        }
        let r = sim
            .kms()
            .connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CloudHsmClusterInvalidConfigurationException",
                &format!(
                    "AWS CloudHSM cluster '{}' has no active HSM: add an HSM before connecting.",
                    c.id
                )
            )
        );
        for h in &hsms {
            fault(&sim, &c.id, "hsm-down", Some(h), false).await;
        }
        expect_success(&sim, &id).await;
        release(&sim, &id).await;
    });
}

fn user_path(cluster: &str, user: &str) -> String {
    format!("/_sim/clusters/{cluster}/users/{user}")
}

/// As the cluster's admin, set kmsuser's password.
async fn admin_resets_kmsuser(sim: &Sim, c: &NewCluster, password: &str) {
    sim.control()
        .call(
            "POST",
            &format!("{}/password", user_path(&c.id, "kmsuser")),
            Some(json!({"new_password": password, "auth_user": "admin", "auth_password": c.admin_password})),
        )
        .await
        .expect("the admin resets kmsuser's password");
}

#[test]
fn kmsuser_logged_in_elsewhere_is_user_logged_in_and_connects_after_logout() {
    let sim = codes_server();
    block_on(async {
        let ctl = sim.control();
        let (id, c) = own_store(&sim, "logged-in").await;
        let kmsuser = user_path(&c.id, "kmsuser");
        ctl.call(
            "POST",
            &format!("{kmsuser}/login"),
            Some(json!({"password": c.kmsuser_password})),
        )
        .await
        .unwrap();
        expect_failure(&sim, &id, ConnectionErrorCodeType::UserLoggedIn).await;
        ctl.call("POST", &format!("{kmsuser}/logout"), None)
            .await
            .unwrap();
        expect_success(&sim, &id).await;
        release(&sim, &id).await;
    });
}

#[test]
fn a_wrong_password_is_invalid_credentials_and_the_right_one_connects() {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, "wrong-password").await;
        set_password(&sim, &id, "WrongPassword1").await;
        expect_failure(&sim, &id, ConnectionErrorCodeType::InvalidCredentials).await;
        set_password(&sim, &id, &c.kmsuser_password).await;
        expect_success(&sim, &id).await;
        release(&sim, &id).await;
    });
}

/// Whether kmsuser is locked, as the cluster's user list shows it.
async fn kmsuser_locked(sim: &Sim, cluster: &str) -> Value {
    let list = sim
        .control()
        .call("GET", &format!("/_sim/clusters/{cluster}/users"), None)
        .await
        .unwrap();
    list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "kmsuser")
        .expect("kmsuser listed")["locked"]
        .clone()
}

/// Six logins of kmsuser with a wrong password (through the control door, which counts them
/// as KMS's connects do): the sixth locks kmsuser.
async fn lock_kmsuser_out(sim: &Sim, cluster: &str) {
    for _ in 0..6 {
        sim.control()
            .call(
                "POST",
                &format!("{}/login", user_path(cluster, "kmsuser")),
                Some(json!({"password": "WrongPassword1"})),
            )
            .await
            .expect_err("a wrong password is refused");
    }
    assert_eq!(kmsuser_locked(sim, cluster).await, true);
}

#[test]
fn the_sixth_wrong_password_in_a_row_locks_kmsuser_out() {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, "locking").await;
        set_password(&sim, &id, "WrongPassword1").await;
        for _ in 0..5 {
            expect_failure(&sim, &id, ConnectionErrorCodeType::InvalidCredentials).await;
        }
        assert_eq!(kmsuser_locked(&sim, &c.id).await, false);
        expect_failure(&sim, &id, ConnectionErrorCodeType::UserLockedOut).await;
        assert_eq!(kmsuser_locked(&sim, &c.id).await, true);
        release(&sim, &id).await;
    });
}

#[test]
fn a_locked_out_kmsuser_stays_locked_out_with_the_right_password() {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, "locked").await;
        lock_kmsuser_out(&sim, &c.id).await;
        set_password(&sim, &id, &c.kmsuser_password).await;
        expect_failure(&sim, &id, ConnectionErrorCodeType::UserLockedOut).await;
        release(&sim, &id).await;
    });
}

#[test]
fn an_admins_password_reset_unlocks_kmsuser_and_the_store_connects() {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, "unlocked").await;
        lock_kmsuser_out(&sim, &c.id).await;
        admin_resets_kmsuser(&sim, &c, "Again12345").await;
        set_password(&sim, &id, "Again12345").await;
        expect_success(&sim, &id).await;
        release(&sim, &id).await;
    });
}

#[test]
fn a_deleted_kmsuser_is_user_not_found() {
    let sim = codes_server();
    block_on(async {
        let (id, c) = own_store(&sim, "kmsuser-deleted").await;
        sim.control()
            .call("DELETE", &user_path(&c.id, "kmsuser"), None)
            .await
            .unwrap();
        expect_failure(&sim, &id, ConnectionErrorCodeType::UserNotFound).await;
        release(&sim, &id).await;
    });
}

#[test]
fn a_recreated_kmsuser_is_invalid_credentials_until_the_store_is_given_its_password() {
    let sim = codes_server();
    block_on(async {
        let ctl = sim.control();
        let (id, c) = own_store(&sim, "kmsuser-recreated").await;
        // A connect makes KMS rotate kmsuser's password: KMS holds one nobody else knows.
        expect_success(&sim, &id).await;
        ctl.call("DELETE", &user_path(&c.id, "kmsuser"), None)
            .await
            .unwrap();
        ctl.call(
            "POST",
            &format!("/_sim/clusters/{}/users", c.id),
            Some(json!({"username": "kmsuser", "role": "crypto-user", "password": "Again12345"})),
        )
        .await
        .unwrap();
        expect_failure(&sim, &id, ConnectionErrorCodeType::InvalidCredentials).await;
        set_password(&sim, &id, "Again12345").await;
        expect_success(&sim, &id).await;
        release(&sim, &id).await;
    });
}

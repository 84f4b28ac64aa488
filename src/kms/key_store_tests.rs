//! Unit tests of the key store rules that read the world (no server, no token): the checks of
//! an asynchronous connection and their order (D11), the cluster rules of CreateCustomKeyStore,
//! UpdateCustomKeyStore and CreateKey, and "connected" for operations that need a connection.

use super::*;
use crate::cluster::model::{Hsm, HsmState, LOCKOUT_THRESHOLD, User, user_key};
use crate::kms::error::KmsErrorKind;
use ConnectionErrorCode as E;
use serde_json::json;

const CLUSTER: &str = "cluster-abcdefghijk";
const STORE: &str = "cks-1234567890abcdef0";
const PASSWORD: &str = "kmsuserPassw0rd";

fn cluster(id: &str) -> Cluster {
    serde_json::from_value(json!({
        "id": id, "state": "ACTIVE", "state_message": null, "hsm_type": "hsm2m.medium",
        "mode": "FIPS", "subnet_mapping": {"us-east-1a": "subnet-a", "us-east-1b": "subnet-b"},
        "security_group": "sg-1", "vpc_id": "vpc-1", "network_type": "IPV4",
        "create_timestamp": 0.0, "source_backup_id": null, "private_key_pem": "", "csr_pem": "",
        "cluster_certificate": null, "trust_anchor": null, "lineage": id, "tags": {},
        "token_user_pin": PASSWORD, "token_so_pin": "so", "has_token": true,
    }))
    .expect("a cluster")
}

fn hsm(cluster_id: &str, n: usize, az: &str, state: HsmState) -> Hsm {
    Hsm {
        id: format!("hsm-{cluster_id}-{n}").into(),
        cluster_id: cluster_id.into(),
        availability_zone: az.into(),
        subnet_id: format!("subnet-{az}"),
        eni_id: format!("eni-{n}"),
        eni_ip: format!("10.0.0.{n}"),
        state,
        state_message: None,
    }
}

fn store(id: &str, cluster_id: &str, state: ConnectionState) -> KeyStore {
    serde_json::from_value(json!({
        "id": id, "name": id, "cluster_id": cluster_id, "trust_anchor": "",
        "password": PASSWORD, "creation_date": 0.0, "state": state, "error_code": null,
    }))
    .expect("a key store")
}

/// An ACTIVE cluster with subnets in two AZs, an active HSM in each, `kmsuser` with
/// `PASSWORD`, and a DISCONNECTED store on it.
fn ready_world() -> World {
    let mut w = World::default();
    w.clusters.insert(CLUSTER.into(), cluster(CLUSTER));
    for (n, az) in ["us-east-1a", "us-east-1b"].into_iter().enumerate() {
        let h = hsm(CLUSTER, n, az, HsmState::Active);
        w.hsms.insert(h.id.clone(), h);
    }
    w.users.insert(
        user_key(CLUSTER, KMSUSER),
        User::new(CLUSTER, KMSUSER, Role::CryptoUser, PASSWORD),
    );
    w.stores.insert(
        STORE.into(),
        store(STORE, CLUSTER, ConnectionState::Disconnected),
    );
    w
}

fn cluster_mut(w: &mut World) -> &mut Cluster {
    w.clusters.get_mut(CLUSTER).expect("the cluster")
}

fn kmsuser_mut(w: &mut World) -> &mut User {
    w.users
        .get_mut(&user_key(CLUSTER, KMSUSER))
        .expect("kmsuser")
}

/// The outcome of the connection checks on `w` for the store, and the changes they made.
fn connect_outcome(w: &World) -> (Result<(), ConnectionErrorCode>, Vec<Change>) {
    let mut changes = Vec::new();
    let r = check_connect(w, &w.stores[STORE], &mut changes);
    (r, changes)
}

fn refusal(r: Result<impl std::fmt::Debug, KmsError>) -> (KmsErrorKind, String) {
    let e = r.expect_err("a refusal");
    (e.kind, e.message)
}

// ---- The connection checks (D11) ----

#[test]
fn a_ready_cluster_passes_the_connection_checks_without_changes() {
    let (r, changes) = connect_outcome(&ready_world());
    assert_eq!(r, Ok(()));
    assert!(changes.is_empty());
}

#[test]
fn a_missing_or_deleted_cluster_is_cluster_not_found() {
    let mut w = ready_world();
    cluster_mut(&mut w).faults.cluster_deleted = true;
    assert_eq!(connect_outcome(&w).0, Err(E::ClusterNotFound));
    w.clusters.clear();
    assert_eq!(connect_outcome(&w).0, Err(E::ClusterNotFound));
}

#[test]
fn an_internal_error_or_failing_token_fault_is_internal_error() {
    for fault in [
        |c: &mut Cluster| c.faults.internal_error = true,
        |c: &mut Cluster| c.faults.token_failing = true,
    ] {
        let mut w = ready_world();
        fault(cluster_mut(&mut w));
        assert_eq!(connect_outcome(&w).0, Err(E::InternalError));
    }
}

#[test]
fn a_deleted_subnet_is_subnet_not_found() {
    let mut w = ready_world();
    cluster_mut(&mut w)
        .faults
        .deleted_subnets
        .push("subnet-b".into());
    assert_eq!(connect_outcome(&w).0, Err(E::SubnetNotFound));
}

#[test]
fn an_exhausted_subnet_is_insufficient_free_addresses() {
    let mut w = ready_world();
    cluster_mut(&mut w)
        .faults
        .exhausted_subnets
        .push("subnet-a".into());
    assert_eq!(
        connect_outcome(&w).0,
        Err(E::InsufficientFreeAddressesInSubnet)
    );
}

#[test]
fn no_active_hsm_is_insufficient_cloudhsm_hsms_and_one_is_enough() {
    let mut w = ready_world();
    let ids: Vec<String> = w.hsms.keys().map(|k| k.to_string()).collect();
    w.hsms.get_mut(&ids[0]).expect("hsm").state = HsmState::Degraded;
    assert_eq!(connect_outcome(&w).0, Ok(()));
    w.hsms.get_mut(&ids[1]).expect("hsm").state = HsmState::Deleted;
    assert_eq!(connect_outcome(&w).0, Err(E::InsufficientCloudhsmHsms));
}

#[test]
fn a_network_fault_is_network_errors() {
    let mut w = ready_world();
    cluster_mut(&mut w).faults.network_down = true;
    assert_eq!(connect_outcome(&w).0, Err(E::NetworkErrors));
}

#[test]
fn kmsuser_missing_not_a_crypto_user_or_on_some_hsms_only_is_user_not_found() {
    let mut w = ready_world();
    kmsuser_mut(&mut w).coverage_full = false;
    assert_eq!(connect_outcome(&w).0, Err(E::UserNotFound));
    let mut w = ready_world();
    kmsuser_mut(&mut w).role = Role::Admin;
    assert_eq!(connect_outcome(&w).0, Err(E::UserNotFound));
    let mut w = ready_world();
    w.users.clear();
    assert_eq!(connect_outcome(&w).0, Err(E::UserNotFound));
}

#[test]
fn a_locked_kmsuser_is_user_locked_out() {
    let mut w = ready_world();
    kmsuser_mut(&mut w).locked = true;
    let (r, changes) = connect_outcome(&w);
    assert_eq!(r, Err(E::UserLockedOut));
    assert!(changes.is_empty(), "no failed login counted");
}

#[test]
fn a_kmsuser_logged_in_elsewhere_is_user_logged_in() {
    let mut w = ready_world();
    kmsuser_mut(&mut w).sessions = 1;
    let (r, changes) = connect_outcome(&w);
    assert_eq!(r, Err(E::UserLoggedIn));
    assert!(changes.is_empty(), "no failed login counted");
}

#[test]
fn a_wrong_password_is_invalid_credentials_and_counts_a_failed_login() {
    let mut w = ready_world();
    w.stores.get_mut(STORE).expect("store").password = "wrongPassw0rd".into();
    let (r, changes) = connect_outcome(&w);
    assert_eq!(r, Err(E::InvalidCredentials));
    let [Change::User(u)] = changes.as_slice() else {
        panic!("one user change expected: {changes:?}");
    };
    assert_eq!(
        (u.name.as_str(), u.failed_logins, u.locked),
        (KMSUSER, 1, false)
    );
}

#[test]
fn the_wrong_password_past_the_threshold_locks_kmsuser_and_is_user_locked_out() {
    let mut w = ready_world();
    w.stores.get_mut(STORE).expect("store").password = "wrongPassw0rd".into();
    kmsuser_mut(&mut w).failed_logins = LOCKOUT_THRESHOLD;
    let (r, changes) = connect_outcome(&w);
    assert_eq!(r, Err(E::UserLockedOut));
    let [Change::User(u)] = changes.as_slice() else {
        panic!("one user change expected: {changes:?}");
    };
    assert!(u.locked);
    assert_eq!(u.failed_logins, LOCKOUT_THRESHOLD + 1);
}

#[test]
fn kmsuser_with_mfa_is_invalid_credentials_even_with_the_right_password() {
    let mut w = ready_world();
    kmsuser_mut(&mut w).mfa = true;
    assert_eq!(connect_outcome(&w).0, Err(E::InvalidCredentials));
}

#[test]
fn a_cluster_without_its_token_is_internal_error() {
    let mut w = ready_world();
    cluster_mut(&mut w).has_token = false;
    assert_eq!(connect_outcome(&w).0, Err(E::InternalError));
}

#[test]
fn the_first_failing_check_in_d11_order_gives_the_code() {
    // Every fault at once: the cluster faults come before the HSMs, the network, kmsuser.
    let mut w = ready_world();
    w.stores.get_mut(STORE).expect("store").password = "wrongPassw0rd".into();
    {
        let c = cluster_mut(&mut w);
        c.faults.network_down = true;
        c.faults.exhausted_subnets.push("subnet-a".into());
        c.faults.deleted_subnets.push("subnet-b".into());
        c.has_token = false;
    }
    let order = [
        (E::SubnetNotFound, "deleted subnet"),
        (E::InsufficientFreeAddressesInSubnet, "exhausted subnet"),
        (E::InsufficientCloudhsmHsms, "HSMs"),
        (E::NetworkErrors, "network"),
        (E::InvalidCredentials, "password"),
        (E::InternalError, "token"),
    ];
    for (code, cure) in order {
        let (r, changes) = connect_outcome(&w);
        assert_eq!(r, Err(code), "before curing the {cure}");
        // Only the password check counts a failed login.
        assert_eq!(changes.len(), usize::from(code == E::InvalidCredentials));
        let c = cluster_mut(&mut w);
        match cure {
            "deleted subnet" => {
                c.faults.deleted_subnets.clear();
                for h in w.hsms.values_mut() {
                    h.state = HsmState::Degraded;
                }
            }
            "exhausted subnet" => c.faults.exhausted_subnets.clear(),
            "HSMs" => {
                for h in w.hsms.values_mut() {
                    h.state = HsmState::Active;
                }
            }
            "network" => c.faults.network_down = false,
            "password" => w.stores.get_mut(STORE).expect("store").password = PASSWORD.into(),
            _ => c.has_token = true,
        }
    }
    assert_eq!(connect_outcome(&w).0, Ok(()));
}

// ---- The cluster a store or a new key needs ----

#[test]
fn a_store_needs_subnets_in_two_azs() {
    let mut w = ready_world();
    cluster_mut(&mut w)
        .faults
        .deleted_subnets
        .push("subnet-b".into());
    assert_eq!(
        refusal(cluster_usable(&w, CLUSTER, true)),
        (
            KmsErrorKind::CloudHsmClusterInvalidConfiguration,
            format!(
                "AWS CloudHSM cluster '{CLUSTER}' must have private subnets in at least two Availability Zones."
            )
        )
    );
}

#[test]
fn a_store_needs_active_hsms_in_two_azs_but_connecting_needs_one() {
    let mut w = ready_world();
    let second = w.hsms.keys().nth(1).cloned().expect("two HSMs");
    w.hsms.get_mut(&second).expect("hsm").availability_zone = "us-east-1a".into();
    assert_eq!(
        refusal(cluster_usable(&w, CLUSTER, true)),
        (
            KmsErrorKind::CloudHsmClusterInvalidConfiguration,
            "CloudHSM cluster must contain active HSMs in at least two Availability Zones"
                .to_string()
        )
    );
    assert!(cluster_usable(&w, CLUSTER, false).is_ok());
    assert!(cluster_usable(&ready_world(), CLUSTER, true).is_ok());
}

#[test]
fn connecting_needs_at_least_one_active_hsm() {
    let mut w = ready_world();
    w.hsms.clear();
    assert_eq!(
        refusal(cluster_usable(&w, CLUSTER, false)),
        (
            KmsErrorKind::CloudHsmClusterInvalidConfiguration,
            format!(
                "AWS CloudHSM cluster '{CLUSTER}' has no active HSM: add an HSM before connecting."
            )
        )
    );
}

#[test]
fn a_missing_or_deleted_cluster_is_not_found_and_an_initialized_one_is_not_active() {
    let mut w = ready_world();
    assert_eq!(
        refusal(cluster_usable(&w, "cluster-zzzzzzzzzzz", true)),
        (
            KmsErrorKind::CloudHsmClusterNotFound,
            "AWS CloudHSM cluster 'cluster-zzzzzzzzzzz' does not exist.".to_string()
        )
    );
    cluster_mut(&mut w).state = ClusterState::Initialized;
    assert_eq!(
        refusal(cluster_usable(&w, CLUSTER, true)),
        (
            KmsErrorKind::CloudHsmClusterNotActive,
            format!(
                "AWS CloudHSM cluster '{CLUSTER}' is INITIALIZED, not ACTIVE: initialize and activate it first."
            )
        )
    );
    cluster_mut(&mut w).faults.cluster_deleted = true;
    assert_eq!(
        refusal(cluster_usable(&w, CLUSTER, true)).0,
        KmsErrorKind::CloudHsmClusterNotFound
    );
}

// ---- CreateCustomKeyStore's cluster rules ----

/// The ready world with its store removed and the cluster initialized with a real CA.
fn world_for_new_store() -> (World, String) {
    let mut w = ready_world();
    w.stores.clear();
    let ca = certs::new_customer_ca("test CA").expect("a CA");
    cluster_mut(&mut w).trust_anchor = Some(ca.cert_pem.clone());
    (w, ca.cert_pem)
}

#[test]
fn a_new_store_needs_the_clusters_own_trust_anchor() {
    let (w, anchor) = world_for_new_store();
    assert!(cluster_for_new_store(&w, CLUSTER, &anchor).is_ok());
    let other = certs::new_customer_ca("other CA").expect("a CA").cert_pem;
    assert_eq!(
        refusal(cluster_for_new_store(&w, CLUSTER, &other)),
        (
            KmsErrorKind::IncorrectTrustAnchor,
            format!(
                "The trust anchor certificate does not match the trust anchor of AWS CloudHSM cluster '{CLUSTER}' (the customerCA.crt used to initialize it)."
            )
        )
    );
}

#[test]
fn a_cluster_with_a_store_or_sharing_its_backup_history_is_in_use() {
    let (mut w, anchor) = world_for_new_store();
    let sibling = "cluster-bcdefghijkl";
    let mut c = cluster(sibling);
    c.lineage = CLUSTER.into();
    w.clusters.insert(sibling.into(), c);
    w.stores.insert(
        STORE.into(),
        store(STORE, sibling, ConnectionState::Disconnected),
    );
    let in_use = (
        KmsErrorKind::CloudHsmClusterInUse,
        format!(
            "AWS CloudHSM cluster '{CLUSTER}' (or a cluster that shares its backup history) is already associated with custom key store {STORE}."
        ),
    );
    assert_eq!(refusal(cluster_for_new_store(&w, CLUSTER, &anchor)), in_use);
    // In use is reported before the cluster's state.
    cluster_mut(&mut w).state = ClusterState::Initialized;
    assert_eq!(refusal(cluster_for_new_store(&w, CLUSTER, &anchor)), in_use);
}

#[test]
fn a_new_store_needs_an_active_cluster_before_its_anchor_is_compared() {
    let (mut w, _) = world_for_new_store();
    cluster_mut(&mut w).state = ClusterState::Initialized;
    assert_eq!(
        refusal(cluster_for_new_store(&w, CLUSTER, "not a certificate")).0,
        KmsErrorKind::CloudHsmClusterNotActive
    );
}

#[test]
fn a_new_store_needs_two_azs_after_the_anchor_check() {
    let (mut w, anchor) = world_for_new_store();
    w.hsms.clear();
    assert_eq!(
        refusal(cluster_for_new_store(&w, CLUSTER, &anchor)).0,
        KmsErrorKind::CloudHsmClusterInvalidConfiguration
    );
    assert_eq!(
        refusal(cluster_for_new_store(&w, CLUSTER, "not a certificate")).0,
        KmsErrorKind::IncorrectTrustAnchor
    );
}

// ---- Operations that need a connected store ----

#[test]
fn only_a_connected_store_serves_and_others_name_their_state() {
    let mut w = ready_world();
    assert_eq!(
        refusal(connected(&w, STORE, "before creating KMS keys in it")),
        (
            KmsErrorKind::CustomKeyStoreInvalidState,
            format!(
                "Custom key store {STORE} is DISCONNECTED: connect it before creating KMS keys in it."
            )
        )
    );
    assert_eq!(
        refusal(connected(&w, "cks-0000000000000000a", "to")),
        (
            KmsErrorKind::CustomKeyStoreNotFound,
            "Custom key store 'cks-0000000000000000a' does not exist.".to_string()
        )
    );
    w.stores.get_mut(STORE).expect("store").state = ConnectionState::Connected;
    assert_eq!(connected(&w, STORE, "to").expect("connected").id, STORE);
}

//! The cluster's user rules through the control door, one behaviour per test, on one server
//! for the file: a cluster keeps at least one admin.

use crate::common::*;
use serde_json::json;
use std::sync::{Arc, Mutex, Weak};

static SHARED: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

/// The file's server: the running one, or a new one if none is running.
fn sim() -> Arc<Sim> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = shared.upgrade() {
        return s;
    }
    let s = Arc::new(Sim::start());
    *shared = Arc::downgrade(&s);
    s
}

/// A new cluster (made the customer's way) whose only admin is `admin`.
async fn cluster(sim: &Sim) -> String {
    crate::key_stores::new_cluster(sim, 2).await.id
}

async fn user_names(sim: &Sim, cluster: &str) -> Vec<String> {
    let v = sim
        .control()
        .call("GET", &format!("/_sim/clusters/{cluster}/users"), None)
        .await
        .expect("users");
    v["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn the_only_admin_of_a_cluster_cannot_be_deleted() {
    let sim = sim();
    block_on(async {
        let c = cluster(&sim).await;
        let e = sim
            .control()
            .call("DELETE", &format!("/_sim/clusters/{c}/users/admin"), None)
            .await
            .expect_err("the only admin");
        assert_eq!(
            e.to_string(),
            format!(
                "CloudHsmInvalidRequestException: The user admin is the only admin of cluster {c} and cannot be deleted"
            )
        );
        assert!(user_names(&sim, &c).await.contains(&"admin".to_string()));
    });
}

#[test]
fn an_admin_can_be_deleted_while_another_admin_remains() {
    let sim = sim();
    block_on(async {
        let c = cluster(&sim).await;
        sim.control()
            .call(
                "POST",
                &format!("/_sim/clusters/{c}/users"),
                Some(json!({"username": "admin2", "role": "admin", "password": "Admin2Passw0rd"})),
            )
            .await
            .expect("a second admin");
        sim.control()
            .call("DELETE", &format!("/_sim/clusters/{c}/users/admin2"), None)
            .await
            .expect("deleting one of two admins");
        assert_eq!(user_names(&sim, &c).await, ["admin", "kmsuser"]);
    });
}

async fn failed_logins(sim: &Sim, cluster: &str, name: &str) -> u64 {
    let v = sim
        .control()
        .call("GET", &format!("/_sim/clusters/{cluster}/users"), None)
        .await
        .expect("users");
    v["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["username"] == name)
        .expect("the user")["failed_logins"]
        .as_u64()
        .expect("failed_logins")
}

async fn create_crypto_user(sim: &Sim, cluster: &str, name: &str, password: &str) {
    sim.control()
        .call(
            "POST",
            &format!("/_sim/clusters/{cluster}/users"),
            Some(json!({"username": name, "role": "crypto-user", "password": password})),
        )
        .await
        .expect("a crypto user");
}

/// `auth_user` (with `auth_password`) sets `target`'s password; the error's text if refused.
async fn change_password(
    sim: &Sim,
    cluster: &str,
    target: &str,
    auth_user: &str,
    auth_password: &str,
) -> Result<(), String> {
    sim.control()
        .call(
            "POST",
            &format!("/_sim/clusters/{cluster}/users/{target}/password"),
            Some(json!({"new_password": "NewPassw0rd1", "auth_user": auth_user, "auth_password": auth_password})),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn a_crypto_user_refused_another_users_password_change_with_its_right_password_has_its_failures_cleared()
 {
    let sim = sim();
    block_on(async {
        let c = cluster(&sim).await;
        create_crypto_user(&sim, &c, "cu1", "Cu1Passw0rd").await;
        create_crypto_user(&sim, &c, "cu2", "Cu2Passw0rd").await;
        let wrong = change_password(&sim, &c, "cu2", "cu1", "WrongPassw0rd").await;
        assert_eq!(
            wrong,
            Err("CloudHsmAccessDeniedException: Wrong password for user cu1".to_string())
        );
        assert_eq!(failed_logins(&sim, &c, "cu1").await, 1);
        let denied = change_password(&sim, &c, "cu2", "cu1", "Cu1Passw0rd").await;
        assert_eq!(
            denied,
            Err(
                "CloudHsmAccessDeniedException: The user cu1 is not an admin and cannot change the password of cu2"
                    .to_string()
            )
        );
        assert_eq!(failed_logins(&sim, &c, "cu1").await, 0);
    });
}

#[test]
fn an_admins_reset_of_another_users_password_clears_the_admins_failures() {
    let sim = sim();
    block_on(async {
        let c = crate::key_stores::new_cluster(&sim, 2).await;
        create_crypto_user(&sim, &c.id, "cu1", "Cu1Passw0rd").await;
        assert!(
            change_password(&sim, &c.id, "cu1", "admin", "WrongPassw0rd")
                .await
                .is_err()
        );
        assert_eq!(failed_logins(&sim, &c.id, "admin").await, 1);
        change_password(&sim, &c.id, "cu1", "admin", &c.admin_password)
            .await
            .expect("an admin's reset");
        assert_eq!(failed_logins(&sim, &c.id, "admin").await, 0);
    });
}

/// A new cluster with a CONNECTED key store on it; returns the cluster.
async fn cluster_with_connected_store(sim: &Sim, name: &str) -> crate::key_stores::NewCluster {
    let c = crate::key_stores::new_cluster(sim, 2).await;
    let store = create_store_with(sim, name, &c.id, &c.anchor, &c.kmsuser_password).await;
    sim.kms()
        .connect_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await
        .expect("connect");
    wait_state(&sim.kms(), &store, "CONNECTED").await;
    c
}

async fn login(sim: &Sim, cluster: &str, name: &str, password: &str) -> Result<(), String> {
    sim.control()
        .call(
            "POST",
            &format!("/_sim/clusters/{cluster}/users/{name}/login"),
            Some(json!({"password": password})),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn kmsuser_cannot_log_in_while_a_key_store_of_its_cluster_is_connected() {
    let sim = sim();
    block_on(async {
        let c = cluster_with_connected_store(&sim, "users-held").await;
        // The connect rotated kmsuser's password; the refusal comes before any password check.
        assert_eq!(
            login(&sim, &c.id, "kmsuser", "AnyPassw0rd").await,
            Err("CloudHsmAccessDeniedException: kmsuser is logged in by AWS KMS".to_string())
        );
    });
}

#[test]
fn kmsuser_logs_in_while_only_another_clusters_key_store_is_connected() {
    let sim = sim();
    block_on(async {
        cluster_with_connected_store(&sim, "users-elsewhere").await;
        let c = crate::key_stores::new_cluster(&sim, 2).await;
        login(&sim, &c.id, "kmsuser", &c.kmsuser_password)
            .await
            .expect("kmsuser of a cluster without a connected store");
    });
}

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

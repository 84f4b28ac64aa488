//! A cluster bound to a token made outside cks-sim with `rotate_password = false`: kmsuser's
//! password must be a PIN the token already accepts, and the simulator never changes it.

use crate::common::*;
use serde_json::json;

const CLUSTER: &str = "cluster-owntokencluster";
const TOKEN_PIN: &str = "TokenPin12345";
const ADMIN: &str = "AdminPswd0A";

/// A server whose one cluster is bound to a fresh token (PIN `TOKEN_PIN`), not rotated.
fn bound_sim() -> (Sim, String) {
    let label = fresh_token("own", TOKEN_PIN);
    let internal_pin = "internal-pin-2468";
    let internal = fresh_token("own-internal", internal_pin);
    let toml = format!(
        "[hsm]\nmodule = {:?}\nprovisioner = \"none\"\ninternal_token_label = {internal:?}\n\
         internal_token_pin = {internal_pin:?}\n\n[simulation]\ndefault_seed = false\n\n\
         [[cluster]]\nid = {CLUSTER:?}\nadmin_password = {ADMIN:?}\n[cluster.token]\n\
         label = {label:?}\nrotate_password = false\n[[cluster.user]]\nname = \"kmsuser\"\n\
         password = {TOKEN_PIN:?}\n",
        module_path().display().to_string()
    );
    (Sim::start_with_config(&toml), label)
}

async fn set_kmsuser_password(sim: &Sim, new: &str) -> Result<serde_json::Value, String> {
    sim.control()
        .call(
            "POST",
            &format!("/_sim/clusters/{CLUSTER}/users/kmsuser/password"),
            Some(json!({"new_password": new, "auth_user": "admin", "auth_password": ADMIN})),
        )
        .await
        .map_err(|e| e.to_string())
}

#[test]
fn with_rotation_off_a_kmsuser_password_the_token_refuses_is_refused() {
    let (sim, label) = bound_sim();
    block_on(async {
        let e = set_kmsuser_password(&sim, "Another12345")
            .await
            .expect_err("a password that is not the token's PIN");
        let expected = format!(
            "CloudHsmInvalidRequestException: The token {label:?} of cluster {CLUSTER} refuses \
             kmsuser's password as its user PIN ("
        );
        assert!(e.starts_with(&expected), "{e}");
        // Nothing changed: the token's PIN is still kmsuser's password.
        assert_eq!(token_pin(&sim, CLUSTER).await, TOKEN_PIN);
    });
}

#[test]
fn with_rotation_off_kmsuser_takes_the_pin_the_token_already_accepts() {
    let (sim, _) = bound_sim();
    block_on(async {
        set_kmsuser_password(&sim, TOKEN_PIN)
            .await
            .expect("the token's own PIN");
        assert_eq!(token_pin(&sim, CLUSTER).await, TOKEN_PIN);
    });
}

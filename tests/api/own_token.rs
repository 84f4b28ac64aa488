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

/// `cks-sim serve` with `toml` as its configuration, in a fresh data directory, to its end.
fn serve_to_the_end(toml: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, toml).expect("write config.toml");
    std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run serve")
}

/// A token whose PIN cks-sim changes cannot also be the internal token: the first rotation
/// would leave the internal token's PIN wrong, and the next start-up would fail.
#[test]
fn a_cluster_rotating_the_internal_tokens_pin_is_refused_at_start_up() {
    let label = fresh_token("shared", TOKEN_PIN);
    let toml = format!(
        "[hsm]\nmodule = {:?}\nprovisioner = \"none\"\ninternal_token_label = {label:?}\n\
         internal_token_pin = {TOKEN_PIN:?}\ninternal_token_user = \"kmsuser\"\n\n\
         [simulation]\ndefault_seed = false\n\n[[cluster]]\nid = {CLUSTER:?}\n\
         [cluster.token]\nlabel = {label:?}\nrotate_password = true\n",
        module_path().display().to_string()
    );
    let out = serve_to_the_end(&toml);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "seed cluster #1 ({CLUSTER}): the token {label:?} is also the internal token ([hsm] \
         internal_token_label), and a token whose PIN cks-sim changes cannot be shared: set \
         rotate_password = false on every cluster bound to it"
    );
    assert!(err.contains(&expected), "{err}");
}

/// Two clusters may share a token only if neither rotates its PIN.
#[test]
fn two_clusters_sharing_a_token_one_rotating_its_pin_are_refused_at_start_up() {
    let label = fresh_token("shared2", TOKEN_PIN);
    let second = "cluster-owntokenclustr2";
    let internal_pin = "internal-pin-2468";
    let internal = fresh_token("shared2-internal", internal_pin);
    let toml = format!(
        "[hsm]\nmodule = {:?}\nprovisioner = \"none\"\ninternal_token_label = {internal:?}\n\
         internal_token_pin = {internal_pin:?}\n\n[simulation]\ndefault_seed = false\n\n\
         [[cluster]]\nid = {CLUSTER:?}\n[cluster.token]\nlabel = {label:?}\n\n\
         [[cluster]]\nid = {second:?}\n[cluster.token]\nlabel = {label:?}\nrotate_password = true\n",
        module_path().display().to_string()
    );
    let out = serve_to_the_end(&toml);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "seed cluster #2 ({second}): the token {label:?} is also cluster {CLUSTER}, and a token \
         whose PIN cks-sim changes cannot be shared"
    );
    assert!(err.contains(&expected), "{err}");
}

/// On a token whose PIN cks-sim does not change, deleting `kmsuser` still ends KMS's session:
/// a key deletion that falls due after it leaves the material as an orphan.
#[test]
fn with_rotation_off_a_deletion_after_kmsuser_was_deleted_leaves_an_orphan() {
    let (sim, _) = bound_sim();
    block_on(async {
        let anchor = std::fs::read_to_string(
            sim.data_dir()
                .join("clusters")
                .join(CLUSTER)
                .join("customerCA.crt"),
        )
        .expect("the cluster's trust anchor");
        let store = create_store_with(&sim, "bound", CLUSTER, &anchor, TOKEN_PIN).await;
        ask_connect(&sim, &store).await;
        wait_state(&sim.kms(), &store, "CONNECTED").await;
        let orphans = crate::keys::orphans_after_kmsuser_is_deleted(&sim, CLUSTER, &store).await;
        assert_eq!(orphans.len(), 1, "{orphans:?}");
    });
}

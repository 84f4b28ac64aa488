//! `cks-sim cloudhsm-cli` (and the binary run as `cloudhsm-cli`): the AWS guides' CloudHSM CLI
//! procedures against a real server and token, in single command mode (CLOUDHSM_ROLE /
//! CLOUDHSM_PIN) and interactive mode driven through standard input. Every output must parse
//! as the documented `{"error_code", "data"}` JSON.
//!
//! The scenario tests first (a server each), then tests of one behaviour each on one shared
//! server: crypto users and their keys, and kmsuser locked out; each refusal is checked for
//! its exact message.

use crate::common::{
    Sim, block_on, cloudhsm_key, code, connected_store, create_store_with, default_cluster,
    disconnect, wait_state,
};
use crate::key_stores::{NewCluster, new_cluster};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};

/// What one CLI process printed and how it ended.
struct Run {
    ok: bool,
    stdout: String,
}

fn run_cli(program: &Path, sim: &Sim, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
    let mut cmd = Command::new(program);
    if program.file_name().is_some_and(|n| n == "cks-sim") {
        cmd.arg("cloudhsm-cli");
    }
    let mut child = cmd
        .args(args)
        .env("CKS_SIM_ENDPOINT", &sim.endpoint)
        .env_remove("CLOUDHSM_ROLE")
        .env_remove("CLOUDHSM_PIN")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the CLI");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("CLI output");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn cks_sim() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cks-sim"))
}

/// Every JSON document a CLI run printed, prompts removed. Panics on anything else.
fn documents(stdout: &str) -> Vec<Value> {
    let text: String = stdout
        .replace("aws-cloudhsm > ", "")
        .lines()
        .filter(|l| *l != "Enter password:" && *l != "Confirm password:")
        .collect::<Vec<_>>()
        .join("\n");
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("output is not a series of JSON documents ({e}):\n{stdout}"));
    for d in &docs {
        assert!(
            d["error_code"].is_u64() && d.get("data").is_some(),
            "not the CLI's envelope: {d}"
        );
    }
    docs
}

/// One command in single command mode, as `role` with `CLOUDHSM_PIN=user:password`.
fn single(sim: &Sim, role: &str, pin: &str, args: &[&str], stdin: &str) -> (bool, Value) {
    let r = run_cli(
        cks_sim(),
        sim,
        args,
        &[("CLOUDHSM_ROLE", role), ("CLOUDHSM_PIN", pin)],
        stdin,
    );
    let mut docs = documents(&r.stdout);
    assert_eq!(docs.len(), 1, "one document: {}", r.stdout);
    (r.ok, docs.remove(0))
}

/// An interactive session on `cluster` fed `input`; the documents it printed.
fn interactive(sim: &Sim, cluster: &str, input: &str) -> Vec<Value> {
    let r = run_cli(
        cks_sim(),
        sim,
        &["interactive", "--cluster-id", cluster],
        &[],
        input,
    );
    assert!(r.ok, "interactive mode ends well: {}", r.stdout);
    assert!(r.stdout.starts_with("aws-cloudhsm > "), "{}", r.stdout);
    documents(&r.stdout)
}

fn ok(doc: &Value) -> &Value {
    assert_eq!(doc["error_code"], 0, "{doc}");
    &doc["data"]
}

fn error(doc: &Value) -> String {
    assert_eq!(doc["error_code"], 1, "{doc}");
    doc["data"].as_str().expect("an error message").to_string()
}

/// As the admin, reset kmsuser's password (typed at the prompts, not on the command line).
fn reset_kmsuser(sim: &Sim, cluster: &str, new_password: &str) {
    let docs = interactive(
        sim,
        cluster,
        &format!(
            "login --username admin --role admin\n{}\nuser change-password --username kmsuser --role crypto-user\n{new_password}\n{new_password}\nlogout\n",
            sim.admin_password()
        ),
    );
    assert_eq!(ok(&docs[0]), &json!({"username": "admin", "role": "admin"}));
    assert_eq!(
        ok(&docs[1]),
        &json!({"username": "kmsuser", "role": "crypto-user"})
    );
    assert_eq!(ok(&docs[2]), &json!("Logout successful"));
}

fn key_arn(sim: &Sim, key_id: &str) -> String {
    block_on(async {
        sim.kms()
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .arn()
            .unwrap()
            .to_string()
    })
}

/// A store with one KMS key, disconnected: (store, cluster, key ID, key ARN).
fn store_with_key_disconnected(sim: &Sim) -> (String, String, String, String) {
    let (store, cluster, key) = block_on(async {
        let (store, cluster) = connected_store(sim, "cli").await;
        let key = cloudhsm_key(sim, &store).await;
        disconnect(sim, &store).await;
        (store, cluster, key)
    });
    let arn = key_arn(sim, &key);
    (store, cluster, key, arn)
}

#[test]
fn cli_user_list_shows_every_user_with_the_documented_fields() {
    let sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let r = run_cli(
        cks_sim(),
        &sim,
        &["user", "list", "--cluster-id", &cluster],
        &[],
        "",
    );
    assert!(r.ok, "{}", r.stdout);
    let docs = documents(&r.stdout);
    let users = ok(&docs[0])["users"].as_array().unwrap().clone();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "kmsuser"]);
    assert_eq!(
        users[1],
        json!({"username": "kmsuser", "role": "crypto-user", "locked": "false", "mfa": [], "cluster-coverage": "full"})
    );
    // Printed in the guide's member order.
    assert!(
        r.stdout
            .starts_with("{\n  \"error_code\": 0,\n  \"data\": {"),
        "{}",
        r.stdout
    );
}

#[test]
fn cli_runs_the_same_when_invoked_through_a_link_named_cloudhsm_cli() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("cloudhsm-cli");
    std::os::unix::fs::symlink(cks_sim(), &link).unwrap();
    let r = run_cli(&link, &sim, &["user", "list"], &[], "");
    assert!(r.ok, "{}", r.stdout);
    let docs = documents(&r.stdout);
    assert_eq!(ok(&docs[0])["users"].as_array().unwrap().len(), 2);
}

#[test]
fn cli_finds_a_kms_keys_material_by_its_arn() {
    let sim = Sim::start();
    let (_store, cluster, key, arn) = store_with_key_disconnected(&sim);
    reset_kmsuser(&sim, &cluster, "Kmsuser1234");
    let docs = interactive(
        &sim,
        &cluster,
        &format!(
            "login --username kmsuser --role crypto-user\nKmsuser1234\nkey list --filter attr.label={arn} --verbose\nkey list\nlogout\n"
        ),
    );
    ok(&docs[0]);
    let found = ok(&docs[1]);
    assert_eq!(found["total_key_count"], 1, "{found}");
    let k = &found["matched_keys"][0];
    assert_eq!(k["attributes"]["label"], arn.as_str());
    assert_eq!(k["attributes"]["class"], "secret-key");
    assert_eq!(k["attributes"]["key-type"], "aes");
    assert_eq!(k["attributes"]["key-length-bytes"], 32);
    assert_eq!(k["attributes"]["extractable"], false);
    assert_eq!(
        k["key-info"]["key-owners"],
        json!([{"username": "kmsuser", "key-coverage": "full"}])
    );
    // The reference is the key ID's first eight bytes.
    let hex: String = key.replace('-', "")[..16].to_string();
    assert_eq!(k["key-reference"], format!("0x{hex}"));
    // Without --verbose: the reference and the label only.
    let plain = &ok(&docs[2])["matched_keys"][0];
    assert_eq!(
        plain,
        &json!({"key-reference": format!("0x{hex}"), "attributes": {"label": arn}})
    );
}

#[test]
fn cli_deleting_an_orphans_material_clears_its_orphan_record() {
    let sim = Sim::start();
    let (_store, cluster, key, arn) = store_with_key_disconnected(&sim);
    block_on(async {
        sim.kms()
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 8})))
            .await
            .unwrap();
    });
    let orphans = |sim: &Sim| block_on(sim.control().call("GET", "/_sim/orphans", None)).unwrap();
    assert_eq!(orphans(&sim)["orphans"][0]["key_arn"], arn.as_str());
    reset_kmsuser(&sim, &cluster, "Kmsuser1234");
    let docs = interactive(
        &sim,
        &cluster,
        &format!(
            "login --username kmsuser --role crypto-user\nKmsuser1234\nkey delete --filter attr.label={arn}\nkey list --filter attr.label={arn}\n"
        ),
    );
    assert_eq!(
        ok(&docs[1]),
        &json!({"message": "Key deleted successfully"})
    );
    assert_eq!(ok(&docs[2])["total_key_count"], 0);
    assert_eq!(orphans(&sim)["orphans"], json!([]));
}

#[test]
fn cli_deleting_a_live_keys_material_makes_the_key_fail_on_use() {
    let sim = Sim::start();
    let (store, cluster, key, arn) = store_with_key_disconnected(&sim);
    reset_kmsuser(&sim, &cluster, "Kmsuser1234");
    let docs = interactive(
        &sim,
        &cluster,
        &format!(
            "login --username kmsuser --role crypto-user\nKmsuser1234\nkey delete --filter attr.label={arn}\n"
        ),
    );
    assert_eq!(
        ok(&docs[1]),
        &json!({"message": "Key deleted successfully"})
    );
    block_on(async {
        let kms = sim.kms();
        kms.update_custom_key_store()
            .custom_key_store_id(&store)
            .key_store_password("Kmsuser1234")
            .send()
            .await
            .unwrap();
        kms.connect_custom_key_store()
            .custom_key_store_id(&store)
            .send()
            .await
            .unwrap();
        wait_state(&kms, &store, "CONNECTED").await;
        let meta = kms.describe_key().key_id(&key).send().await.unwrap();
        assert_eq!(
            meta.key_metadata().unwrap().key_state().unwrap().as_str(),
            "Enabled"
        );
        let r = kms
            .encrypt()
            .key_id(&key)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
            .send()
            .await;
        assert_eq!(code(r), "KMSInvalidStateException");
    });
}

#[test]
fn cli_refuses_a_wrong_role_and_a_wrong_password() {
    let sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let admin = sim.admin_password();
    let docs = interactive(
        &sim,
        &cluster,
        &format!(
            "login --username admin --role crypto-user\n{admin}\nlogin --username admin --role admin\nnot-the-password\nkey list\nlogin --username admin --role admin\n{admin}\n"
        ),
    );
    assert!(
        error(&docs[0]).contains("does not have the role crypto-user"),
        "{}",
        docs[0]
    );
    assert!(
        error(&docs[1]).contains("Wrong password for user admin"),
        "{}",
        docs[1]
    );
    assert!(error(&docs[2]).contains("must be logged in"), "{}", docs[2]);
    assert_eq!(ok(&docs[3]), &json!({"username": "admin", "role": "admin"}));
    // A wrong CLOUDHSM_PIN in single command mode: the command fails with exit status 1.
    let (exit_ok, doc) = single(
        &sim,
        "admin",
        "admin:wrongpass1",
        &[
            "user",
            "create",
            "--username",
            "x1",
            "--role",
            "admin",
            "--password",
            "abcdefg1",
            "--cluster-id",
            &cluster,
        ],
        "",
    );
    assert!(!exit_ok);
    assert!(error(&doc).contains("Wrong password"), "{doc}");
}

#[test]
fn cli_interactive_login_lasts_until_logout() {
    let sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let admin = sim.admin_password();
    let docs = interactive(
        &sim,
        &cluster,
        &format!(
            "login --username admin --role admin\n{admin}\nuser create --username carol --role crypto-user\nCarolPass1\nCarolPass1\nlogout\nuser delete --username carol --role crypto-user\n"
        ),
    );
    assert_eq!(
        ok(&docs[1]),
        &json!({"username": "carol", "role": "crypto-user"})
    );
    assert_eq!(ok(&docs[2]), &json!("Logout successful"));
    assert!(error(&docs[3]).contains("must be logged in"));
    // The session ended: admin is no longer logged in.
    let users = block_on(sim.control().call(
        "GET",
        &format!("/_sim/clusters/{cluster}/users"),
        None,
    ))
    .unwrap();
    let a = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "admin")
        .unwrap()
        .clone();
    assert_eq!(a["logged_in"], false);
}

/// A new cluster taken to INITIALIZED through the cloudhsmv2 API.
fn initialized_cluster(sim: &Sim) -> String {
    block_on(async {
        let c = sim.control();
        let created = c
            .aws(
                "BaldrApiService.CreateCluster",
                json!({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-0123456789abcdef0"]}),
            )
            .await
            .unwrap();
        let id = created["Cluster"]["ClusterId"]
            .as_str()
            .unwrap()
            .to_string();
        let csr = created["Cluster"]["Certificates"]["ClusterCsr"]
            .as_str()
            .unwrap();
        let ca = cks_sim::cluster::certs::new_customer_ca("test CA").unwrap();
        let signed = cks_sim::cluster::certs::sign_csr(&ca, csr).unwrap();
        c.aws(
            "BaldrApiService.InitializeCluster",
            json!({"ClusterId": id, "SignedCert": signed, "TrustAnchor": ca.cert_pem}),
        )
        .await
        .unwrap();
        id
    })
}

#[test]
fn cli_cluster_activate_sets_the_first_admin_password_of_an_initialized_cluster() {
    let sim = Sim::start();
    let id = initialized_cluster(&sim);
    let docs = interactive(
        &sim,
        &id,
        "cluster activate\nFirstAdmin1\nFirstAdmin1\nlogin --username admin --role admin\nFirstAdmin1\ncluster activate --password Another123\n",
    );
    assert_eq!(ok(&docs[0]), &json!("Cluster activation successful"));
    assert_eq!(ok(&docs[1]), &json!({"username": "admin", "role": "admin"}));
    assert!(
        error(&docs[2]).contains("only an INITIALIZED cluster can be activated"),
        "{}",
        docs[2]
    );
}

#[test]
fn cli_control_routes_refuse_unknown_fields_and_never_echo_passwords() {
    let sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let c = sim.control();
    let path = format!("/_sim/clusters/{cluster}/cli/keys/list");
    let body = json!({"auth_user": "kmsuser", "auth_password": "Secret-Pw-123", "bogus": 1});
    match block_on(c.call("POST", &path, Some(body))) {
        Err(cks_sim::client::ClientError::Api {
            status, message, ..
        }) => {
            assert_eq!(status, 400);
            assert!(message.contains("bogus"), "{message}");
            assert!(!message.contains("Secret-Pw-123"), "{message}");
        }
        other => panic!("accepted: {other:?}"),
    }
    let body = json!({"auth_user": "kmsuser", "auth_password": "Secret-Pw-123"});
    match block_on(c.call("POST", &path, Some(body))) {
        Err(cks_sim::client::ClientError::Api {
            status,
            type_name,
            message,
        }) => {
            assert_eq!(
                (status, type_name.as_str()),
                (400, "CloudHsmAccessDeniedException"),
                "{message}"
            );
            assert!(!message.contains("Secret-Pw-123"), "{message}");
        }
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn cli_key_owners_and_shares_survive_a_restart() {
    let mut sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let admin = format!("admin:{}", sim.admin_password());
    for u in ["dave", "erin"] {
        let (ok_exit, doc) = single(
            &sim,
            "admin",
            &admin,
            &[
                "user",
                "create",
                "--username",
                u,
                "--role",
                "crypto-user",
                "--password",
                "Passw0rd12",
                "--cluster-id",
                &cluster,
            ],
            "",
        );
        assert!(ok_exit, "{doc}");
    }
    let (_, k) = single(
        &sim,
        "crypto-user",
        "dave:Passw0rd12",
        &[
            "key",
            "generate-symmetric",
            "aes",
            "--label",
            "kept",
            "--key-length-bytes",
            "16",
            "--share-crypto-users",
            "erin",
            "--cluster-id",
            &cluster,
        ],
        "",
    );
    let reference = ok(&k)["key"]["key-reference"].as_str().unwrap().to_string();
    sim.restart();
    let filter = format!("key-reference={reference}");
    let (_, seen) = single(
        &sim,
        "crypto-user",
        "erin:Passw0rd12",
        &[
            "key",
            "list",
            "--filter",
            &filter,
            "--verbose",
            "--cluster-id",
            &cluster,
        ],
        "",
    );
    let info = &ok(&seen)["matched_keys"][0]["key-info"];
    assert_eq!(info["key-owners"][0]["username"], "dave", "{seen}");
    assert_eq!(info["shared-users"][0]["username"], "erin", "{seen}");
}

#[test]
fn cli_without_cluster_id_uses_the_only_or_else_the_default_cluster() {
    let sim = Sim::start();
    let default = block_on(default_cluster(&sim));
    let other = initialized_cluster(&sim);
    assert_ne!(other, default);
    let r = run_cli(cks_sim(), &sim, &["user", "list"], &[], "");
    let docs = documents(&r.stdout);
    let names: Vec<String> = ok(&docs[0])["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["admin", "kmsuser"], "the default cluster's users");
    let r = run_cli(
        cks_sim(),
        &sim,
        &["user", "list", "--cluster-id", &other],
        &[],
        "",
    );
    assert_eq!(ok(&documents(&r.stdout)[0])["users"], json!([]));
}

#[test]
fn cli_a_user_changing_its_own_password_stays_logged_in_with_the_new_one() {
    let sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let admin = sim.admin_password();
    let docs = interactive(
        &sim,
        &cluster,
        &format!(
            "login --username admin --role admin\n{admin}\nuser change-password --username admin --role admin\nNewAdmin123\nNewAdmin123\nuser create --username frank --role crypto-user --password Passw0rd12\nlogout\nlogin --username admin --role admin\nNewAdmin123\n"
        ),
    );
    ok(&docs[1]);
    assert_eq!(
        ok(&docs[2]),
        &json!({"username": "frank", "role": "crypto-user"})
    );
    ok(&docs[3]);
    ok(&docs[4]);
}

#[test]
fn cli_key_list_pages_with_max_items_and_starting_token() {
    let sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let admin = format!("admin:{}", sim.admin_password());
    let (ok_exit, doc) = single(
        &sim,
        "admin",
        &admin,
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--role",
            "crypto-user",
            "--password",
            "Passw0rd12",
            "--cluster-id",
            &cluster,
        ],
        "",
    );
    assert!(ok_exit, "{doc}");
    let alice = |args: &[&str]| {
        single(
            &sim,
            "crypto-user",
            "alice:Passw0rd12",
            &[args, &["--cluster-id", &cluster]].concat(),
            "",
        )
        .1
    };
    for label in ["a1", "a2", "a3"] {
        ok(&alice(&[
            "key",
            "generate-symmetric",
            "aes",
            "--label",
            label,
            "--key-length-bytes",
            "32",
        ]));
    }
    // Paging: two, then the rest from next_token.
    let page = alice(&["key", "list", "--max-items", "2"]);
    assert_eq!(ok(&page)["returned_key_count"], 2);
    assert_eq!(ok(&page)["total_key_count"], 3);
    let token = ok(&page)["next_token"].as_str().unwrap().to_string();
    let rest = alice(&[
        "key",
        "list",
        "--max-items",
        "2",
        "--starting-token",
        &token,
    ]);
    assert_eq!(ok(&rest)["returned_key_count"], 1);
    assert!(ok(&rest).get("next_token").is_none());
    let labels: Vec<Value> = [&page, &rest]
        .iter()
        .flat_map(|d| ok(d)["matched_keys"].as_array().unwrap().clone())
        .map(|k| k["attributes"]["label"].clone())
        .collect();
    let mut sorted: Vec<String> = labels
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    sorted.sort();
    assert_eq!(
        sorted,
        ["a1", "a2", "a3"],
        "every key once across the pages"
    );
}

// ---- One behaviour per test, on one shared server ----
//
// The tests below share one server (kept while any of them runs). Those about crypto users
// and their keys work on the default cluster with users of their own; a test that counts every
// key of a cluster, or locks kmsuser out, makes a cluster of its own.

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

/// The password of every crypto user these tests make.
const CU_PASSWORD: &str = "Passw0rd12";

/// A crypto user `name` on `cluster`, made through the control door.
fn crypto_user(sim: &Sim, cluster: &str, name: &str) {
    block_on(sim.control().call(
        "POST",
        &format!("/_sim/clusters/{cluster}/users"),
        Some(json!({"username": name, "role": "crypto-user", "password": CU_PASSWORD})),
    ))
    .expect("create a crypto user");
}

/// One command run as the crypto user `user` on `cluster`: the document it printed.
fn as_user(sim: &Sim, cluster: &str, user: &str, args: &[&str]) -> Value {
    single(
        sim,
        "crypto-user",
        &format!("{user}:{CU_PASSWORD}"),
        &[args, &["--cluster-id", cluster]].concat(),
        "",
    )
    .1
}

/// One command run as the admin (password `admin_password`) on `cluster`.
fn as_admin(sim: &Sim, cluster: &str, admin_password: &str, args: &[&str]) -> Value {
    single(
        sim,
        "admin",
        &format!("admin:{admin_password}"),
        &[args, &["--cluster-id", cluster]].concat(),
        "",
    )
    .1
}

/// `user` generates a 24-byte AES key labelled `label`: the command's document.
fn generate(sim: &Sim, cluster: &str, user: &str, label: &str) -> Value {
    as_user(
        sim,
        cluster,
        user,
        &[
            "key",
            "generate-symmetric",
            "aes",
            "--label",
            label,
            "--key-length-bytes",
            "24",
        ],
    )
}

/// `owner` shares (`share`) or unshares (`unshare`) its key `label` with the crypto user `with`.
fn share(sim: &Sim, cluster: &str, owner: &str, verb: &str, label: &str, with: &str) -> Value {
    as_user(
        sim,
        cluster,
        owner,
        &[
            "key",
            verb,
            "--filter",
            &format!("attr.label={label}"),
            "--username",
            with,
            "--role",
            "crypto-user",
        ],
    )
}

fn key_count(doc: &Value) -> &Value {
    &ok(doc)["total_key_count"]
}

#[test]
fn cli_an_admin_creates_a_crypto_user_with_the_password_typed_at_the_prompts() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    let (exit_ok, doc) = single(
        &sim,
        "admin",
        &format!("admin:{}", sim.admin_password()),
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--role",
            "crypto-user",
            "--cluster-id",
            &cluster,
        ],
        &format!("{CU_PASSWORD}\n{CU_PASSWORD}\n"),
    );
    assert!(exit_ok, "{doc}");
    assert_eq!(
        ok(&doc),
        &json!({"username": "alice", "role": "crypto-user"})
    );
    // The password typed at the prompts is alice's.
    assert_eq!(
        key_count(&as_user(&sim, &cluster, "alice", &["key", "list"])),
        0
    );
}

#[test]
fn cli_an_admin_cannot_generate_a_key() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    let doc = as_admin(
        &sim,
        &cluster,
        &sim.admin_password(),
        &[
            "key",
            "generate-symmetric",
            "aes",
            "--label",
            "nope",
            "--key-length-bytes",
            "32",
        ],
    );
    assert_eq!(
        error(&doc),
        "Only crypto users (CUs) can generate keys; admin is admin"
    );
}

#[test]
fn cli_a_crypto_user_owns_the_keys_it_generates() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    crypto_user(&sim, &cluster, "owner1");
    let k = generate(&sim, &cluster, "owner1", "owned");
    assert_eq!(
        ok(&k)["key"]["key-info"]["key-owners"][0]["username"],
        "owner1"
    );
    assert_eq!(ok(&k)["key"]["attributes"]["key-length-bytes"], 24);
}

#[test]
fn cli_a_crypto_user_sees_no_key_of_another_user() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    crypto_user(&sim, &cluster, "owner2");
    crypto_user(&sim, &cluster, "other2");
    ok(&generate(&sim, &cluster, "owner2", "private2"));
    assert_eq!(
        key_count(&as_user(&sim, &cluster, "other2", &["key", "list"])),
        0
    );
}

#[test]
fn cli_a_shared_key_is_listed_for_the_user_it_is_shared_with() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    crypto_user(&sim, &cluster, "owner3");
    crypto_user(&sim, &cluster, "other3");
    ok(&generate(&sim, &cluster, "owner3", "shared3"));
    ok(&share(
        &sim, &cluster, "owner3", "share", "shared3", "other3",
    ));
    let seen = as_user(&sim, &cluster, "other3", &["key", "list", "--verbose"]);
    assert_eq!(key_count(&seen), 1);
    assert_eq!(
        ok(&seen)["matched_keys"][0]["key-info"]["shared-users"],
        json!([{"username": "other3", "key-coverage": "full"}])
    );
}

#[test]
fn cli_a_user_a_key_is_shared_with_cannot_delete_it() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    crypto_user(&sim, &cluster, "owner4");
    crypto_user(&sim, &cluster, "other4");
    let k = generate(&sim, &cluster, "owner4", "shared4");
    let reference = ok(&k)["key"]["key-reference"].as_str().unwrap().to_string();
    ok(&share(
        &sim, &cluster, "owner4", "share", "shared4", "other4",
    ));
    let r = as_user(
        &sim,
        &cluster,
        "other4",
        &["key", "delete", "--filter", "attr.label=shared4"],
    );
    assert_eq!(
        error(&r),
        format!("Only the owner of key {reference} (owner4) can delete it")
    );
    assert_eq!(
        key_count(&as_user(&sim, &cluster, "owner4", &["key", "list"])),
        1
    );
}

#[test]
fn cli_an_unshared_key_is_no_longer_listed_for_that_user() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    crypto_user(&sim, &cluster, "owner5");
    crypto_user(&sim, &cluster, "other5");
    ok(&generate(&sim, &cluster, "owner5", "shared5"));
    ok(&share(
        &sim, &cluster, "owner5", "share", "shared5", "other5",
    ));
    ok(&share(
        &sim, &cluster, "owner5", "unshare", "shared5", "other5",
    ));
    assert_eq!(
        key_count(&as_user(&sim, &cluster, "other5", &["key", "list"])),
        0
    );
}

#[test]
fn cli_an_admin_lists_the_keys_of_every_user() {
    let sim = server();
    let c = block_on(new_cluster(&sim, 2));
    crypto_user(&sim, &c.id, "alice");
    crypto_user(&sim, &c.id, "bob");
    for (user, label) in [("alice", "a1"), ("alice", "a2"), ("bob", "b1")] {
        ok(&generate(&sim, &c.id, user, label));
    }
    let all = as_admin(&sim, &c.id, &c.admin_password, &["key", "list"]);
    assert_eq!(key_count(&all), 3);
}

#[test]
fn cli_a_user_who_owns_keys_cannot_be_deleted() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    crypto_user(&sim, &cluster, "owner6");
    for label in ["k6a", "k6b", "k6c"] {
        ok(&generate(&sim, &cluster, "owner6", label));
    }
    let del = as_admin(
        &sim,
        &cluster,
        &sim.admin_password(),
        &[
            "user",
            "delete",
            "--username",
            "owner6",
            "--role",
            "crypto-user",
        ],
    );
    assert_eq!(
        error(&del),
        "The user owner6 owns 3 keys and cannot be deleted"
    );
}

#[test]
fn cli_the_owner_deletes_its_key() {
    let sim = server();
    let cluster = block_on(default_cluster(&sim));
    crypto_user(&sim, &cluster, "owner7");
    for label in ["k7a", "k7b", "k7c"] {
        ok(&generate(&sim, &cluster, "owner7", label));
    }
    ok(&as_user(
        &sim,
        &cluster,
        "owner7",
        &["key", "delete", "--filter", "attr.label=k7a"],
    ));
    let left = as_user(&sim, &cluster, "owner7", &["key", "list"]);
    assert_eq!(key_count(&left), 2);
    let mut labels: Vec<&str> = ok(&left)["matched_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["attributes"]["label"].as_str().expect("a label"))
        .collect();
    labels.sort_unstable();
    assert_eq!(labels, ["k7b", "k7c"]);
}

// ---- kmsuser locked out through the CLI ----

/// A new cluster with a DISCONNECTED store on it: (store, cluster).
fn cluster_with_store(sim: &Sim, name: &str) -> (String, NewCluster) {
    block_on(async {
        let c = new_cluster(sim, 2).await;
        let store = create_store_with(sim, name, &c.id, &c.anchor, &c.kmsuser_password).await;
        (store, c)
    })
}

/// kmsuser logs in on `cluster` with `password` (in CLOUDHSM_PIN and at the prompt).
fn kmsuser_login(sim: &Sim, cluster: &str, password: &str) -> (bool, Value) {
    single(
        sim,
        "crypto-user",
        &format!("kmsuser:{password}"),
        &[
            "login",
            "--username",
            "kmsuser",
            "--role",
            "crypto-user",
            "--cluster-id",
            cluster,
        ],
        &format!("{password}\n"),
    )
}

/// Six logins with a wrong password: the sixth locks kmsuser.
fn lock_kmsuser_out(sim: &Sim, cluster: &str) {
    for _ in 0..6 {
        assert!(!kmsuser_login(sim, cluster, "WrongPassw0rd").0);
    }
}

/// kmsuser's entry in the CLI's user list, as the admin sees it.
fn kmsuser_listed(sim: &Sim, c: &NewCluster) -> Value {
    let users = as_admin(sim, &c.id, &c.admin_password, &["user", "list"]);
    ok(&users)["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "kmsuser")
        .expect("kmsuser listed")
        .clone()
}

#[test]
fn cli_each_wrong_password_is_refused_and_the_sixth_locks_the_user() {
    let sim = server();
    let (_, c) = cluster_with_store(&sim, "cli-locking");
    for i in 1..=6 {
        let (exit_ok, doc) = kmsuser_login(&sim, &c.id, "WrongPassw0rd");
        assert!(!exit_ok, "wrong password {i} accepted");
        let want = if i == 6 {
            "Wrong password for user kmsuser; the user is now locked"
        } else {
            "Wrong password for user kmsuser"
        };
        assert_eq!(error(&doc), want, "wrong password {i}");
    }
}

#[test]
fn cli_a_locked_user_cannot_log_in_even_with_the_right_password() {
    let sim = server();
    let (_, c) = cluster_with_store(&sim, "cli-locked");
    lock_kmsuser_out(&sim, &c.id);
    for password in ["anything1", c.kmsuser_password.as_str()] {
        let (exit_ok, doc) = kmsuser_login(&sim, &c.id, password);
        assert!(!exit_ok);
        assert_eq!(
            error(&doc),
            "user is locked: an admin must reset the password of kmsuser",
            "password {password}"
        );
    }
}

#[test]
fn cli_user_list_shows_a_locked_user_as_locked() {
    let sim = server();
    let (_, c) = cluster_with_store(&sim, "cli-listed-locked");
    assert_eq!(kmsuser_listed(&sim, &c)["locked"], "false");
    lock_kmsuser_out(&sim, &c.id);
    assert_eq!(kmsuser_listed(&sim, &c)["locked"], "true");
}

#[test]
fn a_store_whose_kmsuser_the_cli_locked_out_fails_with_user_locked_out() {
    let sim = server();
    let (store, c) = cluster_with_store(&sim, "cli-store-locked");
    lock_kmsuser_out(&sim, &c.id);
    block_on(async {
        let kms = sim.kms();
        kms.connect_custom_key_store()
            .custom_key_store_id(&store)
            .send()
            .await
            .unwrap();
        let e = wait_state(&kms, &store, "FAILED").await;
        assert_eq!(
            e.connection_error_code().unwrap().as_str(),
            "USER_LOCKED_OUT"
        );
    });
}

#[test]
fn cli_an_admins_password_reset_unlocks_kmsuser_and_the_store_connects() {
    let sim = server();
    let (store, c) = cluster_with_store(&sim, "cli-unlocked");
    lock_kmsuser_out(&sim, &c.id);
    // The admin resets kmsuser's password in single command mode (typed at the prompts).
    let (exit_ok, doc) = single(
        &sim,
        "admin",
        &format!("admin:{}", c.admin_password),
        &[
            "user",
            "change-password",
            "--username",
            "kmsuser",
            "--role",
            "crypto-user",
            "--cluster-id",
            &c.id,
        ],
        "Unlocked123\nUnlocked123\n",
    );
    assert!(exit_ok);
    assert_eq!(
        ok(&doc),
        &json!({"username": "kmsuser", "role": "crypto-user"})
    );
    block_on(async {
        let kms = sim.kms();
        kms.update_custom_key_store()
            .custom_key_store_id(&store)
            .key_store_password("Unlocked123")
            .send()
            .await
            .unwrap();
        kms.connect_custom_key_store()
            .custom_key_store_id(&store)
            .send()
            .await
            .unwrap();
        wait_state(&kms, &store, "CONNECTED").await;
    });
}

//! `cks-sim cloudhsm-cli` (and the binary run as `cloudhsm-cli`): the AWS guides' CloudHSM CLI
//! procedures against a real server and token, in single command mode (CLOUDHSM_ROLE /
//! CLOUDHSM_PIN) and interactive mode driven through standard input. Every output must parse
//! as the documented `{"error_code", "data"}` JSON.

use crate::common::{
    Sim, block_on, cloudhsm_key, code, connected_store, default_cluster, disconnect, wait_state,
};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

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
fn cli_admin_reset_unlocks_kmsuser_after_user_locked_out_then_the_store_connects() {
    let sim = Sim::start();
    let (store, cluster) = block_on(async {
        let (store, cluster) = connected_store(&sim, "locked").await;
        disconnect(&sim, &store).await;
        (store, cluster)
    });
    // Six wrong passwords: the sixth locks kmsuser, and a locked user cannot log in.
    for i in 0..6 {
        let (ok_exit, doc) = single(
            &sim,
            "crypto-user",
            "kmsuser:WrongPassw0rd",
            &[
                "login",
                "--username",
                "kmsuser",
                "--role",
                "crypto-user",
                "--cluster-id",
                &cluster,
            ],
            "WrongPassw0rd\n",
        );
        assert!(!ok_exit);
        let msg = error(&doc);
        assert!(msg.contains("Wrong password"), "{msg}");
        assert_eq!(msg.contains("locked"), i == 5, "{msg}");
    }
    let (_, doc) = single(
        &sim,
        "crypto-user",
        "kmsuser:x",
        &[
            "login",
            "--username",
            "kmsuser",
            "--role",
            "crypto-user",
            "--password",
            "anything1",
            "--cluster-id",
            &cluster,
        ],
        "",
    );
    assert!(error(&doc).contains("user is locked"), "{doc}");
    let (_, users) = single(
        &sim,
        "admin",
        "admin:x",
        &["user", "list", "--cluster-id", &cluster],
        "",
    );
    let k = ok(&users)["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "kmsuser")
        .unwrap()
        .clone();
    assert_eq!(k["locked"], "true");
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
        disconnect(&sim, &store).await;
    });
    // The admin resets kmsuser's password in single command mode (typed at the prompts).
    let admin_pin = format!("admin:{}", sim.admin_password());
    let (exit_ok, doc) = single(
        &sim,
        "admin",
        &admin_pin,
        &[
            "user",
            "change-password",
            "--username",
            "kmsuser",
            "--role",
            "crypto-user",
            "--cluster-id",
            &cluster,
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
fn cli_crypto_users_own_share_and_delete_their_keys_and_admins_cannot_use_keys() {
    let sim = Sim::start();
    let cluster = block_on(default_cluster(&sim));
    let admin = format!("admin:{}", sim.admin_password());
    for u in ["alice", "bob"] {
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
                "--cluster-id",
                &cluster,
            ],
            "Passw0rd12\nPassw0rd12\n",
        );
        assert!(ok_exit, "{doc}");
    }
    let (_, doc) = single(
        &sim,
        "admin",
        &admin,
        &[
            "key",
            "generate-symmetric",
            "aes",
            "--label",
            "nope",
            "--key-length-bytes",
            "32",
            "--cluster-id",
            &cluster,
        ],
        "",
    );
    assert!(error(&doc).contains("Only crypto users"), "{doc}");
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
    let bob = |args: &[&str]| {
        single(
            &sim,
            "crypto-user",
            "bob:Passw0rd12",
            &[args, &["--cluster-id", &cluster]].concat(),
            "",
        )
        .1
    };
    for label in ["a1", "a2", "a3"] {
        let k = alice(&[
            "key",
            "generate-symmetric",
            "aes",
            "--label",
            label,
            "--key-length-bytes",
            "24",
        ]);
        assert_eq!(
            ok(&k)["key"]["key-info"]["key-owners"][0]["username"],
            "alice"
        );
        assert_eq!(ok(&k)["key"]["attributes"]["key-length-bytes"], 24);
    }
    // Bob sees none of alice's keys (kmsuser's neither), until one is shared with him.
    assert_eq!(ok(&bob(&["key", "list"]))["total_key_count"], 0);
    let shared = alice(&[
        "key",
        "share",
        "--filter",
        "attr.label=a1",
        "--username",
        "bob",
        "--role",
        "crypto-user",
    ]);
    ok(&shared);
    let seen = bob(&["key", "list", "--verbose"]);
    assert_eq!(
        ok(&seen)["matched_keys"][0]["key-info"]["shared-users"],
        json!([{"username": "bob", "key-coverage": "full"}])
    );
    assert!(
        error(&bob(&["key", "delete", "--filter", "attr.label=a1"])).contains("Only the owner")
    );
    ok(&alice(&[
        "key",
        "unshare",
        "--filter",
        "attr.label=a1",
        "--username",
        "bob",
        "--role",
        "crypto-user",
    ]));
    assert_eq!(ok(&bob(&["key", "list"]))["total_key_count"], 0);
    // Admins see every key but cannot filter; a user who owns keys cannot be deleted.
    let (_, all) = single(
        &sim,
        "admin",
        &admin,
        &["key", "list", "--cluster-id", &cluster],
        "",
    );
    assert_eq!(ok(&all)["total_key_count"], 3);
    let (_, del) = single(
        &sim,
        "admin",
        &admin,
        &[
            "user",
            "delete",
            "--username",
            "alice",
            "--role",
            "crypto-user",
            "--cluster-id",
            &cluster,
        ],
        "",
    );
    assert!(error(&del).contains("owns 3 keys"), "{del}");
    ok(&alice(&["key", "delete", "--filter", "attr.label=a1"]));
    assert_eq!(ok(&alice(&["key", "list"]))["total_key_count"], 2);
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

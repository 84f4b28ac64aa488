//! The promises, checked by a state machine (proptest-state-machine): random lifecycles of
//! key stores, keys, faults, clock advances and restarts against a real server, a real
//! SoftHSM2 token and a real SQLite file, compared with a reference model after every step —
//! including an independent view of every cluster's token (a separate process opening the
//! token with PKCS#11 and listing labels, ids and material fingerprints).
//!
//! `PROPTEST_CASES` raises the number of cases (default 24); the coverage of transitions and
//! outcomes is written to `target/state-machine-coverage.txt` (scripts/test prints it).

use crate::common::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

// The reference model and its strategies: public in `cks_sim::testing::model`.
use cks_sim::testing::model::*;

// ---------------------------------------------------------------------------------------
// The system under test: a real server process, driven over HTTP.

/// How often each transition reached each outcome, in one run.
type Coverage = BTreeMap<String, u64>;

/// The coverage of all random runs together, for the report file only. The fixed tour never
/// reads or writes it: its coverage is its own run's, returned by `run_tour`.
static RANDOM_RUNS_COVERAGE: Mutex<Coverage> = Mutex::new(BTreeMap::new());

pub struct Sut {
    sim: Sim,
    rt: tokio::runtime::Runtime,
    clusters: [String; 2],
    /// The labels of the clusters' tokens (the cluster IDs, or the labels they are bound to).
    labels: [String; 2],
    /// The configuration files of a server over bound tokens (kept for restarts).
    _config: Option<tempfile::TempDir>,
    anchors: [String; 2],
    admin: [String; 2],
    known_pw: [String; 2],
    stores: Vec<String>,
    keys: Vec<String>,
    passwords: HashSet<String>,
    fingerprints: Mutex<HashMap<String, String>>,
    /// The outcomes this run reached.
    coverage: Coverage,
}

fn err_name(e: cks_sim::client::ClientError) -> String {
    match e {
        cks_sim::client::ClientError::Api { type_name, .. } => type_name,
        other => panic!("transport failure: {other}"),
    }
}

impl Sut {
    fn cover(&mut self, what: String) {
        *self.coverage.entry(what).or_default() += 1;
    }

    fn aws(&self, op: &str, body: Value) -> Result<Value, String> {
        let c = self.sim.control();
        self.rt
            .block_on(c.aws(&format!("TrentService.{op}"), body))
            .map_err(err_name)
    }

    fn ctl(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let c = self.sim.control();
        self.rt
            .block_on(c.call(method, path, body))
            .map_err(err_name)
    }

    fn store_state(&self, id: &str) -> String {
        let v = self
            .aws("DescribeCustomKeyStores", json!({"CustomKeyStoreId": id}))
            .expect("describe store");
        v["CustomKeyStores"][0]["ConnectionState"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn settle(&self, id: &str) {
        deadline_poll("the store to settle", 20, || {
            let s = self.store_state(id);
            (s != "CONNECTING" && s != "DISCONNECTING").then_some(())
        });
    }

    fn pin(&self, cluster: usize) -> String {
        let v = self
            .ctl(
                "GET",
                &format!("/_sim/clusters/{}/token/pin", self.clusters[cluster]),
                None,
            )
            .unwrap();
        v["user_pin"].as_str().unwrap().to_string()
    }

    /// Independent view: `cks-sim inspect-token` in its own process.
    fn token(&self, cluster: usize) -> Vec<Value> {
        let pin = self.pin(cluster);
        self.sim.inspect_token(&self.labels[cluster], &pin)
    }

    fn world_snapshot(&self, cluster: usize) -> (Value, Value, Vec<Value>, u64) {
        let id = &self.clusters[cluster];
        let mut info = self
            .ctl("GET", &format!("/_sim/clusters/{id}"), None)
            .unwrap();
        info.as_object_mut().unwrap().remove("custom_key_stores");
        let users = self
            .ctl("GET", &format!("/_sim/clusters/{id}/users"), None)
            .unwrap();
        let objects = self.token(cluster);
        let calls = self
            .ctl("GET", &format!("/_sim/clusters/{id}/token/stats"), None)
            .unwrap()["calls"]
            .as_u64()
            .unwrap();
        (info, users, objects, calls)
    }

    fn run(&mut self, m: &Model, t: &T) -> Result<(), String> {
        match *t {
            T::CreateStore { cluster, name } => {
                let r = self.aws(
                    "CreateCustomKeyStore",
                    json!({
                        "CustomKeyStoreName": NAMES[name],
                        "CloudHsmClusterId": self.clusters[cluster],
                        "TrustAnchorCertificate": self.anchors[cluster],
                        "KeyStorePassword": self.known_pw[cluster],
                    }),
                )?;
                let id = r["CustomKeyStoreId"].as_str().unwrap().to_string();
                if !self.stores.contains(&id) {
                    self.stores.push(id);
                }
                Ok(())
            }
            T::Connect { store } => {
                let id = self.stores[store].clone();
                let was = self
                    .aws("DescribeCustomKeyStores", json!({"CustomKeyStoreId": id}))
                    .map(|v| v["CustomKeyStores"][0]["ConnectionState"].as_str().unwrap_or("").to_string())
                    .unwrap_or_default();
                self.aws("ConnectCustomKeyStore", json!({"CustomKeyStoreId": id}))?;
                self.settle(&id);
                let v = self.aws("DescribeCustomKeyStores", json!({"CustomKeyStoreId": id})).unwrap();
                let e = &v["CustomKeyStores"][0];
                self.cover(format!(
                    "Connect => {} {}",
                    e["ConnectionState"].as_str().unwrap_or(""),
                    e["ConnectionErrorCode"].as_str().unwrap_or("")
                ));
                // A connect from DISCONNECTED that succeeds rotates kmsuser's password (a connect
                // of a CONNECTED store is a no-op and rotates nothing).
                if was == "DISCONNECTED" && self.store_state(&id) == "CONNECTED" {
                    let c = m.stores[store].cluster;
                    let pw = self.pin(c);
                    self.passwords.insert(pw);
                    self.known_pw[c] = "stale-password-1".into();
                }
                Ok(())
            }
            T::Disconnect { store } => {
                let id = self.stores[store].clone();
                self.aws("DisconnectCustomKeyStore", json!({"CustomKeyStoreId": id}))?;
                self.settle(&id);
                Ok(())
            }
            T::Delete { store } => {
                let id = self.stores[store].clone();
                let c = m.stores[store].cluster;
                let before = self.world_snapshot(c);
                let r = self.aws("DeleteCustomKeyStore", json!({"CustomKeyStoreId": id}));
                let after = self.world_snapshot(c);
                // Promise 1: the cluster is byte-for-byte as before, and no PKCS#11 call was made
                // (the snapshot's own listing calls are the same on both sides).
                let calls_between = after.3 - before.3;
                let listing_calls = {
                    let again = self.world_snapshot(c);
                    again.3 - after.3
                };
                assert_eq!((&before.0, &before.1, &before.2), (&after.0, &after.1, &after.2), "DeleteCustomKeyStore changed the cluster");
                assert_eq!(calls_between, listing_calls, "DeleteCustomKeyStore made PKCS#11 calls");
                r.map(|_| ())
            }
            T::Rename { store, name } => self
                .aws("UpdateCustomKeyStore", json!({"CustomKeyStoreId": self.stores[store], "NewCustomKeyStoreName": NAMES[name]}))
                .map(|_| ()),
            T::UpdatePassword { store } => {
                let c = m.stores[store].cluster;
                self.aws(
                    "UpdateCustomKeyStore",
                    json!({"CustomKeyStoreId": self.stores[store], "KeyStorePassword": self.known_pw[c]}),
                )
                .map(|_| ())
            }
            T::CreateKey { store } => {
                let body = match store {
                    Some(s) => json!({"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": self.stores[s]}),
                    None => json!({}),
                };
                let r = self.aws("CreateKey", body)?;
                self.keys.push(r["KeyMetadata"]["KeyId"].as_str().unwrap().to_string());
                Ok(())
            }
            T::CreateSigningKey => {
                let r = self.aws("CreateKey", json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}))?;
                self.keys.push(r["KeyMetadata"]["KeyId"].as_str().unwrap().to_string());
                Ok(())
            }
            T::SetEnabled { key, on } => {
                self.aws(if on { "EnableKey" } else { "DisableKey" }, json!({"KeyId": self.keys[key]})).map(|_| ())
            }
            T::Schedule { key, days } => self
                .aws("ScheduleKeyDeletion", json!({"KeyId": self.keys[key], "PendingWindowInDays": days}))
                .map(|_| ()),
            T::Cancel { key } => self.aws("CancelKeyDeletion", json!({"KeyId": self.keys[key]})).map(|_| ()),
            T::Crypto { key } if m.keys[key].signing => {
                let msg = json!({"KeyId": self.keys[key], "Message": "cHJvcGVydHk=", "SigningAlgorithm": "ECDSA_SHA_256"});
                let r = self.aws("Sign", msg.clone())?;
                let mut verify = msg;
                verify["Signature"] = r["Signature"].clone();
                let v = self.aws("Verify", verify).expect("verify right after sign");
                assert_eq!(v["SignatureValid"], true);
                let wrong = self.aws(
                    "Encrypt",
                    json!({"KeyId": self.keys[key], "Plaintext": "cHJvcGVydHk="}),
                );
                assert_eq!(wrong.unwrap_err(), "InvalidKeyUsageException");
                Ok(())
            }
            T::Crypto { key } => {
                let r = self.aws(
                    "Encrypt",
                    json!({"KeyId": self.keys[key], "Plaintext": "cHJvcGVydHk=", "EncryptionContext": {"k": "v"}}),
                )?;
                let back = self
                    .aws("Decrypt", json!({"CiphertextBlob": r["CiphertextBlob"], "EncryptionContext": {"k": "v"}}))
                    .expect("decrypt right after encrypt");
                assert_eq!(back["Plaintext"], "cHJvcGVydHk=");
                let wrong = self.aws("Decrypt", json!({"CiphertextBlob": r["CiphertextBlob"]}));
                assert_eq!(wrong.unwrap_err(), "InvalidCiphertextException");
                Ok(())
            }
            T::Advance { days } => self.ctl("POST", "/_sim/clock/advance", Some(json!({"days": days}))).map(|_| ()),
            T::HsmsDown { cluster, on } => {
                let info = self.ctl("GET", &format!("/_sim/clusters/{}", self.clusters[cluster]), None).unwrap();
                for h in info["hsms"].as_array().unwrap() {
                    self.ctl(
                        "POST",
                        &format!("/_sim/clusters/{}/faults", self.clusters[cluster]),
                        Some(json!({"fault": "hsm-down", "target": h["hsm_id"], "on": on})),
                    )?;
                }
                Ok(())
            }
            T::NetworkDown { cluster, on } => self
                .ctl(
                    "POST",
                    &format!("/_sim/clusters/{}/faults", self.clusters[cluster]),
                    Some(json!({"fault": "network-down", "on": on})),
                )
                .map(|_| ()),
            T::ResetKmsuser { cluster } => {
                let pw = format!("Reset{}", uuid::Uuid::new_v4().simple());
                let pw = pw[..20].to_string();
                self.ctl(
                    "POST",
                    &format!("/_sim/clusters/{}/users/kmsuser/password", self.clusters[cluster]),
                    Some(json!({"new_password": pw, "auth_user": "admin", "auth_password": self.admin[cluster]})),
                )?;
                self.passwords.insert(pw.clone());
                self.known_pw[cluster] = pw;
                Ok(())
            }
            T::LoginElsewhere { cluster } => self
                .ctl(
                    "POST",
                    &format!("/_sim/clusters/{}/users/kmsuser/login", self.clusters[cluster]),
                    Some(json!({"password": self.known_pw[cluster]})),
                )
                .map(|_| ()),
            T::LogoutElsewhere { cluster } => self
                .ctl("POST", &format!("/_sim/clusters/{}/users/kmsuser/logout", self.clusters[cluster]), None)
                .map(|_| ()),
            T::Restart => {
                self.sim.restart();
                for id in self.stores.clone() {
                    if self.aws("DescribeCustomKeyStores", json!({"CustomKeyStoreId": id})).is_ok() {
                        self.settle(&id);
                        let state = self.store_state(&id);
                        self.cover(format!("Restart => {state}"));
                    }
                }
                Ok(())
            }
            T::Bad { kind } => {
                let key = self.keys.first().cloned().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                match kind {
                    0 => self.aws("DescribeCustomKeyStores", json!({"CustomKeyStoreId": "cks-00000000000000000"})).map(|_| ()),
                    1 => self
                        .aws(
                            "CreateCustomKeyStore",
                            json!({"CustomKeyStoreName": "n".repeat(300), "CloudHsmClusterId": self.clusters[0], "TrustAnchorCertificate": self.anchors[0], "KeyStorePassword": "whatever1"}),
                        )
                        .map(|_| ()),
                    2 => self.aws("ScheduleKeyDeletion", json!({"KeyId": key, "PendingWindowInDays": 3})).map(|_| ()),
                    3 => self
                        .aws("Encrypt", json!({"KeyId": key, "Plaintext": base64_of(&[7u8; 4097])}))
                        .map(|_| ()),
                    _ => {
                        let c = self.sim.control();
                        let (st, v) = self
                            .rt
                            .block_on(c.raw("POST", "/", &[("x-amz-target", "TrentService.CreateKey")], b"{\"Description\":".to_vec()))
                            .unwrap();
                        assert_eq!(st, 400);
                        Err(v["__type"].as_str().unwrap().to_string())
                    }
                }
            }
        }
    }
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl StateMachineTest for Sut {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(_m: &Model) -> Sut {
        let sim = Sim::start();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let c0 = rt.block_on(default_cluster(&sim));
        let c1 = rt.block_on(super::key_stores::new_cluster(&sim, 2));
        let mut passwords = HashSet::new();
        passwords.insert(sim.kmsuser_password());
        passwords.insert(c1.kmsuser_password.clone());
        Sut {
            labels: [c0.clone(), c1.id.clone()],
            _config: None,
            clusters: [c0, c1.id.clone()],
            anchors: [sim.trust_anchor(), c1.anchor.clone()],
            admin: [sim.admin_password(), c1.admin_password.clone()],
            known_pw: [sim.kmsuser_password(), c1.kmsuser_password.clone()],
            sim,
            rt,
            stores: vec![],
            keys: vec![],
            passwords,
            fingerprints: Mutex::new(HashMap::new()),
            coverage: Coverage::new(),
        }
    }

    fn apply(mut sut: Sut, m: &Model, t: T) -> Sut {
        let got = sut.run(m, &t);
        let want = m.last.map_err(str::to_string);
        sut.cover(format!(
            "{} -> {}",
            t.name(),
            match &got {
                Ok(()) => "Ok",
                Err(e) => e.as_str(),
            }
        ));
        assert_eq!(got, want, "transition {t:?}");
        sut
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        // Key stores: existence, names, clusters, states and error codes.
        let raw = sut.aws("DescribeCustomKeyStores", json!({})).unwrap();
        let listed: BTreeMap<String, &Value> = raw["CustomKeyStores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["CustomKeyStoreId"].as_str().unwrap().to_string(), s))
            .collect();
        let live: Vec<(usize, &RStore)> = m
            .stores
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.deleted)
            .collect();
        assert_eq!(listed.len(), live.len(), "store count");
        for (i, s) in &live {
            let e = listed
                .get(&sut.stores[*i])
                .unwrap_or_else(|| panic!("store {i} missing"));
            assert_eq!(e["CustomKeyStoreName"], s.name.as_str());
            assert_eq!(e["CloudHsmClusterId"], sut.clusters[s.cluster].as_str());
            let (state, code) = match s.state {
                St::Connected => ("CONNECTED", None),
                St::Disconnected => ("DISCONNECTED", None),
                St::Failed(c) => ("FAILED", Some(c)),
            };
            assert_eq!(e["ConnectionState"], state, "store {i} state");
            assert_eq!(
                e["ConnectionErrorCode"].as_str(),
                code,
                "store {i} error code"
            );
        }
        // Secrets never leak.
        let text = raw.to_string();
        for p in &sut.passwords {
            assert!(!text.contains(p.as_str()), "a key store password leaked");
        }
        // Keys: visible state, or gone.
        for (i, k) in m.keys.iter().enumerate() {
            let r = sut.aws("DescribeKey", json!({"KeyId": sut.keys[i]}));
            if k.deleted {
                assert_eq!(
                    r.unwrap_err(),
                    "NotFoundException",
                    "key {i} should be deleted"
                );
            } else {
                let v = r.unwrap();
                assert_eq!(v["KeyMetadata"]["KeyState"], visible(m, k), "key {i} state");
                assert_eq!(v["KeyMetadata"]["Enabled"], visible(m, k) == "Enabled");
            }
        }
        let listed_keys = sut.aws("ListKeys", json!({"Limit": 1000})).unwrap();
        assert_eq!(
            listed_keys["Keys"].as_array().unwrap().len(),
            m.keys.iter().filter(|k| !k.deleted).count(),
            "ListKeys"
        );
        // Orphans, per cluster, in the log and on the token.
        let orphans = sut.ctl("GET", "/_sim/orphans", None).unwrap();
        for c in 0..2 {
            let logged = orphans["orphans"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["cluster_id"] == sut.clusters[c].as_str())
                .count();
            assert_eq!(logged as u32, m.orphans[c], "orphan log of cluster {c}");
            // Independent view of the token: exactly one object per live key, plus the orphans.
            let objects = sut.token(c);
            let live_keys: Vec<usize> = m
                .keys
                .iter()
                .enumerate()
                .filter(|(_, k)| !k.deleted && k.store.is_some_and(|s| m.stores[s].cluster == c))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(
                objects.len() as u32,
                live_keys.len() as u32 + m.orphans[c],
                "objects on the token of cluster {c}: {objects:?}"
            );
            for i in live_keys {
                let n = objects
                    .iter()
                    .filter(|o| o["label"].as_str().unwrap().ends_with(&sut.keys[i]))
                    .count();
                assert_eq!(n, 1, "key {i} must have exactly one object");
            }
            for o in &objects {
                let label = o["label"].as_str().unwrap().to_string();
                let fp = o["fingerprint"].as_str().unwrap().to_string();
                let mut seen = sut.fingerprints.lock().unwrap();
                if let Some(old) = seen.get(&label) {
                    assert_eq!(old, &fp, "material of {label} changed");
                } else {
                    seen.insert(label, fp);
                }
            }
        }
    }

    fn teardown(sut: Sut, _m: Model) {
        if let Ok(mut c) = RANDOM_RUNS_COVERAGE.lock() {
            for (k, v) in &sut.coverage {
                *c.entry(k.clone()).or_default() += v;
            }
            let mut out = String::from("state machine coverage (transition -> outcome: count)\n");
            for (k, v) in c.iter() {
                out.push_str(&format!("{v:6}  {k}\n"));
            }
            let _ = std::fs::write(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/target/state-machine-coverage.txt"
                ),
                out,
            );
        }
        drop(sut);
    }
}

/// The same machine with both clusters bound to tokens made outside cks-sim (by this test
/// process, through the module), served with `provisioner = "none"` and the module's
/// environment as given. `rotate_password = true`, so the model's rotations apply unchanged.
pub struct BoundMachine;

impl Sut {
    fn bound() -> Sut {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let pw = [format!("kmsuserA{suffix}"), format!("kmsuserB{suffix}")];
        let admin = ["AdminPswd0A".to_string(), "AdminPswd0B".to_string()];
        let labels = [
            fresh_token("bound-a", &pw[0]),
            fresh_token("bound-b", &pw[1]),
        ];
        let internal_pin = "internal-pin-2468";
        let internal = fresh_token("bound-internal", internal_pin);
        let ids = ["cluster-boundclusterA", "cluster-boundclusterB"].map(String::from);
        let conf_dir = tempfile::tempdir().expect("tempdir");
        let base = format!(
            "[hsm]\nmodule = {:?}\nprovisioner = \"none\"\ninternal_token_label = {internal:?}\n\
             internal_token_pin = {internal_pin:?}\n\n[simulation]\ndefault_seed = false\n",
            module_path().display().to_string()
        );
        let mut seeded = base.clone();
        for c in 0..2 {
            seeded.push_str(&format!(
                "\n[[cluster]]\nid = {:?}\nadmin_password = {:?}\n[cluster.token]\nlabel = {:?}\n\
                 rotate_password = true\n[[cluster.user]]\nname = \"kmsuser\"\npassword = {:?}\n",
                ids[c], admin[c], labels[c], pw[c]
            ));
        }
        let (first, after) = (
            conf_dir.path().join("first.toml"),
            conf_dir.path().join("after.toml"),
        );
        std::fs::write(&first, seeded).expect("write config");
        std::fs::write(&after, base).expect("write config");
        let mut sim = Sim::start_with(&["--config", &first.to_string_lossy()]);
        // Restarts run without the seed, as the model expects nothing to be re-created.
        sim.extra_args = vec!["--config".into(), after.to_string_lossy().into_owned()];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let anchors = ids.clone().map(|id| {
            std::fs::read_to_string(
                sim.data_dir()
                    .join("clusters")
                    .join(id)
                    .join("customerCA.crt"),
            )
            .expect("the seeded cluster's trust anchor")
        });
        Sut {
            sim,
            rt,
            clusters: ids,
            labels,
            _config: Some(conf_dir),
            anchors,
            admin,
            passwords: pw.iter().cloned().collect(),
            known_pw: pw,
            stores: vec![],
            keys: vec![],
            fingerprints: Mutex::new(HashMap::new()),
            coverage: Coverage::new(),
        }
    }
}

impl StateMachineTest for BoundMachine {
    type SystemUnderTest = Sut;
    type Reference = Reference;

    fn init_test(_m: &Model) -> Sut {
        Sut::bound()
    }

    fn apply(sut: Sut, m: &Model, t: T) -> Sut {
        <Sut as StateMachineTest>::apply(sut, m, t)
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        <Sut as StateMachineTest>::check_invariants(sut, m)
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: cases(),
        max_shrink_iters: 64,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/state_machine.txt"))),
        .. Config::default()
    })]

    #[test]
    fn lifecycle_state_machine(sequential 1..40 => Sut);
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: cases().div_ceil(3),
        max_shrink_iters: 64,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/state_machine_bound.txt"))),
        .. Config::default()
    })]

    #[test]
    fn lifecycle_state_machine_on_bound_tokens(sequential 1..40 => BoundMachine);
}

/// Runs fixed transitions through the reference model and a fresh system under test, the
/// way `test_sequential` does (invariants checked after every step), and returns the
/// coverage of this run alone.
fn run_tour(transitions: Vec<T>) -> Coverage {
    let mut model = initial_model();
    let mut sut = Sut::init_test(&model);
    Sut::check_invariants(&sut, &model);
    for t in transitions {
        model = <Reference as ReferenceStateMachine>::apply(model, &t);
        sut = <Sut as StateMachineTest>::apply(sut, &model, t);
        Sut::check_invariants(&sut, &model);
    }
    std::mem::take(&mut sut.coverage)
}

/// Every outcome the model knows, reached at least once by a fixed tour through the same
/// reference model and system under test (the random cases above reach most of them, but
/// not reliably all in a CI-sized run).
const EVERY_OUTCOME: &[&str] = &[
    "CreateStore -> Ok",
    "CreateStore -> CustomKeyStoreNameInUseException",
    "CreateStore -> CloudHsmClusterInUseException",
    "CreateStore -> CloudHsmClusterInvalidConfigurationException",
    "Connect -> Ok",
    "Connect -> CustomKeyStoreNotFoundException",
    "Connect -> CustomKeyStoreInvalidStateException",
    "Connect -> CloudHsmClusterInvalidConfigurationException",
    "Connect => CONNECTED ",
    "Connect => FAILED INVALID_CREDENTIALS",
    "Connect => FAILED USER_LOCKED_OUT",
    "Connect => FAILED USER_LOGGED_IN",
    "Restart => FAILED",
    "Disconnect -> Ok",
    "Disconnect -> CustomKeyStoreInvalidStateException",
    "Delete -> Ok",
    "Delete -> CustomKeyStoreInvalidStateException",
    "Delete -> CustomKeyStoreHasCMKsException",
    "Delete -> CustomKeyStoreNotFoundException",
    "Rename -> Ok",
    "Rename -> CustomKeyStoreNameInUseException",
    "UpdatePassword -> Ok",
    "UpdatePassword -> CustomKeyStoreInvalidStateException",
    "CreateKey(CloudHSM) -> Ok",
    "CreateKey(CloudHSM) -> CustomKeyStoreInvalidStateException",
    "CreateKey(CloudHSM) -> CloudHsmClusterInvalidConfigurationException",
    "CreateKey(CloudHSM) -> KMSInvalidStateException",
    "CreateKey(AWS_KMS) -> Ok",
    "CreateKey(ECC_NIST_P256) -> Ok",
    "EnableDisable -> Ok",
    "EnableDisable -> KMSInvalidStateException",
    "EnableDisable -> NotFoundException",
    "ScheduleKeyDeletion -> Ok",
    "ScheduleKeyDeletion -> KMSInvalidStateException",
    "CancelKeyDeletion -> Ok",
    "CancelKeyDeletion -> KMSInvalidStateException",
    "EncryptDecrypt -> Ok",
    "EncryptDecrypt -> DisabledException",
    "EncryptDecrypt -> KMSInvalidStateException",
    "EncryptDecrypt -> NotFoundException",
    "AdvanceClock -> Ok",
    "FaultHsmsDown -> Ok",
    "FaultNetworkDown -> Ok",
    "AdminResetsKmsuser -> Ok",
    "KmsuserLoginElsewhere -> Ok",
    "KmsuserLoginElsewhere -> CloudHsmAccessDeniedException",
    "KmsuserLogoutElsewhere -> Ok",
    "KmsuserLogoutElsewhere -> CloudHsmInvalidRequestException",
    "Restart -> Ok",
    "BadRequest -> CustomKeyStoreNotFoundException",
    "BadRequest -> ValidationException",
    "BadRequest -> SerializationException",
];

#[test]
fn lifecycle_tour_reaches_every_outcome() {
    use T::*;
    let mut tour = vec![
        CreateStore {
            cluster: 0,
            name: 0,
        },
        CreateStore {
            cluster: 0,
            name: 1,
        },
        CreateStore {
            cluster: 1,
            name: 0,
        },
        CreateKey { store: Some(0) },
        Connect { store: 0 },
        Connect { store: 0 },
        Rename { store: 0, name: 2 },
        UpdatePassword { store: 0 },
        ResetKmsuser { cluster: 0 },
        LoginElsewhere { cluster: 0 },
        CreateKey { store: Some(0) },
        CreateKey { store: None },
        SetEnabled { key: 0, on: false },
        Crypto { key: 0 },
        SetEnabled { key: 0, on: true },
        Crypto { key: 0 },
        NetworkDown {
            cluster: 0,
            on: true,
        },
        Crypto { key: 0 },
        CreateKey { store: Some(0) },
        Restart,
        NetworkDown {
            cluster: 0,
            on: false,
        },
        Connect { store: 0 },
        Disconnect { store: 0 },
        Disconnect { store: 0 },
    ];
    // Five wrong passwords, then the sixth locks kmsuser.
    for _ in 0..6 {
        tour.extend([Connect { store: 0 }, Disconnect { store: 0 }]);
    }
    tour.extend([
        ResetKmsuser { cluster: 0 },
        UpdatePassword { store: 0 },
        LoginElsewhere { cluster: 0 },
        Connect { store: 0 },
        Disconnect { store: 0 },
        LogoutElsewhere { cluster: 0 },
        LogoutElsewhere { cluster: 0 },
        Connect { store: 0 },
        HsmsDown {
            cluster: 0,
            on: true,
        },
        CreateKey { store: Some(0) },
        HsmsDown {
            cluster: 0,
            on: false,
        },
        Schedule { key: 0, days: 7 },
        Schedule { key: 0, days: 7 },
        SetEnabled { key: 0, on: true },
        Crypto { key: 0 },
        Cancel { key: 1 },
        Schedule { key: 1, days: 7 },
        Cancel { key: 1 },
        Delete { store: 0 },
        Disconnect { store: 0 },
        Delete { store: 0 },
        Advance { days: 8 },
        Crypto { key: 0 },
        SetEnabled { key: 0, on: true },
        Delete { store: 0 },
        Delete { store: 0 },
        Connect { store: 0 },
        CreateStore {
            cluster: 1,
            name: 1,
        },
        HsmsDown {
            cluster: 1,
            on: true,
        },
        Connect { store: 1 },
        HsmsDown {
            cluster: 0,
            on: true,
        },
        CreateStore {
            cluster: 0,
            name: 0,
        },
        HsmsDown {
            cluster: 0,
            on: false,
        },
        HsmsDown {
            cluster: 1,
            on: false,
        },
        CreateStore {
            cluster: 0,
            name: 0,
        },
        Rename { store: 1, name: 0 },
        Bad { kind: 0 },
        Bad { kind: 1 },
        Bad { kind: 4 },
    ]);
    let mut seen = run_tour(tour);
    // A signing key through its states (its crypto is Sign and Verify).
    let signing = vec![
        CreateSigningKey,
        Crypto { key: 0 },
        SetEnabled { key: 0, on: false },
        Crypto { key: 0 },
        SetEnabled { key: 0, on: true },
        Schedule { key: 0, days: 7 },
        Crypto { key: 0 },
        Advance { days: 8 },
        Crypto { key: 0 },
    ];
    for (outcome, n) in run_tour(signing) {
        *seen.entry(outcome).or_default() += n;
    }
    let missing: Vec<&&str> = EVERY_OUTCOME
        .iter()
        .filter(|o| !seen.contains_key(**o))
        .collect();
    assert!(missing.is_empty(), "outcomes never reached: {missing:?}");
}

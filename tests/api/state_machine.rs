//! The promises, checked by a state machine (proptest-state-machine): random lifecycles of
//! key stores, keys, faults, clock advances and restarts against a real server, a real
//! SoftHSM2 token and a real SQLite file, compared with a reference model after every step —
//! including an independent view of every cluster's token (a separate process opening the
//! token with PKCS#11 and listing labels, ids and material fingerprints).
//!
//! `PROPTEST_CASES` raises the number of cases (default 24); the coverage of transitions and
//! outcomes is written to `target/state-machine-coverage.txt` (scripts/test prints it).

use crate::common::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

// ---------------------------------------------------------------------------------------
// Reference model: plain data, no I/O. If the model has bugs, it won't catch any.

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];
const STALE: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum St {
    Disconnected,
    Connected,
    Failed(&'static str),
}

#[derive(Clone, Debug)]
pub struct RCluster {
    hsms_down: bool,
    network_down: bool,
    /// Epoch of kmsuser's current password.
    pw: u32,
    pw_known: bool,
    failed: u32,
    locked: bool,
    elsewhere: u32,
}

#[derive(Clone, Debug)]
pub struct RStore {
    name: String,
    cluster: usize,
    state: St,
    pw: u32,
    session_valid: bool,
    deleted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum U {
    Enabled,
    Disabled,
    Pending(u32),
}

#[derive(Clone, Debug)]
pub struct RKey {
    store: Option<usize>,
    u: U,
    deleted: bool,
    /// An ECC_NIST_P256 SIGN_VERIFY key (its crypto is Sign and Verify).
    signing: bool,
}

#[derive(Clone, Debug)]
pub struct Model {
    clusters: Vec<RCluster>,
    stores: Vec<RStore>,
    keys: Vec<RKey>,
    /// Orphans per cluster.
    orphans: [u32; 2],
    day: u32,
    next_pw: u32,
    /// The expected outcome of the last transition: `Ok(new store slot?)` or the error name.
    last: Result<(), &'static str>,
}

#[derive(Clone, Debug)]
pub enum T {
    CreateStore { cluster: usize, name: usize },
    Connect { store: usize },
    Disconnect { store: usize },
    Delete { store: usize },
    Rename { store: usize, name: usize },
    UpdatePassword { store: usize },
    CreateKey { store: Option<usize> },
    CreateSigningKey,
    SetEnabled { key: usize, on: bool },
    Schedule { key: usize, days: u32 },
    Cancel { key: usize },
    Crypto { key: usize },
    Advance { days: u32 },
    HsmsDown { cluster: usize, on: bool },
    NetworkDown { cluster: usize, on: bool },
    ResetKmsuser { cluster: usize },
    LoginElsewhere { cluster: usize },
    LogoutElsewhere { cluster: usize },
    Restart,
    Bad { kind: u8 },
}

impl T {
    fn name(&self) -> &'static str {
        match self {
            T::CreateStore { .. } => "CreateStore",
            T::Connect { .. } => "Connect",
            T::Disconnect { .. } => "Disconnect",
            T::Delete { .. } => "Delete",
            T::Rename { .. } => "Rename",
            T::UpdatePassword { .. } => "UpdatePassword",
            T::CreateKey { store: Some(_) } => "CreateKey(CloudHSM)",
            T::CreateKey { store: None } => "CreateKey(AWS_KMS)",
            T::CreateSigningKey => "CreateKey(ECC_NIST_P256)",
            T::SetEnabled { .. } => "EnableDisable",
            T::Schedule { .. } => "ScheduleKeyDeletion",
            T::Cancel { .. } => "CancelKeyDeletion",
            T::Crypto { .. } => "EncryptDecrypt",
            T::Advance { .. } => "AdvanceClock",
            T::HsmsDown { .. } => "FaultHsmsDown",
            T::NetworkDown { .. } => "FaultNetworkDown",
            T::ResetKmsuser { .. } => "AdminResetsKmsuser",
            T::LoginElsewhere { .. } => "KmsuserLoginElsewhere",
            T::LogoutElsewhere { .. } => "KmsuserLogoutElsewhere",
            T::Restart => "Restart",
            T::Bad { .. } => "BadRequest",
        }
    }
}

fn live_store_named(m: &Model, name: &str, except: Option<usize>) -> bool {
    m.stores
        .iter()
        .enumerate()
        .any(|(i, s)| !s.deleted && s.name == name && Some(i) != except)
}

/// The visible key state (§3.2).
fn visible(m: &Model, k: &RKey) -> &'static str {
    match (&k.u, k.store) {
        (U::Pending(_), _) => "PendingDeletion",
        (_, Some(s)) if m.stores[s].state != St::Connected => "Unavailable",
        (U::Enabled, _) => "Enabled",
        (U::Disabled, _) => "Disabled",
    }
}

/// The asynchronous connection checks, in D11's order (as KMS runs them).
fn connect_outcome(m: &mut Model, s: usize, rotate: bool) {
    let c = m.stores[s].cluster;
    let cl = &mut m.clusters[c];
    let result = if cl.hsms_down {
        Err("INSUFFICIENT_CLOUDHSM_HSMS")
    } else if cl.network_down {
        Err("NETWORK_ERRORS")
    } else if cl.locked {
        Err("USER_LOCKED_OUT")
    } else if cl.elsewhere > 0 {
        Err("USER_LOGGED_IN")
    } else if m.stores[s].pw != cl.pw {
        cl.failed += 1;
        if cl.failed > 5 {
            cl.locked = true;
            Err("USER_LOCKED_OUT")
        } else {
            Err("INVALID_CREDENTIALS")
        }
    } else {
        Ok(())
    };
    match result {
        Ok(()) => {
            cl.failed = 0;
            if rotate {
                m.next_pw += 1;
                cl.pw = m.next_pw;
                cl.pw_known = false;
                m.stores[s].pw = cl.pw;
            }
            m.stores[s].state = St::Connected;
            m.stores[s].session_valid = true;
        }
        Err(code) => {
            m.stores[s].state = St::Failed(code);
            m.stores[s].session_valid = false;
        }
    }
}

pub struct Reference;

/// Two ACTIVE clusters with kmsuser, no store, no key.
fn initial_model() -> Model {
    let c = RCluster {
        hsms_down: false,
        network_down: false,
        pw: 0,
        pw_known: true,
        failed: 0,
        locked: false,
        elsewhere: 0,
    };
    let mut c1 = c.clone();
    c1.pw = 1;
    Model {
        clusters: vec![c, c1],
        stores: vec![],
        keys: vec![],
        orphans: [0, 0],
        day: 0,
        next_pw: 1,
        last: Ok(()),
    }
}

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = T;

    fn init_state() -> BoxedStrategy<Model> {
        Just(initial_model()).boxed()
    }

    fn transitions(m: &Model) -> BoxedStrategy<T> {
        let ns = m.stores.len();
        let nk = m.keys.len();
        let mut options: Vec<(u32, BoxedStrategy<T>)> = vec![
            (
                6,
                (0..2usize, 0..3usize)
                    .prop_map(|(cluster, name)| T::CreateStore { cluster, name })
                    .boxed(),
            ),
            (3, Just(T::CreateKey { store: None }).boxed()),
            (1, Just(T::CreateSigningKey).boxed()),
            (2, (1..12u32).prop_map(|days| T::Advance { days }).boxed()),
            (
                1,
                (0..2usize, any::<bool>())
                    .prop_map(|(cluster, on)| T::HsmsDown { cluster, on })
                    .boxed(),
            ),
            (
                1,
                (0..2usize, any::<bool>())
                    .prop_map(|(cluster, on)| T::NetworkDown { cluster, on })
                    .boxed(),
            ),
            (
                2,
                (0..2usize)
                    .prop_map(|cluster| T::ResetKmsuser { cluster })
                    .boxed(),
            ),
            (
                1,
                (0..2usize)
                    .prop_map(|cluster| T::LogoutElsewhere { cluster })
                    .boxed(),
            ),
            (1, Just(T::Restart).boxed()),
            (1, (0..5u8).prop_map(|kind| T::Bad { kind }).boxed()),
        ];
        let known: Vec<usize> = (0..2).filter(|c| m.clusters[*c].pw_known).collect();
        if !known.is_empty() {
            options.push((
                2,
                proptest::sample::select(known)
                    .prop_map(|cluster| T::LoginElsewhere { cluster })
                    .boxed(),
            ));
        }
        // Mostly target live stores and keys (the interesting cases), sometimes any, so deleted
        // ones keep being probed too.
        let live_stores: Vec<usize> = (0..ns).filter(|i| !m.stores[*i].deleted).collect();
        let live_keys: Vec<usize> = (0..nk).filter(|i| !m.keys[*i].deleted).collect();
        let pick = |live: Vec<usize>, n: usize| -> BoxedStrategy<usize> {
            if live.is_empty() {
                (0..n).boxed()
            } else {
                prop_oneof![9 => proptest::sample::select(live), 1 => 0..n].boxed()
            }
        };
        if ns > 0 {
            let st = || pick(live_stores.clone(), ns);
            options.extend([
                (8, st().prop_map(|store| T::Connect { store }).boxed()),
                (5, st().prop_map(|store| T::Disconnect { store }).boxed()),
                (4, st().prop_map(|store| T::Delete { store }).boxed()),
                (
                    2,
                    (st(), 0..3usize)
                        .prop_map(|(store, name)| T::Rename { store, name })
                        .boxed(),
                ),
                (
                    3,
                    st().prop_map(|store| T::UpdatePassword { store }).boxed(),
                ),
                (
                    8,
                    st().prop_map(|store| T::CreateKey { store: Some(store) })
                        .boxed(),
                ),
            ]);
        }
        if nk > 0 {
            let k = || pick(live_keys.clone(), nk);
            options.extend([
                (
                    3,
                    (k(), any::<bool>())
                        .prop_map(|(key, on)| T::SetEnabled { key, on })
                        .boxed(),
                ),
                (
                    4,
                    (k(), 7..11u32)
                        .prop_map(|(key, days)| T::Schedule { key, days })
                        .boxed(),
                ),
                (2, k().prop_map(|key| T::Cancel { key }).boxed()),
                (5, k().prop_map(|key| T::Crypto { key }).boxed()),
            ]);
        }
        proptest::strategy::Union::new_weighted(options).boxed()
    }

    fn preconditions(m: &Model, t: &T) -> bool {
        match t {
            T::Connect { store }
            | T::Disconnect { store }
            | T::Delete { store }
            | T::Rename { store, .. }
            | T::UpdatePassword { store }
            | T::CreateKey { store: Some(store) } => *store < m.stores.len(),
            T::SetEnabled { key, .. }
            | T::Schedule { key, .. }
            | T::Cancel { key }
            | T::Crypto { key } => *key < m.keys.len(),
            T::LoginElsewhere { cluster } => m.clusters[*cluster].pw_known,
            _ => true,
        }
    }

    fn apply(mut m: Model, t: &T) -> Model {
        m.last = Ok(());
        match *t {
            T::CreateStore { cluster, name } => {
                let name = NAMES[name];
                let pw = if m.clusters[cluster].pw_known {
                    m.clusters[cluster].pw
                } else {
                    STALE
                };
                let retry = m.stores.iter().any(|s| {
                    !s.deleted
                        && s.name == name
                        && s.cluster == cluster
                        && s.pw == pw
                        && s.state == St::Disconnected
                });
                if retry {
                    // An identical retry answers the existing store's ID.
                } else if live_store_named(&m, name, None) {
                    m.last = Err("CustomKeyStoreNameInUseException");
                } else if m.stores.iter().any(|s| !s.deleted && s.cluster == cluster) {
                    m.last = Err("CloudHsmClusterInUseException");
                } else if m.clusters[cluster].hsms_down {
                    m.last = Err("CloudHsmClusterInvalidConfigurationException");
                } else {
                    m.stores.push(RStore {
                        name: name.into(),
                        cluster,
                        state: St::Disconnected,
                        pw,
                        session_valid: false,
                        deleted: false,
                    });
                }
            }
            T::Connect { store } => {
                let s = &m.stores[store];
                if s.deleted {
                    m.last = Err("CustomKeyStoreNotFoundException");
                } else {
                    match s.state {
                        St::Failed(_) => m.last = Err("CustomKeyStoreInvalidStateException"),
                        St::Connected => {}
                        St::Disconnected => {
                            if m.clusters[s.cluster].hsms_down {
                                m.last = Err("CloudHsmClusterInvalidConfigurationException");
                            } else {
                                connect_outcome(&mut m, store, true);
                            }
                        }
                    }
                }
            }
            T::Disconnect { store } => {
                let s = &mut m.stores[store];
                if s.deleted {
                    m.last = Err("CustomKeyStoreNotFoundException");
                } else if s.state == St::Disconnected {
                    m.last = Err("CustomKeyStoreInvalidStateException");
                } else {
                    s.state = St::Disconnected;
                    s.session_valid = false;
                }
            }
            T::Delete { store } => {
                let has_keys = m.keys.iter().any(|k| !k.deleted && k.store == Some(store));
                let s = &mut m.stores[store];
                if s.deleted {
                    m.last = Err("CustomKeyStoreNotFoundException");
                } else if s.state != St::Disconnected {
                    m.last = Err("CustomKeyStoreInvalidStateException");
                } else if has_keys {
                    m.last = Err("CustomKeyStoreHasCMKsException");
                } else {
                    s.deleted = true;
                }
            }
            T::Rename { store, name } => {
                let name = NAMES[name];
                let s = &m.stores[store];
                if s.deleted {
                    m.last = Err("CustomKeyStoreNotFoundException");
                } else if !matches!(s.state, St::Connected | St::Disconnected) {
                    m.last = Err("CustomKeyStoreInvalidStateException");
                } else if live_store_named(&m, name, Some(store)) {
                    m.last = Err("CustomKeyStoreNameInUseException");
                } else {
                    m.stores[store].name = name.into();
                }
            }
            T::UpdatePassword { store } => {
                let s = &m.stores[store];
                let c = &m.clusters[s.cluster];
                let pw = if c.pw_known { c.pw } else { STALE };
                if s.deleted {
                    m.last = Err("CustomKeyStoreNotFoundException");
                } else if s.state != St::Disconnected {
                    m.last = Err("CustomKeyStoreInvalidStateException");
                } else {
                    m.stores[store].pw = pw;
                }
            }
            T::CreateKey { store: None } => m.keys.push(RKey {
                store: None,
                u: U::Enabled,
                deleted: false,
                signing: false,
            }),
            T::CreateSigningKey => m.keys.push(RKey {
                store: None,
                u: U::Enabled,
                deleted: false,
                signing: true,
            }),
            T::CreateKey { store: Some(store) } => {
                let s = &m.stores[store];
                let c = &m.clusters[s.cluster];
                if s.deleted {
                    m.last = Err("CustomKeyStoreNotFoundException");
                } else if s.state != St::Connected {
                    m.last = Err("CustomKeyStoreInvalidStateException");
                } else if c.hsms_down {
                    m.last = Err("CloudHsmClusterInvalidConfigurationException");
                } else if c.network_down {
                    m.last = Err("KMSInvalidStateException");
                } else {
                    m.keys.push(RKey {
                        store: Some(store),
                        u: U::Enabled,
                        deleted: false,
                        signing: false,
                    });
                }
            }
            T::SetEnabled { key, on } => {
                let k = &mut m.keys[key];
                if k.deleted {
                    m.last = Err("NotFoundException");
                } else if matches!(k.u, U::Pending(_)) {
                    m.last = Err("KMSInvalidStateException");
                } else {
                    k.u = if on { U::Enabled } else { U::Disabled };
                }
            }
            T::Schedule { key, days } => {
                let day = m.day;
                let k = &mut m.keys[key];
                if k.deleted {
                    m.last = Err("NotFoundException");
                } else if matches!(k.u, U::Pending(_)) {
                    m.last = Err("KMSInvalidStateException");
                } else {
                    k.u = U::Pending(day + days);
                }
            }
            T::Cancel { key } => {
                let k = &mut m.keys[key];
                if k.deleted {
                    m.last = Err("NotFoundException");
                } else if !matches!(k.u, U::Pending(_)) {
                    m.last = Err("KMSInvalidStateException");
                } else {
                    k.u = U::Disabled;
                }
            }
            T::Crypto { key } => {
                let k = &m.keys[key];
                m.last = if k.deleted {
                    Err("NotFoundException")
                } else {
                    match visible(&m, k) {
                        "PendingDeletion" | "Unavailable" => Err("KMSInvalidStateException"),
                        "Disabled" => Err("DisabledException"),
                        _ => match k.store {
                            Some(s) => {
                                let c = &m.clusters[m.stores[s].cluster];
                                if c.hsms_down || c.network_down {
                                    Err("KMSInvalidStateException")
                                } else {
                                    Ok(())
                                }
                            }
                            None => Ok(()),
                        },
                    }
                };
            }
            T::Advance { days } => {
                m.day += days;
                let day = m.day;
                for i in 0..m.keys.len() {
                    let k = &m.keys[i];
                    if k.deleted || !matches!(k.u, U::Pending(d) if d <= day) {
                        continue;
                    }
                    if let Some(s) = k.store {
                        let st = &m.stores[s];
                        let c = &m.clusters[st.cluster];
                        let destroyed = st.state == St::Connected
                            && st.session_valid
                            && !c.hsms_down
                            && !c.network_down;
                        if !destroyed {
                            m.orphans[st.cluster] += 1;
                        }
                    }
                    m.keys[i].deleted = true;
                }
            }
            T::HsmsDown { cluster, on } => m.clusters[cluster].hsms_down = on,
            T::NetworkDown { cluster, on } => m.clusters[cluster].network_down = on,
            T::ResetKmsuser { cluster } => {
                m.next_pw += 1;
                let c = &mut m.clusters[cluster];
                c.pw = m.next_pw;
                c.pw_known = true;
                c.failed = 0;
                c.locked = false;
                for s in m
                    .stores
                    .iter_mut()
                    .filter(|s| !s.deleted && s.cluster == cluster)
                {
                    if s.state == St::Connected {
                        s.session_valid = false;
                    }
                }
            }
            T::LoginElsewhere { cluster } => {
                let held = m
                    .stores
                    .iter()
                    .any(|s| !s.deleted && s.cluster == cluster && s.state == St::Connected);
                let c = &mut m.clusters[cluster];
                if c.locked || held {
                    m.last = Err("CloudHsmAccessDeniedException");
                } else {
                    c.elsewhere += 1;
                    c.failed = 0;
                }
            }
            T::LogoutElsewhere { cluster } => {
                let c = &mut m.clusters[cluster];
                if c.elsewhere == 0 {
                    m.last = Err("CloudHsmInvalidRequestException");
                } else {
                    c.elsewhere -= 1;
                }
            }
            T::Restart => {
                for s in 0..m.stores.len() {
                    if !m.stores[s].deleted && m.stores[s].state == St::Connected {
                        connect_outcome(&mut m, s, false);
                    }
                }
            }
            T::Bad { kind } => {
                m.last = Err(match kind {
                    0 => "CustomKeyStoreNotFoundException",
                    4 => "SerializationException",
                    _ => "ValidationException",
                });
            }
        }
        m
    }
}

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

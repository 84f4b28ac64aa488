//! The reference model of cks-sim's state-machine test: key stores, keys and two clusters
//! as plain data, the transitions a client (and the cluster's administrator) can make, what
//! each one must answer, and the proptest strategies that draw them
//! ([`proptest_state_machine::ReferenceStateMachine`]).
//!
//! cks-sim's own test (`tests/api/state_machine.rs`) drives a real server with these
//! transitions and compares it with [`Model`] after every step. Your code can be tested the
//! same way: draw transitions with [`Reference`], apply them to your system (which talks to a
//! [`super::Simulator`]) and to the model, and compare what both answer.
//!
//! ```
//! use cks_sim::testing::model::{Reference, T};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest_state_machine::ReferenceStateMachine;
//!
//! let mut runner = proptest::test_runner::TestRunner::deterministic();
//! let mut model = Reference::init_state().new_tree(&mut runner).unwrap().current();
//! for _ in 0..20 {
//!     let t = Reference::transitions(&model).new_tree(&mut runner).unwrap().current();
//!     if Reference::preconditions(&model, &t) {
//!         model = Reference::apply(model, &t);
//!     }
//! }
//! // What the last step must have answered: Ok, or the exception's name.
//! println!("{:?}", model.last);
//! assert_eq!(model.clusters.len(), 2);
//! assert_eq!(T::Restart.name(), "Restart");
//! ```
//!
//! Plain data, no I/O: if the model has bugs, it won't catch any.

use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

/// The key store names the transitions draw from (few, so that names collide).
pub const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];
/// The password epoch of a store created while kmsuser's current password was unknown.
pub const STALE: u32 = u32::MAX;

/// A key store's connection state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum St {
    /// `DISCONNECTED`.
    Disconnected,
    /// `CONNECTED`.
    Connected,
    /// `FAILED`, with its `ConnectionErrorCode`.
    Failed(&'static str),
}

/// A cluster as the model sees it.
#[derive(Clone, Debug)]
pub struct RCluster {
    /// Fault: no HSM answers.
    pub hsms_down: bool,
    /// Fault: the network to the cluster is down.
    pub network_down: bool,
    /// Epoch of kmsuser's current password.
    pub pw: u32,
    /// Whether the test knows kmsuser's current password (not after a connect rotated it).
    pub pw_known: bool,
    /// kmsuser's failed logins in a row.
    pub failed: u32,
    /// kmsuser is locked out.
    pub locked: bool,
    /// kmsuser's sessions outside KMS (logged in with the CloudHSM CLI).
    pub elsewhere: u32,
}

/// A key store as the model sees it.
#[derive(Clone, Debug)]
pub struct RStore {
    /// Its name.
    pub name: String,
    /// Its cluster (an index into [`Model::clusters`]).
    pub cluster: usize,
    /// Its connection state.
    pub state: St,
    /// The password epoch KMS holds for kmsuser.
    pub pw: u32,
    /// Whether KMS's login on the token is still valid.
    pub session_valid: bool,
    /// Deleted (the slot stays, so deleted stores keep being probed).
    pub deleted: bool,
}

/// A key's own state (the visible one also depends on its store: [`visible`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum U {
    /// Enabled.
    Enabled,
    /// Disabled.
    Disabled,
    /// Pending deletion until this day.
    Pending(u32),
}

/// A key as the model sees it.
#[derive(Clone, Debug)]
pub struct RKey {
    /// Its key store (`None`: an AWS_KMS key).
    pub store: Option<usize>,
    /// Its own state.
    pub u: U,
    /// Deleted (its deletion window ended).
    pub deleted: bool,
    /// An ECC_NIST_P256 SIGN_VERIFY key (its crypto is Sign and Verify).
    pub signing: bool,
}

/// The whole reference state.
#[derive(Clone, Debug)]
pub struct Model {
    /// The two clusters.
    pub clusters: Vec<RCluster>,
    /// Every key store created, in order (transitions name them by index).
    pub stores: Vec<RStore>,
    /// Every key created, in order.
    pub keys: Vec<RKey>,
    /// Orphans per cluster.
    pub orphans: [u32; 2],
    /// Days the clock has advanced.
    pub day: u32,
    /// The last password epoch handed out.
    pub next_pw: u32,
    /// The expected outcome of the last transition: `Ok(new store slot?)` or the error name.
    pub last: Result<(), &'static str>,
}

/// A transition: one request, fault or clock move. Its fields are slots of the model:
/// `store`, `key` and `cluster` index the model's stores, keys and clusters, `name` indexes
/// [`NAMES`], `days` is a waiting period or a clock move, `on` sets or clears, `kind` picks a
/// malformed request.
#[derive(Clone, Debug)]
#[allow(missing_docs)] // the fields, described above, mean the same in every variant
pub enum T {
    /// CreateCustomKeyStore.
    CreateStore { cluster: usize, name: usize },
    /// ConnectCustomKeyStore.
    Connect { store: usize },
    /// DisconnectCustomKeyStore.
    Disconnect { store: usize },
    /// DeleteCustomKeyStore.
    Delete { store: usize },
    /// UpdateCustomKeyStore with a new name.
    Rename { store: usize, name: usize },
    /// UpdateCustomKeyStore with kmsuser's current password.
    UpdatePassword { store: usize },
    /// CreateKey in a store, or an AWS_KMS key.
    CreateKey { store: Option<usize> },
    /// CreateKey of an ECC_NIST_P256 SIGN_VERIFY key.
    CreateSigningKey,
    /// EnableKey or DisableKey.
    SetEnabled { key: usize, on: bool },
    /// ScheduleKeyDeletion.
    Schedule { key: usize, days: u32 },
    /// CancelKeyDeletion.
    Cancel { key: usize },
    /// Encrypt and Decrypt (Sign and Verify for a signing key).
    Crypto { key: usize },
    /// Move the simulated clock.
    Advance { days: u32 },
    /// Set or clear the HSMs-down fault.
    HsmsDown { cluster: usize, on: bool },
    /// Set or clear the network-down fault.
    NetworkDown { cluster: usize, on: bool },
    /// The admin resets kmsuser's password.
    ResetKmsuser { cluster: usize },
    /// kmsuser logs in outside KMS.
    LoginElsewhere { cluster: usize },
    /// kmsuser logs out outside KMS.
    LogoutElsewhere { cluster: usize },
    /// Restart the server.
    Restart,
    /// A malformed request of some kind.
    Bad { kind: u8 },
}

impl T {
    /// The transition's name in coverage reports.
    pub fn name(&self) -> &'static str {
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

/// Whether a live store other than `except` is called `name`.
pub fn live_store_named(m: &Model, name: &str, except: Option<usize>) -> bool {
    m.stores
        .iter()
        .enumerate()
        .any(|(i, s)| !s.deleted && s.name == name && Some(i) != except)
}

/// The visible key state: `PendingDeletion` first, then `Unavailable` while its store is not
/// connected, else `Enabled` or `Disabled`.
pub fn visible(m: &Model, k: &RKey) -> &'static str {
    match (&k.u, k.store) {
        (U::Pending(_), _) => "PendingDeletion",
        (_, Some(s)) if m.stores[s].state != St::Connected => "Unavailable",
        (U::Enabled, _) => "Enabled",
        (U::Disabled, _) => "Disabled",
    }
}

/// The asynchronous connection checks, in the order KMS runs them: HSMs, network, lockout,
/// kmsuser logged in elsewhere, password.
pub fn connect_outcome(m: &mut Model, s: usize, rotate: bool) {
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

/// The reference state machine: [`Model`] and its transitions as proptest strategies.
pub struct Reference;

/// Two ACTIVE clusters with kmsuser, no store, no key.
#[must_use]
pub fn initial_model() -> Model {
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
        let (ns, nk) = (m.stores.len(), m.keys.len());
        let mut options = anytime_transitions();
        let known: Vec<usize> = (0..2).filter(|c| m.clusters[*c].pw_known).collect();
        if !known.is_empty() {
            options.push((
                2,
                proptest::sample::select(known)
                    .prop_map(|cluster| T::LoginElsewhere { cluster })
                    .boxed(),
            ));
        }
        if ns > 0 {
            let live: Vec<usize> = (0..ns).filter(|i| !m.stores[*i].deleted).collect();
            options.extend(store_transitions(|| pick(live.clone(), ns)));
        }
        if nk > 0 {
            let live: Vec<usize> = (0..nk).filter(|i| !m.keys[*i].deleted).collect();
            options.extend(key_transitions(|| pick(live.clone(), nk)));
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
        match t {
            T::CreateStore { .. } | T::Connect { .. } | T::Disconnect { .. } | T::Delete { .. } => {
                store_lifecycle(&mut m, t)
            }
            T::Rename { .. } | T::UpdatePassword { .. } => store_update(&mut m, t),
            T::CreateKey { .. }
            | T::CreateSigningKey
            | T::SetEnabled { .. }
            | T::Schedule { .. }
            | T::Cancel { .. } => key_management(&mut m, t),
            T::Crypto { .. } | T::Advance { .. } => key_use_and_clock(&mut m, t),
            T::HsmsDown { .. }
            | T::NetworkDown { .. }
            | T::ResetKmsuser { .. }
            | T::LoginElsewhere { .. }
            | T::LogoutElsewhere { .. }
            | T::Restart
            | T::Bad { .. } => cluster_and_process(&mut m, t),
        }
        m
    }
}

/// Weighted transition strategies.
type Options = Vec<(u32, BoxedStrategy<T>)>;

/// Transitions possible in any state: new stores and keys, the clock, faults, kmsuser outside
/// KMS, restarts and malformed requests.
fn anytime_transitions() -> Options {
    vec![
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
    ]
}

/// Mostly a live store or key (the interesting cases), sometimes any of the `n`, so deleted
/// ones keep being probed too.
fn pick(live: Vec<usize>, n: usize) -> BoxedStrategy<usize> {
    if live.is_empty() {
        (0..n).boxed()
    } else {
        prop_oneof![9 => proptest::sample::select(live), 1 => 0..n].boxed()
    }
}

/// Transitions on a store drawn by `st`.
fn store_transitions(st: impl Fn() -> BoxedStrategy<usize>) -> Options {
    vec![
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
    ]
}

/// Transitions on a key drawn by `k`.
fn key_transitions(k: impl Fn() -> BoxedStrategy<usize>) -> Options {
    vec![
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
    ]
}

/// CreateStore, Connect, Disconnect and Delete of a key store.
fn store_lifecycle(m: &mut Model, t: &T) {
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
            } else if live_store_named(m, name, None) {
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
                            connect_outcome(m, store, true);
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
        _ => {}
    }
}

/// UpdateCustomKeyStore: a new name or kmsuser's current password.
fn store_update(m: &mut Model, t: &T) {
    match *t {
        T::Rename { store, name } => {
            let name = NAMES[name];
            let s = &m.stores[store];
            if s.deleted {
                m.last = Err("CustomKeyStoreNotFoundException");
            } else if !matches!(s.state, St::Connected | St::Disconnected) {
                m.last = Err("CustomKeyStoreInvalidStateException");
            } else if live_store_named(m, name, Some(store)) {
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
        _ => {}
    }
}

/// CreateKey, EnableKey/DisableKey, ScheduleKeyDeletion and CancelKeyDeletion.
fn key_management(m: &mut Model, t: &T) {
    match *t {
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
        _ => {}
    }
}

/// Cryptography with a key, and the clock moving (deletions falling due).
fn key_use_and_clock(m: &mut Model, t: &T) {
    match *t {
        T::Crypto { key } => {
            let k = &m.keys[key];
            m.last = if k.deleted {
                Err("NotFoundException")
            } else {
                match visible(m, k) {
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
        _ => {}
    }
}

/// Faults, kmsuser outside KMS, restarts and malformed requests.
fn cluster_and_process(m: &mut Model, t: &T) {
    match *t {
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
                    connect_outcome(m, s, false);
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
        _ => {}
    }
}

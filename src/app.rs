//! `App`: the one shared handle (config, store, PKCS#11 module and tokens, the world, clock).
//!
//! The world (clusters, HSMs, users, key stores, keys, aliases, orphans) lives in memory
//! behind a `std::sync::RwLock` held only for short, non-async sections. Mutations are
//! serialised by `writer` (a `tokio::sync::Mutex`, held across HSM and store awaits: in a
//! simulator, determinism beats throughput) and go through [`App::commit`]: one SQLite
//! transaction first, memory second, so nothing acknowledged is lost and nothing half-done is
//! visible. Data-plane calls copy what they need under the read lock, drop it, then call the
//! HSM (D9).

use crate::cluster::model::{Backup, Cluster, Hsm, User};
use crate::cluster::objects::ObjectOwners;
use crate::config::{Config, ProvisionerKind};
use crate::hsm::{HsmError, Module, PinTemplate, Provisioner, Token};
use crate::kms::grants::model::Grant;
use crate::kms::model::{Alias, Key, KeyStore, Orphan};
use crate::names::{ClusterId, CustomKeyStoreId, HsmId};
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything the simulator knows, in memory.
#[derive(Debug, Default, Clone)]
pub struct World {
    /// Clusters by ID.
    pub clusters: BTreeMap<ClusterId, Cluster>,
    /// HSMs by ID.
    pub hsms: BTreeMap<HsmId, Hsm>,
    /// Users by `<cluster>/<name>`.
    pub users: BTreeMap<String, User>,
    /// Backups by ID.
    pub backups: BTreeMap<String, Backup>,
    /// Key stores by ID.
    pub stores: BTreeMap<CustomKeyStoreId, KeyStore>,
    /// Keys by [`Key::storage_id`] (the key ID, but for multi-Region keys), shared: a request
    /// takes a reference, not a copy of the policy and tags. Ordered, for ListKeys; look one
    /// up with [`World::key`].
    pub keys: BTreeMap<String, Arc<Key>>,
    /// The same keys by hash: a request's lookup of a key it has not used lately costs a few
    /// cache misses instead of a string comparison at every level of the ordered map (a
    /// profile of Encrypt cycling through 10,000 keys put about 1 µs per request there).
    keys_by_id: HashMap<String, Arc<Key>>,
    /// Aliases by [`Alias::storage_id`] (the name, in the default namespace).
    pub aliases: BTreeMap<String, Alias>,
    /// Orphans by sequence (zero-padded).
    pub orphans: BTreeMap<String, Orphan>,
    /// Grants by [`Grant::storage_id`] (`<key ARN>/<grant id>`: a key's grants are one range).
    pub grants: BTreeMap<String, Grant>,
    /// Owners and shares of token objects not simply owned by kmsuser, by
    /// `<cluster-id>/<object id hex>`.
    pub object_owners: BTreeMap<String, ObjectOwners>,
    /// Clock offset in seconds.
    pub clock_offset: f64,
    /// Keys pending deletion, ordered by deletion date (milliseconds) — so finding the due
    /// ones costs nothing on the request path, whatever the number of keys.
    pub pending: std::collections::BTreeSet<(i64, String)>,
    /// Keys whose materials change by the clock (an imported material expires, an automatic
    /// rotation falls due), ordered by when (milliseconds) with their storage IDs: see
    /// [`crate::kms::material::next_event`].
    pub material_events: std::collections::BTreeSet<(i64, String)>,
}

fn material_entry(k: &Key) -> Option<(i64, String)> {
    crate::kms::material::next_event(k)
        .map(|t| ((t.seconds() * 1000.0).floor() as i64, k.storage_id()))
}

fn pending_entry(k: &Key) -> Option<(i64, String)> {
    match (k.state, k.deletion_date) {
        (crate::kms::model::StoredKeyState::PendingDeletion, Some(d)) => {
            Some(((d.seconds() * 1000.0).floor() as i64, k.storage_id()))
        }
        _ => None,
    }
}

/// One change to the world, applied to SQLite and then to memory.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Change {
    Cluster(Cluster),
    DelCluster(ClusterId),
    Hsm(Hsm),
    DelHsm(HsmId),
    User(User),
    DelUser(String),
    Backup(Backup),
    Store(KeyStore),
    DelStore(String),
    Key(Key),
    /// Remove a key (by its [`Key::storage_id`]).
    DelKey(String),
    Alias(Alias),
    DelAlias(String),
    Orphan(Orphan),
    /// Remove an orphan record (by its store ID, the zero-padded sequence).
    DelOrphan(String),
    ObjectOwners(ObjectOwners),
    /// Forget the owners record of a token object (by `<cluster-id>/<object id hex>`).
    DelObjectOwners(String),
    Grant(Grant),
    /// Remove a grant (by its storage ID, `<key ARN>/<grant id>`).
    DelGrant(String),
    ClockOffset(f64),
}

/// The writer lock, held: proof that no other mutation runs (see [`App::lock_writer`]).
pub struct Writer<'a> {
    _held: tokio::sync::MutexGuard<'a, ()>,
}

#[derive(Serialize, Deserialize)]
struct ClockDoc {
    offset_seconds: f64,
}

/// The documents of one table, without their IDs.
fn docs<T: serde::de::DeserializeOwned>(
    store: &Store,
    table: Table,
) -> Result<impl Iterator<Item = T>, StoreError> {
    Ok(store.load::<T>(table)?.into_iter().map(|(_, x)| x))
}

pub(crate) fn orphan_id(seq: u64) -> String {
    format!("{seq:012}")
}

impl World {
    /// The key with this storage ID (see [`Key::storage_id`]).
    pub fn key(&self, id: &str) -> Option<&Arc<Key>> {
        self.keys_by_id.get(id)
    }

    /// Insert or replace a key, keeping the material-event and pending-deletion indexes.
    fn put_key(&mut self, x: Key) {
        if let Some(old) = self
            .keys
            .get(&x.storage_id())
            .and_then(|k| material_entry(k))
        {
            self.material_events.remove(&old);
        }
        if let Some(e) = material_entry(&x) {
            self.material_events.insert(e);
        }
        if let Some(e) = pending_entry(&x) {
            self.pending.insert(e);
        }
        let x = Arc::new(x);
        let sid = x.storage_id();
        self.keys_by_id.insert(sid.clone(), Arc::clone(&x));
        if let Some(old) = self.keys.insert(sid.clone(), x)
            && let Some(e) = pending_entry(&old)
            && self.keys.get(&sid).and_then(|k| pending_entry(k)).as_ref() != Some(&e)
        {
            self.pending.remove(&e);
        }
    }

    /// Remove a key and its index entries.
    fn remove_key(&mut self, id: &str) {
        self.keys_by_id.remove(id);
        if let Some(e) = self.keys.get(id).and_then(|k| material_entry(k)) {
            self.material_events.remove(&e);
        }
        if let Some(old) = self.keys.remove(id)
            && let Some(e) = pending_entry(&old)
        {
            self.pending.remove(&e);
        }
    }

    fn apply(&mut self, c: Change) {
        match c {
            Change::Cluster(x) => {
                self.clusters.insert(x.id.clone(), x);
            }
            Change::DelCluster(id) => {
                self.clusters.remove(&id);
            }
            Change::Hsm(x) => {
                self.hsms.insert(x.id.clone(), x);
            }
            Change::DelHsm(id) => {
                self.hsms.remove(&id);
            }
            Change::User(x) => {
                self.users.insert(x.key(), x);
            }
            Change::DelUser(id) => {
                self.users.remove(&id);
            }
            Change::Backup(x) => {
                self.backups.insert(x.id.clone(), x);
            }
            Change::Store(x) => {
                self.stores.insert(x.id.clone(), x);
            }
            Change::DelStore(id) => {
                self.stores.remove(&id);
            }
            Change::Key(x) => self.put_key(x),
            Change::DelKey(id) => self.remove_key(&id),
            Change::Alias(x) => {
                self.aliases.insert(x.storage_id(), x);
            }
            Change::DelAlias(id) => {
                self.aliases.remove(&id);
            }
            Change::Orphan(x) => {
                self.orphans.insert(orphan_id(x.seq), x);
            }
            Change::DelOrphan(id) => {
                self.orphans.remove(&id);
            }
            Change::ObjectOwners(x) => {
                self.object_owners.insert(x.key(), x);
            }
            Change::DelObjectOwners(id) => {
                self.object_owners.remove(&id);
            }
            Change::Grant(x) => {
                self.grants.insert(x.storage_id(), x);
            }
            Change::DelGrant(id) => {
                self.grants.remove(&id);
            }
            Change::ClockOffset(o) => self.clock_offset = o,
        }
    }

    /// Every record of the store, as the world starts with.
    fn load(store: &Store) -> Result<World, StoreError> {
        let mut changes: Vec<Change> = Vec::new();
        changes.extend(docs(store, Table::Clusters)?.map(Change::Cluster));
        changes.extend(docs(store, Table::Hsms)?.map(Change::Hsm));
        changes.extend(docs(store, Table::Users)?.map(Change::User));
        changes.extend(docs(store, Table::Backups)?.map(Change::Backup));
        changes.extend(docs(store, Table::KeyStores)?.map(Change::Store));
        changes.extend(docs(store, Table::Keys)?.map(Change::Key));
        changes.extend(docs(store, Table::Aliases)?.map(Change::Alias));
        changes.extend(docs(store, Table::Orphans)?.map(Change::Orphan));
        changes.extend(docs(store, Table::TokenObjects)?.map(Change::ObjectOwners));
        changes.extend(docs(store, Table::Grants)?.map(Change::Grant));
        let mut world = World::default();
        for c in changes {
            world.apply(c);
        }
        if let Some(c) = store.get::<ClockDoc>(Table::Meta, "clock")? {
            world.clock_offset = c.offset_seconds;
        }
        Ok(world)
    }

    /// Active HSMs of a cluster.
    pub fn active_hsms(&self, cluster_id: &str) -> Vec<&Hsm> {
        self.hsms
            .values()
            .filter(|h| {
                h.cluster_id == cluster_id && h.state == crate::cluster::model::HsmState::Active
            })
            .collect()
    }

    /// HSMs of a cluster (any state).
    pub fn cluster_hsms(&self, cluster_id: &str) -> Vec<&Hsm> {
        self.hsms
            .values()
            .filter(|h| h.cluster_id == cluster_id)
            .collect()
    }

    /// Users of a cluster.
    pub fn cluster_users(&self, cluster_id: &str) -> Vec<&User> {
        self.users
            .values()
            .filter(|u| u.cluster_id == cluster_id)
            .collect()
    }
}

fn batch_of(changes: &[Change]) -> Batch {
    let mut b = Batch::new();
    for c in changes {
        match c {
            Change::Cluster(x) => b.put(Table::Clusters, x.id.to_string(), x),
            Change::DelCluster(id) => b.delete(Table::Clusters, id.to_string()),
            Change::Hsm(x) => b.put(Table::Hsms, x.id.to_string(), x),
            Change::DelHsm(id) => b.delete(Table::Hsms, id.to_string()),
            Change::User(x) => b.put(Table::Users, x.key(), x),
            Change::DelUser(id) => b.delete(Table::Users, id.clone()),
            Change::Backup(x) => b.put(Table::Backups, x.id.clone(), x),
            Change::Store(x) => b.put(Table::KeyStores, x.id.clone(), x),
            Change::DelStore(id) => b.delete(Table::KeyStores, id.clone()),
            Change::Key(x) => b.put(Table::Keys, x.storage_id(), x),
            Change::DelKey(id) => b.delete(Table::Keys, id.clone()),
            Change::Alias(x) => b.put(Table::Aliases, x.storage_id(), x),
            Change::DelAlias(id) => b.delete(Table::Aliases, id.clone()),
            Change::Orphan(x) => b.put(Table::Orphans, orphan_id(x.seq), x),
            Change::DelOrphan(id) => b.delete(Table::Orphans, id.clone()),
            Change::ObjectOwners(x) => b.put(Table::TokenObjects, x.key(), x),
            Change::DelObjectOwners(id) => b.delete(Table::TokenObjects, id.clone()),
            Change::Grant(x) => b.put(Table::Grants, x.storage_id(), x),
            Change::DelGrant(id) => b.delete(Table::Grants, id.clone()),
            Change::ClockOffset(o) => b.put(Table::Meta, "clock", &ClockDoc { offset_seconds: *o }),
        };
    }
    b
}

/// Runtime-adjustable simulation settings.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Settings {
    /// Delay before an asynchronous connect completes.
    pub connect_delay_ms: u64,
    /// Delay before an asynchronous disconnect completes.
    pub disconnect_delay_ms: u64,
    /// Hold connect attempts in `CONNECTING` until released.
    pub hold_connections: bool,
}

/// The one shared handle.
#[derive(Debug)]
pub struct App {
    /// The configuration.
    pub config: Config,
    store: Arc<Store>,
    module: Module,
    provisioner: Provisioner,
    pin_template: PinTemplate,
    tokens: RwLock<HashMap<String, Arc<Token>>>,
    world: RwLock<World>,
    /// Serialises every mutation of the world.
    writer: tokio::sync::Mutex<()>,
    settings: Mutex<Settings>,
    /// Wakes held connection attempts.
    pub release: tokio::sync::Notify,
    internal_pin: String,
    /// The key grant tokens are signed with (`grant-token-key` in the data directory).
    grant_token_key: String,
    /// Key stores whose kmsuser session this process holds (a token login each).
    kms_sessions: Mutex<std::collections::HashSet<String>>,
    /// Steps where a test has asked the process to stop.
    pub failpoints: crate::failpoint::Failpoints,
    /// What the start-up reconciliation of tokens and metadata found.
    pub reconciliation: Mutex<crate::kms::reconcile::Report>,
    /// Permits of requests in flight (`server.max_connections` of them): a request holds one
    /// until its work ends, even after its client has gone.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// The bytes of request bodies held at once, in [`crate::protocol::body::BUDGET_UNIT`]s.
    pub body_budget: Arc<tokio::sync::Semaphore>,
}

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// HSM.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// Files.
    #[error("{0}")]
    Io(String),
}

impl App {
    /// Open the data dir, the store and the module; load the world. Blocking: call from
    /// `spawn_blocking` or before the runtime serves requests.
    pub fn open(config: Config) -> Result<Arc<Self>, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StartError::Io(format!(
                "cannot create data dir {}: {e}",
                config.data_dir.display()
            ))
        })?;
        lock_down(&config.data_dir);
        let store = Arc::new(Store::open_with(&config.db_path(), config.durability)?);
        lock_down_files(&config.data_dir);
        let path = crate::hsm::module::locate(config.module.as_deref())?;
        let module = Module::load(&path)?.with_thread_nice(config.thread_nice);
        let provisioner = match config.provisioner {
            ProvisionerKind::SoftToken => Provisioner::SoftToken,
            ProvisionerKind::None => Provisioner::None,
        };
        let internal_pin = match &config.internal_token_pin {
            Some(p) => p.clone(),
            None => read_or_create_secret(&config.data_dir.join("internal-token-pin"))?,
        };
        let grant_token_key = read_or_create_secret(&config.data_dir.join(GRANT_TOKEN_KEY_FILE))?;
        let world = World::load(&store)?;
        let settings = Settings {
            connect_delay_ms: config.connect_delay_ms,
            disconnect_delay_ms: config.disconnect_delay_ms,
            hold_connections: false,
        };
        Ok(Arc::new(App {
            pin_template: PinTemplate(config.pin_template.clone()),
            store,
            module,
            provisioner,
            tokens: RwLock::new(HashMap::new()),
            world: RwLock::new(world),
            writer: tokio::sync::Mutex::new(()),
            settings: Mutex::new(settings),
            release: tokio::sync::Notify::new(),
            internal_pin,
            grant_token_key,
            kms_sessions: Mutex::new(std::collections::HashSet::new()),
            failpoints: crate::failpoint::Failpoints::from_env(),
            reconciliation: Mutex::new(Default::default()),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.limits.max_connections)),
            body_budget: Arc::new(tokio::sync::Semaphore::new(
                config.limits.max_body_bytes_in_flight / crate::protocol::body::BUDGET_UNIT,
            )),
            config,
        }))
    }

    /// Read access to the world (short sections only; never across an await).
    pub fn world(&self) -> RwLockReadGuard<'_, World> {
        match self.world.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Take the writer lock: mutations run one at a time, and only its holder can commit.
    pub async fn lock_writer(&self) -> Writer<'_> {
        Writer {
            _held: self.writer.lock().await,
        }
    }

    /// Commit `changes`: one SQLite transaction, then memory. Only the holder of the writer
    /// lock can (its [`Writer`] is the proof).
    pub async fn commit(
        &self,
        _writer: &Writer<'_>,
        changes: Vec<Change>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let batch = batch_of(&changes);
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.apply(&batch))
            .await
            .map_err(|_| StoreError::Poisoned)??;
        let mut w = match self.world.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for c in changes {
            w.apply(c);
        }
        Ok(())
    }

    /// Now, on the simulated clock (wall clock + offset), to the millisecond as KMS reports.
    pub fn now(&self) -> crate::api::Timestamp {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        crate::api::Timestamp(((wall + self.world().clock_offset) * 1000.0).round() / 1000.0)
    }

    /// Requests in flight now (each holds a permit until its work ends).
    pub fn requests_in_flight(&self) -> usize {
        self.config
            .limits
            .max_connections
            .saturating_sub(self.in_flight.available_permits())
    }

    /// Bytes of request bodies held now (in whole budget units).
    pub fn body_bytes_in_flight(&self) -> usize {
        let total =
            self.config.limits.max_body_bytes_in_flight / crate::protocol::body::BUDGET_UNIT;
        total.saturating_sub(self.body_budget.available_permits())
            * crate::protocol::body::BUDGET_UNIT
    }

    /// Current settings.
    pub fn settings(&self) -> Settings {
        match self.settings.lock() {
            Ok(s) => *s,
            Err(p) => *p.into_inner(),
        }
    }

    /// Replace the settings.
    pub fn set_settings(&self, s: Settings) {
        if let Ok(mut g) = self.settings.lock() {
            *g = s;
        }
        if !s.hold_connections {
            self.release.notify_waiters();
        }
    }

    /// Record that key store `id` holds (`on`) or gave up (`!on`) its kmsuser login; returns
    /// whether it held one before.
    pub fn kms_login(&self, id: &str, on: bool) -> bool {
        let mut g = match self.kms_sessions.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if on {
            !g.insert(id.to_string())
        } else {
            g.remove(id)
        }
    }

    /// Whether key store `id` holds a kmsuser login in this process.
    pub fn has_kms_login(&self, id: &str) -> bool {
        self.kms_sessions
            .lock()
            .map(|g| g.contains(id))
            .unwrap_or(false)
    }

    /// The key grant tokens are signed with (never sent anywhere).
    pub fn grant_token_key(&self) -> &[u8] {
        self.grant_token_key.as_bytes()
    }

    /// The PKCS#11 module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The token provisioner.
    pub fn provisioner(&self) -> Provisioner {
        self.provisioner
    }

    /// Render a token PIN for `user`/`password` with the configured template.
    pub fn pin(&self, user: &str, password: &str) -> String {
        self.pin_template.render(user, password)
    }

    /// The label the module shows for the token asked for as `label`: a cluster ID names the
    /// cluster's token (its bound token's label, else the cluster ID itself); any other
    /// label is used as it is.
    pub fn token_label(&self, label: &str) -> String {
        self.world()
            .clusters
            .get(label)
            .map_or_else(|| label.to_string(), |c| c.token_label().to_string())
    }

    /// The token with `label` (a cluster ID names the cluster's token, see
    /// [`App::token_label`]), opened on first use (slot found by label). Clusters bound to
    /// the same token share one handle, and with it the token's login.
    pub async fn token(&self, label: &str) -> Result<Arc<Token>, HsmError> {
        let label = &self.token_label(label);
        if let Some(t) = self.tokens.read().ok().and_then(|m| m.get(label).cloned()) {
            return Ok(t);
        }
        let module = self.module.clone();
        let l = label.to_string();
        let max = self.config.max_sessions;
        let t = tokio::task::spawn_blocking(move || Token::open(&module, &l, max))
            .await
            .map_err(|e| HsmError::Worker(e.to_string()))??;
        let t = Arc::new(t);
        let mut m = self
            .tokens
            .write()
            .map_err(|e| HsmError::Worker(e.to_string()))?;
        Ok(Arc::clone(m.entry(label.to_string()).or_insert(t)))
    }

    /// Create a token for a cluster (soft tokens only). Blocking work runs off the runtime.
    pub async fn provision_token(
        &self,
        label: &str,
        so_pin: &str,
        user_pin: &str,
    ) -> Result<(), HsmError> {
        let (module, prov) = (self.module.clone(), self.provisioner);
        let (l, so, up) = (label.to_string(), so_pin.to_string(), user_pin.to_string());
        tokio::task::spawn_blocking(move || prov.ensure_token(&module, &l, &so, &up))
            .await
            .map_err(|e| HsmError::Worker(e.to_string()))?
    }

    /// The internal token of AWS_KMS keys, logged in.
    pub async fn internal_token(&self) -> Result<Arc<Token>, HsmError> {
        let label = self.config.internal_token_label.clone();
        let t = self.token(&label).await?;
        if !t.is_logged_in() {
            t.login(&self.pin(&self.config.internal_token_user, &self.internal_pin))
                .await?;
        }
        Ok(t)
    }

    /// Prepare the internal token at start-up.
    pub async fn start_internal_token(&self) -> Result<(), HsmError> {
        let label = self.config.internal_token_label.clone();
        if self.provisioner == Provisioner::SoftToken {
            let so = crate::ids::secret(24);
            self.provision_token(&label, &so, &self.internal_pin.clone())
                .await?;
        }
        self.internal_token().await.map(|_| ())
    }
}

/// The data directory holds PINs, passwords and the clusters' private keys: only its owner
/// may enter it (0700), whatever an older cks-sim or the umask left.
fn lock_down(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot make the data directory private");
    }
}

/// Files of the data directory that hold secrets, made readable by their owner only (0600);
/// directories of secrets (the soft tokens') made private (0700). Missing ones are skipped.
fn lock_down_files(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    const SECRET_FILES: [&str; 8] = [
        "cks-sim.sqlite",
        "cks-sim.sqlite-wal",
        "cks-sim.sqlite-shm",
        "internal-token-pin",
        GRANT_TOKEN_KEY_FILE,
        crate::cluster::seed::KMSUSER_PASSWORD_FILE,
        crate::cluster::seed::ADMIN_PASSWORD_FILE,
        crate::cluster::seed::CA_KEY_FILE,
    ];
    let private = |p: std::path::PathBuf, mode: u32| {
        if p.exists()
            && let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
        {
            tracing::warn!(file = %p.display(), error = %e, "cannot make a secret file private");
        }
    };
    for f in SECRET_FILES {
        private(dir.join(f), 0o600);
    }
    for d in ["tokens", "clusters"] {
        private(dir.join(d), 0o700);
    }
}

/// The file of the key grant tokens are signed with.
const GRANT_TOKEN_KEY_FILE: &str = "grant-token-key";

fn read_or_create_secret(path: &std::path::Path) -> Result<String, StartError> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let s = crate::ids::secret(24);
    write_private(path, &format!("{s}\n"))
        .map_err(|e| StartError::Io(format!("cannot write {}: {e}", path.display())))?;
    Ok(s)
}

/// Write a file only its owner can read (0600), on disk before this returns.
fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::{Change, World};
    use crate::kms::model::{Key, Origin, StoredKeyState};

    fn key(id: &str, description: &str) -> Key {
        Key {
            id: id.into(),
            arn: format!("arn:aws:kms:us-east-1:111122223333:key/{id}").into(),
            creation_date: crate::api::Timestamp(0.0),
            description: description.into(),
            origin: Origin::AwsKms,
            store_id: None,
            token_label: "kms-internal".into(),
            state: StoredKeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            tags: Default::default(),
            policy: String::new(),
            material: Default::default(),
            kind: Default::default(),
            multi_region: None,
        }
    }

    #[test]
    fn the_ordered_keys_and_the_lookup_by_id_stay_in_step() {
        let mut w = World::default();
        w.apply(Change::Key(key("b", "first")));
        w.apply(Change::Key(key("a", "other")));
        w.apply(Change::Key(key("b", "second")));
        assert_eq!(w.key("b").map(|k| k.description.as_str()), Some("second"));
        assert!(std::sync::Arc::ptr_eq(&w.keys["b"], w.key("b").unwrap()));
        assert_eq!(w.keys.keys().collect::<Vec<_>>(), ["a", "b"]);
        w.apply(Change::DelKey("b".into()));
        assert!(w.key("b").is_none() && !w.keys.contains_key("b"));
        assert!(w.key("a").is_some());
    }
}

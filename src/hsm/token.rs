//! One PKCS#11 token in domain words: AES-256 key objects, AES-GCM, random bytes, inspection.
//!
//! A `Token` owns a session pool on its slot, the key-id → handle index of D5 (built by one
//! scan when the simulator logs in, maintained on create/destroy, never searched on a request)
//! and a login count (PKCS#11 login state is per application and token, so the first holder
//! logs in and the last one logs out).

use super::error::{HsmError, HsmOp};
use super::module::Module;
use super::pool::{CallStats, SessionPool};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The `CKA_ID` of a key object: the KMS key ID's 16 bytes (D4).
pub type ObjectId = [u8; 16];

/// Length of the GCM IV we draw, in bytes.
pub const GCM_IV_LEN: usize = 12;
/// Length of the GCM tag, in bytes.
pub const GCM_TAG_LEN: usize = 16;
/// The most bytes one AES-GCM call takes or gives: the AWS CloudHSM library caps a single GCM
/// operation at 16 KiB, so a plaintext is at most this minus the tag (KMS never comes close:
/// 4 KiB plaintexts, 6 KiB ciphertext blobs).
pub const GCM_MAX_CALL: usize = 16 * 1024;

/// The object classes the simulator ever looks for. Every search names a class: some tokens
/// hold objects of their own (profiles, mechanisms, vendor classes) that an empty template
/// would return, and some libraries refuse or slow down on unfiltered searches.
const LISTED_CLASSES: [ObjectClass; 5] = [
    ObjectClass::SECRET_KEY,
    ObjectClass::PRIVATE_KEY,
    ObjectClass::PUBLIC_KEY,
    ObjectClass::CERTIFICATE,
    ObjectClass::DATA,
];

/// The classes of the key objects a KMS key is used through (the index holds these): a
/// secret key (AES, HMAC) or the private half of a key pair. A key pair's public half has the
/// same `CKA_ID` and is found by search when needed (see `asymmetric`).
const KEY_CLASSES: [ObjectClass; 2] = [ObjectClass::SECRET_KEY, ObjectClass::PRIVATE_KEY];

/// The IV used only for the known-answer fingerprint encryption (never for data).
const FINGERPRINT_IV: [u8; GCM_IV_LEN] = *b"cks-sim-fp\0\0";
const FINGERPRINT_AAD: &[u8] = b"cks-sim material fingerprint v1";

/// The result of an AES-GCM encryption.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The IV, read back from the mechanism parameter after the call (the CloudHSM library
    /// chooses the IV itself and writes it there).
    pub iv: Vec<u8>,
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// What an independent look at a token object shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// `CKA_CLASS`, e.g. "SECRET_KEY".
    pub class: String,
    /// `CKA_LABEL` as text (lossy).
    pub label: String,
    /// `CKA_ID` as lowercase hex.
    pub id: String,
    /// `CKA_KEY_TYPE`, e.g. "AES", when the object is a key.
    pub key_type: Option<String>,
    /// Fingerprint of the key material (AES secret keys only), see [`Token::fingerprint`].
    pub fingerprint: Option<String>,
    /// `CKA_EXTRACTABLE`, when the object has it.
    pub extractable: Option<bool>,
}

/// The D4 template of a KMS key's material: an AES-256 secret key, token, private,
/// sensitive, never extractable, encrypt/decrypt, `CKA_LABEL` = `label` (the key ARN),
/// `CKA_ID` = `id` (the key ID's 16 bytes).
pub fn key_template(label: &str, id: &ObjectId) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

/// How the user PIN is presented to `C_Login`: `{password}` for SoftHSM2 and kryoptic,
/// `{user}:{password}` for the AWS CloudHSM library.
#[derive(Debug, Clone)]
pub struct PinTemplate(pub String);

impl PinTemplate {
    /// Render the PIN for `user` with `password`.
    pub fn render(&self, user: &str, password: &str) -> String {
        self.0
            .replace("{user}", user)
            .replace("{password}", password)
    }
}

impl Default for PinTemplate {
    fn default() -> Self {
        PinTemplate("{password}".into())
    }
}

/// One token, found by label.
#[derive(Debug)]
pub struct Token {
    label: String,
    pub(super) module: Module,
    pub(super) pool: Arc<SessionPool>,
    /// The key index: one read lock and one hash lookup give a request its handle.
    index: RwLock<HashMap<ObjectId, Entry>>,
    login: Mutex<LoginState>,
    /// The module generation the login belongs to, + 1, while logged in; 0 when not. Written
    /// under the login lock, read without it (see [`Token::login_generation`]).
    login_gen: AtomicU64,
    /// Whether `C_CopyObject` works on this module (assumed at login, cleared on refusal).
    copy_ok: AtomicBool,
    /// What the token offers for key pairs and HMAC keys, asked once (see `asymmetric`).
    pub(super) offers: std::sync::OnceLock<Arc<super::asymmetric::Offers>>,
}

/// A key object in the index: the token object and, once made, its session copy.
#[derive(Debug, Clone, Copy)]
struct Entry {
    object: ObjectHandle,
    /// A session copy (`CKA_TOKEN=false`, made with `C_CopyObject` on the anchor session, so
    /// it lives exactly as long as the login): D7's fast path, since SoftHSM2 re-checks a
    /// token object's file on every use. None until the key's first use, and always when the
    /// module has no `C_CopyObject` (the AWS CloudHSM library): then the token object is used.
    copy: Option<ObjectHandle>,
}

impl Entry {
    fn object(object: ObjectHandle) -> Self {
        Entry { object, copy: None }
    }
}

#[derive(Debug, Default)]
struct LoginState {
    holders: u32,
    /// A session kept open while logged in: PKCS#11 ends the login when an application's last
    /// session on the token closes, and the pool may drop its sessions after a failure.
    anchor: Option<Session>,
    /// The PIN of the current login, to log in again after a module re-initialization.
    pin: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn pin(p: &str) -> AuthPin {
    AuthPin::from(p.to_string())
}

impl Token {
    /// Open the token labelled `label` on `module`. Blocking (slot lookup).
    pub fn open(module: &Module, label: &str, max_sessions: usize) -> Result<Self, HsmError> {
        let slot = module.find_token(label)?;
        Ok(Token {
            label: label.to_string(),
            module: module.clone(),
            pool: Arc::new(SessionPool::new(module.clone(), label, slot, max_sessions)),
            index: RwLock::new(HashMap::new()),
            login: Mutex::new(LoginState::default()),
            login_gen: AtomicU64::new(0),
            copy_ok: AtomicBool::new(true),
            offers: std::sync::OnceLock::new(),
        })
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Call counters of this token (every PKCS#11 call the simulator made on it).
    pub fn stats(&self) -> &CallStats {
        self.pool.stats()
    }

    /// Fault injection: make the token fail every call, or heal it.
    pub fn set_failing(&self, failing: bool) {
        self.pool.set_failing(failing);
    }

    /// Whether the token is made to fail.
    pub fn is_failing(&self) -> bool {
        self.pool.is_failing()
    }

    /// Whether the simulator is logged in as the token user.
    pub fn is_logged_in(&self) -> bool {
        self.login.lock().map(|l| l.holders > 0).unwrap_or(false)
    }

    /// Whether the simulator is logged in as the token user with exactly `user_pin` (a login
    /// under another PIN, or none, is `false`).
    pub fn logged_in_with(&self, user_pin: &str) -> bool {
        self.login
            .lock()
            .map(|l| l.holders > 0 && l.pin.as_deref() == Some(user_pin))
            .unwrap_or(false)
    }

    /// Log in as the token user with `user_pin` (one more holder), then build the key index if
    /// this was the first login. `CKR_USER_ALREADY_LOGGED_IN` is tolerated.
    pub async fn login(self: &Arc<Self>, user_pin: &str) -> Result<(), HsmError> {
        let me = Arc::clone(self);
        let p = user_pin.to_string();
        self.pool.offload(move || me.login_blocking(&p)).await
    }

    fn login_blocking(&self, user_pin: &str) -> Result<(), HsmError> {
        if self.pool.is_failing() {
            return Err(HsmError::InjectedFault);
        }
        let mut st = self
            .login
            .lock()
            .map_err(|e| HsmError::Worker(e.to_string()))?;
        if st.holders > 0 {
            st.holders += 1;
            return Ok(());
        }
        self.pool.stats().record(2);
        let (anchor, generation) = self.open_anchor(user_pin)?;
        st.anchor = Some(anchor);
        st.pin = Some(user_pin.to_string());
        st.holders = 1;
        self.copy_ok.store(true, Ordering::Relaxed);
        self.login_gen.store(generation + 1, Ordering::Release);
        drop(st);
        if let Err(e) = self.rebuild_index_blocking() {
            let _ = self.logout_blocking();
            return Err(e);
        }
        Ok(())
    }

    /// Open the anchor session and log in as the token user (`CKR_USER_ALREADY_LOGGED_IN` is
    /// fine: another handle of this process logged in first). Returns the session and the
    /// module generation it belongs to. Blocking.
    fn open_anchor(&self, user_pin: &str) -> Result<(Session, u64), HsmError> {
        let gate = self.module.enter();
        let anchor = self.pool.open_session()?;
        match anchor.login(UserType::User, Some(&pin(user_pin))) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => Ok((anchor, *gate)),
            Err(e) => {
                let _ = anchor.close();
                Err(HsmError::classify(HsmOp::Login, e))
            }
        }
    }

    /// Give up one login; the last holder logs out (`C_Logout`) and closes the anchor session.
    pub async fn logout(self: &Arc<Self>) -> Result<(), HsmError> {
        let me = Arc::clone(self);
        self.pool.offload(move || me.logout_blocking()).await
    }

    fn logout_blocking(&self) -> Result<(), HsmError> {
        let mut st = self
            .login
            .lock()
            .map_err(|e| HsmError::Worker(e.to_string()))?;
        match st.holders {
            0 => Ok(()),
            1 => {
                st.holders = 0;
                let stale = self.login_generation();
                self.login_gen.store(0, Ordering::Release);
                let anchor = st.anchor.take();
                st.pin = None;
                // The copies belong to the anchor session and go with it.
                if let Ok(mut idx) = self.index.write() {
                    idx.clear();
                }
                drop(st);
                if let Some(anchor) = anchor {
                    self.pool.stats().record(2);
                    let gate = self.module.enter();
                    if Some(*gate) != stale {
                        // The module was re-initialized: the login and the session are gone.
                        return Ok(());
                    }
                    let res = anchor.logout();
                    let _ = anchor.close();
                    drop(gate);
                    // Sessions opened while logged in stay "user" sessions until the app logs
                    // out; after C_Logout they are public sessions and may be reused.
                    match res {
                        Ok(())
                        | Err(cryptoki::error::Error::Pkcs11(
                            cryptoki::error::RvError::UserNotLoggedIn,
                            _,
                        )) => Ok(()),
                        Err(e) => Err(HsmError::classify(HsmOp::Logout, e)),
                    }
                } else {
                    Ok(())
                }
            }
            _ => {
                st.holders -= 1;
                Ok(())
            }
        }
    }

    /// The module generation the current login belongs to; None when not logged in.
    fn login_generation(&self) -> Option<u64> {
        self.login_gen.load(Ordering::Acquire).checked_sub(1)
    }

    /// Whether a login of this token predates a module re-initialization.
    fn is_stale(&self) -> bool {
        self.login_generation()
            .is_some_and(|g| g != self.module.generation())
    }

    /// After a module re-initialization, log in again (a new anchor session, the same PIN) and
    /// rebuild the key index (object handles are not stable across initializations). Blocking.
    fn ensure_current(&self) -> Result<(), HsmError> {
        if !self.is_stale() {
            return Ok(());
        }
        let mut st = self
            .login
            .lock()
            .map_err(|e| HsmError::Worker(e.to_string()))?;
        if !self.is_stale() {
            return Ok(());
        }
        let Some(user_pin) = st.pin.clone() else {
            return Ok(());
        };
        // The old anchor died with the old module instance (and its copies with it); do not
        // close its handle.
        if let Some(old) = st.anchor.take() {
            std::mem::forget(old);
        }
        // Every handle in the index belongs to the old instance: until the rebuild, requests
        // find nothing there and search the token instead.
        if let Ok(mut idx) = self.index.write() {
            idx.clear();
        }
        let (anchor, generation) = self.open_anchor(&user_pin)?;
        st.anchor = Some(anchor);
        self.login_gen.store(generation + 1, Ordering::Release);
        drop(st);
        tracing::info!(token = %self.label, "logged in again after the module was re-initialized");
        self.rebuild_index_blocking()
    }

    /// Run a job through the pool, logging in again first if the module was re-initialized.
    pub(super) async fn run<T, F>(
        self: &Arc<Self>,
        op: HsmOp,
        calls: u64,
        job: F,
    ) -> Result<T, HsmError>
    where
        F: FnOnce(&Session) -> Result<T, HsmError> + Send + 'static,
        T: Send + 'static,
    {
        let me = Arc::clone(self);
        self.pool
            .run_after(op, calls, move || me.ensure_current(), job)
            .await
    }

    /// Run `f` with a temporary login (for inspection while nobody else holds one).
    pub async fn with_login<T, F, Fut>(
        self: &Arc<Self>,
        user_pin: &str,
        f: F,
    ) -> Result<T, HsmError>
    where
        F: FnOnce(Arc<Self>) -> Fut,
        Fut: std::future::Future<Output = Result<T, HsmError>>,
    {
        self.login(user_pin).await?;
        let out = f(Arc::clone(self)).await;
        let lo = self.logout().await;
        let v = out?;
        lo?;
        Ok(v)
    }

    /// Re-scan the token's key objects (secret keys and private halves) into the index (one
    /// `C_FindObjects` pass per class).
    fn rebuild_index_blocking(&self) -> Result<(), HsmError> {
        let found = self.pool.run_blocking(HsmOp::Inspect, 2, |s| {
            let t0 = std::time::Instant::now();
            let mut handles = Vec::new();
            for class in KEY_CLASSES {
                handles.extend(
                    s.find_objects(&[Attribute::Class(class), Attribute::Token(true)])
                        .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?,
                );
            }
            tracing::debug!(token = %self.label, keys = handles.len(), took = ?t0.elapsed(), "index: key objects found");
            // SoftHSM2 checks an object's file on disk before each attribute read (~80 µs
            // here): most of a restart with 10,000 keys. Splitting the reads over two
            // sessions on two threads was tried and gained nothing (SoftHSM2 serialises them).
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                let attrs = s
                    .get_attributes(h, &[AttributeType::Id])
                    .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
                for a in attrs {
                    if let Attribute::Id(id) = a
                        && let Ok(id) = <ObjectId>::try_from(id.as_slice())
                    {
                        out.push((id, h));
                    }
                }
            }
            tracing::debug!(token = %self.label, took = ?t0.elapsed(), "index: ids read");
            Ok(out)
        })?;
        let mut idx = self
            .index
            .write()
            .map_err(|e| HsmError::Worker(e.to_string()))?;
        idx.clear();
        idx.extend(found.into_iter().map(|(id, h)| (id, Entry::object(h))));
        Ok(())
    }

    /// Number of session copies of key objects currently held (see [`Entry::copy`]).
    pub fn session_copies(&self) -> usize {
        self.index
            .read()
            .map(|i| i.values().filter(|e| e.copy.is_some()).count())
            .unwrap_or(0)
    }

    /// Number of key objects in the index.
    pub fn indexed_keys(&self) -> usize {
        self.index.read().map(|i| i.len()).unwrap_or(0)
    }

    /// The ids of every key object in the index (the token's secret keys with a 16-byte
    /// `CKA_ID`, as found at the last login and kept since).
    pub fn indexed_ids(&self) -> Vec<ObjectId> {
        self.index
            .read()
            .map(|i| i.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The label, class and id of the key object with this id (no fingerprint).
    pub async fn describe_key(self: &Arc<Self>, id: ObjectId) -> Result<ObjectInfo, HsmError> {
        let h = self.resolve(&id).await?;
        self.pool
            .run(HsmOp::Inspect, 1, move |s| {
                let attrs = s
                    .get_attributes(h, &[AttributeType::Label, AttributeType::Class])
                    .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
                let mut info = ObjectInfo {
                    class: String::new(),
                    label: String::new(),
                    id: hex(&id),
                    key_type: None,
                    fingerprint: None,
                    extractable: None,
                };
                for a in attrs {
                    match a {
                        Attribute::Label(l) => {
                            info.label = String::from_utf8_lossy(&l).into_owned()
                        }
                        Attribute::Class(c) => info.class = format!("{c}"),
                        _ => {}
                    }
                }
                Ok(info)
            })
            .await
    }

    /// Whether the index knows a key object with this id.
    pub fn has_key(&self, id: &ObjectId) -> bool {
        self.index
            .read()
            .map(|i| i.contains_key(id))
            .unwrap_or(false)
    }

    fn entry(&self, id: &ObjectId) -> Option<Entry> {
        self.index.read().ok().and_then(|i| i.get(id).copied())
    }

    /// Generate an AES-256 key object with the D4 template: token, private, sensitive,
    /// non-extractable, encrypt/decrypt, `CKA_LABEL` = `label`, `CKA_ID` = `id`.
    ///
    /// Labels and ids are kept unique by the caller (a key ARN and the key ID's bytes): no
    /// token refuses a duplicate label, so the token is never relied on for that. An id the
    /// index already holds is refused here, without a search.
    pub async fn generate_aes_key(
        self: &Arc<Self>,
        label: &str,
        id: ObjectId,
    ) -> Result<(), HsmError> {
        if self.has_key(&id) {
            return Err(HsmError::Pkcs11 {
                op: HsmOp::GenerateKey,
                detail: format!("a key object with id {} exists already", hex(&id)),
            });
        }
        let template = key_template(label, &id);
        let handle = self
            .run(HsmOp::GenerateKey, 1, move |s| {
                s.generate_key(&Mechanism::AesKeyGen, &template)
                    .map_err(|e| HsmError::classify(HsmOp::GenerateKey, e))
            })
            .await?;
        if let Ok(mut idx) = self.index.write() {
            idx.insert(id, Entry::object(handle));
        }
        Ok(())
    }

    /// Resolve a handle, re-resolving once by `CKA_ID` when the index has none (someone
    /// created it outside, or it was removed and re-created).
    pub(super) async fn resolve(self: &Arc<Self>, id: &ObjectId) -> Result<ObjectHandle, HsmError> {
        if self.is_stale() {
            let me = Arc::clone(self);
            self.pool.offload(move || me.ensure_current()).await?;
        }
        if let Some(e) = self.entry(id) {
            return Ok(e.object);
        }
        let idv = id.to_vec();
        let found = self
            .run(HsmOp::Inspect, KEY_CLASSES.len() as u64, move |s| {
                let mut found = Vec::new();
                for class in KEY_CLASSES {
                    found.extend(
                        s.find_objects(&[
                            Attribute::Class(class),
                            Attribute::Token(true),
                            Attribute::Id(idv.clone()),
                        ])
                        .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?,
                    );
                }
                Ok(found)
            })
            .await?;
        match found.as_slice() {
            [h] => {
                if let Ok(mut idx) = self.index.write() {
                    idx.insert(*id, Entry::object(*h));
                }
                Ok(*h)
            }
            _ => Err(HsmError::KeyNotFound { id: hex(id) }),
        }
    }

    /// Forget key `id`'s index entry (its handle proved stale): the next call searches.
    pub(super) fn forget_handle(&self, id: &ObjectId) {
        self.forget(id);
    }

    /// Note a key object just created in the index.
    pub(super) fn remember(&self, id: ObjectId, handle: ObjectHandle) {
        if let Ok(mut idx) = self.index.write() {
            idx.insert(id, Entry::object(handle));
        }
    }

    /// Forget an index entry whose handle proved stale (or whose object is gone); returns it.
    fn forget(&self, id: &ObjectId) -> Option<Entry> {
        self.index.write().ok().and_then(|mut idx| idx.remove(id))
    }

    /// The handle to use for cryptography with key `id`: its session copy, made on first use,
    /// or the token object itself when copies are unavailable. The common case (a copy
    /// exists, the login is current) takes one read lock and one hash lookup.
    pub(super) async fn working_handle(
        self: &Arc<Self>,
        id: ObjectId,
    ) -> Result<ObjectHandle, HsmError> {
        let copies = self.copy_ok.load(Ordering::Relaxed);
        if !self.is_stale()
            && let Some(e) = self.entry(&id)
        {
            match e.copy {
                Some(c) => return Ok(c),
                None if !copies => return Ok(e.object),
                None => {}
            }
        }
        let object = self.resolve(&id).await?;
        if !copies {
            return Ok(object);
        }
        let me = Arc::clone(self);
        match self
            .pool
            .offload(move || Ok(me.make_copy(id, object)))
            .await
        {
            Ok(Some(c)) => Ok(c),
            _ => Ok(object),
        }
    }

    /// Copy a key object into a session object on the anchor session and note it in the
    /// index. Blocking.
    fn make_copy(&self, id: ObjectId, token_handle: ObjectHandle) -> Option<ObjectHandle> {
        let st = self.login.lock().ok()?;
        if st.holders == 0 || !self.copy_ok.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(c) = self.entry(&id).and_then(|e| e.copy) {
            return Some(c);
        }
        let gate = self.module.enter();
        if Some(*gate) != self.login_generation() {
            return None;
        }
        let anchor = st.anchor.as_ref()?;
        self.pool.stats().record(1);
        match anchor.copy_object(token_handle, &[Attribute::Token(false)]) {
            Ok(c) => {
                let kept = self.index.write().ok().is_some_and(|mut idx| {
                    match idx.get_mut(&id) {
                        Some(e) if e.object == token_handle => {
                            e.copy = Some(c);
                            true
                        }
                        // The key was forgotten or re-resolved meanwhile: no copy of it.
                        _ => false,
                    }
                });
                if kept {
                    Some(c)
                } else {
                    self.pool.stats().record(1);
                    let _ = anchor.destroy_object(c);
                    None
                }
            }
            Err(e) => {
                tracing::warn!(token = %self.label, key = %hex(&id), error = %e, "no session copies of keys (C_CopyObject refused): using the token objects directly");
                self.copy_ok.store(false, Ordering::Relaxed);
                None
            }
        }
    }

    /// Destroy a session copy made on the anchor session. Blocking.
    fn drop_copy(&self, copy: ObjectHandle) {
        let Ok(st) = self.login.lock() else {
            return;
        };
        let gate = self.module.enter();
        if Some(*gate) == self.login_generation()
            && let Some(anchor) = st.anchor.as_ref()
        {
            self.pool.stats().record(1);
            let _ = anchor.destroy_object(copy);
        }
    }

    /// AES-256-GCM encrypt with `aad`, under a fresh 12-byte IV from `C_GenerateRandom`
    /// (SoftHSM2 and kryoptic take the caller's IV). The IV returned is read back from the
    /// mechanism parameter after the call: a module that chooses the IV itself (the AWS
    /// CloudHSM library) writes it there. One call, so at most [`GCM_MAX_CALL`] bytes out.
    pub async fn encrypt(
        self: &Arc<Self>,
        id: ObjectId,
        aad: Vec<u8>,
        plaintext: Vec<u8>,
    ) -> Result<Sealed, HsmError> {
        if plaintext.len() + GCM_TAG_LEN > GCM_MAX_CALL {
            return Err(HsmError::Pkcs11 {
                op: HsmOp::Encrypt,
                detail: format!(
                    "{} bytes is more than one AES-GCM call takes ({} with the tag)",
                    plaintext.len(),
                    GCM_MAX_CALL
                ),
            });
        }
        let h = self.working_handle(id).await?;
        let res = self
            .run(HsmOp::Encrypt, 2, move |s| {
                let mut iv = s
                    .generate_random_vec(GCM_IV_LEN as u32)
                    .map_err(|e| HsmError::classify(HsmOp::Random, e))?;
                let ct = {
                    let params = GcmParams::new(&mut iv, &aad, (GCM_TAG_LEN as u64 * 8).into())
                        .map_err(|e| HsmError::classify(HsmOp::Encrypt, e))?;
                    s.encrypt(&Mechanism::AesGcm(params), h, &plaintext)
                        .map_err(|e| HsmError::classify(HsmOp::Encrypt, e))?
                };
                Ok(Sealed { iv, ciphertext: ct })
            })
            .await;
        if let Err(HsmError::KeyNotFound { .. }) = res {
            self.forget(&id);
            return Err(HsmError::KeyNotFound { id: hex(&id) });
        }
        res
    }

    /// AES-256-GCM decrypt; any failure to authenticate is `CiphertextRejected`, whatever
    /// code the module returns for it (SoftHSM2 `CKR_GENERAL_ERROR`, kryoptic
    /// `CKR_ENCRYPTED_DATA_INVALID`), and so is a ciphertext longer than one GCM call takes.
    pub async fn decrypt(
        self: &Arc<Self>,
        id: ObjectId,
        mut iv: Vec<u8>,
        aad: Vec<u8>,
        ciphertext: Vec<u8>,
    ) -> Result<Vec<u8>, HsmError> {
        if ciphertext.len() > GCM_MAX_CALL {
            return Err(HsmError::CiphertextRejected {
                rv: cryptoki::error::RvError::EncryptedDataLenRange,
            });
        }
        let h = self.working_handle(id).await?;
        let res = self
            .run(HsmOp::Decrypt, 1, move |s| {
                let params = GcmParams::new(&mut iv, &aad, (GCM_TAG_LEN as u64 * 8).into())
                    .map_err(|e| HsmError::classify(HsmOp::Decrypt, e))?;
                s.decrypt(&Mechanism::AesGcm(params), h, &ciphertext)
                    .map_err(|e| HsmError::classify(HsmOp::Decrypt, e))
            })
            .await;
        if let Err(HsmError::KeyNotFound { .. }) = res {
            self.forget(&id);
            return Err(HsmError::KeyNotFound { id: hex(&id) });
        }
        res
    }

    /// `n` random bytes from `C_GenerateRandom`.
    pub async fn random(self: &Arc<Self>, n: usize) -> Result<Vec<u8>, HsmError> {
        let n = u32::try_from(n).map_err(|_| HsmError::Pkcs11 {
            op: HsmOp::Random,
            detail: "length too large".into(),
        })?;
        self.pool
            .run(HsmOp::Random, 1, move |s| {
                s.generate_random_vec(n)
                    .map_err(|e| HsmError::classify(HsmOp::Random, e))
            })
            .await
    }

    /// Destroy the key object with this id, and the public half of a key pair with it.
    pub async fn destroy(self: &Arc<Self>, id: ObjectId) -> Result<(), HsmError> {
        self.destroy_public_halves(id).await?;
        let h = self.resolve(&id).await?;
        self.pool
            .run(HsmOp::Destroy, 1, move |s| {
                s.destroy_object(h)
                    .map_err(|e| HsmError::classify(HsmOp::Destroy, e))
            })
            .await?;
        if let Some(copy) = self.forget(&id).and_then(|e| e.copy) {
            let me = Arc::clone(self);
            let _ = self
                .pool
                .offload(move || {
                    me.drop_copy(copy);
                    Ok(())
                })
                .await;
        }
        Ok(())
    }

    /// Fingerprint of a key object's material, computed through the token: hex of the tag of
    /// a known-answer AES-GCM encryption (fixed IV and AAD, empty plaintext). It is equal for
    /// the same material over time and differs for different material; it needs no
    /// `CKA_CHECK_VALUE` (which some tokens lack) and reveals nothing about the key.
    pub async fn fingerprint(self: &Arc<Self>, id: ObjectId) -> Result<String, HsmError> {
        let h = self.resolve(&id).await?;
        self.pool
            .run(HsmOp::Inspect, 1, move |s| fingerprint_of(s, h))
            .await
    }

    /// Every key, certificate and data object visible to the current login, with labels, ids
    /// and fingerprints (one search per class: never an unfiltered search).
    pub async fn list_objects(self: &Arc<Self>) -> Result<Vec<ObjectInfo>, HsmError> {
        self.pool
            .run(HsmOp::Inspect, LISTED_CLASSES.len() as u64, |s| {
                let mut out = Vec::new();
                for class in LISTED_CLASSES {
                    let handles = s
                        .find_objects(&[Attribute::Class(class), Attribute::Token(true)])
                        .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
                    for h in handles {
                        out.push(describe_object(s, h)?);
                    }
                }
                out.sort_by(|a, b| (&a.label, &a.id).cmp(&(&b.label, &b.id)));
                Ok(out)
            })
            .await
    }

    /// Change the token user's PIN from `old` to `new` with `C_SetPIN` in a session that is
    /// not logged in as SO (a logged-in or public read-write session changes the user PIN).
    pub async fn set_user_pin(self: &Arc<Self>, old: &str, new: &str) -> Result<(), HsmError> {
        let (old, new) = (pin(old), pin(new));
        self.pool
            .run(HsmOp::Provision, 1, move |s| {
                s.set_pin(&old, &new)
                    .map_err(|e| HsmError::classify(HsmOp::Provision, e))
            })
            .await
    }

    /// Check a user PIN without keeping a login: `C_Login` then `C_Logout` on a fresh session.
    /// Only valid while nobody holds a login (PKCS#11 login state is per application).
    pub async fn check_user_pin(self: &Arc<Self>, user_pin: &str) -> Result<(), HsmError> {
        let me = Arc::clone(self);
        let p = user_pin.to_string();
        self.pool
            .offload(move || {
                me.login_blocking(&p)?;
                me.logout_blocking()
            })
            .await
    }
}

/// The material fingerprint (see [`Token::fingerprint`]): the tag of a known-answer GCM
/// encryption under a fixed IV. A module that refuses a caller's IV, or silently replaces it
/// (the AWS CloudHSM library writes its own IV into the parameter), gives no stable tag: then
/// the standard `CKA_CHECK_VALUE` is used, marked `kcv:` so the two never compare equal.
fn fingerprint_of(s: &Session, h: ObjectHandle) -> Result<String, HsmError> {
    let mut iv = FINGERPRINT_IV;
    let tag = {
        let params = GcmParams::new(&mut iv, FINGERPRINT_AAD, (GCM_TAG_LEN as u64 * 8).into())
            .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
        s.encrypt(&Mechanism::AesGcm(params), h, &[])
    };
    match tag {
        Ok(tag) if iv == FINGERPRINT_IV => Ok(hex(&tag)),
        _ => {
            let attrs = s
                .get_attributes(h, &[AttributeType::CheckValue])
                .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
            attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::CheckValue(v) => Some(format!("kcv:{}", hex(&v))),
                    _ => None,
                })
                .ok_or_else(|| HsmError::Pkcs11 {
                    op: HsmOp::Inspect,
                    detail: "token offers neither a fixed-IV GCM nor CKA_CHECK_VALUE".into(),
                })
        }
    }
}

fn describe_object(s: &Session, h: ObjectHandle) -> Result<ObjectInfo, HsmError> {
    let attrs = s
        .get_attributes(
            h,
            &[
                AttributeType::Class,
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::KeyType,
                AttributeType::Extractable,
            ],
        )
        .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
    let mut info = ObjectInfo {
        class: String::new(),
        label: String::new(),
        id: String::new(),
        key_type: None,
        fingerprint: None,
        extractable: None,
    };
    let mut is_aes_secret = (false, false);
    for a in attrs {
        match a {
            Attribute::Class(c) => {
                is_aes_secret.0 = c == ObjectClass::SECRET_KEY;
                info.class = format!("{c}");
            }
            Attribute::Label(l) => info.label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(i) => info.id = hex(&i),
            Attribute::KeyType(k) => {
                is_aes_secret.1 = k == KeyType::AES;
                info.key_type = Some(format!("{k}"));
            }
            Attribute::Extractable(e) => info.extractable = Some(e),
            _ => {}
        }
    }
    if is_aes_secret == (true, true) {
        info.fingerprint = fingerprint_of(s, h).ok();
    }
    Ok(info)
}

/// A key object's attributes as the CloudHSM CLI shows them (see [`Token::list_key_attributes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttributes {
    /// `CKA_ID`, raw.
    pub id: Vec<u8>,
    /// `CKA_LABEL` as text (lossy).
    pub label: String,
    /// `CKA_CLASS`: `SECRET_KEY`, `PUBLIC_KEY` or `PRIVATE_KEY`.
    pub class: String,
    /// `CKA_KEY_TYPE`, e.g. `AES`.
    pub key_type: Option<String>,
    /// `CKA_CHECK_VALUE`, when the token keeps one.
    pub check_value: Option<Vec<u8>>,
    /// `CKA_VALUE_LEN` (secret keys), in bytes.
    pub value_len: Option<u64>,
    /// The boolean attributes the token answered, by PKCS#11 name in snake case
    /// (`encrypt`, `never_extractable`, …), in a fixed order.
    pub flags: Vec<(&'static str, bool)>,
}

/// The boolean attributes [`Token::list_key_attributes`] reads.
const KEY_FLAGS: [(AttributeType, &str); 17] = [
    (AttributeType::AlwaysSensitive, "always_sensitive"),
    (AttributeType::Decrypt, "decrypt"),
    (AttributeType::Derive, "derive"),
    (AttributeType::Destroyable, "destroyable"),
    (AttributeType::Encrypt, "encrypt"),
    (AttributeType::Extractable, "extractable"),
    (AttributeType::Local, "local"),
    (AttributeType::Modifiable, "modifiable"),
    (AttributeType::NeverExtractable, "never_extractable"),
    (AttributeType::Private, "private"),
    (AttributeType::Sensitive, "sensitive"),
    (AttributeType::Sign, "sign"),
    (AttributeType::Token, "token"),
    (AttributeType::Trusted, "trusted"),
    (AttributeType::Unwrap, "unwrap"),
    (AttributeType::Verify, "verify"),
    (AttributeType::Wrap, "wrap"),
];

/// The key classes [`Token::list_key_attributes`] looks for.
const CLI_KEY_CLASSES: [ObjectClass; 3] = [
    ObjectClass::SECRET_KEY,
    ObjectClass::PRIVATE_KEY,
    ObjectClass::PUBLIC_KEY,
];

impl Token {
    /// Every key object on the token (secret, private and public token keys), with the
    /// attributes a key listing shows. Needs a login (see [`Token::with_login`]).
    pub async fn list_key_attributes(self: &Arc<Self>) -> Result<Vec<KeyAttributes>, HsmError> {
        self.run(HsmOp::Inspect, CLI_KEY_CLASSES.len() as u64, |s| {
            let mut out = Vec::new();
            for class in CLI_KEY_CLASSES {
                let handles = s
                    .find_objects(&[Attribute::Class(class), Attribute::Token(true)])
                    .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
                for h in handles {
                    out.push(key_attributes_of(s, h)?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Generate a persistent AES secret key of `len_bytes` (16, 24 or 32) bytes with
    /// `CKA_LABEL` = `label` and `CKA_ID` = `id`: token, private, sensitive, extractable,
    /// encrypt/decrypt/wrap/unwrap (the CloudHSM CLI's `key generate-symmetric aes`).
    pub async fn generate_aes_key_of_length(
        self: &Arc<Self>,
        label: &str,
        id: ObjectId,
        len_bytes: u64,
    ) -> Result<(), HsmError> {
        if self.has_key(&id) {
            return Err(HsmError::Pkcs11 {
                op: HsmOp::GenerateKey,
                detail: format!("a key object with id {} exists already", hex(&id)),
            });
        }
        let template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(len_bytes.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let handle = self
            .run(HsmOp::GenerateKey, 1, move |s| {
                s.generate_key(&Mechanism::AesKeyGen, &template)
                    .map_err(|e| HsmError::classify(HsmOp::GenerateKey, e))
            })
            .await?;
        if let Ok(mut idx) = self.index.write() {
            idx.insert(id, Entry::object(handle));
        }
        Ok(())
    }
}

fn key_attributes_of(s: &Session, h: ObjectHandle) -> Result<KeyAttributes, HsmError> {
    let mut wanted = vec![
        AttributeType::Class,
        AttributeType::Label,
        AttributeType::Id,
        AttributeType::KeyType,
        AttributeType::CheckValue,
        AttributeType::ValueLen,
    ];
    wanted.extend(KEY_FLAGS.iter().map(|(t, _)| *t));
    let attrs = s
        .get_attributes(h, &wanted)
        .map_err(|e| HsmError::classify(HsmOp::Inspect, e))?;
    let mut out = KeyAttributes {
        id: Vec::new(),
        label: String::new(),
        class: String::new(),
        key_type: None,
        check_value: None,
        value_len: None,
        flags: Vec::new(),
    };
    let mut flags: HashMap<AttributeType, bool> = HashMap::new();
    for a in attrs {
        match a {
            Attribute::Class(c) => out.class = format!("{c}"),
            Attribute::Label(l) => out.label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(i) => out.id = i,
            Attribute::KeyType(k) => out.key_type = Some(format!("{k}")),
            Attribute::CheckValue(v) => out.check_value = Some(v),
            Attribute::ValueLen(n) => out.value_len = Some(u64::from(n)),
            other => {
                if let Some(b) = bool_of(&other) {
                    flags.insert(other.attribute_type(), b);
                }
            }
        }
    }
    out.flags = KEY_FLAGS
        .iter()
        .filter_map(|(t, name)| flags.get(t).map(|b| (*name, *b)))
        .collect();
    Ok(out)
}

fn bool_of(a: &Attribute) -> Option<bool> {
    match a {
        Attribute::AlwaysSensitive(b)
        | Attribute::Decrypt(b)
        | Attribute::Derive(b)
        | Attribute::Destroyable(b)
        | Attribute::Encrypt(b)
        | Attribute::Extractable(b)
        | Attribute::Local(b)
        | Attribute::Modifiable(b)
        | Attribute::NeverExtractable(b)
        | Attribute::Private(b)
        | Attribute::Sensitive(b)
        | Attribute::Sign(b)
        | Attribute::Token(b)
        | Attribute::Trusted(b)
        | Attribute::Unwrap(b)
        | Attribute::Verify(b)
        | Attribute::Wrap(b) => Some(*b),
        _ => None,
    }
}

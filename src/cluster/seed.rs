//! Seeding (D15): the default cluster a newcomer gets on first start, and TOML seed files.
//!
//! Both build clusters the real way — `CreateCluster`, the customer signs the CSR with a CA,
//! `InitializeCluster`, activation, `CreateHsm` per AZ, users — through the same functions
//! the cloudhsmv2 door and the control door use. Applying a seed twice changes nothing.
//!
//! Files written to the data directory by [`apply_default`]:
//!
//! | File | Content |
//! | --- | --- |
//! | `default-cluster-id` | the default cluster's ID |
//! | `kmsuser-password` | `kmsuser`'s password at seeding time (KMS rotates it on connect) |
//! | `customerCA.crt` | the customer CA certificate, PEM: the key store's trust anchor |
//! | `customerCA.key` | the customer CA's private key, PEM |
//! | `admin-password` | the cluster admin's password |
//!
//! [`apply_file`] keeps a random `seed-id-salt` (for the IDs of clusters declared without
//! one) and writes `clusters/<cluster-id>/customerCA.crt` (and `customerCA.key` and
//! `admin-password` when it generated them) for each cluster it creates.
//!
//! Not here: key stores and keys in seed files (the KMS layer reads its own sections of the
//! same file; this module ignores every top-level table but `[[cluster]]`).

use super::api::{self, NewCluster, effective_state};
use super::certs::{self, CustomerCa};
use super::error::{CloudHsmError, CloudHsmErrorKind};
use super::model::{BoundToken, ClusterState, KMSUSER, Role, user_key};
use super::users;
use crate::app::App;
use crate::ids;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Records which cluster the default seed made.
pub const DEFAULT_CLUSTER_FILE: &str = "default-cluster-id";
/// `kmsuser`'s password.
pub const KMSUSER_PASSWORD_FILE: &str = "kmsuser-password";
/// The customer CA certificate (trust anchor).
pub const CA_CERT_FILE: &str = "customerCA.crt";
/// The customer CA private key.
pub const CA_KEY_FILE: &str = "customerCA.key";
/// The admin's password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// The data directory's salt for derived seed cluster IDs.
pub const SEED_SALT_FILE: &str = "seed-id-salt";

/// What one cluster of a seed should look like.
#[derive(Debug, Clone)]
struct Plan {
    id: Option<String>,
    azs: usize,
    hsms: usize,
    hsm_type: Option<String>,
    mode: Option<String>,
    admin_password: Option<String>,
    ca: Option<CustomerCa>,
    tags: Vec<(String, String)>,
    bound_token: Option<BoundToken>,
}

/// What building a cluster produced.
#[derive(Debug, Clone)]
struct Built {
    id: String,
    ca: CustomerCa,
    ca_generated: bool,
    admin_password: String,
    admin_generated: bool,
}

/// Create, initialize and activate a cluster with its HSMs, the way a customer does.
async fn build_cluster(app: &Arc<App>, plan: Plan) -> Result<Built, CloudHsmError> {
    let c = api::create_cluster(
        app,
        NewCluster {
            id: plan.id,
            subnet_ids: (0..plan.azs).map(|_| ids::subnet_id()).collect(),
            hsm_type: plan.hsm_type,
            mode: plan.mode,
            network_type: None,
            source_backup_id: None,
            tags: plan.tags,
            bound_token: plan.bound_token,
        },
    )
    .await?;
    let (ca, ca_generated) = match plan.ca {
        Some(ca) => (ca, false),
        None => (
            certs::new_customer_ca("customerCA").map_err(CloudHsmError::internal)?,
            true,
        ),
    };
    let signed =
        certs::sign_csr(&ca, &c.csr_pem).map_err(|e| CloudHsmError::invalid(e.to_string()))?;
    api::initialize_cluster(app, &c.id, &signed, &ca.cert_pem).await?;
    let (admin_password, admin_generated) = match plan.admin_password {
        Some(p) => (p, false),
        None => (ids::secret(16), true),
    };
    users::activate(app, &c.id, &admin_password).await?;
    let azs: Vec<String> = c.subnet_mapping.keys().cloned().collect();
    for i in 0..plan.hsms {
        if let Some(az) = azs.get(i % azs.len().max(1)) {
            api::create_hsm(app, &c.id, az, None).await?;
        }
    }
    tracing::info!(cluster = %c.id, azs = plan.azs, hsms = plan.hsms, "seeded cluster");
    Ok(Built {
        id: c.id.to_string(),
        ca,
        ca_generated,
        admin_password,
        admin_generated,
    })
}

/// The default seed: if the world has no cluster, create one `ACTIVE` cluster with two
/// subnets in two AZs, a customer CA, an admin with a random password, two HSMs (one per AZ)
/// and the crypto user `kmsuser` with a random 16-character alphanumeric password; then write
/// the files listed in the module documentation into the data directory.
///
/// With clusters present nothing changes, except that missing files of the default cluster
/// are rewritten when their content is still known: `customerCA.crt` (its trust anchor) and
/// `kmsuser-password` (`kmsuser`'s current password, which is the token PIN by D3). The CA
/// key and the admin password cannot be recovered.
///
/// # Errors
///
/// Whatever creating the cluster returns (e.g. `CloudHsmInternalFailureException` when the
/// token cannot be created), or `CloudHsmInternalFailureException` naming a file that cannot
/// be written.
pub async fn apply_default(app: &Arc<App>) -> Result<(), CloudHsmError> {
    let dir = app.config.data_dir.clone();
    if !app.world().clusters.is_empty() {
        return rewrite_known_files(app, &dir).await;
    }
    let built = build_cluster(
        app,
        Plan {
            id: None,
            azs: 2,
            hsms: 2,
            hsm_type: None,
            mode: None,
            admin_password: None,
            ca: None,
            tags: Vec::new(),
            bound_token: None,
        },
    )
    .await?;
    let kmsuser_password = ids::secret(16);
    users::create_user(app, &built.id, KMSUSER, Role::CryptoUser, &kmsuser_password).await?;
    let files = vec![
        (
            dir.join(DEFAULT_CLUSTER_FILE),
            format!("{}\n", built.id),
            false,
        ),
        (dir.join(CA_CERT_FILE), built.ca.cert_pem.clone(), false),
        (
            dir.join(CA_KEY_FILE),
            built.ca.private_key_pem.clone(),
            true,
        ),
        (
            dir.join(ADMIN_PASSWORD_FILE),
            format!("{}\n", built.admin_password),
            true,
        ),
        (
            dir.join(KMSUSER_PASSWORD_FILE),
            format!("{kmsuser_password}\n"),
            true,
        ),
    ];
    write_files(files, false).await?;
    tracing::info!(
        cluster = %built.id,
        dir = %dir.display(),
        "default cluster ready: trust anchor in {CA_CERT_FILE}, kmsuser password in {KMSUSER_PASSWORD_FILE}"
    );
    Ok(())
}

/// The default cluster's ID (from its marker file in the data directory), if it still exists.
pub fn default_cluster_id(app: &App) -> Option<String> {
    let id = std::fs::read_to_string(app.config.data_dir.join(DEFAULT_CLUSTER_FILE)).ok()?;
    let id = id.trim().to_string();
    app.world().clusters.contains_key(&id).then_some(id)
}

/// Rewrite the default cluster's missing files whose content is still known.
async fn rewrite_known_files(app: &Arc<App>, dir: &Path) -> Result<(), CloudHsmError> {
    let marker = dir.join(DEFAULT_CLUSTER_FILE);
    let Some(id) = blocking(move || Ok(std::fs::read_to_string(&marker).ok()))
        .await?
        .map(|s| s.trim().to_string())
    else {
        return Ok(());
    };
    let (anchor, kmsuser_pin) = {
        let w = app.world();
        let Some(c) = w.clusters.get(&id) else {
            return Ok(());
        };
        let kmsuser = w.users.contains_key(&user_key(&id, KMSUSER));
        (
            c.trust_anchor.clone(),
            kmsuser.then(|| c.token_user_pin.clone()),
        )
    };
    let mut files = Vec::new();
    if let Some(a) = anchor {
        files.push((dir.join(CA_CERT_FILE), a, false));
    }
    if let Some(p) = kmsuser_pin {
        files.push((dir.join(KMSUSER_PASSWORD_FILE), format!("{p}\n"), true));
    }
    write_files(files, true).await
}

/// A seed file: `[[cluster]]` tables (other top-level tables are left to other layers).
///
/// ```toml
/// [[cluster]]
/// id = "cluster-234abcdefabc"   # optional; else derived from the table's position and
///                               #   the data directory's salt
/// azs = 2                       # subnets/AZs, 1–10 (default 2)
/// hsms = 2                      # HSMs spread over the AZs, 0–28 (default: azs)
/// admin_password = "Admin123"   # optional; else random, written to clusters/<id>/admin-password
/// hsm_type = "hsm2m.medium"     # optional
/// mode = "FIPS"                 # optional
/// ca_cert = "ca.crt"            # optional customer CA (PEM files, relative to the seed file);
/// ca_key = "ca.key"             #   else one is generated
/// tags = { team = "crypto" }    # optional
///
/// [cluster.token]               # optional: bind the cluster to an existing token
/// label = "lab-hsm"             #   found by label; never initialized by cks-sim
/// rotate_password = false       #   C_SetPIN on kmsuser's password changes (default false)
///
/// [[cluster.user]]
/// name = "kmsuser"
/// role = "crypto-user"          # or "admin" (default crypto-user)
/// password = "kmsPswd123"       # on a bound token: its user PIN through [hsm] pin_template
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SeedFile {
    /// The clusters.
    #[serde(default)]
    pub cluster: Vec<SeedCluster>,
}

/// One `[[cluster]]` of a seed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCluster {
    /// A fixed cluster ID; absent: `cluster-` + 16 characters derived from the position of the
    /// table in the file and the data directory's salt ([`derived_cluster_id`]), so applying
    /// the same file again finds the same cluster.
    pub id: Option<String>,
    /// Number of subnets (one per AZ), 1–10.
    #[serde(default = "two")]
    pub azs: usize,
    /// Number of HSMs (round-robin over the AZs), 0–28; default `azs`.
    pub hsms: Option<usize>,
    /// The admin's password; absent: random.
    pub admin_password: Option<String>,
    /// HSM type.
    pub hsm_type: Option<String>,
    /// `FIPS` or `NON_FIPS`.
    pub mode: Option<String>,
    /// The customer CA certificate, PEM file (relative to the seed file).
    pub ca_cert: Option<PathBuf>,
    /// The customer CA private key, PEM file (relative to the seed file).
    pub ca_key: Option<PathBuf>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Users to create.
    #[serde(default)]
    pub user: Vec<SeedUser>,
    /// An existing token that backs the cluster instead of one cks-sim creates.
    pub token: Option<SeedToken>,
}

/// `[cluster.token]`: the existing token a cluster is bound to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedToken {
    /// The token's label (as `pkcs11-tool --list-token-slots` shows it).
    pub label: String,
    /// Whether changes of `kmsuser`'s password change the token's PIN (`C_SetPIN`).
    #[serde(default)]
    pub rotate_password: bool,
}

/// One `[[cluster.user]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    /// User name.
    pub name: String,
    /// `admin` or `crypto-user` (default).
    #[serde(default = "crypto_user")]
    pub role: String,
    /// Password.
    pub password: String,
}

fn two() -> usize {
    2
}

fn crypto_user() -> String {
    "crypto-user".into()
}

/// Parse seed file text.
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` with the TOML error.
pub fn parse_seed(text: &str) -> Result<SeedFile, CloudHsmError> {
    let invalid =
        |e: &dyn std::fmt::Display| CloudHsmError::invalid(format!("invalid seed file: {e}"));
    let table: toml::Table = toml::from_str(text).map_err(|e| invalid(&e))?;
    if let Some(unknown) = table.keys().find(|k| !SEED_TABLES.contains(&k.as_str())) {
        return Err(invalid(&format!(
            "unknown table `{unknown}`: a seed file holds [[cluster]], [[key_store]] and [[key]] \
             (and, when it is also the configuration file, its sections)"
        )));
    }
    toml::from_str(text).map_err(|e| invalid(&e))
}

/// The top-level tables a seed file may hold: its own, the KMS layer's, and the configuration
/// file's sections (a configuration file may carry its own seed).
const SEED_TABLES: &[&str] = &[
    "cluster",
    "key_store",
    "key",
    "server",
    "identity",
    "hsm",
    "simulation",
    "auth",
    "quotas",
];

/// The cluster ID of the `index`-th `[[cluster]]` without an `id`: stable for one data
/// directory (whose random `salt` is kept in [`SEED_SALT_FILE`]), distinct between data
/// directories (so two simulators sharing a PKCS#11 token directory do not collide).
pub fn derived_cluster_id(salt: &str, index: usize) -> String {
    use sha2::{Digest, Sha256};
    const B32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let h = Sha256::digest(format!("cks-sim seed cluster {salt} {index}").as_bytes());
    let tail: String = h
        .iter()
        .take(16)
        .map(|b| char::from(B32[usize::from(*b) % 32]))
        .collect();
    format!("cluster-{tail}")
}

/// Check a whole seed before anything is applied, so a bad file changes nothing.
fn validate(seed: &SeedFile, salt: &str) -> Result<(), CloudHsmError> {
    let mut ids_seen = BTreeSet::new();
    for (i, sc) in seed.cluster.iter().enumerate() {
        let id = sc.id.clone().unwrap_or_else(|| derived_cluster_id(salt, i));
        let at = |m: String| CloudHsmError::invalid(format!("seed cluster #{} ({id}): {m}", i + 1));
        if !ids::is_cluster_id(&id) {
            return Err(at("the id must match cluster-[2-7a-zA-Z]{11,16}".into()));
        }
        if !ids_seen.insert(id.clone()) {
            return Err(at("the id is used twice".into()));
        }
        if !(1..=api::MAX_SUBNETS).contains(&sc.azs) {
            return Err(at(format!("azs must be 1 to {}", api::MAX_SUBNETS)));
        }
        if sc.hsms.unwrap_or(sc.azs) > api::MAX_HSMS_PER_CLUSTER {
            return Err(at(format!(
                "hsms must be 0 to {}",
                api::MAX_HSMS_PER_CLUSTER
            )));
        }
        if let Some(p) = &sc.admin_password {
            users::check_password(p).map_err(|e| at(format!("admin_password: {}", e.message)))?;
        }
        if let Some(t) = &sc.token
            && (t.label.trim().is_empty() || t.label.len() > 32)
        {
            return Err(at(
                "token.label must be 1 to 32 characters (a PKCS#11 token label)".into(),
            ));
        }
        if sc.ca_cert.is_some() != sc.ca_key.is_some() {
            return Err(at("give both ca_cert and ca_key, or neither".into()));
        }
        let mut names = BTreeSet::new();
        for u in &sc.user {
            let name = users::check_user_name(&u.name).map_err(|e| at(e.message))?;
            if !names.insert(name.clone()) {
                return Err(at(format!("the user {name} is listed twice")));
            }
            if Role::parse(&u.role).is_none() {
                return Err(at(format!(
                    "user {name}: role must be admin or crypto-user"
                )));
            }
            users::check_password(&u.password)
                .map_err(|e| at(format!("user {name}: {}", e.message)))?;
        }
    }
    Ok(())
}

/// Apply a parsed seed; relative CA paths are resolved against `base_dir`. Idempotent:
/// clusters whose ID exists are left as they are, and only users that do not exist yet are
/// created (in `ACTIVE` clusters).
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for an invalid seed (nothing is applied then) or an
/// unreadable CA file; otherwise whatever building a cluster or creating a user returns.
pub async fn apply_seed(
    app: &Arc<App>,
    seed: &SeedFile,
    base_dir: &Path,
) -> Result<(), CloudHsmError> {
    let salt = seed_salt(&app.config.data_dir).await?;
    validate(seed, &salt)?;
    check_token_sharing(app, seed, &salt)?;
    for (i, sc) in seed.cluster.iter().enumerate() {
        let id = sc
            .id
            .clone()
            .unwrap_or_else(|| derived_cluster_id(&salt, i));
        let exists = app.world().clusters.contains_key(&id);
        if !exists {
            seed_new_cluster(app, sc, &id, base_dir).await?;
        }
        warn_if_binding_differs(app, &id, sc.token.as_ref());
        seed_missing_users(app, sc, &id).await?;
    }
    Ok(())
}

/// One token's use: the cluster (or the internal token) it backs, and whether cks-sim
/// changes its PIN.
struct TokenUse {
    label: String,
    user: String,
    rotates: bool,
}

/// A token whose PIN cks-sim changes (a token it made, or `rotate_password = true`) backs one
/// cluster and nothing else: a change would pull the PIN from under the internal token or the
/// other cluster, whose next login (at the latest, at the next start-up) would fail. A seed
/// cluster that would share such a token is refused, before anything is applied; clusters
/// that exist keep their binding.
fn check_token_sharing(app: &App, seed: &SeedFile, salt: &str) -> Result<(), CloudHsmError> {
    let w = app.world();
    let mut uses: Vec<TokenUse> = w
        .clusters
        .values()
        .filter(|c| c.has_token && c.state != ClusterState::Deleted)
        .map(|c| TokenUse {
            label: c.token_label().to_string(),
            user: format!("cluster {}", c.id),
            rotates: c.rotates_pin(),
        })
        .collect();
    uses.push(TokenUse {
        label: app.config.internal_token_label.clone(),
        user: "the internal token ([hsm] internal_token_label)".into(),
        rotates: false,
    });
    for (i, sc) in seed.cluster.iter().enumerate() {
        let id = sc.id.clone().unwrap_or_else(|| derived_cluster_id(salt, i));
        let Some(t) = sc.token.as_ref().filter(|_| !w.clusters.contains_key(&id)) else {
            continue;
        };
        if let Some(other) = uses
            .iter()
            .find(|u| u.label == t.label && (u.rotates || t.rotate_password))
        {
            return Err(CloudHsmError::invalid(format!(
                "seed cluster #{} ({id}): the token {:?} is also {}, and a token whose PIN \
                 cks-sim changes cannot be shared: set rotate_password = false on every \
                 cluster bound to it",
                i + 1,
                t.label,
                other.user
            )));
        }
        uses.push(TokenUse {
            label: t.label.clone(),
            user: format!("cluster {id}"),
            rotates: t.rotate_password,
        });
    }
    Ok(())
}

/// Build the seed's cluster `id` and write its CA certificate, and the CA key and admin
/// password the simulator generated, into the cluster's directory.
async fn seed_new_cluster(
    app: &Arc<App>,
    sc: &SeedCluster,
    id: &str,
    base_dir: &Path,
) -> Result<(), CloudHsmError> {
    let ca = match (&sc.ca_cert, &sc.ca_key) {
        (Some(c), Some(k)) => Some(read_ca(base_dir, c, k).await?),
        _ => None,
    };
    let plan = Plan {
        id: Some(id.to_string()),
        azs: sc.azs,
        hsms: sc.hsms.unwrap_or(sc.azs),
        hsm_type: sc.hsm_type.clone(),
        mode: sc.mode.clone(),
        admin_password: sc.admin_password.clone(),
        ca,
        tags: sc
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        bound_token: sc.token.as_ref().map(|t| BoundToken {
            label: t.label.clone(),
            rotate_password: t.rotate_password,
        }),
    };
    let built = build_cluster(app, plan).await?;
    let dir = app.config.data_dir.join("clusters").join(id);
    let mut files = vec![(dir.join(CA_CERT_FILE), built.ca.cert_pem.clone(), false)];
    if built.ca_generated {
        files.push((
            dir.join(CA_KEY_FILE),
            built.ca.private_key_pem.clone(),
            true,
        ));
    }
    if built.admin_generated {
        files.push((
            dir.join(ADMIN_PASSWORD_FILE),
            format!("{}\n", built.admin_password),
            true,
        ));
    }
    write_files(files, false).await
}

/// Create the seed's users that cluster `id` does not have yet, if it is `ACTIVE` (or
/// `DEGRADED`); otherwise say why they were not created.
async fn seed_missing_users(
    app: &Arc<App>,
    sc: &SeedCluster,
    id: &str,
) -> Result<(), CloudHsmError> {
    let (state, existing): (Option<ClusterState>, BTreeSet<String>) = {
        let w = app.world();
        (
            w.clusters.get(id).map(effective_state),
            w.cluster_users(id)
                .into_iter()
                .map(|u| u.name.to_string())
                .collect(),
        )
    };
    let missing: Vec<&SeedUser> = sc
        .user
        .iter()
        .filter(|u| !existing.contains(&u.name.to_ascii_lowercase()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !matches!(state, Some(ClusterState::Active | ClusterState::Degraded)) {
        tracing::warn!(cluster = %id, "seed: the cluster is not ACTIVE; its users were not created");
        return Ok(());
    }
    for u in missing {
        // validate() checked the role.
        let role = Role::parse(&u.role).unwrap_or(Role::CryptoUser);
        users::create_user(app, id, &u.name, role, &u.password).await?;
    }
    Ok(())
}

/// A cluster keeps the token binding it was created with: a seed that declares another one
/// for an existing cluster is reported, not applied.
fn warn_if_binding_differs(app: &App, id: &str, declared: Option<&SeedToken>) {
    let current = app
        .world()
        .clusters
        .get(id)
        .and_then(|c| c.bound_token.clone());
    let same = match (&current, declared) {
        (None, None) => true,
        (Some(b), Some(t)) => b.label == t.label && b.rotate_password == t.rotate_password,
        _ => false,
    };
    if !same {
        tracing::warn!(
            cluster = id,
            "seed: the cluster exists with another [cluster.token] than the seed declares; \
             it keeps the one it was created with (delete the cluster, or use a new id)"
        );
    }
}

/// Check at start-up that every cluster bound to a token (`[cluster.token]`) finds it.
///
/// # Errors
///
/// A message naming each cluster, the label it looks for and the labels the module shows.
pub async fn check_bound_tokens(app: &Arc<App>) -> Result<(), String> {
    let bound: Vec<(String, String)> = app
        .world()
        .clusters
        .values()
        .filter(|c| c.has_token && c.state != ClusterState::Deleted)
        .filter_map(|c| {
            c.bound_token
                .as_ref()
                .map(|b| (c.id.to_string(), b.label.clone()))
        })
        .collect();
    let mut missing = Vec::new();
    for (id, label) in bound {
        if let Err(e) = app.token(&id).await {
            missing.push(format!("cluster {id} is bound to token {label:?}: {e}"));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}; the module {} shows the tokens {}",
        missing.join("; "),
        app.module().path().display(),
        api::shown_token_labels(app).await
    ))
}

/// Read, parse and apply the seed file at `path` (see [`SeedFile`] for the format).
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for an unreadable or invalid file; otherwise as
/// [`apply_seed`].
pub async fn apply_file(app: &Arc<App>, path: &Path) -> Result<(), CloudHsmError> {
    let p = path.to_path_buf();
    let text = blocking(move || {
        std::fs::read_to_string(&p).map_err(|e| {
            CloudHsmError::invalid(format!("cannot read seed file {}: {e}", p.display()))
        })
    })
    .await?;
    let seed = parse_seed(&text)
        .map_err(|e| CloudHsmError::invalid(format!("{}: {}", path.display(), e.message)))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    apply_seed(app, &seed, &base).await
}

/// The data directory's salt for derived IDs, created on first use.
async fn seed_salt(data_dir: &Path) -> Result<String, CloudHsmError> {
    let path = data_dir.join(SEED_SALT_FILE);
    let existing = {
        let p = path.clone();
        blocking(move || Ok(std::fs::read_to_string(&p).ok())).await?
    };
    if let Some(s) = existing
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    {
        return Ok(s);
    }
    let salt = ids::secret(16);
    write_files(vec![(path, format!("{salt}\n"), false)], false).await?;
    Ok(salt)
}

async fn read_ca(base: &Path, cert: &Path, key: &Path) -> Result<CustomerCa, CloudHsmError> {
    let (cert, key) = (base.join(cert), base.join(key));
    blocking(move || {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| CloudHsmError::invalid(format!("cannot read {}: {e}", p.display())))
        };
        Ok(CustomerCa {
            cert_pem: read(&cert)?,
            private_key_pem: read(&key)?,
        })
    })
    .await
}

async fn blocking<T, F>(f: F) -> Result<T, CloudHsmError>
where
    F: FnOnce() -> Result<T, CloudHsmError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(CloudHsmError::internal)?
}

/// Write `(path, content, secret)` files (secrets with mode 0600 on Unix), creating parent
/// directories; with `only_missing`, existing files are kept.
async fn write_files(
    files: Vec<(PathBuf, String, bool)>,
    only_missing: bool,
) -> Result<(), CloudHsmError> {
    blocking(move || {
        for (path, content, secret) in files {
            if only_missing && path.exists() {
                continue;
            }
            write_one(&path, &content, secret).map_err(|e| {
                CloudHsmError::new(
                    CloudHsmErrorKind::InternalFailure,
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
        }
        Ok(())
    })
    .await
}

fn write_one(path: &Path, content: &str, secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelled_top_level_table_is_refused_by_name() {
        let e = parse_seed("[[keys]]\nid = \"x\"\n").unwrap_err();
        assert!(e.message.contains("unknown table `keys`"), "{}", e.message);
        assert!(parse_seed("[[cluster]]\n[[key]]\n").is_ok());
    }

    #[test]
    fn derived_ids_are_stable_and_valid() {
        assert_eq!(derived_cluster_id("s", 0), derived_cluster_id("s", 0));
        assert_ne!(derived_cluster_id("s", 0), derived_cluster_id("s", 1));
        assert_ne!(derived_cluster_id("s", 0), derived_cluster_id("t", 0));
        for i in 0..20 {
            let id = derived_cluster_id("salt", i);
            assert!(ids::is_cluster_id(&id), "{id}");
        }
    }

    #[test]
    fn seed_files_parse_with_defaults_and_ignore_other_sections() {
        let s = parse_seed(
            r#"
            [[cluster]]
            id = "cluster-234abcdefabc"
            admin_password = "Admin1234"
            [[cluster.user]]
            name = "kmsuser"
            password = "kmsPswd123"

            [[cluster]]
            azs = 3
            hsms = 1

            [[key_store]]
            name = "handled by the KMS layer"
            "#,
        )
        .unwrap();
        assert_eq!(s.cluster.len(), 2);
        assert_eq!(s.cluster[0].azs, 2);
        assert_eq!(s.cluster[0].hsms, None);
        assert_eq!(s.cluster[0].user[0].role, "crypto-user");
        assert_eq!(s.cluster[1].azs, 3);
        validate(&s, "salt").unwrap();
    }

    #[test]
    fn a_cluster_token_binds_by_label_with_rotation_off_by_default() {
        let s = parse_seed(
            "[[cluster]]\n[cluster.token]\nlabel = \"lab-hsm\"\n\
             [[cluster]]\n[cluster.token]\nlabel = \"other\"\nrotate_password = true\n",
        )
        .unwrap();
        let t0 = s.cluster[0].token.as_ref().unwrap();
        assert_eq!((t0.label.as_str(), t0.rotate_password), ("lab-hsm", false));
        assert!(s.cluster[1].token.as_ref().unwrap().rotate_password);
        validate(&s, "salt").unwrap();
        assert!(parse_seed("[[cluster]]\n[cluster.token]\nlabel = \"x\"\nslot = 1\n").is_err());
        for label in ["", "  ", &"l".repeat(33)] {
            let s = parse_seed(&format!(
                "[[cluster]]\n[cluster.token]\nlabel = {label:?}\n"
            ))
            .unwrap();
            assert!(validate(&s, "salt").is_err(), "accepted label {label:?}");
        }
    }

    #[test]
    fn bad_seeds_are_refused_before_anything_happens() {
        let bad = [
            "[[cluster]]\nid = \"cluster-1\"",
            "[[cluster]]\nazs = 0",
            "[[cluster]]\nazs = 11",
            "[[cluster]]\nhsms = 29",
            "[[cluster]]\nadmin_password = \"short\"",
            "[[cluster]]\nca_cert = \"a.crt\"",
            "[[cluster]]\n[[cluster.user]]\nname = \"bad-name\"\npassword = \"password1\"",
            "[[cluster]]\n[[cluster.user]]\nname = \"u\"\nrole = \"boss\"\npassword = \"password1\"",
            "[[cluster]]\n[[cluster.user]]\nname = \"u\"\npassword = \"pw\"",
            "[[cluster]]\n[[cluster.user]]\nname = \"u\"\npassword = \"password1\"\n[[cluster.user]]\nname = \"U\"\npassword = \"password1\"",
            "[[cluster]]\nid = \"cluster-234abcdefabc\"\n[[cluster]]\nid = \"cluster-234abcdefabc\"",
        ];
        for text in bad {
            let s = parse_seed(text).unwrap();
            assert!(validate(&s, "salt").is_err(), "accepted: {text}");
        }
        assert!(parse_seed("[[cluster]]\ncolour = \"red\"").is_err());
        assert!(parse_seed("[[cluster]\n").is_err());
    }
}

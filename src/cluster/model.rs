//! The simulated CloudHSM world: clusters, HSMs, users and backups (plain data, persisted as
//! documents by `store`).

use crate::api::Timestamp;
use crate::names::{ClusterId, HsmId, UserName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `ClusterState`, every value of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ClusterState {
    CreateInProgress,
    Uninitialized,
    InitializeInProgress,
    Initialized,
    Active,
    UpdateInProgress,
    ModifyInProgress,
    RollbackInProgress,
    DeleteInProgress,
    Deleted,
    Degraded,
}

impl ClusterState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::CreateInProgress => "CREATE_IN_PROGRESS",
            ClusterState::Uninitialized => "UNINITIALIZED",
            ClusterState::InitializeInProgress => "INITIALIZE_IN_PROGRESS",
            ClusterState::Initialized => "INITIALIZED",
            ClusterState::Active => "ACTIVE",
            ClusterState::UpdateInProgress => "UPDATE_IN_PROGRESS",
            ClusterState::ModifyInProgress => "MODIFY_IN_PROGRESS",
            ClusterState::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            ClusterState::DeleteInProgress => "DELETE_IN_PROGRESS",
            ClusterState::Deleted => "DELETED",
            ClusterState::Degraded => "DEGRADED",
        }
    }
}

/// `HsmState`, every value of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum HsmState {
    CreateInProgress,
    Active,
    Degraded,
    DeleteInProgress,
    Deleted,
}

impl HsmState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            HsmState::CreateInProgress => "CREATE_IN_PROGRESS",
            HsmState::Active => "ACTIVE",
            HsmState::Degraded => "DEGRADED",
            HsmState::DeleteInProgress => "DELETE_IN_PROGRESS",
            HsmState::Deleted => "DELETED",
        }
    }
}

/// Reversible faults injected into a cluster (D14).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// The network between KMS and the cluster is cut.
    pub network_down: bool,
    /// Subnet IDs that were deleted.
    pub deleted_subnets: Vec<String>,
    /// Subnet IDs that have no free addresses.
    pub exhausted_subnets: Vec<String>,
    /// The cluster was deleted behind KMS's back (the record stays so it can come back).
    pub cluster_deleted: bool,
    /// The cluster's token fails every call.
    pub token_failing: bool,
    /// KMS's connection attempts fail with an internal error.
    pub internal_error: bool,
}

/// A simulated CloudHSM cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// `cluster-…`.
    pub id: ClusterId,
    /// The lifecycle state.
    pub state: ClusterState,
    /// A human message for the state.
    pub state_message: Option<String>,
    /// `hsm1.medium` or `hsm2m.medium`.
    pub hsm_type: String,
    /// `FIPS` or `NON_FIPS`.
    pub mode: String,
    /// Availability zone → subnet ID.
    pub subnet_mapping: BTreeMap<String, String>,
    /// Security group `sg-…`.
    pub security_group: String,
    /// VPC `vpc-…`.
    pub vpc_id: String,
    /// `IPV4` or `DUALSTACK`.
    pub network_type: String,
    /// Seconds since the epoch.
    pub create_timestamp: Timestamp,
    /// The backup this cluster was restored from.
    pub source_backup_id: Option<String>,
    /// The cluster's private key (PKCS#8 PEM) for its CSR.
    pub private_key_pem: String,
    /// The CSR, shown while `UNINITIALIZED`.
    pub csr_pem: String,
    /// The customer-signed cluster certificate, after initialization.
    pub cluster_certificate: Option<String>,
    /// The customer's trust anchor, after initialization.
    pub trust_anchor: Option<String>,
    /// Lineage: clusters restored from each other's backups share it (the DER fingerprint of
    /// the cluster certificate once initialized, else the cluster's own ID).
    pub lineage: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// The token's current user PIN: always `kmsuser`'s current password while `kmsuser`
    /// exists (D3), else a secret only the simulator knows.
    pub token_user_pin: String,
    /// The token's SO PIN (the cluster admin's).
    pub token_so_pin: String,
    /// Whether a token exists for this cluster.
    pub has_token: bool,
    /// Injected faults.
    #[serde(default)]
    pub faults: Faults,
    /// Next HSM IP suffix to hand out.
    #[serde(default)]
    pub next_ip: u32,
    /// Counts the changes of `kmsuser`'s password and its deletions. A KMS session opened
    /// at an older count is gone (KMS compares; the cluster never writes KMS's records).
    #[serde(default)]
    pub kmsuser_epoch: u64,
    /// A user PIN change begun and not yet committed (D20: the intent is recorded before
    /// `C_SetPIN`): the PIN the token may now have instead of `token_user_pin`. Settled by
    /// [`crate::cluster::users::settle_pin_change`] at start-up and before the next change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_user_pin: Option<String>,
    /// Its namespace's account; empty for the default one (see [`crate::namespace`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// Its namespace's region; empty with `account`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    /// An existing token this cluster is bound to (seed file `[cluster.token]`), instead of
    /// a token the simulator creates for it. `None`: the simulator's own token, labelled
    /// with the cluster ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_token: Option<BoundToken>,
}

/// A token made outside the simulator (a real HSM's, or one initialized by hand) that backs a
/// cluster. The simulator never initializes it, never calls `C_InitPIN` on it, and calls
/// `C_SetPIN` on it only when `rotate_password` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundToken {
    /// The token's label, as the module shows it.
    pub label: String,
    /// Whether `kmsuser`'s password changes (KMS's rotation on connect, CloudHSM CLI password
    /// changes, deleting `kmsuser`) change the token's PIN with `C_SetPIN`. Off: the PIN is
    /// left alone and every login uses `kmsuser`'s current password.
    pub rotate_password: bool,
}

impl Cluster {
    /// Whether changes of `kmsuser`'s password reach the token's PIN (`C_SetPIN`): always on
    /// a token the simulator made, on a bound token only with `rotate_password`.
    pub fn rotates_pin(&self) -> bool {
        self.bound_token.as_ref().is_none_or(|b| b.rotate_password)
    }

    /// The label of the cluster's token: its bound token's, else the cluster ID (a token the
    /// simulator made).
    pub fn token_label(&self) -> &str {
        self.bound_token
            .as_ref()
            .map_or(self.id.as_str(), |b| b.label.as_str())
    }
}

/// An HSM of a cluster: metadata over the cluster's one token (D2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hsm {
    /// `hsm-…`.
    pub id: HsmId,
    /// Its cluster.
    pub cluster_id: ClusterId,
    /// The AZ.
    pub availability_zone: String,
    /// The subnet of that AZ.
    pub subnet_id: String,
    /// `eni-…`.
    pub eni_id: String,
    /// The ENI's IPv4 address.
    pub eni_ip: String,
    /// The state.
    pub state: HsmState,
    /// A human message for the state.
    pub state_message: Option<String>,
}

/// A user role inside a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Crypto officer (`admin` in the CloudHSM CLI).
    Admin,
    /// Crypto user (`crypto-user`).
    CryptoUser,
    /// Pre-crypto officer of a never-activated cluster.
    Preco,
    /// AWS appliance user.
    Appliance,
}

impl Role {
    /// The CloudHSM CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::CryptoUser => "crypto-user",
            Role::Preco => "pre-crypto-officer",
            Role::Appliance => "internal(APPLIANCE_USER)",
        }
    }

    /// Parse a CLI role name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "crypto-user" => Some(Role::CryptoUser),
            _ => None,
        }
    }
}

/// A user of a cluster (D3: the simulator owns the user table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its cluster.
    pub cluster_id: ClusterId,
    /// Lower-case user name.
    pub name: UserName,
    /// Role.
    pub role: Role,
    /// Salted SHA-256 of the password, hex.
    pub password_hash: String,
    /// The salt.
    pub salt: String,
    /// Consecutive failed logins.
    pub failed_logins: u32,
    /// Locked after too many failed logins; an admin's password reset unlocks.
    pub locked: bool,
    /// Multi-factor authentication enabled.
    #[serde(default)]
    pub mfa: bool,
    /// Present on every HSM (`full`) or only some.
    #[serde(default = "full")]
    pub coverage_full: bool,
    /// Sessions logged in outside KMS (through the control surface).
    #[serde(default)]
    pub sessions: u32,
}

fn full() -> bool {
    true
}

/// Failed logins tolerated before a lockout (`more than 5` locks).
pub const LOCKOUT_THRESHOLD: u32 = 5;

/// A cluster backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    /// `backup-…`.
    pub id: String,
    /// The cluster it was taken from.
    pub cluster_id: ClusterId,
    /// `READY`, `DELETED`, …
    pub state: String,
    /// Seconds since the epoch.
    pub create_timestamp: Timestamp,
    /// The source cluster at backup time (certificate, trust anchor, lineage, HSM type, mode).
    pub snapshot: Cluster,
    /// Users at backup time.
    pub users: Vec<User>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Salted hash of a password.
pub fn hash_password(salt: &str, password: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(password.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl User {
    /// A new user with `password`.
    pub fn new(cluster_id: &str, name: &str, role: Role, password: &str) -> Self {
        let salt = crate::ids::secret(16);
        User {
            cluster_id: ClusterId::from(cluster_id),
            name: UserName::from(name.to_ascii_lowercase()),
            role,
            password_hash: hash_password(&salt, password),
            salt,
            failed_logins: 0,
            locked: false,
            mfa: false,
            coverage_full: true,
            sessions: 0,
        }
    }

    /// The store ID: `<cluster>/<name>`.
    pub fn key(&self) -> String {
        user_key(&self.cluster_id, &self.name)
    }

    /// Whether `password` is this user's password.
    pub fn password_matches(&self, password: &str) -> bool {
        hash_password(&self.salt, password) == self.password_hash
    }

    /// Set a new password (and clear the lock and the failure count).
    pub fn set_password(&mut self, password: &str) {
        self.salt = crate::ids::secret(16);
        self.password_hash = hash_password(&self.salt, password);
        self.failed_logins = 0;
        self.locked = false;
    }

    /// Count one failed login; lock when the threshold is passed.
    pub fn fail_login(&mut self) {
        self.failed_logins = self.failed_logins.saturating_add(1);
        if self.failed_logins > LOCKOUT_THRESHOLD {
            self.locked = true;
        }
    }
}

/// The store ID of a user.
pub fn user_key(cluster_id: &str, name: &str) -> String {
    format!("{cluster_id}/{}", name.to_ascii_lowercase())
}

/// The name KMS logs in as.
pub const KMSUSER: &str = "kmsuser";

//! The cloudhsmv2 control plane (`BaldrApiService`): clusters, HSMs, backups and tags.
//!
//! [`handle`] takes an operation name and a decoded request ([`Input`]) and returns the
//! response document in awsJson1_1 conventions (timestamps are JSON numbers of epoch
//! seconds; absent members are omitted, never `null`); the doors (awsJson1_1 and rpc-v2-cbor)
//! only frame it. The typed functions behind it ([`create_cluster`], [`initialize_cluster`],
//! [`create_hsm`], [`delete_hsm`], [`delete_cluster`]) are public for the seed, the control
//! door and tests.
//!
//! What is *not* here: the CloudHSM CLI's user management (`users.rs`), fault injection
//! (`faults.rs`), seeding (`seed.rs`), and any HTTP. Names and errors follow the model
//! `cloudhsmv2-2017-04-28`; the operations are documented at
//! <https://docs.aws.amazon.com/cloudhsm/latest/APIReference/API_Operations.html>.
//!
//! Simplifications: every state change is immediate (no `*_IN_PROGRESS` states); a cluster's
//! subnet `i` lives in the made-up AZ `<region><a + i>`; `BackupRetentionPolicy` is accepted
//! but always reported as 90 days; the account's cluster and HSM quotas are not enforced
//! beyond 28 HSMs per cluster.

use super::certs;
use super::error::{CloudHsmError, CloudHsmErrorKind};
use super::model::{
    Backup, BoundToken, Cluster, ClusterState, Faults, Hsm, HsmState, KMSUSER, User,
};
use crate::app::{App, Change, World};
use crate::ids;
use crate::names::{ClusterId, HsmId};
use crate::protocol::input::{InputError, shown};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The HSM type of a cluster when `CreateCluster` names none.
pub const DEFAULT_HSM_TYPE: &str = "hsm2m.medium";
/// The HSM types the simulator accepts.
pub const HSM_TYPES: &[&str] = &["hsm1.medium", "hsm2m.medium"];
/// Most HSMs one cluster can hold.
pub const MAX_HSMS_PER_CLUSTER: usize = 28;
/// Most tags on one resource.
pub const MAX_TAGS: usize = 50;
/// Most subnets in `CreateCluster` (the model's `SubnetIds` max).
pub const MAX_SUBNETS: usize = 10;
/// `BackupState` of a usable backup.
pub const BACKUP_READY: &str = "READY";
/// `BackupState` of a backup scheduled for deletion.
pub const BACKUP_PENDING_DELETION: &str = "PENDING_DELETION";

// ---------------------------------------------------------------------------------------
// Typed operations
// ---------------------------------------------------------------------------------------

/// What `CreateCluster` asks for, already decoded.
#[derive(Debug, Clone, Default)]
pub struct NewCluster {
    /// A fixed cluster ID (seed files only); `None` draws a fresh one.
    pub id: Option<String>,
    /// Subnets, one per AZ (1–10); subnet `i` goes to AZ `<region><a + i>`.
    pub subnet_ids: Vec<String>,
    /// `hsm1.medium` or `hsm2m.medium` (default `hsm2m.medium`; a restore defaults to the
    /// backup's type).
    pub hsm_type: Option<String>,
    /// `FIPS` (default) or `NON_FIPS`. A restore keeps the backup's mode.
    pub mode: Option<String>,
    /// `IPV4` (default) or `DUALSTACK`.
    pub network_type: Option<String>,
    /// Restore from this backup (ID or backup ARN).
    pub source_backup_id: Option<String>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// An existing token to bind the cluster to (seed files only).
    pub bound_token: Option<BoundToken>,
}

/// `CreateCluster`: a new `UNINITIALIZED` cluster with a fresh key pair and CSR, or — with
/// `source_backup_id` — a cluster restored from a backup.
///
/// A restored cluster gets the backup's certificate, trust anchor, lineage and users, and a
/// new token whose user PIN is `kmsuser`'s password at backup time (when `kmsuser` existed).
/// It is `ACTIVE` (or `INITIALIZED` if the backup holds no admin yet). **Key material is not
/// restored**: keys on a SoftHSM token are non-extractable, so they cannot be copied from the
/// source cluster's token and the restored token starts empty.
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for bad subnets, HSM type, mode, network type, tags, a
/// fixed ID in use, or a backup that is not `READY`; `CloudHsmResourceNotFoundException` for
/// an unknown backup; `CloudHsmTagException` for reserved or malformed tags;
/// `CloudHsmInternalFailureException` when the store or the token fails.
pub async fn create_cluster(app: &Arc<App>, req: NewCluster) -> Result<Cluster, CloudHsmError> {
    let shape = check_new_cluster(&req)?;
    let writer = app.lock_writer().await;
    let now = app.now();
    let (id, backup) = new_cluster_id_and_backup(app, req.id.as_ref(), shape.backup_id.as_ref())?;
    match backup {
        None => fresh_cluster(app, &writer, &req, &shape, id, now).await,
        Some(backup) => restored_cluster(app, &writer, &req, &shape, id, now, backup).await,
    }
}

/// The checked shape of a CreateCluster request.
struct ClusterShape<'a> {
    hsm_type: Option<&'static str>,
    mode: Option<&'a str>,
    network_type: Option<&'a str>,
    backup_id: Option<String>,
}

/// Validate a CreateCluster request (subnets, HSM type, mode, network type, tags, backup and
/// fixed ID), before anything is looked up.
fn check_new_cluster(req: &NewCluster) -> Result<ClusterShape<'_>, CloudHsmError> {
    check_subnets(&req.subnet_ids)?;
    let hsm_type = match &req.hsm_type {
        Some(t) => Some(check_hsm_type(t)?),
        None => None,
    };
    let mode = check_enum("Mode", req.mode.as_deref(), &["FIPS", "NON_FIPS"])?;
    let network_type = check_enum(
        "NetworkType",
        req.network_type.as_deref(),
        &["IPV4", "DUALSTACK"],
    )?;
    check_tags(&req.tags)?;
    if req.tags.len() > MAX_TAGS {
        return Err(constraint(
            "TagList",
            &format!("{} tags", req.tags.len()),
            "Member must have length less than or equal to 50",
        ));
    }
    let backup_id = match &req.source_backup_id {
        Some(s) => Some(parse_backup_ref(s)?),
        None => None,
    };
    if let Some(id) = &req.id
        && !ids::is_cluster_id(id)
    {
        return Err(pattern_err("ClusterId", id, "cluster-[2-7a-zA-Z]{11,16}"));
    }
    Ok(ClusterShape {
        hsm_type,
        mode,
        network_type,
        backup_id,
    })
}

/// The new cluster's ID (the fixed one if free, else a fresh one) and the backup it is
/// restored from, if any.
fn new_cluster_id_and_backup(
    app: &App,
    fixed: Option<&String>,
    backup_id: Option<&String>,
) -> Result<(String, Option<Backup>), CloudHsmError> {
    let w = app.world();
    let id = match fixed {
        Some(id) if w.clusters.contains_key(id) => {
            return Err(CloudHsmError::invalid(format!(
                "The cluster {id} already exists"
            )));
        }
        Some(id) => id.clone(),
        None => loop {
            let id = ids::cluster_id();
            if !w.clusters.contains_key(&id) {
                break id;
            }
        },
    };
    let backup = match backup_id {
        Some(b) => Some(
            w.backups
                .get(b)
                .filter(|x| backup_visible(x))
                .cloned()
                .ok_or_else(|| CloudHsmError::not_found(format!("The backup {b} was not found")))?,
        ),
        None => None,
    };
    Ok((id, backup))
}

/// A new cluster, UNINITIALIZED, with a fresh CSR and no token.
async fn fresh_cluster(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    req: &NewCluster,
    shape: &ClusterShape<'_>,
    id: String,
    now: crate::api::Timestamp,
) -> Result<Cluster, CloudHsmError> {
    let (subnet_mapping, account, region, tags) = new_cluster_parts(app, req);
    let csr = certs::new_cluster_csr(&id).map_err(CloudHsmError::internal)?;
    let c = Cluster {
        id: ClusterId::from(id.clone()),
        state: ClusterState::Uninitialized,
        state_message: None,
        hsm_type: shape.hsm_type.unwrap_or(DEFAULT_HSM_TYPE).to_string(),
        mode: shape.mode.unwrap_or("FIPS").to_string(),
        subnet_mapping,
        security_group: ids::sg_id(),
        vpc_id: ids::vpc_id(),
        network_type: shape.network_type.unwrap_or("IPV4").to_string(),
        create_timestamp: now,
        source_backup_id: None,
        private_key_pem: csr.private_key_pem,
        csr_pem: csr.csr_pem,
        cluster_certificate: None,
        trust_anchor: None,
        lineage: id,
        tags,
        token_user_pin: String::new(),
        token_so_pin: String::new(),
        has_token: false,
        faults: Faults::default(),
        next_ip: 0,
        kmsuser_epoch: 0,
        pending_user_pin: None,
        account,
        region,
        bound_token: req.bound_token.clone(),
    };
    app.commit(writer, vec![Change::Cluster(c.clone())]).await?;
    Ok(c)
}

/// A cluster restored from `backup`: its certificates, lineage and users, and a fresh token
/// whose user PIN is the one `kmsuser` had at backup time.
async fn restored_cluster(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    req: &NewCluster,
    shape: &ClusterShape<'_>,
    id: String,
    now: crate::api::Timestamp,
    backup: Backup,
) -> Result<Cluster, CloudHsmError> {
    let (subnet_mapping, account, region, tags) = new_cluster_parts(app, req);
    if backup.state != BACKUP_READY {
        return Err(CloudHsmError::invalid(format!(
            "The backup {} is {}; only a READY backup can be restored (RestoreBackup brings back a backup pending deletion)",
            backup.id, backup.state
        )));
    }
    let snap = &backup.snapshot;
    let had_kmsuser = backup.users.iter().any(|u| u.name == KMSUSER);
    // D3: the token's user PIN is kmsuser's password, here the one it had at backup time.
    let user_pin = if had_kmsuser {
        snap.token_user_pin.clone()
    } else {
        ids::secret(24)
    };
    let so_pin = ids::secret(24);
    new_token(app, &id, &so_pin, &user_pin).await?;
    let has_admin = backup
        .users
        .iter()
        .any(|u| u.role == super::model::Role::Admin);
    let c = Cluster {
        id: ClusterId::from(id.clone()),
        state: if has_admin {
            ClusterState::Active
        } else {
            ClusterState::Initialized
        },
        state_message: None,
        hsm_type: shape
            .hsm_type
            .map_or_else(|| snap.hsm_type.clone(), str::to_string),
        mode: snap.mode.clone(),
        subnet_mapping,
        security_group: ids::sg_id(),
        vpc_id: ids::vpc_id(),
        network_type: shape.network_type.unwrap_or("IPV4").to_string(),
        create_timestamp: now,
        source_backup_id: Some(backup.id.clone()),
        private_key_pem: snap.private_key_pem.clone(),
        csr_pem: snap.csr_pem.clone(),
        cluster_certificate: snap.cluster_certificate.clone(),
        trust_anchor: snap.trust_anchor.clone(),
        lineage: snap.lineage.clone(),
        tags,
        token_user_pin: user_pin,
        token_so_pin: so_pin,
        has_token: true,
        faults: Faults::default(),
        next_ip: 0,
        kmsuser_epoch: 0,
        pending_user_pin: None,
        account,
        region,
        bound_token: None,
    };
    let mut changes = vec![Change::Cluster(c.clone())];
    for u in &backup.users {
        let mut u = u.clone();
        u.cluster_id = ClusterId::from(id.clone());
        u.sessions = 0;
        changes.push(Change::User(u));
    }
    app.commit(writer, changes).await?;
    Ok(c)
}

/// The parts every new cluster takes from the request and the caller: subnets mapped to AZs,
/// its namespace, its tags.
fn new_cluster_parts(
    app: &App,
    req: &NewCluster,
) -> (
    BTreeMap<String, String>,
    String,
    String,
    BTreeMap<String, String>,
) {
    let subnet_mapping = subnet_mapping(&crate::namespace::current(app).region, &req.subnet_ids);
    let (account, region) = crate::namespace::for_new(app);
    let tags = req.tags.iter().cloned().collect();
    (subnet_mapping, account, region, tags)
}

/// `InitializeCluster`: check the customer-signed certificate and trust anchor against the
/// cluster's CSR, create the cluster's token (D1) and move it to `INITIALIZED`. On any failure
/// nothing changes.
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster; `CloudHsmInvalidRequestException`
/// when the cluster is not `UNINITIALIZED` or a certificate check fails (the message says
/// which); `CloudHsmInternalFailureException` when the token cannot be created.
pub async fn initialize_cluster(
    app: &Arc<App>,
    cluster_id: &str,
    signed_cert: &str,
    trust_anchor: &str,
) -> Result<Cluster, CloudHsmError> {
    let writer = app.lock_writer().await;
    let mut c = get_cluster(app, cluster_id)?;
    require_not_deleted(&c)?;
    if c.state != ClusterState::Uninitialized {
        return Err(CloudHsmError::invalid(format!(
            "The cluster {cluster_id} is {}; InitializeCluster needs an UNINITIALIZED cluster",
            c.state.as_str()
        )));
    }
    certs::verify_initialization(&c.csr_pem, signed_cert, trust_anchor)
        .map_err(|e| CloudHsmError::invalid(e.to_string()))?;
    let lineage =
        certs::der_fingerprint(signed_cert).map_err(|e| CloudHsmError::invalid(e.to_string()))?;
    let so_pin = ids::secret(24);
    let user_pin = ids::secret(24);
    new_token(app, cluster_id, &so_pin, &user_pin).await?;
    c.state = ClusterState::Initialized;
    c.state_message = Some("Cluster is initialized.".into());
    c.cluster_certificate = Some(signed_cert.to_string());
    c.trust_anchor = Some(trust_anchor.to_string());
    c.lineage = lineage;
    c.token_so_pin = so_pin;
    // A bound token's PIN is unknown until kmsuser's password is checked against it.
    c.token_user_pin = if c.bound_token.is_some() {
        String::new()
    } else {
        user_pin
    };
    c.has_token = true;
    app.commit(&writer, vec![Change::Cluster(c.clone())])
        .await?;
    Ok(c)
}

/// The AZ's index among the cluster's and its subnet, refused when the AZ is not the
/// cluster's or its subnet is deleted or exhausted (injected faults).
fn hsm_subnet(c: &Cluster, availability_zone: &str) -> Result<(usize, String), CloudHsmError> {
    let cluster_id = &c.id;
    let Some((az_index, subnet_id)) = c
        .subnet_mapping
        .iter()
        .enumerate()
        .find(|(_, (az, _))| az.as_str() == availability_zone)
        .map(|(i, (_, s))| (i, s.clone()))
    else {
        let azs: Vec<&str> = c.subnet_mapping.keys().map(String::as_str).collect();
        return Err(CloudHsmError::invalid(format!(
            "The availability zone {} is not one of cluster {cluster_id}'s availability zones ({})",
            shown(availability_zone),
            azs.join(", ")
        )));
    };
    if c.faults.deleted_subnets.contains(&subnet_id) {
        return Err(CloudHsmError::invalid(format!(
            "The subnet {subnet_id} does not exist"
        )));
    }
    if c.faults.exhausted_subnets.contains(&subnet_id) {
        return Err(CloudHsmError::invalid(format!(
            "The subnet {subnet_id} has no free IP addresses"
        )));
    }
    Ok((az_index, subnet_id))
}

/// A new HSM's address: `ip` if free, else the next free `10.0.<AZ index>.<n>`.
fn hsm_address(
    c: &mut Cluster,
    existing: &[Hsm],
    az_index: usize,
    ip: Option<&str>,
) -> Result<String, CloudHsmError> {
    let cluster_id = c.id.clone();
    let used: BTreeSet<&str> = existing.iter().map(|h| h.eni_ip.as_str()).collect();
    Ok(match ip {
        Some(ip) if used.contains(ip) => {
            return Err(CloudHsmError::invalid(format!(
                "The IP address {ip} is already used by an HSM of cluster {cluster_id}"
            )));
        }
        Some(ip) => ip.to_string(),
        None => loop {
            let candidate = hsm_ip(az_index, c.next_ip);
            c.next_ip = c.next_ip.wrapping_add(1);
            if !used.contains(candidate.as_str()) {
                break candidate;
            }
        },
    })
}

/// `CreateHsm`: a new `ACTIVE` HSM in `availability_zone` (one of the cluster's AZs), with an
/// ENI and an address `10.0.<AZ index>.<n>` (or `ip` if given). If the cluster is initialized,
/// a `READY` backup of it is taken too (CloudHSM backs a cluster up when it adds an HSM).
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster; `CloudHsmInvalidRequestException`
/// for an AZ not of the cluster, a deleted or exhausted subnet (injected faults), a used or
/// malformed address, a cluster in the wrong state or already holding 28 HSMs.
pub async fn create_hsm(
    app: &Arc<App>,
    cluster_id: &str,
    availability_zone: &str,
    ip: Option<&str>,
) -> Result<Hsm, CloudHsmError> {
    if let Some(ip) = ip
        && !is_ipv4(ip)
    {
        return Err(pattern_err(
            "IpAddress",
            ip,
            "\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}",
        ));
    }
    let writer = app.lock_writer().await;
    let now = app.now();
    let (mut c, existing, users) = {
        let w = app.world();
        let c = w
            .clusters
            .get(cluster_id)
            .filter(|c| visible(c))
            .cloned()
            .ok_or_else(|| CloudHsmError::cluster_not_found(cluster_id))?;
        let existing: Vec<Hsm> = w.cluster_hsms(cluster_id).into_iter().cloned().collect();
        let users: Vec<User> = w.cluster_users(cluster_id).into_iter().cloned().collect();
        (c, existing, users)
    };
    let state = effective_state(&c);
    if !matches!(
        state,
        ClusterState::Uninitialized
            | ClusterState::Initialized
            | ClusterState::Active
            | ClusterState::Degraded
    ) {
        return Err(CloudHsmError::invalid(format!(
            "The cluster {cluster_id} is {}; HSMs can be added only to an UNINITIALIZED, INITIALIZED, ACTIVE or DEGRADED cluster",
            state.as_str()
        )));
    }
    let (az_index, subnet_id) = hsm_subnet(&c, availability_zone)?;
    if existing.len() >= MAX_HSMS_PER_CLUSTER {
        return Err(CloudHsmError::invalid(format!(
            "The cluster {cluster_id} already has {MAX_HSMS_PER_CLUSTER} HSMs, the most a cluster can hold"
        )));
    }
    let eni_ip = hsm_address(&mut c, &existing, az_index, ip)?;
    let hsm_id = {
        let w = app.world();
        loop {
            let id = ids::hsm_id();
            if !w.hsms.contains_key(&id) {
                break id;
            }
        }
    };
    let h = Hsm {
        id: HsmId::from(hsm_id),
        cluster_id: ClusterId::from(cluster_id),
        availability_zone: availability_zone.to_string(),
        subnet_id,
        eni_id: ids::eni_id(),
        eni_ip,
        state: HsmState::Active,
        state_message: None,
    };
    let mut changes = vec![Change::Cluster(c.clone()), Change::Hsm(h.clone())];
    if is_initialized(&c) {
        changes.push(Change::Backup(new_backup(app, now, &c, &users)));
    }
    app.commit(&writer, changes).await?;
    Ok(h)
}

/// Which HSM `DeleteHsm` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmRef {
    /// By `HsmId`.
    Id(String),
    /// By `EniId`.
    EniId(String),
    /// By `EniIp`.
    EniIp(String),
}

/// `DeleteHsm`: remove one HSM of the cluster; returns its ID. Deleting the last HSM of an
/// initialized cluster takes a backup first (as CloudHSM does).
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster or HSM.
pub async fn delete_hsm(
    app: &Arc<App>,
    cluster_id: &str,
    which: &HsmRef,
) -> Result<String, CloudHsmError> {
    let writer = app.lock_writer().await;
    let now = app.now();
    let (c, hsms, users) = {
        let w = app.world();
        let c = w
            .clusters
            .get(cluster_id)
            .filter(|c| visible(c))
            .cloned()
            .ok_or_else(|| CloudHsmError::cluster_not_found(cluster_id))?;
        let hsms: Vec<Hsm> = w.cluster_hsms(cluster_id).into_iter().cloned().collect();
        let users: Vec<User> = w.cluster_users(cluster_id).into_iter().cloned().collect();
        (c, hsms, users)
    };
    let found = hsms.iter().find(|h| match which {
        HsmRef::Id(id) => &h.id == id,
        HsmRef::EniId(e) => &h.eni_id == e,
        HsmRef::EniIp(ip) => &h.eni_ip == ip,
    });
    let Some(h) = found else {
        let what = match which {
            HsmRef::Id(id) => format!("The HSM {id}"),
            HsmRef::EniId(e) => format!("The HSM with ENI {e}"),
            HsmRef::EniIp(ip) => format!("The HSM with IP address {ip}"),
        };
        return Err(CloudHsmError::not_found(format!(
            "{what} was not found in cluster {cluster_id}"
        )));
    };
    let mut changes = Vec::new();
    if hsms.len() == 1 && is_initialized(&c) {
        changes.push(Change::Backup(new_backup(app, now, &c, &users)));
    }
    changes.push(Change::DelHsm(h.id.clone()));
    app.commit(&writer, changes).await?;
    Ok(h.id.to_string())
}

/// `DeleteCluster`: the cluster becomes `DELETED`. Its record, users and token stay (so
/// `DescribeClusters` still shows it and its backups can be restored).
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster; `CloudHsmInvalidRequestException`
/// while it still has HSMs or when it is already deleted.
pub async fn delete_cluster(app: &Arc<App>, cluster_id: &str) -> Result<Cluster, CloudHsmError> {
    let writer = app.lock_writer().await;
    let (mut c, n_hsms) = {
        let w = app.world();
        let c = w
            .clusters
            .get(cluster_id)
            .filter(|c| visible(c))
            .cloned()
            .ok_or_else(|| CloudHsmError::cluster_not_found(cluster_id))?;
        (c, w.cluster_hsms(cluster_id).len())
    };
    require_not_deleted(&c)?;
    if n_hsms > 0 {
        return Err(CloudHsmError::invalid(format!(
            "The cluster {cluster_id} still has {n_hsms} HSM(s); delete them before deleting the cluster"
        )));
    }
    c.state = ClusterState::Deleted;
    c.state_message = None;
    app.commit(&writer, vec![Change::Cluster(c.clone())])
        .await?;
    Ok(c)
}

// ---------------------------------------------------------------------------------------
// Request decoding
// ---------------------------------------------------------------------------------------

/// A resource that carries tags.
pub(super) enum Tagged {
    Cluster(Cluster),
    Backup(Backup),
}

impl Tagged {
    pub(super) fn tags(&self) -> &BTreeMap<String, String> {
        match self {
            Tagged::Cluster(c) => &c.tags,
            Tagged::Backup(b) => &b.tags,
        }
    }

    pub(super) fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
        match self {
            Tagged::Cluster(c) => &mut c.tags,
            Tagged::Backup(b) => &mut b.tags,
        }
    }

    pub(super) fn into_change(self) -> Change {
        match self {
            Tagged::Cluster(c) => Change::Cluster(c),
            Tagged::Backup(b) => Change::Backup(b),
        }
    }
}

pub(super) fn find_tagged(w: &World, id: &str) -> Result<Tagged, CloudHsmError> {
    if id.starts_with("cluster-") {
        w.clusters
            .get(id)
            .filter(|c| visible(c))
            .cloned()
            .map(Tagged::Cluster)
            .ok_or_else(|| CloudHsmError::cluster_not_found(id))
    } else {
        w.backups
            .get(id)
            .filter(|b| backup_visible(b))
            .cloned()
            .map(Tagged::Backup)
            .ok_or_else(|| CloudHsmError::not_found(format!("The backup {id} was not found")))
    }
}

// ---------------------------------------------------------------------------------------
// Rendering (exact model shapes; absent members omitted)
// ---------------------------------------------------------------------------------------

/// `arn:aws:cloudhsm:<region>:<account>:backup/<id>`.
pub fn backup_arn(region: &str, account: &str, backup_id: &str) -> String {
    format!("arn:aws:cloudhsm:{region}:{account}:backup/{backup_id}")
}

// ---------------------------------------------------------------------------------------
// Shared helpers (also used by users.rs, faults.rs and seed.rs)
// ---------------------------------------------------------------------------------------

/// The state the world sees: `DELETED` while the `ClusterDeleted` fault is on.
pub fn effective_state(c: &Cluster) -> ClusterState {
    if c.faults.cluster_deleted {
        ClusterState::Deleted
    } else {
        c.state
    }
}

/// The made-up AZ of a cluster's subnet number `index`: `<region>a`, `<region>b`, …
pub fn az_name(region: &str, index: usize) -> String {
    let letter = b'a' + u8::try_from(index % 26).unwrap_or(0);
    format!("{region}{}", char::from(letter))
}

/// AZ → subnet for `subnet_ids` in order.
pub fn subnet_mapping(region: &str, subnet_ids: &[String]) -> BTreeMap<String, String> {
    subnet_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (az_name(region, i), s.clone()))
        .collect()
}

/// A clone of the cluster, or `CloudHsmResourceNotFoundException` (also for a cluster of
/// another account or region).
pub(crate) fn get_cluster(app: &App, cluster_id: &str) -> Result<Cluster, CloudHsmError> {
    app.world()
        .clusters
        .get(cluster_id)
        .filter(|c| visible(c))
        .cloned()
        .ok_or_else(|| CloudHsmError::cluster_not_found(cluster_id))
}

/// Whether the request being served may see cluster `c` (its namespace's requests, and the
/// local doors).
pub(crate) fn visible(c: &Cluster) -> bool {
    crate::namespace::sees(&c.account, &c.region)
}

/// Whether the request being served may see backup `b` (its cluster's namespace).
pub(super) fn backup_visible(b: &Backup) -> bool {
    visible(&b.snapshot)
}

/// Refuse a cluster that is (or looks) deleted.
pub(crate) fn require_not_deleted(c: &Cluster) -> Result<(), CloudHsmError> {
    if effective_state(c) == ClusterState::Deleted {
        Err(CloudHsmError::invalid(format!(
            "The cluster {} is DELETED",
            c.id
        )))
    } else {
        Ok(())
    }
}

/// Whether the cluster has been initialized (has its certificate).
fn is_initialized(c: &Cluster) -> bool {
    c.cluster_certificate.is_some()
        && matches!(
            c.state,
            ClusterState::Initialized | ClusterState::Active | ClusterState::Degraded
        )
}

/// Create the cluster's token with `so_pin` and the token user PIN rendered from
/// `user_password` (D3), then prove the PIN works (a token left over under the same label
/// would keep its old PINs).
async fn new_token(
    app: &Arc<App>,
    label: &str,
    so_pin: &str,
    user_password: &str,
) -> Result<(), CloudHsmError> {
    let bound = app
        .world()
        .clusters
        .get(label)
        .and_then(|c| c.bound_token.clone());
    if let Some(b) = bound {
        return find_bound_token(app, label, &b).await;
    }
    let user_pin = app.pin(KMSUSER, user_password);
    app.provision_token(label, so_pin, &user_pin).await?;
    let token = app.token(label).await?;
    token.check_user_pin(&user_pin).await.map_err(|e| {
        tracing::error!(%label, error = %e, "a token with this label refused the new user PIN");
        CloudHsmError::new(
            CloudHsmErrorKind::InternalFailure,
            format!(
                "A token labelled {label} already exists and refused the new user PIN; delete it \
                 (softhsm2-util --delete-token --token {label}) or use another data directory"
            ),
        )
    })?;
    Ok(())
}

/// A cluster bound to an existing token: the token must be there (nothing is created, and
/// its PINs are left alone; `kmsuser`'s password is checked against it when `kmsuser` is
/// created).
async fn find_bound_token(
    app: &Arc<App>,
    cluster_id: &str,
    bound: &BoundToken,
) -> Result<(), CloudHsmError> {
    let Err(e) = app.token(cluster_id).await else {
        return Ok(());
    };
    Err(CloudHsmError::new(
        CloudHsmErrorKind::InternalFailure,
        format!(
            "cluster {cluster_id} is bound to token {:?}: {e}; the module shows the tokens {}",
            bound.label,
            shown_token_labels(app).await
        ),
    ))
}

/// The labels of the module's tokens, for messages about a token that is not there.
pub(crate) async fn shown_token_labels(app: &App) -> String {
    let module = app.module().clone();
    tokio::task::spawn_blocking(move || module.token_labels())
        .await
        .ok()
        .and_then(Result::ok)
        .map_or_else(|| "(cannot list them)".into(), |l| format!("{l:?}"))
}

fn new_backup(app: &App, now: crate::api::Timestamp, c: &Cluster, users: &[User]) -> Backup {
    let id = {
        let w = app.world();
        loop {
            let id = ids::backup_id();
            if !w.backups.contains_key(&id) {
                break id;
            }
        }
    };
    Backup {
        id,
        cluster_id: c.id.clone(),
        state: BACKUP_READY.to_string(),
        create_timestamp: now,
        snapshot: c.clone(),
        users: users
            .iter()
            .map(|u| User {
                sessions: 0,
                ..u.clone()
            })
            .collect(),
        tags: BTreeMap::new(),
    }
}

fn hsm_ip(az_index: usize, n: u32) -> String {
    format!("10.0.{}.{}", az_index % 256, 10 + n % 240)
}

pub(super) fn backup_sort_key(b: &Backup) -> String {
    let millis = (b.create_timestamp.seconds().max(0.0) * 1000.0).round() as u64;
    format!("{millis:020}|{}", b.id)
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

fn constraint(member: &str, value: &str, rule: &str) -> CloudHsmError {
    InputError::Constraint {
        member: member.into(),
        value: crate::protocol::input::visible(member, shown(value)),
        rule: rule.into(),
    }
    .into()
}

fn pattern_err(member: &str, value: &str, pattern: &str) -> CloudHsmError {
    constraint(
        member,
        value,
        &format!("Member must satisfy regular expression pattern: {pattern}"),
    )
}

/// `<prefix>-[0-9a-fA-F]{8,17}` (subnets, ENIs, security groups).
fn is_hex_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|r| (8..=17).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

fn check_subnets(subnets: &[String]) -> Result<(), CloudHsmError> {
    if subnets.is_empty() || subnets.len() > MAX_SUBNETS {
        return Err(constraint(
            "SubnetIds",
            &format!("{} subnets", subnets.len()),
            "Member must have length between 1 and 10",
        ));
    }
    let mut seen = BTreeSet::new();
    for s in subnets {
        if !is_hex_id("subnet", s) {
            return Err(pattern_err("SubnetIds", s, "subnet-[0-9a-fA-F]{8,17}"));
        }
        if !seen.insert(s.to_ascii_lowercase()) {
            return Err(CloudHsmError::invalid(format!(
                "The subnet {s} is listed twice; give one subnet per availability zone"
            )));
        }
    }
    Ok(())
}

fn check_hsm_type(t: &str) -> Result<&'static str, CloudHsmError> {
    HSM_TYPES
        .iter()
        .copied()
        .find(|k| *k == t)
        .ok_or_else(CloudHsmError::hsm_type_not_supported)
}

fn check_enum<'a>(
    member: &str,
    v: Option<&str>,
    allowed: &[&'a str],
) -> Result<Option<&'a str>, CloudHsmError> {
    match v {
        None => Ok(None),
        Some(v) => allowed
            .iter()
            .copied()
            .find(|a| *a == v)
            .map(Some)
            .ok_or_else(|| {
                constraint(
                    member,
                    v,
                    &format!(
                        "Member must satisfy enum value set: [{}]",
                        allowed.join(", ")
                    ),
                )
            }),
    }
}

/// CloudHSM's tag rules on one tag key (TagResource's keys, UntagResource's).
pub(super) fn check_tag_key(k: &str) -> Result<(), CloudHsmError> {
    check_tags(&[(k.to_string(), String::new())])
}

/// Tag keys and values per the model (`TagKey` 1–128, `TagValue` 0–256, letters, digits,
/// spaces and `_.:/=+-@`); `aws:` keys are reserved. cks-sim's words: no recording of
/// CloudHSM's was found.
pub(super) fn check_tags(tags: &[(String, String)]) -> Result<(), CloudHsmError> {
    use crate::tags::TagProblem as P;
    let rules = crate::tags::TagRules {
        max_tags: None,
        refuse_duplicates: false,
        plain_characters: true,
    };
    let tag = |m: String| CloudHsmError::new(CloudHsmErrorKind::Tag, m);
    match crate::tags::first_problem(tags, &rules) {
        None | Some(P::TooMany | P::DuplicateKey(_)) => Ok(()),
        Some(P::KeyLength(k)) => Err(constraint(
            "TagList.member.Key",
            k,
            "Member must have length between 1 and 128",
        )),
        Some(P::KeyCharacters(k)) => Err(tag(format!(
            "The tag key '{}' has characters outside letters, digits, spaces and _.:/=+-@",
            shown(k)
        ))),
        Some(P::ReservedPrefix(k)) => Err(tag(format!(
            "The tag key '{}' uses the reserved prefix aws:",
            shown(k)
        ))),
        Some(P::ValueLength(_, v)) => Err(constraint(
            "TagList.member.Value",
            v,
            "Member must have length less than or equal to 256",
        )),
        Some(P::ValueCharacters(k, _)) => Err(tag(format!(
            "The value of tag '{}' has characters outside letters, digits, spaces and _.:/=+-@",
            shown(k)
        ))),
    }
}

/// A backup ID, from an ID or a backup ARN (the `SourceBackupId` shape is `BackupArn`).
fn parse_backup_ref(s: &str) -> Result<String, CloudHsmError> {
    let id = match s.rsplit_once(":backup/") {
        Some((prefix, id)) if prefix.starts_with("arn:") => id,
        Some(_) => s,
        None => s,
    };
    if ids::is_b32_id("backup", id) {
        Ok(id.to_string())
    } else {
        Err(pattern_err(
            "SourceBackupId",
            s,
            "(arn:aws:cloudhsm:<region>:<account>:backup/)?backup-[2-7a-zA-Z]{11,16}",
        ))
    }
}

/// A value passes a filter when the filter is absent or lists it (an empty list matches
/// nothing).
pub(super) fn matches_filter(
    filters: &BTreeMap<String, Vec<String>>,
    name: &str,
    value: &str,
) -> bool {
    filters
        .get(name)
        .is_none_or(|vals| vals.iter().any(|v| v == value))
}

pub(super) fn max_of(max: Option<i64>) -> Option<usize> {
    max.and_then(|m| usize::try_from(m).ok())
}

/// One page of `items` (keyed by a sort key, sorted here, descending if asked), starting
/// after the key in `token`, at most `max` long; the token for the next page if more remain
/// (keyset paging, see [`crate::paging`]).
pub(super) fn page<T>(
    mut items: Vec<(String, T)>,
    kind: &str,
    descending: bool,
    token: Option<&str>,
    max: Option<usize>,
) -> Result<(Vec<T>, Option<String>), CloudHsmError> {
    use crate::paging::{Order, last_key};
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let order = if descending {
        items.reverse();
        Order::Descending
    } else {
        Order::Ascending
    };
    let after = match token {
        None | Some("") => None,
        Some(t) => Some(last_key(kind, t.trim()).ok_or_else(|| {
            CloudHsmError::invalid(format!("The NextToken '{}' is not valid", shown(t)))
        })?),
    };
    let max = max.unwrap_or(usize::MAX);
    Ok(crate::paging::page(
        items,
        kind,
        order,
        after.as_deref(),
        max,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(keys: &[&str]) -> Vec<(String, String)> {
        keys.iter()
            .map(|k| (k.to_string(), k.to_string()))
            .collect()
    }

    #[test]
    fn az_mapping_follows_subnet_order() {
        assert_eq!(az_name("us-east-1", 0), "us-east-1a");
        assert_eq!(az_name("us-east-1", 1), "us-east-1b");
        assert_eq!(az_name("eu-west-3", 9), "eu-west-3j");
        let m = subnet_mapping(
            "us-west-2",
            &["subnet-0123456789abcdef0".into(), "subnet-aaaaaaaa".into()],
        );
        assert_eq!(
            m.get("us-west-2a").map(String::as_str),
            Some("subnet-0123456789abcdef0")
        );
        assert_eq!(
            m.get("us-west-2b").map(String::as_str),
            Some("subnet-aaaaaaaa")
        );
    }

    #[test]
    fn ids_and_addresses_are_validated() {
        assert!(is_hex_id("subnet", "subnet-0123abcd"));
        assert!(is_hex_id("subnet", "subnet-0123456789abcdef0"));
        assert!(!is_hex_id("subnet", "subnet-0123abc"));
        assert!(!is_hex_id("subnet", "subnet-0123456789abcdef01"));
        assert!(!is_hex_id("subnet", "subnet-0123abcg"));
        assert!(!is_hex_id("eni", "subnet-0123abcd"));
        assert!(is_ipv4("10.0.1.12"));
        assert!(!is_ipv4("10.0.1"));
        assert!(!is_ipv4("300.0.1.1"));
        assert_eq!(hsm_ip(1, 0), "10.0.1.10");
        assert!(check_subnets(&[]).is_err());
        assert!(check_subnets(&["subnet-0123abcd".into(), "subnet-0123ABCD".into()]).is_err());
        assert!(check_subnets(&["subnet-0123abcd".into(), "subnet-0123abce".into()]).is_ok());
        let e = check_subnets(&["sub-1".into()]).unwrap_err();
        assert!(e.message.contains("'SubnetIds'"), "{}", e.message);
        assert_eq!(check_hsm_type("hsm1.medium").unwrap(), "hsm1.medium");
        assert!(check_hsm_type("hsm9.huge").is_err());
        assert_eq!(
            check_enum("Mode", None, &["FIPS", "NON_FIPS"]).unwrap(),
            None
        );
        assert!(check_enum("Mode", Some("fips"), &["FIPS", "NON_FIPS"]).is_err());
    }

    #[test]
    fn backup_refs_accept_ids_and_arns() {
        assert_eq!(
            parse_backup_ref("backup-abcdefghijk").unwrap(),
            "backup-abcdefghijk"
        );
        assert_eq!(
            parse_backup_ref("arn:aws:cloudhsm:us-east-1:111122223333:backup/backup-abcdefghijk")
                .unwrap(),
            "backup-abcdefghijk"
        );
        assert!(parse_backup_ref("backup-1").is_err());
        assert!(parse_backup_ref("cluster-abcdefghijk").is_err());
        assert_eq!(
            backup_arn("us-east-1", "111122223333", "backup-abcdefghijk"),
            "arn:aws:cloudhsm:us-east-1:111122223333:backup/backup-abcdefghijk"
        );
    }

    #[test]
    fn tags_are_checked() {
        assert!(check_tags(&[("Name".into(), "prod db".into())]).is_ok());
        assert!(check_tags(&[("k".into(), String::new())]).is_ok());
        let e = check_tags(&[("aws:x".into(), "v".into())]).unwrap_err();
        assert_eq!(e.kind, CloudHsmErrorKind::Tag);
        let e = check_tags(&[("a#b".into(), "v".into())]).unwrap_err();
        assert_eq!(e.kind, CloudHsmErrorKind::Tag);
        let e = check_tags(&[(String::new(), "v".into())]).unwrap_err();
        assert_eq!(e.kind, CloudHsmErrorKind::InvalidRequest);
        assert!(check_tags(&[("k".into(), "v".repeat(257))]).is_err());
    }

    #[test]
    fn pages_walk_everything_once_in_order() {
        let items = keyed(&["c", "a", "e", "b", "d"]);
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (p, next) = page(items.clone(), "k", false, token.as_deref(), Some(2)).unwrap();
            assert!(p.len() <= 2);
            seen.extend(p);
            match next {
                Some(n) => token = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);

        let (p, next) = page(items.clone(), "k", true, None, Some(3)).unwrap();
        assert_eq!(p, ["e", "d", "c"]);
        let (p, next) = page(items.clone(), "k", true, next.as_deref(), Some(3)).unwrap();
        assert_eq!(p, ["b", "a"]);
        assert!(next.is_none());

        let (p, next) = page(items.clone(), "k", false, None, None).unwrap();
        assert_eq!(p.len(), 5);
        assert!(next.is_none());
        let (p, next) = page(items, "k", false, None, Some(5)).unwrap();
        assert_eq!(p.len(), 5);
        assert!(next.is_none(), "no token when nothing remains");
    }

    #[test]
    fn pages_survive_removal_of_the_last_key() {
        let (_, next) = page(keyed(&["a", "b", "c", "d"]), "k", false, None, Some(2)).unwrap();
        let (p, _) = page(
            keyed(&["a", "c", "d"]),
            "k",
            false,
            next.as_deref(),
            Some(2),
        )
        .unwrap();
        assert_eq!(p, ["c", "d"]);
    }

    #[test]
    fn bad_tokens_are_invalid_requests() {
        let items = keyed(&["a", "b"]);
        for t in [
            "%%%",
            "bm9wZQ",
            &crate::paging::token_after("other", "a"),
            &crate::paging::token_after("k", ""),
        ] {
            let e = page(items.clone(), "k", false, Some(t), None).unwrap_err();
            assert_eq!(e.kind, CloudHsmErrorKind::InvalidRequest, "{t}");
            assert!(e.message.contains("NextToken"), "{}", e.message);
        }
        assert!(crate::paging::token_after("tags/cluster-abcdefghijklmnop", "0049").len() <= 256);
    }

    #[test]
    fn backup_keys_sort_by_time_then_id() {
        let mut b = Backup {
            id: "backup-bbbbbbbbbbb".into(),
            cluster_id: "cluster-abcdefghijk".into(),
            state: BACKUP_READY.into(),
            create_timestamp: crate::api::Timestamp(100.5),
            snapshot: test_cluster(),
            users: vec![],
            tags: BTreeMap::new(),
        };
        let k1 = backup_sort_key(&b);
        b.create_timestamp = crate::api::Timestamp(99.0);
        b.id = "backup-zzzzzzzzzzz".into();
        assert!(backup_sort_key(&b) < k1);
    }

    fn test_cluster() -> Cluster {
        Cluster {
            id: "cluster-abcdefghijk".into(),
            state: ClusterState::Uninitialized,
            state_message: None,
            hsm_type: DEFAULT_HSM_TYPE.into(),
            mode: "FIPS".into(),
            subnet_mapping: BTreeMap::new(),
            security_group: "sg-0123abcd".into(),
            vpc_id: "vpc-0123abcd".into(),
            network_type: "IPV4".into(),
            create_timestamp: crate::api::Timestamp(1.5),
            source_backup_id: None,
            private_key_pem: String::new(),
            csr_pem: "CSR".into(),
            cluster_certificate: None,
            trust_anchor: None,
            lineage: "cluster-abcdefghijk".into(),
            tags: BTreeMap::new(),
            token_user_pin: String::new(),
            token_so_pin: String::new(),
            has_token: false,
            faults: Faults::default(),
            next_ip: 0,
            kmsuser_epoch: 0,
            pending_user_pin: None,
            account: String::new(),
            region: String::new(),
            bound_token: None,
        }
    }

    #[test]
    fn a_clusters_shape_is_the_models_with_absent_members_omitted() {
        let cluster_json = |w: &World, c: &Cluster| {
            serde_json::to_value(super::super::ops::cluster_shape(w, c)).unwrap()
        };
        let mut c = test_cluster();
        let w = World::default();
        let v = cluster_json(&w, &c);
        assert_eq!(v["State"], "UNINITIALIZED");
        assert_eq!(v["Certificates"]["ClusterCsr"], "CSR");
        assert!(v["Certificates"].get("ClusterCertificate").is_none());
        assert!(v.get("TagList").is_none());
        assert!(v.get("StateMessage").is_none());
        assert!(v.get("SourceBackupId").is_none());
        assert_eq!(v["CreateTimestamp"], 1.5);
        assert_eq!(v["BackupRetentionPolicy"]["Value"], "90");
        assert_eq!(v["Hsms"], serde_json::json!([]));
        c.state = ClusterState::Active;
        c.cluster_certificate = Some("CERT".into());
        c.faults.cluster_deleted = true;
        c.tags.insert("a".into(), "b".into());
        let v = cluster_json(&w, &c);
        assert_eq!(v["State"], "DELETED");
        assert!(v["Certificates"].get("ClusterCsr").is_none());
        assert_eq!(v["Certificates"]["ClusterCertificate"], "CERT");
        assert_eq!(
            v["TagList"],
            serde_json::json!([{"Key": "a", "Value": "b"}])
        );
    }
}

//! CloudHSM key stores: Create, Connect (asynchronous, D11), Disconnect, Delete, Describe and
//! Update, with every precondition of spec §2.1–§2.6.

use super::error::KmsError;
use super::model::{ConnectionErrorCode, ConnectionState, KeyStore};
use super::paginate;
use crate::api::kms::{
    ConnectCustomKeyStoreRequest, ConnectCustomKeyStoreResponse, ConnectionErrorCodeType,
    ConnectionStateType, CreateCustomKeyStoreRequest, CreateCustomKeyStoreResponse,
    CustomKeyStoreType, CustomKeyStoresListEntry, DeleteCustomKeyStoreRequest,
    DeleteCustomKeyStoreResponse, DescribeCustomKeyStoresRequest, DescribeCustomKeyStoresResponse,
    DisconnectCustomKeyStoreRequest, DisconnectCustomKeyStoreResponse, UpdateCustomKeyStoreRequest,
    UpdateCustomKeyStoreResponse,
};
use crate::app::{App, Change, World};
use crate::cluster::certs;
use crate::cluster::model::{Cluster, ClusterState, KMSUSER, Role};
use crate::kms_err;
use crate::names::CustomKeyStoreId;
use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Custom key stores per account and Region (not adjustable).
pub const MAX_STORES: usize = 10;

/// The first external key store member given, in the model's order (requests for AWS
/// CloudHSM key stores take none).
macro_rules! first_xks_member {
    ($req:expr) => {
        [
            ("XksProxyUriEndpoint", $req.xks_proxy_uri_endpoint.is_some()),
            ("XksProxyUriPath", $req.xks_proxy_uri_path.is_some()),
            (
                "XksProxyVpcEndpointServiceName",
                $req.xks_proxy_vpc_endpoint_service_name.is_some(),
            ),
            (
                "XksProxyVpcEndpointServiceOwner",
                $req.xks_proxy_vpc_endpoint_service_owner.is_some(),
            ),
            (
                "XksProxyAuthenticationCredential",
                $req.xks_proxy_authentication_credential.is_some(),
            ),
            (
                "XksProxyConnectivity",
                $req.xks_proxy_connectivity.is_some(),
            ),
        ]
        .into_iter()
        .find_map(|(m, given)| given.then_some(m))
    };
}

/// Whether the request being served may see store `s` (its account and region's requests,
/// and the local doors).
fn mine(s: &KeyStore) -> bool {
    crate::namespace::sees(&s.account, &s.region)
}

fn store_not_found(id: &str) -> KmsError {
    kms_err!(
        CustomKeyStoreNotFound,
        "Custom key store '{id}' does not exist."
    )
}

/// A `CloudHsmClusterId` member: the decoder searches the model's pattern in it; the whole ID
/// must match it.
fn cluster_id_member(member: &str, c: Option<String>) -> Result<Option<String>, KmsError> {
    if let Some(c) = &c
        && !crate::ids::is_cluster_id(c)
    {
        return Err(KmsError::validation(
            member,
            c,
            "Member must satisfy regular expression pattern: cluster-[2-7a-zA-Z]{11,16}",
        ));
    }
    Ok(c)
}

/// The cluster `id` unless it is gone (deleted, or deleted by fault injection).
pub(crate) fn live_cluster<'w>(w: &'w World, id: &str) -> Option<&'w Cluster> {
    w.clusters
        .get(id)
        .filter(|c| crate::namespace::sees(&c.account, &c.region))
        .filter(|c| crate::cluster::api::effective_state(c) != ClusterState::Deleted)
}

fn cluster_not_found(id: &str) -> KmsError {
    kms_err!(
        CloudHsmClusterNotFound,
        "AWS CloudHSM cluster '{id}' does not exist."
    )
}

fn cluster_not_active(c: &Cluster) -> KmsError {
    kms_err!(
        CloudHsmClusterNotActive,
        "AWS CloudHSM cluster '{}' is {}, not ACTIVE: initialize and activate it first.",
        c.id,
        c.state.as_str()
    )
}

/// Why a cluster cannot back a store: not found, not active, or badly configured.
/// `need_two` asks for two active HSMs in different AZs (create, update, CreateKey).
pub(crate) fn cluster_usable(w: &World, cluster_id: &str, need_two: bool) -> Result<(), KmsError> {
    let c = live_cluster(w, cluster_id).ok_or_else(|| cluster_not_found(cluster_id))?;
    if c.state != ClusterState::Active {
        return Err(cluster_not_active(c));
    }
    config_ok(w, cluster_id, need_two)
}

fn config_ok(w: &World, cluster_id: &str, need_two: bool) -> Result<(), KmsError> {
    let Some(c) = w.clusters.get(cluster_id) else {
        return Ok(());
    };
    let azs: BTreeSet<&String> = c
        .subnet_mapping
        .iter()
        .filter(|(_, s)| !c.faults.deleted_subnets.contains(s))
        .map(|(az, _)| az)
        .collect();
    let hsm_azs: BTreeSet<&String> = w
        .active_hsms(cluster_id)
        .iter()
        .map(|h| &h.availability_zone)
        .collect();
    if need_two {
        if azs.len() < 2 {
            return Err(kms_err!(
                CloudHsmClusterInvalidConfiguration,
                "AWS CloudHSM cluster '{cluster_id}' must have private subnets in at least two Availability Zones."
            ));
        }
        if hsm_azs.len() < 2 {
            return Err(KmsError::cluster_needs_hsms_in_two_azs());
        }
    } else if hsm_azs.is_empty() {
        return Err(kms_err!(
            CloudHsmClusterInvalidConfiguration,
            "AWS CloudHSM cluster '{cluster_id}' has no active HSM: add an HSM before connecting."
        ));
    }
    Ok(())
}

/// `CreateCustomKeyStore`.
pub async fn create(
    app: &Arc<App>,
    req: CreateCustomKeyStoreRequest,
) -> Result<CreateCustomKeyStoreResponse, KmsError> {
    cloudhsm_store_type(&req)?;
    let cluster_id = cluster_id_member("CloudHsmClusterId", req.cloud_hsm_cluster_id)?
        .ok_or_else(|| KmsError::missing("CloudHsmClusterId"))?;
    let new = NewStore {
        name: req.custom_key_store_name,
        cluster_id,
        trust_anchor: req
            .trust_anchor_certificate
            .ok_or_else(|| KmsError::missing("TrustAnchorCertificate"))?,
        password: req
            .key_store_password
            .ok_or_else(|| KmsError::missing("KeyStorePassword"))?
            .expose()
            .to_string(),
    };
    let id = create_store(app, new, None).await?;
    Ok(CreateCustomKeyStoreResponse {
        custom_key_store_id: Some(id),
    })
}

/// `CustomKeyStoreType` and the XKS members: only AWS CloudHSM key stores are simulated.
fn cloudhsm_store_type(req: &CreateCustomKeyStoreRequest) -> Result<(), KmsError> {
    if req.custom_key_store_type == Some(CustomKeyStoreType::ExternalKeyStore) {
        return Err(kms_err!(
            UnsupportedOperation,
            "cks-sim simulates AWS CloudHSM key stores only; external key stores (EXTERNAL_KEY_STORE) are not supported."
        ));
    }
    if let Some(m) = first_xks_member!(req) {
        return Err(kms_err!(
            UnsupportedOperation,
            "{m} applies only to external key stores, which cks-sim does not support; omit it for an AWS CloudHSM key store."
        ));
    }
    Ok(())
}

/// A new AWS CloudHSM key store: its name, cluster, the cluster's trust anchor and kmsuser's
/// password.
#[derive(Debug, Clone)]
pub struct NewStore {
    /// `CustomKeyStoreName`.
    pub name: String,
    /// `CloudHsmClusterId`.
    pub cluster_id: String,
    /// `TrustAnchorCertificate` (PEM).
    pub trust_anchor: String,
    /// `KeyStorePassword`: kmsuser's password.
    pub password: String,
}

/// The cluster rules of CreateCustomKeyStore: it exists, no store uses it or a cluster of its
/// backup lineage, it is ACTIVE, the trust anchor is the one it was initialized with, and it
/// has the HSMs a store needs.
fn cluster_for_new_store(w: &World, cluster_id: &str, anchor: &str) -> Result<(), KmsError> {
    let c = live_cluster(w, cluster_id).ok_or_else(|| cluster_not_found(cluster_id))?;
    if let Some(s) = w.stores.values().find(|s| {
        s.cluster_id == cluster_id
            || w.clusters
                .get(&s.cluster_id)
                .is_some_and(|o| o.lineage == c.lineage)
    }) {
        return Err(kms_err!(
            CloudHsmClusterInUse,
            "AWS CloudHSM cluster '{cluster_id}' (or a cluster that shares its backup history) is already associated with custom key store {}.",
            s.id
        ));
    }
    if c.state != ClusterState::Active {
        return Err(cluster_not_active(c));
    }
    let ok = c
        .trust_anchor
        .as_deref()
        .is_some_and(|t| certs::same_certificate(t, anchor));
    if !ok {
        return Err(kms_err!(
            IncorrectTrustAnchor,
            "The trust anchor certificate does not match the trust anchor of AWS CloudHSM cluster '{cluster_id}' (the customerCA.crt used to initialize it)."
        ));
    }
    config_ok(w, cluster_id, true)
}

/// Create a key store (CreateCustomKeyStore's domain half; the seed's stores come here
/// directly, with a chosen store ID): its ID, the existing one for a retry of an identical
/// create.
pub async fn create_store(
    app: &Arc<App>,
    new: NewStore,
    fixed_id: Option<String>,
) -> Result<String, KmsError> {
    let NewStore {
        name,
        cluster_id,
        trust_anchor: anchor,
        password,
    } = new;
    let writer = app.lock_writer().await;
    let now = app.now();
    let (account, region) = crate::namespace::for_new(app);
    let store = {
        let w = app.world();
        // A retry of an identical create answers the existing store's ID (DG, three times).
        if let Some(s) = w.stores.values().filter(|s| mine(s)).find(|s| {
            s.name == name
                && s.cluster_id == cluster_id
                && (s.trust_anchor == anchor || certs::same_certificate(&s.trust_anchor, &anchor))
                && s.password == password
                && s.state == ConnectionState::Disconnected
        }) {
            return Ok(s.id.to_string());
        }
        if w.stores.values().any(|s| mine(s) && s.name == name) {
            return Err(kms_err!(
                CustomKeyStoreNameInUse,
                "The custom key store name '{name}' is already used by another custom key store in this account and Region."
            ));
        }
        if w.stores.values().filter(|s| mine(s)).count() >= MAX_STORES {
            return Err(kms_err!(
                LimitExceeded,
                "This account already has {MAX_STORES} custom key stores in this Region, the maximum: delete one first."
            ));
        }
        cluster_for_new_store(&w, &cluster_id, &anchor)?;
        if let Some(fid) = &fixed_id
            && w.stores.contains_key(fid)
        {
            return Err(kms_err!(
                Validation,
                "Custom key store ID {fid} is already taken."
            ));
        }
        KeyStore {
            id: fixed_id
                .clone()
                .unwrap_or_else(crate::ids::key_store_id)
                .into(),
            name,
            cluster_id: cluster_id.into(),
            trust_anchor: anchor,
            password,
            creation_date: now,
            state: ConnectionState::Disconnected,
            error_code: None,
            last_error_code: None,
            session_epoch: None,
            legacy_session_valid: false,
            generation: 0,
            account,
            region,
        }
    };
    let id = store.id.to_string();
    app.commit(&writer, vec![Change::Store(store)])
        .await
        .map_err(KmsError::internal)?;
    Ok(id)
}

/// The store `id` if it exists and is CONNECTED, else `CustomKeyStoreNotFoundException` or
/// `CustomKeyStoreInvalidStateException` (`to` says what connecting it is needed for).
pub(crate) fn connected<'w>(w: &'w World, id: &str, to: &str) -> Result<&'w KeyStore, KmsError> {
    let s = w
        .stores
        .get(id)
        .filter(|s| mine(s))
        .ok_or_else(|| store_not_found(id))?;
    if s.state != ConnectionState::Connected {
        return Err(kms_err!(
            CustomKeyStoreInvalidState,
            "Custom key store {id} is {}: connect it {to}.",
            s.state.as_str()
        ));
    }
    Ok(s)
}

/// A copy of the store `id`, or `CustomKeyStoreNotFoundException`.
fn stored(app: &App, id: &str) -> Result<KeyStore, KmsError> {
    app.world()
        .stores
        .get(id)
        .filter(|s| mine(s))
        .cloned()
        .ok_or_else(|| store_not_found(id))
}

/// `ConnectCustomKeyStore`.
pub async fn connect(
    app: &Arc<App>,
    req: ConnectCustomKeyStoreRequest,
) -> Result<ConnectCustomKeyStoreResponse, KmsError> {
    connect_store(app, req.custom_key_store_id).await?;
    Ok(ConnectCustomKeyStoreResponse {})
}

/// Connect store `id` (ConnectCustomKeyStore's domain half; the seed connects its stores
/// here): returns at once; a task finishes the connection (D11).
pub async fn connect_store(app: &Arc<App>, id: String) -> Result<(), KmsError> {
    let writer = app.lock_writer().await;
    let mut store = stored(app, &id)?;
    if !super::rules::connect_allowed(&id, store.state)? {
        return Ok(());
    }
    {
        // Fast failures for easily detected cluster problems; a missing cluster is reported
        // asynchronously (CLUSTER_NOT_FOUND), as the model lists no not-found error here.
        let w = app.world();
        if let Some(c) = live_cluster(&w, &store.cluster_id) {
            if c.state != ClusterState::Active {
                return Err(cluster_not_active(c));
            }
            config_ok(&w, &store.cluster_id, false)?;
        }
    }
    store.state = ConnectionState::Connecting;
    store.error_code = None;
    store.generation += 1;
    let generation = store.generation;
    app.commit(&writer, vec![Change::Store(store)])
        .await
        .map_err(KmsError::internal)?;
    spawn_connect(app, id, generation, true);
    Ok(())
}

/// Start the background half of a connection attempt, after the connect delay in force now
/// (`[simulation] connect_delay_ms`, or its `/_sim/settings` value when the connect was asked).
pub fn spawn_connect(app: &Arc<App>, id: String, generation: u64, rotate: bool) {
    let app = Arc::clone(app);
    let delay = app.settings().connect_delay_ms;
    tokio::spawn(async move {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        loop {
            let released = app.release.notified();
            if !app.settings().hold_connections {
                break;
            }
            released.await;
        }
        finish_connect(&app, &id, generation, rotate).await;
    });
}

/// The asynchronous connection: checks in D11's order, then a real `C_Login` as kmsuser and
/// a password rotation (token PIN with it), or `FAILED` with the matching code.
async fn finish_connect(app: &Arc<App>, id: &str, generation: u64, rotate: bool) {
    let writer = app.lock_writer().await;
    let Some(mut store) = app.world().stores.get(id).cloned() else {
        return;
    };
    if store.state != ConnectionState::Connecting || store.generation != generation {
        return; // cancelled by a disconnect, or superseded
    }
    let mut changes = Vec::new();
    let outcome = check_connect(&app.world(), &store, &mut changes);
    let result = match outcome {
        Err(code) => Err(code),
        Ok(()) => login_and_rotate(app, &writer, &mut store, &mut changes, rotate).await,
    };
    match result {
        Ok(epoch) => {
            store.state = ConnectionState::Connected;
            store.error_code = None;
            store.set_session(Some(epoch));
            app.kms_login(id, true);
        }
        Err(code) => {
            tracing::info!(
                store = id,
                code = code.as_str(),
                "connection attempt failed"
            );
            store.state = ConnectionState::Failed;
            store.error_code = Some(code);
            store.last_error_code = Some(code);
            store.set_session(None);
        }
    }
    changes.push(Change::Store(store));
    if let Err(e) = app.commit(&writer, changes).await {
        tracing::error!(error = %e, "cannot record the connection outcome");
        return;
    }
    app.failpoints.hit("connect.committed");
}

/// The checks of an asynchronous connection, in D11's order, on the world as it is: `Err` with
/// the `ConnectionErrorCode` of the first that fails. A wrong password counts as a failed login
/// of `kmsuser` (pushed to `changes`).
fn check_connect(
    w: &World,
    store: &KeyStore,
    changes: &mut Vec<Change>,
) -> Result<(), ConnectionErrorCode> {
    use ConnectionErrorCode as E;
    let Some(c) = live_cluster(w, &store.cluster_id) else {
        return Err(E::ClusterNotFound);
    };
    if c.faults.internal_error || c.faults.token_failing {
        return Err(E::InternalError);
    }
    if c.subnet_mapping
        .values()
        .any(|s| c.faults.deleted_subnets.contains(s))
    {
        return Err(E::SubnetNotFound);
    }
    if c.subnet_mapping
        .values()
        .any(|s| c.faults.exhausted_subnets.contains(s))
    {
        return Err(E::InsufficientFreeAddressesInSubnet);
    }
    if w.active_hsms(&c.id).is_empty() {
        return Err(E::InsufficientCloudhsmHsms);
    }
    if c.faults.network_down {
        return Err(E::NetworkErrors);
    }
    let Some(user) = w
        .users
        .get(&crate::cluster::model::user_key(&c.id, KMSUSER))
        .filter(|u| u.role == Role::CryptoUser && u.coverage_full)
    else {
        return Err(E::UserNotFound);
    };
    if user.locked {
        return Err(E::UserLockedOut);
    }
    if user.sessions > 0 {
        return Err(E::UserLoggedIn);
    }
    if user.mfa || !user.password_matches(&store.password) {
        let (failed, locked) = crate::cluster::users::failed_login(user);
        changes.push(failed);
        return Err(if locked {
            E::UserLockedOut
        } else {
            E::InvalidCredentials
        });
    }
    if !c.has_token {
        return Err(E::InternalError);
    }
    Ok(())
}

async fn login_and_rotate(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    store: &mut KeyStore,
    changes: &mut Vec<Change>,
    rotate: bool,
) -> Result<u64, ConnectionErrorCode> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "failure while connecting");
        ConnectionErrorCode::InternalError
    };
    crate::cluster::users::settle_pin_change(app, writer, &store.cluster_id)
        .await
        .map_err(|e| internal(&e.message))?;
    let (cluster, user) = {
        let w = app.world();
        let c = w.clusters.get(&store.cluster_id).cloned();
        let u = w
            .users
            .get(&crate::cluster::model::user_key(&store.cluster_id, KMSUSER))
            .cloned();
        match (c, u) {
            (Some(c), Some(u)) => (c, u),
            _ => return Err(ConnectionErrorCode::InternalError),
        }
    };
    let token = app.token(&cluster.id).await.map_err(|e| internal(&e))?;
    token
        .login(&app.pin(KMSUSER, &cluster.token_user_pin))
        .await
        .map_err(|e| internal(&e))?;
    // A bound token with rotate_password = false keeps its PIN: the one documented
    // departure from AWS, which rotates kmsuser's password on every connect.
    if !rotate || !cluster.rotates_pin() {
        changes.push(crate::cluster::users::login_succeeded(&user));
        return Ok(cluster.kmsuser_epoch);
    }
    let fresh = crate::ids::secret(24);
    match crate::cluster::users::kmsuser_password_changes(app, writer, &cluster.id, &fresh).await {
        Ok(rotated) => {
            let epoch = crate::cluster::users::epoch_after(&rotated, &cluster.id);
            changes.extend(rotated);
            store.password = fresh;
            epoch.ok_or(ConnectionErrorCode::InternalError)
        }
        Err(e) => {
            let _ = token.logout().await;
            Err(internal(&e.message))
        }
    }
}

/// `DisconnectCustomKeyStore`.
pub async fn disconnect(
    app: &Arc<App>,
    req: DisconnectCustomKeyStoreRequest,
) -> Result<DisconnectCustomKeyStoreResponse, KmsError> {
    let id = req.custom_key_store_id;
    let writer = app.lock_writer().await;
    let mut store = stored(app, &id)?;
    super::rules::disconnect_allowed(&id, store.state)?;
    store.state = ConnectionState::Disconnecting;
    store.error_code = None;
    store.generation += 1;
    let generation = store.generation;
    app.commit(&writer, vec![Change::Store(store)])
        .await
        .map_err(KmsError::internal)?;
    spawn_disconnect(app, id, generation);
    Ok(DisconnectCustomKeyStoreResponse {})
}

/// Start the background half of a disconnect, after the disconnect delay in force now.
pub fn spawn_disconnect(app: &Arc<App>, id: String, generation: u64) {
    let app = Arc::clone(app);
    let delay = app.settings().disconnect_delay_ms;
    tokio::spawn(async move {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        finish_disconnect(&app, &id, generation).await;
    });
}

async fn finish_disconnect(app: &Arc<App>, id: &str, generation: u64) {
    let writer = app.lock_writer().await;
    let Some(mut store) = app.world().stores.get(id).cloned() else {
        return;
    };
    if store.state != ConnectionState::Disconnecting || store.generation != generation {
        return;
    }
    // End KMS's kmsuser session: the only effect on the cluster.
    if app.kms_login(id, false) {
        match app.token(&store.cluster_id).await {
            Ok(t) => {
                if let Err(e) = t.logout().await {
                    tracing::warn!(error = %e, "logout failed while disconnecting");
                }
            }
            Err(e) => tracing::warn!(error = %e, "token unavailable while disconnecting"),
        }
    }
    store.state = ConnectionState::Disconnected;
    store.set_session(None);
    if let Err(e) = app.commit(&writer, vec![Change::Store(store)]).await {
        tracing::error!(error = %e, "cannot record the disconnect");
    }
}

/// `DeleteCustomKeyStore`: KMS metadata only. It makes no PKCS#11 call and does not consult
/// the cluster at all (it succeeds even if the cluster is gone).
pub async fn delete(
    app: &Arc<App>,
    req: DeleteCustomKeyStoreRequest,
) -> Result<DeleteCustomKeyStoreResponse, KmsError> {
    let id = req.custom_key_store_id;
    let writer = app.lock_writer().await;
    {
        let w = app.world();
        let store = w
            .stores
            .get(&id)
            .filter(|s| mine(s))
            .ok_or_else(|| store_not_found(&id))?;
        let n = w
            .keys
            .values()
            .filter(|k| k.store_id.as_deref() == Some(id.as_str()))
            .count();
        super::rules::delete_allowed(&id, store.state, n)?;
    }
    app.commit(&writer, vec![Change::DelStore(id)])
        .await
        .map_err(KmsError::internal)?;
    Ok(DeleteCustomKeyStoreResponse {})
}

fn entry(s: &KeyStore) -> CustomKeyStoresListEntry {
    let error_code = match s.state {
        ConnectionState::Failed => s.error_code,
        _ => None,
    };
    CustomKeyStoresListEntry {
        custom_key_store_id: Some(s.id.to_string()),
        custom_key_store_name: Some(s.name.clone()),
        custom_key_store_type: Some(CustomKeyStoreType::AwsCloudhsm),
        cloud_hsm_cluster_id: Some(s.cluster_id.to_string()),
        trust_anchor_certificate: Some(s.trust_anchor.clone()),
        connection_state: ConnectionStateType::parse(s.state.as_str()),
        connection_error_code: error_code.and_then(|c| ConnectionErrorCodeType::parse(c.as_str())),
        creation_date: Some(s.creation_date),
        xks_proxy_configuration: None,
    }
}

/// `DescribeCustomKeyStores`.
pub fn describe(
    app: &Arc<App>,
    req: DescribeCustomKeyStoresRequest,
) -> Result<DescribeCustomKeyStoresResponse, KmsError> {
    let (id, name) = (req.custom_key_store_id, req.custom_key_store_name);
    if id.is_some() && name.is_some() {
        return Err(kms_err!(
            Validation,
            "Specify either CustomKeyStoreId or CustomKeyStoreName, not both."
        ));
    }
    let w = app.world();
    let selected: Vec<(&CustomKeyStoreId, &KeyStore)> = match (id.as_deref(), name.as_deref()) {
        (Some(id), _) => {
            let (k, s) = w
                .stores
                .get_key_value(id)
                .filter(|(_, s)| mine(s))
                .ok_or_else(|| store_not_found(id))?;
            vec![(k, s)]
        }
        (_, Some(n)) => {
            let found = w
                .stores
                .iter()
                .find(|(_, s)| mine(s) && s.name == n)
                .ok_or_else(|| {
                    kms_err!(
                        CustomKeyStoreNotFound,
                        "No custom key store is named '{n}'."
                    )
                })?;
            vec![found]
        }
        _ => w.stores.iter().filter(|(_, s)| mine(s)).collect(),
    };
    let limit = req.limit.and_then(|l| usize::try_from(l).ok());
    let (page, next) = paginate(
        selected.into_iter().map(|(k, s)| (k.borrow(), s)),
        "stores",
        req.marker.as_deref(),
        limit.unwrap_or(1000),
    )?;
    Ok(DescribeCustomKeyStoresResponse {
        custom_key_stores: Some(page.into_iter().map(entry).collect()),
        truncated: Some(next.is_some()),
        next_marker: next,
    })
}

/// `UpdateCustomKeyStore`.
pub async fn update(
    app: &Arc<App>,
    req: UpdateCustomKeyStoreRequest,
) -> Result<UpdateCustomKeyStoreResponse, KmsError> {
    let id = req.custom_key_store_id.clone();
    let new_name = req.new_custom_key_store_name.clone();
    let password = req
        .key_store_password
        .as_ref()
        .map(|p| p.expose().to_string());
    let cluster_id = cluster_id_member("CloudHsmClusterId", req.cloud_hsm_cluster_id.clone())?;
    if let Some(m) = first_xks_member!(req) {
        return Err(kms_err!(
            Validation,
            "{m} applies only to external key stores; {id} is an AWS CloudHSM key store."
        ));
    }
    let writer = app.lock_writer().await;
    let mut store = {
        let w = app.world();
        let store = w
            .stores
            .get(&id)
            .filter(|s| mine(s))
            .cloned()
            .ok_or_else(|| store_not_found(&id))?;
        super::rules::update_allowed(
            &id,
            store.state,
            password.is_some() || cluster_id.is_some(),
            new_name.is_some(),
        )?;
        if let Some(n) = &new_name {
            name_free_for(&w, &id, n)?;
        }
        if let Some(c) = &cluster_id {
            related_cluster(&w, &store, c)?;
        }
        store
    };
    if let Some(n) = new_name {
        store.name = n;
    }
    if let Some(p) = password {
        store.password = p;
    }
    if let Some(c) = cluster_id {
        store.cluster_id = c.into();
    }
    app.commit(&writer, vec![Change::Store(store)])
        .await
        .map_err(KmsError::internal)?;
    Ok(UpdateCustomKeyStoreResponse {})
}

/// `UpdateCustomKeyStore`'s new name must not be another store's.
fn name_free_for(w: &World, id: &str, name: &str) -> Result<(), KmsError> {
    if w.stores
        .values()
        .any(|s| mine(s) && s.id != id && s.name == name)
    {
        return Err(kms_err!(
            CustomKeyStoreNameInUse,
            "The custom key store name '{name}' is already used by another custom key store."
        ));
    }
    Ok(())
}

/// `UpdateCustomKeyStore`'s new cluster `c` must exist, share the store's cluster's backup
/// history (or be that cluster), and be usable.
fn related_cluster(w: &World, store: &KeyStore, c: &str) -> Result<(), KmsError> {
    let new = live_cluster(w, c).ok_or_else(|| cluster_not_found(c))?;
    let related = w
        .clusters
        .get(&store.cluster_id)
        .is_some_and(|old| old.lineage == new.lineage)
        || c == store.cluster_id;
    if !related {
        return Err(kms_err!(
            CloudHsmClusterNotRelated,
            "AWS CloudHSM cluster '{c}' does not share a backup history (cluster certificate) with '{}'.",
            store.cluster_id
        ));
    }
    cluster_usable(w, c, true)
}

/// Resume key stores after a restart: `CONNECTED` and `CONNECTING` stores connect again (a
/// `CONNECTED` one without rotating the password), `DISCONNECTING` ones finish.
pub async fn resume(app: &Arc<App>) {
    let stores: Vec<KeyStore> = app.world().stores.values().cloned().collect();
    for s in stores {
        match s.state {
            ConnectionState::Connected | ConnectionState::Connecting => {
                let rotate = s.state == ConnectionState::Connecting;
                let mut s2 = s.clone();
                s2.state = ConnectionState::Connecting;
                s2.generation += 1;
                let g = s2.generation;
                {
                    let writer = app.lock_writer().await;
                    if let Err(e) = app.commit(&writer, vec![Change::Store(s2)]).await {
                        tracing::error!(error = %e, "cannot resume key store");
                        continue;
                    }
                }
                finish_connect(app, &s.id, g, rotate).await;
            }
            ConnectionState::Disconnecting => {
                finish_disconnect(app, &s.id, s.generation).await;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "key_store_tests.rs"]
mod tests;

//! KMS keys: CreateKey (AWS_KMS and AWS_CLOUDHSM origins), DescribeKey, ListKeys, key states,
//! scheduled deletion, descriptions, tags, aliases and key policies (spec §2.7–§2.15, §3).

use super::error::KmsError;
use super::model::{Alias, Key, KeyKind, Origin, StoredKeyState};
use super::{KeyRef, alias_arn, key_arn, paginate, resolve_key, visible_state};
use crate::api::kms::{
    AliasListEntry, CancelKeyDeletionRequest, CancelKeyDeletionResponse, CreateAliasRequest,
    CreateKeyRequest, CreateKeyResponse, CustomerMasterKeySpec, DeleteAliasRequest,
    DescribeKeyRequest, DescribeKeyResponse, DisableKeyRequest, EnableKeyRequest,
    EncryptionAlgorithmSpec, GetKeyPolicyRequest, GetKeyPolicyResponse, KeyAgreementAlgorithmSpec,
    KeyListEntry, KeyManagerType, KeyMetadata, KeySpec, KeyState, KeyUsageType, ListAliasesRequest,
    ListAliasesResponse, ListKeyPoliciesRequest, ListKeyPoliciesResponse, ListKeysRequest,
    ListKeysResponse, ListResourceTagsRequest, ListResourceTagsResponse, MacAlgorithmSpec,
    OriginType, PutKeyPolicyRequest, ScheduleKeyDeletionRequest, ScheduleKeyDeletionResponse,
    SigningAlgorithmSpec, Tag, TagResourceRequest, UntagResourceRequest, UpdateAliasRequest,
    UpdateKeyDescriptionRequest,
};
use crate::app::{App, Change, World};
use crate::kms_err;
use serde_json::json;
use std::sync::Arc;

/// Customer managed keys per account and Region.
pub const MAX_KEYS: usize = 100_000;
/// Aliases per key.
pub const MAX_ALIASES_PER_KEY: usize = 50;
/// Tags per key.
pub const MAX_TAGS: usize = 50;

/// The default key policy, as KMS writes it.
pub fn default_policy(account: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    }))
    .unwrap_or_default()
}

/// The tag rules the model does not state, in AWS's words (see the helpers of [`KmsError`]):
/// at most 50 tags, no key given twice, and no key with the `aws:` prefix in any case. (The
/// lengths of keys and values are the decoder's.)
pub(super) fn check_tags(tags: &[(String, String)]) -> Result<(), KmsError> {
    use crate::tags::TagProblem as P;
    let rules = crate::tags::TagRules {
        max_tags: Some(MAX_TAGS),
        refuse_duplicates: true,
        plain_characters: false,
    };
    match crate::tags::first_problem(tags, &rules) {
        None => Ok(()),
        Some(P::TooMany) => Err(KmsError::too_many_tags()),
        Some(P::ReservedPrefix(_)) => Err(KmsError::reserved_tag_prefix()),
        Some(P::DuplicateKey(_)) => Err(KmsError::duplicate_tag_keys()),
        // The decoder checks a request's lengths; only a seed file's tags get here.
        Some(P::KeyLength("")) => Err(KmsError::validation(
            "TagKey",
            "",
            "Member must have length greater than or equal to 1",
        )),
        Some(P::KeyLength(k)) => Err(KmsError::validation(
            "TagKey",
            k,
            "Member must have length less than or equal to 128",
        )),
        Some(P::ValueLength(_, v)) => Err(KmsError::validation(
            "TagValue",
            v,
            "Member must have length less than or equal to 256",
        )),
        // Not a KMS rule (not asked for above).
        Some(P::KeyCharacters(_) | P::ValueCharacters(..)) => Ok(()),
    }
}

/// Typed tags as pairs.
fn tag_pairs(tags: Vec<Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect()
}

fn not_pending(app: &App, k: &Key) -> Result<(), KmsError> {
    super::rules::manageable(k.state, &key_arn(app, &k.id))
}

/// The `KeyMetadata` of a key.
pub fn metadata(w: &World, k: &Key) -> KeyMetadata {
    let state = visible_state(w, k);
    let spec = k.kind.spec.as_str();
    let mut m = KeyMetadata {
        aws_account_id: Some(super::arn_region_account(&k.arn).1.to_string()),
        key_id: k.id.to_string(),
        arn: Some(k.arn.to_string()),
        creation_date: Some(k.creation_date),
        enabled: Some(state == KeyState::Enabled),
        description: Some(k.description.clone()),
        key_usage: KeyUsageType::parse(k.kind.usage.as_str()),
        key_state: Some(state),
        origin: OriginType::parse(k.origin.as_str()),
        key_manager: Some(KeyManagerType::Customer),
        customer_master_key_spec: CustomerMasterKeySpec::parse(spec),
        key_spec: KeySpec::parse(spec),
        ..Default::default()
    };
    if k.state == StoredKeyState::PendingDeletion {
        m.deletion_date = k.deletion_date;
    }
    if let Some(s) = &k.store_id {
        m.custom_key_store_id = Some(s.to_string());
        // The store's current cluster (after a related-cluster swap, the new one).
        let cluster = w.stores.get(s).map(|s| s.cluster_id.to_string());
        m.cloud_hsm_cluster_id = Some(cluster.unwrap_or_else(|| k.token_label.clone()));
    }
    super::import::material_metadata(k, &mut m);
    algorithms(&mut m, k);
    super::multi_region::describe(w, k, &mut m);
    m
}

/// The algorithm members of a key's `KeyMetadata` (by its spec and usage).
fn algorithms(m: &mut KeyMetadata, k: &Key) {
    fn typed<T>(names: &[&str], parse: fn(&str) -> Option<T>) -> Option<Vec<T>> {
        Some(names.iter().filter_map(|a| parse(a)).collect())
    }
    for (member, names) in super::spec::algorithm_members(k.kind.spec, k.kind.usage) {
        match member {
            "EncryptionAlgorithms" => {
                m.encryption_algorithms = typed(&names, EncryptionAlgorithmSpec::parse);
            }
            "SigningAlgorithms" => {
                m.signing_algorithms = typed(&names, SigningAlgorithmSpec::parse);
            }
            "MacAlgorithms" => m.mac_algorithms = typed(&names, MacAlgorithmSpec::parse),
            _ => {
                m.key_agreement_algorithms = typed(&names, KeyAgreementAlgorithmSpec::parse);
            }
        }
    }
}

/// `CreateKey`.
pub async fn create_key(
    app: &Arc<App>,
    req: CreateKeyRequest,
) -> Result<CreateKeyResponse, KmsError> {
    let key = create(app, new_key_request(req)?, None).await?;
    Ok(CreateKeyResponse {
        key_metadata: Some(metadata(&app.world(), &key)),
    })
}

/// Whether `origin` puts the key in a CloudHSM key store (`AWS_CLOUDHSM`, which needs a
/// store, as a store needs it); the origins cks-sim does not simulate are refused.
fn origin_home(origin: OriginType, store_id: Option<&str>) -> Result<bool, KmsError> {
    match origin {
        OriginType::External => return super::import::external_origin(store_id).map(|()| false),
        OriginType::ExternalKeyStore => {
            return Err(kms_err!(
                UnsupportedOperation,
                "cks-sim does not simulate external key stores (Origin EXTERNAL_KEY_STORE)."
            ));
        }
        _ => {}
    }
    let cloudhsm = origin == OriginType::AwsCloudhsm;
    if cloudhsm && store_id.is_none() {
        return Err(kms_err!(
            UnsupportedOperation,
            "Origin AWS_CLOUDHSM requires a CustomKeyStoreId."
        ));
    }
    if !cloudhsm && store_id.is_some() {
        return Err(kms_err!(
            UnsupportedOperation,
            "A CustomKeyStoreId requires Origin AWS_CLOUDHSM."
        ));
    }
    Ok(cloudhsm)
}

/// A new key, its request checked: everything but where the key will live.
#[derive(Debug)]
pub struct NewKey {
    policy: Option<String>,
    description: String,
    store_id: Option<String>,
    tags: Vec<(String, String)>,
    kind: KeyKind,
    cloudhsm: bool,
    external: bool,
    multi_region: bool,
}

impl NewKey {
    /// A symmetric encryption key with this description, in the CloudHSM key store
    /// `store_id` (origin `AWS_CLOUDHSM`) or else in KMS (`AWS_KMS`): the seed's keys.
    pub fn symmetric(description: String, store_id: Option<String>) -> Result<Self, KmsError> {
        let cloudhsm = store_id.is_some();
        Ok(NewKey {
            policy: None,
            description,
            store_id,
            tags: Vec::new(),
            kind: super::asymmetric::checked_kind("SYMMETRIC_DEFAULT", None, cloudhsm)?,
            cloudhsm,
            external: false,
            multi_region: false,
        })
    }
}

/// Check a CreateKey request's domain rules in AWS's order and words (the decoder checked
/// the model's).
fn new_key_request(req: CreateKeyRequest) -> Result<NewKey, KmsError> {
    if let Some(p) = &req.policy {
        super::rules::key_policy(p)?;
    }
    let usage = req.key_usage.unwrap_or(KeyUsageType::EncryptDecrypt);
    if req.key_spec.is_some() && req.customer_master_key_spec.is_some() {
        return Err(kms_err!(
            Validation,
            "Specify KeySpec or CustomerMasterKeySpec, not both."
        ));
    }
    let spec = req.key_spec.map(KeySpec::as_str);
    let spec = spec
        .or(req
            .customer_master_key_spec
            .map(CustomerMasterKeySpec::as_str))
        .unwrap_or("SYMMETRIC_DEFAULT");
    let origin = req.origin.unwrap_or(OriginType::AwsKms);
    let multi = req.multi_region.unwrap_or(false);
    if req.xks_key_id.is_some() {
        return Err(kms_err!(
            UnsupportedOperation,
            "XksKeyId applies only to external key stores, which cks-sim does not support."
        ));
    }
    let tags = tag_pairs(req.tags.unwrap_or_default());
    check_tags(&tags)?;
    let store_id = req.custom_key_store_id;
    let cloudhsm = origin_home(origin, store_id.as_deref())?;
    let given_usage = req.key_usage.map(|_| usage.as_str());
    let kind = super::asymmetric::checked_kind(spec, given_usage, cloudhsm)?;
    let external = origin == OriginType::External;
    if external {
        super::import::importable_kind(&kind)?;
    }
    if multi && cloudhsm {
        // AWS's documentation says so ("you cannot create a multi-Region key in a custom key
        // store"); the exact message of its refusal was not found: this wording is cks-sim's.
        return Err(kms_err!(
            UnsupportedOperation,
            "Multi-Region keys cannot be created in a custom key store."
        ));
    }
    Ok(NewKey {
        policy: req.policy,
        description: req.description.unwrap_or_default(),
        store_id,
        tags,
        kind,
        cloudhsm,
        external,
        multi_region: multi,
    })
}

/// The label of the token a new key's material goes on, with the checks that decide whether
/// it can go there now: the account's key quota, and for a CloudHSM key a connected store
/// whose cluster is usable and reachable.
fn key_home(app: &App, store_id: Option<&String>) -> Result<String, KmsError> {
    let w = app.world();
    if w.keys.values().filter(|k| super::key_visible(k)).count() >= MAX_KEYS {
        return Err(kms_err!(
            LimitExceeded,
            "This account has {MAX_KEYS} KMS keys in this Region, the maximum."
        ));
    }
    Ok(match store_id {
        Some(sid) => {
            let s = super::key_store::connected(&w, sid, "before creating KMS keys in it")?;
            super::key_store::cluster_usable(&w, &s.cluster_id, true).map_err(|e| {
                if e.kind == super::error::KmsErrorKind::CloudHsmClusterInvalidConfiguration {
                    e
                } else {
                    kms_err!(
                        KmsInvalidState,
                        "KMS cannot communicate with your CloudHSM cluster: {}",
                        e.message
                    )
                }
            })?;
            reachable(&w, &s.cluster_id)?;
            s.cluster_id.to_string()
        }
        None => app.config.internal_token_label.clone(),
    })
}

/// "KMS cannot communicate with your CloudHSM cluster", with the token's error.
fn cannot_communicate(e: impl std::fmt::Display) -> KmsError {
    kms_err!(
        KmsInvalidState,
        "KMS cannot communicate with your CloudHSM cluster: {e}"
    )
}

/// The token of a new key and its material on it (`object`, named by `arn`): none yet for an
/// `EXTERNAL` key, whose material comes with ImportKeyMaterial. Returns the token and the
/// public key of an asymmetric key.
async fn new_material(
    app: &App,
    new: &NewKey,
    token_label: &str,
    arn: &str,
    object: [u8; 16],
) -> Result<(Arc<crate::hsm::Token>, Option<String>), KmsError> {
    let token = if new.cloudhsm {
        app.token(token_label).await
    } else {
        app.internal_token().await
    }
    .map_err(cannot_communicate)?;
    super::asymmetric::require_offered(&token, &new.kind).await?;
    if new.external {
        return Ok((token, None));
    }
    let public_key = super::asymmetric::generate_material(&token, arn, object, &new.kind)
        .await
        .map_err(|e| {
            if new.cloudhsm {
                cannot_communicate(e)
            } else {
                KmsError::internal(e)
            }
        })?;
    Ok((token, public_key))
}

/// Create a key (CreateKey's domain half; the seed's keys come here directly), with a chosen
/// key ID for the seed (`fixed_id`) or a drawn one.
pub async fn create(
    app: &Arc<App>,
    new: NewKey,
    fixed_id: Option<uuid::Uuid>,
) -> Result<Key, KmsError> {
    let writer = app.lock_writer().await;
    let (id, object) = new_key_id(app, fixed_id, new.multi_region);
    if app
        .world()
        .keys
        .contains_key(&storage_id(app, &id, new.multi_region))
    {
        return Err(kms_err!(AlreadyExists, "Key {id} already exists."));
    }
    let arn = key_arn(app, &id);
    let token_label = key_home(app, new.store_id.as_ref())?;
    let (token, public_key) = new_material(app, &new, &token_label, &arn, object).await?;
    app.failpoints.hit("create_key.material_made");
    let key = Key {
        id: id.into(),
        arn: arn.into(),
        creation_date: app.now(),
        origin: if new.cloudhsm {
            Origin::AwsCloudhsm
        } else if new.external {
            Origin::External
        } else {
            Origin::AwsKms
        },
        token_label,
        state: StoredKeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        tags: new.tags.into_iter().collect(),
        policy: new
            .policy
            .unwrap_or_else(|| default_policy(&crate::namespace::current(app).account)),
        kind: KeyKind {
            public_key,
            ..new.kind
        },
        material: Default::default(),
        multi_region: new
            .multi_region
            .then_some(super::model::MultiRegionRole::Primary),
        description: new.description,
        store_id: new.store_id.map(Into::into),
    };
    if let Err(e) = app.commit(&writer, vec![Change::Key(key.clone())]).await {
        // Nothing half-done: the material of a key that was never acknowledged goes too.
        let _ = token.destroy(object).await;
        return Err(KmsError::internal(e));
    }
    Ok(key)
}

/// A new key's ID and the bytes naming its material: a UUID (`fixed_id` for seeds), or an
/// `mrk-` ID for a multi-Region key.
fn new_key_id(app: &App, fixed_id: Option<uuid::Uuid>, multi_region: bool) -> (String, [u8; 16]) {
    if multi_region {
        loop {
            let id = super::multi_region::new_mrk_id();
            if let Some(object) = super::multi_region::object_id(&id)
                && !app.world().keys.contains_key(&storage_id(app, &id, true))
            {
                return (id, object);
            }
        }
    }
    let id = fixed_id.unwrap_or_else(uuid::Uuid::new_v4);
    (id.to_string(), *id.as_bytes())
}

/// The storage ID a new key `id` gets in the namespace of the request being served.
fn storage_id(app: &App, id: &str, multi_region: bool) -> String {
    if multi_region {
        let ns = crate::namespace::current(app);
        super::multi_region::storage_id(id, &ns.account, &ns.region)
    } else {
        id.to_string()
    }
}

/// Whether a connected store's cluster can be reached for cryptography (spec §2.11): the
/// cluster exists, has an active HSM, the network is up and the token works.
pub(crate) fn reachable(w: &World, cluster_id: &str) -> Result<(), KmsError> {
    let cannot = || {
        kms_err!(
            KmsInvalidState,
            "KMS cannot communicate with your CloudHSM cluster {cluster_id}."
        )
    };
    let c = super::key_store::live_cluster(w, cluster_id).ok_or_else(cannot)?;
    if c.faults.network_down || c.faults.token_failing || w.active_hsms(cluster_id).is_empty() {
        return Err(cannot());
    }
    Ok(())
}

/// `DescribeKey`.
pub fn describe_key(
    app: &Arc<App>,
    req: DescribeKeyRequest,
) -> Result<DescribeKeyResponse, KmsError> {
    let w = app.world();
    let k = resolve_key(app, &w, &req.key_id, KeyRef::AnyName)?;
    Ok(DescribeKeyResponse {
        key_metadata: Some(metadata(&w, &k)),
    })
}

/// A page size from a request's `Limit` (the decoder checked its range).
fn page_size(limit: Option<i64>, default: usize) -> usize {
    limit
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(default)
}

/// `ListKeys`.
pub fn list_keys(app: &Arc<App>, req: ListKeysRequest) -> Result<ListKeysResponse, KmsError> {
    let w = app.world();
    // Start at the marker (a range, not a scan) and build entries only for the page.
    let after = req
        .marker
        .as_deref()
        .map(|m| super::parse_marker("keys", m))
        .transpose()?;
    let range = match &after {
        Some(a) => w
            .keys
            .range::<String, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
        None => w.keys.range::<String, _>(..),
    };
    let (page, next) = paginate(
        range.filter(|(_, k)| super::key_visible(k)),
        "keys",
        None,
        page_size(req.limit, 100),
    )?;
    let keys = page
        .into_iter()
        .map(|k| KeyListEntry {
            key_id: Some(k.id.to_string()),
            key_arn: Some(k.arn.to_string()),
        })
        .collect();
    Ok(ListKeysResponse {
        keys: Some(keys),
        truncated: Some(next.is_some()),
        next_marker: next,
    })
}

async fn mutate_key(
    app: &Arc<App>,
    raw: &str,
    how: KeyRef,
    f: impl FnOnce(&mut Key, &World) -> Result<Vec<Change>, KmsError>,
) -> Result<Key, KmsError> {
    let writer = app.lock_writer().await;
    let (key, changes) = {
        let w = app.world();
        let mut k = Arc::unwrap_or_clone(resolve_key(app, &w, raw, how)?);
        let mut changes = f(&mut k, &w)?;
        changes.insert(0, Change::Key(k.clone()));
        (k, changes)
    };
    app.commit(&writer, changes)
        .await
        .map_err(KmsError::internal)?;
    Ok(key)
}

/// `EnableKey`.
pub async fn enable_key(app: &Arc<App>, req: EnableKeyRequest) -> Result<(), KmsError> {
    set_enabled(app, &req.key_id, true).await
}

/// `DisableKey`.
pub async fn disable_key(app: &Arc<App>, req: DisableKeyRequest) -> Result<(), KmsError> {
    set_enabled(app, &req.key_id, false).await
}

/// `EnableKey` / `DisableKey`: also accepted while `Unavailable`, applied on reconnect.
async fn set_enabled(app: &Arc<App>, key_id: &str, enabled: bool) -> Result<(), KmsError> {
    mutate_key(app, key_id, KeyRef::IdOrArn, |k, _| {
        not_pending(app, k)?;
        if super::material::pending_import(k) {
            return Err(super::crypto::pending_import(k));
        }
        k.state = if enabled {
            StoredKeyState::Enabled
        } else {
            StoredKeyState::Disabled
        };
        Ok(vec![])
    })
    .await?;
    Ok(())
}

/// `ScheduleKeyDeletion` (7–30 days, default 30; allowed while the store is disconnected).
pub async fn schedule_deletion(
    app: &Arc<App>,
    req: ScheduleKeyDeletionRequest,
) -> Result<ScheduleKeyDeletionResponse, KmsError> {
    let days = super::rules::pending_window(req.pending_window_in_days)?;
    let now = app.now();
    let k = mutate_key(app, &req.key_id, KeyRef::IdOrArn, |k, w| {
        not_pending(app, k)?;
        let replicas = super::multi_region::replicas_remain(w, k);
        super::rules::schedule_deletion(k, now, days, replicas);
        Ok(vec![])
    })
    .await?;
    let state = match k.state {
        StoredKeyState::PendingReplicaDeletion => KeyState::PendingReplicaDeletion,
        _ => KeyState::PendingDeletion,
    };
    Ok(ScheduleKeyDeletionResponse {
        key_id: Some(k.arn.into()),
        key_state: Some(state),
        pending_window_in_days: Some(i64::from(days)),
        deletion_date: k.deletion_date,
    })
}

/// `CancelKeyDeletion`: the key ends up `Disabled`.
pub async fn cancel_deletion(
    app: &Arc<App>,
    req: CancelKeyDeletionRequest,
) -> Result<CancelKeyDeletionResponse, KmsError> {
    let k = mutate_key(app, &req.key_id, KeyRef::IdOrArn, |k, _| {
        super::rules::cancel_deletion(k)?;
        Ok(vec![])
    })
    .await?;
    Ok(CancelKeyDeletionResponse {
        key_id: Some(k.arn.into()),
    })
}

/// `UpdateKeyDescription`.
pub async fn update_description(
    app: &Arc<App>,
    req: UpdateKeyDescriptionRequest,
) -> Result<(), KmsError> {
    mutate_key(app, &req.key_id, KeyRef::IdOrArn, |k, _| {
        not_pending(app, k)?;
        k.description = req.description;
        Ok(vec![])
    })
    .await?;
    Ok(())
}

/// `TagResource`.
pub async fn tag_resource(app: &Arc<App>, req: TagResourceRequest) -> Result<(), KmsError> {
    let tags = tag_pairs(req.tags);
    check_tags(&tags)?;
    mutate_key(app, &req.key_id, KeyRef::IdOrArn, |k, _| {
        not_pending(app, k)?;
        for (t, v) in tags {
            k.tags.insert(t, v);
        }
        if k.tags.len() > MAX_TAGS {
            return Err(KmsError::too_many_tags());
        }
        Ok(vec![])
    })
    .await?;
    Ok(())
}

/// `UntagResource` (absent keys are ignored).
pub async fn untag_resource(app: &Arc<App>, req: UntagResourceRequest) -> Result<(), KmsError> {
    mutate_key(app, &req.key_id, KeyRef::IdOrArn, |k, _| {
        not_pending(app, k)?;
        for t in &req.tag_keys {
            k.tags.remove(t);
        }
        Ok(vec![])
    })
    .await?;
    Ok(())
}

/// `ListResourceTags`.
pub fn list_resource_tags(
    app: &Arc<App>,
    req: ListResourceTagsRequest,
) -> Result<ListResourceTagsResponse, KmsError> {
    let w = app.world();
    let k = resolve_key(app, &w, &req.key_id, KeyRef::IdOrArn)?;
    let (page, next) = paginate(
        k.tags.iter().map(|(t, v)| {
            let tag = Tag {
                tag_key: t.clone(),
                tag_value: v.clone(),
            };
            (t, tag)
        }),
        "tags",
        req.marker.as_deref(),
        page_size(req.limit, 50),
    )?;
    Ok(ListResourceTagsResponse {
        tags: Some(page),
        truncated: Some(next.is_some()),
        next_marker: next,
    })
}

/// An alias name's domain rules: the `alias/` prefix and a name after it, and no `:`. The
/// characters are checked here too (the decoder checks them for requests; the seed's aliases
/// come without one).
fn alias_name(n: &str) -> Result<(), KmsError> {
    if !n.starts_with("alias/") || n.len() == "alias/".len() {
        return Err(KmsError::alias_prefix_missing());
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b))
    {
        return Err(KmsError::validation(
            "AliasName",
            n,
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ));
    }
    if n.contains(':') {
        return Err(KmsError::alias_invalid_characters(n));
    }
    Ok(())
}

fn target_key(app: &App, w: &World, raw: &str) -> Result<Arc<Key>, KmsError> {
    let k = resolve_key(app, w, raw, KeyRef::IdOrArn)?;
    not_pending(app, &k)?;
    Ok(k)
}

/// `CreateAlias`.
pub async fn create_alias(app: &Arc<App>, req: CreateAliasRequest) -> Result<(), KmsError> {
    new_alias(app, req.alias_name, &req.target_key_id).await
}

/// Create the alias `name` of the key `target` (CreateAlias's domain half; the seed's aliases
/// come here directly).
pub async fn new_alias(app: &Arc<App>, name: String, target: &str) -> Result<(), KmsError> {
    alias_name(&name)?;
    if name.starts_with("alias/aws/") {
        // AWS's wording for a reserved alias name was not found; these words are cks-sim's.
        return Err(kms_err!(
            InvalidAliasName,
            "Aliases beginning with alias/aws/ are reserved for AWS managed keys."
        ));
    }
    let writer = app.lock_writer().await;
    let alias = {
        let w = app.world();
        let k = target_key(app, &w, target)?;
        if w.aliases.contains_key(&super::alias_id(app, &name)) {
            return Err(kms_err!(
                AlreadyExists,
                "An alias with the name {} already exists",
                alias_arn(app, &name)
            ));
        }
        if w.aliases
            .values()
            .filter(|a| super::multi_region::alias_names(app, a, &k))
            .count()
            >= MAX_ALIASES_PER_KEY
        {
            return Err(kms_err!(
                LimitExceeded,
                "A KMS key can have at most {MAX_ALIASES_PER_KEY} aliases."
            ));
        }
        let now = app.now();
        let (account, region) = crate::namespace::for_new(app);
        Alias {
            name,
            target_key_id: k.id.to_string(),
            creation_date: now,
            last_updated_date: now,
            account,
            region,
        }
    };
    app.commit(&writer, vec![Change::Alias(alias)])
        .await
        .map_err(KmsError::internal)
}

/// `UpdateAlias`: fails only if the new target is pending deletion.
pub async fn update_alias(app: &Arc<App>, req: UpdateAliasRequest) -> Result<(), KmsError> {
    let name = req.alias_name;
    alias_name(&name)?;
    let writer = app.lock_writer().await;
    let alias = {
        let w = app.world();
        let mut a = w
            .aliases
            .get(&super::alias_id(app, &name))
            .cloned()
            .ok_or_else(|| kms_err!(NotFound, "Alias {} is not found.", alias_arn(app, &name)))?;
        let k = target_key(app, &w, &req.target_key_id)?;
        a.target_key_id = k.id.to_string();
        a.last_updated_date = app.now();
        a
    };
    app.commit(&writer, vec![Change::Alias(alias)])
        .await
        .map_err(KmsError::internal)
}

/// `DeleteAlias`.
pub async fn delete_alias(app: &Arc<App>, req: DeleteAliasRequest) -> Result<(), KmsError> {
    let name = req.alias_name;
    alias_name(&name)?;
    let writer = app.lock_writer().await;
    let id = super::alias_id(app, &name);
    if !app.world().aliases.contains_key(&id) {
        return Err(kms_err!(
            NotFound,
            "Alias {} is not found.",
            alias_arn(app, &name)
        ));
    }
    app.commit(&writer, vec![Change::DelAlias(id)])
        .await
        .map_err(KmsError::internal)
}

/// `ListAliases`.
pub fn list_aliases(
    app: &Arc<App>,
    req: ListAliasesRequest,
) -> Result<ListAliasesResponse, KmsError> {
    let w = app.world();
    let filter = match &req.key_id {
        Some(raw) => Some(resolve_key(app, &w, raw, KeyRef::IdOrArn)?.id.clone()),
        None => None,
    };
    let (page, next) = paginate(
        w.aliases
            .iter()
            .filter(|(_, a)| crate::namespace::sees(&a.account, &a.region))
            .filter(|(_, a)| filter.as_ref().is_none_or(|f| &a.target_key_id == f))
            .map(|(n, a)| {
                let entry = AliasListEntry {
                    alias_name: Some(a.name.clone()),
                    alias_arn: Some(alias_arn(app, &a.name)),
                    target_key_id: Some(a.target_key_id.clone()),
                    creation_date: Some(a.creation_date),
                    last_updated_date: Some(a.last_updated_date),
                };
                (n, entry)
            }),
        "aliases",
        req.marker.as_deref(),
        page_size(req.limit, 50),
    )?;
    Ok(ListAliasesResponse {
        aliases: Some(page),
        truncated: Some(next.is_some()),
        next_marker: next,
    })
}

/// The only key policy name is `default`.
fn policy_name(name: Option<&str>) -> Result<(), KmsError> {
    match name {
        None | Some("default") => Ok(()),
        Some(other) => Err(kms_err!(
            NotFound,
            "Policy '{other}' does not exist: the only key policy name is 'default'."
        )),
    }
}

/// `GetKeyPolicy`.
pub fn get_key_policy(
    app: &Arc<App>,
    req: GetKeyPolicyRequest,
) -> Result<GetKeyPolicyResponse, KmsError> {
    policy_name(req.policy_name.as_deref())?;
    let w = app.world();
    let k = resolve_key(app, &w, &req.key_id, KeyRef::IdOrArn)?;
    Ok(GetKeyPolicyResponse {
        policy: Some(k.policy.clone()),
        policy_name: Some("default".into()),
    })
}

/// `PutKeyPolicy`.
pub async fn put_key_policy(app: &Arc<App>, req: PutKeyPolicyRequest) -> Result<(), KmsError> {
    policy_name(req.policy_name.as_deref())?;
    super::rules::key_policy(&req.policy)?;
    mutate_key(app, &req.key_id, KeyRef::IdOrArn, |k, _| {
        k.policy = req.policy;
        Ok(vec![])
    })
    .await?;
    Ok(())
}

/// `ListKeyPolicies`.
pub fn list_key_policies(
    app: &Arc<App>,
    req: ListKeyPoliciesRequest,
) -> Result<ListKeyPoliciesResponse, KmsError> {
    let w = app.world();
    resolve_key(app, &w, &req.key_id, KeyRef::IdOrArn)?;
    Ok(ListKeyPoliciesResponse {
        policy_names: Some(vec!["default".into()]),
        truncated: Some(false),
        next_marker: None,
    })
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;

//! KMS keys: CreateKey (AWS_KMS and AWS_CLOUDHSM origins), DescribeKey, ListKeys, key states,
//! scheduled deletion, descriptions, tags, aliases and key policies (spec §2.7–§2.15, §3).

use super::error::KmsError;
use super::model::{Alias, Key, KeyKind, KeyStateU, Origin};
use super::{
    KeyRef, alias_arn, input_err, key_arn, paginate, resolve_key, visible_state, with_page,
};
use crate::app::{App, Change, World};
use crate::kms_err;
use crate::protocol::input::Input;
use serde_json::{Map, Value, json};
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

fn check_policy(p: &str) -> Result<(), KmsError> {
    match serde_json::from_str::<Value>(p) {
        Ok(Value::Object(o)) if o.contains_key("Statement") => Ok(()),
        _ => Err(kms_err!(
            MalformedPolicyDocument,
            "The key policy is not a JSON policy document with a Statement."
        )),
    }
}

/// The tag rules, in AWS's words (see the helpers of [`KmsError`]): at most 50 tags, keys and
/// values within their lengths, no key given twice, and no key with the `aws:` prefix in any
/// case.
pub(super) fn check_tags(tags: &[(String, String)]) -> Result<(), KmsError> {
    if tags.len() > MAX_TAGS {
        return Err(KmsError::too_many_tags());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(KmsError::validation(
                "TagKey",
                k,
                "Member must have length between 1 and 128",
            ));
        }
        if v.chars().count() > 256 {
            return Err(KmsError::validation(
                "TagValue",
                v,
                "Member must have length less than or equal to 256",
            ));
        }
        if k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(KmsError::reserved_tag_prefix());
        }
        if !seen.insert(k.as_str()) {
            return Err(KmsError::duplicate_tag_keys());
        }
    }
    Ok(())
}

fn not_pending(app: &App, k: &Key) -> Result<(), KmsError> {
    super::rules::manageable(k.state, &key_arn(app, &k.id))
}

/// The `KeyMetadata` of a key.
pub fn metadata(_app: &App, w: &World, k: &Key) -> Value {
    let state = visible_state(w, k);
    let mut m = Map::new();
    m.insert(
        "AWSAccountId".into(),
        json!(super::arn_region_account(&k.arn).1),
    );
    m.insert("KeyId".into(), json!(k.id));
    m.insert("Arn".into(), json!(k.arn));
    m.insert("CreationDate".into(), json!(k.creation_date));
    m.insert("Enabled".into(), json!(state == "Enabled"));
    m.insert("Description".into(), json!(k.description));
    m.insert("KeyUsage".into(), json!(k.kind.usage.as_str()));
    m.insert("KeyState".into(), json!(state));
    if k.state == KeyStateU::PendingDeletion
        && let Some(d) = k.deletion_date
    {
        m.insert("DeletionDate".into(), json!(d));
    }
    m.insert("Origin".into(), json!(k.origin.as_str()));
    if let Some(s) = &k.store_id {
        m.insert("CustomKeyStoreId".into(), json!(s));
        // The store's current cluster (after a related-cluster swap, the new one).
        let cluster = w
            .stores
            .get(s)
            .map(|s| s.cluster_id.clone())
            .unwrap_or_else(|| k.token_label.clone());
        m.insert("CloudHsmClusterId".into(), json!(cluster));
    }
    m.insert("KeyManager".into(), json!("CUSTOMER"));
    super::import::material_metadata(k, &mut m);
    m.insert("CustomerMasterKeySpec".into(), json!(k.kind.spec.as_str()));
    m.insert("KeySpec".into(), json!(k.kind.spec.as_str()));
    for (member, algorithms) in super::spec::algorithm_members(k.kind.spec, k.kind.usage) {
        m.insert(member.into(), json!(algorithms));
    }
    super::multi_region::describe(w, k, &mut m);
    Value::Object(m)
}

const KEY_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ECC_NIST_EDWARDS25519",
];
const KEY_USAGES: &[&str] = &[
    "SIGN_VERIFY",
    "ENCRYPT_DECRYPT",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
];
const ORIGINS: &[&str] = &["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];

fn enum_member<'a>(
    input: &'a Input,
    m: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, KmsError> {
    let Some(v) = input.opt_str(m).map_err(input_err)? else {
        return Ok(None);
    };
    if !allowed.contains(&v) {
        return Err(KmsError::validation(
            m,
            v,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ));
    }
    Ok(Some(v))
}

/// `CreateKey`.
pub async fn create_key(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    create_key_with_id(app, input, None).await
}

/// `CreateKey` with a fixed key ID (seeding), under every rule of the real operation.
/// The `Policy` member of CreateKey, checked (at most 32 KB, a policy document).
pub(super) fn policy_member(input: &Input) -> Result<Option<String>, KmsError> {
    let policy = input
        .str_len("Policy", 1, 131_072)
        .map_err(input_err)?
        .map(str::to_string);
    if let Some(p) = &policy {
        if p.len() > 32 * 1024 {
            return Err(kms_err!(
                LimitExceeded,
                "The key policy exceeds the 32 KB limit."
            ));
        }
        check_policy(p)?;
    }
    Ok(policy)
}

/// Whether `origin` puts the key in a CloudHSM key store (`AWS_CLOUDHSM`, which needs a
/// store, as a store needs it); the origins cks-sim does not simulate are refused.
fn origin_home(origin: &str, store_id: Option<&str>) -> Result<bool, KmsError> {
    match origin {
        "EXTERNAL" => return super::import::external_origin(store_id).map(|()| false),
        "EXTERNAL_KEY_STORE" => {
            return Err(kms_err!(
                UnsupportedOperation,
                "cks-sim does not simulate external key stores (Origin EXTERNAL_KEY_STORE)."
            ));
        }
        _ => {}
    }
    let cloudhsm = origin == "AWS_CLOUDHSM";
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

/// A CreateKey request, validated: everything but where the key will live.
struct NewKey {
    policy: Option<String>,
    description: String,
    store_id: Option<String>,
    tags: Vec<(String, String)>,
    kind: KeyKind,
    cloudhsm: bool,
    external: bool,
    multi_region: bool,
}

/// Validate a CreateKey request in AWS's order and words.
fn new_key_request(input: &Input) -> Result<NewKey, KmsError> {
    let policy = policy_member(input)?;
    let description = input
        .str_len("Description", 0, 8192)
        .map_err(input_err)?
        .unwrap_or("")
        .to_string();
    let usage = enum_member(input, "KeyUsage", KEY_USAGES)?.unwrap_or("ENCRYPT_DECRYPT");
    let spec = enum_member(input, "KeySpec", KEY_SPECS)?;
    let cmk_spec = enum_member(input, "CustomerMasterKeySpec", KEY_SPECS)?;
    if spec.is_some() && cmk_spec.is_some() {
        return Err(kms_err!(
            Validation,
            "Specify KeySpec or CustomerMasterKeySpec, not both."
        ));
    }
    let spec = spec.or(cmk_spec).unwrap_or("SYMMETRIC_DEFAULT");
    let origin = enum_member(input, "Origin", ORIGINS)?.unwrap_or("AWS_KMS");
    let store_id = input
        .str_len("CustomKeyStoreId", 1, 64)
        .map_err(input_err)?
        .map(str::to_string);
    let multi = input
        .opt_bool("MultiRegion")
        .map_err(input_err)?
        .unwrap_or(false);
    let _bypass = input
        .opt_bool("BypassPolicyLockoutSafetyCheck")
        .map_err(input_err)?;
    if input.has("XksKeyId") {
        return Err(kms_err!(
            UnsupportedOperation,
            "XksKeyId applies only to external key stores, which cks-sim does not support."
        ));
    }
    let tags = input
        .opt_tags("Tags", "TagKey", "TagValue")
        .map_err(input_err)?
        .unwrap_or_default();
    check_tags(&tags)?;
    let cloudhsm = origin_home(origin, store_id.as_deref())?;
    let kind =
        super::asymmetric::checked_kind(spec, input.has("KeyUsage").then_some(usage), cloudhsm)?;
    let external = origin == "EXTERNAL";
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
        policy,
        description,
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
            s.cluster_id.clone()
        }
        None => app.config.internal_token_label.clone(),
    })
}

/// `CreateKey` with a chosen key ID (the seed's keys; [`create_key`] draws one).
pub async fn create_key_with_id(
    app: &Arc<App>,
    input: &Input,
    fixed_id: Option<uuid::Uuid>,
) -> Result<Value, KmsError> {
    let NewKey {
        policy,
        description,
        store_id,
        tags,
        kind,
        cloudhsm,
        external,
        multi_region,
    } = new_key_request(input)?;
    let _w = app.writer.lock().await;
    let (id, object) = new_key_id(app, fixed_id, multi_region);
    if app
        .world()
        .keys
        .contains_key(&storage_id(app, &id, multi_region))
    {
        return Err(kms_err!(AlreadyExists, "Key {id} already exists."));
    }
    let arn = key_arn(app, &id);
    let token_label = key_home(app, store_id.as_ref())?;
    let token = if cloudhsm {
        app.token(&token_label).await
    } else {
        app.internal_token().await
    }
    .map_err(|e| {
        kms_err!(
            KmsInvalidState,
            "KMS cannot communicate with your CloudHSM cluster: {e}"
        )
    })?;
    super::asymmetric::require_offered(&token, &kind).await?;
    let public_key = if external {
        Ok(None) // The material comes with ImportKeyMaterial.
    } else {
        super::asymmetric::generate_material(&token, &arn, object, &kind).await
    }
    .map_err(|e| {
        if cloudhsm {
            kms_err!(
                KmsInvalidState,
                "KMS cannot communicate with your CloudHSM cluster: {e}"
            )
        } else {
            KmsError::internal(e)
        }
    })?;
    app.failpoints.hit("create_key.material_made");
    let key = Key {
        id,
        arn,
        creation_date: app.now(),
        description,
        origin: if cloudhsm {
            Origin::AwsCloudhsm
        } else if external {
            Origin::External
        } else {
            Origin::AwsKms
        },
        store_id,
        token_label,
        state: KeyStateU::Enabled,
        deletion_date: None,
        pending_window_days: None,
        tags: tags.into_iter().collect(),
        policy: policy.unwrap_or_else(|| default_policy(&crate::namespace::current(app).account)),
        kind: KeyKind { public_key, ..kind },
        material: Default::default(),
        multi_region: multi_region.then_some(super::model::MultiRegionRole::Primary),
    };
    if let Err(e) = app.commit(vec![Change::Key(key.clone())]).await {
        // Nothing half-done: the material of a key that was never acknowledged goes too.
        let _ = token.destroy(object).await;
        return Err(KmsError::internal(e));
    }
    let w = app.world();
    Ok(json!({ "KeyMetadata": metadata(app, &w, &key) }))
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

pub(super) fn key_id_member<'a>(input: &'a Input, m: &str) -> Result<&'a str, KmsError> {
    input
        .opt_str(m)
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing(m))
}

/// `DescribeKey`.
pub fn describe_key(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let w = app.world();
    let k = resolve_key(app, &w, raw, KeyRef::AnyName)?;
    Ok(json!({ "KeyMetadata": metadata(app, &w, &k) }))
}

/// `ListKeys`.
pub fn list_keys(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let limit = input
        .opt_int("Limit", 1, 1000)
        .map_err(input_err)?
        .unwrap_or(100);
    let marker = input.str_len("Marker", 1, 1024).map_err(input_err)?;
    let w = app.world();
    // Start at the marker (a range, not a scan) and build JSON only for the page.
    let after = marker.map(|m| super::parse_marker("keys", m)).transpose()?;
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
        usize::try_from(limit).unwrap_or(100),
    )?;
    let page: Vec<Value> = page
        .into_iter()
        .map(|k| json!({"KeyId": k.id, "KeyArn": k.arn}))
        .collect();
    let mut body = Map::new();
    body.insert("Keys".into(), Value::Array(page));
    Ok(with_page(body, next))
}

async fn mutate_key(
    app: &Arc<App>,
    raw: &str,
    how: KeyRef,
    f: impl FnOnce(&mut Key, &World) -> Result<Vec<Change>, KmsError>,
) -> Result<Key, KmsError> {
    let _w = app.writer.lock().await;
    let (key, changes) = {
        let w = app.world();
        let mut k = Arc::unwrap_or_clone(resolve_key(app, &w, raw, how)?);
        let mut changes = f(&mut k, &w)?;
        changes.insert(0, Change::Key(k.clone()));
        (k, changes)
    };
    app.commit(changes).await.map_err(KmsError::internal)?;
    Ok(key)
}

/// `EnableKey` / `DisableKey`: also accepted while `Unavailable`, applied on reconnect.
pub async fn set_enabled(app: &Arc<App>, input: &Input, enabled: bool) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    mutate_key(app, raw, KeyRef::IdOrArn, |k, _| {
        not_pending(app, k)?;
        if super::material::pending_import(k) {
            return Err(super::crypto::pending_import(k));
        }
        k.state = if enabled {
            KeyStateU::Enabled
        } else {
            KeyStateU::Disabled
        };
        Ok(vec![])
    })
    .await?;
    Ok(json!({}))
}

/// `ScheduleKeyDeletion` (7–30 days, default 30; allowed while the store is disconnected).
pub async fn schedule_deletion(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let days = super::rules::pending_window(
        input
            .opt_int("PendingWindowInDays", i64::MIN, i64::MAX)
            .map_err(input_err)?,
    )?;
    let now = app.now();
    let k = mutate_key(app, raw, KeyRef::IdOrArn, |k, w| {
        not_pending(app, k)?;
        let replicas = super::multi_region::replicas_remain(w, k);
        super::rules::schedule_deletion(k, now, days, replicas);
        Ok(vec![])
    })
    .await?;
    let state = match k.state {
        KeyStateU::PendingReplicaDeletion => "PendingReplicaDeletion",
        _ => "PendingDeletion",
    };
    let mut out = json!({ "KeyId": k.arn, "KeyState": state, "PendingWindowInDays": days });
    if let Some(d) = k.deletion_date {
        out["DeletionDate"] = json!(d);
    }
    Ok(out)
}

/// `CancelKeyDeletion`: the key ends up `Disabled`.
pub async fn cancel_deletion(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let k = mutate_key(app, raw, KeyRef::IdOrArn, |k, _| {
        super::rules::cancel_deletion(k)?;
        Ok(vec![])
    })
    .await?;
    Ok(json!({ "KeyId": k.arn }))
}

/// `UpdateKeyDescription`.
pub async fn update_description(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let d = input
        .str_len("Description", 0, 8192)
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("Description"))?
        .to_string();
    mutate_key(app, raw, KeyRef::IdOrArn, |k, _| {
        not_pending(app, k)?;
        k.description = d;
        Ok(vec![])
    })
    .await?;
    Ok(json!({}))
}

/// `TagResource`.
pub async fn tag_resource(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let tags = input
        .opt_tags("Tags", "TagKey", "TagValue")
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("Tags"))?;
    check_tags(&tags)?;
    mutate_key(app, raw, KeyRef::IdOrArn, |k, _| {
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
    Ok(json!({}))
}

/// `UntagResource` (absent keys are ignored).
pub async fn untag_resource(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let keys = input
        .opt_str_list("TagKeys")
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("TagKeys"))?;
    mutate_key(app, raw, KeyRef::IdOrArn, |k, _| {
        not_pending(app, k)?;
        for t in keys {
            k.tags.remove(&t);
        }
        Ok(vec![])
    })
    .await?;
    Ok(json!({}))
}

/// `ListResourceTags`.
pub fn list_resource_tags(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let limit = input
        .opt_int("Limit", 1, 50)
        .map_err(input_err)?
        .unwrap_or(50);
    let marker = input.str_len("Marker", 1, 1024).map_err(input_err)?;
    let w = app.world();
    let k = resolve_key(app, &w, raw, KeyRef::IdOrArn)?;
    let (page, next) = paginate(
        k.tags
            .iter()
            .map(|(t, v)| (t, json!({"TagKey": t, "TagValue": v}))),
        "tags",
        marker,
        usize::try_from(limit).unwrap_or(50),
    )?;
    let mut body = Map::new();
    body.insert("Tags".into(), Value::Array(page));
    Ok(with_page(body, next))
}

fn alias_name(input: &Input) -> Result<String, KmsError> {
    let n = input.req_str("AliasName", 1, 256).map_err(input_err)?;
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
    Ok(n.to_string())
}

fn target_key(app: &App, w: &World, input: &Input) -> Result<Arc<Key>, KmsError> {
    let raw = key_id_member(input, "TargetKeyId")?;
    let k = resolve_key(app, w, raw, KeyRef::IdOrArn)?;
    not_pending(app, &k)?;
    Ok(k)
}

/// `CreateAlias`.
pub async fn create_alias(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    key_id_member(input, "TargetKeyId")?;
    let name = alias_name(input)?;
    if name.starts_with("alias/aws/") {
        // AWS's wording for a reserved alias name was not found; these words are cks-sim's.
        return Err(kms_err!(
            InvalidAliasName,
            "Aliases beginning with alias/aws/ are reserved for AWS managed keys."
        ));
    }
    let _w = app.writer.lock().await;
    let alias = {
        let w = app.world();
        let k = target_key(app, &w, input)?;
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
            target_key_id: k.id.clone(),
            creation_date: now,
            last_updated_date: now,
            account,
            region,
        }
    };
    app.commit(vec![Change::Alias(alias)])
        .await
        .map_err(KmsError::internal)?;
    Ok(json!({}))
}

/// `UpdateAlias`: fails only if the new target is pending deletion.
pub async fn update_alias(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    key_id_member(input, "TargetKeyId")?;
    let name = alias_name(input)?;
    let _w = app.writer.lock().await;
    let alias = {
        let w = app.world();
        let mut a = w
            .aliases
            .get(&super::alias_id(app, &name))
            .cloned()
            .ok_or_else(|| kms_err!(NotFound, "Alias {} is not found.", alias_arn(app, &name)))?;
        let k = target_key(app, &w, input)?;
        a.target_key_id = k.id.clone();
        a.last_updated_date = app.now();
        a
    };
    app.commit(vec![Change::Alias(alias)])
        .await
        .map_err(KmsError::internal)?;
    Ok(json!({}))
}

/// `DeleteAlias`.
pub async fn delete_alias(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let name = alias_name(input)?;
    let _w = app.writer.lock().await;
    let id = super::alias_id(app, &name);
    if !app.world().aliases.contains_key(&id) {
        return Err(kms_err!(
            NotFound,
            "Alias {} is not found.",
            alias_arn(app, &name)
        ));
    }
    app.commit(vec![Change::DelAlias(id)])
        .await
        .map_err(KmsError::internal)?;
    Ok(json!({}))
}

/// `ListAliases`.
pub fn list_aliases(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let limit = input
        .opt_int("Limit", 1, 100)
        .map_err(input_err)?
        .unwrap_or(50);
    let marker = input.str_len("Marker", 1, 1024).map_err(input_err)?;
    let w = app.world();
    let filter = match input.opt_str("KeyId").map_err(input_err)? {
        Some(raw) => Some(resolve_key(app, &w, raw, KeyRef::IdOrArn)?.id.clone()),
        None => None,
    };
    let (page, next) = paginate(
        w.aliases
            .iter()
            .filter(|(_, a)| crate::namespace::sees(&a.account, &a.region))
            .filter(|(_, a)| filter.as_ref().is_none_or(|f| &a.target_key_id == f))
            .map(|(n, a)| {
                (
                    n,
                    json!({
                        "AliasName": a.name,
                        "AliasArn": alias_arn(app, &a.name),
                        "TargetKeyId": a.target_key_id,
                        "CreationDate": a.creation_date,
                        "LastUpdatedDate": a.last_updated_date,
                    }),
                )
            }),
        "aliases",
        marker,
        usize::try_from(limit).unwrap_or(50),
    )?;
    let mut body = Map::new();
    body.insert("Aliases".into(), Value::Array(page));
    Ok(with_page(body, next))
}

fn policy_name(input: &Input) -> Result<(), KmsError> {
    match input.str_len("PolicyName", 1, 128).map_err(input_err)? {
        None | Some("default") => Ok(()),
        Some(other) => Err(kms_err!(
            NotFound,
            "Policy '{other}' does not exist: the only key policy name is 'default'."
        )),
    }
}

/// `GetKeyPolicy`.
pub fn get_key_policy(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    policy_name(input)?;
    let w = app.world();
    let k = resolve_key(app, &w, raw, KeyRef::IdOrArn)?;
    Ok(json!({ "Policy": k.policy, "PolicyName": "default" }))
}

/// `PutKeyPolicy`.
pub async fn put_key_policy(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    policy_name(input)?;
    let p = input
        .req_str("Policy", 1, 131_072)
        .map_err(input_err)?
        .to_string();
    if p.len() > 32 * 1024 {
        return Err(kms_err!(
            LimitExceeded,
            "The key policy exceeds the 32 KB limit."
        ));
    }
    check_policy(&p)?;
    mutate_key(app, raw, KeyRef::IdOrArn, |k, _| {
        k.policy = p;
        Ok(vec![])
    })
    .await?;
    Ok(json!({}))
}

/// `ListKeyPolicies`.
pub fn list_key_policies(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let w = app.world();
    resolve_key(app, &w, raw, KeyRef::IdOrArn)?;
    Ok(json!({ "PolicyNames": ["default"], "Truncated": false }))
}

/// Rotation, import, replication and data key pairs: not for keys in a custom key store (and
/// not simulated for AWS_KMS keys either).
pub fn unsupported_for_key(app: &Arc<App>, op: &str, input: &Input) -> Result<Value, KmsError> {
    let raw = key_id_member(input, "KeyId")?;
    let w = app.world();
    let k = resolve_key(app, &w, raw, KeyRef::AnyName)?;
    Err(if k.store_id.is_some() {
        kms_err!(
            UnsupportedOperation,
            "{op} is not supported for KMS keys in a custom key store ({}).",
            k.arn
        )
    } else {
        kms_err!(UnsupportedOperation, "cks-sim does not simulate {op}.")
    })
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;

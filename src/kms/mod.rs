//! The KMS domain: custom key stores, keys, aliases, key states, cryptography and the
//! deletion sweeper. [`handle`] dispatches one `TrentService.<Op>` to its operation.

pub mod asymmetric;
pub mod crypto;
pub mod der;
pub mod error;
pub mod grants;
pub mod import;
pub mod key;
pub mod key_store;
pub mod material;
pub mod model;
pub mod multi_region;
pub mod oaep;
pub mod reconcile;
pub mod rotation;
pub mod rules;
pub mod seed;
pub mod signing;
pub mod spec;
pub mod sweep;

use crate::api::kms::{Request, Response};
use crate::app::{App, World};
use crate::kms_err;
use crate::protocol::input::{Input, InputError};
use error::{KmsError, KmsErrorKind};
use model::{ConnectionState, Key, KeyStateU};
use serde_json::Value;
use std::sync::Arc;

/// Run one KMS operation, already decoded and validated. `Ok(None)` means cks-sim does not
/// serve this operation of the model.
pub async fn handle(app: &Arc<App>, req: Request, input: Input) -> Result<Option<Value>, KmsError> {
    // Every request sees deletions that fell due as completed: results never depend on the
    // sweeper's timing.
    sweep::sweep_if_due(app).await;
    grants::check_grant_tokens(app, &req)?;
    use Request as R;
    let v = match req {
        R::CreateCustomKeyStore(_) => key_store::create(app, &input).await?,
        R::ConnectCustomKeyStore(_) => key_store::connect(app, &input).await?,
        R::DisconnectCustomKeyStore(_) => key_store::disconnect(app, &input).await?,
        R::DeleteCustomKeyStore(_) => key_store::delete(app, &input).await?,
        R::DescribeCustomKeyStores(_) => key_store::describe(app, &input)?,
        R::UpdateCustomKeyStore(_) => key_store::update(app, &input).await?,
        R::CreateKey(_) => key::create_key(app, &input).await?,
        R::DescribeKey(_) => key::describe_key(app, &input)?,
        R::ListKeys(_) => key::list_keys(app, &input)?,
        R::EnableKey(_) => key::set_enabled(app, &input, true).await?,
        R::DisableKey(_) => key::set_enabled(app, &input, false).await?,
        R::ScheduleKeyDeletion(_) => key::schedule_deletion(app, &input).await?,
        R::CancelKeyDeletion(_) => key::cancel_deletion(app, &input).await?,
        R::UpdateKeyDescription(_) => key::update_description(app, &input).await?,
        R::TagResource(_) => key::tag_resource(app, &input).await?,
        R::UntagResource(_) => key::untag_resource(app, &input).await?,
        R::ListResourceTags(_) => key::list_resource_tags(app, &input)?,
        R::CreateAlias(_) => key::create_alias(app, &input).await?,
        R::UpdateAlias(_) => key::update_alias(app, &input).await?,
        R::DeleteAlias(_) => key::delete_alias(app, &input).await?,
        R::ListAliases(_) => key::list_aliases(app, &input)?,
        R::GetKeyPolicy(_) => key::get_key_policy(app, &input)?,
        R::PutKeyPolicy(_) => key::put_key_policy(app, &input).await?,
        R::ListKeyPolicies(_) => key::list_key_policies(app, &input)?,
        R::CreateGrant(r) => typed(Response::CreateGrant(grants::create_grant(app, r).await?)),
        R::ListGrants(r) => typed(Response::ListGrants(grants::list_grants(app, r)?)),
        R::ListRetirableGrants(r) => typed(Response::ListRetirableGrants(
            grants::list_retirable_grants(app, r)?,
        )),
        R::RetireGrant(r) => {
            grants::retire_grant(app, r).await?;
            typed(Response::RetireGrant)
        }
        R::RevokeGrant(r) => {
            grants::revoke_grant(app, r).await?;
            typed(Response::RevokeGrant)
        }
        R::GetKeyRotationStatus(r) => typed(Response::GetKeyRotationStatus(rotation::get_status(
            app, r,
        )?)),
        R::EnableKeyRotation(r) => {
            rotation::enable(app, r).await?;
            typed(Response::EnableKeyRotation)
        }
        R::DisableKeyRotation(r) => {
            rotation::disable(app, r).await?;
            typed(Response::DisableKeyRotation)
        }
        R::RotateKeyOnDemand(r) => typed(Response::RotateKeyOnDemand(
            rotation::rotate_on_demand(app, r).await?,
        )),
        R::ListKeyRotations(r) => typed(Response::ListKeyRotations(rotation::list(app, r)?)),
        R::GetParametersForImport(r) => typed(Response::GetParametersForImport(
            import::get_parameters(app, r).await?,
        )),
        R::ImportKeyMaterial(r) => typed(Response::ImportKeyMaterial(
            import::import_material(app, r).await?,
        )),
        R::DeleteImportedKeyMaterial(r) => typed(Response::DeleteImportedKeyMaterial(
            import::delete_material(app, r).await?,
        )),
        R::ReplicateKey(r) => {
            let done = multi_region::replicate_key(app, r).await?;
            // `key::metadata` still answers JSON: its `KeyMetadata` joins the typed rest here.
            let mut v = typed(Response::ReplicateKey(done.response));
            v["ReplicaKeyMetadata"] = done.metadata;
            v
        }
        R::UpdatePrimaryRegion(r) => {
            multi_region::update_primary_region(app, r).await?;
            typed(Response::UpdatePrimaryRegion)
        }
        R::GenerateDataKeyPair(r) => typed(Response::GenerateDataKeyPair(
            asymmetric::generate_data_key_pair(app, r).await?,
        )),
        R::GenerateDataKeyPairWithoutPlaintext(r) => {
            typed(Response::GenerateDataKeyPairWithoutPlaintext(
                asymmetric::generate_data_key_pair_without_plaintext(app, r).await?,
            ))
        }
        R::Sign(r) => typed(Response::Sign(signing::sign(app, r).await?)),
        R::Verify(r) => typed(Response::Verify(signing::verify(app, r).await?)),
        R::GenerateMac(r) => typed(Response::GenerateMac(signing::generate_mac(app, r).await?)),
        R::VerifyMac(r) => typed(Response::VerifyMac(signing::verify_mac(app, r).await?)),
        R::GetPublicKey(r) => typed(Response::GetPublicKey(
            asymmetric::get_public_key(app, r).await?,
        )),
        R::DeriveSharedSecret(r) => typed(Response::DeriveSharedSecret(
            asymmetric::derive_shared_secret(app, r).await?,
        )),
        R::Encrypt(r) => typed(Response::Encrypt(crypto::encrypt(app, r).await?)),
        R::Decrypt(r) => typed(Response::Decrypt(crypto::decrypt(app, r).await?)),
        R::GenerateDataKey(r) => typed(Response::GenerateDataKey(
            crypto::generate_data_key(app, r).await?,
        )),
        R::GenerateDataKeyWithoutPlaintext(r) => typed(Response::GenerateDataKeyWithoutPlaintext(
            crypto::generate_data_key_without_plaintext(app, r).await?,
        )),
        R::ReEncrypt(r) => typed(Response::ReEncrypt(crypto::re_encrypt(app, r).await?)),
        R::GenerateRandom(r) => typed(Response::GenerateRandom(
            crypto::generate_random(app, r).await?,
        )),
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// A typed answer as the JSON the door sends (while some operations still answer JSON
/// themselves).
fn typed(r: Response) -> Value {
    serde_json::to_value(r).expect("a typed response serializes")
}

/// Map an input problem to KMS's exceptions: wrong types are `SerializationException`,
/// missing or out-of-range members `ValidationException`.
pub fn input_err(e: InputError) -> KmsError {
    match e {
        InputError::Malformed(m) => KmsError::new(KmsErrorKind::Serialization, m),
        InputError::Type { member, expected } => KmsError::new(
            KmsErrorKind::Serialization,
            format!("Cannot deserialize member '{member}': it must be {expected}."),
        ),
        InputError::Missing { member } => KmsError::missing(&member),
        InputError::Constraint {
            member,
            value,
            rule,
        } => KmsError::validation(&member, value.unwrap_or_default(), &rule),
        InputError::Invalid(v) => KmsError::new(
            KmsErrorKind::Validation,
            crate::protocol::input::validation_message(&v),
        ),
    }
}

/// Whether KMS holds `kmsuser` of cluster `cluster_id` logged in: a key store on it is
/// connected or connecting (the cluster domain asks before letting anyone else log in).
pub fn holds_kmsuser(w: &World, cluster_id: &str) -> bool {
    w.stores.values().any(|s| {
        s.cluster_id == cluster_id
            && matches!(
                s.state,
                ConnectionState::Connected | ConnectionState::Connecting
            )
    })
}

/// The ARN of key `id`.
pub fn key_arn(app: &App, id: &str) -> String {
    format!(
        "{}key/{id}",
        crate::namespace::current(app).kms_arn_prefix()
    )
}

/// Whether the request being served may see key `k`: its ARN names the request's account
/// and region (or the request comes through a local door).
pub fn key_visible(k: &Key) -> bool {
    let (region, account) = arn_region_account(&k.arn);
    crate::namespace::sees(account, region)
}

/// The region and account of `arn:aws:kms:<region>:<account>:…`.
pub fn arn_region_account(arn: &str) -> (&str, &str) {
    let mut parts = arn.splitn(6, ':').skip(3);
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

/// The storage ID of the alias `name` in the namespace of the request being served.
pub fn alias_id(app: &App, name: &str) -> String {
    crate::namespace::alias_storage_id(app, &crate::namespace::current(app), name)
}

/// The ARN of alias `name` (`alias/…`).
pub fn alias_arn(app: &App, name: &str) -> String {
    format!("{}{name}", crate::namespace::current(app).kms_arn_prefix())
}

/// The visible `KeyState` of a key (§3.2): `PendingDeletion` wins, then `Unavailable` while the
/// key's store is not `CONNECTED`, then `PendingImport` while an `EXTERNAL` key waits for its
/// material, else the underlying state.
pub fn visible_state(w: &World, k: &Key) -> &'static str {
    match k.state {
        KeyStateU::PendingDeletion => "PendingDeletion",
        KeyStateU::PendingReplicaDeletion => "PendingReplicaDeletion",
        _ if material::pending_import(k) => "PendingImport",
        _ if k.store_id.as_ref().is_some_and(|s| {
            w.stores
                .get(s)
                .is_none_or(|s| s.state != ConnectionState::Connected)
        }) =>
        {
            "Unavailable"
        }
        KeyStateU::Enabled => "Enabled",
        KeyStateU::Disabled => "Disabled",
    }
}

/// How a key may be named in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRef {
    /// Key ID or key ARN only.
    IdOrArn,
    /// Also alias name or alias ARN.
    AnyName,
}

fn not_found(app: &App, id: &str) -> KmsError {
    kms_err!(NotFound, "Key '{}' does not exist", key_arn(app, id))
}

/// Resolve a `KeyId`-style member to a key (cloned). Validates format and length (1–2048).
pub fn resolve_key(app: &App, w: &World, raw: &str, how: KeyRef) -> Result<Arc<Key>, KmsError> {
    if raw.is_empty() || raw.chars().count() > 2048 {
        return Err(KmsError::validation(
            "KeyId",
            crate::protocol::input::shown(raw),
            "Member must have length between 1 and 2048",
        ));
    }
    let prefix = crate::namespace::current(app).kms_arn_prefix();
    let (name, is_arn) = if let Some(rest) = raw.strip_prefix("arn:") {
        let Some(tail) = raw.strip_prefix(&prefix) else {
            // Another partition, region or account: well-formed ARNs are simply not found here.
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() == 5
                && parts[1] == "kms"
                && (parts[4].starts_with("key/") || parts[4].starts_with("alias/"))
            {
                // AWS names the Region of a key ARN of another Region (recorded responses);
                // for another account or partition its wording was not found.
                if parts[4].starts_with("key/") && parts[2] != crate::namespace::current(app).region
                {
                    return Err(KmsError::invalid_arn_region(parts[2]));
                }
                return Err(kms_err!(NotFound, "Key '{raw}' does not exist"));
            }
            return Err(kms_err!(
                InvalidArn,
                "The ARN '{raw}' is not a valid AWS KMS key or alias ARN."
            ));
        };
        (tail, true)
    } else {
        (raw, false)
    };
    if let Some(id) = name.strip_prefix("key/") {
        if !is_arn {
            return Err(not_found_plain(raw));
        }
        return visible_key(app, w, id);
    }
    if name.starts_with("alias/") {
        if how == KeyRef::IdOrArn {
            return Err(kms_err!(
                NotFound,
                "Key '{raw}' does not exist: this operation takes a key ID or key ARN, not an alias"
            ));
        }
        let alias = w
            .aliases
            .get(&alias_id(app, name))
            .ok_or_else(|| kms_err!(NotFound, "Alias {} is not found.", alias_arn(app, name)))?;
        return visible_key(app, w, &alias.target_key_id);
    }
    if is_arn {
        return Err(kms_err!(
            InvalidArn,
            "The ARN '{raw}' is not a valid AWS KMS key or alias ARN."
        ));
    }
    // A key ID is a hyphenated UUID or an `mrk-` ID: AWS answers `Invalid keyId` for anything
    // else, the 32 bare hex digits of a UUID included (recorded responses).
    let hyphenated = name.len() == 36 && uuid::Uuid::try_parse(name).is_ok();
    if !hyphenated && !multi_region::is_mrk_id(name) {
        return Err(KmsError::invalid_key_id(raw));
    }
    visible_key(app, w, name)
}

/// The key with this ID if the request being served may see it, else `NotFoundException`
/// (a key of another account or region does not exist for this caller).
pub fn visible_key(app: &App, w: &World, id: &str) -> Result<Arc<Key>, KmsError> {
    let found = if id.starts_with(multi_region::MRK_PREFIX) {
        multi_region::key_here(app, w, id)
    } else {
        w.key(id)
    };
    found
        .filter(|k| key_visible(k))
        .cloned()
        .ok_or_else(|| not_found(app, id))
}

fn not_found_plain(raw: &str) -> KmsError {
    kms_err!(NotFound, "Key '{raw}' does not exist")
}

/// Decode a marker of the listing `kind` (see [`crate::paging`]).
pub fn parse_marker(kind: &str, marker: &str) -> Result<String, KmsError> {
    crate::paging::last_key(kind, marker).ok_or_else(|| {
        kms_err!(
            InvalidMarker,
            "The marker '{}' is not valid: pass the NextMarker of the previous response unchanged.",
            crate::protocol::input::shown(marker)
        )
    })
}

/// Page through `items` (already sorted by their key) after `marker`, `limit` at a time.
/// Returns the page and the next marker when truncated.
pub fn paginate<'a, T>(
    items: impl Iterator<Item = (&'a String, T)>,
    kind: &str,
    marker: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), KmsError> {
    let after = marker.map(|m| parse_marker(kind, m)).transpose()?;
    Ok(crate::paging::page(
        items,
        kind,
        crate::paging::Order::Ascending,
        after.as_deref(),
        limit,
    ))
}

/// Add `NextMarker`/`Truncated` to a list response (`Truncated` ⇔ `NextMarker`).
pub fn with_page(mut body: serde_json::Map<String, Value>, next: Option<String>) -> Value {
    body.insert("Truncated".into(), Value::Bool(next.is_some()));
    if let Some(n) = next {
        body.insert("NextMarker".into(), Value::String(n));
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_reject_foreign_ones() {
        let m = crate::paging::token_after("keys", "abc");
        assert_eq!(parse_marker("keys", &m).unwrap(), "abc");
        assert_eq!(
            parse_marker("aliases", &m).unwrap_err().kind,
            KmsErrorKind::InvalidMarker
        );
        assert_eq!(
            parse_marker("keys", "!!").unwrap_err().kind,
            KmsErrorKind::InvalidMarker
        );
    }

    #[test]
    fn pagination_is_exact() {
        let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let (p1, n1) = paginate(keys.iter().map(|k| (k, k.clone())), "t", None, 2).unwrap();
        assert_eq!(p1, vec!["k0", "k1"]);
        let (p2, n2) =
            paginate(keys.iter().map(|k| (k, k.clone())), "t", n1.as_deref(), 2).unwrap();
        assert_eq!(p2, vec!["k2", "k3"]);
        let (p3, n3) =
            paginate(keys.iter().map(|k| (k, k.clone())), "t", n2.as_deref(), 2).unwrap();
        assert_eq!(p3, vec!["k4"]);
        assert!(n3.is_none());
        let (p, n) = paginate(keys.iter().map(|k| (k, k.clone())), "t", None, 5).unwrap();
        assert_eq!(p.len(), 5);
        assert!(n.is_none(), "an exactly full last page is not truncated");
    }
}

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

use crate::api::kms::{KeyState, Request, Response};
use crate::app::{App, World};
use crate::kms_err;
use crate::protocol::input::InputError;
use error::{KmsError, KmsErrorKind};
use model::{ConnectionState, Key, StoredKeyState};
use std::sync::Arc;

/// Run one KMS operation, already decoded and validated. `Ok(None)` means cks-sim does not
/// serve this operation of the model.
pub async fn handle(app: &Arc<App>, req: Request) -> Result<Option<Response>, KmsError> {
    // Every request sees deletions that fell due as completed: results never depend on the
    // sweeper's timing.
    sweep::sweep_if_due(app).await;
    grants::check_grant_tokens(app, &req)?;
    let req = match key_stores(app, req).await? {
        Ok(done) => return Ok(Some(done)),
        Err(req) => req,
    };
    let req = match keys(app, req).await? {
        Ok(done) => return Ok(Some(done)),
        Err(req) => req,
    };
    let req = match names_and_policies(app, req).await? {
        Ok(done) => return Ok(Some(done)),
        Err(req) => req,
    };
    let req = match cryptography(app, req).await? {
        Ok(done) => return Ok(Some(done)),
        Err(req) => req,
    };
    let req = match grants_and_rotation(app, req).await? {
        Ok(done) => return Ok(Some(done)),
        Err(req) => req,
    };
    material_and_regions(app, req).await
}

/// What a group's dispatcher makes of a request: its response, or the request back when it is
/// not one of the group's.
type Routed = Result<Result<Response, Request>, KmsError>;

/// The custom key store operations.
async fn key_stores(app: &Arc<App>, req: Request) -> Routed {
    use Request as R;
    Ok(Ok(match req {
        R::CreateCustomKeyStore(r) => {
            Response::CreateCustomKeyStore(key_store::create(app, r).await?)
        }
        R::ConnectCustomKeyStore(r) => {
            Response::ConnectCustomKeyStore(key_store::connect(app, r).await?)
        }
        R::DisconnectCustomKeyStore(r) => {
            Response::DisconnectCustomKeyStore(key_store::disconnect(app, r).await?)
        }
        R::DeleteCustomKeyStore(r) => {
            Response::DeleteCustomKeyStore(key_store::delete(app, r).await?)
        }
        R::DescribeCustomKeyStores(r) => {
            Response::DescribeCustomKeyStores(key_store::describe(app, r)?)
        }
        R::UpdateCustomKeyStore(r) => {
            Response::UpdateCustomKeyStore(key_store::update(app, r).await?)
        }
        other => return Ok(Err(other)),
    }))
}

/// The operations on keys themselves: create, describe, list, states and deletion.
async fn keys(app: &Arc<App>, req: Request) -> Routed {
    use Request as R;
    Ok(Ok(match req {
        R::CreateKey(r) => Response::CreateKey(key::create_key(app, r).await?),
        R::DescribeKey(r) => Response::DescribeKey(key::describe_key(app, r)?),
        R::ListKeys(r) => Response::ListKeys(key::list_keys(app, r)?),
        R::EnableKey(r) => {
            key::enable_key(app, r).await?;
            Response::EnableKey
        }
        R::DisableKey(r) => {
            key::disable_key(app, r).await?;
            Response::DisableKey
        }
        R::ScheduleKeyDeletion(r) => {
            Response::ScheduleKeyDeletion(key::schedule_deletion(app, r).await?)
        }
        R::CancelKeyDeletion(r) => Response::CancelKeyDeletion(key::cancel_deletion(app, r).await?),
        R::UpdateKeyDescription(r) => {
            key::update_description(app, r).await?;
            Response::UpdateKeyDescription
        }
        other => return Ok(Err(other)),
    }))
}

/// Tags, aliases and key policies.
async fn names_and_policies(app: &Arc<App>, req: Request) -> Routed {
    use Request as R;
    Ok(Ok(match req {
        R::TagResource(r) => {
            key::tag_resource(app, r).await?;
            Response::TagResource
        }
        R::UntagResource(r) => {
            key::untag_resource(app, r).await?;
            Response::UntagResource
        }
        R::ListResourceTags(r) => Response::ListResourceTags(key::list_resource_tags(app, r)?),
        R::CreateAlias(r) => {
            key::create_alias(app, r).await?;
            Response::CreateAlias
        }
        R::UpdateAlias(r) => {
            key::update_alias(app, r).await?;
            Response::UpdateAlias
        }
        R::DeleteAlias(r) => {
            key::delete_alias(app, r).await?;
            Response::DeleteAlias
        }
        R::ListAliases(r) => Response::ListAliases(key::list_aliases(app, r)?),
        R::GetKeyPolicy(r) => Response::GetKeyPolicy(key::get_key_policy(app, r)?),
        R::PutKeyPolicy(r) => {
            key::put_key_policy(app, r).await?;
            Response::PutKeyPolicy
        }
        R::ListKeyPolicies(r) => Response::ListKeyPolicies(key::list_key_policies(app, r)?),
        other => return Ok(Err(other)),
    }))
}

/// Cryptography: encryption, data keys, signatures, MACs, public keys, random bytes.
async fn cryptography(app: &Arc<App>, req: Request) -> Routed {
    use Request as R;
    Ok(Ok(match req {
        R::Encrypt(r) => Response::Encrypt(crypto::encrypt(app, r).await?),
        R::Decrypt(r) => Response::Decrypt(crypto::decrypt(app, r).await?),
        R::ReEncrypt(r) => Response::ReEncrypt(crypto::re_encrypt(app, r).await?),
        R::GenerateDataKey(r) => {
            Response::GenerateDataKey(crypto::generate_data_key(app, r).await?)
        }
        R::GenerateDataKeyWithoutPlaintext(r) => Response::GenerateDataKeyWithoutPlaintext(
            crypto::generate_data_key_without_plaintext(app, r).await?,
        ),
        R::GenerateDataKeyPair(r) => {
            Response::GenerateDataKeyPair(asymmetric::generate_data_key_pair(app, r).await?)
        }
        R::GenerateDataKeyPairWithoutPlaintext(r) => Response::GenerateDataKeyPairWithoutPlaintext(
            asymmetric::generate_data_key_pair_without_plaintext(app, r).await?,
        ),
        R::Sign(r) => Response::Sign(signing::sign(app, r).await?),
        R::Verify(r) => Response::Verify(signing::verify(app, r).await?),
        R::GenerateMac(r) => Response::GenerateMac(signing::generate_mac(app, r).await?),
        R::VerifyMac(r) => Response::VerifyMac(signing::verify_mac(app, r).await?),
        R::GetPublicKey(r) => Response::GetPublicKey(asymmetric::get_public_key(app, r).await?),
        R::DeriveSharedSecret(r) => {
            Response::DeriveSharedSecret(asymmetric::derive_shared_secret(app, r).await?)
        }
        R::GenerateRandom(r) => Response::GenerateRandom(crypto::generate_random(app, r).await?),
        other => return Ok(Err(other)),
    }))
}

/// Grants and key rotation.
async fn grants_and_rotation(app: &Arc<App>, req: Request) -> Routed {
    use Request as R;
    Ok(Ok(match req {
        R::CreateGrant(r) => Response::CreateGrant(grants::create_grant(app, r).await?),
        R::ListGrants(r) => Response::ListGrants(grants::list_grants(app, r)?),
        R::ListRetirableGrants(r) => {
            Response::ListRetirableGrants(grants::list_retirable_grants(app, r)?)
        }
        R::RetireGrant(r) => {
            grants::retire_grant(app, r).await?;
            Response::RetireGrant
        }
        R::RevokeGrant(r) => {
            grants::revoke_grant(app, r).await?;
            Response::RevokeGrant
        }
        R::GetKeyRotationStatus(r) => Response::GetKeyRotationStatus(rotation::get_status(app, r)?),
        R::EnableKeyRotation(r) => {
            rotation::enable(app, r).await?;
            Response::EnableKeyRotation
        }
        R::DisableKeyRotation(r) => {
            rotation::disable(app, r).await?;
            Response::DisableKeyRotation
        }
        R::RotateKeyOnDemand(r) => {
            Response::RotateKeyOnDemand(rotation::rotate_on_demand(app, r).await?)
        }
        R::ListKeyRotations(r) => Response::ListKeyRotations(rotation::list(app, r)?),
        other => return Ok(Err(other)),
    }))
}

/// Imported key material and multi-Region keys; `None` for the operations cks-sim does not
/// serve.
async fn material_and_regions(app: &Arc<App>, req: Request) -> Result<Option<Response>, KmsError> {
    use Request as R;
    Ok(Some(match req {
        R::GetParametersForImport(r) => {
            Response::GetParametersForImport(import::get_parameters(app, r).await?)
        }
        R::ImportKeyMaterial(r) => {
            Response::ImportKeyMaterial(import::import_material(app, r).await?)
        }
        R::DeleteImportedKeyMaterial(r) => {
            Response::DeleteImportedKeyMaterial(import::delete_material(app, r).await?)
        }
        R::ReplicateKey(r) => Response::ReplicateKey(multi_region::replicate_key(app, r).await?),
        R::UpdatePrimaryRegion(r) => {
            multi_region::update_primary_region(app, r).await?;
            Response::UpdatePrimaryRegion
        }
        _ => return Ok(None),
    }))
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
pub fn visible_state(w: &World, k: &Key) -> KeyState {
    match k.state {
        StoredKeyState::PendingDeletion => KeyState::PendingDeletion,
        StoredKeyState::PendingReplicaDeletion => KeyState::PendingReplicaDeletion,
        _ if material::pending_import(k) => KeyState::PendingImport,
        _ if k.store_id.as_ref().is_some_and(|s| {
            w.stores
                .get(s)
                .is_none_or(|s| s.state != ConnectionState::Connected)
        }) =>
        {
            KeyState::Unavailable
        }
        StoredKeyState::Enabled => KeyState::Enabled,
        StoredKeyState::Disabled => KeyState::Disabled,
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

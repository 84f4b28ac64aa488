//! Grants (KMS Developer Guide, "Grants in AWS KMS"): CreateGrant, ListGrants,
//! ListRetirableGrants, RetireGrant, RevokeGrant, and the grant tokens every operation that
//! takes `GrantTokens` accepts.
//!
//! Grants are recorded, not enforced: cks-sim evaluates no IAM or key policy, so every caller
//! may already do everything, and a grant adds nothing to what it may do. What is simulated is
//! the grants' own life: their validation (operations that fit the key, constraints), `Name`
//! idempotency, listing, retiring and revoking, tokens that are checked, persistence, and their
//! end with their key. A grant belongs to its key, and so to the key's namespace.
//!
//! Messages are AWS's where a recording of AWS's answer was found (noted at each); the others
//! are cks-sim's own words with AWS's exception.

pub mod model;
pub mod rules;
pub mod token;

use super::crypto::{dry_run, dry_run_ok};
use super::error::KmsError;
use super::{KeyRef, input_err, paginate, resolve_key, visible_state, with_page};
use crate::api::kms::Request;
use crate::app::{App, Change, World};
use crate::kms_err;
use crate::protocol::input::{Input, shown};
use model::{Grant, key_range};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Grants per KMS key (the "Grants per KMS key" resource quota).
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// Operations whose `GrantTokens` are checked, token by token (the model lists
/// `InvalidGrantTokenException` for them). DescribeKey takes `GrantTokens` too, but only
/// their number and lengths are checked: the model gives it no such exception.
const TOKEN_CHECKED: &[&str] = &[
    "CreateGrant",
    "Decapsulate",
    "Decrypt",
    "DeriveSharedSecret",
    "Encapsulate",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GetPublicKey",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// `InvalidGrantTokenException` (cks-sim's words: no recording of AWS's was found).
fn bad_token() -> KmsError {
    kms_err!(
        InvalidGrantToken,
        "The grant token is not valid: pass a GrantToken that CreateGrant returned, unchanged."
    )
}

/// `InvalidGrantIdException` (cks-sim's words: no recording of AWS's was found).
fn bad_grant_id(id: &str) -> KmsError {
    kms_err!(
        InvalidGrantId,
        "The grant ID '{}' is not valid: a grant ID is 64 hexadecimal digits.",
        shown(id)
    )
}

/// `NotFoundException` for a grant (cks-sim's words: recordings of AWS show the exception
/// for a grant ID that names no grant, without its message).
fn grant_not_found(key_arn: &str, id: &str) -> KmsError {
    kms_err!(NotFound, "Grant ID {id} not found for key {key_arn}.")
}

/// Check the `GrantTokens` of a request (their count and lengths are the decoder's): for the
/// operations that can refuse one, each must be a token this simulator made. A valid token of
/// a grant since retired is accepted, as it adds nothing to what the caller may do anyway.
pub fn check_grant_tokens(app: &App, req: &Request) -> Result<(), KmsError> {
    let op = req.operation();
    if !TOKEN_CHECKED.contains(&op) {
        return Ok(());
    }
    let tokens = req.grant_tokens().unwrap_or_default();
    if tokens
        .iter()
        .any(|t| token::verify(app.grant_token_key(), t).is_none())
    {
        return Err(bad_token());
    }
    Ok(())
}

/// The grants of the key with ARN `key_arn`, in grant ID order.
fn key_grants<'a>(w: &'a World, key_arn: &str) -> impl Iterator<Item = (&'a String, &'a Grant)> {
    w.grants.range(key_range(key_arn))
}

/// The grant requested by a CreateGrant, validated in the model's terms (before the key).
fn requested_grant(app: &App, input: &Input) -> Result<Grant, KmsError> {
    let grantee = rules::principal(input, "GranteePrincipal")?;
    let grantee_service = rules::service_principal(input, "GranteeServicePrincipal")?;
    let retiring = rules::principal(input, "RetiringPrincipal")?;
    let retiring_service = rules::service_principal(input, "RetiringServicePrincipal")?;
    let operations = rules::operations(input)?;
    let constraints = rules::constraints(input)?;
    let name = rules::name(input)?;
    if grantee.is_none() && grantee_service.is_none() {
        return Err(KmsError::missing("GranteePrincipal"));
    }
    let account = crate::namespace::current(app).account;
    Ok(Grant {
        id: String::new(),
        key_id: String::new(),
        key_arn: String::new(),
        name,
        creation_date: app.now(),
        grantee: grantee.map(str::to_string),
        grantee_service: grantee_service.map(str::to_string),
        retiring: retiring.map(str::to_string),
        retiring_service: retiring_service.map(str::to_string),
        issuing_account: format!("arn:aws:iam::{account}:root"),
        operations,
        constraints,
        account: String::new(),
        region: String::new(),
    })
}

/// CreateGrant refuses a disabled key and one pending deletion (the key state table); an
/// unavailable key (store disconnected) takes grants.
fn grantable(w: &World, k: &super::model::Key) -> Result<(), KmsError> {
    match visible_state(w, k) {
        "Disabled" => Err(kms_err!(Disabled, "{} is disabled.", k.arn)),
        "PendingDeletion" => Err(kms_err!(KmsInvalidState, "{} is pending deletion.", k.arn)),
        _ => Ok(()),
    }
}

/// `CreateGrant`.
pub async fn create_grant(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = input
        .opt_str("KeyId")
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("KeyId"))?
        .to_string();
    let mut grant = requested_grant(app, input)?;
    let dry = dry_run(input)?;
    let _w = app.writer.lock().await;
    let existing = {
        let w = app.world();
        let k = resolve_key(app, &w, &raw, KeyRef::IdOrArn)?;
        grantable(&w, &k)?;
        rules::fit_key(&k, &grant.operations, grant.constraints.as_ref())?;
        if dry {
            return Err(dry_run_ok());
        }
        grant.key_id = k.id.clone();
        grant.key_arn = k.arn.clone();
        (grant.account, grant.region) = key_namespace(app, &k.arn);
        let same = key_grants(&w, &k.arn).find(|(_, g)| g.same_request(&grant));
        if same.is_none() {
            below_quota(&w, &k.arn)?;
        }
        same.map(|(_, g)| g.id.clone())
    };
    let id = match existing {
        Some(id) => id,
        None => {
            grant.id = token::new_grant_id();
            let id = grant.id.clone();
            app.commit(vec![Change::Grant(grant.clone())])
                .await
                .map_err(KmsError::internal)?;
            id
        }
    };
    let token = token::mint(app.grant_token_key(), &grant.key_id, &id)
        .ok_or_else(|| KmsError::internal(format!("cannot mint a token for grant {id}")))?;
    Ok(json!({ "GrantId": id, "GrantToken": token }))
}

/// `LimitExceededException` when the key with ARN `key_arn` already has its quota of grants
/// (cks-sim's words: no recording of AWS's was found).
fn below_quota(w: &World, key_arn: &str) -> Result<(), KmsError> {
    if key_grants(w, key_arn).count() >= MAX_GRANTS_PER_KEY {
        return Err(kms_err!(
            LimitExceeded,
            "The KMS key {key_arn} has {MAX_GRANTS_PER_KEY} grants, the maximum: retire or revoke grants first."
        ));
    }
    Ok(())
}

/// The stored namespace fields of the key with ARN `arn` (empty for the default namespace).
fn key_namespace(app: &App, arn: &str) -> (String, String) {
    let (region, account) = super::arn_region_account(arn);
    crate::namespace::Namespace {
        account: account.to_string(),
        region: region.to_string(),
    }
    .stored(app)
}

/// A grant as `GrantListEntry`.
fn list_entry(g: &Grant) -> Value {
    let mut m = Map::new();
    m.insert("KeyId".into(), json!(g.key_arn));
    m.insert("GrantId".into(), json!(g.id));
    let optional = [
        ("Name", &g.name),
        ("GranteePrincipal", &g.grantee),
        ("GranteeServicePrincipal", &g.grantee_service),
        ("RetiringPrincipal", &g.retiring),
        ("RetiringServicePrincipal", &g.retiring_service),
    ];
    for (member, v) in optional {
        if let Some(v) = v {
            m.insert(member.into(), json!(v));
        }
    }
    m.insert("CreationDate".into(), json!(g.creation_date));
    m.insert("IssuingAccount".into(), json!(g.issuing_account));
    m.insert("Operations".into(), json!(g.operations));
    if let Some(c) = &g.constraints {
        let mut cm = Map::new();
        if let Some(e) = &c.equals {
            cm.insert("EncryptionContextEquals".into(), json!(e));
        }
        if let Some(s) = &c.subset {
            cm.insert("EncryptionContextSubset".into(), json!(s));
        }
        if let Some(a) = &c.source_arn {
            cm.insert("SourceArn".into(), json!(a));
        }
        m.insert("Constraints".into(), Value::Object(cm));
    }
    Value::Object(m)
}

fn limit_and_marker(input: &Input) -> Result<(usize, Option<&str>), KmsError> {
    let limit = input
        .opt_int("Limit", 1, 1000)
        .map_err(input_err)?
        .unwrap_or(50);
    let marker = input.str_len("Marker", 1, 1024).map_err(input_err)?;
    Ok((usize::try_from(limit).unwrap_or(50), marker))
}

/// `ListGrants`: a key's grants, filtered by `GrantId` and grantee.
pub fn list_grants(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = input
        .opt_str("KeyId")
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("KeyId"))?;
    let (limit, marker) = limit_and_marker(input)?;
    let grant_id = input.str_len("GrantId", 1, 128).map_err(input_err)?;
    if let Some(id) = grant_id
        && !token::is_grant_id(id)
    {
        return Err(bad_grant_id(id));
    }
    let grantee = rules::principal(input, "GranteePrincipal")?;
    let grantee_service = rules::service_principal(input, "GranteeServicePrincipal")?;
    let w = app.world();
    let k = resolve_key(app, &w, raw, KeyRef::IdOrArn)?;
    let (page, next) = paginate(
        key_grants(&w, &k.arn)
            .filter(|(_, g)| grant_id.is_none_or(|id| g.id == id))
            .filter(|(_, g)| grantee.is_none_or(|p| g.grantee.as_deref() == Some(p)))
            .filter(|(_, g)| {
                grantee_service.is_none_or(|p| g.grantee_service.as_deref() == Some(p))
            })
            .map(|(sid, g)| (sid, list_entry(g))),
        "grants",
        marker,
        limit,
    )?;
    let mut body = Map::new();
    body.insert("Grants".into(), Value::Array(page));
    Ok(with_page(body, next))
}

/// `ListRetirableGrants`: the grants of this namespace's keys that name the principal as
/// their retiring principal.
pub fn list_retirable_grants(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let (limit, marker) = limit_and_marker(input)?;
    let retiring = rules::principal(input, "RetiringPrincipal")?;
    let retiring_service = rules::service_principal(input, "RetiringServicePrincipal")?;
    if retiring.is_none() && retiring_service.is_none() {
        return Err(KmsError::missing("RetiringPrincipal"));
    }
    let w = app.world();
    let (page, next) = paginate(
        w.grants
            .iter()
            .filter(|(_, g)| crate::namespace::sees(&g.account, &g.region))
            .filter(|(_, g)| retiring.is_none_or(|p| g.retiring.as_deref() == Some(p)))
            .filter(|(_, g)| {
                retiring_service.is_none_or(|p| g.retiring_service.as_deref() == Some(p))
            })
            .map(|(sid, g)| (sid, list_entry(g))),
        "retirable-grants",
        marker,
        limit,
    )?;
    let mut body = Map::new();
    body.insert("Grants".into(), Value::Array(page));
    Ok(with_page(body, next))
}

/// The grant a RetireGrant names: by its token, or by `KeyId` and `GrantId`. Returns the
/// grant's storage ID.
fn retire_target(app: &App, w: &World, input: &Input) -> Result<String, KmsError> {
    let token = input.str_len("GrantToken", 1, 8192).map_err(input_err)?;
    let key = input.str_len("KeyId", 1, 2048).map_err(input_err)?;
    let grant_id = input.str_len("GrantId", 1, 128).map_err(input_err)?;
    if let Some(id) = grant_id
        && !token::is_grant_id(id)
    {
        return Err(bad_grant_id(id));
    }
    let (key, id) = match (token, key, grant_id) {
        (Some(t), _, _) => {
            let claim = token::verify(app.grant_token_key(), t).ok_or_else(bad_token)?;
            if grant_id.is_some_and(|g| g != claim.grant_id) {
                return Err(kms_err!(
                    InvalidGrantId,
                    "The GrantId does not name the grant of the GrantToken."
                ));
            }
            let k = match key {
                Some(raw) => resolve_key(app, w, raw, KeyRef::IdOrArn)?,
                None => super::visible_key(app, w, &claim.key_id)?,
            };
            (k, claim.grant_id)
        }
        (None, Some(raw), Some(id)) => (resolve_key(app, w, raw, KeyRef::IdOrArn)?, id.into()),
        // cks-sim's words: no recording of AWS's answer was found.
        _ => {
            return Err(kms_err!(
                Validation,
                "Specify the grant to retire: its GrantToken, or both KeyId and GrantId."
            ));
        }
    };
    let sid = model::storage_id(&key.arn, &id);
    if !w.grants.contains_key(&sid) {
        return Err(grant_not_found(&key.arn, &id));
    }
    Ok(sid)
}

/// `RetireGrant`.
pub async fn retire_grant(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let dry = dry_run(input)?;
    let _w = app.writer.lock().await;
    let sid = retire_target(app, &app.world(), input)?;
    if dry {
        return Err(dry_run_ok());
    }
    app.commit(vec![Change::DelGrant(sid)])
        .await
        .map_err(KmsError::internal)?;
    Ok(json!({}))
}

/// `RevokeGrant`.
pub async fn revoke_grant(app: &Arc<App>, input: &Input) -> Result<Value, KmsError> {
    let raw = input
        .opt_str("KeyId")
        .map_err(input_err)?
        .ok_or_else(|| KmsError::missing("KeyId"))?;
    let id = input
        .req_str("GrantId", 1, 128)
        .map_err(input_err)?
        .to_string();
    if !token::is_grant_id(&id) {
        return Err(bad_grant_id(&id));
    }
    let dry = dry_run(input)?;
    let _w = app.writer.lock().await;
    let sid = {
        let w = app.world();
        let k = resolve_key(app, &w, raw, KeyRef::IdOrArn)?;
        let sid = model::storage_id(&k.arn, &id);
        if !w.grants.contains_key(&sid) {
            return Err(grant_not_found(&k.arn, &id));
        }
        sid
    };
    if dry {
        return Err(dry_run_ok());
    }
    app.commit(vec![Change::DelGrant(sid)])
        .await
        .map_err(KmsError::internal)?;
    Ok(json!({}))
}

/// The changes that delete every grant of the key with ARN `key_arn` (with the key).
pub fn delete_with_key(w: &World, key_arn: &str) -> Vec<Change> {
    key_grants(w, key_arn)
        .map(|(sid, _)| Change::DelGrant(sid.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant_on(key_id: &str, n: usize) -> Grant {
        Grant {
            id: format!("{n:064x}"),
            key_id: key_id.into(),
            key_arn: format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}"),
            name: None,
            creation_date: 0.0,
            grantee: Some("arn:aws:iam::111122223333:role/app".into()),
            grantee_service: None,
            retiring: None,
            retiring_service: None,
            issuing_account: "arn:aws:iam::111122223333:root".into(),
            operations: vec!["Encrypt".into()],
            constraints: None,
            account: String::new(),
            region: String::new(),
        }
    }

    #[test]
    fn the_grant_quota_counts_the_keys_own_grants_only() {
        let (a, b) = (
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890ac",
        );
        let mut w = World::default();
        for n in 0..MAX_GRANTS_PER_KEY - 1 {
            let g = grant_on(a, n);
            w.grants.insert(g.storage_id(), g);
        }
        let other = grant_on(b, 0);
        w.grants.insert(other.storage_id(), other);
        let arn = |k: &str| format!("arn:aws:kms:us-east-1:111122223333:key/{k}");
        assert!(below_quota(&w, &arn(a)).is_ok());
        let last = grant_on(a, MAX_GRANTS_PER_KEY);
        w.grants.insert(last.storage_id(), last);
        let e = below_quota(&w, &arn(a)).unwrap_err();
        assert_eq!(e.kind, crate::kms::error::KmsErrorKind::LimitExceeded);
        assert_eq!(
            e.message,
            format!(
                "The KMS key {} has 50000 grants, the maximum: retire or revoke grants first.",
                arn(a)
            )
        );
        assert!(below_quota(&w, &arn(b)).is_ok());
    }
}

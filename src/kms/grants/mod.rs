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

use super::crypto::dry_run_ok;
use super::error::KmsError;
use super::{KeyRef, paginate, resolve_key, visible_state};
use crate::api::kms::KeyState;
use crate::api::kms::{
    CreateGrantRequest, CreateGrantResponse, GrantConstraints, GrantListEntry, GrantOperation,
    ListGrantsRequest, ListGrantsResponse, ListRetirableGrantsRequest, Request, RetireGrantRequest,
    RevokeGrantRequest,
};
use crate::app::{App, Change, World};
use crate::kms_err;
use crate::protocol::input::shown;
use model::{Constraints, Grant, key_range};
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

/// The grant a CreateGrant asks for, with its `operations` (already checked), checked
/// against the grant rules (before the key).
fn requested_grant(
    app: &App,
    req: CreateGrantRequest,
    operations: &[GrantOperation],
) -> Result<Grant, KmsError> {
    let constraints = rules::constraints(req.constraints)?;
    if req.grantee_principal.is_none() && req.grantee_service_principal.is_none() {
        return Err(KmsError::missing("GranteePrincipal"));
    }
    let account = crate::namespace::current(app).account;
    Ok(Grant {
        id: String::new(),
        key_id: String::new(),
        key_arn: String::new(),
        name: req.name,
        creation_date: app.now(),
        grantee: req.grantee_principal,
        grantee_service: req.grantee_service_principal,
        retiring: req.retiring_principal,
        retiring_service: req.retiring_service_principal,
        issuing_account: format!("arn:aws:iam::{account}:root"),
        operations: operations.iter().map(|o| o.as_str().to_string()).collect(),
        constraints,
        account: String::new(),
        region: String::new(),
    })
}

/// CreateGrant refuses a disabled key and one pending deletion (the key state table); an
/// unavailable key (store disconnected) takes grants.
fn grantable(w: &World, k: &super::model::Key) -> Result<(), KmsError> {
    match visible_state(w, k) {
        KeyState::Disabled => Err(kms_err!(Disabled, "{} is disabled.", k.arn)),
        KeyState::PendingDeletion => {
            Err(kms_err!(KmsInvalidState, "{} is pending deletion.", k.arn))
        }
        _ => Ok(()),
    }
}

/// `CreateGrant`.
pub async fn create_grant(
    app: &Arc<App>,
    req: CreateGrantRequest,
) -> Result<CreateGrantResponse, KmsError> {
    let raw = req.key_id.clone();
    let dry = req.dry_run.unwrap_or(false);
    let operations = rules::operations(&req.operations)?;
    let mut grant = requested_grant(app, req, &operations)?;
    let writer = app.lock_writer().await;
    let existing = {
        let w = app.world();
        let k = resolve_key(app, &w, &raw, KeyRef::IdOrArn)?;
        grantable(&w, &k)?;
        rules::fit_key(&k, &operations, grant.constraints.as_ref())?;
        if dry {
            return Err(dry_run_ok());
        }
        grant.key_id = k.id.to_string();
        grant.key_arn = k.arn.to_string();
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
            app.commit(&writer, vec![Change::Grant(grant.clone())])
                .await
                .map_err(KmsError::internal)?;
            id
        }
    };
    let token = token::mint(app.grant_token_key(), &grant.key_id, &id)
        .ok_or_else(|| KmsError::internal(format!("cannot mint a token for grant {id}")))?;
    Ok(CreateGrantResponse {
        grant_id: Some(id),
        grant_token: Some(token),
    })
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
fn list_entry(g: &Grant) -> GrantListEntry {
    GrantListEntry {
        key_id: Some(g.key_arn.clone()),
        grant_id: Some(g.id.clone()),
        name: g.name.clone(),
        grantee_principal: g.grantee.clone(),
        grantee_service_principal: g.grantee_service.clone(),
        retiring_principal: g.retiring.clone(),
        retiring_service_principal: g.retiring_service.clone(),
        creation_date: Some(g.creation_date),
        issuing_account: Some(g.issuing_account.clone()),
        // The stored operations are the wire words of `GrantOperation`s.
        operations: Some(
            g.operations
                .iter()
                .filter_map(|o| GrantOperation::parse(o))
                .collect(),
        ),
        constraints: g.constraints.as_ref().map(constraints_entry),
    }
}

/// Stored constraints as `GrantConstraints`.
fn constraints_entry(c: &Constraints) -> GrantConstraints {
    GrantConstraints {
        encryption_context_equals: c.equals.clone(),
        encryption_context_subset: c.subset.clone(),
        source_arn: c.source_arn.clone(),
    }
}

/// `Limit` (50 when not given) as a page size.
fn page_size(limit: Option<i64>) -> usize {
    limit.and_then(|l| usize::try_from(l).ok()).unwrap_or(50)
}

/// One page of grants as `ListGrantsResponse` (`Truncated` ⇔ `NextMarker`).
fn grants_page(page: Vec<GrantListEntry>, next: Option<String>) -> ListGrantsResponse {
    ListGrantsResponse {
        grants: Some(page),
        truncated: Some(next.is_some()),
        next_marker: next,
    }
}

/// `ListGrants`: a key's grants, filtered by `GrantId` and grantee.
pub fn list_grants(app: &Arc<App>, req: ListGrantsRequest) -> Result<ListGrantsResponse, KmsError> {
    let grant_id = req.grant_id.as_deref();
    if let Some(id) = grant_id
        && !token::is_grant_id(id)
    {
        return Err(bad_grant_id(id));
    }
    let grantee = req.grantee_principal.as_deref();
    let grantee_service = req.grantee_service_principal.as_deref();
    let w = app.world();
    let k = resolve_key(app, &w, &req.key_id, KeyRef::IdOrArn)?;
    let (page, next) = paginate(
        key_grants(&w, &k.arn)
            .filter(|(_, g)| grant_id.is_none_or(|id| g.id == id))
            .filter(|(_, g)| grantee.is_none_or(|p| g.grantee.as_deref() == Some(p)))
            .filter(|(_, g)| {
                grantee_service.is_none_or(|p| g.grantee_service.as_deref() == Some(p))
            })
            .map(|(sid, g)| (sid, list_entry(g))),
        "grants",
        req.marker.as_deref(),
        page_size(req.limit),
    )?;
    Ok(grants_page(page, next))
}

/// `ListRetirableGrants`: the grants of this namespace's keys that name the principal as
/// their retiring principal.
pub fn list_retirable_grants(
    app: &Arc<App>,
    req: ListRetirableGrantsRequest,
) -> Result<ListGrantsResponse, KmsError> {
    let retiring = req.retiring_principal.as_deref();
    let retiring_service = req.retiring_service_principal.as_deref();
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
        req.marker.as_deref(),
        page_size(req.limit),
    )?;
    Ok(grants_page(page, next))
}

/// The grant a RetireGrant names: by its token, or by `KeyId` and `GrantId`. Returns the
/// grant's storage ID.
fn retire_target(app: &App, w: &World, req: &RetireGrantRequest) -> Result<String, KmsError> {
    let grant_id = req.grant_id.as_deref();
    if let Some(id) = grant_id
        && !token::is_grant_id(id)
    {
        return Err(bad_grant_id(id));
    }
    let (key, id) = match (req.grant_token.as_deref(), req.key_id.as_deref(), grant_id) {
        (Some(t), key, _) => {
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
pub async fn retire_grant(app: &Arc<App>, req: RetireGrantRequest) -> Result<(), KmsError> {
    let writer = app.lock_writer().await;
    let sid = retire_target(app, &app.world(), &req)?;
    if req.dry_run.unwrap_or(false) {
        return Err(dry_run_ok());
    }
    app.commit(&writer, vec![Change::DelGrant(sid)])
        .await
        .map_err(KmsError::internal)
}

/// `RevokeGrant`.
pub async fn revoke_grant(app: &Arc<App>, req: RevokeGrantRequest) -> Result<(), KmsError> {
    let id = req.grant_id;
    if !token::is_grant_id(&id) {
        return Err(bad_grant_id(&id));
    }
    let writer = app.lock_writer().await;
    let sid = {
        let w = app.world();
        let k = resolve_key(app, &w, &req.key_id, KeyRef::IdOrArn)?;
        let sid = model::storage_id(&k.arn, &id);
        if !w.grants.contains_key(&sid) {
            return Err(grant_not_found(&k.arn, &id));
        }
        sid
    };
    if req.dry_run.unwrap_or(false) {
        return Err(dry_run_ok());
    }
    app.commit(&writer, vec![Change::DelGrant(sid)])
        .await
        .map_err(KmsError::internal)
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
            creation_date: crate::api::Timestamp(0.0),
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

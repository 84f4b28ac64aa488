//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and RevokeGrant through
//! `aws-sdk-kms`; grant tokens in cryptographic requests; grants ending with their key and
//! surviving a restart. One server for the file (kept while any of its tests runs), except the
//! tests that restart it or move its clock.

use crate::common::*;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantOperation, KeySpec, KeyUsageType};
use serde_json::json;
use std::sync::{Arc, Mutex, Weak};

static SHARED: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

/// The file's server: the running one, or a new one if none is running.
fn sim() -> Arc<Sim> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = shared.upgrade() {
        return s;
    }
    let s = Arc::new(Sim::start());
    *shared = Arc::downgrade(&s);
    s
}

const ROLE: &str = "arn:aws:iam::111122223333:role/app";
const RETIRER: &str = "arn:aws:iam::111122223333:role/retirer";

/// The exception and message of a failed call.
fn failure<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, E>,
) -> (String, String) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => (
            e.code().unwrap_or_default().to_string(),
            e.message().unwrap_or_default().to_string(),
        ),
    }
}

async fn new_key(kms: &Client) -> (String, String) {
    let out = kms.create_key().send().await.expect("create key");
    let m = out.key_metadata().expect("metadata");
    (
        m.key_id().to_string(),
        m.arn().unwrap_or_default().to_string(),
    )
}

/// A grant of Encrypt and Decrypt to [`ROLE`]: (grant ID, grant token).
async fn grant(kms: &Client, key: &str) -> (String, String) {
    let out = kms
        .create_grant()
        .key_id(key)
        .grantee_principal(ROLE)
        .retiring_principal(RETIRER)
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .expect("create grant");
    (
        out.grant_id().expect("grant id").to_string(),
        out.grant_token().expect("grant token").to_string(),
    )
}

/// Every grant ID of `key`, through the paginator.
async fn grant_ids(kms: &Client, key: &str) -> Vec<String> {
    kms.list_grants()
        .key_id(key)
        .limit(1000)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .filter_map(|g| g.expect("list grants").grant_id().map(str::to_string))
        .collect()
}

#[test]
fn a_grant_has_a_64_hex_digit_id_and_an_opaque_token() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let (id, token) = grant(&kms, &key).await;
        assert_eq!(id.len(), 64, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert!(token.len() > 64, "{token}");
        assert!(!token.contains(&id) && !token.contains(&key), "{token}");
        assert_eq!(grant_ids(&kms, &key).await, vec![id]);
    });
}

#[test]
fn a_grant_token_is_accepted_by_encrypt_and_decrypt() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let (_, token) = grant(&kms, &key).await;
        let ct = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"granted".to_vec()))
            .grant_tokens(&token)
            .send()
            .await
            .expect("encrypt with a grant token");
        let pt = kms
            .decrypt()
            .ciphertext_blob(ct.ciphertext_blob().expect("blob").clone())
            .grant_tokens(&token)
            .send()
            .await
            .expect("decrypt with a grant token");
        assert_eq!(pt.plaintext().expect("plaintext").as_ref(), b"granted");
    });
}

#[test]
fn an_altered_grant_token_is_refused_with_invalid_grant_token_exception() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let (_, token) = grant(&kms, &key).await;
        let mut altered = token.clone().into_bytes();
        altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        for bad in [altered.as_str(), "not-a-grant-token"] {
            let r = kms
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"x".to_vec()))
                .grant_tokens(&token)
                .grant_tokens(bad)
                .send()
                .await;
            assert_eq!(
                failure(r),
                (
                    "InvalidGrantTokenException".into(),
                    "The grant token is not valid: pass a GrantToken that CreateGrant returned, \
                     unchanged."
                        .into()
                )
            );
        }
    });
}

#[test]
fn more_than_ten_grant_tokens_are_a_validation_error() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let (_, token) = grant(&kms, &key).await;
        let r = kms
            .generate_data_key()
            .key_id(&key)
            .number_of_bytes(32)
            .set_grant_tokens(Some(vec![token; 11]))
            .send()
            .await;
        let (code, message) = failure(r);
        assert_eq!(code, "ValidationException");
        assert!(
            message.starts_with("1 validation error detected: Value '[")
                && message.ends_with(
                    "at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10"
                ),
            "{message}"
        );
    });
}

#[test]
fn list_grants_shows_every_member_of_the_grant() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, arn) = new_key(&kms).await;
        let id = kms
            .create_grant()
            .key_id(&arn)
            .name("app-grant")
            .grantee_principal(ROLE)
            .retiring_principal(RETIRER)
            .operations(GrantOperation::Decrypt)
            .operations(GrantOperation::DescribeKey)
            .constraints(
                GrantConstraints::builder()
                    .encryption_context_subset("Department", "IT")
                    .build(),
            )
            .send()
            .await
            .expect("create grant")
            .grant_id()
            .unwrap()
            .to_string();
        let out = kms.list_grants().key_id(&key).send().await.unwrap();
        assert!(!out.truncated());
        let g = &out.grants()[0];
        assert_eq!(g.key_id(), Some(arn.as_str()));
        assert_eq!(g.grant_id(), Some(id.as_str()));
        assert_eq!(g.name(), Some("app-grant"));
        assert_eq!(g.grantee_principal(), Some(ROLE));
        assert_eq!(g.retiring_principal(), Some(RETIRER));
        assert_eq!(g.issuing_account(), Some("arn:aws:iam::111122223333:root"));
        assert_eq!(
            g.operations(),
            [GrantOperation::Decrypt, GrantOperation::DescribeKey]
        );
        let subset = g
            .constraints()
            .unwrap()
            .encryption_context_subset()
            .unwrap();
        assert_eq!(subset.get("Department").map(String::as_str), Some("IT"));
        assert!(
            g.constraints()
                .unwrap()
                .encryption_context_equals()
                .is_none()
        );
        let described = kms.describe_key().key_id(&key).send().await.unwrap();
        let key_created = described.key_metadata().unwrap().creation_date().unwrap();
        let after = g.creation_date().unwrap().as_secs_f64() - key_created.as_secs_f64();
        assert!(
            (0.0..600.0).contains(&after),
            "created {after}s after its key"
        );
    });
}

#[test]
fn list_grants_pages_with_limit_and_marker() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let mut made = Vec::new();
        for _ in 0..5 {
            made.push(grant(&kms, &key).await.0);
        }
        made.sort();
        let first = kms
            .list_grants()
            .key_id(&key)
            .limit(2)
            .send()
            .await
            .unwrap();
        assert!(first.truncated());
        let listed: Vec<String> = kms
            .list_grants()
            .key_id(&key)
            .limit(2)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|g| g.expect("page").grant_id().unwrap().to_string())
            .collect();
        assert_eq!(listed, made);
    });
}

#[test]
fn list_grants_filters_by_grant_id_and_grantee() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let (a, _) = grant(&kms, &key).await;
        let other = "arn:aws:iam::111122223333:role/other";
        let b = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(other)
            .operations(GrantOperation::Encrypt)
            .send()
            .await
            .unwrap()
            .grant_id()
            .unwrap()
            .to_string();
        let by_id = kms.list_grants().key_id(&key).grant_id(&a).send().await;
        let by_id: Vec<_> = by_id
            .unwrap()
            .grants()
            .iter()
            .map(|g| g.grant_id().unwrap().to_string())
            .collect();
        assert_eq!(by_id, vec![a]);
        let by_grantee = kms
            .list_grants()
            .key_id(&key)
            .grantee_principal(other)
            .send()
            .await;
        let by_grantee: Vec<_> = by_grantee
            .unwrap()
            .grants()
            .iter()
            .map(|g| g.grant_id().unwrap().to_string())
            .collect();
        assert_eq!(by_grantee, vec![b]);
    });
}

#[test]
fn list_retirable_grants_lists_the_grants_a_principal_may_retire() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let retirer = format!("arn:aws:iam::111122223333:role/r-{}", &key[..8]);
        let id = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .retiring_principal(&retirer)
            .operations(GrantOperation::Encrypt)
            .send()
            .await
            .unwrap()
            .grant_id()
            .unwrap()
            .to_string();
        grant(&kms, &key).await;
        let out = kms
            .list_retirable_grants()
            .retiring_principal(&retirer)
            .send()
            .await
            .unwrap();
        let ids: Vec<_> = out.grants().iter().map(|g| g.grant_id().unwrap()).collect();
        assert_eq!(ids, vec![id.as_str()]);
    });
}

#[test]
fn a_grant_is_retired_by_its_token() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let (id, token) = grant(&kms, &key).await;
        kms.retire_grant()
            .grant_token(&token)
            .send()
            .await
            .expect("retire");
        assert!(grant_ids(&kms, &key).await.is_empty());
        let (code, message) = failure(kms.retire_grant().grant_token(&token).send().await);
        assert_eq!(code, "NotFoundException");
        assert!(message.contains(&id), "{message}");
    });
}

#[test]
fn a_grant_is_retired_by_key_and_grant_id() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let (id, _) = grant(&kms, &key).await;
        let (kept, _) = grant(&kms, &key).await;
        kms.retire_grant()
            .key_id(&key)
            .grant_id(&id)
            .send()
            .await
            .expect("retire");
        assert_eq!(grant_ids(&kms, &key).await, vec![kept]);
    });
}

#[test]
fn a_grant_is_revoked_and_then_not_found() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, arn) = new_key(&kms).await;
        let (id, _) = grant(&kms, &key).await;
        kms.revoke_grant()
            .key_id(&key)
            .grant_id(&id)
            .send()
            .await
            .expect("revoke");
        assert!(grant_ids(&kms, &key).await.is_empty());
        let r = kms.revoke_grant().key_id(&key).grant_id(&id).send().await;
        assert_eq!(
            failure(r),
            (
                "NotFoundException".into(),
                format!("Grant ID {id} not found for key {arn}.")
            )
        );
    });
}

#[test]
fn a_malformed_grant_id_is_invalid_grant_id_exception() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let r = kms
            .revoke_grant()
            .key_id(&key)
            .grant_id("not-a-grant")
            .send()
            .await;
        assert_eq!(
            failure(r),
            (
                "InvalidGrantIdException".into(),
                "The grant ID 'not-a-grant' is not valid: a grant ID is 64 hexadecimal digits."
                    .into()
            )
        );
    });
}

#[test]
fn a_named_grant_asked_for_twice_is_one_grant_with_two_tokens() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let ask = || {
            kms.create_grant()
                .key_id(&key)
                .name("retry-safe")
                .grantee_principal(ROLE)
                .operations(GrantOperation::Encrypt)
                .operations(GrantOperation::Decrypt)
                .send()
        };
        let first = ask().await.unwrap();
        let second = ask().await.unwrap();
        assert_eq!(first.grant_id(), second.grant_id());
        assert_ne!(first.grant_token(), second.grant_token());
        assert_eq!(grant_ids(&kms, &key).await.len(), 1);
        kms.retire_grant()
            .grant_token(second.grant_token().unwrap())
            .send()
            .await
            .expect("either token names the grant");
    });
}

#[test]
fn the_same_name_with_other_parameters_is_another_grant() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let ask = |op: GrantOperation| {
            kms.create_grant()
                .key_id(&key)
                .name("shared-name")
                .grantee_principal(ROLE)
                .operations(op)
                .send()
        };
        let a = ask(GrantOperation::Encrypt).await.unwrap();
        let b = ask(GrantOperation::Decrypt).await.unwrap();
        assert_ne!(a.grant_id(), b.grant_id());
        assert_eq!(grant_ids(&kms, &key).await.len(), 2);
    });
}

#[test]
fn an_operation_the_key_does_not_support_is_refused() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, arn) = new_key(&kms).await;
        let r = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Encrypt)
            .operations(GrantOperation::Sign)
            .send()
            .await;
        assert_eq!(
            failure(r),
            (
                "ValidationException".into(),
                format!(
                    "The grant operation Sign is not supported for {arn}: its KeySpec is \
                     SYMMETRIC_DEFAULT and its KeyUsage is ENCRYPT_DECRYPT."
                )
            )
        );
        assert!(grant_ids(&kms, &key).await.is_empty());
    });
}

#[test]
fn a_grant_of_create_grant_alone_is_refused_in_aws_words() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let r = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .operations(GrantOperation::CreateGrant)
            .send()
            .await;
        assert_eq!(
            failure(r),
            (
                "ValidationException".into(),
                "Grants must not contain only the CreateGrant operation.".into()
            )
        );
    });
}

#[test]
fn an_unknown_operation_is_refused_with_the_grant_operations() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let r = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .operations(GrantOperation::from("ListGrants"))
            .send()
            .await;
        let (code, message) = failure(r);
        assert_eq!(code, "ValidationException");
        assert!(
            message.starts_with(
                "1 validation error detected: Value '[ListGrants]' at 'operations' failed to \
                 satisfy constraint: Member must satisfy constraint: [Member must satisfy enum \
                 value set: [Decrypt, Encrypt,"
            ),
            "{message}"
        );
    });
}

#[test]
fn two_encryption_context_constraints_are_refused_in_aws_words() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let r = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Decrypt)
            .constraints(
                GrantConstraints::builder()
                    .encryption_context_subset("a", "1")
                    .encryption_context_equals("b", "2")
                    .build(),
            )
            .send()
            .await;
        assert_eq!(
            failure(r),
            (
                "ValidationException".into(),
                "More than one constraint supplied".into()
            )
        );
    });
}

#[test]
fn a_constraint_of_more_than_eight_pairs_is_refused() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let mut c = GrantConstraints::builder();
        for i in 0..9 {
            c = c.encryption_context_equals(format!("k{i}"), "v");
        }
        let r = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Decrypt)
            .constraints(c.build())
            .send()
            .await;
        assert_eq!(
            failure(r),
            (
                "ValidationException".into(),
                "EncryptionContextEquals holds 9 encryption context pairs; a grant constraint \
                 can hold at most 8."
                    .into()
            )
        );
    });
}

#[test]
fn an_encryption_context_constraint_on_a_signing_key_is_refused() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let out = kms
            .create_key()
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .expect("create signing key");
        let arn = out.key_metadata().unwrap().arn().unwrap().to_string();
        let r = kms
            .create_grant()
            .key_id(&arn)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Sign)
            .constraints(
                GrantConstraints::builder()
                    .encryption_context_subset("a", "1")
                    .build(),
            )
            .send()
            .await;
        assert_eq!(
            failure(r),
            (
                "ValidationException".into(),
                format!(
                    "Encryption context grant constraints are supported only on symmetric \
                     encryption KMS keys; {arn} is ECC_NIST_P256."
                )
            )
        );
    });
}

#[test]
fn a_signing_key_takes_a_grant_of_sign_verify_and_get_public_key() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let out = kms
            .create_key()
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .expect("create signing key");
        let key = out.key_metadata().unwrap().key_id().to_string();
        kms.create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Sign)
            .operations(GrantOperation::Verify)
            .operations(GrantOperation::GetPublicKey)
            .send()
            .await
            .expect("grant on a signing key");
        assert_eq!(grant_ids(&kms, &key).await.len(), 1);
    });
}

#[test]
fn an_alias_is_not_a_key_id_for_create_grant() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let alias = format!("alias/grant-{}", &key[..8]);
        kms.create_alias()
            .alias_name(&alias)
            .target_key_id(&key)
            .send()
            .await
            .unwrap();
        let r = kms
            .create_grant()
            .key_id(&alias)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Encrypt)
            .send()
            .await;
        assert_eq!(failure(r).0, "NotFoundException");
    });
}

#[test]
fn a_disabled_key_takes_no_grant() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, arn) = new_key(&kms).await;
        kms.disable_key().key_id(&key).send().await.unwrap();
        let r = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Encrypt)
            .send()
            .await;
        assert_eq!(
            failure(r),
            ("DisabledException".into(), format!("{arn} is disabled."))
        );
    });
}

#[test]
fn a_grant_without_a_grantee_is_a_validation_error() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let r = kms
            .create_grant()
            .key_id(&key)
            .operations(GrantOperation::Encrypt)
            .send()
            .await;
        assert_eq!(
            failure(r),
            (
                "ValidationException".into(),
                "1 validation error detected: Value null at 'granteePrincipal' failed to satisfy \
                 constraint: Member must not be null"
                    .into()
            )
        );
    });
}

#[test]
fn a_dry_run_creates_no_grant() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let r = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Encrypt)
            .dry_run(true)
            .send()
            .await;
        assert_eq!(failure(r).0, "DryRunOperationException");
        assert!(grant_ids(&kms, &key).await.is_empty());
    });
}

#[test]
fn a_key_in_a_cloudhsm_key_store_takes_grants_like_any_other() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let name = format!("grants-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let (store, _) = connected_store(&sim, &name).await;
        let key = cloudhsm_key(&sim, &store).await;
        let (id, token) = grant(&kms, &key).await;
        let ct = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"in the cluster".to_vec()))
            .grant_tokens(&token)
            .send()
            .await
            .expect("encrypt with a grant token");
        assert!(ct.ciphertext_blob().is_some());
        assert_eq!(grant_ids(&kms, &key).await, vec![id]);
    });
}

#[test]
fn grants_end_when_their_key_is_deleted() {
    // Its own server: the clock it moves is the whole server's.
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        let retirer = format!("arn:aws:iam::111122223333:role/gone-{}", &key[..8]);
        kms.create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .retiring_principal(&retirer)
            .operations(GrantOperation::Encrypt)
            .send()
            .await
            .unwrap();
        kms.schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        assert_eq!(grant_ids(&kms, &key).await.len(), 1, "kept while pending");
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 8})))
            .await
            .unwrap();
        let r = kms.list_grants().key_id(&key).send().await;
        assert_eq!(failure(r).0, "NotFoundException");
        let retirable = kms
            .list_retirable_grants()
            .retiring_principal(&retirer)
            .send()
            .await
            .unwrap();
        assert!(retirable.grants().is_empty(), "{retirable:?}");
    });
}

#[test]
fn grants_and_their_tokens_survive_a_restart() {
    let mut sim = Sim::start();
    let (key, id, token) = block_on(async {
        let (key, _) = new_key(&sim.kms()).await;
        let (id, token) = grant(&sim.kms(), &key).await;
        (key, id, token)
    });
    sim.restart();
    block_on(async {
        let kms = sim.kms();
        assert_eq!(grant_ids(&kms, &key).await, vec![id]);
        kms.encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .grant_tokens(&token)
            .send()
            .await
            .expect("a token from before the restart");
        kms.retire_grant()
            .grant_token(&token)
            .send()
            .await
            .expect("retire");
        assert!(grant_ids(&kms, &key).await.is_empty());
    });
}

/// A raw CreateGrant request: (status, body).
async fn create_grant_raw(sim: &Sim, body: serde_json::Value) -> (u16, serde_json::Value) {
    sim.control()
        .raw(
            "POST",
            "/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "TrentService.CreateGrant"),
            ],
            body.to_string().into_bytes(),
        )
        .await
        .expect("an answer")
}

#[test]
fn wrongly_typed_grant_members_are_serialization_errors_that_create_nothing() {
    let sim = sim();
    block_on(async {
        let (key, _) = new_key(&sim.kms()).await;
        let base = json!({"KeyId": key, "GranteePrincipal": ROLE, "Operations": ["Encrypt"]});
        let mut cases = Vec::new();
        for (member, value) in [
            ("Operations", json!("Encrypt")),
            ("Operations", json!([5])),
            ("Constraints", json!("x")),
            ("Constraints", json!({"EncryptionContextEquals": {"k": 5}})),
            ("Constraints", json!({"EncryptionContextSubset": ["k"]})),
            ("GrantTokens", json!("token")),
            ("Name", json!(7)),
        ] {
            let mut body = base.clone();
            body[member] = value;
            cases.push((member, body));
        }
        for (member, body) in cases {
            let (status, v) = create_grant_raw(&sim, body.clone()).await;
            assert_eq!(status, 400, "{member}: {v}");
            assert_eq!(v["__type"], "SerializationException", "{body}: {v}");
        }
        assert!(grant_ids(&sim.kms(), &key).await.is_empty());
    });
}

#[test]
fn another_region_sees_neither_the_key_nor_its_grants() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, arn) = new_key(&kms).await;
        let retirer = format!("arn:aws:iam::111122223333:role/ns-{}", &key[..8]);
        let id = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .retiring_principal(&retirer)
            .operations(GrantOperation::Encrypt)
            .send()
            .await
            .unwrap()
            .grant_id()
            .unwrap()
            .to_string();
        let eu = sim.kms_as("test", "test", "eu-west-1", None);
        let retirable = eu
            .list_retirable_grants()
            .retiring_principal(&retirer)
            .send()
            .await
            .unwrap();
        assert!(retirable.grants().is_empty(), "{retirable:?}");
        let r = eu.revoke_grant().key_id(&arn).grant_id(&id).send().await;
        assert_eq!(failure(r).0, "NotFoundException");
        let home = kms
            .list_retirable_grants()
            .retiring_principal(&retirer)
            .send()
            .await
            .unwrap();
        assert_eq!(home.grants().len(), 1);
    });
}

#[test]
fn describe_key_checks_the_number_of_grant_tokens_but_not_their_contents() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (key, _) = new_key(&kms).await;
        kms.describe_key()
            .key_id(&key)
            .grant_tokens("not-a-grant-token")
            .send()
            .await
            .expect("DescribeKey has no InvalidGrantTokenException in the model");
        let r = kms
            .describe_key()
            .key_id(&key)
            .set_grant_tokens(Some(vec!["t".to_string(); 11]))
            .send()
            .await;
        assert_eq!(failure(r).0, "ValidationException");
    });
}

/// A step of a grant burst: created (acknowledged), revoke sent, revoked (acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Created,
    Revoking,
    Revoked,
}

/// Create grants on `key` and revoke every other one, reporting each step on `tx`, until the
/// server goes away.
async fn grant_burst(
    c: cks_sim::client::ControlClient,
    key: String,
    tx: tokio::sync::mpsc::UnboundedSender<(String, Step)>,
) {
    for i in 0..500u32 {
        let body = json!({"KeyId": key, "GranteePrincipal": ROLE, "Operations": ["Encrypt"]});
        let Ok(v) = c.aws("TrentService.CreateGrant", body).await else {
            return;
        };
        let id = v["GrantId"].as_str().unwrap_or_default().to_string();
        let _ = tx.send((id.clone(), Step::Created));
        if i % 2 == 1 {
            let _ = tx.send((id.clone(), Step::Revoking));
            let body = json!({"KeyId": key, "GrantId": id});
            if c.aws("TrentService.RevokeGrant", body).await.is_err() {
                return;
            }
            let _ = tx.send((id, Step::Revoked));
        }
    }
}

#[test]
fn killed_mid_burst_the_server_keeps_every_acknowledged_grant_change() {
    let mut sim = Sim::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (key, _) = rt.block_on(new_key(&sim.kms()));
    let mut live: std::collections::BTreeSet<String> = Default::default();
    let mut revoked: std::collections::BTreeSet<String> = Default::default();
    for cycle in 0..5u64 {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let burst = rt.spawn(grant_burst(sim.control(), key.clone(), tx));
        let first = deadline_poll("the burst's first acknowledgement", 30, || {
            rx.try_recv().ok()
        });
        let until = std::time::Instant::now() + std::time::Duration::from_millis(cycle * 15);
        deadline_poll("the kill point", 5, || {
            (std::time::Instant::now() >= until).then_some(())
        });
        sim.kill9();
        rt.block_on(async {
            let _ = burst.await;
        });
        // A grant whose revocation was sent but not acknowledged may be there or not.
        let mut in_doubt = std::collections::BTreeSet::new();
        for (id, step) in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match step {
                Step::Created => {
                    live.insert(id);
                }
                Step::Revoking => {
                    live.remove(&id);
                    in_doubt.insert(id);
                }
                Step::Revoked => {
                    in_doubt.remove(&id);
                    revoked.insert(id);
                }
            }
        }
        sim.respawn();
        let listed: std::collections::BTreeSet<String> = rt
            .block_on(grant_ids(&sim.kms(), &key))
            .into_iter()
            .collect();
        let lost: Vec<_> = live.difference(&listed).collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: acknowledged grants lost: {lost:?}"
        );
        let back: Vec<_> = revoked.intersection(&listed).collect();
        assert!(
            back.is_empty(),
            "cycle {cycle}: revoked grants back: {back:?}"
        );
        // A grant whose creation or revocation was not acknowledged may be there or not; what
        // is listed now is what the next cycle must keep.
        live = listed.difference(&revoked).cloned().collect();
        revoked.extend(in_doubt.difference(&listed).cloned());
    }
}

//! Multi-Region keys: `mrk-` IDs, replicas in other regions of the same account with the same
//! material (a ciphertext made in one region decrypts in another), `UpdatePrimaryRegion`,
//! `PendingReplicaDeletion`, and the material kept on the token until the last copy is gone.

use crate::common::{Sim, block_on, code};
use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    KeySpec, KeyState, KeyUsageType, MultiRegionKeyType, SigningAlgorithmSpec,
};
use serde_json::json;

const HOME: &str = "us-east-1";
const AWAY: &str = "eu-west-1";
const ACCOUNT: &str = "111122223333";

fn kms(sim: &Sim, region: &str) -> Client {
    sim.kms_as("test", "test", region, None)
}

fn message<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
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

fn arn(region: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/{id}")
}

/// A multi-Region primary key in us-east-1; its key ID.
async fn primary(sim: &Sim) -> String {
    let m = kms(sim, HOME)
        .create_key()
        .multi_region(true)
        .send()
        .await
        .expect("create a multi-Region key");
    m.key_metadata().unwrap().key_id().to_string()
}

/// A primary in us-east-1 with a replica in eu-west-1; its key ID.
async fn replicated(sim: &Sim) -> String {
    let id = primary(sim).await;
    kms(sim, HOME)
        .replicate_key()
        .key_id(&id)
        .replica_region(AWAY)
        .send()
        .await
        .expect("replicate");
    id
}

async fn encrypt(c: &Client, key: &str, pt: &[u8]) -> Blob {
    c.encrypt()
        .key_id(key)
        .plaintext(Blob::new(pt.to_vec()))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .unwrap()
        .clone()
}

async fn state(c: &Client, id: &str) -> KeyState {
    c.describe_key()
        .key_id(id)
        .send()
        .await
        .expect("describe")
        .key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .clone()
}

async fn advance_days(sim: &Sim, days: u32) {
    sim.control()
        .call("POST", "/_sim/clock/advance", Some(json!({"days": days})))
        .await
        .unwrap();
}

/// The objects on the internal token labelled with `label`, read by a separate process.
fn token_objects_labelled(sim: &Sim, label: &str) -> usize {
    let pin = sim.read("internal-token-pin").trim().to_string();
    sim.inspect_token("kms-internal", &pin)
        .into_iter()
        .filter(|o| o["label"] == label)
        .count()
}

#[test]
fn a_multi_region_key_has_an_mrk_id_and_is_its_own_primary() {
    let sim = Sim::start();
    block_on(async {
        let id = primary(&sim).await;
        let hex = id.strip_prefix("mrk-").expect("mrk- prefix");
        assert_eq!(hex.len(), 32, "{id}");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let d = kms(&sim, HOME)
            .describe_key()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        let m = d.key_metadata().unwrap();
        assert_eq!(m.arn(), Some(arn(HOME, &id).as_str()));
        assert_eq!(m.multi_region(), Some(true));
        let conf = m.multi_region_configuration().expect("configuration");
        assert_eq!(
            conf.multi_region_key_type(),
            Some(&MultiRegionKeyType::Primary)
        );
        let p = conf.primary_key().unwrap();
        assert_eq!(p.arn(), Some(arn(HOME, &id).as_str()));
        assert_eq!(p.region(), Some(HOME));
        assert!(conf.replica_keys().is_empty());
        let single = kms(&sim, HOME).create_key().send().await.unwrap();
        let single = single.key_metadata().unwrap();
        assert_eq!(single.multi_region(), Some(false));
        assert!(single.multi_region_configuration().is_none());
    });
}

#[test]
fn a_replica_has_the_same_id_in_the_other_region_with_its_own_policy_and_tags() {
    let sim = Sim::start();
    block_on(async {
        let id = primary(&sim).await;
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let r = kms(&sim, HOME)
            .replicate_key()
            .key_id(arn(HOME, &id))
            .replica_region(AWAY)
            .description("the Irish copy")
            .policy(policy)
            .tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key("team")
                    .tag_value("storage")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("replicate");
        let m = r.replica_key_metadata().unwrap();
        assert_eq!(m.key_id(), id);
        assert_eq!(m.arn(), Some(arn(AWAY, &id).as_str()));
        assert_eq!(m.description(), Some("the Irish copy"));
        assert_eq!(m.key_state(), Some(&KeyState::Enabled));
        let conf = m.multi_region_configuration().unwrap();
        assert_eq!(
            conf.multi_region_key_type(),
            Some(&MultiRegionKeyType::Replica)
        );
        assert_eq!(r.replica_policy(), Some(policy));
        let tags = r.replica_tags();
        assert_eq!(tags.len(), 1);
        assert_eq!(
            (tags[0].tag_key(), tags[0].tag_value()),
            ("team", "storage")
        );
        // The primary's own description and tags are untouched.
        let p = kms(&sim, HOME)
            .describe_key()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(p.key_metadata().unwrap().description(), Some(""));
        let ptags = kms(&sim, HOME)
            .list_resource_tags()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        assert!(ptags.tags().is_empty());
    });
}

#[test]
fn describe_key_on_either_side_shows_the_primary_and_every_replica() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        kms(&sim, HOME)
            .replicate_key()
            .key_id(&id)
            .replica_region("ap-southeast-2")
            .send()
            .await
            .unwrap();
        for (region, kind) in [
            (HOME, MultiRegionKeyType::Primary),
            (AWAY, MultiRegionKeyType::Replica),
            ("ap-southeast-2", MultiRegionKeyType::Replica),
        ] {
            let d = kms(&sim, region)
                .describe_key()
                .key_id(&id)
                .send()
                .await
                .unwrap();
            let m = d.key_metadata().unwrap();
            assert_eq!(m.arn(), Some(arn(region, &id).as_str()), "{region}");
            assert_eq!(m.multi_region(), Some(true));
            let conf = m.multi_region_configuration().unwrap();
            assert_eq!(conf.multi_region_key_type(), Some(&kind), "{region}");
            assert_eq!(
                conf.primary_key().and_then(|p| p.region()),
                Some(HOME),
                "{region}"
            );
            let mut replicas: Vec<(String, String)> = conf
                .replica_keys()
                .iter()
                .map(|r| {
                    (
                        r.region().unwrap().to_string(),
                        r.arn().unwrap().to_string(),
                    )
                })
                .collect();
            replicas.sort();
            assert_eq!(
                replicas,
                vec![
                    ("ap-southeast-2".into(), arn("ap-southeast-2", &id)),
                    (AWAY.into(), arn(AWAY, &id)),
                ],
                "{region}"
            );
        }
    });
}

#[test]
fn a_ciphertext_from_one_region_decrypts_in_the_other() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let (home, away) = (kms(&sim, HOME), kms(&sim, AWAY));
        for (from, to, to_region) in [(&home, &away, AWAY), (&away, &home, HOME)] {
            let blob = encrypt(from, &id, b"across the sea").await;
            let out = to
                .decrypt()
                .ciphertext_blob(blob.clone())
                .send()
                .await
                .expect("decrypt without KeyId");
            assert_eq!(out.plaintext().unwrap().as_ref(), b"across the sea");
            assert_eq!(out.key_id(), Some(arn(to_region, &id).as_str()));
            let named = to
                .decrypt()
                .key_id(arn(to_region, &id))
                .ciphertext_blob(blob)
                .send()
                .await
                .expect("decrypt naming the local copy");
            assert_eq!(named.plaintext().unwrap().as_ref(), b"across the sea");
        }
        // A data key made in one region opens in the other.
        let dk = home
            .generate_data_key()
            .key_id(&id)
            .number_of_bytes(32)
            .send()
            .await
            .unwrap();
        let opened = away
            .decrypt()
            .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap();
        assert_eq!(opened.plaintext(), dk.plaintext());
    });
}

#[test]
fn a_ciphertext_of_a_region_without_a_copy_is_not_found_there() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let blob = encrypt(&kms(&sim, HOME), &id, b"x").await;
        let r = kms(&sim, "ca-central-1")
            .decrypt()
            .ciphertext_blob(blob)
            .send()
            .await;
        assert_eq!(code(r), "NotFoundException");
    });
}

#[test]
fn an_asymmetric_multi_region_key_signs_in_one_region_and_verifies_in_the_other() {
    let sim = Sim::start();
    block_on(async {
        let m = kms(&sim, HOME)
            .create_key()
            .multi_region(true)
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap();
        let id = m.key_metadata().unwrap().key_id().to_string();
        let r = kms(&sim, HOME)
            .replicate_key()
            .key_id(&id)
            .replica_region(AWAY)
            .send()
            .await
            .unwrap();
        let rm = r.replica_key_metadata().unwrap();
        assert_eq!(rm.key_spec(), Some(&KeySpec::EccNistP256));
        assert_eq!(rm.key_usage(), Some(&KeyUsageType::SignVerify));
        let sig = kms(&sim, HOME)
            .sign()
            .key_id(&id)
            .message(Blob::new(b"signed at home".to_vec()))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .unwrap();
        let v = kms(&sim, AWAY)
            .verify()
            .key_id(&id)
            .message(Blob::new(b"signed at home".to_vec()))
            .signature(sig.signature().unwrap().clone())
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .unwrap();
        assert!(v.signature_valid());
        let home_pub = kms(&sim, HOME)
            .get_public_key()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        let away_pub = kms(&sim, AWAY)
            .get_public_key()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(home_pub.public_key(), away_pub.public_key());
    });
}

#[test]
fn list_keys_and_aliases_stay_per_region() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        for region in [HOME, AWAY] {
            let c = kms(&sim, region);
            let keys = c.list_keys().send().await.unwrap();
            let listed: Vec<_> = keys
                .keys()
                .iter()
                .map(|k| (k.key_id().unwrap(), k.key_arn().unwrap()))
                .collect();
            assert_eq!(listed, vec![(id.as_str(), arn(region, &id).as_str())]);
            c.create_alias()
                .alias_name("alias/shared-name")
                .target_key_id(&id)
                .send()
                .await
                .expect("the same alias name in each region");
        }
        // An alias of one region resolves to that region's copy.
        let d = kms(&sim, AWAY)
            .describe_key()
            .key_id("alias/shared-name")
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.key_metadata().unwrap().arn(),
            Some(arn(AWAY, &id).as_str())
        );
        let aliases = kms(&sim, HOME)
            .list_aliases()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(aliases.aliases().len(), 1);
        assert!(
            kms(&sim, "ca-central-1")
                .list_keys()
                .send()
                .await
                .unwrap()
                .keys()
                .is_empty()
        );
    });
}

#[test]
fn update_primary_region_swaps_the_primary_and_the_replica() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        kms(&sim, HOME)
            .update_primary_region()
            .key_id(&id)
            .primary_region(AWAY)
            .send()
            .await
            .expect("update primary region");
        for (region, kind) in [
            (HOME, MultiRegionKeyType::Replica),
            (AWAY, MultiRegionKeyType::Primary),
        ] {
            let d = kms(&sim, region)
                .describe_key()
                .key_id(&id)
                .send()
                .await
                .unwrap();
            let conf = d
                .key_metadata()
                .unwrap()
                .multi_region_configuration()
                .unwrap()
                .clone();
            assert_eq!(conf.multi_region_key_type(), Some(&kind), "{region}");
            assert_eq!(conf.primary_key().and_then(|p| p.region()), Some(AWAY));
            let replicas: Vec<_> = conf
                .replica_keys()
                .iter()
                .filter_map(|r| r.region())
                .collect();
            assert_eq!(replicas, vec![HOME], "{region}");
        }
        // The new primary replicates; the old one, now a replica, does not.
        let (c, m) = message(
            kms(&sim, HOME)
                .replicate_key()
                .key_id(&id)
                .replica_region("ap-southeast-2")
                .send()
                .await,
        );
        assert_eq!(c, "UnsupportedOperationException");
        assert_eq!(
            m,
            format!(
                "{} is a multi-Region replica key. ReplicateKey takes the multi-Region primary key, in its own Region.",
                arn(HOME, &id)
            )
        );
        kms(&sim, AWAY)
            .replicate_key()
            .key_id(&id)
            .replica_region("ap-southeast-2")
            .send()
            .await
            .expect("the new primary replicates");
    });
}

#[test]
fn update_primary_region_refuses_a_region_without_a_replica_and_keys_not_enabled() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let home = kms(&sim, HOME);
        let (c, m) = message(
            home.update_primary_region()
                .key_id(&id)
                .primary_region("ap-south-1")
                .send()
                .await,
        );
        assert_eq!(c, "NotFoundException");
        assert_eq!(
            m,
            format!("Key '{}' does not exist", arn("ap-south-1", &id))
        );
        let (c, m) = message(
            home.update_primary_region()
                .key_id(&id)
                .primary_region(HOME)
                .send()
                .await,
        );
        assert_eq!(c, "UnsupportedOperationException");
        assert_eq!(
            m,
            format!("{} is already the primary key in {HOME}.", arn(HOME, &id))
        );
        kms(&sim, AWAY)
            .disable_key()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        let (c, m) = message(
            home.update_primary_region()
                .key_id(&id)
                .primary_region(AWAY)
                .send()
                .await,
        );
        assert_eq!(c, "DisabledException");
        assert_eq!(m, format!("{} is disabled.", arn(AWAY, &id)));
        let single = home.create_key().send().await.unwrap();
        let single = single.key_metadata().unwrap().key_id().to_string();
        let (c, m) = message(
            home.update_primary_region()
                .key_id(&single)
                .primary_region(AWAY)
                .send()
                .await,
        );
        assert_eq!(c, "UnsupportedOperationException");
        assert_eq!(
            m,
            format!(
                "{} is not a multi-Region key. UpdatePrimaryRegion applies only to multi-Region keys.",
                arn(HOME, &single)
            )
        );
        // Nothing changed.
        let d = home.describe_key().key_id(&id).send().await.unwrap();
        assert_eq!(
            d.key_metadata()
                .unwrap()
                .multi_region_configuration()
                .unwrap()
                .multi_region_key_type(),
            Some(&MultiRegionKeyType::Primary)
        );
    });
}

#[test]
fn replicate_key_refuses_what_aws_refuses() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let home = kms(&sim, HOME);
        let (c, m) = message(
            home.replicate_key()
                .key_id(&id)
                .replica_region(AWAY)
                .send()
                .await,
        );
        assert_eq!(c, "AlreadyExistsException");
        assert_eq!(
            m,
            format!(
                "The multi-Region key {id} already has a replica in {AWAY}: {}",
                arn(AWAY, &id)
            )
        );
        let (c, m) = message(
            home.replicate_key()
                .key_id(&id)
                .replica_region(HOME)
                .send()
                .await,
        );
        assert_eq!(c, "ValidationException");
        assert_eq!(
            m,
            format!(
                "The replica Region {HOME} is the Region of the primary key {}: a replica must be in another Region.",
                arn(HOME, &id)
            )
        );
        let (c, m) = message(
            home.replicate_key()
                .key_id(&id)
                .replica_region("Mars_1")
                .send()
                .await,
        );
        assert_eq!(c, "ValidationException");
        assert_eq!(
            m,
            "1 validation error detected: Value 'Mars_1' at 'replicaRegion' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$"
        );
        let single = home.create_key().send().await.unwrap();
        let single = single.key_metadata().unwrap().key_id().to_string();
        let (c, m) = message(
            home.replicate_key()
                .key_id(&single)
                .replica_region(AWAY)
                .send()
                .await,
        );
        assert_eq!(c, "UnsupportedOperationException");
        assert_eq!(
            m,
            format!(
                "{} is not a multi-Region key. ReplicateKey applies only to multi-Region keys.",
                arn(HOME, &single)
            )
        );
        let (c, _) = message(home.replicate_key().key_id(&id).send().await);
        assert_eq!(c, "ValidationException", "ReplicaRegion is required");
    });
}

#[test]
fn replicate_key_refuses_a_disabled_or_deleted_primary() {
    let sim = Sim::start();
    block_on(async {
        let id = primary(&sim).await;
        let home = kms(&sim, HOME);
        home.disable_key().key_id(&id).send().await.unwrap();
        let (c, m) = message(
            home.replicate_key()
                .key_id(&id)
                .replica_region(AWAY)
                .send()
                .await,
        );
        assert_eq!(
            (c.as_str(), m),
            (
                "DisabledException",
                format!("{} is disabled.", arn(HOME, &id))
            )
        );
        home.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        let (c, m) = message(
            home.replicate_key()
                .key_id(&id)
                .replica_region(AWAY)
                .send()
                .await,
        );
        assert_eq!(
            (c.as_str(), m),
            (
                "KMSInvalidStateException",
                format!("{} is pending deletion.", arn(HOME, &id))
            )
        );
        let r = kms(&sim, AWAY).describe_key().key_id(&id).send().await;
        assert_eq!(code(r), "NotFoundException", "no replica was made");
    });
}

#[test]
fn multi_region_keys_cannot_be_created_in_a_custom_key_store() {
    let sim = Sim::start();
    block_on(async {
        let (c, m) = message(
            kms(&sim, HOME)
                .create_key()
                .multi_region(true)
                .origin(aws_sdk_kms::types::OriginType::AwsCloudhsm)
                .custom_key_store_id("cks-1234567890abcdef0")
                .send()
                .await,
        );
        assert_eq!(c, "UnsupportedOperationException");
        assert_eq!(
            m,
            "Multi-Region keys cannot be created in a custom key store."
        );
    });
}

#[test]
fn a_primary_with_replicas_waits_in_pending_replica_deletion() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let (home, away) = (kms(&sim, HOME), kms(&sim, AWAY));
        let s = home
            .schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        assert_eq!(s.key_state(), Some(&KeyState::PendingReplicaDeletion));
        assert_eq!(s.pending_window_in_days(), Some(7));
        assert!(
            s.deletion_date().is_none(),
            "unknown until the last replica goes"
        );
        let d = home.describe_key().key_id(&id).send().await.unwrap();
        let m = d.key_metadata().unwrap();
        assert_eq!(m.key_state(), Some(&KeyState::PendingReplicaDeletion));
        assert_eq!(m.pending_deletion_window_in_days(), Some(7));
        assert!(m.deletion_date().is_none());
        let (c, msg) = message(
            home.encrypt()
                .key_id(&id)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await,
        );
        assert_eq!(c, "KMSInvalidStateException");
        assert_eq!(
            msg,
            format!("{} is pending replica deletion.", arn(HOME, &id))
        );
        // The replica still works, and the primary waits as long as it exists.
        encrypt(&away, &id, b"still here").await;
        advance_days(&sim, 40).await;
        assert_eq!(state(&home, &id).await, KeyState::PendingReplicaDeletion);

        // The replica's deletion starts the primary's waiting period.
        let r = away
            .schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        assert_eq!(r.key_state(), Some(&KeyState::PendingDeletion));
        let replica_gone_at = r.deletion_date().unwrap().secs();
        advance_days(&sim, 8).await;
        assert_eq!(
            code(away.describe_key().key_id(&id).send().await),
            "NotFoundException"
        );
        let d = home.describe_key().key_id(&id).send().await.unwrap();
        let m = d.key_metadata().unwrap();
        assert_eq!(m.key_state(), Some(&KeyState::PendingDeletion));
        assert_eq!(
            m.deletion_date().unwrap().secs(),
            replica_gone_at + 7 * 86_400,
            "the primary's 7 days start when the replica is deleted"
        );
        assert!(
            m.multi_region_configuration()
                .unwrap()
                .replica_keys()
                .is_empty()
        );
        advance_days(&sim, 7).await;
        assert_eq!(
            code(home.describe_key().key_id(&id).send().await),
            "NotFoundException"
        );
    });
}

#[test]
fn cancelling_a_pending_replica_deletion_leaves_the_primary_disabled() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let home = kms(&sim, HOME);
        home.schedule_key_deletion()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        home.cancel_key_deletion().key_id(&id).send().await.unwrap();
        let d = home.describe_key().key_id(&id).send().await.unwrap();
        let m = d.key_metadata().unwrap();
        assert_eq!(m.key_state(), Some(&KeyState::Disabled));
        assert!(m.pending_deletion_window_in_days().is_none());
    });
}

#[test]
fn the_material_survives_until_the_last_copy_is_gone() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let (home, away) = (kms(&sim, HOME), kms(&sim, AWAY));
        // One object on the token, labelled with the primary's ARN: the replica has no copy.
        assert_eq!(token_objects_labelled(&sim, &arn(HOME, &id)), 1);
        assert_eq!(token_objects_labelled(&sim, &arn(AWAY, &id)), 0);
        let blob = encrypt(&away, &id, b"outlives the replica").await;
        away.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        advance_days(&sim, 8).await;
        assert_eq!(
            code(away.describe_key().key_id(&id).send().await),
            "NotFoundException"
        );
        assert_eq!(
            token_objects_labelled(&sim, &arn(HOME, &id)),
            1,
            "the primary still uses it"
        );
        let out = home.decrypt().ciphertext_blob(blob).send().await.unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), b"outlives the replica");

        home.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        advance_days(&sim, 8).await;
        assert_eq!(
            code(home.describe_key().key_id(&id).send().await),
            "NotFoundException"
        );
        assert_eq!(
            token_objects_labelled(&sim, &arn(HOME, &id)),
            0,
            "the last copy took it"
        );
    });
}

#[test]
fn replicas_and_their_roles_survive_a_restart() {
    let mut sim = Sim::start();
    let id = block_on(async {
        let id = replicated(&sim).await;
        kms(&sim, HOME)
            .update_primary_region()
            .key_id(&id)
            .primary_region(AWAY)
            .send()
            .await
            .unwrap();
        id
    });
    sim.restart();
    block_on(async {
        let blob = encrypt(&kms(&sim, HOME), &id, b"after restart").await;
        let out = kms(&sim, AWAY)
            .decrypt()
            .ciphertext_blob(blob)
            .send()
            .await
            .unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), b"after restart");
        let d = kms(&sim, AWAY)
            .describe_key()
            .key_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.key_metadata()
                .unwrap()
                .multi_region_configuration()
                .unwrap()
                .multi_region_key_type(),
            Some(&MultiRegionKeyType::Primary)
        );
        let health = sim
            .control()
            .call("GET", "/_sim/health", None)
            .await
            .unwrap();
        assert_eq!(
            health["reconciliation"]["orphans_found"], 0,
            "the shared material is explained at start-up: {health}"
        );
    });
}

#[test]
fn a_grant_belongs_to_the_copy_it_was_made_on_and_its_token_works_there() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let (home, away) = (kms(&sim, HOME), kms(&sim, AWAY));
        let grantee = format!("arn:aws:iam::{ACCOUNT}:role/reader");
        let g = away
            .create_grant()
            .key_id(arn(AWAY, &id))
            .grantee_principal(&grantee)
            .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
            .send()
            .await
            .expect("a grant on the replica");
        let listed = away.list_grants().key_id(&id).send().await.unwrap();
        let ids: Vec<&str> = listed
            .grants()
            .iter()
            .filter_map(|e| e.grant_id())
            .collect();
        assert_eq!(ids, [g.grant_id().unwrap()]);
        assert_eq!(listed.grants()[0].key_id(), Some(arn(AWAY, &id).as_str()));
        let on_primary = home.list_grants().key_id(&id).send().await.unwrap();
        assert!(on_primary.grants().is_empty(), "{on_primary:?}");
        away.encrypt()
            .key_id(&id)
            .plaintext(Blob::new(b"granted".to_vec()))
            .grant_tokens(g.grant_token().unwrap())
            .send()
            .await
            .expect("the grant's token is accepted on its copy");
    });
}

#[test]
fn every_copy_of_a_multi_region_key_shows_the_same_current_key_material_id() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let mut ids = Vec::new();
        for region in [HOME, AWAY] {
            let d = kms(&sim, region).describe_key().key_id(&id).send().await;
            let m = d.expect("describe").key_metadata().unwrap().clone();
            ids.push(m.current_key_material_id().expect("an ID").to_string());
        }
        assert_eq!(ids[0].len(), 64, "{ids:?}");
        assert_eq!(ids[0], ids[1]);
        let other = primary(&sim).await;
        let d = kms(&sim, HOME).describe_key().key_id(&other).send().await;
        let m = d.expect("describe").key_metadata().unwrap().clone();
        assert_ne!(m.current_key_material_id(), Some(ids[0].as_str()));
    });
}

async fn current_material(c: &Client, id: &str) -> String {
    let d = c.describe_key().key_id(id).send().await.expect("describe");
    let m = d.key_metadata().unwrap();
    m.current_key_material_id().expect("an ID").to_string()
}

async fn rotations_seen_from(c: &Client, id: &str) -> Vec<aws_sdk_kms::types::RotationType> {
    let r = c
        .list_key_rotations()
        .key_id(id)
        .send()
        .await
        .expect("list");
    r.rotations()
        .iter()
        .filter_map(|e| e.rotation_type().cloned())
        .collect()
}

#[test]
fn rotating_a_primary_rotates_every_copy_and_each_region_opens_the_others_ciphertexts() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let (home, away) = (kms(&sim, HOME), kms(&sim, AWAY));
        let before = encrypt(&home, &id, b"before").await;
        let first = current_material(&away, &id).await;
        home.rotate_key_on_demand()
            .key_id(&id)
            .send()
            .await
            .expect("rotate");
        let second = current_material(&away, &id).await;
        assert_ne!(second, first);
        assert_eq!(current_material(&home, &id).await, second);
        let after = encrypt(&home, &id, b"after").await;
        let cases: [(Blob, &[u8], &String); 2] =
            [(before, b"before", &first), (after, b"after", &second)];
        for (blob, plain, material) in cases {
            let d = away
                .decrypt()
                .ciphertext_blob(blob)
                .send()
                .await
                .expect("decrypt");
            assert_eq!(d.plaintext().unwrap().as_ref(), plain);
            assert_eq!(d.key_material_id(), Some(material.as_str()));
        }
        let types = rotations_seen_from(&away, &id).await;
        assert_eq!(types, [aws_sdk_kms::types::RotationType::OnDemand]);
    });
}

#[test]
fn a_replica_refuses_rotation_its_primary_rotates_it() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let away = kms(&sim, AWAY);
        let expected = (
            "UnsupportedOperationException".to_string(),
            format!(
                "{} is a multi-Region replica key: its key material rotates with its primary key's.",
                arn(AWAY, &id)
            ),
        );
        let r = away.enable_key_rotation().key_id(&id).send().await;
        assert_eq!(message(r), expected);
        let r = away.rotate_key_on_demand().key_id(&id).send().await;
        assert_eq!(message(r), expected);
    });
}

#[test]
fn an_automatic_rotation_of_a_primary_reaches_its_replicas() {
    let sim = Sim::start();
    block_on(async {
        let id = replicated(&sim).await;
        let (home, away) = (kms(&sim, HOME), kms(&sim, AWAY));
        home.enable_key_rotation()
            .key_id(&id)
            .rotation_period_in_days(90)
            .send()
            .await
            .expect("enable on the primary");
        let status = away.get_key_rotation_status().key_id(&id).send().await;
        let status = status.expect("status of the replica");
        assert!(status.key_rotation_enabled());
        assert_eq!(status.rotation_period_in_days(), Some(90));
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 91})))
            .await
            .expect("advance 91 days");
        let types = rotations_seen_from(&away, &id).await;
        assert_eq!(types, [aws_sdk_kms::types::RotationType::Automatic]);
        assert_eq!(
            current_material(&away, &id).await,
            current_material(&home, &id).await
        );
    });
}

#[test]
fn a_replica_of_an_imported_key_takes_its_material_from_the_primary_only() {
    let sim = Sim::start();
    block_on(async {
        let home = kms(&sim, HOME);
        let created = home
            .create_key()
            .multi_region(true)
            .origin(aws_sdk_kms::types::OriginType::External)
            .send()
            .await
            .expect("an EXTERNAL multi-Region key");
        let id = created.key_metadata().unwrap().key_id().to_string();
        home.replicate_key()
            .key_id(&id)
            .replica_region(AWAY)
            .send()
            .await
            .expect("a primary waiting for its material replicates");
        assert_eq!(state(&kms(&sim, AWAY), &id).await, KeyState::PendingImport);
        let r = kms(&sim, AWAY)
            .get_parameters_for_import()
            .key_id(&id)
            .wrapping_algorithm(aws_sdk_kms::types::AlgorithmSpec::RsaesOaepSha256)
            .wrapping_key_spec(aws_sdk_kms::types::WrappingKeySpec::Rsa2048)
            .send()
            .await;
        assert_eq!(
            message(r),
            (
                "UnsupportedOperationException".to_string(),
                format!(
                    "{} is a multi-Region replica key: in cks-sim every copy shares the key material imported into its primary key.",
                    arn(AWAY, &id)
                )
            )
        );
    });
}

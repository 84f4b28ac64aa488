//! Managing KMS keys in a CloudHSM key store, one behaviour per test: metadata and material,
//! aliases, descriptions, tags, policies, enable/disable, the key states of a disconnected
//! store, scheduled deletion and its cancellation, and the operations a CloudHSM key refuses.
//! Every refusal is checked for its exception and its exact message.
//!
//! One server for the file (kept while any of its tests runs), with one connected store on the
//! default cluster and, made on first use, a second store whose keys were created and which
//! was then disconnected. Each test works on keys of its own; a test that reconnects a store
//! makes a cluster of its own.

use crate::common::*;
use crate::key_stores::new_cluster;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyMetadata, KeyState, OriginType, Tag};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Keys made for the disconnected store: one for each test that takes one.
const OFFLINE_KEYS: usize = 8;

/// The file's server and its stores.
struct Fixture {
    sim: Sim,
    /// A CONNECTED store on the default cluster.
    store: String,
    /// The default cluster.
    cluster: String,
    /// A DISCONNECTED store on a cluster of its own, with keys made while it was connected.
    offline: OnceLock<Offline>,
}

struct Offline {
    store: String,
    keys: Mutex<Vec<String>>,
}

static SHARED: Mutex<Weak<Fixture>> = Mutex::new(Weak::new());

/// The file's fixture: the running one, or a new one if none is running.
fn fixture() -> Arc<Fixture> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = shared.upgrade() {
        return f;
    }
    let sim = Sim::start();
    let (store, cluster) = block_on(connected_store(&sim, "keys"));
    let f = Arc::new(Fixture {
        sim,
        store,
        cluster,
        offline: OnceLock::new(),
    });
    *shared = Arc::downgrade(&f);
    f
}

impl Fixture {
    fn kms(&self) -> Client {
        self.sim.kms()
    }

    fn arn(&self, id: &str) -> String {
        format!("arn:aws:kms:us-east-1:111122223333:key/{id}")
    }

    /// A new key in the connected store.
    async fn key(&self) -> String {
        cloudhsm_key(&self.sim, &self.store).await
    }

    fn offline(&self) -> &Offline {
        self.offline.get_or_init(|| {
            block_on(async {
                let (store, _) = connected_cluster_store(&self.sim, "keys-offline").await;
                let mut keys = Vec::new();
                for _ in 0..OFFLINE_KEYS {
                    keys.push(cloudhsm_key(&self.sim, &store).await);
                }
                disconnect(&self.sim, &store).await;
                Offline {
                    store,
                    keys: Mutex::new(keys),
                }
            })
        })
    }

    /// A key (Enabled when its store was disconnected) of the disconnected store.
    fn offline_key(&self) -> String {
        let mut keys = self
            .offline()
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        keys.pop()
            .expect("OFFLINE_KEYS is smaller than the number of tests that take a key")
    }

    async fn metadata(&self, id: &str) -> KeyMetadata {
        self.kms()
            .describe_key()
            .key_id(id)
            .send()
            .await
            .expect("describe key")
            .key_metadata()
            .expect("metadata")
            .clone()
    }

    async fn state(&self, id: &str) -> KeyState {
        self.metadata(id).await.key_state().expect("state").clone()
    }
}

/// A new cluster (two HSMs) with a CONNECTED store on it: (store, cluster).
async fn connected_cluster_store(sim: &Sim, name: &str) -> (String, String) {
    let c = new_cluster(sim, 2).await;
    let store = create_store_with(sim, name, &c.id, &c.anchor, &c.kmsuser_password).await;
    connect(sim, &store).await;
    (store, c.id)
}

async fn connect(sim: &Sim, store: &str) {
    ask_connect(sim, store).await;
    wait_state(&sim.kms(), store, "CONNECTED").await;
}

/// The exception and message of a refused request.
fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, E>,
) -> (String, String) {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => (
            e.code().unwrap_or("no code").to_string(),
            e.message().unwrap_or("no message").to_string(),
        ),
    }
}

fn refused(code: &str, message: &str) -> (String, String) {
    (code.to_string(), message.to_string())
}

fn pt(b: &[u8]) -> Blob {
    Blob::new(b.to_vec())
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().expect("tag")
}

// ---- Metadata and material ----

#[test]
fn a_cloudhsm_key_is_created_enabled_in_its_store_and_cluster() {
    let f = fixture();
    block_on(async {
        let created = f
            .kms()
            .create_key()
            .origin(OriginType::AwsCloudhsm)
            .custom_key_store_id(&f.store)
            .send()
            .await
            .unwrap();
        let m = created.key_metadata().unwrap();
        assert_eq!(m.origin(), Some(&OriginType::AwsCloudhsm));
        assert_eq!(m.custom_key_store_id(), Some(f.store.as_str()));
        assert_eq!(m.cloud_hsm_cluster_id(), Some(f.cluster.as_str()));
        assert_eq!(m.key_state(), Some(&KeyState::Enabled));
        assert!(m.enabled());
        assert!(m.deletion_date().is_none());
        assert_eq!(m.arn().unwrap(), f.arn(m.key_id()));
    });
}

#[test]
fn a_cloudhsm_keys_material_is_on_the_clusters_token_labelled_with_its_arn() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        let objs = f
            .sim
            .control()
            .call("GET", &format!("/_sim/clusters/{}/token", f.cluster), None)
            .await
            .unwrap();
        let o = objs["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["key_id"] == id.as_str())
            .expect("the key's object on the token")
            .clone();
        assert_eq!(o["label"], f.arn(&id));
        assert_eq!(o["owner"], "kms-key");
        assert_eq!(o["extractable"], false);
    });
}

// ---- Aliases ----

#[test]
fn describe_key_by_alias_finds_the_aliased_key() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        f.kms()
            .create_alias()
            .alias_name("alias/blue")
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(f.metadata("alias/blue").await.key_id(), id);
    });
}

#[test]
fn list_aliases_of_a_key_shows_its_alias() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        f.kms()
            .create_alias()
            .alias_name("alias/listed")
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
        let aliases = f.kms().list_aliases().key_id(&id).send().await.unwrap();
        let names: Vec<_> = aliases.aliases().iter().map(|a| a.alias_name()).collect();
        assert_eq!(names, [Some("alias/listed")]);
    });
}

#[test]
fn an_alias_name_already_taken_is_refused_with_already_exists() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        let create = || {
            f.kms()
                .create_alias()
                .alias_name("alias/taken")
                .target_key_id(&id)
                .send()
        };
        create().await.unwrap();
        assert_eq!(
            refusal(create().await),
            refused(
                "AlreadyExistsException",
                "An alias with the name arn:aws:kms:us-east-1:111122223333:alias/taken already exists"
            )
        );
    });
}

#[test]
fn an_alias_name_without_the_alias_prefix_is_refused() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        let r = f
            .kms()
            .create_alias()
            .alias_name("blue")
            .target_key_id(&id)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "ValidationException",
                "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
            )
        );
    });
}

// ---- Description, tags, policy ----

#[test]
fn update_key_description_replaces_the_description() {
    let f = fixture();
    block_on(async {
        let id = f
            .kms()
            .create_key()
            .origin(OriginType::AwsCloudhsm)
            .custom_key_store_id(&f.store)
            .description("backed by CloudHSM")
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string();
        assert_eq!(
            f.metadata(&id).await.description(),
            Some("backed by CloudHSM")
        );
        f.kms()
            .update_key_description()
            .key_id(&id)
            .description("new words")
            .send()
            .await
            .unwrap();
        assert_eq!(f.metadata(&id).await.description(), Some("new words"));
    });
}

#[test]
fn untag_removes_the_named_tags_and_ignores_absent_ones() {
    let f = fixture();
    block_on(async {
        let kms = f.kms();
        let id = kms
            .create_key()
            .origin(OriginType::AwsCloudhsm)
            .custom_key_store_id(&f.store)
            .tags(tag("team", "blue"))
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string();
        kms.tag_resource()
            .key_id(&id)
            .tags(tag("env", "test"))
            .send()
            .await
            .unwrap();
        kms.untag_resource()
            .key_id(&id)
            .tag_keys("team")
            .tag_keys("absent")
            .send()
            .await
            .unwrap();
        let tags = kms.list_resource_tags().key_id(&id).send().await.unwrap();
        let tags: Vec<_> = tags
            .tags()
            .iter()
            .map(|t| (t.tag_key(), t.tag_value()))
            .collect();
        assert_eq!(tags, [("env", "test")]);
    });
}

#[test]
fn the_default_key_policy_gives_the_accounts_root_access() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        let pol = f.kms().get_key_policy().key_id(&id).send().await.unwrap();
        assert!(
            pol.policy()
                .unwrap()
                .contains("arn:aws:iam::111122223333:root")
        );
    });
}

#[test]
fn a_key_policy_that_is_not_json_is_refused_as_malformed() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        let r = f
            .kms()
            .put_key_policy()
            .key_id(&id)
            .policy("not json")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "MalformedPolicyDocumentException",
                "The key policy is not a JSON policy document with a Statement."
            )
        );
    });
}

// ---- Enable and disable ----

#[test]
fn a_disabled_key_refuses_encryption_with_disabled_exception() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        f.kms().disable_key().key_id(&id).send().await.unwrap();
        let r = f
            .kms()
            .encrypt()
            .key_id(&id)
            .plaintext(pt(b"x"))
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused("DisabledException", &format!("{} is disabled.", f.arn(&id)))
        );
    });
}

#[test]
fn a_key_enabled_again_encrypts() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        f.kms().disable_key().key_id(&id).send().await.unwrap();
        f.kms().enable_key().key_id(&id).send().await.unwrap();
        assert_eq!(f.state(&id).await, KeyState::Enabled);
        f.kms()
            .encrypt()
            .key_id(&id)
            .plaintext(pt(b"x"))
            .send()
            .await
            .unwrap();
    });
}

// ---- A disconnected store's keys ----

#[test]
fn a_key_of_a_disconnected_store_is_unavailable_and_not_enabled() {
    let f = fixture();
    let id = f.offline_key();
    block_on(async {
        let m = f.metadata(&id).await;
        assert_eq!(m.key_state(), Some(&KeyState::Unavailable));
        assert!(!m.enabled());
    });
}

#[test]
fn a_key_of_a_disconnected_store_refuses_encryption_with_kms_invalid_state() {
    let f = fixture();
    let id = f.offline_key();
    block_on(async {
        let r = f
            .kms()
            .encrypt()
            .key_id(&id)
            .plaintext(pt(b"x"))
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "KMSInvalidStateException",
                &format!("{} is unavailable.", f.arn(&id))
            )
        );
    });
}

#[test]
fn create_key_in_a_disconnected_store_is_refused_with_custom_key_store_invalid_state() {
    let f = fixture();
    let store = f.offline().store.clone();
    block_on(async {
        let r = f
            .kms()
            .create_key()
            .origin(OriginType::AwsCloudhsm)
            .custom_key_store_id(&store)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "CustomKeyStoreInvalidStateException",
                &format!(
                    "Custom key store {store} is DISCONNECTED: connect it before creating KMS keys in it."
                )
            )
        );
    });
}

#[test]
fn disable_key_is_accepted_while_unavailable_and_the_key_stays_unavailable() {
    let f = fixture();
    let id = f.offline_key();
    block_on(async {
        f.kms().disable_key().key_id(&id).send().await.unwrap();
        assert_eq!(f.state(&id).await, KeyState::Unavailable);
    });
}

#[test]
fn disable_key_while_unavailable_takes_effect_on_reconnect() {
    let f = fixture();
    block_on(async {
        let (store, _) = connected_cluster_store(&f.sim, "keys-disable").await;
        let id = cloudhsm_key(&f.sim, &store).await;
        disconnect(&f.sim, &store).await;
        f.kms().disable_key().key_id(&id).send().await.unwrap();
        connect(&f.sim, &store).await;
        assert_eq!(f.state(&id).await, KeyState::Disabled);
    });
}

// ---- Scheduled deletion ----

#[test]
fn schedule_key_deletion_while_disconnected_makes_the_key_pending_deletion_with_a_date() {
    let f = fixture();
    let id = f.offline_key();
    block_on(async {
        f.kms()
            .schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        let m = f.metadata(&id).await;
        assert_eq!(m.key_state(), Some(&KeyState::PendingDeletion));
        assert!(m.deletion_date().is_some());
    });
}

#[test]
fn a_key_pending_deletion_refuses_tag_resource() {
    let f = fixture();
    let id = f.offline_key();
    block_on(async {
        let kms = f.kms();
        kms.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        let r = kms
            .tag_resource()
            .key_id(&id)
            .tags(tag("a", "b"))
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "KMSInvalidStateException",
                &format!("{} is pending deletion.", f.arn(&id))
            )
        );
    });
}

#[test]
fn scheduling_the_deletion_of_a_key_pending_deletion_is_refused() {
    let f = fixture();
    let id = f.offline_key();
    block_on(async {
        let kms = f.kms();
        kms.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        let r = kms.schedule_key_deletion().key_id(&id).send().await;
        assert_eq!(
            refusal(r),
            refused(
                "KMSInvalidStateException",
                &format!("{} is pending deletion.", f.arn(&id))
            )
        );
    });
}

#[test]
fn cancel_key_deletion_while_disconnected_answers_the_key_arn() {
    let f = fixture();
    let id = f.offline_key();
    block_on(async {
        let kms = f.kms();
        kms.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        let c = kms.cancel_key_deletion().key_id(&id).send().await.unwrap();
        assert_eq!(c.key_id(), Some(f.arn(&id).as_str()));
        assert_eq!(f.state(&id).await, KeyState::Unavailable);
    });
}

#[test]
fn cancel_key_deletion_of_a_key_not_pending_deletion_is_refused() {
    let f = fixture();
    let id = f.offline_key();
    block_on(async {
        let kms = f.kms();
        kms.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        kms.cancel_key_deletion().key_id(&id).send().await.unwrap();
        let r = kms.cancel_key_deletion().key_id(&id).send().await;
        assert_eq!(
            refusal(r),
            refused(
                "KMSInvalidStateException",
                &format!("{} is not pending deletion.", f.arn(&id))
            )
        );
    });
}

#[test]
fn a_deletion_cancelled_while_disconnected_leaves_the_key_disabled_after_reconnect() {
    let f = fixture();
    block_on(async {
        let kms = f.kms();
        let (store, _) = connected_cluster_store(&f.sim, "keys-cancel").await;
        let id = cloudhsm_key(&f.sim, &store).await;
        disconnect(&f.sim, &store).await;
        kms.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        kms.cancel_key_deletion().key_id(&id).send().await.unwrap();
        connect(&f.sim, &store).await;
        assert_eq!(f.state(&id).await, KeyState::Disabled);
    });
}

#[test]
fn the_deletion_waiting_period_must_be_7_to_30_days() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        for days in [6, 31] {
            let r = f
                .kms()
                .schedule_key_deletion()
                .key_id(&id)
                .pending_window_in_days(days)
                .send()
                .await;
            assert_eq!(
                refusal(r),
                refused(
                    "ValidationException",
                    "PendingWindowInDays must be between 7 and 30"
                ),
                "{days} days"
            );
        }
        assert_eq!(f.state(&id).await, KeyState::Enabled);
    });
}

// ---- What a CloudHSM key does not support ----

#[test]
fn key_rotation_is_unsupported_for_a_cloudhsm_key() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        let r = f.kms().enable_key_rotation().key_id(&id).send().await;
        assert_eq!(
            refusal(r),
            refused(
                "UnsupportedOperationException",
                &format!(
                    "{} origin is AWS_CLOUDHSM which is not valid for this operation.",
                    f.arn(&id)
                )
            )
        );
    });
}

#[test]
fn data_key_pairs_are_unsupported_for_a_cloudhsm_key() {
    let f = fixture();
    block_on(async {
        let id = f.key().await;
        let r = f
            .kms()
            .generate_data_key_pair()
            .key_id(&id)
            .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::Rsa2048)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "UnsupportedOperationException",
                &format!(
                    "GenerateDataKeyPair is not supported for KMS keys in a custom key store ({}).",
                    f.arn(&id)
                )
            )
        );
    });
}

#[test]
fn an_asymmetric_key_cannot_be_created_in_a_cloudhsm_key_store() {
    let f = fixture();
    block_on(async {
        let r = f
            .kms()
            .create_key()
            .origin(OriginType::AwsCloudhsm)
            .custom_key_store_id(&f.store)
            .key_spec(aws_sdk_kms::types::KeySpec::Rsa2048)
            .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "UnsupportedOperationException",
                "KMS keys in an AWS CloudHSM key store must be symmetric encryption keys (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)."
            )
        );
    });
}

// ---- Naming a key that is not there ----

#[test]
fn describe_key_of_an_unknown_key_id_is_not_found() {
    let f = fixture();
    block_on(async {
        let id = "00000000-0000-0000-0000-000000000000";
        let r = f.kms().describe_key().key_id(id).send().await;
        assert_eq!(
            refusal(r),
            refused(
                "NotFoundException",
                &format!("Key '{}' does not exist", f.arn(id))
            )
        );
    });
}

#[test]
fn describe_key_of_a_malformed_arn_is_refused_as_invalid_arn() {
    let f = fixture();
    block_on(async {
        let r = f
            .kms()
            .describe_key()
            .key_id("arn:aws:kms:nonsense")
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "InvalidArnException",
                "The ARN 'arn:aws:kms:nonsense' is not a valid AWS KMS key or alias ARN."
            )
        );
    });
}

//! Cryptography with KMS keys, one behaviour per test: ciphertexts bound to their key and
//! encryption context (for a key in a CloudHSM key store and an AWS_KMS key alike), data
//! keys, random bytes, dry runs, the token's key index, and a cluster whose HSMs are down.
//! Every refusal is checked for its exception and its exact message.
//!
//! One server for the file (kept while any of its tests runs) with a CONNECTED store on the
//! default cluster; the tests that count a token's objects or put its HSMs down make a
//! cluster of their own.

use crate::common::*;
use crate::key_stores::new_cluster;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use serde_json::json;
use std::sync::{Arc, Mutex, Weak};

struct Fixture {
    sim: Sim,
    /// A CONNECTED store on the default cluster.
    store: String,
}

static SHARED: Mutex<Weak<Fixture>> = Mutex::new(Weak::new());

/// The file's fixture: the running one, or a new one if none is running.
fn fixture() -> Arc<Fixture> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = shared.upgrade() {
        return f;
    }
    let sim = Sim::start();
    let (store, _) = block_on(connected_store(&sim, "crypto"));
    let f = Arc::new(Fixture { sim, store });
    *shared = Arc::downgrade(&f);
    f
}

impl Fixture {
    fn kms(&self) -> Client {
        self.sim.kms()
    }

    /// A new key in the connected store.
    async fn cloudhsm_key(&self) -> String {
        cloudhsm_key(&self.sim, &self.store).await
    }

    /// A key of each origin: in the CloudHSM key store, and AWS_KMS.
    async fn keys_of_each_origin(&self) -> [String; 2] {
        [self.cloudhsm_key().await, aws_kms_key(&self.sim).await]
    }

    /// `plain` encrypted under `key` with the context purpose=test.
    async fn encrypt(&self, key: &str, plain: &[u8]) -> Blob {
        self.kms()
            .encrypt()
            .key_id(key)
            .plaintext(Blob::new(plain))
            .encryption_context("purpose", "test")
            .send()
            .await
            .expect("encrypt")
            .ciphertext_blob()
            .expect("ciphertext")
            .clone()
    }
}

async fn aws_kms_key(sim: &Sim) -> String {
    sim.kms()
        .create_key()
        .send()
        .await
        .expect("create key")
        .key_metadata()
        .expect("metadata")
        .key_id()
        .to_string()
}

/// The exception and message (if any) of a refused request.
fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, E>,
) -> (String, Option<String>) {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => (
            e.code().unwrap_or("no code").to_string(),
            e.message().map(str::to_string),
        ),
    }
}

fn refused(code: &str, message: Option<&str>) -> (String, Option<String>) {
    (code.to_string(), message.map(str::to_string))
}

/// AWS answers InvalidCiphertextException without a message.
fn invalid_ciphertext() -> (String, Option<String>) {
    refused("InvalidCiphertextException", None)
}

/// A new cluster (two HSMs) with a CONNECTED store: (store, cluster).
async fn own_cluster_store(sim: &Sim, name: &str) -> (String, String) {
    let c = new_cluster(sim, 2).await;
    let store = create_store_with(sim, name, &c.id, &c.anchor, &c.kmsuser_password).await;
    sim.kms()
        .connect_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await
        .expect("connect");
    wait_state(&sim.kms(), &store, "CONNECTED").await;
    (store, c.id)
}

// ---- Ciphertexts are bound to their key and context ----

#[test]
fn decrypt_with_the_same_context_gives_the_plaintext_and_names_the_key() {
    let f = fixture();
    block_on(async {
        for key in f.keys_of_each_origin().await {
            let blob = f.encrypt(&key, b"secret").await;
            let dec = f
                .kms()
                .decrypt()
                .ciphertext_blob(blob)
                .encryption_context("purpose", "test")
                .send()
                .await
                .unwrap();
            assert_eq!(dec.plaintext().unwrap().as_ref(), b"secret");
            assert!(dec.key_id().unwrap().ends_with(key.as_str()));
        }
    });
}

#[test]
fn decrypt_without_the_encryption_context_is_invalid_ciphertext() {
    let f = fixture();
    block_on(async {
        for key in f.keys_of_each_origin().await {
            let blob = f.encrypt(&key, b"secret").await;
            let r = f.kms().decrypt().ciphertext_blob(blob).send().await;
            assert_eq!(refusal(r), invalid_ciphertext(), "{key}");
        }
    });
}

#[test]
fn decrypt_with_another_encryption_context_is_invalid_ciphertext() {
    let f = fixture();
    block_on(async {
        for key in f.keys_of_each_origin().await {
            let blob = f.encrypt(&key, b"secret").await;
            let r = f
                .kms()
                .decrypt()
                .ciphertext_blob(blob)
                .encryption_context("purpose", "other")
                .send()
                .await;
            assert_eq!(refusal(r), invalid_ciphertext(), "{key}");
        }
    });
}

#[test]
fn decrypt_naming_another_key_is_incorrect_key() {
    let f = fixture();
    block_on(async {
        let other = f.cloudhsm_key().await;
        for key in f.keys_of_each_origin().await {
            let blob = f.encrypt(&key, b"secret").await;
            let r = f
                .kms()
                .decrypt()
                .ciphertext_blob(blob)
                .key_id(&other)
                .encryption_context("purpose", "test")
                .send()
                .await;
            assert_eq!(
                refusal(r),
                refused(
                    "IncorrectKeyException",
                    Some(
                        "The key ID in the request does not identify a CMK that can perform this operation."
                    )
                ),
                "{key}"
            );
        }
    });
}

#[test]
fn a_tampered_ciphertext_is_invalid_ciphertext() {
    let f = fixture();
    block_on(async {
        for key in f.keys_of_each_origin().await {
            let mut tampered = f.encrypt(&key, b"secret").await.into_inner();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            let r = f
                .kms()
                .decrypt()
                .ciphertext_blob(Blob::new(tampered))
                .encryption_context("purpose", "test")
                .send()
                .await;
            assert_eq!(refusal(r), invalid_ciphertext(), "{key}");
        }
    });
}

#[test]
fn re_encrypt_to_another_key_gives_a_ciphertext_of_that_key() {
    let f = fixture();
    block_on(async {
        let other = f.cloudhsm_key().await;
        for key in f.keys_of_each_origin().await {
            let blob = f.encrypt(&key, b"secret").await;
            let re = f
                .kms()
                .re_encrypt()
                .ciphertext_blob(blob)
                .source_encryption_context("purpose", "test")
                .destination_key_id(&other)
                .send()
                .await
                .unwrap();
            let back = f
                .kms()
                .decrypt()
                .ciphertext_blob(re.ciphertext_blob().unwrap().clone())
                .send()
                .await
                .unwrap();
            assert_eq!(back.plaintext().unwrap().as_ref(), b"secret");
            assert!(back.key_id().unwrap().ends_with(other.as_str()));
        }
    });
}

// ---- Data keys, random bytes, limits, dry runs ----

#[test]
fn a_data_key_comes_with_a_ciphertext_that_decrypts_to_it() {
    let f = fixture();
    block_on(async {
        let a = f.cloudhsm_key().await;
        let dk = f
            .kms()
            .generate_data_key()
            .key_id(&a)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .send()
            .await
            .unwrap();
        assert_eq!(dk.plaintext().unwrap().as_ref().len(), 32);
        let again = f
            .kms()
            .decrypt()
            .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            again.plaintext().unwrap().as_ref(),
            dk.plaintext().unwrap().as_ref()
        );
    });
}

#[test]
fn a_data_key_without_plaintext_comes_as_a_ciphertext_only() {
    let f = fixture();
    block_on(async {
        let a = f.cloudhsm_key().await;
        let nopt = f
            .kms()
            .generate_data_key_without_plaintext()
            .key_id(&a)
            .number_of_bytes(16)
            .send()
            .await
            .unwrap();
        assert!(nopt.ciphertext_blob().is_some());
    });
}

#[test]
fn a_data_key_needs_a_key_spec_or_a_number_of_bytes() {
    let f = fixture();
    block_on(async {
        let a = f.cloudhsm_key().await;
        let r = f.kms().generate_data_key().key_id(&a).send().await;
        assert_eq!(
            refusal(r),
            refused(
                "ValidationException",
                Some("Specify either NumberOfBytes or KeySpec.")
            )
        );
    });
}

#[test]
fn a_plaintext_over_4096_bytes_is_refused() {
    let f = fixture();
    block_on(async {
        let a = f.cloudhsm_key().await;
        let r = f
            .kms()
            .encrypt()
            .key_id(&a)
            .plaintext(Blob::new(vec![0u8; 4097]))
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "ValidationException",
                Some(
                    "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
                )
            )
        );
    });
}

#[test]
fn generate_random_for_a_key_store_gives_the_bytes_asked_for() {
    let f = fixture();
    block_on(async {
        let r = f
            .kms()
            .generate_random()
            .number_of_bytes(64)
            .custom_key_store_id(&f.store)
            .send()
            .await
            .unwrap();
        assert_eq!(r.plaintext().unwrap().as_ref().len(), 64);
    });
}

#[test]
fn a_dry_run_encrypt_answers_dry_run_operation() {
    let f = fixture();
    block_on(async {
        let a = f.cloudhsm_key().await;
        let r = f
            .kms()
            .encrypt()
            .key_id(&a)
            .plaintext(Blob::new(b"x"))
            .dry_run(true)
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "DryRunOperationException",
                Some("The request would have succeeded, but the DryRun option is set.")
            )
        );
    });
}

// ---- The token, and a cluster whose HSMs are down (own clusters) ----

#[test]
fn the_token_indexes_the_keys_used_and_keeps_one_session_copy_of_each() {
    let f = fixture();
    block_on(async {
        let (store, cluster) = own_cluster_store(&f.sim, "crypto-stats").await;
        for _ in 0..2 {
            let key = cloudhsm_key(&f.sim, &store).await;
            f.encrypt(&key, b"secret").await;
        }
        // D7's session copies: one per key used for cryptography (none on a module without
        // C_CopyObject).
        let stats = f
            .sim
            .control()
            .call(
                "GET",
                &format!("/_sim/clusters/{cluster}/token/stats"),
                None,
            )
            .await
            .unwrap();
        assert!(stats["indexed_keys"].as_u64().unwrap() >= 2, "{stats}");
        let copies = stats["session_copies"].as_u64().unwrap();
        assert!(copies == 2 || copies == 0, "{stats}");
    });
}

/// Put every HSM of `cluster` down.
async fn hsms_down(sim: &Sim, cluster: &str) {
    let info = sim
        .control()
        .call("GET", &format!("/_sim/clusters/{cluster}"), None)
        .await
        .unwrap();
    for h in info["hsms"].as_array().unwrap() {
        sim.control()
            .call(
                "POST",
                &format!("/_sim/clusters/{cluster}/faults"),
                Some(json!({"fault": "hsm-down", "target": h["hsm_id"]})),
            )
            .await
            .unwrap();
    }
}

#[test]
fn a_connected_store_whose_hsms_are_down_refuses_crypto_and_stays_connected() {
    let f = fixture();
    block_on(async {
        let (store, cluster) = own_cluster_store(&f.sim, "crypto-down").await;
        let a = cloudhsm_key(&f.sim, &store).await;
        hsms_down(&f.sim, &cluster).await;
        let r = f
            .kms()
            .encrypt()
            .key_id(&a)
            .plaintext(Blob::new(b"x"))
            .send()
            .await;
        assert_eq!(
            refusal(r),
            refused(
                "KMSInvalidStateException",
                Some(&format!(
                    "KMS cannot communicate with your CloudHSM cluster {cluster}."
                ))
            )
        );
        wait_state(&f.kms(), &store, "CONNECTED").await;
    });
}

#[test]
fn an_aws_kms_key_works_while_a_clusters_hsms_are_down() {
    let f = fixture();
    block_on(async {
        let (_, cluster) = own_cluster_store(&f.sim, "crypto-down-kms").await;
        let plain = aws_kms_key(&f.sim).await;
        hsms_down(&f.sim, &cluster).await;
        f.kms()
            .encrypt()
            .key_id(&plain)
            .plaintext(Blob::new(b"x"))
            .send()
            .await
            .unwrap();
    });
}

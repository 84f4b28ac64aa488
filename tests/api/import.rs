//! Imported key material (`Origin` `EXTERNAL`): the material is made and wrapped by the
//! `openssl` command line exactly as AWS's import instructions do, imported through
//! `aws-sdk-kms`, then used. One server for the file; the tests that move the simulated clock
//! start their own (the clock is the server's, and would expire the others' import tokens).

use crate::common::*;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, ImportType, IncludeKeyMaterial, KeyMaterialState, KeyState,
    OriginType, WrappingKeySpec,
};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

static SHARED: Mutex<Weak<Sim>> = Mutex::new(Weak::new());

fn sim() -> Arc<Sim> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = shared.upgrade() {
        return s;
    }
    let s = Arc::new(Sim::start());
    *shared = Arc::downgrade(&s);
    s
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// 32 random bytes from `openssl rand`, as AWS's instructions make key material.
fn new_material(dir: &Path, name: &str) -> Vec<u8> {
    let f = dir.join(name);
    openssl(&["rand", "-out", p(&f), "32"]);
    std::fs::read(&f).unwrap()
}

/// `openssl pkeyutl -encrypt` with RSAES-OAEP (`md` for the digest and MGF1) under the DER
/// public key from GetParametersForImport.
fn oaep_wrap(dir: &Path, public_der: &[u8], plain: &[u8], md: &str) -> Vec<u8> {
    let (key, input, out) = (dir.join("pub.der"), dir.join("in.bin"), dir.join("out.bin"));
    std::fs::write(&key, public_der).unwrap();
    std::fs::write(&input, plain).unwrap();
    let oaep_md = format!("rsa_oaep_md:{md}");
    let mgf1_md = format!("rsa_mgf1_md:{md}");
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-in",
        p(&input),
        "-out",
        p(&out),
        "-inkey",
        p(&key),
        "-keyform",
        "DER",
        "-pubin",
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        &oaep_md,
        "-pkeyopt",
        &mgf1_md,
    ]);
    std::fs::read(&out).unwrap()
}

/// The `RSA_AES_KEY_WRAP_*` two-step: an ephemeral AES-256 key from `openssl rand`, the
/// material wrapped with it by `openssl enc -id-aes256-wrap-pad`, the AES key wrapped with
/// RSAES-OAEP; the two concatenated.
fn aes_kwp_wrap(dir: &Path, public_der: &[u8], plain: &[u8], md: &str) -> Vec<u8> {
    let aes = new_material(dir, "aes-key.bin");
    let hex: String = aes.iter().map(|b| format!("{b:02x}")).collect();
    let (input, out) = (dir.join("material.bin"), dir.join("kwp.bin"));
    std::fs::write(&input, plain).unwrap();
    openssl(&[
        "enc",
        "-id-aes256-wrap-pad",
        "-K",
        &hex,
        "-iv",
        "A65959A6",
        "-in",
        p(&input),
        "-out",
        p(&out),
    ]);
    let mut wrapped = oaep_wrap(dir, public_der, &aes, md);
    wrapped.extend(std::fs::read(&out).unwrap());
    wrapped
}

async fn external_key(kms: &Client) -> String {
    kms.create_key()
        .origin(OriginType::External)
        .send()
        .await
        .expect("CreateKey EXTERNAL")
        .key_metadata
        .expect("metadata")
        .key_id
}

/// GetParametersForImport: (public key DER, import token).
async fn parameters(
    kms: &Client,
    key: &str,
    alg: AlgorithmSpec,
    spec: WrappingKeySpec,
) -> (Vec<u8>, Vec<u8>) {
    let out = kms
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(alg)
        .wrapping_key_spec(spec)
        .send()
        .await
        .expect("GetParametersForImport");
    (
        out.public_key.expect("PublicKey").into_inner(),
        out.import_token.expect("ImportToken").into_inner(),
    )
}

/// Wrap `material` for `key` with RSAES_OAEP_SHA_256 / RSA_2048 and import it (no expiry).
async fn import_oaep256(
    kms: &Client,
    dir: &Path,
    key: &str,
    material: &[u8],
) -> Result<String, String> {
    let (public, token) = parameters(
        kms,
        key,
        AlgorithmSpec::RsaesOaepSha256,
        WrappingKeySpec::Rsa2048,
    )
    .await;
    let wrapped = oaep_wrap(dir, &public, material, "sha256");
    kms.import_key_material()
        .key_id(key)
        .import_token(Blob::new(token))
        .encrypted_key_material(Blob::new(wrapped))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .map(|o| o.key_material_id.expect("KeyMaterialId"))
        .map_err(|e| code(Err::<(), _>(e)))
}

async fn state(kms: &Client, key: &str) -> KeyState {
    kms.describe_key()
        .key_id(key)
        .send()
        .await
        .expect("DescribeKey")
        .key_metadata
        .expect("metadata")
        .key_state
        .expect("KeyState")
}

async fn encrypt(kms: &Client, key: &str, plain: &[u8]) -> Vec<u8> {
    kms.encrypt()
        .key_id(key)
        .plaintext(Blob::new(plain))
        .send()
        .await
        .expect("Encrypt")
        .ciphertext_blob
        .expect("CiphertextBlob")
        .into_inner()
}

/// Decrypt: (plaintext, KeyMaterialId).
async fn decrypt(kms: &Client, blob: &[u8]) -> (Vec<u8>, String) {
    let out = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob))
        .send()
        .await
        .expect("Decrypt");
    (
        out.plaintext.expect("Plaintext").into_inner(),
        out.key_material_id.expect("KeyMaterialId"),
    )
}

#[test]
fn an_external_key_is_pending_import_and_unusable_until_material_is_imported() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
        let md = kms.describe_key().key_id(&key).send().await.unwrap();
        assert_eq!(md.key_metadata.unwrap().origin, Some(OriginType::External));
        let e = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new("x"))
            .send()
            .await;
        assert_eq!(code(e), "KMSInvalidStateException");
        assert_eq!(
            code(kms.enable_key().key_id(&key).send().await),
            "KMSInvalidStateException"
        );
    });
}

#[test]
fn material_wrapped_by_openssl_with_oaep_sha256_imports_and_encrypts() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let material = new_material(dir.path(), "material.bin");
        let id = import_oaep256(&kms, dir.path(), &key, &material)
            .await
            .expect("import");
        assert_eq!(id.len(), 64);
        let md = kms
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        assert_eq!(md.key_state, Some(KeyState::Enabled));
        assert_eq!(md.current_key_material_id.as_deref(), Some(id.as_str()));
        assert_eq!(
            md.expiration_model,
            Some(ExpirationModelType::KeyMaterialDoesNotExpire)
        );
        let blob = encrypt(&kms, &key, b"sealed with imported material").await;
        let (plain, used) = decrypt(&kms, &blob).await;
        assert_eq!(plain, b"sealed with imported material");
        assert_eq!(used, id);
    });
}

#[test]
fn material_wrapped_with_oaep_sha1_under_rsa_3072_imports() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let (public, token) = parameters(
            &kms,
            &key,
            AlgorithmSpec::RsaesOaepSha1,
            WrappingKeySpec::Rsa3072,
        )
        .await;
        let material = new_material(dir.path(), "material.bin");
        let wrapped = oaep_wrap(dir.path(), &public, &material, "sha1");
        kms.import_key_material()
            .key_id(&key)
            .import_token(Blob::new(token))
            .encrypted_key_material(Blob::new(wrapped))
            .send()
            .await
            .expect("ImportKeyMaterial");
        let blob = encrypt(&kms, &key, b"sha1").await;
        assert_eq!(decrypt(&kms, &blob).await.0, b"sha1");
    });
}

#[test]
fn material_wrapped_by_the_rsa_aes_key_wrap_two_step_imports_with_sha256_and_sha1() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        for (alg, md) in [
            (AlgorithmSpec::RsaAesKeyWrapSha256, "sha256"),
            (AlgorithmSpec::RsaAesKeyWrapSha1, "sha1"),
        ] {
            let key = external_key(&kms).await;
            let (public, token) = parameters(&kms, &key, alg, WrappingKeySpec::Rsa4096).await;
            let material = new_material(dir.path(), "material.bin");
            let wrapped = aes_kwp_wrap(dir.path(), &public, &material, md);
            kms.import_key_material()
                .key_id(&key)
                .import_token(Blob::new(token))
                .encrypted_key_material(Blob::new(wrapped))
                .send()
                .await
                .unwrap_or_else(|e| panic!("ImportKeyMaterial {md}: {e:?}"));
            let blob = encrypt(&kms, &key, md.as_bytes()).await;
            assert_eq!(decrypt(&kms, &blob).await.0, md.as_bytes());
        }
    });
}

#[test]
fn deleting_material_makes_the_key_pending_import_and_reimporting_it_brings_old_ciphertexts_back() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let material = new_material(dir.path(), "material.bin");
        let first = import_oaep256(&kms, dir.path(), &key, &material)
            .await
            .unwrap();
        let blob = encrypt(&kms, &key, b"before the deletion").await;
        let deleted = kms
            .delete_imported_key_material()
            .key_id(&key)
            .send()
            .await
            .expect("DeleteImportedKeyMaterial");
        assert_eq!(deleted.key_material_id.as_deref(), Some(first.as_str()));
        assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
        let refused = kms
            .decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .send()
            .await;
        assert_eq!(code(refused), "KMSInvalidStateException");
        let again = import_oaep256(&kms, dir.path(), &key, &material)
            .await
            .unwrap();
        assert_eq!(again, first, "the same material keeps its KeyMaterialId");
        assert_eq!(state(&kms, &key).await, KeyState::Enabled);
        assert_eq!(decrypt(&kms, &blob).await.0, b"before the deletion");
    });
}

#[test]
fn reimporting_different_material_is_refused_with_incorrect_key_material() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let material = new_material(dir.path(), "material.bin");
        import_oaep256(&kms, dir.path(), &key, &material)
            .await
            .unwrap();
        kms.delete_imported_key_material()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        let other = new_material(dir.path(), "other.bin");
        let e = import_oaep256(&kms, dir.path(), &key, &other).await;
        assert_eq!(e.unwrap_err(), "IncorrectKeyMaterialException");
        assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
    });
}

#[test]
fn deleting_material_that_is_not_there_is_refused() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let e = kms.delete_imported_key_material().key_id(&key).send().await;
        assert_eq!(code(e), "KMSInvalidStateException");
    });
}

#[test]
fn garbled_wrapped_material_is_an_invalid_ciphertext() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        for (alg, md) in [
            (AlgorithmSpec::RsaesOaepSha256, "sha256"),
            (AlgorithmSpec::RsaesOaepSha1, "sha1"),
        ] {
            let (public, token) = parameters(&kms, &key, alg, WrappingKeySpec::Rsa2048).await;
            let material = new_material(dir.path(), "material.bin");
            let mut wrapped = oaep_wrap(dir.path(), &public, &material, md);
            wrapped[10] ^= 0x40;
            let e = kms
                .import_key_material()
                .key_id(&key)
                .import_token(Blob::new(token))
                .encrypted_key_material(Blob::new(wrapped))
                .send()
                .await;
            assert_eq!(code(e), "InvalidCiphertextException", "{md}");
        }
        assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
    });
}

#[test]
fn material_of_the_wrong_length_is_an_invalid_ciphertext() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let (public, token) = parameters(
            &kms,
            &key,
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .await;
        let wrapped = oaep_wrap(dir.path(), &public, &[7u8; 16], "sha256");
        let e = kms
            .import_key_material()
            .key_id(&key)
            .import_token(Blob::new(token))
            .encrypted_key_material(Blob::new(wrapped))
            .send()
            .await;
        assert_eq!(code(e), "InvalidCiphertextException");
    });
}

#[test]
fn an_import_token_of_another_key_is_invalid() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let (a, b) = (external_key(&kms).await, external_key(&kms).await);
        let (public, token) = parameters(
            &kms,
            &a,
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .await;
        parameters(
            &kms,
            &b,
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .await;
        let material = new_material(dir.path(), "material.bin");
        let wrapped = oaep_wrap(dir.path(), &public, &material, "sha256");
        let e = kms
            .import_key_material()
            .key_id(&b)
            .import_token(Blob::new(token))
            .encrypted_key_material(Blob::new(wrapped))
            .send()
            .await;
        assert_eq!(code(e), "InvalidImportTokenException");
    });
}

#[test]
fn import_operations_on_a_key_that_is_not_external_are_unsupported() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = kms
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id;
        let e = kms
            .get_parameters_for_import()
            .key_id(&key)
            .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
            .wrapping_key_spec(WrappingKeySpec::Rsa2048)
            .send()
            .await
            .expect_err("refused");
        use aws_sdk_kms::error::ProvideErrorMetadata;
        assert_eq!(e.code(), Some("UnsupportedOperationException"));
        assert!(
            e.message()
                .unwrap_or_default()
                .ends_with("origin is AWS_KMS which is not valid for this operation."),
            "{e:?}"
        );
        let e = kms.delete_imported_key_material().key_id(&key).send().await;
        assert_eq!(code(e), "UnsupportedOperationException");
    });
}

#[test]
fn an_external_key_in_a_cloudhsm_key_store_is_refused() {
    let sim = sim();
    block_on(async {
        let (store, _) = connected_store(&sim, "import-store").await;
        let e = sim
            .kms()
            .create_key()
            .origin(OriginType::External)
            .custom_key_store_id(store)
            .send()
            .await;
        assert_eq!(code(e), "UnsupportedOperationException");
    });
}

#[test]
fn expiration_model_and_valid_to_must_agree() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let (public, token) = parameters(
            &kms,
            &key,
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .await;
        let material = new_material(dir.path(), "material.bin");
        let wrapped = oaep_wrap(dir.path(), &public, &material, "sha256");
        let base = || {
            kms.import_key_material()
                .key_id(&key)
                .import_token(Blob::new(token.clone()))
                .encrypted_key_material(Blob::new(wrapped.clone()))
        };
        let expires = base().expiration_model(ExpirationModelType::KeyMaterialExpires);
        assert_eq!(code(expires.send().await), "ValidationException");
        let future = DateTime::from_secs(now(&sim).await as i64 + 86_400);
        let never = base()
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .valid_to(future);
        assert_eq!(code(never.send().await), "ValidationException");
        let past = base().valid_to(DateTime::from_secs(now(&sim).await as i64 - 60));
        assert_eq!(code(past.send().await), "ValidationException");
        let too_far = base().valid_to(DateTime::from_secs(now(&sim).await as i64 + 400 * 86_400));
        assert_eq!(code(too_far.send().await), "ValidationException");
        assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
    });
}

/// The simulated clock's now, in seconds since the epoch.
async fn now(sim: &Sim) -> f64 {
    let v = sim
        .control()
        .call("GET", "/_sim/clock", None)
        .await
        .expect("GET /_sim/clock");
    v["now"].as_f64().expect("now")
}

async fn advance(sim: &Sim, body: serde_json::Value) {
    sim.control()
        .call("POST", "/_sim/clock/advance", Some(body))
        .await
        .expect("advance the clock");
}

#[test]
fn new_key_material_waits_for_an_on_demand_rotation_then_seals_while_old_ciphertexts_still_open() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let first_material = new_material(dir.path(), "first.bin");
        let first = import_oaep256(&kms, dir.path(), &key, &first_material)
            .await
            .unwrap();
        let old = encrypt(&kms, &key, b"old").await;
        let (public, token) = parameters(
            &kms,
            &key,
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .await;
        let second_material = new_material(dir.path(), "second.bin");
        let wrapped = oaep_wrap(dir.path(), &public, &second_material, "sha256");
        let second = kms
            .import_key_material()
            .key_id(&key)
            .import_token(Blob::new(token))
            .encrypted_key_material(Blob::new(wrapped))
            .import_type(ImportType::NewKeyMaterial)
            .send()
            .await
            .expect("import NEW_KEY_MATERIAL")
            .key_material_id
            .unwrap();
        assert_ne!(second, first);
        let all = kms
            .list_key_rotations()
            .key_id(&key)
            .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
            .send()
            .await
            .unwrap()
            .rotations
            .unwrap();
        let states: Vec<_> = all.iter().map(|r| r.key_material_state.clone()).collect();
        assert_eq!(
            states,
            vec![
                Some(KeyMaterialState::Current),
                Some(KeyMaterialState::PendingRotation)
            ]
        );
        kms.rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .expect("rotate");
        let md = kms.describe_key().key_id(&key).send().await.unwrap();
        assert_eq!(
            md.key_metadata.unwrap().current_key_material_id,
            Some(second.clone())
        );
        let new = encrypt(&kms, &key, b"new").await;
        assert_eq!(decrypt(&kms, &new).await, (b"new".to_vec(), second));
        assert_eq!(decrypt(&kms, &old).await, (b"old".to_vec(), first));
    });
}

#[test]
fn automatic_rotation_of_an_imported_key_is_unsupported() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let e = kms.enable_key_rotation().key_id(&key).send().await;
        assert_eq!(code(e), "UnsupportedOperationException");
    });
}

#[test]
fn expired_material_returns_the_key_to_pending_import_and_leaves_the_token() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let (public, token) = parameters(
            &kms,
            &key,
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .await;
        let material = new_material(dir.path(), "material.bin");
        let wrapped = oaep_wrap(dir.path(), &public, &material, "sha256");
        let valid_to = now(&sim).await as i64 + 2 * 86_400;
        kms.import_key_material()
            .key_id(&key)
            .import_token(Blob::new(token))
            .encrypted_key_material(Blob::new(wrapped))
            .expiration_model(ExpirationModelType::KeyMaterialExpires)
            .valid_to(DateTime::from_secs(valid_to))
            .send()
            .await
            .expect("import with expiry");
        let md = kms
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        assert_eq!(md.valid_to, Some(DateTime::from_secs(valid_to)));
        assert_eq!(md.key_state, Some(KeyState::Enabled));
        let arn = md.arn.unwrap();
        let pin = sim.read("internal-token-pin");
        let labelled = |objects: Vec<serde_json::Value>| {
            objects
                .iter()
                .filter(|o| o["label"] == arn.as_str())
                .count()
        };
        assert_eq!(labelled(sim.inspect_token("kms-internal", pin.trim())), 1);
        advance(&sim, serde_json::json!({"days": 3})).await;
        assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
        assert_eq!(
            labelled(sim.inspect_token("kms-internal", pin.trim())),
            0,
            "expired material is destroyed on the token"
        );
    });
}

#[test]
fn an_import_token_older_than_24_hours_is_expired() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    block_on(async {
        let kms = sim.kms();
        let key = external_key(&kms).await;
        let (public, token) = parameters(
            &kms,
            &key,
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
        )
        .await;
        advance(&sim, serde_json::json!({"hours": 25})).await;
        let material = new_material(dir.path(), "material.bin");
        let wrapped = oaep_wrap(dir.path(), &public, &material, "sha256");
        let e = kms
            .import_key_material()
            .key_id(&key)
            .import_token(Blob::new(token))
            .encrypted_key_material(Blob::new(wrapped))
            .send()
            .await;
        assert_eq!(code(e), "ExpiredImportTokenException");
    });
}

#[test]
fn a_crash_between_unwrapping_material_and_committing_leaves_an_orphan_and_the_key_pending_import()
{
    let mut sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let material = new_material(dir.path(), "crash");
    let key = block_on(external_key(&sim.kms()));
    block_on(sim.control().call(
        "POST",
        "/_sim/failpoints",
        Some(serde_json::json!({"name": "import.material_made"})),
    ))
    .expect("arm the failpoint");
    let _ = block_on(import_oaep256(&sim.kms(), dir.path(), &key, &material));
    assert!(!sim.wait_exit(60).success(), "the process stopped there");
    sim.respawn();
    let h = block_on(sim.control().call("GET", "/_sim/health", None)).expect("health");
    assert_eq!(h["reconciliation"]["orphans_found"], 1, "{h}");
    block_on(async {
        let kms = sim.kms();
        assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
        import_oaep256(&kms, dir.path(), &key, &material)
            .await
            .expect("the same material imports after the restart");
        assert_eq!(state(&kms, &key).await, KeyState::Enabled);
    });
}

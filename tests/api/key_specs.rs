//! RSA, ECC and HMAC KMS keys on the token, checked independently with the `openssl` command
//! line: KMS signatures verify with the public key from GetPublicKey, OpenSSL's OAEP
//! ciphertexts decrypt through KMS, ECDH through KMS equals `openssl pkeyutl -derive`, and data
//! key pairs hold together. One server for the file (kept while any of its tests runs).

use crate::common::*;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec, KeyState,
    KeyUsageType, MacAlgorithmSpec, MessageType, SigningAlgorithmSpec,
};
use serde_json::json;
use std::path::{Path, PathBuf};
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

/// The (KeySpec, KeyUsage) pairs the simulator's token serves, as it says.
async fn offered(sim: &Sim) -> Vec<(String, String)> {
    let v = sim
        .control()
        .call("GET", "/_sim/key-specs", None)
        .await
        .expect("GET /_sim/key-specs");
    v["key_specs"]
        .as_array()
        .expect("key_specs")
        .iter()
        .map(|k| {
            (
                k["KeySpec"].as_str().unwrap_or_default().to_string(),
                k["KeyUsage"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A new key of `spec` and `usage` if the token serves that kind; otherwise CreateKey must
/// refuse it with UnsupportedOperationException naming the spec, and this gives None.
async fn key_if_offered(sim: &Sim, spec: KeySpec, usage: KeyUsageType) -> Option<String> {
    let kind = (spec.as_str().to_string(), usage.as_str().to_string());
    if offered(sim).await.contains(&kind) {
        return Some(create(&sim.kms(), spec, usage).await);
    }
    let refused = sim
        .kms()
        .create_key()
        .key_spec(spec.clone())
        .key_usage(usage)
        .send()
        .await
        .expect_err("a kind the token does not offer is refused");
    use aws_sdk_kms::error::ProvideErrorMetadata;
    assert_eq!(refused.code(), Some("UnsupportedOperationException"));
    assert!(
        refused
            .message()
            .unwrap_or_default()
            .contains(spec.as_str()),
        "{refused:?}"
    );
    eprintln!("{spec:?} is not offered by this token: refused as expected");
    None
}

async fn create(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    kms.create_key()
        .key_spec(spec.clone())
        .key_usage(usage.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {spec:?} {usage:?}: {e:?}"))
        .key_metadata()
        .expect("metadata")
        .key_id()
        .to_string()
}

/// Run `openssl` with `args`; panics with its stderr if it fails.
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

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// GetPublicKey's key, written as PEM to `dir/name.pem`.
async fn public_pem(kms: &Client, id: &str, dir: &Path, name: &str) -> PathBuf {
    let der = kms
        .get_public_key()
        .key_id(id)
        .send()
        .await
        .expect("GetPublicKey")
        .public_key()
        .expect("PublicKey")
        .as_ref()
        .to_vec();
    let der_path = dir.join(format!("{name}.der"));
    std::fs::write(&der_path, der).unwrap();
    let pem = dir.join(format!("{name}.pem"));
    openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        path(&der_path),
        "-out",
        path(&pem),
    ]);
    pem
}

async fn sign(
    kms: &Client,
    id: &str,
    alg: SigningAlgorithmSpec,
    message: &[u8],
    kind: MessageType,
) -> Vec<u8> {
    kms.sign()
        .key_id(id)
        .signing_algorithm(alg.clone())
        .message_type(kind)
        .message(Blob::new(message))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Sign {alg:?}: {e:?}"))
        .signature()
        .expect("Signature")
        .as_ref()
        .to_vec()
}

/// Verify `sig` over `message` with openssl; `pss` adds PSS options (salt = digest length).
fn openssl_verifies(dir: &Path, pem: &Path, digest: &str, pss: bool, message: &[u8], sig: &[u8]) {
    let (m, s) = (dir.join("message"), dir.join("signature"));
    std::fs::write(&m, message).unwrap();
    std::fs::write(&s, sig).unwrap();
    let mut args = vec!["dgst", digest, "-verify", path(pem), "-signature", path(&s)];
    if pss {
        args.extend([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ]);
    }
    args.push(path(&m));
    let out = openssl(&args);
    assert!(
        String::from_utf8_lossy(&out).contains("Verified OK"),
        "openssl: {}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn every_spec_is_created_on_the_token_and_described_with_its_algorithms() {
    let sim = sim();
    block_on(async {
        let cases: &[(KeySpec, KeyUsageType, &str, &[&str])] = &[
            (
                KeySpec::Rsa2048,
                KeyUsageType::EncryptDecrypt,
                "EncryptionAlgorithms",
                &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
            ),
            (
                KeySpec::Rsa3072,
                KeyUsageType::SignVerify,
                "SigningAlgorithms",
                &[
                    "RSASSA_PSS_SHA_256",
                    "RSASSA_PSS_SHA_384",
                    "RSASSA_PSS_SHA_512",
                    "RSASSA_PKCS1_V1_5_SHA_256",
                    "RSASSA_PKCS1_V1_5_SHA_384",
                    "RSASSA_PKCS1_V1_5_SHA_512",
                ],
            ),
            (
                KeySpec::Rsa4096,
                KeyUsageType::EncryptDecrypt,
                "EncryptionAlgorithms",
                &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
            ),
            (
                KeySpec::EccNistP256,
                KeyUsageType::SignVerify,
                "SigningAlgorithms",
                &["ECDSA_SHA_256"],
            ),
            (
                KeySpec::EccNistP384,
                KeyUsageType::KeyAgreement,
                "KeyAgreementAlgorithms",
                &["ECDH"],
            ),
            (
                KeySpec::EccNistP521,
                KeyUsageType::SignVerify,
                "SigningAlgorithms",
                &["ECDSA_SHA_512"],
            ),
            (
                KeySpec::EccSecgP256K1,
                KeyUsageType::SignVerify,
                "SigningAlgorithms",
                &["ECDSA_SHA_256"],
            ),
            (
                KeySpec::Hmac224,
                KeyUsageType::GenerateVerifyMac,
                "MacAlgorithms",
                &["HMAC_SHA_224"],
            ),
            (
                KeySpec::Hmac512,
                KeyUsageType::GenerateVerifyMac,
                "MacAlgorithms",
                &["HMAC_SHA_512"],
            ),
        ];
        let pin = sim.read("internal-token-pin").trim().to_string();
        for (spec, usage, member, algorithms) in cases {
            let Some(id) = key_if_offered(&sim, spec.clone(), usage.clone()).await else {
                continue;
            };
            let d = describe_raw(&sim, &id).await;
            let m = &d["KeyMetadata"];
            assert_eq!(m["KeySpec"], spec.as_str(), "{spec:?}");
            assert_eq!(m["KeyUsage"], usage.as_str());
            assert_eq!(m[*member], json!(algorithms), "{spec:?} {member}");
            for other in [
                "EncryptionAlgorithms",
                "SigningAlgorithms",
                "MacAlgorithms",
                "KeyAgreementAlgorithms",
            ] {
                if other != *member {
                    assert!(m.get(other).is_none(), "{spec:?} has {other}");
                }
            }
            // On the token: the private half or secret, never extractable, labelled with the
            // ARN; a key pair also has its public half.
            let objects: Vec<_> = sim
                .inspect_token("kms-internal", &pin)
                .into_iter()
                .filter(|o| o["label"] == m["Arn"])
                .collect();
            let hmac = matches!(usage, KeyUsageType::GenerateVerifyMac);
            assert_eq!(
                objects.len(),
                if hmac { 1 } else { 2 },
                "{spec:?}: {objects:?}"
            );
            let kept: Vec<_> = objects
                .iter()
                .filter(|o| !o["class"].as_str().unwrap_or("").contains("PUBLIC"))
                .collect();
            assert_eq!(kept.len(), 1, "{spec:?}: {objects:?}");
            assert_eq!(kept[0]["extractable"], false, "{spec:?}: {objects:?}");
        }
    });
}

async fn describe_raw(sim: &Sim, id: &str) -> serde_json::Value {
    let m = sim
        .kms()
        .describe_key()
        .key_id(id)
        .send()
        .await
        .expect("DescribeKey");
    let m = m.key_metadata().expect("metadata");
    let list = |v: Option<Vec<String>>| v.map(|v| json!(v));
    let mut out = json!({
        "KeySpec": m.key_spec().map(|s| s.as_str()),
        "KeyUsage": m.key_usage().map(|s| s.as_str()),
        "Arn": m.arn(),
    });
    let o = out.as_object_mut().unwrap();
    let pairs = [
        (
            "EncryptionAlgorithms",
            list(
                m.encryption_algorithms
                    .as_ref()
                    .map(|v| v.iter().map(|a| a.as_str().to_string()).collect()),
            ),
        ),
        (
            "SigningAlgorithms",
            list(
                m.signing_algorithms
                    .as_ref()
                    .map(|v| v.iter().map(|a| a.as_str().to_string()).collect()),
            ),
        ),
        (
            "MacAlgorithms",
            list(
                m.mac_algorithms
                    .as_ref()
                    .map(|v| v.iter().map(|a| a.as_str().to_string()).collect()),
            ),
        ),
        (
            "KeyAgreementAlgorithms",
            list(
                m.key_agreement_algorithms
                    .as_ref()
                    .map(|v| v.iter().map(|a| a.as_str().to_string()).collect()),
            ),
        ),
    ];
    for (k, v) in pairs {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    }
    json!({ "KeyMetadata": out })
}

#[test]
fn rsa_signatures_of_every_algorithm_verify_with_openssl() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let dir = tempfile::tempdir().unwrap();
        let Some(id) = key_if_offered(&sim, KeySpec::Rsa2048, KeyUsageType::SignVerify).await
        else {
            return;
        };
        let pem = public_pem(&kms, &id, dir.path(), "rsa").await;
        let message = b"signed through KMS, checked by OpenSSL";
        for (alg, digest, pss) in [
            (SigningAlgorithmSpec::RsassaPssSha256, "-sha256", true),
            (SigningAlgorithmSpec::RsassaPssSha384, "-sha384", true),
            (SigningAlgorithmSpec::RsassaPssSha512, "-sha512", true),
            (SigningAlgorithmSpec::RsassaPkcs1V15Sha256, "-sha256", false),
            (SigningAlgorithmSpec::RsassaPkcs1V15Sha384, "-sha384", false),
            (SigningAlgorithmSpec::RsassaPkcs1V15Sha512, "-sha512", false),
        ] {
            let sig = sign(&kms, &id, alg, message, MessageType::Raw).await;
            assert_eq!(sig.len(), 256);
            openssl_verifies(dir.path(), &pem, digest, pss, message, &sig);
        }
    });
}

#[test]
fn ecdsa_signatures_on_every_curve_are_der_and_verify_with_openssl() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let dir = tempfile::tempdir().unwrap();
        let message = b"an ECDSA signature, DER-encoded as KMS returns it";
        for (spec, alg, digest) in [
            (
                KeySpec::EccNistP256,
                SigningAlgorithmSpec::EcdsaSha256,
                "-sha256",
            ),
            (
                KeySpec::EccNistP384,
                SigningAlgorithmSpec::EcdsaSha384,
                "-sha384",
            ),
            (
                KeySpec::EccNistP521,
                SigningAlgorithmSpec::EcdsaSha512,
                "-sha512",
            ),
            (
                KeySpec::EccSecgP256K1,
                SigningAlgorithmSpec::EcdsaSha256,
                "-sha256",
            ),
        ] {
            let Some(id) = key_if_offered(&sim, spec.clone(), KeyUsageType::SignVerify).await
            else {
                continue;
            };
            let pem = public_pem(&kms, &id, dir.path(), spec.as_str()).await;
            let sig = sign(&kms, &id, alg, message, MessageType::Raw).await;
            assert_eq!(sig[0], 0x30, "{spec:?}: a DER SEQUENCE");
            openssl_verifies(dir.path(), &pem, digest, false, message, &sig);
        }
    });
}

#[test]
fn digest_message_type_signs_the_given_digest() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let dir = tempfile::tempdir().unwrap();
        let Some(id) = key_if_offered(&sim, KeySpec::EccNistP256, KeyUsageType::SignVerify).await
        else {
            return;
        };
        let pem = public_pem(&kms, &id, dir.path(), "p256").await;
        let message = b"hashed by the caller";
        let m = dir.path().join("m");
        std::fs::write(&m, message).unwrap();
        let digest = openssl(&["dgst", "-sha256", "-binary", path(&m)]);
        let sig = sign(
            &kms,
            &id,
            SigningAlgorithmSpec::EcdsaSha256,
            &digest,
            MessageType::Digest,
        )
        .await;
        openssl_verifies(dir.path(), &pem, "-sha256", false, message, &sig);
        // A digest of the wrong length for the algorithm is refused.
        let short = kms
            .sign()
            .key_id(&id)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .message_type(MessageType::Digest)
            .message(Blob::new(&digest[..20]))
            .send()
            .await;
        assert_eq!(code(short), "ValidationException");
    });
}

#[test]
fn verify_accepts_a_kms_signature_and_refuses_a_tampered_one() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        for (spec, alg) in [
            (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPssSha256),
            (KeySpec::EccNistP384, SigningAlgorithmSpec::EcdsaSha384),
        ] {
            let Some(id) = key_if_offered(&sim, spec.clone(), KeyUsageType::SignVerify).await
            else {
                continue;
            };
            let message = b"verify me";
            let sig = sign(&kms, &id, alg.clone(), message, MessageType::Raw).await;
            let ok = kms
                .verify()
                .key_id(&id)
                .signing_algorithm(alg.clone())
                .message(Blob::new(&message[..]))
                .signature(Blob::new(sig.clone()))
                .send()
                .await
                .expect("Verify");
            assert!(ok.signature_valid(), "{spec:?}");
            let mut bad = sig.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let refused = kms
                .verify()
                .key_id(&id)
                .signing_algorithm(alg.clone())
                .message(Blob::new(&message[..]))
                .signature(Blob::new(bad))
                .send()
                .await;
            assert_eq!(code(refused), "KMSInvalidSignatureException", "{spec:?}");
            let other_message = kms
                .verify()
                .key_id(&id)
                .signing_algorithm(alg)
                .message(Blob::new(&b"verify mE"[..]))
                .signature(Blob::new(sig))
                .send()
                .await;
            assert_eq!(code(other_message), "KMSInvalidSignatureException");
        }
    });
}

#[test]
fn macs_verify_and_a_tampered_mac_is_refused() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        for (spec, alg, len) in [
            (KeySpec::Hmac224, MacAlgorithmSpec::HmacSha224, 28),
            (KeySpec::Hmac256, MacAlgorithmSpec::HmacSha256, 32),
            (KeySpec::Hmac384, MacAlgorithmSpec::HmacSha384, 48),
            (KeySpec::Hmac512, MacAlgorithmSpec::HmacSha512, 64),
        ] {
            let Some(id) =
                key_if_offered(&sim, spec.clone(), KeyUsageType::GenerateVerifyMac).await
            else {
                continue;
            };
            let message = Blob::new(&b"a token to authenticate"[..]);
            let mac = kms
                .generate_mac()
                .key_id(&id)
                .mac_algorithm(alg.clone())
                .message(message.clone())
                .send()
                .await
                .expect("GenerateMac")
                .mac()
                .expect("Mac")
                .as_ref()
                .to_vec();
            assert_eq!(mac.len(), len, "{spec:?}");
            let ok = kms
                .verify_mac()
                .key_id(&id)
                .mac_algorithm(alg.clone())
                .message(message.clone())
                .mac(Blob::new(mac.clone()))
                .send()
                .await
                .expect("VerifyMac");
            assert!(ok.mac_valid());
            let mut bad = mac;
            bad[0] ^= 0x80;
            let refused = kms
                .verify_mac()
                .key_id(&id)
                .mac_algorithm(alg)
                .message(message)
                .mac(Blob::new(bad))
                .send()
                .await;
            assert_eq!(code(refused), "KMSInvalidMacException", "{spec:?}");
        }
    });
}

#[test]
fn openssl_oaep_ciphertexts_decrypt_through_kms() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let dir = tempfile::tempdir().unwrap();
        let Some(id) = key_if_offered(&sim, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await
        else {
            return;
        };
        let pem = public_pem(&kms, &id, dir.path(), "rsa-enc").await;
        let secret = b"encrypted by OpenSSL with the KMS public key";
        let (pt, ct) = (dir.path().join("pt"), dir.path().join("ct"));
        std::fs::write(&pt, secret).unwrap();
        for (alg, md) in [
            (EncryptionAlgorithmSpec::RsaesOaepSha1, "sha1"),
            (EncryptionAlgorithmSpec::RsaesOaepSha256, "sha256"),
        ] {
            let md_opt = format!("rsa_oaep_md:{md}");
            let mgf_opt = format!("rsa_mgf1_md:{md}");
            openssl(&[
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-inkey",
                path(&pem),
                "-in",
                path(&pt),
                "-out",
                path(&ct),
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &md_opt,
                "-pkeyopt",
                &mgf_opt,
            ]);
            let out = kms
                .decrypt()
                .key_id(&id)
                .encryption_algorithm(alg.clone())
                .ciphertext_blob(Blob::new(std::fs::read(&ct).unwrap()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("Decrypt {alg:?}: {e:?}"));
            assert_eq!(out.plaintext().unwrap().as_ref(), secret, "{alg:?}");
            assert_eq!(out.encryption_algorithm(), Some(&alg));
            // The other OAEP hash does not decrypt it.
            let other = if alg == EncryptionAlgorithmSpec::RsaesOaepSha1 {
                EncryptionAlgorithmSpec::RsaesOaepSha256
            } else {
                EncryptionAlgorithmSpec::RsaesOaepSha1
            };
            let wrong = kms
                .decrypt()
                .key_id(&id)
                .encryption_algorithm(other)
                .ciphertext_blob(Blob::new(std::fs::read(&ct).unwrap()))
                .send()
                .await;
            assert_eq!(code(wrong), "InvalidCiphertextException");
        }
    });
}

#[test]
fn kms_rsa_encryption_decrypts_with_kms_and_keeps_the_size_limits() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let Some(id) = key_if_offered(&sim, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await
        else {
            return;
        };
        for (alg, max) in [
            (EncryptionAlgorithmSpec::RsaesOaepSha1, 214),
            (EncryptionAlgorithmSpec::RsaesOaepSha256, 190),
        ] {
            let pt = vec![0x5a; max];
            let ct = kms
                .encrypt()
                .key_id(&id)
                .encryption_algorithm(alg.clone())
                .plaintext(Blob::new(pt.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("Encrypt {alg:?}: {e:?}"));
            let blob = ct.ciphertext_blob().unwrap().clone();
            assert_eq!(blob.as_ref().len(), 256);
            let back = kms
                .decrypt()
                .key_id(&id)
                .encryption_algorithm(alg.clone())
                .ciphertext_blob(blob)
                .send()
                .await
                .expect("Decrypt");
            assert_eq!(back.plaintext().unwrap().as_ref(), pt.as_slice());
            // A block above the modulus, and zeros: not ciphertexts of this key.
            for junk in [vec![0xff; 256], vec![0; 256]] {
                let r = kms
                    .decrypt()
                    .key_id(&id)
                    .encryption_algorithm(alg.clone())
                    .ciphertext_blob(Blob::new(junk))
                    .send()
                    .await;
                assert_eq!(code(r), "InvalidCiphertextException", "{alg:?}");
            }
            let too_long = kms
                .encrypt()
                .key_id(&id)
                .encryption_algorithm(alg)
                .plaintext(Blob::new(vec![0x5a; max + 1]))
                .send()
                .await;
            assert_eq!(code(too_long), "ValidationException");
        }
    });
}

#[test]
fn ecdh_through_kms_equals_openssl_derive() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let dir = tempfile::tempdir().unwrap();
        for (spec, curve) in [
            (KeySpec::EccNistP256, "P-256"),
            (KeySpec::EccNistP521, "P-521"),
        ] {
            let Some(id) = key_if_offered(&sim, spec.clone(), KeyUsageType::KeyAgreement).await
            else {
                continue;
            };
            let kms_pub = public_pem(&kms, &id, dir.path(), spec.as_str()).await;
            let peer = dir.path().join("peer.pem");
            let peer_pub = dir.path().join("peer.der");
            let curve_opt = format!("ec_paramgen_curve:{curve}");
            openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &curve_opt,
                "-out",
                path(&peer),
            ]);
            openssl(&[
                "pkey",
                "-in",
                path(&peer),
                "-pubout",
                "-outform",
                "DER",
                "-out",
                path(&peer_pub),
            ]);
            let out = kms
                .derive_shared_secret()
                .key_id(&id)
                .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                .public_key(Blob::new(std::fs::read(&peer_pub).unwrap()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("DeriveSharedSecret {spec:?}: {e:?}"));
            let expected = openssl(&[
                "pkeyutl",
                "-derive",
                "-inkey",
                path(&peer),
                "-peerkey",
                path(&kms_pub),
            ]);
            assert_eq!(
                out.shared_secret().unwrap().as_ref(),
                expected.as_slice(),
                "{spec:?}"
            );
        }
    });
}

#[test]
fn data_key_pairs_hold_together_and_their_private_key_decrypts() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let dir = tempfile::tempdir().unwrap();
        let id = create(
            &kms,
            KeySpec::SymmetricDefault,
            KeyUsageType::EncryptDecrypt,
        )
        .await;
        for spec in [DataKeyPairSpec::Rsa2048, DataKeyPairSpec::EccNistP384] {
            let out = kms
                .generate_data_key_pair()
                .key_id(&id)
                .key_pair_spec(spec.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("GenerateDataKeyPair {spec:?}: {e:?}"));
            let private = out.private_key_plaintext().unwrap().as_ref().to_vec();
            let public = out.public_key().unwrap().as_ref().to_vec();
            // OpenSSL reads the PKCS #8 key, checks it and finds the same public key in it.
            let key = dir.path().join("private.der");
            std::fs::write(&key, &private).unwrap();
            openssl(&[
                "pkey",
                "-inform",
                "DER",
                "-in",
                path(&key),
                "-check",
                "-noout",
            ]);
            let derived = openssl(&[
                "pkey",
                "-inform",
                "DER",
                "-in",
                path(&key),
                "-pubout",
                "-outform",
                "DER",
            ]);
            assert_eq!(derived, public, "{spec:?}");
            let back = kms
                .decrypt()
                .ciphertext_blob(out.private_key_ciphertext_blob().unwrap().clone())
                .send()
                .await
                .expect("Decrypt the private key");
            assert_eq!(back.plaintext().unwrap().as_ref(), private.as_slice());
        }
        let bare = kms
            .generate_data_key_pair_without_plaintext()
            .key_id(&id)
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await
            .expect("GenerateDataKeyPairWithoutPlaintext");
        assert!(bare.public_key().is_some());
        assert!(bare.private_key_ciphertext_blob().is_some());
    });
}

#[test]
fn keys_used_against_their_usage_or_spec_are_refused() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let signing = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
        let encrypting = create(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
        let hmac = create(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
        let enc = kms
            .encrypt()
            .key_id(&signing)
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .plaintext(Blob::new(&b"x"[..]))
            .send()
            .await;
        assert_eq!(code(enc), "InvalidKeyUsageException");
        let sig = kms
            .sign()
            .key_id(&encrypting)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
            .message(Blob::new(&b"x"[..]))
            .send()
            .await;
        assert_eq!(code(sig), "InvalidKeyUsageException");
        let wrong_curve_alg = kms
            .sign()
            .key_id(&signing)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha384)
            .message(Blob::new(&b"x"[..]))
            .send()
            .await;
        assert_eq!(code(wrong_curve_alg), "InvalidKeyUsageException");
        let wrong_mac = kms
            .generate_mac()
            .key_id(&hmac)
            .mac_algorithm(MacAlgorithmSpec::HmacSha384)
            .message(Blob::new(&b"x"[..]))
            .send()
            .await;
        assert_eq!(code(wrong_mac), "InvalidKeyUsageException");
        let data_key = kms
            .generate_data_key()
            .key_id(&encrypting)
            .number_of_bytes(32)
            .send()
            .await;
        assert_eq!(code(data_key), "InvalidKeyUsageException");
        let bad_combo = kms
            .create_key()
            .key_spec(KeySpec::Hmac256)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .send()
            .await;
        assert_eq!(code(bad_combo), "ValidationException");
    });
}

#[test]
fn disabled_and_pending_deletion_keys_refuse_to_sign() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let Some(id) = key_if_offered(&sim, KeySpec::EccNistP256, KeyUsageType::SignVerify).await
        else {
            return;
        };
        let try_sign = || {
            kms.sign()
                .key_id(&id)
                .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                .message(Blob::new(&b"x"[..]))
                .send()
        };
        kms.disable_key().key_id(&id).send().await.unwrap();
        assert_eq!(code(try_sign().await), "DisabledException");
        assert_eq!(
            code(kms.get_public_key().key_id(&id).send().await),
            "DisabledException"
        );
        kms.enable_key().key_id(&id).send().await.unwrap();
        try_sign().await.expect("signs again once enabled");
        kms.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        assert_eq!(code(try_sign().await), "KMSInvalidStateException");
    });
}

#[test]
fn deletion_destroys_both_halves_of_a_key_pair() {
    // Its own server: the clock is advanced.
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let Some(id) = key_if_offered(&sim, KeySpec::Rsa2048, KeyUsageType::SignVerify).await
        else {
            return;
        };
        let arn = format!("arn:aws:kms:us-east-1:111122223333:key/{id}");
        let pin = sim.read("internal-token-pin").trim().to_string();
        let on_token = || {
            sim.inspect_token("kms-internal", &pin)
                .into_iter()
                .filter(|o| o["label"] == arn.as_str())
                .count()
        };
        assert_eq!(on_token(), 2);
        kms.schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 8})))
            .await
            .unwrap();
        let gone = kms.describe_key().key_id(&id).send().await;
        assert_eq!(code(gone), "NotFoundException");
        assert_eq!(on_token(), 0);
    });
}

#[test]
fn keys_in_a_cloudhsm_key_store_stay_symmetric() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let (store, _) = connected_store(&sim, "specs").await;
        let refused = kms
            .create_key()
            .origin(aws_sdk_kms::types::OriginType::AwsCloudhsm)
            .custom_key_store_id(&store)
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await;
        assert_eq!(code(refused), "UnsupportedOperationException");
        let key = cloudhsm_key(&sim, &store).await;
        let pair = kms
            .generate_data_key_pair()
            .key_id(&key)
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await;
        assert_eq!(code(pair), "UnsupportedOperationException");
        let m = kms.describe_key().key_id(&key).send().await.unwrap();
        assert_eq!(
            m.key_metadata().unwrap().key_state(),
            Some(&KeyState::Enabled)
        );
    });
}

#[test]
fn key_pairs_and_hmac_keys_work_after_a_restart() {
    // Its own server: it is restarted.
    let mut sim = Sim::start();
    let (pair, hmac, public) = block_on(async {
        let kms = sim.kms();
        let pair = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
        let hmac = create(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
        let public = kms.get_public_key().key_id(&pair).send().await.unwrap();
        (pair, hmac, public.public_key().unwrap().clone())
    });
    sim.restart();
    block_on(async {
        let kms = sim.kms();
        let again = kms.get_public_key().key_id(&pair).send().await.unwrap();
        assert_eq!(again.public_key(), Some(&public));
        let dir = tempfile::tempdir().unwrap();
        let pem = public_pem(&kms, &pair, dir.path(), "after-restart").await;
        let sig = sign(
            &kms,
            &pair,
            SigningAlgorithmSpec::EcdsaSha256,
            b"after a restart",
            MessageType::Raw,
        )
        .await;
        openssl_verifies(dir.path(), &pem, "-sha256", false, b"after a restart", &sig);
        let mac = kms
            .generate_mac()
            .key_id(&hmac)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(&b"m"[..]))
            .send()
            .await
            .expect("GenerateMac after a restart");
        assert_eq!(mac.mac().unwrap().as_ref().len(), 32);
    });
}

#[test]
fn derive_shared_secret_refuses_a_peer_key_off_the_keys_curve() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let Some(id) = key_if_offered(&sim, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await
        else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let other_curve = dir.path().join("p384.pem");
        let other_der = dir.path().join("p384.der");
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            path(&other_curve),
        ]);
        openssl(&[
            "pkey",
            "-in",
            path(&other_curve),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            path(&other_der),
        ]);
        // A P-256 SubjectPublicKeyInfo whose point is not on the curve.
        let mut off_curve = std::fs::read(
            public_pem(&kms, &id, dir.path(), "mine")
                .await
                .with_extension("der"),
        )
        .unwrap();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        for (what, peer) in [
            ("a P-384 key", std::fs::read(&other_der).unwrap()),
            ("a point off the curve", off_curve),
            ("not DER", b"not a public key".to_vec()),
        ] {
            let r = kms
                .derive_shared_secret()
                .key_id(&id)
                .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                .public_key(Blob::new(peer))
                .send()
                .await;
            assert_eq!(code(r), "ValidationException", "{what}");
        }
    });
}

#[test]
fn truncated_or_empty_signatures_and_macs_are_invalid_not_errors() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        for (spec, alg) in [
            (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPkcs1V15Sha256),
            (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha256),
        ] {
            let Some(id) = key_if_offered(&sim, spec.clone(), KeyUsageType::SignVerify).await
            else {
                continue;
            };
            let sig = sign(&kms, &id, alg.clone(), b"m", MessageType::Raw).await;
            // Half a signature, one zero byte, a DER SEQUENCE of two zero integers.
            for bad in [
                sig[..sig.len() / 2].to_vec(),
                vec![0],
                vec![0x30, 6, 2, 1, 0, 2, 1, 0],
            ] {
                let r = kms
                    .verify()
                    .key_id(&id)
                    .signing_algorithm(alg.clone())
                    .message(Blob::new(&b"m"[..]))
                    .signature(Blob::new(bad.clone()))
                    .send()
                    .await;
                assert_eq!(code(r), "KMSInvalidSignatureException", "{spec:?} {bad:?}");
            }
        }
        let Some(hmac) =
            key_if_offered(&sim, KeySpec::Hmac384, KeyUsageType::GenerateVerifyMac).await
        else {
            return;
        };
        let r = kms
            .verify_mac()
            .key_id(&hmac)
            .mac_algorithm(MacAlgorithmSpec::HmacSha384)
            .message(Blob::new(&b"m"[..]))
            .mac(Blob::new(vec![1u8; 12]))
            .send()
            .await;
        assert_eq!(code(r), "KMSInvalidMacException");
    });
}

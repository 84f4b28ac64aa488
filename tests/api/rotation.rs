//! Key rotation through `aws-sdk-kms`: automatic rotation on the simulated clock, on-demand
//! rotation and its limit, `ListKeyRotations`, and every earlier material still opening its
//! ciphertexts. One server for the file; the tests that move the simulated clock start their
//! own.

use crate::common::*;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    IncludeKeyMaterial, KeyMaterialState, KeySpec, KeyUsageType, RotationType,
};
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

async fn new_key(kms: &Client) -> String {
    kms.create_key()
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .expect("metadata")
        .key_id
}

/// GenerateDataKey: (ciphertext, plaintext, KeyMaterialId).
async fn data_key(kms: &Client, key: &str) -> (Vec<u8>, Vec<u8>, String) {
    let out = kms
        .generate_data_key()
        .key_id(key)
        .number_of_bytes(32)
        .send()
        .await
        .expect("GenerateDataKey");
    (
        out.ciphertext_blob.expect("CiphertextBlob").into_inner(),
        out.plaintext.expect("Plaintext").into_inner(),
        out.key_material_id.expect("KeyMaterialId"),
    )
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

async fn current_material(kms: &Client, key: &str) -> String {
    kms.describe_key()
        .key_id(key)
        .send()
        .await
        .expect("DescribeKey")
        .key_metadata
        .expect("metadata")
        .current_key_material_id
        .expect("CurrentKeyMaterialId")
}

async fn now(sim: &Sim) -> f64 {
    let v = sim
        .control()
        .call("GET", "/_sim/clock", None)
        .await
        .expect("GET /_sim/clock");
    v["now"].as_f64().expect("now")
}

#[test]
fn rotation_is_off_by_default_and_enabling_it_sets_the_period_and_the_next_date() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        let s = kms
            .get_key_rotation_status()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        assert!(!s.key_rotation_enabled);
        assert_eq!(s.rotation_period_in_days, None);
        let before = now(&sim).await;
        kms.enable_key_rotation()
            .key_id(&key)
            .rotation_period_in_days(180)
            .send()
            .await
            .expect("EnableKeyRotation");
        let s = kms
            .get_key_rotation_status()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        assert!(s.key_rotation_enabled);
        assert_eq!(s.rotation_period_in_days, Some(180));
        let next = s
            .next_rotation_date
            .expect("NextRotationDate")
            .as_secs_f64();
        assert!(
            (next - (before + 180.0 * 86_400.0)).abs() < 120.0,
            "next rotation 180 days ahead: {next} vs {before}"
        );
        assert_eq!(s.on_demand_rotation_start_date, None);
    });
}

#[test]
fn enable_key_rotation_defaults_to_365_days() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        kms.enable_key_rotation().key_id(&key).send().await.unwrap();
        let s = kms
            .get_key_rotation_status()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(s.rotation_period_in_days, Some(365));
    });
}

#[test]
fn a_rotation_period_outside_90_to_2560_days_is_a_validation_error() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        for days in [89, 2561] {
            let e = kms
                .enable_key_rotation()
                .key_id(&key)
                .rotation_period_in_days(days)
                .send()
                .await;
            assert_eq!(code(e), "ValidationException", "{days}");
        }
    });
}

#[test]
fn disabling_key_rotation_turns_the_status_off() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        kms.enable_key_rotation().key_id(&key).send().await.unwrap();
        kms.disable_key_rotation()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        let s = kms
            .get_key_rotation_status()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        assert!(!s.key_rotation_enabled);
        assert_eq!(s.next_rotation_date, None);
    });
}

#[test]
fn on_demand_rotation_makes_new_material_current_and_old_ciphertexts_still_decrypt() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        let (old_blob, old_plain, first) = data_key(&kms, &key).await;
        assert_eq!(current_material(&kms, &key).await, first);
        kms.rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .expect("RotateKeyOnDemand");
        let (new_blob, new_plain, second) = data_key(&kms, &key).await;
        assert_ne!(second, first);
        assert_eq!(current_material(&kms, &key).await, second);
        assert_eq!(decrypt(&kms, &old_blob).await, (old_plain, first));
        assert_eq!(decrypt(&kms, &new_blob).await, (new_plain, second.clone()));
        let rotations = kms
            .list_key_rotations()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .rotations
            .unwrap();
        assert_eq!(rotations.len(), 1);
        assert_eq!(
            rotations[0].key_material_id.as_deref(),
            Some(second.as_str())
        );
        assert_eq!(rotations[0].rotation_type, Some(RotationType::OnDemand));
        assert_eq!(
            rotations[0].key_material_state,
            Some(KeyMaterialState::Current)
        );
        assert!(rotations[0].rotation_date.is_some());
    });
}

#[test]
fn re_encrypt_names_the_source_and_destination_materials() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        let (blob, _, first) = data_key(&kms, &key).await;
        kms.rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        let second = current_material(&kms, &key).await;
        let out = kms
            .re_encrypt()
            .ciphertext_blob(Blob::new(blob))
            .destination_key_id(&key)
            .send()
            .await
            .expect("ReEncrypt");
        assert_eq!(out.source_key_material_id, Some(first));
        assert_eq!(out.destination_key_material_id, Some(second));
    });
}

#[test]
fn on_demand_rotation_stops_at_25_per_key() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        for i in 0..25 {
            kms.rotate_key_on_demand()
                .key_id(&key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("rotation {i}: {e:?}"));
        }
        let e = kms.rotate_key_on_demand().key_id(&key).send().await;
        assert_eq!(code(e), "LimitExceededException");
    });
}

#[test]
fn list_key_rotations_pages_and_can_include_the_first_material() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        for _ in 0..3 {
            kms.rotate_key_on_demand()
                .key_id(&key)
                .send()
                .await
                .unwrap();
        }
        let page = kms
            .list_key_rotations()
            .key_id(&key)
            .limit(2)
            .send()
            .await
            .unwrap();
        assert_eq!(page.rotations.as_ref().unwrap().len(), 2);
        assert!(page.truncated);
        let rest = kms
            .list_key_rotations()
            .key_id(&key)
            .limit(2)
            .marker(page.next_marker.unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(rest.rotations.unwrap().len(), 1);
        assert!(!rest.truncated);
        let all = kms
            .list_key_rotations()
            .key_id(&key)
            .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
            .send()
            .await
            .unwrap()
            .rotations
            .unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[0].rotation_date, None,
            "the first material was no rotation"
        );
        let current = all
            .iter()
            .filter(|r| r.key_material_state == Some(KeyMaterialState::Current))
            .count();
        assert_eq!(current, 1);
    });
}

#[test]
fn a_disabled_key_refuses_rotation_with_disabled_exception() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        kms.disable_key().key_id(&key).send().await.unwrap();
        let e = kms.rotate_key_on_demand().key_id(&key).send().await;
        assert_eq!(code(e), "DisabledException");
        let e = kms.enable_key_rotation().key_id(&key).send().await;
        assert_eq!(code(e), "DisabledException");
    });
}

#[test]
fn keys_that_are_not_symmetric_encryption_keys_refuse_rotation() {
    let sim = sim();
    block_on(async {
        let kms = sim.kms();
        let specs = sim
            .control()
            .call("GET", "/_sim/key-specs", None)
            .await
            .expect("GET /_sim/key-specs");
        let (spec, usage) = specs["key_specs"]
            .as_array()
            .expect("key_specs")
            .iter()
            .map(|k| {
                (
                    k["KeySpec"].as_str().unwrap_or_default().to_string(),
                    k["KeyUsage"].as_str().unwrap_or_default().to_string(),
                )
            })
            .find(|(s, _)| s != "SYMMETRIC_DEFAULT")
            .expect("the token offers some asymmetric or HMAC key spec");
        let key = kms
            .create_key()
            .key_spec(KeySpec::from(spec.as_str()))
            .key_usage(KeyUsageType::from(usage.as_str()))
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id;
        let e = kms.enable_key_rotation().key_id(&key).send().await;
        assert_eq!(code(e), "UnsupportedOperationException", "{spec}");
        let e = kms.rotate_key_on_demand().key_id(&key).send().await;
        assert_eq!(code(e), "UnsupportedOperationException", "{spec}");
        let s = kms
            .get_key_rotation_status()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        assert!(!s.key_rotation_enabled);
    });
}

#[test]
fn keys_in_a_cloudhsm_key_store_refuse_rotation() {
    let sim = sim();
    block_on(async {
        let (store, _) = connected_store(&sim, "rotation-store").await;
        let key = cloudhsm_key(&sim, &store).await;
        let kms = sim.kms();
        use aws_sdk_kms::error::ProvideErrorMetadata;
        let e = kms
            .enable_key_rotation()
            .key_id(&key)
            .send()
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Some("UnsupportedOperationException"));
        assert!(
            e.message()
                .unwrap_or_default()
                .ends_with("origin is AWS_CLOUDHSM which is not valid for this operation."),
            "{e:?}"
        );
        for r in [
            code(kms.rotate_key_on_demand().key_id(&key).send().await),
            code(kms.get_key_rotation_status().key_id(&key).send().await),
            code(kms.list_key_rotations().key_id(&key).send().await),
        ] {
            assert_eq!(r, "UnsupportedOperationException");
        }
    });
}

#[test]
fn a_yearly_rotation_happens_in_a_second_of_simulated_time_and_old_ciphertexts_decrypt() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        kms.enable_key_rotation().key_id(&key).send().await.unwrap();
        let next = kms
            .get_key_rotation_status()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .next_rotation_date
            .unwrap()
            .as_secs_f64();
        let (blob, plain, first) = data_key(&kms, &key).await;
        sim.control()
            .call(
                "POST",
                "/_sim/clock/advance",
                Some(serde_json::json!({"days": 366})),
            )
            .await
            .expect("advance a year");
        let rotations = kms
            .list_key_rotations()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .rotations
            .unwrap();
        assert_eq!(rotations.len(), 1, "one rotation in a year");
        assert_eq!(rotations[0].rotation_type, Some(RotationType::Automatic));
        let when = rotations[0].rotation_date.unwrap().as_secs_f64();
        assert!((when - next).abs() < 1.0, "dated when it fell due");
        let second = current_material(&kms, &key).await;
        assert_ne!(second, first);
        assert_eq!(decrypt(&kms, &blob).await, (plain, first));
        let s = kms
            .get_key_rotation_status()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        let next_again = s.next_rotation_date.unwrap().as_secs_f64();
        assert!((next_again - (next + 365.0 * 86_400.0)).abs() < 1.0);
    });
}

#[test]
fn deleting_a_rotated_key_destroys_every_material_on_the_token() {
    let sim = Sim::start();
    block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        for _ in 0..2 {
            kms.rotate_key_on_demand()
                .key_id(&key)
                .send()
                .await
                .unwrap();
        }
        let arn = kms
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .arn
            .unwrap();
        let pin = sim.read("internal-token-pin");
        let count = || {
            sim.inspect_token("kms-internal", pin.trim())
                .iter()
                .filter(|o| o["label"] == arn.as_str())
                .count()
        };
        assert_eq!(count(), 3, "three materials on the token");
        kms.schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        sim.control()
            .call(
                "POST",
                "/_sim/clock/advance",
                Some(serde_json::json!({"days": 8})),
            )
            .await
            .expect("advance past the deletion");
        assert_eq!(count(), 0, "every material destroyed");
    });
}

#[test]
fn every_material_survives_a_restart_and_still_decrypts() {
    let mut sim = Sim::start();
    let (blob, plain, first) = block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        let old = data_key(&kms, &key).await;
        kms.rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        old
    });
    sim.restart();
    block_on(async {
        assert_eq!(decrypt(&sim.kms(), &blob).await, (plain, first));
    });
}

#[test]
fn a_crash_between_making_a_rotations_material_and_committing_leaves_an_orphan_and_the_old_material()
 {
    let mut sim = Sim::start();
    let kms_key = block_on(async {
        let kms = sim.kms();
        let key = new_key(&kms).await;
        let old = data_key(&kms, &key).await;
        (key, old)
    });
    let (key, (blob, plain, first)) = kms_key;
    block_on(sim.control().call(
        "POST",
        "/_sim/failpoints",
        Some(serde_json::json!({"name": "rotation.material_made"})),
    ))
    .expect("arm the failpoint");
    let _ = block_on(sim.kms().rotate_key_on_demand().key_id(&key).send());
    assert!(!sim.wait_exit(60).success());
    sim.respawn();
    let h = block_on(sim.control().call("GET", "/_sim/health", None)).expect("health");
    assert_eq!(h["reconciliation"]["orphans_found"], 1, "{h}");
    assert_eq!(h["reconciliation"]["keys_missing_material"], 0, "{h}");
    block_on(async {
        let kms = sim.kms();
        assert_eq!(current_material(&kms, &key).await, first);
        assert_eq!(decrypt(&kms, &blob).await, (plain, first));
    });
}

//! The PKCS#11 layer against a real token of the module under test (`CKS_SIM_PKCS11_MODULE`:
//! SoftHSM2 by default, kryoptic in scripts/test's second pass), in process. Nothing here may
//! assume one vendor: return codes, attributes and slot numbers differ between modules.

mod common;

use cks_sim::hsm::{HsmError, Token};
use common::{TestResult, fresh_token, module};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::sync::Arc;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An independent cryptoki handle (its own sessions), for checks that must not go through
/// the layer under test.
fn raw() -> Pkcs11 {
    let p = Pkcs11::new(common::module_path()).expect("load module");
    let _ = p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    p
}

fn open(label: &str) -> Arc<Token> {
    Arc::new(Token::open(module(), label, 4).expect("open token"))
}

/// Every test holds this shared; the re-initialization test holds it exclusively, because
/// `C_Finalize` ends every session of the process, including raw cryptoki handles of other
/// tests.
static MODULE_USE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MODULE_USE.read().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn keys_survive_a_fresh_token_handle_and_are_found_through_the_index() -> TestResult {
    let _shared = shared();
    let label = fresh_token("persist", "user-pin-1");
    rt().block_on(async {
        let t = open(&label);
        t.login("user-pin-1").await?;
        let id = *uuid::Uuid::new_v4().as_bytes();
        t.generate_aes_key("arn:aws:kms:us-east-1:111122223333:key/x", id)
            .await?;
        let before = t.fingerprint(id).await?;
        t.logout().await?;
        drop(t);

        // A new handle starts with an empty index; the login scan fills it.
        let t = open(&label);
        assert_eq!(t.indexed_keys(), 0);
        t.login("user-pin-1").await?;
        assert!(t.has_key(&id), "the login scan must find the key");
        // The first use may make the key's session copy (one C_CopyObject, once).
        let calls = t.stats().calls();
        t.encrypt(id, b"aad".to_vec(), b"warm".to_vec()).await?;
        assert!(
            t.stats().calls() - calls <= 3,
            "first encrypt: at most one extra call"
        );
        if common::module_path().to_string_lossy().contains("softhsm") {
            assert_eq!(
                t.session_copies(),
                1,
                "SoftHSM2 supports C_CopyObject: a session copy is used"
            );
        }
        let calls = t.stats().calls();
        let sealed = t.encrypt(id, b"aad".to_vec(), b"hello".to_vec()).await?;
        // One job: C_GenerateRandom + C_Encrypt, no C_FindObjects on the request path.
        assert_eq!(
            t.stats().calls() - calls,
            2,
            "encrypt must not search the token"
        );
        let pt = t
            .decrypt(id, sealed.iv, b"aad".to_vec(), sealed.ciphertext)
            .await?;
        assert_eq!(pt, b"hello");
        assert_eq!(
            t.fingerprint(id).await?,
            before,
            "material unchanged across handles"
        );
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn key_objects_follow_the_d4_template_and_never_reveal_their_value() -> TestResult {
    let _shared = shared();
    let label = fresh_token("template", "user-pin-2");
    let arn = format!(
        "arn:aws:kms:us-east-1:111122223333:key/{}",
        uuid::Uuid::new_v4()
    );
    let id = *uuid::Uuid::new_v4().as_bytes();
    rt().block_on(async {
        let t = open(&label);
        t.login("user-pin-2").await?;
        t.generate_aes_key(&arn, id).await?;
        // Keep the login: the raw handle shares this process's login state.
        let p = raw();
        let slot = p
            .get_slots_with_initialized_token()?
            .into_iter()
            .find(|s| {
                p.get_token_info(*s)
                    .map(|i| i.label().trim_end() == label)
                    .unwrap_or(false)
            })
            .expect("slot by label");
        let s = p.open_ro_session(slot)?;
        let found = s.find_objects(&[Attribute::Label(arn.clone().into_bytes())])?;
        assert_eq!(found.len(), 1);
        let attrs = s.get_attributes(
            found[0],
            &[
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::Token,
                AttributeType::Id,
                AttributeType::ValueLen,
            ],
        )?;
        assert!(attrs.contains(&Attribute::Extractable(false)));
        assert!(attrs.contains(&Attribute::Sensitive(true)));
        assert!(attrs.contains(&Attribute::Token(true)));
        assert!(attrs.contains(&Attribute::Id(id.to_vec())));
        assert!(attrs.contains(&Attribute::ValueLen(32.into())));
        // Reading CKA_VALUE of a sensitive key fails (cryptoki skips unavailable attributes,
        // so the value never appears).
        let v = s.get_attributes(found[0], &[AttributeType::Value]);
        assert!(
            !matches!(v, Ok(ref a) if a.iter().any(|x| matches!(x, Attribute::Value(_)))),
            "CKA_VALUE must not be readable: {v:?}"
        );
        drop(s);
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn aes_gcm_round_trip_and_every_tamper_is_rejected() -> TestResult {
    let _shared = shared();
    let label = fresh_token("gcm", "user-pin-3");
    rt().block_on(async {
        let t = open(&label);
        t.login("user-pin-3").await?;
        let (a, b) = (
            *uuid::Uuid::new_v4().as_bytes(),
            *uuid::Uuid::new_v4().as_bytes(),
        );
        t.generate_aes_key("key-a", a).await?;
        t.generate_aes_key("key-b", b).await?;
        let s1 = t
            .encrypt(a, b"ctx".to_vec(), b"same plaintext".to_vec())
            .await?;
        let s2 = t
            .encrypt(a, b"ctx".to_vec(), b"same plaintext".to_vec())
            .await?;
        assert_eq!(s1.iv.len(), 12);
        assert_ne!(s1.iv, s2.iv, "fresh IV per encryption");
        assert_ne!(s1.ciphertext, s2.ciphertext);
        assert_eq!(
            t.decrypt(a, s1.iv.clone(), b"ctx".to_vec(), s1.ciphertext.clone())
                .await?,
            b"same plaintext"
        );
        let wrong_aad = t
            .decrypt(a, s1.iv.clone(), b"other".to_vec(), s1.ciphertext.clone())
            .await;
        assert!(
            matches!(wrong_aad, Err(HsmError::CiphertextRejected { .. })),
            "{wrong_aad:?}"
        );
        let wrong_key = t
            .decrypt(b, s1.iv.clone(), b"ctx".to_vec(), s1.ciphertext.clone())
            .await;
        assert!(
            matches!(wrong_key, Err(HsmError::CiphertextRejected { .. })),
            "{wrong_key:?}"
        );
        let mut flipped = s1.ciphertext.clone();
        flipped[0] ^= 1;
        let bad = t.decrypt(a, s1.iv.clone(), b"ctx".to_vec(), flipped).await;
        assert!(
            matches!(bad, Err(HsmError::CiphertextRejected { .. })),
            "{bad:?}"
        );
        // The session survives a rejected ciphertext: the next call works.
        assert_eq!(t.random(32).await?.len(), 32);
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn another_process_sees_the_objects_with_their_labels() -> TestResult {
    let _shared = shared();
    let label = fresh_token("pkcs11tool", "user-pin-4");
    let arn = format!(
        "arn:aws:kms:us-east-1:111122223333:key/{}",
        uuid::Uuid::new_v4()
    );
    rt().block_on(async {
        let t = open(&label);
        t.login("user-pin-4").await?;
        t.generate_aes_key(&arn, *uuid::Uuid::new_v4().as_bytes())
            .await?;
        t.logout().await?;
        Ok::<_, HsmError>(())
    })?;
    let running = common::token_creation_lock();
    let out = std::process::Command::new("pkcs11-tool")
        .args(["--module"])
        .arg(common::module_path())
        .args([
            "--token-label",
            &label,
            "--login",
            "--pin",
            "user-pin-4",
            "--list-objects",
        ])
        .output()
        .map_err(|e| format!("pkcs11-tool (package opensc) is needed: {e}"))?;
    drop(running);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pkcs11-tool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&arn),
        "pkcs11-tool output lacks the label {arn}:\n{text}"
    );
    assert!(text.contains("Secret Key"), "{text}");
    Ok(())
}

#[test]
fn concurrent_encryptions_all_succeed_and_never_run_on_the_async_worker() -> TestResult {
    let _shared = shared();
    let label = fresh_token("pool", "user-pin-5");
    let rt = rt();
    let worker = std::thread::current().id();
    rt.block_on(async {
        let t = open(&label);
        t.login("user-pin-5").await?;
        let id = *uuid::Uuid::new_v4().as_bytes();
        t.generate_aes_key("pool-key", id).await?;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..200u32 {
            let t = Arc::clone(&t);
            set.spawn(async move {
                let pt = i.to_be_bytes().to_vec();
                let s = t.encrypt(id, vec![], pt.clone()).await?;
                let back = t.decrypt(id, s.iv, vec![], s.ciphertext).await?;
                assert_eq!(back, pt);
                Ok::<_, HsmError>(())
            });
        }
        let mut ok = 0;
        while let Some(r) = set.join_next().await {
            r.expect("task")?;
            ok += 1;
        }
        assert_eq!(ok, 200);
        let threads = t.stats().threads();
        assert!(!threads.is_empty());
        assert!(
            !threads.contains(&worker),
            "a PKCS#11 call ran on the async worker thread"
        );
        t.logout().await?;
        Ok(())
    })
}

/// The command name and nice value of a `/proc/…/stat` line.
fn name_and_nice(stat: &str) -> (&str, i32) {
    let (open, close) = (stat.find('(').expect("("), stat.rfind(')').expect(")"));
    // Field 19 (nice) is the 17th after the command name.
    let nice = stat[close + 1..].split_whitespace().nth(16).expect("nice");
    (&stat[open + 1..close], nice.parse().expect("a number"))
}

/// The nice values of this process's threads whose name starts with `prefix`.
fn thread_nices(prefix: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let Ok(stat) = std::fs::read_to_string(t.expect("task").path().join("stat")) else {
            continue;
        };
        let (name, nice) = name_and_nice(&stat);
        if name.starts_with(prefix) {
            out.push(nice);
        }
    }
    out
}

#[test]
fn a_token_runs_its_calls_on_threads_at_the_module_s_nice_value() -> TestResult {
    let _shared = shared();
    // A positive value, which any process may take: lowering a priority needs no privilege.
    let label = fresh_token("nice", "user-pin-6");
    // The process's nice value: its main thread's.
    let base = name_and_nice(&std::fs::read_to_string("/proc/self/stat").expect("stat")).1;
    let m = module().clone().with_thread_nice(2);
    rt().block_on(async {
        let t = Arc::new(Token::open(&m, &label, 2)?);
        t.login("user-pin-6").await?;
        t.generate_aes_key("nice-key", *uuid::Uuid::new_v4().as_bytes())
            .await?;
        // Thread names are cut to 15 bytes: "pkcs11-nice-…".
        let nices = thread_nices(&format!("pkcs11-{}", &label[..8]));
        assert!(!nices.is_empty(), "no PKCS#11 thread of the token found");
        assert!(
            nices.iter().all(|n| *n == (base + 2).min(19)),
            "token threads at {nices:?}, process at {base}"
        );
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn fingerprints_are_stable_per_object_and_differ_between_keys() -> TestResult {
    let _shared = shared();
    let label = fresh_token("fp", "user-pin-6");
    rt().block_on(async {
        let t = open(&label);
        t.login("user-pin-6").await?;
        let (a, b) = (
            *uuid::Uuid::new_v4().as_bytes(),
            *uuid::Uuid::new_v4().as_bytes(),
        );
        t.generate_aes_key("fp-a", a).await?;
        t.generate_aes_key("fp-b", b).await?;
        let fa = t.fingerprint(a).await?;
        assert_eq!(fa, t.fingerprint(a).await?);
        assert_ne!(fa, t.fingerprint(b).await?);
        let objects = t.list_objects().await?;
        let oa = objects
            .iter()
            .find(|o| o.label == "fp-a")
            .expect("fp-a listed");
        assert_eq!(oa.fingerprint.as_deref(), Some(fa.as_str()));
        assert_eq!(oa.class, "CKO_SECRET_KEY");
        // Using a key may make its session copy; destroying the key destroys the copy too,
        // and neither handle is used again.
        t.encrypt(a, b"x".to_vec(), b"used".to_vec()).await?;
        t.encrypt(b, b"x".to_vec(), b"used".to_vec()).await?;
        let copies = t.session_copies();
        t.destroy(a).await?;
        assert!(!t.has_key(&a));
        assert_eq!(t.session_copies(), copies.saturating_sub(1));
        assert!(matches!(
            t.fingerprint(a).await,
            Err(HsmError::KeyNotFound { .. })
        ));
        assert!(matches!(
            t.encrypt(a, b"x".to_vec(), b"gone".to_vec()).await,
            Err(HsmError::KeyNotFound { .. })
        ));
        t.encrypt(b, b"x".to_vec(), b"still here".to_vec()).await?;
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn user_pin_changes_take_effect_on_the_token() -> TestResult {
    let _shared = shared();
    let label = fresh_token("pin", "first-pin");
    rt().block_on(async {
        let t = open(&label);
        t.set_user_pin("first-pin", "second-pin").await?;
        assert!(matches!(
            t.check_user_pin("first-pin").await,
            Err(HsmError::LoginRejected { .. })
        ));
        t.check_user_pin("second-pin").await?;
        Ok(())
    })
}

#[test]
fn a_failing_token_refuses_every_call_until_healed() -> TestResult {
    let _shared = shared();
    let label = fresh_token("fault", "pin-7777");
    rt().block_on(async {
        let t = open(&label);
        t.login("pin-7777").await?;
        t.set_failing(true);
        let calls = t.stats().calls();
        assert!(matches!(t.random(8).await, Err(HsmError::InjectedFault)));
        assert_eq!(t.stats().calls(), calls, "no PKCS#11 call while failing");
        t.set_failing(false);
        assert_eq!(t.random(8).await?.len(), 8);
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn missing_module_is_a_clear_error() {
    let _shared = shared();
    let e = cks_sim::hsm::module::locate(Some(std::path::Path::new("/nonexistent/libpkcs11.so")))
        .expect_err("must fail");
    let msg = e.to_string();
    assert!(
        msg.contains("apt-get install softhsm2") && msg.contains("CKS_SIM_PKCS11_MODULE"),
        "{msg}"
    );
    let _ = (UserType::User, AuthPin::from(String::new()));
}

#[test]
fn one_gcm_call_stays_within_16_kib() -> TestResult {
    let _shared = shared();
    use cks_sim::hsm::token::{GCM_MAX_CALL, GCM_TAG_LEN};
    let label = fresh_token("gcm16k", "user-pin-8");
    rt().block_on(async {
        let t = open(&label);
        t.login("user-pin-8").await?;
        let id = *uuid::Uuid::new_v4().as_bytes();
        t.generate_aes_key("gcm16k", id).await?;
        let most = vec![7u8; GCM_MAX_CALL - GCM_TAG_LEN];
        let s = t.encrypt(id, vec![], most.clone()).await?;
        assert_eq!(s.ciphertext.len(), GCM_MAX_CALL);
        assert_eq!(t.decrypt(id, s.iv, vec![], s.ciphertext).await?, most);
        let calls = t.stats().calls();
        let too_big = t.encrypt(id, vec![], vec![7u8; GCM_MAX_CALL]).await;
        assert!(
            matches!(too_big, Err(HsmError::Pkcs11 { .. })),
            "{too_big:?}"
        );
        let too_big = t
            .decrypt(id, vec![0; 12], vec![], vec![7u8; GCM_MAX_CALL + 1])
            .await;
        assert!(
            matches!(too_big, Err(HsmError::CiphertextRejected { .. })),
            "{too_big:?}"
        );
        assert_eq!(t.stats().calls(), calls, "refused before any PKCS#11 call");
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn tokens_are_found_by_label_and_under_mapped_labels() -> TestResult {
    let _shared = shared();
    let label = fresh_token("mapped", "user-pin-9");
    let aliased = module().clone().with_token_labels(
        [("cluster-aliased".to_string(), label.clone())]
            .into_iter()
            .collect(),
    );
    assert_eq!(
        aliased.find_token("cluster-aliased")?,
        module().find_token(&label)?
    );
    assert!(matches!(
        module().find_token("cluster-aliased"),
        Err(HsmError::TokenNotFound { .. })
    ));
    rt().block_on(async {
        let t = Arc::new(Token::open(&aliased, "cluster-aliased", 2)?);
        t.login("user-pin-9").await?;
        assert_eq!(t.random(16).await?.len(), 16);
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn a_key_id_is_never_created_twice() -> TestResult {
    let _shared = shared();
    let label = fresh_token("dupid", "user-pin-10");
    rt().block_on(async {
        let t = open(&label);
        t.login("user-pin-10").await?;
        let id = *uuid::Uuid::new_v4().as_bytes();
        t.generate_aes_key("dup-1", id).await?;
        let again = t.generate_aes_key("dup-2", id).await;
        assert!(matches!(again, Err(HsmError::Pkcs11 { .. })), "{again:?}");
        let listed = t.list_objects().await?;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].label, "dup-1");
        t.logout().await?;
        Ok(())
    })
}

#[test]
fn a_module_reinitialization_is_survived_by_logged_in_tokens() -> TestResult {
    let _exclusive = MODULE_USE.write().unwrap_or_else(|p| p.into_inner());
    let label = fresh_token("reinit", "user-pin-8");
    rt().block_on(async {
        let t = open(&label);
        t.login("user-pin-8").await?;
        let id = *uuid::Uuid::new_v4().as_bytes();
        t.generate_aes_key("reinit-key", id).await?;
        let sealed = t.encrypt(id, b"a".to_vec(), b"before".to_vec()).await?;
        let fp = t.fingerprint(id).await?;
        // What the pool does after CKR_DEVICE_ERROR: C_Finalize + C_Initialize.
        let g = module().generation();
        let g2 = tokio::task::spawn_blocking(move || module().reinitialize(g)).await??;
        assert_eq!(g2, g + 1);
        // A second caller that saw the same failure does not re-initialize again.
        assert_eq!(module().reinitialize(g)?, g2);
        // The token logs in again by itself, finds its key (handles are rebuilt) and works.
        let back = t
            .decrypt(id, sealed.iv, b"a".to_vec(), sealed.ciphertext)
            .await?;
        assert_eq!(back, b"before");
        assert_eq!(t.fingerprint(id).await?, fp);
        // The copies died with the old instance; the key got a new one on this use.
        assert_eq!(t.indexed_keys(), 1);
        assert!(t.session_copies() <= 1);
        assert!(t.is_logged_in());
        t.logout().await?;
        Ok(())
    })
}

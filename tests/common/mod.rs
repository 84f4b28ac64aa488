//! Shared test helpers: SoftHSM2 set-up for in-process PKCS#11 tests, and a real `cks-sim
//! serve` child process for HTTP tests.
#![allow(dead_code)]

use cks_sim::hsm::{Module, Provisioner};
use std::path::PathBuf;
use std::sync::OnceLock;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The module the tests use: `CKS_SIM_PKCS11_MODULE`, else SoftHSM2's usual places. A missing
/// module fails the test with the reason (CI installs SoftHSM2, so nothing is skipped there).
pub fn module_path() -> PathBuf {
    let explicit = std::env::var_os("CKS_SIM_PKCS11_MODULE").map(PathBuf::from);
    match cks_sim::hsm::module::locate(explicit.as_deref()) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Make sure the SoftHSM2 config named by `SOFTHSM2_CONF` (set by `.cargo/config.toml` or the
/// caller) exists, with its token directory.
pub fn softhsm_conf() -> PathBuf {
    let conf = PathBuf::from(
        std::env::var_os("SOFTHSM2_CONF").expect("SOFTHSM2_CONF is set by .cargo/config.toml or scripts/test"),
    );
    if !conf.exists() {
        let dir = conf.parent().expect("conf has a parent").to_path_buf();
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).expect("create token dir");
        std::fs::write(&conf, cks_sim::config::softhsm_conf_text(&tokens)).expect("write softhsm2.conf");
    }
    conf
}

/// The module, loaded once per test binary.
pub fn module() -> &'static Module {
    static M: OnceLock<Module> = OnceLock::new();
    M.get_or_init(|| {
        softhsm_conf();
        let path = module_path();
        eprintln!("PKCS#11 module under test: {}", path.display());
        Module::load(&path).expect("load PKCS#11 module")
    })
}

/// A fresh token with a unique label, provisioned with `user_pin`. Returns its label.
pub fn fresh_token(prefix: &str, user_pin: &str) -> String {
    let label = format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    Provisioner::SoftToken
        .ensure_token(module(), &label, "so-pin-1234", user_pin)
        .expect("provision token");
    label
}

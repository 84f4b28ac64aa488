//! Token provisioning: the only place that calls `C_InitToken` and `C_InitPIN`, and the only
//! code that knows a soft token by name.
//!
//! Two things differ between PKCS#11 modules, and both live here:
//!
//! - [`SoftToken`]: how a soft token is *configured* — SoftHSM2 reads `softhsm2.conf` named by
//!   `SOFTHSM2_CONF` (a token directory; a fresh empty slot appears after every
//!   `C_InitToken`), kryoptic reads a TOML file named by `KRYOPTIC_CONF` (a fixed list of
//!   slots, one SQLite file each). The simulator writes that file into its data directory so
//!   its tokens never mix with anyone else's.
//! - [`Provisioner`]: whether tokens are *created*. Soft tokens get a token per simulated
//!   cluster with standard calls only (`C_InitToken` on an uninitialized slot, then the slot
//!   is found again by label, `C_Login` as SO, `C_InitPIN`). The AWS CloudHSM library has no
//!   `C_InitToken`/`C_InitPIN`/`C_SetPIN`: with it the provisioner is `Provisioner::None`,
//!   tokens must already exist and users are managed outside.
//!
//! Everything else in `hsm/` is plain PKCS#11 and behaves the same on every module.

use super::error::{HsmError, HsmOp};
use super::module::Module;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};

/// How tokens come to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioner {
    /// A soft token (SoftHSM2, kryoptic, or any module that implements `C_InitToken`): create
    /// tokens on free slots with `C_InitToken` and `C_InitPIN`.
    SoftToken,
    /// A real HSM: tokens exist already; no provisioning call is ever made.
    None,
}

impl Provisioner {
    /// Create a token labelled `label` on a free slot, with `so_pin` and `user_pin`, unless a
    /// token with that label exists already (then nothing is done). Blocking.
    pub fn ensure_token(
        self,
        module: &Module,
        label: &str,
        so_pin: &str,
        user_pin: &str,
    ) -> Result<(), HsmError> {
        let _one_at_a_time = module.provisioning();
        let _gate = module.enter();
        match module.find_token(label) {
            Ok(_) => return Ok(()),
            Err(HsmError::TokenNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        if self == Provisioner::None {
            return Err(HsmError::TokenNotFound {
                label: label.to_string(),
            });
        }
        let ctx = module.ctx();
        let cls = |e| HsmError::classify(HsmOp::Provision, e);
        let free = ctx
            .get_all_slots()
            .map_err(cls)?
            .into_iter()
            .find(|s| ctx.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
            .ok_or_else(|| HsmError::NoFreeSlot {
                label: label.to_string(),
            })?;
        let so = AuthPin::from(so_pin.to_string());
        ctx.init_token(free, &so, module.real_label(label))
            .map_err(cls)?;
        // Some modules (SoftHSM2) move the new token to a new slot number: find it by label.
        let slot = module.find_token(label)?;
        let session = ctx.open_rw_session(slot).map_err(cls)?;
        session.login(UserType::So, Some(&so)).map_err(cls)?;
        session
            .init_pin(&AuthPin::from(user_pin.to_string()))
            .map_err(cls)?;
        session.logout().map_err(cls)?;
        Ok(())
    }
}

/// Slots in a kryoptic configuration written by the simulator when nothing else is configured:
/// one token per cluster plus the internal token.
pub const DEFAULT_SLOTS: u32 = 32;

/// The first line of every token configuration the simulator writes; a file without it is
/// someone else's and is never overwritten.
pub const CONF_MARKER: &str = "# Written by cks-sim";

/// A soft token whose configuration the simulator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftToken {
    /// SoftHSM2: `softhsm2.conf`, named by `SOFTHSM2_CONF`.
    SoftHsm2,
    /// kryoptic: `kryoptic.conf` (TOML), named by `KRYOPTIC_CONF`.
    Kryoptic,
}

impl SoftToken {
    /// The soft token behind a module path: SoftHSM2 when no path is given (the module is then
    /// found at SoftHSM2's usual places) or the file name says `softhsm`, kryoptic when it says
    /// `kryoptic`; `None` for any other module (its environment is used as given).
    pub fn detect(module: Option<&Path>) -> Option<SoftToken> {
        let Some(path) = module else {
            return Some(SoftToken::SoftHsm2);
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if name.contains("softhsm") {
            Some(SoftToken::SoftHsm2)
        } else if name.contains("kryoptic") {
            Some(SoftToken::Kryoptic)
        } else {
            None
        }
    }

    /// The soft token a provisioner name designates (`softhsm`, `kryoptic`).
    pub fn from_name(name: &str) -> Option<SoftToken> {
        match name {
            "softhsm" | "softhsm2" => Some(SoftToken::SoftHsm2),
            "kryoptic" => Some(SoftToken::Kryoptic),
            _ => None,
        }
    }

    /// A short name for logs and test output.
    pub fn name(self) -> &'static str {
        match self {
            SoftToken::SoftHsm2 => "SoftHSM2",
            SoftToken::Kryoptic => "kryoptic",
        }
    }

    /// The environment variable the module reads its configuration file from.
    pub fn env_var(self) -> &'static str {
        match self {
            SoftToken::SoftHsm2 => "SOFTHSM2_CONF",
            SoftToken::Kryoptic => "KRYOPTIC_CONF",
        }
    }

    /// The configuration file's name inside the data directory.
    pub fn conf_file_name(self) -> &'static str {
        match self {
            SoftToken::SoftHsm2 => "softhsm2.conf",
            SoftToken::Kryoptic => "kryoptic.conf",
        }
    }

    /// The directory that holds the tokens, inside the data directory.
    pub fn storage_dir(self, data_dir: &Path) -> PathBuf {
        data_dir.join("tokens")
    }

    /// Write the configuration file `conf` unless it exists: tokens in `tokens/` beside it
    /// (created), `slots` slots for kryoptic. For in-process runs (tests, benchmarks) whose
    /// environment already names `conf`.
    pub fn write_conf_if_missing(self, conf: &Path, slots: u32) -> std::io::Result<()> {
        if conf.exists() {
            return Ok(());
        }
        let tokens = conf
            .parent()
            .ok_or_else(|| std::io::Error::other(format!("{}: no directory", conf.display())))?
            .join("tokens");
        std::fs::create_dir_all(&tokens)?;
        std::fs::write(conf, self.conf_text(&tokens.canonicalize()?, slots))
    }

    /// The configuration text for tokens stored in `storage` (an absolute path; kryoptic gets
    /// `slots` slots, `slot-NN.sql` each; SoftHSM2 adds a slot after every `C_InitToken`).
    pub fn conf_text(self, storage: &Path, slots: u32) -> String {
        match self {
            SoftToken::SoftHsm2 => format!(
                "{CONF_MARKER}: tokens of this simulator live in its data directory.\n\
                 directories.tokendir = {}\n\
                 objectstore.backend = file\n\
                 log.level = ERROR\n\
                 slots.removable = false\n",
                storage.display()
            ),
            SoftToken::Kryoptic => {
                let mut s = format!(
                    "{CONF_MARKER}: tokens of this simulator live in its data directory,\n\
                     # one SQLite file per slot; a cluster's token takes a free slot.\n"
                );
                for n in 0..slots {
                    let db = storage.join(format!("slot-{n:02}.sql"));
                    s.push_str(&format!(
                        "\n[[slots]]\nslot = {n}\ndescription = \"cks-sim slot {n}\"\n\
                         dbtype = \"sqlite\"\ndbargs = {}\n",
                        toml_string(&db.to_string_lossy())
                    ));
                }
                s
            }
        }
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_tokens_are_detected_by_module_file_name() {
        assert_eq!(SoftToken::detect(None), Some(SoftToken::SoftHsm2));
        assert_eq!(
            SoftToken::detect(Some(Path::new("/usr/lib/softhsm/libsofthsm2.so"))),
            Some(SoftToken::SoftHsm2)
        );
        assert_eq!(
            SoftToken::detect(Some(Path::new("/x/target/release/libkryoptic_pkcs11.so"))),
            Some(SoftToken::Kryoptic)
        );
        assert_eq!(
            SoftToken::detect(Some(Path::new("/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"))),
            None
        );
    }

    #[test]
    fn kryoptic_conf_lists_every_slot_with_its_database() {
        let text = SoftToken::Kryoptic.conf_text(Path::new("/d/a \"b\"/tokens"), 3);
        assert!(text.starts_with(CONF_MARKER));
        assert_eq!(text.matches("[[slots]]").count(), 3);
        assert!(text.contains("slot = 2\n"));
        let parsed: toml::Table = toml::from_str(&text).expect("valid TOML");
        let slots = parsed["slots"].as_array().expect("[[slots]]");
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[2]["slot"].as_integer(), Some(2));
        assert_eq!(slots[2]["dbtype"].as_str(), Some("sqlite"));
        assert_eq!(
            slots[2]["dbargs"].as_str(),
            Some("/d/a \"b\"/tokens/slot-02.sql")
        );
    }
}

//! `Config`: from a TOML file, then environment, then command-line flags; validated once.

use crate::hsm::SoftToken;
use crate::hsm::provision::DEFAULT_SLOTS;
use crate::store::Durability;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration problem, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said (names the key).
        reason: String,
    },
    /// A field has a bad value.
    #[error("config field `{field}`: {reason}")]
    Invalid {
        /// The field, e.g. `server.listen`.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// The default `[hsm] thread_nice`: the tokens' PKCS#11 threads one large step above the
/// async workers (weight about 9× under Linux's scheduler), when the process may raise it.
pub const DEFAULT_THREAD_NICE: i32 = -10;

/// The file format (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `[server]`
    pub server: ServerSection,
    /// `[identity]`
    pub identity: IdentitySection,
    /// `[hsm]`
    pub hsm: HsmSection,
    /// `[simulation]`
    pub simulation: SimulationSection,
    /// `[auth]`
    pub auth: AuthSection,
    /// `[quotas]`
    pub quotas: QuotasSection,
    /// `[[cluster]]`: seed tables in the configuration file itself (see
    /// [`crate::cluster::seed::SeedFile`]); the file is then also the seed.
    pub cluster: Vec<toml::Value>,
    /// `[[key_store]]`: as `cluster`, for the KMS layer's seed.
    pub key_store: Vec<toml::Value>,
    /// `[[key]]`: as `cluster`, for the KMS layer's seed.
    pub key: Vec<toml::Value>,
}

impl FileConfig {
    /// Whether the file carries seed tables (`[[cluster]]`, `[[key_store]]`, `[[key]]`).
    pub fn has_seed_tables(&self) -> bool {
        !(self.cluster.is_empty() && self.key_store.is_empty() && self.key.is_empty())
    }
}

/// `[auth]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// `"sigv4"` (the default) or `"none"`.
    pub mode: Option<String>,
    /// `[[auth.credentials]]`, added to the default `test`/`test` pair.
    pub credentials: Vec<CredentialEntry>,
}

/// One `[[auth.credentials]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialEntry {
    /// Access key ID.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Its 12-digit account (default: `[identity] account`).
    pub account: Option<String>,
    /// The IAM user it belongs to (default: the account's root user).
    pub user: Option<String>,
}

/// `[quotas]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasSection {
    /// `"off"` (the default) or `"aws"`.
    pub mode: Option<String>,
    /// Every rate multiplied by this (default 1).
    pub scale: Option<f64>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Listen address.
    pub listen: Option<String>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Largest accepted request body.
    pub max_body_bytes: Option<usize>,
    /// Accept a listen address that is not loopback (the control door has no access control).
    pub allow_remote: Option<bool>,
    /// Most client connections open at once; more wait to be accepted.
    pub max_connections: Option<usize>,
    /// Most bytes of request bodies held at once, over every request.
    pub max_body_bytes_in_flight: Option<usize>,
    /// A connection that sends nothing for this long is closed (slow or idle clients).
    pub idle_timeout_ms: Option<u64>,
    /// A request not answered within this long gets an internal error (its work, if it
    /// changes anything, still completes: see the server's notes on cancellation).
    pub request_timeout_ms: Option<u64>,
    /// When a change counts as saved: `full` (default; synced to disk, survives a power loss)
    /// or `normal` (survives a crashed process, not a power loss).
    pub durability: Option<String>,
}

/// `[identity]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySection {
    /// 12-digit account.
    pub account: Option<String>,
    /// Region.
    pub region: Option<String>,
}

/// `[hsm]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HsmSection {
    /// PKCS#11 module path.
    pub module: Option<PathBuf>,
    /// `softhsm`, `kryoptic` or `soft` (create a token per cluster; the soft token whose
    /// configuration is written is named, or found from the module's file name), or `none`
    /// (a real HSM: tokens exist already, nothing is provisioned or configured).
    pub provisioner: Option<String>,
    /// The soft token's configuration file; default `<data-dir>/softhsm2.conf` or
    /// `<data-dir>/kryoptic.conf`. (`softhsm_conf` is the old name.)
    #[serde(alias = "softhsm_conf")]
    pub token_conf: Option<PathBuf>,
    /// Slots in a kryoptic configuration (one token per cluster, plus the internal token).
    pub slots: Option<u32>,
    /// PIN template; `{user}` and `{password}` are replaced.
    pub pin_template: Option<String>,
    /// Sessions per token.
    pub max_sessions: Option<usize>,
    /// Added to the process's nice value in the tokens' PKCS#11 threads (default -10: a
    /// higher priority, if the process may take one; 0 leaves them alone).
    pub thread_nice: Option<i32>,
    /// Label of the token holding AWS_KMS-origin keys.
    pub internal_token_label: Option<String>,
    /// PIN of that token (provisioned with it on a soft token).
    pub internal_token_pin: Option<String>,
    /// The user the PIN template names for that token (default `kms`).
    pub internal_token_user: Option<String>,
}

/// `[simulation]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationSection {
    /// Delay before an asynchronous connect completes, in milliseconds.
    pub connect_delay_ms: Option<u64>,
    /// Delay before an asynchronous disconnect completes, in milliseconds.
    pub disconnect_delay_ms: Option<u64>,
    /// A seed file applied at start-up.
    pub seed: Option<PathBuf>,
    /// Whether to create the default cluster on first start (default true).
    pub default_seed: Option<bool>,
}

/// Overrides from the command line (and environment, through clap's `env`).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`
    pub config_file: Option<PathBuf>,
    /// `--listen`
    pub listen: Option<String>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--module` / `CKS_SIM_PKCS11_MODULE`
    pub module: Option<PathBuf>,
    /// `--seed`
    pub seed: Option<PathBuf>,
    /// `--connect-delay-ms`
    pub connect_delay_ms: Option<u64>,
    /// `--no-default-seed`
    pub no_default_seed: bool,
    /// `--allow-remote`
    pub allow_remote: bool,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// `[identity]`: the default account and region.
fn identity(s: &IdentitySection) -> Result<(String, String), ConfigError> {
    let account = s.account.clone().unwrap_or_else(|| "111122223333".into());
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "identity.account",
            format!("{account:?} is not a 12-digit AWS account ID"),
        ));
    }
    let region = s.region.clone().unwrap_or_else(|| "us-east-1".into());
    let region_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    if region.is_empty() || !region.bytes().all(region_char) {
        return Err(invalid(
            "identity.region",
            format!("{region:?} is not a region name like us-east-1"),
        ));
    }
    Ok((account, region))
}

/// The provisioner and, for a soft token, its kind and configuration file.
fn provisioning(
    hsm: &HsmSection,
    module: Option<&Path>,
    data_dir: &Path,
) -> Result<(ProvisionerKind, Option<(SoftToken, PathBuf)>), ConfigError> {
    let (provisioner, soft) = match hsm.provisioner.as_deref() {
        None | Some("soft") => (ProvisionerKind::SoftToken, SoftToken::detect(module)),
        Some(name @ ("softhsm" | "softhsm2" | "kryoptic")) => {
            (ProvisionerKind::SoftToken, SoftToken::from_name(name))
        }
        Some("none") => (ProvisionerKind::None, None),
        Some(other) => {
            return Err(invalid(
                "hsm.provisioner",
                format!(
                    "{other:?}: use \"softhsm\" or \"kryoptic\" (soft tokens, found from \
                     the module's name when left out) or \"none\" (a real HSM)"
                ),
            ));
        }
    };
    let soft_token = soft.map(|k| {
        let conf = hsm
            .token_conf
            .clone()
            .unwrap_or_else(|| data_dir.join(k.conf_file_name()));
        (k, conf)
    });
    Ok((provisioner, soft_token))
}

/// The `[hsm]` numbers and names, each checked.
struct HsmNumbers {
    slots: u32,
    pin_template: String,
    max_sessions: usize,
    thread_nice: i32,
    internal_token_label: String,
}

fn hsm_numbers(hsm: &HsmSection) -> Result<HsmNumbers, ConfigError> {
    let slots = hsm.slots.unwrap_or(DEFAULT_SLOTS);
    if !(2..=1024).contains(&slots) {
        return Err(invalid(
            "hsm.slots",
            "must be between 2 and 1024 (one per cluster, plus the internal token)",
        ));
    }
    let pin_template = hsm
        .pin_template
        .clone()
        .unwrap_or_else(|| "{password}".into());
    if !pin_template.contains("{password}") {
        return Err(invalid(
            "hsm.pin_template",
            "must contain {password} (e.g. \"{password}\" or \"{user}:{password}\")",
        ));
    }
    let max_sessions = hsm.max_sessions.unwrap_or(4);
    if !(1..=1024).contains(&max_sessions) {
        return Err(invalid("hsm.max_sessions", "must be between 1 and 1024"));
    }
    let thread_nice = hsm.thread_nice.unwrap_or(DEFAULT_THREAD_NICE);
    if !(-20..=19).contains(&thread_nice) {
        return Err(invalid(
            "hsm.thread_nice",
            "must be between -20 and 19 (added to the process's nice value; 0 leaves the \
             PKCS#11 threads at the process's priority)",
        ));
    }
    let internal_token_label = hsm
        .internal_token_label
        .clone()
        .unwrap_or_else(|| "kms-internal".into());
    if internal_token_label.is_empty() || internal_token_label.len() > 32 {
        return Err(invalid(
            "hsm.internal_token_label",
            "must be 1 to 32 characters (a PKCS#11 token label)",
        ));
    }
    Ok(HsmNumbers {
        slots,
        pin_template,
        max_sessions,
        thread_nice,
        internal_token_label,
    })
}

/// Limits on what clients can hold of the process at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most client connections open at once.
    pub max_connections: usize,
    /// Most bytes of request bodies held at once (a body past it is throttled).
    pub max_body_bytes_in_flight: usize,
    /// Idle time after which a connection is closed.
    pub idle_timeout: std::time::Duration,
    /// Time after which a request is answered with an internal error.
    pub request_timeout: std::time::Duration,
}

impl Limits {
    fn from_section(s: &ServerSection, max_body_bytes: usize) -> Result<Self, ConfigError> {
        let max_body_bytes_in_flight = s.max_body_bytes_in_flight.unwrap_or(64 << 20);
        if max_body_bytes_in_flight < max_body_bytes {
            return Err(ConfigError::Invalid {
                field: "server.max_body_bytes_in_flight",
                reason: format!("must be at least server.max_body_bytes ({max_body_bytes})"),
            });
        }
        let max_connections = s.max_connections.unwrap_or(1024);
        if max_connections == 0 {
            return Err(ConfigError::Invalid {
                field: "server.max_connections",
                reason: "must be at least 1".into(),
            });
        }
        let ms = |v: Option<u64>, default: u64, field: &'static str| match v.unwrap_or(default) {
            0 => Err(ConfigError::Invalid {
                field,
                reason: "must be at least 1 (milliseconds)".into(),
            }),
            n => Ok(std::time::Duration::from_millis(n)),
        };
        Ok(Limits {
            max_connections,
            max_body_bytes_in_flight,
            idle_timeout: ms(s.idle_timeout_ms, 120_000, "server.idle_timeout_ms")?,
            request_timeout: ms(s.request_timeout_ms, 60_000, "server.request_timeout_ms")?,
        })
    }
}

/// The listen address, refused when it is not loopback unless remote access is allowed: the
/// control door answers with kmsuser's password and has no access control.
fn listen_address(s: &ServerSection, ov: &Overrides) -> Result<SocketAddr, ConfigError> {
    let text = ov
        .listen
        .clone()
        .or_else(|| s.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:4599".into());
    let listen: SocketAddr = text.parse().map_err(|e| ConfigError::Invalid {
        field: "server.listen",
        reason: format!("{text:?} is not an address like 127.0.0.1:4599 ({e})"),
    })?;
    let allowed = ov.allow_remote || s.allow_remote == Some(true);
    if !(listen.ip().is_loopback() || allowed) {
        return Err(ConfigError::Invalid {
            field: "server.listen",
            reason: format!(
                "{listen} is reachable from other machines, and the control door (/_sim) hands \
                 out kmsuser's password without access control: listen on a loopback address \
                 (127.0.0.1), or pass --allow-remote ([server] allow_remote = true) on a \
                 network you trust"
            ),
        });
    }
    Ok(listen)
}

/// `[server] durability`.
fn durability(s: &ServerSection) -> Result<Durability, ConfigError> {
    match s.durability.as_deref() {
        None => Ok(Durability::Full),
        Some(v) => Durability::parse(v).ok_or_else(|| ConfigError::Invalid {
            field: "server.durability",
            reason: format!("{v:?} is not one of \"full\" or \"normal\""),
        }),
    }
}

/// Which token provisioner to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionerKind {
    /// A soft token (SoftHSM2, kryoptic): a token per cluster, with `C_InitToken`.
    SoftToken,
    /// Real HSM: no provisioning.
    None,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory (created if missing).
    pub data_dir: PathBuf,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Limits that keep a flood of clients from exhausting the process.
    pub limits: Limits,
    /// When a commit counts as saved.
    pub durability: Durability,
    /// Whether the local doors (`/_sim`, the console) answer requests addressed to any host
    /// name (`--allow-remote`); otherwise only to loopback names, against DNS rebinding.
    pub allow_remote: bool,
    /// Account ID.
    pub account: String,
    /// Region.
    pub region: String,
    /// Explicit module path (else SoftHSM2's usual places).
    pub module: Option<PathBuf>,
    /// Provisioner.
    pub provisioner: ProvisionerKind,
    /// The soft token whose configuration the simulator writes, and that file. `None` for
    /// another module, or with provisioner `none`: the module's environment is used as given.
    pub soft_token: Option<(SoftToken, PathBuf)>,
    /// Slots in a kryoptic configuration.
    pub slots: u32,
    /// PIN template.
    pub pin_template: String,
    /// Sessions per token.
    pub max_sessions: usize,
    /// Nice value of the tokens' PKCS#11 threads, from the process's.
    pub thread_nice: i32,
    /// Internal token label.
    pub internal_token_label: String,
    /// Internal token PIN (None: generated and kept in the data dir).
    pub internal_token_pin: Option<String>,
    /// The user `{user}` renders for the internal token (default `kms`; on a token a cluster
    /// shares, its `kmsuser`).
    pub internal_token_user: String,
    /// Connect delay.
    pub connect_delay_ms: u64,
    /// Disconnect delay.
    pub disconnect_delay_ms: u64,
    /// Seed file.
    pub seed: Option<PathBuf>,
    /// Create the default cluster on first start.
    pub default_seed: bool,
    /// `[auth]`: signature verification and credentials.
    pub auth: crate::auth::AuthSettings,
    /// `[quotas]`: request-rate quotas.
    pub quotas: crate::auth::quota::QuotaSettings,
}

impl Config {
    /// Build from an optional file plus overrides.
    pub fn load(ov: &Overrides) -> Result<Self, ConfigError> {
        let mut file = match &ov.config_file {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        if file.simulation.seed.is_none() && file.has_seed_tables() {
            file.simulation.seed.clone_from(&ov.config_file);
        }
        Self::from_parts(file, ov)
    }

    /// Validate `file` with `ov` applied on top.
    pub fn from_parts(file: FileConfig, ov: &Overrides) -> Result<Self, ConfigError> {
        let listen = listen_address(&file.server, ov)?;
        let data_dir = ov
            .data_dir
            .clone()
            .or_else(|| file.server.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(".cks-sim"));
        let max_body_bytes = file.server.max_body_bytes.unwrap_or(1 << 20);
        if max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                field: "server.max_body_bytes",
                reason: "must be at least 1024".into(),
            });
        }
        let limits = Limits::from_section(&file.server, max_body_bytes)?;
        let durability = durability(&file.server)?;
        let (account, region) = identity(&file.identity)?;
        let module = ov.module.clone().or_else(|| file.hsm.module.clone());
        let (provisioner, soft_token) = provisioning(&file.hsm, module.as_deref(), &data_dir)?;
        let HsmNumbers {
            slots,
            pin_template,
            max_sessions,
            thread_nice,
            internal_token_label,
        } = hsm_numbers(&file.hsm)?;
        let auth = auth_settings(file.auth, &account)?;
        let quotas = quota_settings(&file.quotas)?;
        Ok(Config {
            listen,
            data_dir,
            max_body_bytes,
            limits,
            durability,
            allow_remote: ov.allow_remote || file.server.allow_remote == Some(true),
            account,
            region,
            module,
            provisioner,
            soft_token,
            slots,
            pin_template,
            max_sessions,
            thread_nice,
            internal_token_label,
            internal_token_pin: file.hsm.internal_token_pin.clone(),
            internal_token_user: file
                .hsm
                .internal_token_user
                .clone()
                .unwrap_or_else(|| "kms".into()),
            connect_delay_ms: ov
                .connect_delay_ms
                .or(file.simulation.connect_delay_ms)
                .unwrap_or(100),
            disconnect_delay_ms: file.simulation.disconnect_delay_ms.unwrap_or(50),
            seed: ov.seed.clone().or(file.simulation.seed),
            default_seed: !ov.no_default_seed && file.simulation.default_seed.unwrap_or(true),
            auth,
            quotas,
        })
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("cks-sim.sqlite")
    }

    /// The directory of the soft tokens' storage.
    pub fn token_dir(&self) -> PathBuf {
        self.data_dir.join("tokens")
    }
}

/// Validate `[quotas]`: the mode, and a scale in (0, 1000].
fn quota_settings(
    section: &QuotasSection,
) -> Result<crate::auth::quota::QuotaSettings, ConfigError> {
    use crate::auth::quota::{QuotaMode, QuotaSettings};
    let mode = match section.mode.as_deref() {
        None | Some("off") => QuotaMode::Off,
        Some("aws") => QuotaMode::Aws,
        Some(other) => {
            return Err(ConfigError::Invalid {
                field: "quotas.mode",
                reason: format!("{other:?}: use \"off\" or \"aws\""),
            });
        }
    };
    let scale = section.scale.unwrap_or(1.0);
    if !(scale > 0.0 && scale <= 1000.0) {
        return Err(ConfigError::Invalid {
            field: "quotas.scale",
            reason: format!("{scale} must be above 0 and at most 1000"),
        });
    }
    Ok(QuotaSettings { mode, scale })
}

/// Validate `[auth]`: the mode, and each credential (a 12-digit account, no access key ID
/// twice). The default `test`/`test` pair maps to `default_account` unless an entry reuses
/// its access key ID.
fn auth_settings(
    section: AuthSection,
    default_account: &str,
) -> Result<crate::auth::AuthSettings, ConfigError> {
    use crate::auth::{AuthMode, AuthSettings, Credential, DEFAULT_ACCESS_KEY, DEFAULT_SECRET};
    let mode = match section.mode.as_deref() {
        None | Some("sigv4") => AuthMode::SigV4,
        Some("none") => AuthMode::None,
        Some(other) => {
            return Err(ConfigError::Invalid {
                field: "auth.mode",
                reason: format!("{other:?}: use \"sigv4\" or \"none\""),
            });
        }
    };
    let mut credentials: Vec<Credential> = Vec::new();
    for c in section.credentials {
        let account = c.account.unwrap_or_else(|| default_account.to_string());
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid {
                field: "auth.credentials.account",
                reason: format!("{account:?} is not a 12-digit AWS account ID"),
            });
        }
        if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
            return Err(ConfigError::Invalid {
                field: "auth.credentials",
                reason: "access_key_id and secret_access_key must not be empty".into(),
            });
        }
        if credentials
            .iter()
            .any(|e| e.access_key_id == c.access_key_id)
        {
            return Err(ConfigError::Invalid {
                field: "auth.credentials.access_key_id",
                reason: format!("{:?} is configured twice", c.access_key_id),
            });
        }
        credentials.push(Credential {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            account,
            user: c.user,
        });
    }
    if !credentials
        .iter()
        .any(|c| c.access_key_id == DEFAULT_ACCESS_KEY)
    {
        credentials.push(Credential {
            access_key_id: DEFAULT_ACCESS_KEY.into(),
            secret_access_key: DEFAULT_SECRET.into(),
            account: default_account.to_string(),
            user: None,
        });
    }
    Ok(AuthSettings { mode, credentials })
}

fn read_file(p: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
        path: p.display().to_string(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: p.display().to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `from_parts` says of a file with this text, which it must refuse.
    fn refusal(text: &str) -> String {
        let f: FileConfig = toml::from_str(text).unwrap();
        Config::from_parts(f, &Overrides::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::from_parts(FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:4599");
        assert_eq!(c.account, "111122223333");
        let (kind, conf) = c.soft_token.expect("SoftHSM2 by default");
        assert_eq!(kind, SoftToken::SoftHsm2);
        assert_eq!(conf, PathBuf::from(".cks-sim/softhsm2.conf"));
    }

    #[test]
    fn durability_is_full_unless_the_file_says_normal() {
        let c = Config::from_parts(FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(c.durability, Durability::Full);
        let f: FileConfig = toml::from_str("[server]\ndurability = \"normal\"\n").unwrap();
        let c = Config::from_parts(f, &Overrides::default()).unwrap();
        assert_eq!(c.durability, Durability::Normal);
    }

    #[test]
    fn an_unknown_durability_is_refused_with_the_values_it_may_take() {
        let e = refusal("[server]\ndurability = \"off\"\n");
        assert!(e.contains("server.durability"), "{e}");
        assert!(
            e.contains("\"off\" is not one of \"full\" or \"normal\""),
            "{e}"
        );
    }

    #[test]
    fn the_module_decides_the_soft_token_and_none_configures_nothing() {
        let ov = Overrides {
            module: Some("/t/libkryoptic_pkcs11.so".into()),
            data_dir: Some("/d".into()),
            ..Default::default()
        };
        let c = Config::from_parts(FileConfig::default(), &ov).unwrap();
        assert_eq!(
            c.soft_token,
            Some((SoftToken::Kryoptic, PathBuf::from("/d/kryoptic.conf")))
        );
        assert_eq!(c.provisioner, ProvisionerKind::SoftToken);
        let f: FileConfig = toml::from_str(
            "[hsm]\nmodule = \"/opt/cloudhsm/lib/libcloudhsm_pkcs11.so\"\nprovisioner = \"none\"\n\
             pin_template = \"{user}:{password}\"",
        )
        .unwrap();
        let c = Config::from_parts(f, &Overrides::default()).unwrap();
        assert_eq!(c.provisioner, ProvisionerKind::None);
        assert_eq!(c.soft_token, None);
        let e = refusal("[hsm]\nprovisioner = \"nope\"");
        assert!(e.contains("hsm.provisioner"), "{e}");
    }

    #[test]
    fn the_sample_real_hsm_config_is_valid() {
        let text = include_str!("../config.real-hsm.example.toml");
        let f: FileConfig = toml::from_str(text).expect("config.real-hsm.example.toml parses");
        let c = Config::from_parts(f, &Overrides::default()).expect("and validates");
        assert_eq!(c.provisioner, ProvisionerKind::None);
        assert_eq!(c.soft_token, None);
        assert!(c.pin_template.contains("{user}:{password}"));
        assert_eq!(c.internal_token_user, "kmsuser");
        let seed = crate::cluster::seed::parse_seed(text).expect("its [[cluster]] is a seed");
        let token = seed.cluster[0].token.as_ref().expect("a bound cluster");
        assert_eq!(token.label, c.internal_token_label);
        assert!(!token.rotate_password);
    }

    /// The TOML blocks of a Markdown file.
    fn toml_blocks(md: &str) -> Vec<&str> {
        md.split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect()
    }

    #[test]
    fn the_documented_configurations_are_valid_and_give_the_defaults_they_state() {
        let docs = toml_blocks(include_str!("../docs/configuration.md"));
        let readme = toml_blocks(include_str!("../README.md"));
        assert_eq!((docs.len(), readme.len()), (1, 1));
        for text in docs.iter().chain(&readme) {
            let f: FileConfig = toml::from_str(text).expect("a documented config parses");
            Config::from_parts(f, &Overrides::default()).expect("and validates");
        }
        let f: FileConfig = toml::from_str(docs[0]).unwrap();
        let documented = Config::from_parts(f, &Overrides::default()).unwrap();
        let defaults = Config::from_parts(FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(documented.listen, defaults.listen);
        assert_eq!(documented.limits, defaults.limits);
        assert_eq!(documented.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(documented.connect_delay_ms, defaults.connect_delay_ms);
    }

    #[test]
    fn a_config_file_with_cluster_tables_is_its_own_seed() {
        let dir = std::env::temp_dir().join(format!("cks-sim-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let with = dir.join("with.toml");
        std::fs::write(&with, "[[cluster]]\n[cluster.token]\nlabel = \"lab\"\n").unwrap();
        let without = dir.join("without.toml");
        std::fs::write(&without, "[simulation]\ndefault_seed = false\n").unwrap();
        let load = |p: &PathBuf| {
            Config::load(&Overrides {
                config_file: Some(p.clone()),
                ..Default::default()
            })
            .unwrap()
        };
        assert_eq!(load(&with).seed, Some(with.clone()));
        assert_eq!(load(&without).seed, None);
        assert_eq!(load(&without).internal_token_user, "kms");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        let e = refusal("[identity]\naccount = \"12\"");
        assert!(e.contains("identity.account"), "{e}");
        let ov = Overrides {
            listen: Some("nope".into()),
            ..Default::default()
        };
        let e = Config::from_parts(FileConfig::default(), &ov)
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.listen"), "{e}");
        let e = toml::from_str::<FileConfig>("[server]\nlisten_addr = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_addr"), "{e}");
        let e = refusal("[hsm]\nthread_nice = -25");
        assert!(e.contains("hsm.thread_nice"), "{e}");
    }

    #[test]
    fn auth_keeps_the_default_pair_and_names_bad_credentials() {
        let c = Config::from_parts(FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(c.auth.mode, crate::auth::AuthMode::SigV4);
        assert_eq!(c.quotas.mode, crate::auth::quota::QuotaMode::Off);
        assert_eq!(c.quotas.scale, 1.0);
        let test = c
            .auth
            .credentials
            .iter()
            .find(|k| k.access_key_id == "test");
        assert_eq!(test.map(|k| k.account.as_str()), Some("111122223333"));
        let f: FileConfig = toml::from_str(
            "[auth]\nmode = \"none\"\n[[auth.credentials]]\naccess_key_id = \"A\"\n\
             secret_access_key = \"s\"\naccount = \"444455556666\"\n[quotas]\nmode = \"aws\"",
        )
        .unwrap();
        let c = Config::from_parts(f, &Overrides::default()).unwrap();
        assert_eq!(c.auth.mode, crate::auth::AuthMode::None);
        assert_eq!(c.auth.credentials.len(), 2);
        assert_eq!(c.quotas.mode, crate::auth::quota::QuotaMode::Aws);
        assert!(refusal("[quotas]\nscale = 0.0").contains("quotas.scale"));
        let e = refusal(
            "[[auth.credentials]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\naccount = \"1\"",
        );
        assert!(e.contains("auth.credentials.account"), "{e}");
        let twice = "[[auth.credentials]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\n";
        let e = refusal(&format!("{twice}{twice}"));
        assert!(e.contains("configured twice"), "{e}");
        assert!(refusal("[auth]\nmode = \"hmac\"").contains("auth.mode"));
        assert!(refusal("[quotas]\nmode = \"on\"").contains("quotas.mode"));
    }

    #[test]
    fn token_threads_ask_for_a_higher_priority_unless_told_not_to() {
        let c = Config::from_parts(FileConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(c.thread_nice, DEFAULT_THREAD_NICE);
        assert!(c.thread_nice < 0);
        let f: FileConfig = toml::from_str("[hsm]\nthread_nice = 0").unwrap();
        let c = Config::from_parts(f, &Overrides::default()).unwrap();
        assert_eq!(c.thread_nice, 0);
    }
}

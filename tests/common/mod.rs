//! Shared test helpers: the PKCS#11 module under test (one switch: `CKS_SIM_PKCS11_MODULE`,
//! SoftHSM2 when unset) and its soft token configuration for in-process tests, and a real
//! `cks-sim serve` child process for HTTP tests.
#![allow(dead_code)]

use cks_sim::hsm::provision::CONF_MARKER;
use cks_sim::hsm::{Module, Provisioner, SoftToken};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

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

/// The soft token behind the module under test (`None`: another module, used with the
/// environment as given).
pub fn soft_token() -> Option<SoftToken> {
    SoftToken::detect(
        std::env::var_os("CKS_SIM_PKCS11_MODULE")
            .map(PathBuf::from)
            .as_deref(),
    )
}

/// Slots in the kryoptic configuration of an in-process test run: every test takes a fresh
/// token, and kryoptic's slots are fixed.
const TEST_SLOTS: u32 = 64;

/// Make sure the soft token configuration the in-process module reads exists: the file named
/// by `SOFTHSM2_CONF` (set by `.cargo/config.toml`) or `KRYOPTIC_CONF` (set by the caller, e.g.
/// scripts/test). A kryoptic configuration is rewritten for each test process with empty slots
/// in `run-<pid>/` beside it (older runs' slots are removed), unless the file is not one the
/// simulator wrote: then it is used as it is.
pub fn soft_token_conf() -> Option<PathBuf> {
    let kind = soft_token()?;
    let var = kind.env_var();
    let conf = PathBuf::from(std::env::var_os(var).unwrap_or_else(|| {
        panic!(
            "{var} must name the {} configuration file of in-process tests \
             (.cargo/config.toml sets SOFTHSM2_CONF; scripts/test sets KRYOPTIC_CONF)",
            kind.name()
        )
    }));
    let dir = conf.parent().expect("conf has a parent").to_path_buf();
    match kind {
        SoftToken::SoftHsm2 => kind
            .write_conf_if_missing(&conf, 0)
            .expect("write softhsm2.conf"),
        SoftToken::Kryoptic => {
            let old = std::fs::read_to_string(&conf).ok();
            if old.is_none_or(|t| t.starts_with(CONF_MARKER)) {
                std::fs::create_dir_all(&dir).expect("create the kryoptic test dir");
                remove_stale_runs(&dir);
                let run = dir.join(format!("run-{}", std::process::id()));
                std::fs::create_dir_all(&run).expect("create the slot dir");
                let run = run.canonicalize().expect("slot dir");
                std::fs::write(&conf, kind.conf_text(&run, TEST_SLOTS))
                    .expect("write kryoptic.conf");
            }
        }
    }
    Some(conf)
}

/// Remove `run-<pid>` slot directories of test processes that are gone.
fn remove_stale_runs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("run-")
            && pid.bytes().all(|b| b.is_ascii_digit())
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Say which module a test process uses, once, on stderr directly (not captured by the test
/// harness, so every run's output names its module).
pub fn announce_module(how: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let path = module_path();
        let kind = soft_token().map_or("no soft token configuration", SoftToken::name);
        let _ = writeln!(
            std::io::stderr(),
            "PKCS#11 module under test: {} ({kind}; {how})",
            path.display()
        );
    });
}

/// The module, loaded once per test binary.
pub fn module() -> &'static Module {
    static M: OnceLock<Module> = OnceLock::new();
    M.get_or_init(|| {
        let conf = soft_token_conf();
        announce_module(&match &conf {
            Some(c) => format!("in process, configuration {}", c.display()),
            None => "in process".into(),
        });
        let m = Module::load(&module_path()).expect("load PKCS#11 module");
        let _ = writeln!(std::io::stderr(), "PKCS#11 library: {}", m.description());
        m
    })
}

/// Held while this test process creates a token, and while it runs another process that loads
/// the module (`pkcs11-tool`): kryoptic's `C_Initialize` fails (`CKR_USER_PIN_NOT_INITIALIZED`,
/// `CKR_TOKEN_NOT_PRESENT`) in a process that starts while another is inside `C_InitToken`
/// on one of the slots they share.
pub fn token_creation_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fresh token with a unique label, provisioned with `user_pin`. Returns its label.
pub fn fresh_token(prefix: &str, user_pin: &str) -> String {
    let label = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let _creating = token_creation_lock();
    // An in-process simulator (`cks_sim::testing`) of another test may take the module's one
    // free slot at the same moment; the module then shows a new one: try again.
    let mut attempts = 0;
    loop {
        match Provisioner::SoftToken.ensure_token(module(), &label, "so-pin-1234", user_pin) {
            Ok(()) => return label,
            Err(cks_sim::hsm::HsmError::NoFreeSlot { .. }) if attempts < 50 => attempts += 1,
            Err(e) => panic!("provision token {label}: {e:?}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// How long an SDK call of a test may take, retries included: longer than the server's own
/// request timeout (60 s, then `KMSInternalException`), so that a server that hangs fails the
/// test that called it instead of holding the run up.
fn operation_deadline() -> aws_sdk_kms::config::timeout::TimeoutConfig {
    aws_sdk_kms::config::timeout::TimeoutConfig::builder()
        .operation_timeout(std::time::Duration::from_secs(90))
        .build()
}

/// A real `cks-sim serve` child process on `127.0.0.1:0` with its own data dir.
pub struct Sim {
    pub dir: tempfile::TempDir,
    pub child: Option<std::process::Child>,
    pub endpoint: String,
    pub extra_args: Vec<String>,
    /// Where the server's log (stderr) goes, appended across restarts; `None`: inherited.
    pub log_file: Option<PathBuf>,
}

pub fn deadline_poll<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::yield_now();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

impl Sim {
    /// Start a simulator on a fresh data dir (with the default seed: one ACTIVE cluster).
    pub fn start() -> Sim {
        Self::start_with(&[])
    }

    /// Start with extra `serve` arguments.
    pub fn start_with(args: &[&str]) -> Sim {
        Self::start_configured(None, args)
    }

    /// Start with this TOML as the `--config` file (written beside the data directory).
    pub fn start_with_config(toml: &str) -> Sim {
        Self::start_configured(Some(toml), &[])
    }

    fn start_configured(config: Option<&str>, args: &[&str]) -> Sim {
        let dir = tempfile::Builder::new()
            .prefix("cks-sim-test-")
            .tempdir()
            .expect("tempdir");
        let mut extra_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if let Some(text) = config {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, text).expect("write config.toml");
            extra_args.push("--config".into());
            extra_args.push(path.display().to_string());
        }
        let mut sim = Sim {
            dir,
            child: None,
            endpoint: String::new(),
            extra_args,
            log_file: None,
        };
        sim.spawn();
        sim
    }

    /// Start with the log at debug level written to `server.log` in the test directory
    /// (read it with [`Sim::log`]).
    pub fn start_logged(args: &[&str]) -> Sim {
        let dir = tempfile::Builder::new()
            .prefix("cks-sim-test-")
            .tempdir()
            .expect("tempdir");
        let log = dir.path().join("server.log");
        let mut sim = Sim {
            dir,
            child: None,
            endpoint: String::new(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            log_file: Some(log),
        };
        sim.spawn();
        sim
    }

    /// Everything the server has logged so far (for a [`Sim::start_logged`] server).
    pub fn log(&self) -> String {
        let path = self.log_file.as_ref().expect("a logged server");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Wait (with a deadline) for the server to exit by itself, e.g. at a failpoint; returns
    /// its exit status.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let status = deadline_poll("the server to exit", secs, || {
            child.try_wait().ok().flatten()
        });
        self.child = None;
        status
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Whether the server uses this process's soft token configuration (`provisioner =
    /// "none"`: tokens made by the tests) instead of one in its data directory.
    fn shares_token_conf(&self) -> bool {
        let config = self
            .extra_args
            .iter()
            .skip_while(|a| *a != "--config")
            .nth(1);
        config
            .and_then(|c| std::fs::read_to_string(c).ok())
            .is_some_and(|text| text.contains("provisioner = \"none\""))
    }

    fn spawn(&mut self) {
        announce_module("served by cks-sim serve, configuration in its data directory");
        // A server that loads the module on this process's token configuration must not
        // start while another test is inside C_InitToken (see `token_creation_lock`).
        let _creating = self.shares_token_conf().then(token_creation_lock);
        let port_file = self.dir.path().join("port");
        let _ = std::fs::remove_file(&port_file);
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--connect-delay-ms", "0"])
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--port-file")
            .arg(&port_file)
            .args(&self.extra_args)
            .env("CKS_SIM_LOG", self.log_level())
            .stdin(std::process::Stdio::null())
            .stderr(self.log_sink())
            .spawn()
            .expect("spawn cks-sim serve");
        self.child = Some(child);
        let child = self.child.as_mut().expect("running");
        let within = std::time::Duration::from_secs(60);
        let addr = cks_sim::testing::wait_for_port_file(child, &port_file, within)
            .unwrap_or_else(|e| panic!("{e}"));
        self.endpoint = format!("http://{addr}");
    }

    fn log_level(&self) -> String {
        match self.log_file {
            Some(_) => "debug".into(),
            None => std::env::var("CKS_SIM_LOG").unwrap_or_else(|_| "warn".into()),
        }
    }

    fn log_sink(&self) -> std::process::Stdio {
        match &self.log_file {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(std::process::Stdio::from)
                .expect("open the server log"),
            None => std::process::Stdio::inherit(),
        }
    }

    /// Stop with SIGTERM (by PID) and wait.
    ///
    /// The server exits within about 4 s of SIGTERM (it stops serving after at most 800 ms
    /// and exits 3 s later if closing down is stuck); one still running 60 s later is killed
    /// and the test fails, rather than the run hanging.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM")
            .success();
        assert!(ok, "kill -TERM failed");
        let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if std::time::Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not exit within 60 s of SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Kill with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop and start again on the same data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Start again after a kill.
    pub fn respawn(&mut self) {
        self.spawn();
    }

    /// The environment variable and file that point another process (e.g. `pkcs11-tool`) at
    /// this server's soft token configuration, for the module under test: `SOFTHSM2_CONF` or
    /// `KRYOPTIC_CONF` in the data directory. `None` for a module the simulator does not
    /// configure.
    pub fn token_conf_env(&self) -> Option<(&'static str, PathBuf)> {
        soft_token().map(|k| (k.env_var(), self.data_dir().join(k.conf_file_name())))
    }

    /// Run OpenSC's `pkcs11-tool` on this simulator's token `label`, logged in with `pin`, as
    /// a customer would; panics with its stderr if it fails.
    pub fn pkcs11_tool(&self, label: &str, pin: &str, args: &[&str]) -> String {
        let out = run_ok(
            std::process::Command::new("pkcs11-tool")
                .arg("--module")
                .arg(module_path())
                .args(["--token-label", label, "--login", "--pin", pin])
                .args(args)
                .envs(self.token_conf_env()),
            &format!("pkcs11-tool (package opensc) {args:?}"),
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn control(&self) -> cks_sim::client::ControlClient {
        cks_sim::client::ControlClient::new(&self.endpoint)
    }

    /// A KMS client signing with the default `test`/`test` pair in us-east-1.
    pub fn kms(&self) -> aws_sdk_kms::Client {
        self.kms_as("test", "test", "us-east-1", None)
    }

    /// A KMS client signing with `key`/`secret` for `region`; `retry` replaces the SDK's
    /// default retry configuration.
    pub fn kms_as(
        &self,
        key: &str,
        secret: &str,
        region: &str,
        retry: Option<aws_sdk_kms::config::retry::RetryConfig>,
    ) -> aws_sdk_kms::Client {
        let mut conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                key.to_string(),
                secret.to_string(),
                None,
                None,
                "tests",
            ))
            .endpoint_url(&self.endpoint)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .timeout_config(operation_deadline());
        if let Some(r) = retry {
            conf = conf.retry_config(r);
        }
        aws_sdk_kms::Client::from_conf(conf.build())
    }

    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.data_dir().join(file))
            .unwrap_or_else(|e| panic!("read {file}: {e}"))
    }

    pub fn kmsuser_password(&self) -> String {
        self.read("kmsuser-password").trim().to_string()
    }

    pub fn admin_password(&self) -> String {
        self.read("admin-password").trim().to_string()
    }

    pub fn trust_anchor(&self) -> String {
        self.read("customerCA.crt")
    }

    /// An independent view of a token: `cks-sim inspect-token` in its own process (its own
    /// PKCS#11 module instance), not the server's bookkeeping.
    pub fn inspect_token(&self, label: &str, pin: &str) -> Vec<serde_json::Value> {
        let out = self.inspect_token_output(label, pin);
        assert!(
            out.status.success(),
            "inspect-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect-token JSON");
        v["objects"].as_array().cloned().unwrap_or_default()
    }

    /// `cks-sim inspect-token` with `pin`, in its own process, whatever it answers. Loading
    /// the module in a new process while a server creates a token can fail (kryoptic's
    /// `C_Initialize` answers `CKR_USER_PIN_NOT_INITIALIZED` then): that says nothing of the
    /// token asked about, so it is tried again until a deadline.
    pub fn inspect_token_output(&self, label: &str, pin: &str) -> std::process::Output {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_cks-sim"))
                .arg("inspect-token")
                .arg("--data-dir")
                .arg(self.data_dir())
                .args(["--label", label, "--pin", pin])
                .output()
                .expect("run inspect-token");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let module_busy = stderr.starts_with("cks-sim: cannot load PKCS#11 module");
            if !module_busy || std::time::Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The error code of a failed SDK call (panics if the call succeeded).
pub fn code<T: std::fmt::Debug, E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, E>,
) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .map(str::to_string)
            .unwrap_or_else(|| format!("no code: {e:?}")),
    }
}

/// Run a future on a fresh multi-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The ID of the default seeded cluster.
pub async fn default_cluster(sim: &Sim) -> String {
    let id = sim.read("default-cluster-id").trim().to_string();
    let v = sim
        .control()
        .call("GET", &format!("/_sim/clusters/{id}"), None)
        .await
        .expect("default cluster");
    assert_eq!(v["state"], "ACTIVE");
    id
}

/// Poll DescribeCustomKeyStores until the store is in `state` (with a deadline).
pub async fn wait_state(
    kms: &aws_sdk_kms::Client,
    id: &str,
    state: &str,
) -> aws_sdk_kms::types::CustomKeyStoresListEntry {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = kms
            .describe_custom_key_stores()
            .custom_key_store_id(id)
            .send()
            .await
            .expect("describe");
        let e = out.custom_key_stores()[0].clone();
        if e.connection_state().map(|s| s.as_str()) == Some(state) {
            return e;
        }
        assert!(
            std::time::Instant::now() < end,
            "store {id} never reached {state}; last {e:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Create a store on `cluster` (trust anchor of the default cluster) and return its ID.
pub async fn create_store(sim: &Sim, name: &str, cluster: &str, password: &str) -> String {
    create_store_with(sim, name, cluster, &sim.trust_anchor(), password).await
}

/// Create a store with an explicit trust anchor.
pub async fn create_store_with(
    sim: &Sim,
    name: &str,
    cluster: &str,
    anchor: &str,
    password: &str,
) -> String {
    sim.kms()
        .create_custom_key_store()
        .custom_key_store_name(name)
        .cloud_hsm_cluster_id(cluster)
        .trust_anchor_certificate(anchor)
        .key_store_password(password)
        .send()
        .await
        .expect("create store")
        .custom_key_store_id()
        .expect("id")
        .to_string()
}

/// Create, connect and wait for CONNECTED on the default cluster.
pub async fn connected_store(sim: &Sim, name: &str) -> (String, String) {
    let cluster = default_cluster(sim).await;
    let id = create_store(sim, name, &cluster, &sim.kmsuser_password()).await;
    ask_connect(sim, &id).await;
    wait_state(&sim.kms(), &id, "CONNECTED").await;
    (id, cluster)
}

/// Ask to connect `store` (the answer comes before the connection is made).
pub async fn ask_connect(sim: &Sim, store: &str) {
    sim.kms()
        .connect_custom_key_store()
        .custom_key_store_id(store)
        .send()
        .await
        .expect("connect");
}

/// Disconnect and wait for DISCONNECTED.
pub async fn disconnect(sim: &Sim, id: &str) {
    sim.kms()
        .disconnect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("disconnect");
    wait_state(&sim.kms(), id, "DISCONNECTED").await;
}

/// Create a key in a store.
pub async fn cloudhsm_key(sim: &Sim, store: &str) -> String {
    sim.kms()
        .create_key()
        .origin(aws_sdk_kms::types::OriginType::AwsCloudhsm)
        .custom_key_store_id(store)
        .send()
        .await
        .expect("create key")
        .key_metadata()
        .expect("metadata")
        .key_id()
        .to_string()
}

/// Run `cmd` to completion and return its stdout; panics with `what` and its stderr if it
/// cannot start or fails.
fn run_ok(cmd: &mut std::process::Command, what: &str) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The cluster token's user PIN, as the server records it.
pub async fn token_pin(sim: &Sim, cluster: &str) -> String {
    sim.control()
        .call("GET", &format!("/_sim/clusters/{cluster}/token/pin"), None)
        .await
        .expect("pin")["user_pin"]
        .as_str()
        .expect("pin text")
        .to_string()
}

/// Every key ID, through ListKeys.
pub async fn all_key_ids(sim: &Sim) -> std::collections::BTreeSet<String> {
    sim.kms()
        .list_keys()
        .limit(1000)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|k| k.expect("list keys").key_id().expect("id").to_string())
        .collect()
}

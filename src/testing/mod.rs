//! cks-sim as a library for your own test suites (cargo feature `testing`).
//!
//! [`Simulator::start`] runs a complete simulator inside the test process: the KMS API, the
//! cloudhsmv2 API and the `/_sim` control door on `127.0.0.1:0`, a temporary data directory
//! (SQLite file, the default cluster's files) and real PKCS#11 tokens on SoftHSM2. It hands
//! out the endpoint, the default cluster's ID, `kmsuser`'s password and trust anchor, and a
//! ready [`aws_sdk_kms::Config`]; dropping it stops the server, waits for its threads and
//! removes the data directory.
//!
//! [`model`] is the reference model of key stores, keys and clusters that cks-sim's own
//! state-machine test checks the server against, with its proptest strategies, so that your
//! code can be property-tested against cks-sim the same way.
//!
//! The soft token reads its configuration from the environment when the module loads, and a
//! library cannot change a running process's environment: set `SOFTHSM2_CONF` for your tests
//! (for example in `.cargo/config.toml`, `[env] SOFTHSM2_CONF = { value =
//! "target/softhsm-test/softhsm2.conf", relative = true }`). A missing file is written, with
//! its tokens in a `tokens/` directory beside it. Every simulator's tokens have labels of
//! their own there (the cluster IDs and a fresh internal token label), so simulators started
//! in parallel never share a token.
//!
//! ```
//! let sim = cks_sim::testing::Simulator::start().expect("start cks-sim");
//! assert!(sim.endpoint().starts_with("http://127.0.0.1:"));
//! assert!(sim.cluster_id().starts_with("cluster-"));
//! let kms = aws_sdk_kms::Client::from_conf(sim.kms_config());
//! # drop(kms);
//! ```

pub mod model;

use crate::app::App;
use crate::config::{Config, Overrides};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Why a [`Simulator`] could not start.
#[derive(Debug, thiserror::Error)]
#[error("cks-sim (testing): {0}")]
pub struct StartError(String);

impl StartError {
    fn new(what: impl std::fmt::Display) -> Self {
        StartError(what.to_string())
    }
}

/// A simulator running in this process; stopped (threads joined, data directory removed)
/// when dropped.
pub struct Simulator {
    endpoint: String,
    cluster_id: String,
    kmsuser_password: String,
    admin_password: String,
    trust_anchor: String,
    /// Dropped last: the data directory goes once the server has stopped.
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Start a simulator with the default settings (one `ACTIVE` default cluster with a
    /// `kmsuser`, key stores that connect without delay) and wait until it serves.
    pub fn start() -> Result<Simulator, StartError> {
        Self::start_with_config("")
    }

    /// Start with `toml` as the configuration file (the format of `cks-sim serve --config`,
    /// e.g. `"[auth]\nmode = \"sigv4\"\n"`); the data directory, the listen address and the
    /// internal token's label are the simulator's own, and connects take no time unless
    /// `[simulation] connect_delay_ms` says otherwise.
    pub fn start_with_config(toml: &str) -> Result<Simulator, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("cks-sim-testing-")
            .tempdir()
            .map_err(StartError::new)?;
        let config = config(dir.path(), toml)?;
        ensure_soft_token_conf(&config)?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("cks-sim-testing".into())
            .spawn(move || serve(config, ready_tx, stop_rx))
            .map_err(StartError::new)?;
        let mut sim = Simulator {
            endpoint: String::new(),
            cluster_id: String::new(),
            kmsuser_password: String::new(),
            admin_password: String::new(),
            trust_anchor: String::new(),
            dir,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        // On an error, dropping `sim` joins the thread (which has ended or is told to stop).
        let addr = ready_rx
            .recv()
            .map_err(|_| StartError::new("the simulator's thread ended before serving"))??;
        sim.endpoint = format!("http://{addr}");
        let data = sim.dir.path().join("data");
        sim.cluster_id = read(&data, "default-cluster-id")?;
        sim.kmsuser_password = read(&data, "kmsuser-password")?;
        sim.admin_password = read(&data, "admin-password")?;
        sim.trust_anchor = std::fs::read_to_string(data.join("customerCA.crt"))
            .map_err(|e| StartError::new(format!("read customerCA.crt: {e}")))?;
        Ok(sim)
    }

    /// Where the simulator listens, e.g. `http://127.0.0.1:41234` (KMS, cloudhsmv2 and the
    /// `/_sim` control door alike).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The default cluster's ID: `ACTIVE`, two HSMs, an admin and a `kmsuser` crypto user.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// `kmsuser`'s password: what `CreateCustomKeyStore` takes as `KeyStorePassword`.
    pub fn kmsuser_password(&self) -> &str {
        &self.kmsuser_password
    }

    /// The default cluster's admin password.
    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// The default cluster's trust anchor (PEM): `CreateCustomKeyStore`'s
    /// `TrustAnchorCertificate`.
    pub fn trust_anchor(&self) -> &str {
        &self.trust_anchor
    }

    /// The data directory (SQLite file, the default cluster's files); removed on drop.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// An `aws-sdk-kms` configuration for this simulator: its endpoint, region `us-east-1`,
    /// static credentials `test`/`test` and a plain HTTP client.
    pub fn kms_config(&self) -> aws_sdk_kms::Config {
        use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "cks-sim"))
            .endpoint_url(&self.endpoint)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build()
    }
}

impl Drop for Simulator {
    /// Stop serving (connections still open a second later are dropped), end the runtime and
    /// the token threads, then remove the data directory.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The configuration: `toml`, then this simulator's data directory, listen address, internal
/// token label and (unless `toml` sets it) no connect delay.
fn config(dir: &Path, toml: &str) -> Result<Config, StartError> {
    let mut file: crate::config::FileConfig = toml::from_str(toml).map_err(StartError::new)?;
    let short = &uuid::Uuid::new_v4().simple().to_string()[..12];
    file.hsm.internal_token_label = Some(format!("testing-internal-{short}"));
    file.simulation.connect_delay_ms.get_or_insert(0);
    if file.simulation.seed.is_none() && file.has_seed_tables() {
        // As `serve --config`: seed tables in the configuration are its seed file.
        let path = dir.join("config.toml");
        std::fs::write(&path, toml).map_err(StartError::new)?;
        file.simulation.seed = Some(path);
    }
    let ov = Overrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.join("data")),
        ..Overrides::default()
    };
    Config::from_parts(file, &ov).map_err(StartError::new)
}

/// The soft token's configuration file must be named by its environment variable in this
/// process; a missing file is written (tokens in `tokens/` beside it).
fn ensure_soft_token_conf(config: &Config) -> Result<(), StartError> {
    let Some((kind, _)) = &config.soft_token else {
        return Ok(());
    };
    let var = kind.env_var();
    let conf = std::env::var_os(var).ok_or_else(|| {
        StartError::new(format!(
            "{var} is not set: name a {} configuration file for the test process (e.g. in \
             .cargo/config.toml's [env]); a missing file is written",
            kind.name()
        ))
    })?;
    kind.write_conf_if_missing(Path::new(&conf), config.slots)
        .map_err(|e| StartError::new(format!("write {}: {e}", Path::new(&conf).display())))
}

fn read(data: &Path, file: &str) -> Result<String, StartError> {
    std::fs::read_to_string(data.join(file))
        .map(|s| s.trim().to_string())
        .map_err(|e| StartError::new(format!("read {file}: {e}")))
}

type Ready = std::sync::mpsc::Sender<Result<SocketAddr, StartError>>;

/// The simulator's thread: a runtime of its own, serving until `stop`; dropping the runtime
/// at the end cancels the background tasks and with them the last handle on the app (its
/// token threads are joined when it goes).
fn serve(config: Config, ready: Ready, stop: tokio::sync::oneshot::Receiver<()>) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cks-sim-testing-rt")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(StartError::new(e)));
            return;
        }
    };
    rt.block_on(async move {
        let listener = match open(config).await {
            Ok(x) => x,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let (app, listener, addr) = listener;
        let _ = ready.send(Ok(addr));
        let stopped = async move {
            let _ = stop.await;
        };
        if let Err(e) = crate::server::run(listener, app, stopped).await {
            tracing::error!(error = %e, "the testing simulator's server failed");
        }
    });
    drop(rt);
}

/// Open the app, bring it to life and bind the listener.
async fn open(
    config: Config,
) -> Result<(Arc<App>, tokio::net::TcpListener, SocketAddr), StartError> {
    let listen = config.listen;
    let app = open_app(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(StartError::new)?;
    let addr = listener.local_addr().map_err(StartError::new)?;
    Ok((app, listener, addr))
}

/// Open the app and bring it to life (tokens, seeds, key stores), without a server.
async fn open_app(config: Config) -> Result<Arc<App>, StartError> {
    let app = tokio::task::spawn_blocking(move || App::open(config))
        .await
        .map_err(StartError::new)?
        .map_err(StartError::new)?;
    crate::start(&app).await.map_err(StartError::new)?;
    Ok(app)
}

/// For this crate's unit tests of rules that need real tokens and a real SQLite file: an app
/// started on `toml` with its data directory in `dir`, served by nobody.
#[cfg(test)]
pub(crate) async fn started_app(dir: &Path, toml: &str) -> Arc<App> {
    let config = config(dir, toml).expect("a valid configuration");
    ensure_soft_token_conf(&config).expect("the soft token's configuration");
    open_app(config).await.expect("the app starts")
}

/// Wait until a `cks-sim serve --port-file PATH` child has written its address to `path`
/// (it does once start-up is complete: tokens open, key stores resumed), polling every 2 ms
/// for at most `within`; fails at once if the child exits first. Shared by this crate's HTTP
/// tests and its load bench, which run the server as a child process.
pub fn wait_for_port_file(
    child: &mut std::process::Child,
    path: &Path,
    within: std::time::Duration,
) -> Result<SocketAddr, StartError> {
    let end = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().map_err(StartError::new)? {
            return Err(StartError::new(format!(
                "cks-sim serve exited early: {status}"
            )));
        }
        if let Some(text) = std::fs::read_to_string(path)
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            return text
                .trim()
                .parse()
                .map_err(|e| StartError::new(format!("{}: {e}: {text:?}", path.display())));
        }
        if std::time::Instant::now() > end {
            return Err(StartError::new(format!(
                "cks-sim serve did not write its port file within {} s",
                within.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

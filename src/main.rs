//! The `cks-sim` command: `serve`, and thin clients of the control door.

use cks_sim::app::App;
use cks_sim::client::{ClientError, ControlClient};
use cks_sim::config::{Config, Overrides};
use cks_sim::hsm::SoftToken;
use cks_sim::hsm::provision::DEFAULT_SLOTS;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc for the server's own allocations: under load most buffers are allocated on one
/// thread and freed on another (request bodies, PKCS#11 results), which glibc's per-thread
/// arenas serve with a contended lock; measured by `scripts/bench` (README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A simulator of AWS KMS CloudHSM key stores, with key material on a real PKCS#11 token.
#[derive(Parser)]
#[command(name = "cks-sim", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the simulator (KMS API, cloudhsmv2 API and the /_sim control door on one port).
    Serve(ServeArgs),
    /// Show or move the simulated clock.
    Clock {
        #[command(flatten)]
        c: ClientArgs,
        #[command(subcommand)]
        cmd: ClockCmd,
    },
    /// Inspect simulated clusters.
    Cluster {
        #[command(flatten)]
        c: ClientArgs,
        #[command(subcommand)]
        cmd: ClusterCmd,
    },
    /// Manage a cluster's users (what the CloudHSM CLI does).
    User {
        #[command(flatten)]
        c: ClientArgs,
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Inject or clear a cluster fault.
    Fault {
        #[command(flatten)]
        c: ClientArgs,
        /// The cluster.
        #[arg(long)]
        cluster_id: String,
        /// network-down, subnet-deleted, subnet-exhausted, cluster-deleted, token-failing,
        /// internal-error, hsm-down, user-mfa, user-partial-coverage.
        fault: String,
        /// The subnet, HSM or user the fault applies to.
        #[arg(long)]
        target: Option<String>,
        /// Clear the fault instead of injecting it.
        #[arg(long)]
        clear: bool,
    },
    /// Look at a cluster's token through the simulator.
    Token {
        #[command(flatten)]
        c: ClientArgs,
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Read a token directly, in this process, without the server: an independent view
    /// (labels, ids and material fingerprints of every object).
    InspectToken(InspectArgs),
    /// The CloudHSM CLI's commands over a simulated cluster (also: this binary invoked
    /// through a link named `cloudhsm-cli`). See `cks-sim cloudhsm-cli --help`.
    #[command(name = "cloudhsm-cli", disable_help_flag = true)]
    CloudhsmCli {
        /// The CloudHSM CLI command line.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Args, Clone)]
struct ClientArgs {
    /// The simulator's endpoint.
    #[arg(
        long,
        env = "CKS_SIM_ENDPOINT",
        default_value = "http://127.0.0.1:4599",
        global = true
    )]
    endpoint: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Args)]
struct ServeArgs {
    /// A TOML configuration file.
    #[arg(long, env = "CKS_SIM_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address (port 0 picks a free port; see --port-file).
    #[arg(long, env = "CKS_SIM_LISTEN")]
    listen: Option<String>,
    /// Data directory: SQLite file, soft token configuration and tokens.
    #[arg(long, env = "CKS_SIM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PKCS#11 module path (default: SoftHSM2 from its usual places).
    #[arg(long, env = "CKS_SIM_PKCS11_MODULE")]
    module: Option<PathBuf>,
    /// A seed file (clusters, HSMs, users) applied at start-up.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Delay of asynchronous connects, in milliseconds.
    #[arg(long)]
    connect_delay_ms: Option<u64>,
    /// Do not create the default cluster on first start.
    #[arg(long)]
    no_default_seed: bool,
    /// Write the bound address (host:port) to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Allow a listen address that is not loopback. The control door (/_sim) has no access
    /// control and hands out kmsuser's password: use only on a network you trust.
    #[arg(long)]
    allow_remote: bool,
}

#[derive(Subcommand)]
enum ClockCmd {
    /// Show the simulated time.
    Show,
    /// Move the clock forward, e.g. `30d`, `12h`, `90m`, `45s`.
    Advance {
        /// The duration.
        by: String,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// List clusters.
    List,
    /// Show one cluster.
    Show {
        /// The cluster.
        cluster_id: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// List users.
    List {
        #[arg(long)]
        cluster_id: String,
    },
    /// Create a user.
    Create {
        #[arg(long)]
        cluster_id: String,
        #[arg(long)]
        username: String,
        /// admin or crypto-user.
        #[arg(long)]
        role: String,
        /// The password (or env CKS_SIM_PASSWORD, or --password-file; never needed on the command line).
        #[arg(long, env = "CKS_SIM_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Read the password from this file's first line (`-`: standard input).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Delete a user.
    Delete {
        #[arg(long)]
        cluster_id: String,
        #[arg(long)]
        username: String,
    },
    /// Change a password (your own, or anyone's as an admin).
    ChangePassword {
        #[arg(long)]
        cluster_id: String,
        #[arg(long)]
        username: String,
        /// The new password (or env CKS_SIM_NEW_PASSWORD, or --new-password-file; never needed on the command line).
        #[arg(long, env = "CKS_SIM_NEW_PASSWORD", hide_env_values = true)]
        new_password: Option<String>,
        /// Read the new password from this file's first line (`-`: standard input).
        #[arg(long)]
        new_password_file: Option<PathBuf>,
        /// Who authorises the change (the user itself or an admin).
        #[arg(long)]
        auth_user: String,
        /// The authorising user's password (or env CKS_SIM_AUTH_PASSWORD, or --auth-password-file; never needed on the command line).
        #[arg(long, env = "CKS_SIM_AUTH_PASSWORD", hide_env_values = true)]
        auth_password: Option<String>,
        /// Read the authorising user's password from this file's first line (`-`: standard input).
        #[arg(long)]
        auth_password_file: Option<PathBuf>,
    },
    /// Log a user in (a session outside KMS).
    Login {
        #[arg(long)]
        cluster_id: String,
        #[arg(long)]
        username: String,
        /// The password (or env CKS_SIM_PASSWORD, or --password-file; never needed on the command line).
        #[arg(long, env = "CKS_SIM_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Read the password from this file's first line (`-`: standard input).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Log a user out.
    Logout {
        #[arg(long)]
        cluster_id: String,
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Every object on a cluster's token, marked as a live KMS key's, an orphan, or other.
    Objects {
        #[arg(long)]
        cluster_id: String,
    },
    /// Key material left behind by deleted KMS keys.
    Orphans,
    /// The simulator's use of a cluster's token: PKCS#11 calls, login, the key index and the
    /// session copies of keys.
    Stats {
        #[arg(long)]
        cluster_id: String,
    },
}

#[derive(Args)]
struct InspectArgs {
    /// The simulator's data directory (its SoftHSM2 or kryoptic configuration is used).
    #[arg(long, default_value = ".cks-sim")]
    data_dir: PathBuf,
    /// PKCS#11 module path.
    #[arg(long, env = "CKS_SIM_PKCS11_MODULE")]
    module: Option<PathBuf>,
    /// The token label (a cluster ID).
    #[arg(long)]
    label: String,
    /// The user PIN, kmsuser's current password (or env CKS_SIM_PIN, or --pin-file; never needed on the command line).
    #[arg(long, env = "CKS_SIM_PIN", hide_env_values = true)]
    pin: Option<String>,
    /// Read the user pin, kmsuser's current password from this file's first line (`-`: standard input).
    #[arg(long)]
    pin_file: Option<PathBuf>,
}

/// The control-door request of a user command (its passwords already read).
fn user_request(cmd: UserCmd) -> (&'static str, String, Option<Value>) {
    let users = |cluster: &str| format!("/_sim/clusters/{cluster}/users");
    match cmd {
        UserCmd::List { cluster_id } => ("GET", users(&cluster_id), None),
        UserCmd::Create {
            cluster_id,
            username,
            role,
            password,
            ..
        } => (
            "POST",
            users(&cluster_id),
            Some(json!({"username": username, "role": role, "password": password})),
        ),
        UserCmd::Delete {
            cluster_id,
            username,
        } => ("DELETE", format!("{}/{username}", users(&cluster_id)), None),
        UserCmd::ChangePassword {
            cluster_id,
            username,
            new_password,
            auth_user,
            auth_password,
            ..
        } => (
            "POST",
            format!("{}/{username}/password", users(&cluster_id)),
            Some(
                json!({"new_password": new_password, "auth_user": auth_user, "auth_password": auth_password}),
            ),
        ),
        UserCmd::Login {
            cluster_id,
            username,
            password,
            ..
        } => (
            "POST",
            format!("{}/{username}/login", users(&cluster_id)),
            Some(json!({"password": password})),
        ),
        UserCmd::Logout {
            cluster_id,
            username,
        } => (
            "POST",
            format!("{}/{username}/logout", users(&cluster_id)),
            None,
        ),
    }
}

impl UserCmd {
    /// The same command with every password read from its file, flag or environment variable
    /// into the flag's place.
    fn with_secrets(self) -> Result<Self, String> {
        Ok(match self {
            UserCmd::Create {
                cluster_id,
                username,
                role,
                password,
                password_file,
            } => UserCmd::Create {
                password: Some(secret(password, password_file, "--password")?),
                password_file: None,
                cluster_id,
                username,
                role,
            },
            UserCmd::ChangePassword {
                cluster_id,
                username,
                new_password,
                new_password_file,
                auth_user,
                auth_password,
                auth_password_file,
            } => UserCmd::ChangePassword {
                new_password: Some(secret(new_password, new_password_file, "--new-password")?),
                new_password_file: None,
                auth_password: Some(secret(
                    auth_password,
                    auth_password_file,
                    "--auth-password",
                )?),
                auth_password_file: None,
                cluster_id,
                username,
                auth_user,
            },
            UserCmd::Login {
                cluster_id,
                username,
                password,
                password_file,
            } => UserCmd::Login {
                password: Some(secret(password, password_file, "--password")?),
                password_file: None,
                cluster_id,
                username,
            },
            other => other,
        })
    }
}

/// A password or PIN from the flag or its environment variable (`value`), or from the first
/// line of `file` (`-` for standard input), so it need not show in `ps`.
fn secret(value: Option<String>, file: Option<PathBuf>, flag: &str) -> Result<String, String> {
    match (value, file) {
        (Some(_), Some(_)) => Err(format!("give {flag} or {flag}-file, not both")),
        (Some(v), None) => Ok(v),
        (None, Some(path)) => {
            let text = if path.as_os_str() == "-" {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| format!("cannot read {flag} from standard input: {e}"))?;
                line
            } else {
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {flag}-file {}: {e}", path.display()))?
            };
            Ok(text.lines().next().unwrap_or("").to_string())
        }
        (None, None) => Err(format!(
            "{flag} is required: give it as {flag}-file FILE (or - for standard input), in its \
             environment variable, or as {flag} VALUE"
        )),
    }
}

fn main() -> ExitCode {
    if cks_sim::cli::cloudhsm::invoked_as_cloudhsm_cli() {
        return cks_sim::cli::cloudhsm::main(std::env::args_os().collect());
    }
    let cli = Cli::parse();
    if let Cmd::CloudhsmCli { args } = cli.cmd {
        let argv = std::iter::once(std::ffi::OsString::from("cloudhsm-cli")).chain(args);
        return cks_sim::cli::cloudhsm::main(argv.collect());
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cks-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// A soft token reads its configuration file from an environment variable when the module
/// loads (SoftHSM2 `SOFTHSM2_CONF`, kryoptic `KRYOPTIC_CONF`). The file `conf` keeps the tokens
/// in `<data_dir>/tokens`: it is written when `rewrite` is set (the server: its configuration
/// is the authority) or when it is missing (`inspect-token` reads what the server wrote), and
/// never over a file the simulator did not write. Changing the environment of a running
/// process is unsafe, so when the variable does not already point at `conf` the process
/// re-executes itself with it set (same PID, same arguments).
fn ensure_soft_token_env(
    kind: SoftToken,
    conf: &Path,
    data_dir: &Path,
    slots: u32,
    rewrite: bool,
) -> Result<(), String> {
    let storage = kind.storage_dir(data_dir);
    std::fs::create_dir_all(&storage)
        .map_err(|e| format!("cannot create {}: {e}", storage.display()))?;
    let storage = storage
        .canonicalize()
        .map_err(|e| format!("{}: {e}", storage.display()))?;
    let text = kind.conf_text(&storage, slots);
    let old = std::fs::read_to_string(conf).ok();
    let ours = old
        .as_deref()
        .is_none_or(|t| t.starts_with(cks_sim::hsm::provision::CONF_MARKER));
    if ours && (old.is_none() || rewrite) && old.as_deref() != Some(text.as_str()) {
        std::fs::write(conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    }
    let var = kind.env_var();
    let want = conf
        .canonicalize()
        .map_err(|e| format!("{}: {e}", conf.display()))?;
    let have = std::env::var_os(var).map(PathBuf::from);
    if have.as_deref() == Some(want.as_path()) {
        return Ok(());
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(var, &want)
        .exec();
    Err(format!("cannot re-execute with {var} set: {err}"))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::InspectToken(a) => inspect_token(a),
        // Answered in `main` (it has its own exit status).
        Cmd::CloudhsmCli { .. } => Ok(()),
        Cmd::Clock { c, cmd } => client(&c, |cl| async move {
            match cmd {
                ClockCmd::Show => cl.call("GET", "/_sim/clock", None).await,
                ClockCmd::Advance { by } => {
                    let secs = parse_duration(&by).map_err(ClientError::Other)?;
                    cl.call(
                        "POST",
                        "/_sim/clock/advance",
                        Some(json!({"seconds": secs})),
                    )
                    .await
                }
            }
        }),
        Cmd::Cluster { c, cmd } => client(&c, |cl| async move {
            match cmd {
                ClusterCmd::List => cl.call("GET", "/_sim/clusters", None).await,
                ClusterCmd::Show { cluster_id } => {
                    cl.call("GET", &format!("/_sim/clusters/{cluster_id}"), None)
                        .await
                }
            }
        }),
        Cmd::User { c, cmd } => {
            let (method, path, body) = user_request(cmd.with_secrets()?);
            client(&c, |cl| async move { cl.call(method, &path, body).await })
        }
        Cmd::Fault {
            c,
            cluster_id,
            fault,
            target,
            clear,
        } => client(&c, |cl| async move {
            cl.call(
                "POST",
                &format!("/_sim/clusters/{cluster_id}/faults"),
                Some(json!({"fault": fault, "on": !clear, "target": target})),
            )
            .await
        }),
        Cmd::Token { c, cmd } => client(&c, |cl| async move {
            match cmd {
                TokenCmd::Objects { cluster_id } => {
                    cl.call("GET", &format!("/_sim/clusters/{cluster_id}/token"), None)
                        .await
                }
                TokenCmd::Orphans => cl.call("GET", "/_sim/orphans", None).await,
                TokenCmd::Stats { cluster_id } => {
                    cl.call(
                        "GET",
                        &format!("/_sim/clusters/{cluster_id}/token/stats"),
                        None,
                    )
                    .await
                }
            }
        }),
    }
}

fn client<F, Fut>(c: &ClientArgs, f: F) -> Result<(), String>
where
    F: FnOnce(ControlClient) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ClientError>>,
{
    let rt = runtime()?;
    let cl = ControlClient::new(&c.endpoint);
    let v = rt.block_on(f(cl)).map_err(|e| e.to_string())?;
    match c.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        Output::Text => print_text(&v, 0),
    }
    Ok(())
}

fn print_text(v: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{pad}{k}:");
                        print_text(x, indent + 1);
                    }
                    Value::Null => {}
                    other => println!("{pad}{k}: {}", scalar(other)),
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                match x {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{pad}- [{i}]");
                        print_text(x, indent + 1);
                    }
                    other => println!("{pad}- {}", scalar(other)),
                }
            }
        }
        other => println!("{pad}{}", scalar(other)),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parse `30d`, `12h`, `90m`, `45s` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('d') => (&s[..s.len() - 1], 86_400.0),
        Some('h') => (&s[..s.len() - 1], 3_600.0),
        Some('m') => (&s[..s.len() - 1], 60.0),
        Some('s') => (&s[..s.len() - 1], 1.0),
        _ => (s, 1.0),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30d, 12h, 90m or 45s"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{s:?}: the clock only moves forward"));
    }
    Ok(n * mult)
}

fn serve(a: ServeArgs) -> Result<(), String> {
    let ov = Overrides {
        config_file: a.config,
        listen: a.listen,
        data_dir: a.data_dir,
        module: a.module,
        seed: a.seed,
        connect_delay_ms: a.connect_delay_ms,
        no_default_seed: a.no_default_seed,
        allow_remote: a.allow_remote,
    };
    let config = Config::load(&ov).map_err(|e| e.to_string())?;
    // Everything the server creates (the data directory, SQLite's files, the soft tokens'
    // files) holds secrets or sits beside them: its owner's alone.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
    if let Some((kind, conf)) = &config.soft_token {
        ensure_soft_token_env(*kind, conf, &config.data_dir, config.slots, true)?;
    }
    init_tracing();
    let rt = runtime()?;
    rt.block_on(async move {
        let listen = config.listen;
        let port_file = a.port_file;
        let app = tokio::task::spawn_blocking(move || App::open(config))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        cks_sim::start(&app).await.map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        if let Some(p) = port_file {
            std::fs::write(&p, addr.to_string())
                .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
        tracing::info!(%addr, "cks-sim is serving (KMS, cloudhsmv2, /_sim)");
        eprintln!("cks-sim listening on http://{addr}");
        cks_sim::server::run(listener, Arc::clone(&app), shutdown_signal())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// How long the process may take, from the stop request, to stop serving (at most 800 ms)
/// and close its tokens and tasks.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(4);

/// Exit after `grace` if closing down is still not done by then (a task or a PKCS#11 thread
/// that does not end, or a runtime too busy to end the server): every answered change is
/// already on disk, so nothing is lost, and a stop request must stop the process. A thread
/// of its own, so that it runs whatever the runtime's threads are doing.
fn exit_if_stuck(grace: std::time::Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(grace);
        eprintln!("cks-sim: closing down took over {grace:?}; exiting");
        std::process::exit(0);
    });
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    exit_if_stuck(SHUTDOWN_GRACE);
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CKS_SIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn inspect_token(a: InspectArgs) -> Result<(), String> {
    let pin = secret(a.pin.clone(), a.pin_file.clone(), "--pin")?;
    // The same soft token configuration as the server's (kept as the server wrote it); any
    // other module, and a data directory without one (a server with provisioner "none",
    // whose tokens were made outside it), is used with the environment as given.
    if let Some(kind) = SoftToken::detect(a.module.as_deref()) {
        let conf = a.data_dir.join(kind.conf_file_name());
        if conf.exists() || !a.data_dir.join("cks-sim.sqlite").exists() {
            ensure_soft_token_env(kind, &conf, &a.data_dir, DEFAULT_SLOTS, false)?;
        }
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let path = cks_sim::hsm::module::locate(a.module.as_deref()).map_err(|e| e.to_string())?;
        let module = cks_sim::hsm::Module::load(&path).map_err(|e| e.to_string())?;
        let label = a.label.clone();
        let token = tokio::task::spawn_blocking(move || cks_sim::hsm::Token::open(&module, &label, 1))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let token = Arc::new(token);
        let objects = token
            .with_login(&pin, |t| async move { t.list_objects().await })
            .await
            .map_err(|e| e.to_string())?;
        let list: Vec<Value> = objects
            .into_iter()
            .map(|o| json!({"label": o.label, "id": o.id, "class": o.class, "key_type": o.key_type, "fingerprint": o.fingerprint, "extractable": o.extractable}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({"label": a.label, "objects": list})).unwrap_or_default());
        Ok(())
    })
}

//! The CloudHSM CLI's grammar, as the AWS CloudHSM user guide's command reference documents
//! it (`login`, `logout`, `user …`, `key …`, `cluster activate`, `interactive`).

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A command line of `cloudhsm-cli` (or one line typed at the `aws-cloudhsm >` prompt).
#[derive(Parser, Debug)]
#[command(
    name = "cloudhsm-cli",
    version,
    about = "A CloudHSM CLI-compatible command line over a cks-sim cluster"
)]
pub struct Invocation {
    /// The simulator's endpoint.
    #[arg(
        long,
        env = "CKS_SIM_ENDPOINT",
        default_value = "http://127.0.0.1:4599",
        global = true
    )]
    pub endpoint: String,
    /// The cluster to run the operation against (default: the only cluster, or the one given
    /// when interactive mode was started).
    #[arg(long, global = true)]
    pub cluster_id: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub cmd: Command,
}

/// A role in the cluster.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleArg {
    /// A CryptoUser has the ability to manage and use keys.
    CryptoUser,
    /// An Admin has the ability to manage user accounts.
    Admin,
}

impl RoleArg {
    /// The CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleArg::CryptoUser => "crypto-user",
            RoleArg::Admin => "admin",
        }
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start interactive mode (the `aws-cloudhsm >` prompt).
    Interactive,
    /// Login to your cluster.
    Login {
        /// Username to access the Cluster.
        #[arg(long)]
        username: String,
        /// Role the user has in the Cluster.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Optional: Plaintext user's password. If you do not include this argument you will
        /// be prompted for it.
        #[arg(long)]
        password: Option<String>,
    },
    /// Logout of your cluster.
    Logout,
    /// User management.
    #[command(subcommand)]
    User(UserCmd),
    /// Key management.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Cluster management.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// End the interactive session.
    Quit,
}

/// `--username` and `--role` of another user.
#[derive(Args, Debug, Clone)]
pub struct UserRef {
    /// Username of the user.
    #[arg(long)]
    pub username: String,
    /// Role the user has in the cluster.
    #[arg(long, value_enum)]
    pub role: RoleArg,
}

/// `user …`.
#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// List the users in your cluster.
    List,
    /// Create a new user.
    Create {
        /// The user.
        #[command(flatten)]
        user: UserRef,
        /// Optional: Plaintext user's password. If you do not include this argument you will
        /// be prompted for it.
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete a user.
    Delete {
        /// The user.
        #[command(flatten)]
        user: UserRef,
    },
    /// Change a user's password.
    ChangePassword {
        /// The user.
        #[command(flatten)]
        user: UserRef,
        /// Optional: Plaintext user's password. If you do not include this argument you will
        /// be prompted for it.
        #[arg(long)]
        password: Option<String>,
    },
}

/// `--filter`: a key reference (`key-reference=0xabc`) or space separated
/// `attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE` terms.
#[derive(Args, Debug, Clone)]
pub struct FilterArg {
    /// Key reference (e.g. key-reference=0xabc) or space separated list of key attributes in
    /// the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select matching key(s).
    #[arg(long, num_args = 1.., required = true)]
    pub filter: Vec<String>,
}

/// `key …`.
#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// List the keys the current user owns, shares, and all public keys in the HSM cluster.
    List {
        /// Key reference (e.g. key-reference=0xabc) or space separated list of key attributes
        /// in the form of attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE to select matching
        /// key(s) to list.
        #[arg(long, num_args = 1..)]
        filter: Vec<String>,
        /// The total number of items to return in the command's output.
        #[arg(long, default_value_t = 10)]
        max_items: usize,
        /// A token to specify where to start paginating (a previous `next_token`).
        #[arg(long)]
        starting_token: Option<String>,
        /// If included, prints all attributes and key information for each matched key.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Delete a key in the HSM cluster.
    Delete {
        /// The keys.
        #[command(flatten)]
        filter: FilterArg,
    },
    /// Generate a symmetric key.
    #[command(subcommand)]
    GenerateSymmetric(GenerateSymmetric),
    /// Share a key in the HSM cluster with another crypto user.
    Share {
        /// The keys.
        #[command(flatten)]
        filter: FilterArg,
        /// The user.
        #[command(flatten)]
        user: UserRef,
    },
    /// Unshare a key in the HSM cluster with another crypto user.
    Unshare {
        /// The keys.
        #[command(flatten)]
        filter: FilterArg,
        /// The user.
        #[command(flatten)]
        user: UserRef,
    },
}

/// `key generate-symmetric …`.
#[derive(Subcommand, Debug)]
pub enum GenerateSymmetric {
    /// Generate an AES key.
    Aes {
        /// Label for the key.
        #[arg(long)]
        label: String,
        /// Key length in bytes (16, 24 or 32).
        #[arg(long)]
        key_length_bytes: u64,
        /// Space separated list of Crypto User usernames to share the AES key with.
        #[arg(long, num_args = 1..)]
        share_crypto_users: Vec<String>,
    },
}

/// `cluster …`.
#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Activate a cluster: set the initial admin password; the cluster becomes ACTIVE.
    Activate {
        /// Optional: Plaintext activation password. If you do not include this argument you
        /// will be prompted for it.
        #[arg(long)]
        password: Option<String>,
    },
}

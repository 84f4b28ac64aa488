//! One CLI session: the simulator it talks to, the cluster, the logged-in user (interactive
//! mode) or the user of `CLOUDHSM_ROLE` / `CLOUDHSM_PIN` (single command mode), and each
//! command's call to the control door.

use super::console::Console;
use super::grammar::{
    ClusterCmd, Command, FilterArg, GenerateSymmetric, KeyCmd, RoleArg, UserCmd, UserRef,
};
use crate::client::{ClientError, ControlClient};
use clap::ValueEnum;
use serde_json::{Value, json};

/// A logged-in user.
#[derive(Clone)]
struct Credentials {
    username: String,
    role: RoleArg,
    password: String,
}

/// The state of one CLI process.
pub struct Session {
    client: ControlClient,
    runtime: tokio::runtime::Runtime,
    cluster_id: Option<String>,
    login: Option<Credentials>,
    /// Interactive mode (logins are kept) rather than single command mode.
    pub interactive: bool,
    /// Standard input and output.
    pub console: Console,
}

fn not_logged_in(interactive: bool) -> String {
    // The real CLI's wording for a command that needs a login is not in the user guide.
    if interactive {
        "You must be logged in to run this command: use login".to_string()
    } else {
        "You must be logged in to run this command: set CLOUDHSM_ROLE and CLOUDHSM_PIN (<user>:<password>)".to_string()
    }
}

impl Session {
    /// A session against `endpoint`, on `cluster_id` if given.
    ///
    /// # Errors
    ///
    /// The async runtime cannot start.
    pub fn new(endpoint: &str, cluster_id: Option<String>) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok(Session {
            client: ControlClient::new(endpoint),
            runtime,
            cluster_id,
            login: None,
            interactive: false,
            console: Console::stdin(),
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.runtime
            .block_on(self.client.call(method, path, body))
            .map_err(|e| match e {
                ClientError::Api { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// The cluster: `--cluster-id`, the session's, the simulator's only cluster, or its
    /// default cluster.
    fn cluster(&mut self, given: Option<String>) -> Result<String, String> {
        if let Some(c) = given.or_else(|| self.cluster_id.clone()) {
            return Ok(c);
        }
        let list = self.call("GET", "/_sim/clusters", None)?;
        let ids: Vec<String> = list["clusters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["cluster_id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let chosen = match ids.as_slice() {
            [one] => one.clone(),
            [] => return Err("The simulator has no cluster".to_string()),
            _ => self.call("GET", "/_sim/cli/default-cluster", None)?["cluster_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    format!(
                        "The simulator has {} clusters: choose one with --cluster-id",
                        ids.len()
                    )
                })?,
        };
        self.cluster_id = Some(chosen.clone());
        Ok(chosen)
    }

    /// The user a command runs as: the login (interactive) or the environment (single).
    fn credentials(&self) -> Result<Credentials, String> {
        if self.interactive {
            return self.login.clone().ok_or_else(|| not_logged_in(true));
        }
        let pin = std::env::var("CLOUDHSM_PIN").map_err(|_| not_logged_in(false))?;
        let role = std::env::var("CLOUDHSM_ROLE").map_err(|_| not_logged_in(false))?;
        let (username, password) = pin
            .split_once(':')
            .ok_or_else(|| "CLOUDHSM_PIN must be <user>:<password>".to_string())?;
        let role = RoleArg::from_str(role.trim(), false).map_err(|_| {
            format!("invalid value '{role}' for CLOUDHSM_ROLE: use admin or crypto-user")
        })?;
        Ok(Credentials {
            username: username.to_string(),
            role,
            password: password.to_string(),
        })
    }

    /// A request body carrying the user's credentials and `fields`.
    fn authed(&self, fields: Value) -> Result<Value, String> {
        let c = self.credentials()?;
        let mut body = json!({
            "auth_user": c.username,
            "auth_password": c.password,
            "auth_role": c.role.as_str(),
        });
        if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        Ok(body)
    }

    fn password_or_prompt(&mut self, given: Option<String>) -> Result<String, String> {
        match given {
            Some(p) => Ok(p),
            None => self.console.password("Enter password:"),
        }
    }

    fn new_password_or_prompt(&mut self, given: Option<String>) -> Result<String, String> {
        match given {
            Some(p) => Ok(p),
            None => self.console.new_password(),
        }
    }

    /// Run one command; `cluster_id` is the command's own `--cluster-id`, if any.
    ///
    /// # Errors
    ///
    /// The message the CLI prints as `data` of its error envelope.
    pub fn execute(&mut self, cluster_id: Option<String>, cmd: Command) -> Result<Value, String> {
        match cmd {
            Command::Interactive => Err("Already in interactive mode".to_string()),
            Command::Quit => Ok(Value::Null),
            Command::Login {
                username,
                role,
                password,
            } => self.login(cluster_id, username, role, password),
            Command::Logout => self.logout(cluster_id),
            Command::User(u) => self.user(cluster_id, u),
            Command::Key(k) => self.key(cluster_id, k),
            Command::Cluster(ClusterCmd::Activate { password }) => {
                let id = self.cluster(cluster_id)?;
                let password = self.new_password_or_prompt(password)?;
                self.call(
                    "POST",
                    &format!("/_sim/clusters/{id}/activate"),
                    Some(json!({"admin_password": password})),
                )?;
                Ok(json!("Cluster activation successful"))
            }
        }
    }

    fn login(
        &mut self,
        cluster_id: Option<String>,
        username: String,
        role: RoleArg,
        password: Option<String>,
    ) -> Result<Value, String> {
        let id = self.cluster(cluster_id)?;
        if let Some(c) = &self.login {
            return Err(format!(
                "The user {} is already logged in: log out first",
                c.username
            ));
        }
        let password = self.password_or_prompt(password)?;
        let body = json!({"username": username, "role": role.as_str(), "password": password});
        let data = self.call(
            "POST",
            &format!("/_sim/clusters/{id}/cli/login"),
            Some(body),
        )?;
        if self.interactive {
            self.login = Some(Credentials {
                username: data["username"].as_str().unwrap_or(&username).to_string(),
                role,
                password,
            });
        } else {
            // Single command mode keeps nothing: the session ends with the command.
            let _ = self.call(
                "POST",
                &format!("/_sim/clusters/{id}/cli/logout"),
                Some(json!({"username": username})),
            );
        }
        Ok(data)
    }

    fn logout(&mut self, cluster_id: Option<String>) -> Result<Value, String> {
        let id = self.cluster(cluster_id)?;
        let who = match &self.login {
            Some(c) => c.username.clone(),
            None => self.credentials()?.username,
        };
        let data = self.call(
            "POST",
            &format!("/_sim/clusters/{id}/cli/logout"),
            Some(json!({"username": who})),
        )?;
        self.login = None;
        Ok(data)
    }

    /// Log out a user still logged in when interactive mode ends (errors are ignored: the
    /// session is over either way).
    pub fn logout_quietly(&mut self) {
        if self.login.is_some() {
            let _ = self.logout(None);
        }
    }

    fn user(&mut self, cluster_id: Option<String>, cmd: UserCmd) -> Result<Value, String> {
        let id = self.cluster(cluster_id)?;
        let (route, user, password) = match cmd {
            UserCmd::List => {
                return self.call("GET", &format!("/_sim/clusters/{id}/cli/users"), None);
            }
            UserCmd::Create { user, password } => {
                ("create", user, Some(self.new_password_or_prompt(password)?))
            }
            UserCmd::Delete { user } => ("delete", user, None),
            UserCmd::ChangePassword { user, password } => (
                "change-password",
                user,
                Some(self.new_password_or_prompt(password)?),
            ),
        };
        let body = self.authed(
            json!({"username": user.username, "role": user.role.as_str(), "password": password}),
        )?;
        let data = self.call(
            "POST",
            &format!("/_sim/clusters/{id}/cli/users/{route}"),
            Some(body),
        )?;
        // A logged-in user who changed its own password goes on with the new one.
        if let (Some(login), Some(new)) = (self.login.as_mut(), password)
            && route == "change-password"
            && login.username.eq_ignore_ascii_case(&user.username)
        {
            login.password = new;
        }
        Ok(data)
    }

    fn key(&mut self, cluster_id: Option<String>, cmd: KeyCmd) -> Result<Value, String> {
        let id = self.cluster(cluster_id)?;
        let (route, fields) = match cmd {
            KeyCmd::List {
                filter,
                max_items,
                starting_token,
                verbose,
            } => (
                "list",
                json!({"filter": filter, "max_items": max_items, "starting_token": starting_token, "verbose": verbose}),
            ),
            KeyCmd::Delete {
                filter: FilterArg { filter },
            } => ("delete", json!({ "filter": filter })),
            KeyCmd::GenerateSymmetric(GenerateSymmetric::Aes {
                label,
                key_length_bytes,
                share_crypto_users,
            }) => (
                "generate-aes",
                json!({"label": label, "key_length_bytes": key_length_bytes, "share_crypto_users": share_crypto_users}),
            ),
            KeyCmd::Share { filter, user } => ("share", share_fields(filter, user, true)),
            KeyCmd::Unshare { filter, user } => ("share", share_fields(filter, user, false)),
        };
        let body = self.authed(fields)?;
        self.call(
            "POST",
            &format!("/_sim/clusters/{id}/cli/keys/{route}"),
            Some(body),
        )
    }
}

fn share_fields(filter: FilterArg, user: UserRef, share: bool) -> Value {
    json!({
        "filter": filter.filter,
        "username": user.username,
        "role": user.role.as_str(),
        "share": share,
    })
}

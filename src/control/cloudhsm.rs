//! The control-door routes behind `cks-sim cloudhsm-cli`, under `/_sim/clusters/{id}/cli/`.
//! Each answers with what the CloudHSM CLI prints as `data` (its key, user and message
//! shapes); the CLI adds the `{"error_code": 0, "data": …}` envelope. Every route but `users`
//! (which needs no login, as in the CLI) carries the logged-in user's name and password and
//! checks them again, as each CLI command does.

use super::{CResult, ControlError, parse, respond};
use crate::app::App;
use crate::cluster::cli_users;
use crate::cluster::model::{Role, User};
use crate::cluster::objects::{self, AttrValue, KeyView};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The routes, relative to `/_sim`.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/cli/default-cluster", get(default_cluster))
        .route("/clusters/{id}/cli/login", post(login))
        .route("/clusters/{id}/cli/logout", post(logout))
        .route("/clusters/{id}/cli/users", get(users))
        .route("/clusters/{id}/cli/users/create", post(user_create))
        .route("/clusters/{id}/cli/users/delete", post(user_delete))
        .route(
            "/clusters/{id}/cli/users/change-password",
            post(user_change_password),
        )
        .route("/clusters/{id}/cli/keys/list", post(key_list))
        .route("/clusters/{id}/cli/keys/delete", post(key_delete))
        .route(
            "/clusters/{id}/cli/keys/generate-aes",
            post(key_generate_aes),
        )
        .route("/clusters/{id}/cli/keys/share", post(key_share))
}

/// The cluster the CLI uses when none is named and there are several: the default one.
async fn default_cluster(State(app): State<Arc<App>>) -> Response {
    respond(Ok(
        json!({"cluster_id": crate::cluster::seed::default_cluster_id(&app)}),
    ))
}

fn role(s: &str) -> Result<Role, ControlError> {
    Role::parse(s).ok_or_else(|| {
        ControlError::bad(format!(
            "invalid value '{s}' for '--role <ROLE>': use admin or crypto-user"
        ))
    })
}

/// The logged-in user of a request (`auth_user`, `auth_password` and, when given, the role
/// it logged in with), checked again as each CLI command does.
async fn authenticated(
    app: &Arc<App>,
    cluster_id: &str,
    user: &str,
    password: &str,
    role_name: Option<&str>,
) -> Result<User, ControlError> {
    if let Some(r) = role_name {
        cli_users::check_role(app, cluster_id, user, role(r)?)?;
    }
    Ok(cli_users::authenticate(app, cluster_id, user, password).await?)
}

fn user_json(u: &User) -> Value {
    json!({"username": u.name, "role": u.role.as_str()})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    role: String,
    password: String,
}

async fn login(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: LoginBody = parse(&body)?;
            let r = role(&b.role)?;
            let u = cli_users::login_with_role(&app, &id, &b.username, r, &b.password).await?;
            Ok(user_json(&u))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    username: String,
}

async fn logout(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: LogoutBody = parse(&body)?;
            crate::cluster::users::logout(&app, &id, &b.username).await?;
            Ok(json!("Logout successful"))
        }
        .await,
    )
}

async fn users(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    respond(
        crate::cluster::users::list_users(&app, &id)
            .map_err(ControlError::from)
            .map(|list| {
                let users: Vec<Value> = list
                    .iter()
                    .map(|u| {
                        json!({
                            "username": u.username,
                            "role": u.role,
                            "locked": u.locked.to_string(),
                            "mfa": if u.mfa { json!([{"strategy": "token-sign", "status": "enabled"}]) } else { json!([]) },
                            "cluster-coverage": u.cluster_coverage,
                        })
                    })
                    .collect();
                json!({"users": users})
            }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    auth_user: String,
    auth_password: String,
    auth_role: Option<String>,
    username: String,
    role: String,
    password: Option<String>,
}

impl UserBody {
    fn password(&self) -> Result<&str, ControlError> {
        self.password
            .as_deref()
            .ok_or_else(|| ControlError::bad("a password is required"))
    }
}

async fn user_create(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: UserBody = parse(&body)?;
            let r = role(&b.role)?;
            let auth = authenticated(
                &app,
                &id,
                &b.auth_user,
                &b.auth_password,
                b.auth_role.as_deref(),
            )
            .await?;
            let v = cli_users::create_user(&app, &id, &auth, &b.username, r, b.password()?).await?;
            Ok(json!({"username": v.username, "role": v.role}))
        }
        .await,
    )
}

async fn user_delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: UserBody = parse(&body)?;
            let r = role(&b.role)?;
            let auth = authenticated(
                &app,
                &id,
                &b.auth_user,
                &b.auth_password,
                b.auth_role.as_deref(),
            )
            .await?;
            let u = cli_users::delete_user(&app, &id, &auth, &b.username, r).await?;
            Ok(user_json(&u))
        }
        .await,
    )
}

async fn user_change_password(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: UserBody = parse(&body)?;
            let r = role(&b.role)?;
            let auth = authenticated(
                &app,
                &id,
                &b.auth_user,
                &b.auth_password,
                b.auth_role.as_deref(),
            )
            .await?;
            let u = cli_users::change_password(
                &app,
                &id,
                &auth,
                &b.auth_password,
                &b.username,
                r,
                b.password()?,
            )
            .await?;
            Ok(user_json(&u))
        }
        .await,
    )
}

fn attr_json(v: &AttrValue) -> Value {
    match v {
        AttrValue::Text(s) => json!(s),
        AttrValue::Bool(b) => json!(b),
        AttrValue::Number(n) => json!(n),
    }
}

/// A key as `key list` prints it: reference and label, or (verbose) everything.
fn key_json(k: &KeyView, verbose: bool) -> Value {
    let mut attributes = Map::new();
    for (name, v) in k.attributes() {
        if verbose || name == "label" {
            attributes.insert(name, attr_json(&v));
        }
    }
    if !verbose {
        return json!({"key-reference": k.reference_text(), "attributes": attributes});
    }
    let users = |names: &[String]| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"username": n, "key-coverage": "full"}))
            .collect()
    };
    json!({
        "key-reference": k.reference_text(),
        "key-info": {
            "key-owners": users(std::slice::from_ref(&k.owner)),
            "shared-users": users(&k.shared_users),
            "key-quorum-values": {"manage-key-quorum-value": 0, "use-key-quorum-value": 0},
            "cluster-coverage": "full",
        },
        "attributes": attributes,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyListBody {
    auth_user: String,
    auth_password: String,
    auth_role: Option<String>,
    #[serde(default)]
    filter: Vec<String>,
    #[serde(default)]
    verbose: bool,
    max_items: Option<usize>,
    starting_token: Option<String>,
}

async fn key_list(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: KeyListBody = parse(&body)?;
            let filter = objects::parse_filter(&b.filter)?;
            let user = authenticated(
                &app,
                &id,
                &b.auth_user,
                &b.auth_password,
                b.auth_role.as_deref(),
            )
            .await?;
            let max = b.max_items.unwrap_or(10);
            let page =
                objects::list_keys(&app, &id, &user, &filter, max, b.starting_token.as_deref())
                    .await?;
            // The CLI's verbose flag has no effect for an admin.
            let verbose = b.verbose && user.role == Role::CryptoUser;
            let keys: Vec<Value> = page.keys.iter().map(|k| key_json(k, verbose)).collect();
            let mut out = json!({
                "matched_keys": keys,
                "total_key_count": page.total,
                "returned_key_count": page.keys.len(),
            });
            if let Some(t) = page.next_token {
                out["next_token"] = json!(t);
            }
            Ok(out)
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDeleteBody {
    auth_user: String,
    auth_password: String,
    auth_role: Option<String>,
    filter: Vec<String>,
}

async fn key_delete(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: KeyDeleteBody = parse(&body)?;
            let filter = objects::parse_filter(&b.filter)?;
            let user = authenticated(
                &app,
                &id,
                &b.auth_user,
                &b.auth_password,
                b.auth_role.as_deref(),
            )
            .await?;
            objects::delete_key(&app, &id, &user, &filter).await?;
            Ok(json!({"message": "Key deleted successfully"}))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody {
    auth_user: String,
    auth_password: String,
    auth_role: Option<String>,
    label: String,
    key_length_bytes: u64,
    #[serde(default)]
    share_crypto_users: Vec<String>,
}

async fn key_generate_aes(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: GenerateBody = parse(&body)?;
            let user = authenticated(
                &app,
                &id,
                &b.auth_user,
                &b.auth_password,
                b.auth_role.as_deref(),
            )
            .await?;
            let k = objects::generate_aes(
                &app,
                &id,
                &user,
                &b.label,
                b.key_length_bytes,
                &b.share_crypto_users,
            )
            .await?;
            Ok(json!({"key": key_json(&k, true)}))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    auth_user: String,
    auth_password: String,
    auth_role: Option<String>,
    filter: Vec<String>,
    username: String,
    role: String,
    share: bool,
}

async fn key_share(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    super::JsonBody(body, _share): super::JsonBody,
) -> Response {
    respond(
        async {
            let b: ShareBody = parse(&body)?;
            let filter = objects::parse_filter(&b.filter)?;
            if role(&b.role)? != Role::CryptoUser {
                return Err(ControlError::bad(
                    "Keys can be shared only with crypto users (--role crypto-user)",
                ));
            }
            let (who, pw) = (&b.auth_user, &b.auth_password);
            let user = authenticated(&app, &id, who, pw, b.auth_role.as_deref()).await?;
            objects::share_key(&app, &id, &user, &filter, &b.username, b.share).await?;
            // AWS's exact success message for key share / unshare is not in the user guide
            // pages we could read; this wording is the simulator's own.
            let message = if b.share {
                "Key shared successfully"
            } else {
                "Key unshared successfully"
            };
            let r: CResult = Ok(json!({ "message": message }));
            r
        }
        .await,
    )
}

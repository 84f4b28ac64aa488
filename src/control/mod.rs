//! The simulator's control door, JSON under `/_sim/`: health, clock, settings, clusters and
//! their users (the CloudHSM CLI's job), faults, backups, token inspection and orphans. The
//! `cks-sim` CLI is a thin client of these endpoints.

use crate::app::{App, Change, Settings};
use crate::cluster::faults::Fault;
use crate::cluster::model::{KMSUSER, Role};
use crate::hsm::{ObjectInfo, Token};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

mod cloudhsm;
mod error;

pub use error::ControlError;

type CResult = Result<Value, ControlError>;

/// A control-door request body, read with the server's size limit (`max_body_bytes`): a
/// larger one is answered 413 `RequestEntityTooLarge` without being kept in memory. The second
/// field holds the body's share of the server's body budget until the handler ends (when the
/// budget is spent: 503 `Busy`).
pub(super) struct JsonBody(pub(super) Bytes, pub(super) crate::protocol::body::Received);

impl axum::extract::FromRequest<Arc<App>> for JsonBody {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, app: &Arc<App>) -> Result<Self, Response> {
        let budget = &app.body_budget;
        match crate::protocol::body::read_limited(
            req.into_body(),
            app.config.max_body_bytes,
            budget,
        )
        .await
        {
            Ok(r) => Ok(JsonBody(r.bytes.clone(), r)),
            Err(e) => Err(ControlError::unread(&e).into_response()),
        }
    }
}

fn respond(r: CResult) -> Response {
    match r {
        Ok(v) => crate::protocol::response::json_response(200, &v, None),
        Err(e) => e.into_response(),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ControlError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ControlError::bad(format!("invalid request body: {}", without_values(&e))))
}

/// serde's message for a member of the wrong type or value quotes the value (`invalid type:
/// string "hunter2", expected …`); a password may be that value, so only its kind is kept.
fn without_values(e: &serde_json::Error) -> String {
    let text = e.to_string();
    for lead in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(lead)
            && let Some((found, expected)) = rest.split_once(", expected")
        {
            let kind = found.split([' ', '`', '"']).next().unwrap_or("value");
            return format!("{lead}{kind}, expected{expected}");
        }
    }
    text
}

/// The `/_sim` routes.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(health))
        .route("/key-specs", get(key_specs))
        .route("/clock", get(clock))
        .route("/clock/advance", post(clock_advance))
        .route("/settings", get(get_settings).post(set_settings))
        .route("/clusters", get(clusters))
        .route("/clusters/{id}", get(cluster))
        .route("/clusters/{id}/activate", post(activate))
        .route("/clusters/{id}/users", get(users).post(create_user))
        .route(
            "/clusters/{id}/users/{name}",
            axum::routing::delete(delete_user),
        )
        .route(
            "/clusters/{id}/users/{name}/password",
            post(change_password),
        )
        .route("/clusters/{id}/users/{name}/login", post(login))
        .route("/clusters/{id}/users/{name}/logout", post(logout))
        .route("/clusters/{id}/faults", get(faults).post(set_fault))
        .route("/clusters/{id}/token", get(token_objects))
        .route("/clusters/{id}/token/stats", get(token_stats))
        .route("/clusters/{id}/token/pin", get(token_pin_view))
        .route("/orphans", get(orphans))
        .route("/failpoints", get(failpoints).post(arm_failpoint))
        .merge(cloudhsm::router())
        .layer(axum::middleware::from_fn_with_state(app, local_only))
}

/// Answer only requests addressed to a loopback host name (DNS rebinding), unless the server
/// was started with `--allow-remote`.
async fn local_only(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if app.config.allow_remote || crate::protocol::host::is_loopback_host(host) {
        return next.run(req).await;
    }
    ControlError::forbidden(
        "the control door answers only requests addressed to localhost, 127.0.0.1 or [::1] \
         (start the server with --allow-remote to widen it)",
    )
    .into_response()
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let w = app.world();
    respond(Ok(json!({
        "status": "ok",
        "module": app.module().path().display().to_string(),
        "library": app.module().description(),
        "clusters": w.clusters.len(),
        "custom_key_stores": w.stores.len(),
        "keys": w.keys.len(),
        "orphans": w.orphans.len(),
        "requests_in_flight": app.requests_in_flight(),
        "body_bytes_in_flight": app.body_bytes_in_flight(),
        "reconciliation": *app.reconciliation.lock().unwrap_or_else(|p| p.into_inner()),
    })))
}

/// The key specs and usages the internal token serves.
async fn key_specs(State(app): State<Arc<App>>) -> Response {
    let offered = crate::kms::asymmetric::offered_key_specs(&app).await;
    respond(offered.map_err(ControlError::from).map(|(token, kinds)| {
        let kinds: Vec<Value> = kinds
            .into_iter()
            .map(|(s, u)| json!({"KeySpec": s, "KeyUsage": u}))
            .collect();
        json!({ "token": token, "key_specs": kinds })
    }))
}

fn clock_json(app: &App) -> Value {
    let now = app.now();
    json!({"now": now, "offset_seconds": app.world().clock_offset, "iso": iso8601(now.seconds())})
}

/// Format epoch seconds as an ISO-8601 UTC timestamp.
pub fn iso8601(secs: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs.floor() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

async fn clock(State(app): State<Arc<App>>) -> Response {
    respond(Ok(clock_json(&app)))
}

/// How far ahead of the real clock the simulated one may run: 1,000 years. Far enough for any
/// deletion window or rotation period, near enough that every date stays a valid timestamp.
pub const MAX_CLOCK_OFFSET_SECONDS: f64 = 1000.0 * 365.25 * 86_400.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: Option<f64>,
    hours: Option<f64>,
    days: Option<f64>,
}

async fn clock_advance(State(app): State<Arc<App>>, JsonBody(body, _share): JsonBody) -> Response {
    respond(
        async {
            let a: Advance = parse(&body)?;
            let secs = a.seconds.unwrap_or(0.0)
                + a.hours.unwrap_or(0.0) * 3600.0
                + a.days.unwrap_or(0.0) * 86_400.0;
            if !secs.is_finite() || secs < 0.0 {
                return Err(ControlError::bad(
                    "the clock only moves forward: give a non-negative seconds, hours or days",
                ));
            }
            {
                let writer = app.lock_writer().await;
                let offset = app.world().clock_offset + secs;
                if offset > MAX_CLOCK_OFFSET_SECONDS {
                    return Err(ControlError::bad(format!(
                        "the simulated clock runs at most 1000 years ahead of the real clock; \
                         it is {:.0} seconds ahead now, so it can move at most {:.0} seconds more",
                        app.world().clock_offset,
                        MAX_CLOCK_OFFSET_SECONDS - app.world().clock_offset
                    )));
                }
                app.commit(&writer, vec![Change::ClockOffset(offset)])
                    .await
                    .map_err(|e| ControlError::bad(e.to_string()))?;
            }
            crate::kms::sweep::sweep_if_due(&app).await;
            Ok(clock_json(&app))
        }
        .await,
    )
}

async fn get_settings(State(app): State<Arc<App>>) -> Response {
    respond(serde_json::to_value(app.settings()).map_err(|e| ControlError::bad(e.to_string())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    connect_delay_ms: Option<u64>,
    disconnect_delay_ms: Option<u64>,
    hold_connections: Option<bool>,
}

async fn set_settings(State(app): State<Arc<App>>, JsonBody(body, _share): JsonBody) -> Response {
    respond((|| {
        let p: SettingsPatch = parse(&body)?;
        let mut s: Settings = app.settings();
        if let Some(v) = p.connect_delay_ms {
            s.connect_delay_ms = v;
        }
        if let Some(v) = p.disconnect_delay_ms {
            s.disconnect_delay_ms = v;
        }
        if let Some(v) = p.hold_connections {
            s.hold_connections = v;
        }
        app.set_settings(s);
        serde_json::to_value(s).map_err(|e| ControlError::bad(e.to_string()))
    })())
}

fn cluster_json(app: &App, id: &str) -> CResult {
    let w = app.world();
    let c = w
        .clusters
        .get(id)
        .ok_or_else(|| ControlError::not_found(format!("no cluster {id}")))?;
    let hsms: Vec<Value> = w
        .cluster_hsms(id)
        .iter()
        .map(|h| json!({"hsm_id": h.id, "availability_zone": h.availability_zone, "state": h.state.as_str(), "eni_ip": h.eni_ip}))
        .collect();
    let stores: Vec<Value> = w
        .stores
        .values()
        .filter(|s| s.cluster_id == id)
        .map(|s| json!({"id": s.id, "name": s.name, "state": s.state.as_str()}))
        .collect();
    Ok(json!({
        "cluster_id": c.id,
        "state": c.state.as_str(),
        "subnets": c.subnet_mapping,
        "hsms": hsms,
        "has_token": c.has_token,
        "token_label": c.token_label(),
        "rotate_password": c.rotates_pin(),
        "faults": c.faults,
        "custom_key_stores": stores,
        "source_backup_id": c.source_backup_id,
    }))
}

async fn clusters(State(app): State<Arc<App>>) -> Response {
    let ids: Vec<String> = app.world().clusters.keys().map(|k| k.to_string()).collect();
    respond(
        ids.iter()
            .map(|id| cluster_json(&app, id))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| json!({"clusters": v})),
    )
}

async fn cluster(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    respond(cluster_json(&app, &id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    admin_password: String,
}

async fn activate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    JsonBody(body, _share): JsonBody,
) -> Response {
    respond(
        async {
            let b: ActivateBody = parse(&body)?;
            crate::cluster::users::activate(&app, &id, &b.admin_password).await?;
            cluster_json(&app, &id)
        }
        .await,
    )
}

async fn users(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    respond(
        crate::cluster::users::list_users(&app, &id)
            .map_err(ControlError::from)
            .and_then(|u| serde_json::to_value(u).map_err(|e| ControlError::bad(e.to_string())))
            .map(|u| json!({"users": u})),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
    username: String,
    role: String,
    password: String,
}

async fn create_user(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    JsonBody(body, _share): JsonBody,
) -> Response {
    respond(
        async {
            let b: CreateUserBody = parse(&body)?;
            let role = Role::parse(&b.role).ok_or_else(|| {
                ControlError::bad(format!(
                    "role {:?}: use \"admin\" or \"crypto-user\"",
                    b.role
                ))
            })?;
            crate::cluster::users::create_user(&app, &id, &b.username, role, &b.password).await?;
            Ok(json!({"username": b.username.to_ascii_lowercase(), "role": role.as_str()}))
        }
        .await,
    )
}

async fn delete_user(
    State(app): State<Arc<App>>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            crate::cluster::users::delete_user(&app, &id, &name).await?;
            Ok(json!({"deleted": name}))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    new_password: String,
    auth_user: String,
    auth_password: String,
}

async fn change_password(
    State(app): State<Arc<App>>,
    Path((id, name)): Path<(String, String)>,
    JsonBody(body, _share): JsonBody,
) -> Response {
    respond(
        async {
            let b: PasswordBody = parse(&body)?;
            crate::cluster::users::change_password(
                &app,
                &id,
                &name,
                &b.new_password,
                &b.auth_user,
                &b.auth_password,
            )
            .await?;
            Ok(json!({"username": name, "changed": true}))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    password: String,
}

async fn login(
    State(app): State<Arc<App>>,
    Path((id, name)): Path<(String, String)>,
    JsonBody(body, _share): JsonBody,
) -> Response {
    respond(
        async {
            let b: LoginBody = parse(&body)?;
            crate::cluster::users::login(&app, &id, &name, &b.password).await?;
            Ok(json!({"username": name, "logged_in": true}))
        }
        .await,
    )
}

async fn logout(State(app): State<Arc<App>>, Path((id, name)): Path<(String, String)>) -> Response {
    respond(
        async {
            crate::cluster::users::logout(&app, &id, &name).await?;
            Ok(json!({"username": name, "logged_in": false}))
        }
        .await,
    )
}

async fn faults(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    respond(cluster_json(&app, &id).map(|c| c["faults"].clone()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    fault: String,
    #[serde(default = "yes")]
    on: bool,
    target: Option<String>,
}

fn yes() -> bool {
    true
}

async fn set_fault(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    JsonBody(body, _share): JsonBody,
) -> Response {
    respond(
        async {
            let b: FaultBody = parse(&body)?;
            // The CLI's kebab-case names; snake_case is accepted too.
            let f = Fault::parse(&b.fault.replace('_', "-"), b.target.as_deref())?;
            crate::cluster::faults::set_fault(&app, &id, f, b.on).await?;
            cluster_json(&app, &id).map(|c| c["faults"].clone())
        }
        .await,
    )
}

fn token_pin(app: &App, id: &str) -> Result<String, ControlError> {
    let w = app.world();
    let c = w
        .clusters
        .get(id)
        .ok_or_else(|| ControlError::not_found(format!("no cluster {id}")))?;
    if !c.has_token {
        return Err(ControlError::bad(format!(
            "cluster {id} has no token yet: initialize it first"
        )));
    }
    Ok(app.pin(KMSUSER, &c.token_user_pin))
}

async fn list_with_login(
    app: &App,
    token: &Arc<Token>,
    pin: &str,
) -> Result<Vec<ObjectInfo>, ControlError> {
    let _ = app;
    Ok(token
        .with_login(pin, |t| async move { t.list_objects().await })
        .await?)
}

async fn token_objects(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    respond(
        async {
            let pin = token_pin(&app, &id)?;
            let token = app.token(&id).await?;
            let objects = list_with_login(&app, &token, &pin).await?;
            let w = app.world();
            let list: Vec<Value> = objects
                .into_iter()
                .map(|o| {
                    let live = w
                        .keys
                        .values()
                        .find(|k| k.arn == o.label && k.token_label == id);
                    let orphan = w
                        .orphans
                        .values()
                        .find(|r| r.cluster_id == id && r.object_id == o.id);
                    let owner = if live.is_some() {
                        "kms-key"
                    } else if orphan.is_some() {
                        "orphan"
                    } else {
                        "other"
                    };
                    json!({
                        "label": o.label,
                        "id": o.id,
                        "class": o.class,
                        "key_type": o.key_type,
                        "fingerprint": o.fingerprint,
                        "extractable": o.extractable,
                        "owner": owner,
                        "key_id": live.map(|k| k.id.clone()),
                    })
                })
                .collect();
            Ok(json!({"cluster_id": id, "token_label": id, "objects": list}))
        }
        .await,
    )
}

async fn token_stats(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    respond(
        async {
            token_pin(&app, &id)?;
            let t = app.token(&id).await?;
            Ok(json!({
                "cluster_id": id,
                "calls": t.stats().calls(),
                "logged_in": t.is_logged_in(),
                "failing": t.is_failing(),
                "indexed_keys": t.indexed_keys(),
                "session_copies": t.session_copies(),
            }))
        }
        .await,
    )
}

/// The token's current user PIN (kmsuser's current password, which KMS rotates on every
/// connect). A simulator-only window, so tests and people can open the token independently.
async fn token_pin_view(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    respond(token_pin(&app, &id).map(|pin| json!({"cluster_id": id, "user_pin": pin})))
}

async fn orphans(State(app): State<Arc<App>>) -> Response {
    let w = app.world();
    let list: Vec<Value> = w
        .orphans
        .values()
        .map(|o| {
            json!({
                "key_arn": o.key_arn,
                "cluster_id": o.cluster_id,
                "object_id": o.object_id,
                "time": o.time,
                "iso": iso8601(o.time.seconds()),
                "reason": o.reason,
            })
        })
        .collect();
    respond(Ok(json!({"orphans": list})))
}

async fn failpoints(State(app): State<Arc<App>>) -> Response {
    respond(Ok(json!({
        "steps": crate::failpoint::STEPS,
        "armed": app.failpoints.armed(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArmFailpoint {
    name: String,
}

/// Arm a failpoint: the process aborts when it next reaches that step (crash tests).
async fn arm_failpoint(State(app): State<Arc<App>>, JsonBody(body, _share): JsonBody) -> Response {
    respond((|| {
        let b: ArmFailpoint = parse(&body)?;
        app.failpoints.arm(&b.name).map_err(ControlError::bad)?;
        Ok(json!({"armed": app.failpoints.armed()}))
    })())
}

//! The Simulator pane, apart from the AWS look-alike pages: clusters with their HSMs and
//! Availability Zones, users, faults, the simulated clock, token objects and orphans. It is a
//! client of the `/_sim` control door, called in-process, so it shows and does exactly what
//! the `cks-sim` CLI does.

use super::layout::{self, Section, page, respond};
use super::see_other;
use crate::app::App;
use crate::cluster::faults::Fault;
use axum::Form;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tower_service::Service;

/// A control-door failure: `__type` and message.
struct ControlFailure {
    type_name: String,
    message: String,
}

/// Call the control door in-process: `method path` with an optional JSON body.
async fn control(
    app: &Arc<App>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ControlFailure> {
    let fail = |m: String| ControlFailure {
        type_name: "ConsoleError".into(),
        message: m,
    };
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        // The door answers loopback names only; this call never leaves the process.
        .header("host", "localhost")
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .map_err(|e| fail(e.to_string()))?;
    let mut door = crate::control::router(Arc::clone(app)).with_state(Arc::clone(app));
    let Ok(resp) = door.call(req).await;
    let status = resp.status();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|e| fail(e.to_string()))?
        .to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        Ok(v)
    } else {
        Err(ControlFailure {
            type_name: v["__type"].as_str().unwrap_or("Error").to_string(),
            message: v["message"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// The pane with `flash` above it.
async fn render(app: &Arc<App>, status: StatusCode, flash: Markup) -> Response {
    let clock = control(app, "GET", "/clock", None)
        .await
        .unwrap_or_default();
    let settings = control(app, "GET", "/settings", None)
        .await
        .unwrap_or_default();
    let clusters = control(app, "GET", "/clusters", None)
        .await
        .unwrap_or_default();
    let mut sections = Vec::new();
    for c in clusters["clusters"].as_array().into_iter().flatten() {
        sections.push(cluster_section(app, c).await);
    }
    let orphans = control(app, "GET", "/orphans", None)
        .await
        .unwrap_or_default();
    let main = html! {
        p.sim-banner { "Simulator — not part of AWS. What the CloudHSM CLI, the AWS CloudHSM console \
                        and the passage of time would do." }
        h1 { "Simulator" }
        (flash)
        (clock_section(&clock, &settings))
        @for s in &sections { (s) }
        (orphans_section(&orphans))
    };
    respond(status, page(app, "Simulator", Section::Simulator, main))
}

/// `GET /console/simulator`.
pub async fn show(State(app): State<Arc<App>>) -> Response {
    render(&app, StatusCode::OK, html! {}).await
}

fn clock_section(clock: &Value, settings: &Value) -> Markup {
    html! {
        section.card #clock {
            h2 { "Clock" }
            p { "Simulated time: " strong #clock-now { (clock["iso"].as_str().unwrap_or("?")) }
                " (ahead of the real clock by " (clock["offset_seconds"]) " s)" }
            form.inline method="post" action="/console/simulator/clock" {
                label { "Advance by days " input.days type="number" name="days" min="0" step="any" value="0"; }
                " "
                label { "hours " input.days type="number" name="hours" min="0" step="any" value="0"; }
                " "
                button type="submit" { "Advance the clock" }
            }
            p.small { "Connect delay " (settings["connect_delay_ms"]) " ms, disconnect delay "
                (settings["disconnect_delay_ms"]) " ms, connections held: " (settings["hold_connections"]) }
        }
    }
}

async fn cluster_section(app: &Arc<App>, c: &Value) -> Markup {
    let id = c["cluster_id"].as_str().unwrap_or_default();
    let users = control(app, "GET", &format!("/clusters/{id}/users"), None).await;
    let objects = if c["has_token"].as_bool() == Some(true) {
        Some(control(app, "GET", &format!("/clusters/{id}/token"), None).await)
    } else {
        None
    };
    html! {
        section.card.cluster data-cluster=(id) {
            h2 { "Cluster " span.mono { (id) } " — " (c["state"].as_str().unwrap_or("")) }
            h3 { "HSMs" }
            (table(&["HSM ID", "Availability Zone", "State", "IP address"],
                c["hsms"].as_array().map(Vec::as_slice).unwrap_or_default(),
                &["hsm_id", "availability_zone", "state", "eni_ip"]))
            h3 { "Users" }
            @match &users {
                Ok(u) => (table(&["User", "Role", "Locked", "Failed logins", "Logged in", "Coverage"],
                    u["users"].as_array().map(Vec::as_slice).unwrap_or_default(),
                    &["username", "role", "locked", "failed_logins", "logged_in", "cluster_coverage"])),
                Err(e) => (layout::control_error(&e.type_name, &e.message)),
            }
            h3 { "Faults" }
            (faults(id, &c["faults"]))
            h3 { "Token objects" }
            @match &objects {
                None => p { "No token yet (the cluster is not initialized)." },
                Some(Ok(o)) => (table(&["Label", "ID", "Class", "Fingerprint", "Owner"],
                    o["objects"].as_array().map(Vec::as_slice).unwrap_or_default(),
                    &["label", "id", "class", "fingerprint", "owner"])),
                Some(Err(e)) => (layout::control_error(&e.type_name, &e.message)),
            }
        }
    }
}

/// A table of `rows` (JSON objects) showing `fields` under `headings`.
fn table(headings: &[&str], rows: &[Value], fields: &[&str]) -> Markup {
    html! {
        div.table-wrap { table {
            thead { tr { @for h in headings { th scope="col" { (h) } } } }
            tbody {
                @for r in rows { tr { @for f in fields { td { (cell(&r[*f])) } } } }
                @if rows.is_empty() { tr { td colspan=(headings.len()) { "None." } } }
            }
        } }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

fn faults(cluster: &str, f: &Value) -> Markup {
    let on: Vec<String> = f
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_bool() == Some(true) || v.as_array().is_some_and(|a| !a.is_empty()))
        .map(|(k, v)| match v {
            Value::Array(a) => {
                format!("{k}: {}", a.iter().map(cell).collect::<Vec<_>>().join(", "))
            }
            _ => k.clone(),
        })
        .collect();
    html! {
        p { "Active: " @if on.is_empty() { "none" } @else { (on.join("; ")) } }
        form.inline method="post" action="/console/simulator/fault" {
            input type="hidden" name="cluster" value=(cluster);
            label { "Fault " select name="fault" { @for n in Fault::NAMES { option { (n) } } } }
            " "
            label { "Target (subnet, HSM or user, when the fault needs one) "
                input type="text" name="target" autocomplete="off"; }
            " "
            button type="submit" name="on" value="true" { "Turn on" }
            " "
            button type="submit" name="on" value="false" { "Turn off" }
        }
    }
}

fn orphans_section(o: &Value) -> Markup {
    html! {
        section.card #orphans {
            h2 { "Orphans" }
            p.small { "Key material left on a token by KMS keys deleted while their key store was disconnected." }
            (table(&["Key ARN", "Cluster", "Object ID", "Time", "Reason"],
                o["orphans"].as_array().map(Vec::as_slice).unwrap_or_default(),
                &["key_arn", "cluster_id", "object_id", "iso", "reason"]))
        }
    }
}

/// The clock form.
#[derive(Debug, Deserialize)]
pub struct ClockForm {
    days: Option<String>,
    hours: Option<String>,
}

fn number(s: Option<&str>) -> Result<f64, String> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(0.0),
        Some(t) => t
            .parse::<f64>()
            .map_err(|_| format!("{t:?} is not a number")),
    }
}

/// `POST /console/simulator/clock`.
pub async fn advance_clock(State(app): State<Arc<App>>, Form(f): Form<ClockForm>) -> Response {
    let amounts = number(f.days.as_deref()).and_then(|d| Ok((d, number(f.hours.as_deref())?)));
    let (days, hours) = match amounts {
        Ok(a) => a,
        Err(m) => return failed(&app, "InvalidRequest", &m).await,
    };
    let body = json!({ "days": days, "hours": hours });
    match control(&app, "POST", "/clock/advance", Some(body)).await {
        Ok(_) => see_other("/console/simulator#clock"),
        Err(e) => failed(&app, &e.type_name, &e.message).await,
    }
}

/// The fault form.
#[derive(Debug, Deserialize)]
pub struct FaultForm {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    fault: String,
    target: Option<String>,
    #[serde(default)]
    on: String,
}

/// `POST /console/simulator/fault`.
pub async fn set_fault(State(app): State<Arc<App>>, Form(f): Form<FaultForm>) -> Response {
    let mut body = json!({ "fault": f.fault, "on": f.on == "true" });
    if let Some(t) = f.target.filter(|t| !t.trim().is_empty()) {
        body["target"] = json!(t.trim());
    }
    let path = format!("/clusters/{}/faults", super::query_value(&f.cluster));
    match control(&app, "POST", &path, Some(body)).await {
        Ok(_) => see_other("/console/simulator"),
        Err(e) => failed(&app, &e.type_name, &e.message).await,
    }
}

async fn failed(app: &Arc<App>, type_name: &str, message: &str) -> Response {
    render(
        app,
        StatusCode::BAD_REQUEST,
        layout::control_error(type_name, message),
    )
    .await
}

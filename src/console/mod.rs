//! The console (architecture D21): server-rendered HTML under `/console/` for a person in a
//! browser. The AWS look-alike pages (Custom key stores → AWS CloudHSM key stores, a store's
//! keys) call [`crate::kms::handle`], the very entry point of the KMS API, so every rule and
//! every error is the API's; the Simulator pane calls the `/_sim` control door in-process.
//!
//! Security: state changes only by POST and only from the same origin (the `Origin` header
//! must name the `Host` the request came to), pages forbid framing and foreign scripts, no
//! password is ever rendered, and every string goes through the template's escaping.

mod forms;
pub mod help;
mod keys;
mod layout;
mod sim;
mod stores;

use crate::app::App;
use crate::kms::error::KmsError;
use crate::protocol::input::Input;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::sync::Arc;

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// The console's routes, all under `/console` (merge them into the server's router).
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/console", get(to_key_stores))
        .route("/console/", get(to_key_stores))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
        .route("/console/key-stores", get(stores::list))
        .route("/console/key-stores/states", get(stores::states))
        .route(
            "/console/key-stores/create",
            get(forms::create_form).post(forms::create),
        )
        .route(
            "/console/key-stores/edit",
            get(forms::edit_form).post(forms::edit),
        )
        .route(
            "/console/key-stores/delete",
            get(stores::delete_confirm).post(stores::delete),
        )
        .route("/console/key-stores/connect", post(stores::connect))
        .route("/console/key-stores/disconnect", post(stores::disconnect))
        .route("/console/key-stores/{id}/keys", get(keys::list))
        .route(
            "/console/keys/schedule-deletion",
            post(keys::schedule_deletion),
        )
        .route("/console/keys/cancel-deletion", post(keys::cancel_deletion))
        .route("/console/simulator", get(sim::show))
        .route("/console/simulator/clock", post(sim::advance_clock))
        .route("/console/simulator/fault", post(sim::set_fault))
        // Forms are read whole: the same size limit as every other door (413 beyond it).
        .layer(axum::extract::DefaultBodyLimit::max(
            app.config.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(app, guard))
}

async fn to_key_stores() -> Redirect {
    Redirect::to("/console/key-stores")
}

/// `GET /` from a browser (it accepts HTML): off to the console. Other clients get a 404 that
/// says where things are, since the API doors only take POSTs.
pub async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        Redirect::to("/console/").into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            "cks-sim: POST KMS and cloudhsmv2 requests to /; the console is at /console/\n",
        )
            .into_response()
    }
}

/// Refuse requests addressed to anything but a loopback name (DNS rebinding; unless the
/// server was started with `--allow-remote`) and state changes from other origins, then add
/// the console's security headers.
async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !app.config.allow_remote && !crate::protocol::host::is_loopback_host(host) {
        return layout::forbidden();
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !same_origin(req.headers()) {
        return layout::forbidden();
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A POST is the console's own when its `Origin` is `http://<Host>` and the browser does not
/// call it cross-site. A request without `Origin` (browsers always send it on POST) is refused.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(host), Some(origin)) = (text(header::HOST), text(header::ORIGIN)) else {
        return false;
    };
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s == "cross-site");
    !cross_site && origin.eq_ignore_ascii_case(&format!("http://{host}"))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Run one KMS operation through the API's own entry point, with a JSON object as input.
async fn kms_call(app: &Arc<App>, op: &str, input: Value) -> Result<Value, KmsError> {
    let Value::Object(members) = input else {
        return Err(KmsError::internal("console input is not an object"));
    };
    crate::protocol::dispatch::kms(app, op, Input(members))
        .await?
        .map(|r| crate::protocol::response::to_json(&r))
        .ok_or_else(|| KmsError::internal(format!("unknown operation {op}")))
}

/// A JSON response.
fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A `303 See Other` to `location` (after a successful POST).
fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// Percent-encode a query value.
fn query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Format epoch seconds for people: `2026-12-05 02:35:54 UTC`.
fn when(secs: f64) -> String {
    crate::control::iso8601(secs)
        .replace('T', " ")
        .replace('Z', " UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_post_from_the_same_origin_is_accepted() {
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:4599"),
            ("origin", "http://127.0.0.1:4599"),
            ("sec-fetch-site", "same-origin"),
        ])));
    }

    #[test]
    fn a_post_from_another_origin_or_without_origin_is_refused() {
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:4599"),
            ("origin", "http://localhost:4599"),
        ])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:4599")])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:4599"),
            ("origin", "null"),
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:4599"),
            ("origin", "http://127.0.0.1:4599"),
            ("sec-fetch-site", "cross-site"),
        ])));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("a b&c=<d>"), "a%20b%26c%3D%3Cd%3E");
    }
}

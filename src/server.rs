//! The HTTP server: one loopback port, four doors (architecture §1).
//!
//! - `POST /` with `X-Amz-Target: TrentService.<Op>` → KMS (awsJson1_1);
//! - `POST /` with `X-Amz-Target: BaldrApiService.<Op>` → cloudhsmv2 (awsJson1_1);
//! - `POST /service/BaldrApiService/operation/<Op>` → cloudhsmv2 (rpc-v2-cbor);
//! - `POST /` form-encoded (or a presigned `GET /?Action=…`) → STS (query protocol);
//! - `/_sim/…` → the simulator's control door;
//! - `/console/…` → the console (HTML for a browser; any other `GET /` from a browser lands
//!   there).
//!
//! Every KMS, cloudhsmv2 and STS request passes [`crate::auth::http`] (SigV4, quotas) before
//! dispatch; `/_sim` and the console do not.

use crate::app::App;
use crate::auth::http::{self as edge, Door, Edge};
use crate::cluster::error::CloudHsmError;
use crate::kms::error::{KmsError, KmsErrorKind};
use crate::protocol::body::{BodyError, Received};
use crate::protocol::cbor;
use crate::protocol::error::DoorError;
use crate::protocol::input::Input;
use crate::protocol::response::{Cbor, cbor_response, json_response};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use std::future::Future;
use std::sync::Arc;

/// Build the router for `app`.
pub fn router(app: Arc<App>) -> Router {
    let edge = Arc::new(Edge::new(&app.config));
    Router::new()
        .route("/", post(aws_json).get(root_get))
        .route("/service/BaldrApiService/operation/{op}", post(cbor_op))
        .nest("/_sim", crate::control::router(Arc::clone(&app)))
        .merge(crate::console::router(Arc::clone(&app)))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            detached,
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(Extension(edge))
        .with_state(app)
}

/// The shape of an error the server itself gives (a timeout, a failed task): the door's.
#[derive(Debug, Clone, Copy)]
enum ErrorShape {
    Kms,
    CloudHsmJson,
    CloudHsmCbor,
    Control,
}

impl ErrorShape {
    fn of(req: &axum::extract::Request) -> ErrorShape {
        let path = req.uri().path();
        if path.starts_with("/service/") {
            ErrorShape::CloudHsmCbor
        } else if path.starts_with("/_sim") {
            ErrorShape::Control
        } else if req
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.as_bytes().starts_with(b"BaldrApiService."))
        {
            ErrorShape::CloudHsmJson
        } else {
            ErrorShape::Kms
        }
    }

    /// The door's internal-failure answer; `detail` goes to the log only.
    fn internal(self, detail: &str) -> Response {
        match self {
            ErrorShape::Kms => KmsError::internal(detail).into_response(),
            ErrorShape::CloudHsmJson => CloudHsmError::internal(detail).into_response(),
            ErrorShape::CloudHsmCbor => Cbor(CloudHsmError::internal(detail)).into_response(),
            ErrorShape::Control => crate::control::ControlError::internal(detail).into_response(),
        }
    }
}

/// Every request runs to completion in a task of its own, detached from its connection: a
/// client that hangs up or times out never stops a mutation between its token work, its
/// SQLite commit and its change to memory (so the three never disagree). A request that takes
/// longer than `request_timeout` is answered with an internal error while its work goes on.
///
/// The task holds one of `max_connections` permits until it ends, so clients that hang up
/// and come back cannot pile up detached work: requests in flight (and with them the jobs in
/// each token's queue, one per request at most) stay bounded, and a new request waits for a
/// permit.
async fn detached(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let door = ErrorShape::of(&req);
    let Ok(permit) = Arc::clone(&app.in_flight).acquire_owned().await else {
        return door.internal("the server is shutting down");
    };
    let work = tokio::spawn(async move {
        let response = next.run(req).await;
        drop(permit);
        response
    });
    let limit = app.config.limits.request_timeout;
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => door.internal(&format!("the request's task failed: {e}")),
        Err(_) => door.internal(&format!(
            "the request did not complete within {} ms (server.request_timeout_ms); its work goes on",
            limit.as_millis()
        )),
    }
}

/// Serve `app` on `listener` until `shutdown` resolves; connections still open 800 ms later
/// are dropped (and that is logged).
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listener = crate::listener::LimitedListener::new(listener, &app.config.limits);
    let serve = axum::serve(listener, router(app)).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let deadline = async move {
        if rx.await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = serve => r,
        () = deadline => {
            tracing::warn!("connections still open 800 ms after the stop request were dropped");
            Ok(())
        }
    }
}

/// Read the body with the configured limit and the shared budget (see
/// [`crate::protocol::body`]).
async fn read_body(app: &App, body: Body) -> Result<Received, BodyError> {
    crate::protocol::body::read_limited(body, app.config.max_body_bytes, &app.body_budget).await
}

/// The answer to a body that was not read: 413 for one too large, a throttle (which the
/// SDKs retry) when the bodies in flight hold the whole budget.
fn unread(e: BodyError, cbor: bool) -> Response {
    let error = match e {
        BodyError::TooLarge(_) => DoorError::BodyTooLarge(e.to_string()),
        BodyError::Busy => DoorError::Throttling(e.to_string()),
    };
    if cbor {
        Cbor(error).into_response()
    } else {
        error.into_response()
    }
}

/// STS's presigned form: `GET /?Action=GetCallerIdentity&X-Amz-…`.
/// `GET /`: a presigned STS request (`?Action=…`), else the way to the console.
async fn root_get(
    edge: Extension<Arc<Edge>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let is_sts = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("Action=")));
    if is_sts {
        sts_get(edge, method, uri, headers).await
    } else {
        crate::console::root(headers).await
    }
}

async fn sts_get(
    Extension(edge): Extension<Arc<Edge>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    edge::sts_door(&edge, &method, &uri, &headers, b"")
}

async fn aws_json(
    State(app): State<Arc<App>>,
    Extension(edge): Extension<Arc<Edge>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = match read_body(&app, body).await {
        Ok(r) => r,
        Err(e) => return unread(e, false),
    };
    let body = &received.bytes;
    if edge::is_query_protocol(&headers) {
        return edge::sts_door(&edge, &method, &uri, &headers, body);
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let door = if target.starts_with("BaldrApiService.") {
        Door::CloudHsmJson
    } else {
        Door::Kms
    };
    let caller = match edge::authenticate(&edge, door, &method, &uri, &headers, body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some((service, op)) = target.split_once('.') else {
        return KmsError::new(
            KmsErrorKind::UnknownOperation,
            format!(
                "Missing or malformed X-Amz-Target header {target:?}: expected TrentService.<Operation> or BaldrApiService.<Operation>."
            ),
        )
        .into_response();
    };
    let input = match Input::parse_json(body) {
        Ok(i) => i,
        Err(e) => return crate::kms::input_err(e).into_response(),
    };
    if service == "TrentService"
        && let Err(r) = edge::throttle(&edge, &app, &caller, op, &input)
    {
        return *r;
    }
    let ns = edge::namespace_of(&edge, &app, &caller);
    match service {
        "TrentService" => {
            let run = crate::protocol::dispatch::kms(&app, op, input);
            match crate::namespace::scoped(&app, ns, run).await {
                Ok(Some(r)) => json_response(200, &crate::protocol::response::to_json(&r), None),
                Ok(None) => unknown(target).into_response(),
                Err(e) => e.into_response(),
            }
        }
        "BaldrApiService" => {
            let run = crate::protocol::dispatch::cloudhsm(&app, op, input);
            match crate::namespace::scoped(&app, ns, run).await {
                Ok(Some(r)) => json_response(200, &crate::protocol::response::to_json(&r), None),
                Ok(None) => unknown(target).into_response(),
                Err(e) => e.into_response(),
            }
        }
        _ => unknown(target).into_response(),
    }
}

fn unknown(target: &str) -> KmsError {
    KmsError::new(
        KmsErrorKind::UnknownOperation,
        format!("cks-sim does not serve the operation {target:?}."),
    )
}

async fn cbor_op(
    State(app): State<Arc<App>>,
    Extension(edge): Extension<Arc<Edge>>,
    Path(op): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = match read_body(&app, body).await {
        Ok(r) => r,
        Err(e) => return unread(e, true),
    };
    let body = &received.bytes;
    let caller = match edge::authenticate(&edge, Door::CloudHsmCbor, &method, &uri, &headers, body)
    {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let ns = edge::namespace_of(&edge, &app, &caller);
    if headers.get("smithy-protocol").and_then(|v| v.to_str().ok()) != Some("rpc-v2-cbor") {
        return Cbor(CloudHsmError::invalid(
            "rpc-v2-cbor requests must carry the header smithy-protocol: rpc-v2-cbor",
        ))
        .into_response();
    }
    let input = match cbor::decode_request(body)
        .map_err(|e| e.to_string())
        .and_then(|v| Input::from_value(v).map_err(|e| e.to_string()))
    {
        Ok(i) => i,
        Err(m) => return Cbor(DoorError::Serialization(m)).into_response(),
    };
    let run = crate::protocol::dispatch::cloudhsm(&app, &op, input);
    match crate::namespace::scoped(&app, ns, run).await {
        Ok(Some(r)) => cbor_response(200, cbor::encode_typed(&r)),
        Ok(None) => Cbor(DoorError::UnknownOperation(format!(
            "cks-sim does not serve the cloudhsmv2 operation {op:?}."
        )))
        .into_response(),
        Err(e) => Cbor(e).into_response(),
    }
}

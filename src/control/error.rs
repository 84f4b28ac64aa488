//! The control door's errors: `{"__type", "message"}` with a 4xx or 5xx status. The door is
//! the simulator's own (no AWS service has it), so its error names are its own too.

use crate::cluster::error::CloudHsmError;
use crate::protocol::body::BodyError;
use crate::protocol::response::json_error;
use axum::response::{IntoResponse, Response};

/// A control-door error.
#[derive(Debug)]
pub struct ControlError {
    status: u16,
    type_name: &'static str,
    message: String,
}

impl ControlError {
    /// 400 `InvalidRequest`.
    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self::of(400, "InvalidRequest", message)
    }

    /// 404 `ResourceNotFound`.
    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::of(404, "ResourceNotFound", message)
    }

    /// 403 `Forbidden`.
    pub(super) fn forbidden(message: impl Into<String>) -> Self {
        Self::of(403, "Forbidden", message)
    }

    /// 500 `InternalError`: a failure of the simulator itself (logged).
    pub fn internal(detail: &str) -> Self {
        tracing::error!(%detail, "internal failure in the control door");
        Self::of(500, "InternalError", detail)
    }

    /// A body that was not read: 413 `RequestEntityTooLarge`, or 503 `Busy` when the bodies
    /// in flight hold the server's whole budget.
    pub(super) fn unread(e: &BodyError) -> Self {
        match e {
            BodyError::TooLarge(_) => Self::of(413, "RequestEntityTooLarge", e.to_string()),
            BodyError::Busy => Self::of(503, "Busy", e.to_string()),
        }
    }

    fn of(status: u16, type_name: &'static str, message: impl Into<String>) -> Self {
        ControlError {
            status,
            type_name,
            message: message.into(),
        }
    }
}

impl From<CloudHsmError> for ControlError {
    fn from(e: CloudHsmError) -> Self {
        Self::of(e.status(), e.type_name(), e.message)
    }
}

impl From<crate::kms::error::KmsError> for ControlError {
    fn from(e: crate::kms::error::KmsError) -> Self {
        Self::of(e.status(), e.type_name(), e.message)
    }
}

impl From<crate::hsm::HsmError> for ControlError {
    fn from(e: crate::hsm::HsmError) -> Self {
        Self::of(500, "HsmError", e.to_string())
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        json_error(self.status, self.type_name, &self.message)
    }
}

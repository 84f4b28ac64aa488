//! `CloudHsmError`: the cloudhsmv2 exceptions, the one home of their `__type` names and HTTP
//! statuses (the CloudHSM twin of `kms/error.rs`).
//!
//! The cluster layer (API operations, user management, faults, seeding) returns this error;
//! the doors only encode it. Unexpected failures of lower layers (SQLite, PKCS#11) become
//! `CloudHsmInternalFailureException` with a generic message; their detail goes to the log.
//!
//! Wording: AWS's messages for cloudhsmv2 refusals are mostly unpublished. Where one was found
//! (a recorded response), the helper that builds it says so; every other message of the
//! cluster layer is cks-sim's own, AWS's wording for it not having been found.

use crate::hsm::HsmError;
use crate::protocol::input::InputError;
use crate::store::StoreError;
use std::fmt;

/// A cloudhsmv2 exception, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudHsmError {
    /// Which exception.
    pub kind: CloudHsmErrorKind,
    /// The message (sent as `Message`).
    pub message: String,
}

/// The exceptions of the cloudhsmv2 model (every one it declares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloudHsmErrorKind {
    /// `CloudHsmAccessDeniedException`: the caller may not do this (also: a wrong password
    /// or a locked user in the simulated CloudHSM CLI).
    AccessDenied,
    /// `CloudHsmInternalFailureException`: a failure inside the simulator (HTTP 500).
    InternalFailure,
    /// `CloudHsmInvalidRequestException`: bad input, or an operation not allowed in the
    /// resource's current state.
    InvalidRequest,
    /// `CloudHsmResourceNotFoundException`: no such cluster, HSM, backup or user.
    ResourceNotFound,
    /// `CloudHsmResourceLimitExceededException`: a quota (tags per resource, users per
    /// cluster) would be exceeded.
    ResourceLimitExceeded,
    /// `CloudHsmServiceException`: a generic service-side refusal.
    Service,
    /// `CloudHsmTagException`: a tag key or value is not acceptable.
    Tag,
}

impl CloudHsmErrorKind {
    /// The wire `__type` (the model's shape name).
    pub fn type_name(self) -> &'static str {
        match self {
            CloudHsmErrorKind::AccessDenied => "CloudHsmAccessDeniedException",
            CloudHsmErrorKind::InternalFailure => "CloudHsmInternalFailureException",
            CloudHsmErrorKind::InvalidRequest => "CloudHsmInvalidRequestException",
            CloudHsmErrorKind::ResourceNotFound => "CloudHsmResourceNotFoundException",
            CloudHsmErrorKind::ResourceLimitExceeded => "CloudHsmResourceLimitExceededException",
            CloudHsmErrorKind::Service => "CloudHsmServiceException",
            CloudHsmErrorKind::Tag => "CloudHsmTagException",
        }
    }

    /// The HTTP status: 400 for client errors, 500 for `InternalFailure` (the model marks
    /// only that shape as a fault).
    pub fn status(self) -> u16 {
        match self {
            CloudHsmErrorKind::InternalFailure => 500,
            _ => 400,
        }
    }
}

impl CloudHsmError {
    /// An error of `kind` with `message`.
    pub fn new(kind: CloudHsmErrorKind, message: impl Into<String>) -> Self {
        CloudHsmError {
            kind,
            message: message.into(),
        }
    }

    /// The wire `__type`.
    pub fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// `CloudHsmInvalidRequestException`.
    pub fn invalid(message: impl Into<String>) -> Self {
        CloudHsmError::new(CloudHsmErrorKind::InvalidRequest, message)
    }

    /// `CloudHsmResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        CloudHsmError::new(CloudHsmErrorKind::ResourceNotFound, message)
    }

    /// `CloudHsmAccessDeniedException`.
    pub fn denied(message: impl Into<String>) -> Self {
        CloudHsmError::new(CloudHsmErrorKind::AccessDenied, message)
    }

    /// `CloudHsmResourceNotFoundException` for a cluster ID. AWS's wording was not found in
    /// its documentation or in recordings of its responses; these words are cks-sim's.
    pub fn cluster_not_found(cluster_id: &str) -> Self {
        CloudHsmError::not_found(format!("The cluster {cluster_id} was not found"))
    }

    /// `CloudHsmInvalidRequestException` for an `HsmType` CloudHSM does not offer, in AWS's
    /// words (a recorded `CreateCluster` response): `Provided HsmType is not supported.`
    pub fn hsm_type_not_supported() -> Self {
        CloudHsmError::invalid("Provided HsmType is not supported.")
    }

    /// `CloudHsmInternalFailureException` for an unexpected failure; the detail is logged,
    /// not sent.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(%detail, "internal failure in the CloudHSM layer");
        CloudHsmError::new(
            CloudHsmErrorKind::InternalFailure,
            "The request failed because of an internal error in the simulator; see its log.",
        )
    }
}

impl fmt::Display for CloudHsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name(), self.message)
    }
}

impl std::error::Error for CloudHsmError {}

impl From<InputError> for CloudHsmError {
    /// cloudhsmv2 answers both a wrong type and a missing or out-of-range member with
    /// `CloudHsmInvalidRequestException`.
    fn from(e: InputError) -> Self {
        CloudHsmError::invalid(e.to_string())
    }
}

impl From<StoreError> for CloudHsmError {
    fn from(e: StoreError) -> Self {
        CloudHsmError::internal(e)
    }
}

impl From<HsmError> for CloudHsmError {
    /// On the CloudHSM side every PKCS#11 failure (token creation, PIN changes, an injected
    /// token fault) is the service's own failure.
    fn from(e: HsmError) -> Self {
        CloudHsmError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses() {
        let all = [
            (
                CloudHsmErrorKind::AccessDenied,
                "CloudHsmAccessDeniedException",
                400,
            ),
            (
                CloudHsmErrorKind::InternalFailure,
                "CloudHsmInternalFailureException",
                500,
            ),
            (
                CloudHsmErrorKind::InvalidRequest,
                "CloudHsmInvalidRequestException",
                400,
            ),
            (
                CloudHsmErrorKind::ResourceNotFound,
                "CloudHsmResourceNotFoundException",
                400,
            ),
            (
                CloudHsmErrorKind::ResourceLimitExceeded,
                "CloudHsmResourceLimitExceededException",
                400,
            ),
            (CloudHsmErrorKind::Service, "CloudHsmServiceException", 400),
            (CloudHsmErrorKind::Tag, "CloudHsmTagException", 400),
        ];
        for (k, name, status) in all {
            let e = CloudHsmError::new(k, "m");
            assert_eq!(e.type_name(), name);
            assert_eq!(e.status(), status, "{name}");
        }
    }

    #[test]
    fn input_errors_are_invalid_requests_with_their_text() {
        let e: CloudHsmError = InputError::Missing {
            member: "ClusterId".into(),
        }
        .into();
        assert_eq!(e.kind, CloudHsmErrorKind::InvalidRequest);
        assert_eq!(e.message, "member ClusterId is required");
        assert_eq!(
            e.to_string(),
            "CloudHsmInvalidRequestException: member ClusterId is required"
        );
    }
}

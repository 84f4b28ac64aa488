//! The doors' own errors: what a request is answered with when it never reaches an operation
//! (its signature is refused, a quota or the body budget throttles it, its body is too large
//! or does not decode, it names an operation no door serves). The KMS and cloudhsmv2 domains'
//! errors are `KmsError` and `CloudHsmError`; these are the ones every door shares, and the
//! only place their exception names are spelled.

/// An error of the door itself, with AWS's exception name on the JSON and CBOR wires and its
/// code on STS's query wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorError {
    /// No signature at all.
    MissingAuthenticationToken(String),
    /// A signature that lacks a part (header, scope, signed headers...).
    IncompleteSignature(String),
    /// An access key the simulator does not know.
    UnrecognizedClient(String),
    /// A signature that does not verify, is expired, or has the wrong scope.
    InvalidSignature(String),
    /// A request-rate quota, or the budget of body bytes in flight, is exhausted.
    Throttling(String),
    /// A body over `max_body_bytes`.
    BodyTooLarge(String),
    /// An rpc-v2-cbor body that does not decode.
    Serialization(String),
    /// An rpc-v2-cbor operation the cloudhsmv2 door does not serve.
    UnknownOperation(String),
}

impl DoorError {
    /// The exception name on the JSON and CBOR wires.
    pub fn type_name(&self) -> &'static str {
        match self {
            DoorError::MissingAuthenticationToken(_) => "MissingAuthenticationTokenException",
            DoorError::IncompleteSignature(_) => "IncompleteSignatureException",
            DoorError::UnrecognizedClient(_) => "UnrecognizedClientException",
            DoorError::InvalidSignature(_) => "InvalidSignatureException",
            DoorError::Throttling(_) => "ThrottlingException",
            DoorError::BodyTooLarge(_) => "ValidationException",
            DoorError::Serialization(_) => "SerializationException",
            DoorError::UnknownOperation(_) => "UnknownOperationException",
        }
    }

    /// The error code on STS's query wire (for the errors STS can give).
    pub fn query_code(&self) -> &'static str {
        match self {
            DoorError::MissingAuthenticationToken(_) => "MissingAuthenticationToken",
            DoorError::IncompleteSignature(_) => "IncompleteSignature",
            DoorError::UnrecognizedClient(_) => "InvalidClientTokenId",
            DoorError::InvalidSignature(_) => "SignatureDoesNotMatch",
            DoorError::Throttling(_) => "Throttling",
            DoorError::BodyTooLarge(_) | DoorError::Serialization(_) => "MalformedInput",
            DoorError::UnknownOperation(_) => "InvalidAction",
        }
    }

    /// The HTTP status on the JSON and CBOR wires.
    pub fn status(&self) -> u16 {
        match self {
            DoorError::BodyTooLarge(_) => 413,
            DoorError::UnknownOperation(_) => 404,
            _ => 400,
        }
    }

    /// The HTTP status on STS's query wire: 403 for a refused credential or signature.
    pub fn query_status(&self) -> u16 {
        match self {
            DoorError::MissingAuthenticationToken(_)
            | DoorError::UnrecognizedClient(_)
            | DoorError::InvalidSignature(_) => 403,
            _ => self.status(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            DoorError::MissingAuthenticationToken(m)
            | DoorError::IncompleteSignature(m)
            | DoorError::UnrecognizedClient(m)
            | DoorError::InvalidSignature(m)
            | DoorError::Throttling(m)
            | DoorError::BodyTooLarge(m)
            | DoorError::Serialization(m)
            | DoorError::UnknownOperation(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DoorError;

    #[test]
    fn a_refused_credential_is_400_on_the_json_wires_and_403_on_sts() {
        for e in [
            DoorError::MissingAuthenticationToken(String::new()),
            DoorError::UnrecognizedClient(String::new()),
            DoorError::InvalidSignature(String::new()),
        ] {
            assert_eq!((e.status(), e.query_status()), (400, 403), "{e:?}");
        }
        let e = DoorError::IncompleteSignature(String::new());
        assert_eq!((e.status(), e.query_status()), (400, 400));
    }

    #[test]
    fn a_body_too_large_is_a_413_validation_exception() {
        let e = DoorError::BodyTooLarge("too large".into());
        assert_eq!((e.status(), e.type_name()), (413, "ValidationException"));
    }
}

//! `KmsError`: one variant per KMS exception we emit; the only place that names KMS `__type`
//! strings and HTTP statuses.
//!
//! Wording: the messages asserted in `tests/api/wording.rs` (and the helpers below whose doc
//! says "AWS's words") are AWS's exact words, taken from recorded responses of real AWS. Any
//! other message is cks-sim's own unless its site says otherwise: AWS's wording for that
//! refusal was not found (not in AWS's documentation, not in published recordings).

use std::fmt;

/// A KMS exception, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsError {
    /// Which exception.
    pub kind: KmsErrorKind,
    /// The message sent as `message`.
    pub message: String,
}

/// The KMS exceptions (names from the KMS service model), plus the generic awsJson1_1 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum KmsErrorKind {
    AlreadyExists,
    CloudHsmClusterInUse,
    CloudHsmClusterInvalidConfiguration,
    CloudHsmClusterNotActive,
    CloudHsmClusterNotFound,
    CloudHsmClusterNotRelated,
    CustomKeyStoreHasCmks,
    CustomKeyStoreInvalidState,
    CustomKeyStoreNameInUse,
    CustomKeyStoreNotFound,
    DependencyTimeout,
    Disabled,
    DryRunOperation,
    ExpiredImportToken,
    IncorrectKey,
    IncorrectKeyMaterial,
    IncorrectTrustAnchor,
    InvalidAliasName,
    InvalidArn,
    InvalidCiphertext,
    InvalidImportToken,
    InvalidGrantId,
    InvalidGrantToken,
    InvalidKeyUsage,
    InvalidMarker,
    KmsInternal,
    KmsInvalidState,
    KmsInvalidSignature,
    KmsInvalidMac,
    LimitExceeded,
    MalformedPolicyDocument,
    NotFound,
    Tag,
    UnsupportedOperation,
    Validation,
    Serialization,
    UnknownOperation,
    AccessDenied,
}

impl KmsErrorKind {
    /// The wire `__type` (the model's shape name).
    pub fn type_name(self) -> &'static str {
        use KmsErrorKind::*;
        match self {
            AlreadyExists => "AlreadyExistsException",
            CloudHsmClusterInUse => "CloudHsmClusterInUseException",
            CloudHsmClusterInvalidConfiguration => "CloudHsmClusterInvalidConfigurationException",
            CloudHsmClusterNotActive => "CloudHsmClusterNotActiveException",
            CloudHsmClusterNotFound => "CloudHsmClusterNotFoundException",
            CloudHsmClusterNotRelated => "CloudHsmClusterNotRelatedException",
            CustomKeyStoreHasCmks => "CustomKeyStoreHasCMKsException",
            CustomKeyStoreInvalidState => "CustomKeyStoreInvalidStateException",
            CustomKeyStoreNameInUse => "CustomKeyStoreNameInUseException",
            CustomKeyStoreNotFound => "CustomKeyStoreNotFoundException",
            DependencyTimeout => "DependencyTimeoutException",
            Disabled => "DisabledException",
            DryRunOperation => "DryRunOperationException",
            ExpiredImportToken => "ExpiredImportTokenException",
            IncorrectKey => "IncorrectKeyException",
            IncorrectKeyMaterial => "IncorrectKeyMaterialException",
            InvalidImportToken => "InvalidImportTokenException",
            IncorrectTrustAnchor => "IncorrectTrustAnchorException",
            InvalidAliasName => "InvalidAliasNameException",
            InvalidArn => "InvalidArnException",
            InvalidCiphertext => "InvalidCiphertextException",
            InvalidGrantId => "InvalidGrantIdException",
            InvalidGrantToken => "InvalidGrantTokenException",
            InvalidKeyUsage => "InvalidKeyUsageException",
            InvalidMarker => "InvalidMarkerException",
            KmsInternal => "KMSInternalException",
            KmsInvalidState => "KMSInvalidStateException",
            KmsInvalidSignature => "KMSInvalidSignatureException",
            KmsInvalidMac => "KMSInvalidMacException",
            LimitExceeded => "LimitExceededException",
            MalformedPolicyDocument => "MalformedPolicyDocumentException",
            NotFound => "NotFoundException",
            Tag => "TagException",
            UnsupportedOperation => "UnsupportedOperationException",
            Validation => "ValidationException",
            Serialization => "SerializationException",
            UnknownOperation => "UnknownOperationException",
            AccessDenied => "AccessDeniedException",
        }
    }

    /// The HTTP status: real KMS answers client errors with 400 (the Smithy model's 404/409
    /// annotations are not what the service sends); internal failures 500, timeouts 503.
    pub fn status(self) -> u16 {
        match self {
            KmsErrorKind::KmsInternal => 500,
            KmsErrorKind::DependencyTimeout => 503,
            KmsErrorKind::DryRunOperation => 412,
            _ => 400,
        }
    }
}

impl KmsError {
    /// An error of `kind` with `message`.
    pub fn new(kind: KmsErrorKind, message: impl Into<String>) -> Self {
        KmsError {
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

    /// `ValidationException` in AWS's generic form. A sensitive member's value is left out,
    /// as AWS leaves it out: `Value at 'plaintext' failed to satisfy constraint: …`.
    pub fn validation(member: &str, value: impl fmt::Display, rule: &str) -> Self {
        let at = camel(member);
        let message = if crate::protocol::input::is_sensitive(member) {
            format!(
                "1 validation error detected: Value at '{at}' failed to satisfy constraint: {rule}"
            )
        } else {
            format!(
                "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: {rule}"
            )
        };
        KmsError::new(KmsErrorKind::Validation, message)
    }

    /// `ValidationException` for a missing required member.
    pub fn missing(member: &str) -> Self {
        KmsError::new(
            KmsErrorKind::Validation,
            format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                camel(member)
            ),
        )
    }

    /// `NotFoundException` for a `KeyId` that is no key ID at all (not a hyphenated UUID nor
    /// an `mrk-` ID), in AWS's recorded words: `Invalid keyId 'fake-key-id'`.
    pub fn invalid_key_id(raw: &str) -> Self {
        KmsError::new(KmsErrorKind::NotFound, format!("Invalid keyId '{raw}'"))
    }

    /// `NotFoundException` for a key ARN of another Region, in AWS's recorded words:
    /// `Invalid arn ap-southeast-1`.
    pub fn invalid_arn_region(region: &str) -> Self {
        KmsError::new(KmsErrorKind::NotFound, format!("Invalid arn {region}"))
    }

    /// `TagException` for more than 50 tags on a key (AWS's recorded words).
    pub fn too_many_tags() -> Self {
        KmsError::new(KmsErrorKind::Tag, "Too many tags")
    }

    /// `TagException` for a tag key beginning with `aws:` in any case (AWS's recorded words).
    pub fn reserved_tag_prefix() -> Self {
        KmsError::new(KmsErrorKind::Tag, "Tags beginning with aws: are reserved")
    }

    /// `TagException` for a tag key given twice in one request (AWS's words, as recorded by
    /// AWS-validated emulator tests).
    pub fn duplicate_tag_keys() -> Self {
        KmsError::new(KmsErrorKind::Tag, "Duplicate tag keys")
    }

    /// `ValidationException` for an alias name without the `alias/` prefix: AWS answers it
    /// as a `ValidationException` (not `InvalidAliasNameException`) with these words
    /// (recorded responses).
    pub fn alias_prefix_missing() -> Self {
        KmsError::new(
            KmsErrorKind::Validation,
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
        )
    }

    /// `ValidationException` for an alias name with a character the model's pattern admits but
    /// KMS refuses (`:`), in AWS's recorded words: `alias/a:b contains invalid characters for
    /// an alias`.
    pub fn alias_invalid_characters(name: &str) -> Self {
        KmsError::new(
            KmsErrorKind::Validation,
            format!("{name} contains invalid characters for an alias"),
        )
    }

    /// `IncorrectKeyException` for a `KeyId` (or `SourceKeyId`) that is not the key of the
    /// ciphertext, in AWS's recorded words.
    pub fn incorrect_key() -> Self {
        KmsError::new(
            KmsErrorKind::IncorrectKey,
            "The key ID in the request does not identify a CMK that can perform this operation.",
        )
    }

    /// `InvalidKeyUsageException` for an algorithm the key spec does not offer, in AWS's
    /// recorded words: `Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_4096.`
    pub fn incompatible_algorithm(algorithm: &str, key_spec: &str) -> Self {
        KmsError::new(
            KmsErrorKind::InvalidKeyUsage,
            format!("Algorithm {algorithm} is incompatible with key spec {key_spec}."),
        )
    }

    /// `ValidationException` for an RSA plaintext longer than the algorithm and key spec
    /// take, in AWS's recorded words.
    pub fn plaintext_too_large(algorithm: &str, key_spec: &str, max: usize) -> Self {
        KmsError::new(
            KmsErrorKind::Validation,
            format!(
                "Algorithm {algorithm} and key spec {key_spec} cannot encrypt data larger than {max} bytes."
            ),
        )
    }

    /// `KMSInvalidSignatureException`: AWS sends it with an empty message (recorded
    /// responses), so an empty message is left out of the response.
    pub fn invalid_signature() -> Self {
        KmsError::new(KmsErrorKind::KmsInvalidSignature, "")
    }

    /// `KMSInvalidMacException`: AWS sends it with an empty message (recorded responses).
    pub fn invalid_mac() -> Self {
        KmsError::new(KmsErrorKind::KmsInvalidMac, "")
    }

    /// `ValidationException` for a `CreateKey` of a key spec without `ENCRYPT_DECRYPT` and no
    /// `KeyUsage`, in AWS's recorded words.
    pub fn key_usage_required() -> Self {
        KmsError::new(
            KmsErrorKind::Validation,
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
        )
    }

    /// `ValidationException` for `ImportKeyMaterial` with `KEY_MATERIAL_EXPIRES` and no
    /// `ValidTo`, in AWS's recorded words.
    pub fn valid_to_required() -> Self {
        KmsError::new(
            KmsErrorKind::Validation,
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES",
        )
    }

    /// `CloudHsmClusterInvalidConfigurationException` for a cluster without active HSMs in two
    /// Availability Zones (CreateCustomKeyStore, UpdateCustomKeyStore, CreateKey), in AWS's
    /// words as quoted from a real response in a public write-up (the one source found).
    pub fn cluster_needs_hsms_in_two_azs() -> Self {
        KmsError::new(
            KmsErrorKind::CloudHsmClusterInvalidConfiguration,
            "CloudHSM cluster must contain active HSMs in at least two Availability Zones",
        )
    }

    /// `KMSInternalException` for an unexpected failure; the detail is logged, not sent.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(%detail, "internal failure");
        KmsError::new(
            KmsErrorKind::KmsInternal,
            "The request failed because of an internal error in the simulator; see its log.",
        )
    }
}

fn camel(member: &str) -> String {
    let mut c = member.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name(), self.message)
    }
}

impl std::error::Error for KmsError {}

/// `kms_err!(Kind, "fmt", args…)` builds a `KmsError`.
#[macro_export]
macro_rules! kms_err {
    ($kind:ident, $($arg:tt)*) => {
        $crate::kms::error::KmsError::new($crate::kms::error::KmsErrorKind::$kind, format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_statuses() {
        assert_eq!(
            KmsErrorKind::CustomKeyStoreHasCmks.type_name(),
            "CustomKeyStoreHasCMKsException"
        );
        assert_eq!(
            KmsErrorKind::KmsInternal.type_name(),
            "KMSInternalException"
        );
        assert_eq!(KmsErrorKind::NotFound.status(), 400);
        assert_eq!(KmsErrorKind::KmsInternal.status(), 500);
        let e = KmsError::validation(
            "CustomKeyStoreName",
            "x",
            "Member must have length less than or equal to 256",
        );
        assert!(
            e.message.contains("at 'customKeyStoreName'"),
            "{}",
            e.message
        );
    }
}

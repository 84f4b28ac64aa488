//! `HsmError`: every PKCS#11 failure, classified once in domain words.
//!
//! `HsmError::classify` is the only `match` on `RvError` in the crate. Callers above `hsm/`
//! decide per operation what a failure means on the wire (the same failure is
//! `InvalidCiphertextException` in Decrypt and `KMSInternalException` elsewhere).

use cryptoki::error::{Error as CkError, RvError};
use std::fmt;

/// The PKCS#11 operation that failed: names the call site the way cryptoki's `Function` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsmOp {
    /// Loading or initializing the module.
    Initialize,
    /// Opening a session.
    OpenSession,
    /// `C_Login`.
    Login,
    /// `C_Logout`.
    Logout,
    /// `C_GenerateKey`.
    GenerateKey,
    /// `C_Encrypt` (and the IV it draws).
    Encrypt,
    /// `C_Decrypt`.
    Decrypt,
    /// `C_GenerateRandom`.
    Random,
    /// `C_GenerateKeyPair`.
    GenerateKeyPair,
    /// `C_Sign` (signatures and MACs).
    Sign,
    /// `C_Verify` (signatures and MACs).
    Verify,
    /// `C_DeriveKey` (ECDH).
    Derive,
    /// `C_DestroyObject`.
    Destroy,
    /// `C_FindObjects*` / `C_GetAttributeValue`.
    Inspect,
    /// Token provisioning: `C_InitToken`, `C_InitPIN`, `C_SetPIN`.
    Provision,
}

impl fmt::Display for HsmOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A failure of the PKCS#11 layer.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// No module at the configured or usual paths.
    #[error(
        "no PKCS#11 module found (looked in {looked}); install SoftHSM2 (`apt-get install softhsm2`) \
         or set CKS_SIM_PKCS11_MODULE / [hsm] module to the module's path"
    )]
    ModuleNotFound {
        /// The paths tried, comma-separated.
        looked: String,
    },
    /// The module file exists but could not be loaded or initialized.
    #[error("cannot load PKCS#11 module {path}: {reason}")]
    ModuleLoad {
        /// The module path.
        path: String,
        /// Why.
        reason: String,
    },
    /// No token carries this label.
    #[error(
        "no slot of the PKCS#11 module carries a token labelled {label:?}: list the module's \
         tokens (`pkcs11-tool --module <module> --list-token-slots`) and check the label and \
         the module's own configuration (for SoftHSM2 the file SOFTHSM2_CONF names)"
    )]
    TokenNotFound {
        /// The label searched for.
        label: String,
    },
    /// No free (uninitialized) slot is left to create a token on.
    #[error(
        "no free slot left to create token {label:?} (a kryoptic configuration has a fixed \
         number of slots: raise [hsm] slots)"
    )]
    NoFreeSlot {
        /// The token label that was to be created.
        label: String,
    },
    /// The token refused the PIN.
    #[error("the token refused the PIN ({rv:?})")]
    LoginRejected {
        /// The PKCS#11 return value.
        rv: RvError,
    },
    /// The device lacks a mechanism (or the parameters) the operation needs.
    #[error(
        "the token does not support the mechanism {op} needs ({rv:?}): check the device's \
         mechanisms (`pkcs11-tool --module <module> --list-mechanisms`); key stores need \
         CKM_AES_KEY_GEN and CKM_AES_GCM"
    )]
    MechanismUnsupported {
        /// The operation.
        op: HsmOp,
        /// The PKCS#11 return value.
        rv: RvError,
    },
    /// The key object is not on the token.
    #[error("key object {id} is not present on the token")]
    KeyNotFound {
        /// Hex of the object's `CKA_ID`.
        id: String,
    },
    /// Decryption failed: a bad tag, a changed AAD, a wrong key or a damaged ciphertext.
    /// Vendors disagree on the code (SoftHSM2 `CKR_GENERAL_ERROR`, kryoptic
    /// `CKR_ENCRYPTED_DATA_INVALID`), so any decrypt failure that is not a device or
    /// session failure lands here.
    #[error("the HSM rejected the ciphertext ({rv:?})")]
    CiphertextRejected {
        /// The PKCS#11 return value.
        rv: RvError,
    },
    /// A signature or MAC did not verify (`CKR_SIGNATURE_INVALID`, `CKR_SIGNATURE_LEN_RANGE`).
    #[error("the HSM found the signature invalid ({rv:?})")]
    SignatureRejected {
        /// The PKCS#11 return value.
        rv: RvError,
    },
    /// The device or the session failed; the session is dropped.
    #[error("HSM device or session failure during {op} ({rv:?})")]
    Device {
        /// The operation.
        op: HsmOp,
        /// The PKCS#11 return value.
        rv: RvError,
    },
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 failure during {op}: {detail}")]
    Pkcs11 {
        /// The operation.
        op: HsmOp,
        /// What cryptoki said.
        detail: String,
    },
    /// The token was made to fail by fault injection.
    #[error("the token is failing (injected fault)")]
    InjectedFault,
    /// The blocking worker died.
    #[error("HSM worker stopped: {0}")]
    Worker(String),
}

impl HsmError {
    /// Classify a cryptoki error raised during `op`. The only match on `RvError`.
    pub fn classify(op: HsmOp, err: CkError) -> Self {
        let CkError::Pkcs11(rv, _) = err else {
            return HsmError::Pkcs11 {
                op,
                detail: err.to_string(),
            };
        };
        match rv {
            RvError::DeviceError
            | RvError::DeviceRemoved
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::CryptokiNotInitialized => HsmError::Device { op, rv },
            RvError::PinIncorrect
            | RvError::PinLocked
            | RvError::PinInvalid
            | RvError::PinLenRange
            | RvError::UserPinNotInitialized
                if matches!(op, HsmOp::Login | HsmOp::Provision) =>
            {
                HsmError::LoginRejected { rv }
            }
            RvError::MechanismInvalid | RvError::MechanismParamInvalid if op != HsmOp::Decrypt => {
                HsmError::MechanismUnsupported { op, rv }
            }
            RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => HsmError::KeyNotFound {
                id: String::from("(stale handle)"),
            },
            // SoftHSM2 reports a bad GCM tag as CKR_GENERAL_ERROR, kryoptic as
            // CKR_ENCRYPTED_DATA_INVALID, others CKR_FUNCTION_FAILED: on decrypt, every
            // non-device failure means "this ciphertext does not authenticate".
            _ if op == HsmOp::Decrypt => HsmError::CiphertextRejected { rv },
            RvError::SignatureInvalid | RvError::SignatureLenRange if op == HsmOp::Verify => {
                HsmError::SignatureRejected { rv }
            }
            _ => HsmError::Pkcs11 {
                op,
                detail: format!("{rv:?}"),
            },
        }
    }

    /// Whether the session that produced this error may go back to the pool.
    pub fn keeps_session(&self) -> bool {
        !matches!(self, HsmError::Device { .. } | HsmError::Worker(_))
    }

    /// The PKCS#11 return value, when there is one.
    pub fn rv(&self) -> Option<RvError> {
        match self {
            HsmError::LoginRejected { rv }
            | HsmError::CiphertextRejected { rv }
            | HsmError::SignatureRejected { rv }
            | HsmError::MechanismUnsupported { rv, .. }
            | HsmError::Device { rv, .. } => Some(*rv),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    fn ck(rv: RvError) -> CkError {
        CkError::Pkcs11(rv, Function::Decrypt)
    }

    #[test]
    fn any_decrypt_failure_is_a_rejected_ciphertext() {
        for rv in [
            RvError::GeneralError,
            RvError::EncryptedDataInvalid,
            RvError::FunctionFailed,
        ] {
            assert!(matches!(
                HsmError::classify(HsmOp::Decrypt, ck(rv)),
                HsmError::CiphertextRejected { .. }
            ));
        }
        assert!(matches!(
            HsmError::classify(HsmOp::Encrypt, ck(RvError::GeneralError)),
            HsmError::Pkcs11 { .. }
        ));
    }

    #[test]
    fn device_errors_drop_the_session() {
        let e = HsmError::classify(HsmOp::Decrypt, ck(RvError::DeviceError));
        assert!(matches!(e, HsmError::Device { .. }));
        assert!(!e.keeps_session());
        let e = HsmError::classify(HsmOp::Login, ck(RvError::PinIncorrect));
        assert!(matches!(e, HsmError::LoginRejected { .. }));
        assert!(e.keeps_session());
    }

    #[test]
    fn a_missing_mechanism_is_named_with_what_to_check() {
        let e = HsmError::classify(HsmOp::GenerateKey, ck(RvError::MechanismInvalid));
        assert!(matches!(e, HsmError::MechanismUnsupported { .. }));
        let text = e.to_string();
        assert!(
            text.contains("GenerateKey") && text.contains("--list-mechanisms"),
            "{text}"
        );
    }
}

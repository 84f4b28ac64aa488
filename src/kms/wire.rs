//! Wire-level type checks for KMS requests, run before any operation looks at a value, so a
//! wrongly typed member is always a `SerializationException` (as AWS's deserializer answers)
//! and never a semantic error about another member.

use super::error::{KmsError, KmsErrorKind};
use crate::protocol::input::Input;
use base64::Engine;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum J {
    Str,
    Int,
    Bool,
    Blob,
    Map,
    List,
    Obj,
    Num,
}

/// Every input member of every KMS operation and its JSON type. Derived once from
/// `models/kms-2014-11-01.shapes.json` (each member name has one type across all operations)
/// by listing the input shapes' members and their target shapes' types.
const MEMBERS: &[(&str, J)] = &[
    ("AliasName", J::Str),
    ("BypassPolicyLockoutSafetyCheck", J::Bool),
    ("CiphertextBlob", J::Blob),
    ("CloudHsmClusterId", J::Str),
    ("Constraints", J::Obj),
    ("CustomKeyStoreId", J::Str),
    ("CustomKeyStoreName", J::Str),
    ("CustomKeyStoreType", J::Str),
    ("CustomerMasterKeySpec", J::Str),
    ("Description", J::Str),
    ("DestinationEncryptionAlgorithm", J::Str),
    ("DestinationEncryptionContext", J::Map),
    ("DestinationKeyId", J::Str),
    ("DryRun", J::Bool),
    ("DryRunModifiers", J::List),
    ("EncapsulationAlgorithm", J::Str),
    ("EncryptedKeyMaterial", J::Blob),
    ("EncryptionAlgorithm", J::Str),
    ("EncryptionContext", J::Map),
    ("ExpirationModel", J::Str),
    ("GrantId", J::Str),
    ("GrantToken", J::Str),
    ("GrantTokens", J::List),
    ("GranteePrincipal", J::Str),
    ("GranteeServicePrincipal", J::Str),
    ("ImportToken", J::Blob),
    ("ImportType", J::Str),
    ("IncludeKeyMaterial", J::Str),
    ("KeyAgreementAlgorithm", J::Str),
    ("KeyId", J::Str),
    ("KeyMaterialDescription", J::Str),
    ("KeyMaterialId", J::Str),
    ("KeyPairSpec", J::Str),
    ("KeySpec", J::Str),
    ("KeyStorePassword", J::Str),
    ("KeyUsage", J::Str),
    ("Limit", J::Int),
    ("Mac", J::Blob),
    ("MacAlgorithm", J::Str),
    ("Marker", J::Str),
    ("Message", J::Blob),
    ("MessageType", J::Str),
    ("MultiRegion", J::Bool),
    ("Name", J::Str),
    ("NewCustomKeyStoreName", J::Str),
    ("NumberOfBytes", J::Int),
    ("Operations", J::List),
    ("Origin", J::Str),
    ("PendingWindowInDays", J::Int),
    ("Plaintext", J::Blob),
    ("Policy", J::Str),
    ("PolicyName", J::Str),
    ("PrimaryRegion", J::Str),
    ("PublicKey", J::Blob),
    ("Recipient", J::Obj),
    ("ReplicaRegion", J::Str),
    ("ResourceOwners", J::List),
    ("RetiringPrincipal", J::Str),
    ("RetiringServicePrincipal", J::Str),
    ("RotationPeriodInDays", J::Int),
    ("SharedSecretCiphertextBlob", J::Blob),
    ("Signature", J::Blob),
    ("SigningAlgorithm", J::Str),
    ("SourceEncryptionAlgorithm", J::Str),
    ("SourceEncryptionContext", J::Map),
    ("SourceKeyId", J::Str),
    ("TagKeys", J::List),
    ("Tags", J::List),
    ("TargetKeyId", J::Str),
    ("TrustAnchorCertificate", J::Str),
    ("ValidTo", J::Num),
    ("WrappingAlgorithm", J::Str),
    ("WrappingKeySpec", J::Str),
    ("XksKeyId", J::Str),
    ("XksProxyAuthenticationCredential", J::Obj),
    ("XksProxyConnectivity", J::Str),
    ("XksProxyUriEndpoint", J::Str),
    ("XksProxyUriPath", J::Str),
    ("XksProxyVpcEndpointServiceName", J::Str),
    ("XksProxyVpcEndpointServiceOwner", J::Str),
];

fn kind_of(member: &str) -> Option<J> {
    MEMBERS
        .binary_search_by(|(m, _)| (*m).cmp(member))
        .ok()
        .map(|i| MEMBERS[i].1)
}

fn ser(member: &str, what: &str) -> KmsError {
    KmsError::new(
        KmsErrorKind::Serialization,
        format!("Cannot deserialize member '{member}': it must be {what}."),
    )
}

/// The element type of list members: `Tags` hold tag objects, the others strings.
fn list_item_ok(member: &str, x: &Value) -> bool {
    match member {
        "Tags" => x.as_object().is_some_and(|o| {
            o.iter()
                .all(|(k, v)| !matches!(k.as_str(), "TagKey" | "TagValue") || v.is_string())
        }),
        _ => x.is_string(),
    }
}

/// Check the JSON type of every known member of `input`. Unknown members are ignored, as AWS
/// ignores them.
pub fn typecheck(input: &Input) -> Result<(), KmsError> {
    for (member, v) in &input.0 {
        if v.is_null() {
            continue;
        }
        let Some(kind) = kind_of(member) else {
            continue;
        };
        let ok = match kind {
            J::Str => v.is_string(),
            J::Int => v.as_i64().is_some(),
            J::Bool => v.is_boolean(),
            J::Num => v.is_number(),
            J::Blob => v.as_str().is_some_and(|s| {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .is_ok()
            }),
            J::Map => v
                .as_object()
                .is_some_and(|o| o.values().all(Value::is_string)),
            J::List => v
                .as_array()
                .is_some_and(|items| items.iter().all(|x| list_item_ok(member, x))),
            J::Obj => v.is_object(),
        };
        if !ok {
            let what = match kind {
                J::Str => "a string",
                J::Int => "an integer",
                J::Bool => "a boolean",
                J::Num => "a number",
                J::Blob => "a base64-encoded blob",
                J::Map => "a map of strings to strings",
                J::List => "a list",
                J::Obj => "an object",
            };
            return Err(ser(member, what));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(MEMBERS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let i = Input::parse_json(br#"{"Description": 5, "Policy": "x"}"#).unwrap();
        assert_eq!(typecheck(&i).unwrap_err().kind, KmsErrorKind::Serialization);
        let i = Input::parse_json(br#"{"Plaintext": "!!", "Unknown": 1}"#).unwrap();
        assert_eq!(typecheck(&i).unwrap_err().kind, KmsErrorKind::Serialization);
        let i = Input::parse_json(br#"{"Limit": 5, "Plaintext": "aGk=", "Foo": []}"#).unwrap();
        assert!(typecheck(&i).is_ok());
    }
}

//! Types for the words both domains pass around: cluster, HSM, key store and key IDs, key
//! ARNs and user names. Each is its string on the wire and in the store (serde
//! `transparent`), reads as a `&str` (`Deref`, `Borrow`, so maps keyed by one are searched
//! with a `&str`), and compares with strings, so a value can only be put where its kind goes.

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<String> for $name {
            fn borrow(&self) -> &String {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == &other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

name_type!(
    /// A CloudHSM cluster ID: `cluster-` and 11 base-32 characters.
    ClusterId
);
name_type!(
    /// An HSM ID: `hsm-` and 11 base-32 characters.
    HsmId
);
name_type!(
    /// A CloudHSM user name, lower-case (CloudHSM compares them without case).
    UserName
);

name_type!(
    /// A KMS key ID: a UUID, or `mrk-` and 32 hex digits for a multi-Region key.
    KeyId
);
name_type!(
    /// A KMS key ARN: `arn:aws:kms:<region>:<account>:key/<key id>`.
    KeyArn
);
name_type!(
    /// A custom key store ID: `cks-` and 17 hex digits.
    CustomKeyStoreId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_name_is_its_string_on_the_wire_and_in_a_map() {
        let id = ClusterId::from("cluster-abcdefghijk");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"cluster-abcdefghijk\""
        );
        let back: ClusterId = serde_json::from_str("\"cluster-abcdefghijk\"").unwrap();
        assert_eq!(back, id);
        let mut m = BTreeMap::new();
        m.insert(id.clone(), 1);
        assert_eq!(m.get("cluster-abcdefghijk"), Some(&1));
        assert_eq!(id, "cluster-abcdefghijk");
        assert_eq!("cluster-abcdefghijk", id);
    }
}

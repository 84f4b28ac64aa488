//! Help text for the console: what a KMS exception or a `ConnectionErrorCode` means and how to
//! fix it. The meanings follow the KMS developer guide's troubleshooting page for custom key
//! stores ("How to fix a connection failure") as summarised in the project's specification
//! (§1.8, §2.4); the sentences are the project's own, because AWS publishes no console-ready
//! wording for them.

use crate::kms::error::KmsErrorKind;
use crate::kms::model::ConnectionErrorCode;

/// An explanation of a problem and the fix, in plain words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Help {
    /// What happened.
    pub explanation: &'static str,
    /// What to do about it.
    pub fix: &'static str,
}

const fn help(explanation: &'static str, fix: &'static str) -> Help {
    Help { explanation, fix }
}

/// The help for a failed connection, by its `ConnectionErrorCode`.
pub fn connection_error(code: ConnectionErrorCode) -> Help {
    use ConnectionErrorCode::*;
    match code {
        ClusterNotFound => help(
            "KMS cannot find an AWS CloudHSM cluster with the cluster ID saved in this key store: the ID is wrong or the cluster was deleted.",
            "Create a cluster from a backup of the original one (a related cluster), then use Edit to point the key store at it, and connect again.",
        ),
        SubnetNotFound => help(
            "A private subnet in the cluster's configuration was deleted, so KMS cannot build the network interfaces it needs.",
            "Disconnect the key store, restore the subnet (or a new subnet in the same Availability Zone) in the cluster's configuration, then connect again.",
        ),
        InsufficientFreeAddressesInSubnet => help(
            "A private subnet of the cluster has no free IP address; KMS needs at least one free address in every subnet (two are better).",
            "Disconnect the key store, free some addresses in the cluster's subnets, then connect again.",
        ),
        InsufficientCloudhsmHsms => help(
            "The cluster has no active HSM. KMS needs at least one active HSM to connect (and two, in different Availability Zones, to create keys).",
            "Disconnect the key store, add an HSM to the cluster and wait until it is active, then connect again.",
        ),
        NetworkErrors => help(
            "Network problems kept KMS from reaching the cluster; they are usually transient.",
            "Disconnect the key store, check the cluster's network (security group, subnets), and connect again.",
        ),
        UserNotFound => help(
            "The cluster has no kmsuser crypto user on every HSM, so KMS cannot log in.",
            "Disconnect the key store, create the kmsuser crypto user (CU) in the cluster with the key store's password, then connect again.",
        ),
        UserLockedOut => help(
            "The kmsuser crypto user is locked out of the cluster after too many failed password attempts.",
            "Disconnect the key store, have a crypto officer reset kmsuser's password (which unlocks it), use Edit to save the same password in the key store, then connect again.",
        ),
        UserLoggedIn => help(
            "The kmsuser crypto user is logged in to the cluster elsewhere, so KMS cannot log in and rotate its password.",
            "Disconnect the key store, log kmsuser out of every CloudHSM client session, then connect again.",
        ),
        InvalidCredentials => help(
            "The kmsuser password saved in the key store is not kmsuser's current password in the cluster.",
            "Disconnect the key store, use Edit to save kmsuser's current password (or reset it in the cluster first), then connect again.",
        ),
        InternalError => help(
            "KMS could not finish the connection because of an internal error.",
            "Disconnect the key store and connect again.",
        ),
    }
}

/// The help for a KMS exception the console can meet.
pub fn exception(kind: KmsErrorKind) -> Help {
    use KmsErrorKind::*;
    match kind {
        CustomKeyStoreInvalidState => help(
            "The key store's connection state does not allow this operation: a key store must be DISCONNECTED to be deleted or to change its password or cluster, and CONNECTED to create or use keys.",
            "Disconnect (or connect) the key store first, wait until the state settles, then try again.",
        ),
        CustomKeyStoreHasCmks => help(
            "The key store still holds KMS keys, including keys that are pending deletion. A key store can be deleted only when no key uses it.",
            "Schedule the deletion of every key in the key store and wait for the waiting periods to end (or cancel and keep them elsewhere), then delete the key store.",
        ),
        CustomKeyStoreNameInUse => help(
            "Another custom key store in this account and Region already has this name.",
            "Choose a name that no other key store uses.",
        ),
        CustomKeyStoreNotFound => help(
            "No custom key store with this ID exists in this account and Region.",
            "Check the key store ID; the store may have been deleted already.",
        ),
        CloudHsmClusterNotFound => help(
            "KMS cannot find an AWS CloudHSM cluster with this ID.",
            "Choose one of the account's clusters.",
        ),
        CloudHsmClusterInUse => help(
            "The cluster is already associated with another custom key store, or (for Edit) it is not related to the key store's cluster.",
            "Choose a cluster that no other key store uses.",
        ),
        CloudHsmClusterNotActive => help(
            "The cluster is not ACTIVE: it must be initialized and activated before KMS can use it.",
            "Initialize and activate the cluster, then try again.",
        ),
        CloudHsmClusterInvalidConfiguration => help(
            "The cluster does not meet KMS's requirements: at least two active HSMs in different Availability Zones, private subnets in at least two Availability Zones, and a suitable security group.",
            "Add HSMs (or fix the cluster's subnets and security group) and try again.",
        ),
        CloudHsmClusterNotRelated => help(
            "The chosen cluster does not share a backup history with the key store's cluster, so it does not hold the same keys.",
            "Choose the original cluster or one created from a backup of it.",
        ),
        IncorrectTrustAnchor => help(
            "The trust anchor certificate is not the one the cluster was initialized with.",
            "Upload or paste the cluster's customerCA.crt file, exactly as created when the cluster was initialized.",
        ),
        LimitExceeded => help(
            "An account quota was reached (for example, at most 10 custom key stores per Region).",
            "Delete something you no longer need, then try again.",
        ),
        Validation | Serialization => help(
            "A value in the form does not meet the operation's constraints.",
            "Correct the value named in the message and submit again.",
        ),
        KmsInvalidState => help(
            "The KMS key's state does not allow this operation (keys in a store that is not CONNECTED are Unavailable).",
            "Connect the key's key store, or check the key's state, then try again.",
        ),
        NotFound => help(
            "The KMS key or alias does not exist.",
            "Check the key ID; the key may have been deleted already.",
        ),
        DependencyTimeout | KmsInternal => help(
            "KMS could not complete the request because of an internal or transient problem.",
            "Try again in a moment.",
        ),
        _ => help(
            "KMS refused the request.",
            "Read the message, correct the request and try again.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_error_code_has_its_own_help() {
        use ConnectionErrorCode::*;
        let codes = [
            ClusterNotFound,
            SubnetNotFound,
            InsufficientFreeAddressesInSubnet,
            InsufficientCloudhsmHsms,
            NetworkErrors,
            UserNotFound,
            UserLockedOut,
            UserLoggedIn,
            InvalidCredentials,
            InternalError,
        ];
        let texts: std::collections::HashSet<&str> = codes
            .iter()
            .map(|c| connection_error(*c).explanation)
            .collect();
        assert_eq!(texts.len(), codes.len());
    }
}

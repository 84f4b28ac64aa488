//! Fault injection on a cluster (D14): cut the network, delete or exhaust a subnet, make the
//! cluster look deleted, make its token fail, make KMS's connection attempts fail internally,
//! take an HSM down, and give a user MFA or partial coverage.
//!
//! Every fault is reversible (`on = false`) and persisted through `app.commit`, so it
//! survives a restart. The token's failing flag itself lives in memory (in the session pool),
//! so start-up must call [`reapply_token_faults`] after opening the world. What each fault
//! means to KMS (a `ConnectionErrorCode`, or `KMSInvalidStateException` on crypto) is decided
//! by the KMS layer, which reads `Cluster::faults`, HSM states and user flags.

use super::api::get_cluster;
use super::error::CloudHsmError;
use super::model::{Cluster, HsmState};
use crate::app::{App, Change};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One injectable fault. On the wire (serde): `{"fault": "<kebab-name>", "target": "<id>"}`,
/// `target` only for the faults that name a subnet, an HSM or a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", content = "target", rename_all = "kebab-case")]
pub enum Fault {
    /// The network between KMS and the cluster is cut.
    NetworkDown,
    /// This subnet of the cluster was deleted.
    SubnetDeleted(String),
    /// This subnet of the cluster has no free addresses.
    SubnetExhausted(String),
    /// The cluster was deleted behind KMS's back (it shows as `DELETED`; the record stays).
    ClusterDeleted,
    /// Every PKCS#11 call on the cluster's token fails.
    TokenFailing,
    /// KMS's connection attempts fail with an internal error.
    InternalError,
    /// This HSM is down (`DEGRADED`).
    HsmDown(String),
    /// This user has MFA enabled.
    UserMfa(String),
    /// This user is missing from some HSMs (`cluster-coverage: partial`).
    UserPartialCoverage(String),
}

impl Fault {
    /// Every fault name, as [`Fault::name`] gives them.
    pub const NAMES: &'static [&'static str] = &[
        "network-down",
        "subnet-deleted",
        "subnet-exhausted",
        "cluster-deleted",
        "token-failing",
        "internal-error",
        "hsm-down",
        "user-mfa",
        "user-partial-coverage",
    ];

    /// The kebab-case name (`network-down`, `hsm-down`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::NetworkDown => "network-down",
            Fault::SubnetDeleted(_) => "subnet-deleted",
            Fault::SubnetExhausted(_) => "subnet-exhausted",
            Fault::ClusterDeleted => "cluster-deleted",
            Fault::TokenFailing => "token-failing",
            Fault::InternalError => "internal-error",
            Fault::HsmDown(_) => "hsm-down",
            Fault::UserMfa(_) => "user-mfa",
            Fault::UserPartialCoverage(_) => "user-partial-coverage",
        }
    }

    /// Parse a fault from its name and, for subnet, HSM and user faults, its target.
    ///
    /// # Errors
    ///
    /// `CloudHsmInvalidRequestException` for an unknown name, a missing target, or a target
    /// given to a fault that takes none.
    pub fn parse(name: &str, target: Option<&str>) -> Result<Fault, CloudHsmError> {
        let needs = |what: &str| {
            target.map(str::to_string).ok_or_else(|| {
                CloudHsmError::invalid(format!("The fault {name} needs a target ({what})"))
            })
        };
        let none = |f: Fault| match target {
            None => Ok(f),
            Some(_) => Err(CloudHsmError::invalid(format!(
                "The fault {name} takes no target"
            ))),
        };
        match name {
            "network-down" => none(Fault::NetworkDown),
            "subnet-deleted" => Ok(Fault::SubnetDeleted(needs("a subnet ID")?)),
            "subnet-exhausted" => Ok(Fault::SubnetExhausted(needs("a subnet ID")?)),
            "cluster-deleted" => none(Fault::ClusterDeleted),
            "token-failing" => none(Fault::TokenFailing),
            "internal-error" => none(Fault::InternalError),
            "hsm-down" => Ok(Fault::HsmDown(needs("an HSM ID")?)),
            "user-mfa" => Ok(Fault::UserMfa(needs("a user name")?)),
            "user-partial-coverage" => Ok(Fault::UserPartialCoverage(needs("a user name")?)),
            _ => Err(CloudHsmError::invalid(format!(
                "Unknown fault '{}'; known faults: {}",
                crate::protocol::input::shown(name),
                Fault::NAMES.join(", ")
            ))),
        }
    }
}

fn subnet_of_cluster(c: &Cluster, subnet: &str) -> Result<(), CloudHsmError> {
    if c.subnet_mapping.values().any(|x| x == subnet) {
        Ok(())
    } else {
        Err(CloudHsmError::invalid(format!(
            "The subnet {} is not a subnet of cluster {}",
            crate::protocol::input::shown(subnet),
            c.id
        )))
    }
}

fn toggle(list: &mut Vec<String>, item: &str, on: bool) {
    list.retain(|x| x != item);
    if on {
        list.push(item.to_string());
    }
}

/// Switch `fault` on or off for the cluster. Idempotent.
///
/// `HsmDown` moves the HSM to `DEGRADED` (off: back to `ACTIVE`); `TokenFailing` also makes
/// the open token fail every call (`Token::set_failing`).
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster, or an HSM or user not of this
/// cluster; `CloudHsmInvalidRequestException` for a subnet not of this cluster or
/// `TokenFailing` on a cluster without a token; `CloudHsmInternalFailureException` if the
/// store or the token cannot be reached.
pub async fn set_fault(
    app: &Arc<App>,
    cluster_id: &str,
    fault: Fault,
    on: bool,
) -> Result<(), CloudHsmError> {
    let writer = app.lock_writer().await;
    let mut c = get_cluster(app, cluster_id)?;
    let change = match fault {
        Fault::NetworkDown => {
            c.faults.network_down = on;
            Change::Cluster(c)
        }
        Fault::SubnetDeleted(s) => {
            subnet_of_cluster(&c, &s)?;
            toggle(&mut c.faults.deleted_subnets, &s, on);
            Change::Cluster(c)
        }
        Fault::SubnetExhausted(s) => {
            subnet_of_cluster(&c, &s)?;
            toggle(&mut c.faults.exhausted_subnets, &s, on);
            Change::Cluster(c)
        }
        Fault::ClusterDeleted => {
            c.faults.cluster_deleted = on;
            Change::Cluster(c)
        }
        Fault::InternalError => {
            c.faults.internal_error = on;
            Change::Cluster(c)
        }
        Fault::TokenFailing => {
            if !c.has_token {
                return Err(CloudHsmError::invalid(format!(
                    "The cluster {cluster_id} has no token yet; initialize it first"
                )));
            }
            // Open the token before committing, so a token we cannot reach changes nothing.
            let token = app.token(cluster_id).await?;
            c.faults.token_failing = on;
            app.commit(&writer, vec![Change::Cluster(c)]).await?;
            token.set_failing(on);
            return Ok(());
        }
        Fault::HsmDown(id) => {
            let mut h = app
                .world()
                .hsms
                .get(&id)
                .filter(|h| h.cluster_id == cluster_id)
                .cloned()
                .ok_or_else(|| {
                    CloudHsmError::not_found(format!(
                        "The HSM {} was not found in cluster {cluster_id}",
                        crate::protocol::input::shown(&id)
                    ))
                })?;
            if on {
                h.state = HsmState::Degraded;
                h.state_message = Some("The HSM is unreachable (injected fault hsm-down).".into());
            } else {
                h.state = HsmState::Active;
                h.state_message = None;
            }
            Change::Hsm(h)
        }
        Fault::UserMfa(name) => {
            let mut u = super::users::get_user(app, cluster_id, &name)?;
            u.mfa = on;
            Change::User(u)
        }
        Fault::UserPartialCoverage(name) => {
            let mut u = super::users::get_user(app, cluster_id, &name)?;
            u.coverage_full = !on;
            Change::User(u)
        }
    };
    app.commit(&writer, vec![change]).await?;
    Ok(())
}

/// Re-apply the in-memory part of persisted `TokenFailing` faults (call once at start-up,
/// after the world is loaded): every cluster with the fault on gets its token marked failing.
///
/// # Errors
///
/// The first token that could not be opened, as `CloudHsmInternalFailureException` (the
/// others are still attempted).
pub async fn reapply_token_faults(app: &Arc<App>) -> Result<(), CloudHsmError> {
    let ids: Vec<String> = app
        .world()
        .clusters
        .values()
        .filter(|c| c.faults.token_failing && c.has_token)
        .map(|c| c.id.to_string())
        .collect();
    let mut first_err = None;
    for id in ids {
        match app.token(&id).await {
            Ok(t) => t.set_failing(true),
            Err(e) => {
                tracing::warn!(cluster = %id, error = %e, "cannot re-apply the token-failing fault");
                first_err.get_or_insert(CloudHsmError::from(e));
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_by_name_and_round_trip() {
        for n in Fault::NAMES {
            let f = Fault::parse(n, Some("x"))
                .or_else(|_| Fault::parse(n, None))
                .unwrap();
            assert_eq!(f.name(), *n);
            let j = serde_json::to_value(&f).unwrap();
            assert_eq!(j["fault"], *n);
            assert_eq!(serde_json::from_value::<Fault>(j).unwrap(), f);
        }
        assert_eq!(
            Fault::parse("hsm-down", Some("hsm-abcdefghijk")).unwrap(),
            Fault::HsmDown("hsm-abcdefghijk".into())
        );
        assert!(Fault::parse("hsm-down", None).is_err());
        assert!(Fault::parse("network-down", Some("x")).is_err());
        assert!(
            Fault::parse("meteor", None)
                .unwrap_err()
                .message
                .contains("network-down")
        );
        let j = serde_json::json!({"fault": "subnet-deleted", "target": "subnet-0123abcd"});
        assert_eq!(
            serde_json::from_value::<Fault>(j).unwrap(),
            Fault::SubnetDeleted("subnet-0123abcd".into())
        );
        let j = serde_json::json!({"fault": "network-down"});
        assert_eq!(
            serde_json::from_value::<Fault>(j).unwrap(),
            Fault::NetworkDown
        );
    }

    #[test]
    fn toggling_is_idempotent() {
        let mut l = vec![];
        toggle(&mut l, "a", true);
        toggle(&mut l, "a", true);
        assert_eq!(l, ["a"]);
        toggle(&mut l, "a", false);
        toggle(&mut l, "a", false);
        assert!(l.is_empty());
    }
}

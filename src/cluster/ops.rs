//! The cloudhsmv2 operations (`BaldrApiService`), typed: each takes its decoded request
//! (every constraint of the model already checked by the protocol layer) and returns its
//! response shape. The doors (awsJson1_1 and rpc-v2-cbor) only frame them.
//!
//! Served: `CreateCluster`, `DescribeClusters`, `InitializeCluster`, `CreateHsm`, `DeleteHsm`,
//! `DeleteCluster`, `DescribeBackups`, `DeleteBackup`, `RestoreBackup`, `TagResource`,
//! `UntagResource`, `ListTags`. The domain functions behind them are in [`super::api`].

use super::api::{
    BACKUP_PENDING_DELETION, BACKUP_READY, HsmRef, MAX_TAGS, NewCluster, backup_arn,
    backup_visible, effective_state, find_tagged, matches_filter, max_of, page,
};
use super::error::{CloudHsmError, CloudHsmErrorKind};
use super::model::{Backup, Cluster, Hsm};
use crate::api::cloudhsmv2 as shapes;
use crate::api::cloudhsmv2::{Request, Response};
use crate::app::{App, Change, World};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Serve one decoded cloudhsmv2 request. `Ok(None)` for an operation of the model this
/// simulator does not serve (the door answers `UnknownOperationException`).
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for a wrong state or a request the domain refuses,
/// `CloudHsmResourceNotFoundException` for unknown clusters, HSMs and backups,
/// `CloudHsmResourceLimitExceededException` for too many tags, `CloudHsmTagException` for an
/// unacceptable tag, `CloudHsmInternalFailureException` when the store or the token fails.
pub async fn handle(app: &Arc<App>, req: Request) -> Result<Option<Response>, CloudHsmError> {
    use Request as R;
    Ok(Some(match req {
        R::CreateCluster(r) => Response::CreateCluster(create_cluster(app, r).await?),
        R::DescribeClusters(r) => Response::DescribeClusters(describe_clusters(app, r)?),
        R::InitializeCluster(r) => Response::InitializeCluster(initialize_cluster(app, r).await?),
        R::CreateHsm(r) => Response::CreateHsm(create_hsm(app, r).await?),
        R::DeleteHsm(r) => Response::DeleteHsm(delete_hsm(app, r).await?),
        R::DeleteCluster(r) => Response::DeleteCluster(delete_cluster(app, r).await?),
        R::DescribeBackups(r) => Response::DescribeBackups(describe_backups(app, r)?),
        R::DeleteBackup(r) => Response::DeleteBackup(shapes::DeleteBackupResponse {
            backup: Some(set_backup_state(app, &r.backup_id, false).await?),
        }),
        R::RestoreBackup(r) => Response::RestoreBackup(shapes::RestoreBackupResponse {
            backup: Some(set_backup_state(app, &r.backup_id, true).await?),
        }),
        R::TagResource(r) => {
            tag_resource(app, r).await?;
            Response::TagResource(shapes::TagResourceResponse {})
        }
        R::UntagResource(r) => {
            untag_resource(app, r).await?;
            Response::UntagResource(shapes::UntagResourceResponse {})
        }
        R::ListTags(r) => Response::ListTags(list_tags(app, r)?),
        _ => return Ok(None),
    }))
}

async fn create_cluster(
    app: &Arc<App>,
    r: shapes::CreateClusterRequest,
) -> Result<shapes::CreateClusterResponse, CloudHsmError> {
    if let Some(p) = &r.backup_retention_policy {
        check_retention_policy(p)?;
    }
    let req = NewCluster {
        id: None,
        subnet_ids: r.subnet_ids,
        hsm_type: Some(r.hsm_type),
        mode: r.mode.map(|m| m.as_str().to_string()),
        network_type: r.network_type.map(|n| n.as_str().to_string()),
        source_backup_id: r.source_backup_id,
        tags: tag_pairs(r.tag_list.unwrap_or_default()),
        bound_token: None,
    };
    let c = super::api::create_cluster(app, req).await?;
    Ok(shapes::CreateClusterResponse {
        cluster: Some(cluster_shape(&app.world(), &c)),
    })
}

/// The retention period AWS accepts: 7 to 379 days (cks-sim's words: no recording of AWS's
/// message was found).
fn check_retention_policy(p: &shapes::BackupRetentionPolicy) -> Result<(), CloudHsmError> {
    let Some(v) = &p.value else { return Ok(()) };
    let days: u32 = v
        .parse()
        .ok()
        .filter(|_| (1..=3).contains(&v.len()))
        .ok_or_else(|| {
            CloudHsmError::invalid(format!(
                "The backup retention value '{v}' is not a number of days"
            ))
        })?;
    if !(7..=379).contains(&days) {
        return Err(CloudHsmError::invalid(format!(
            "The backup retention period {days} days is out of range; use 7 to 379 days"
        )));
    }
    Ok(())
}

fn tag_pairs(tags: Vec<shapes::Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|t| (t.key, t.value)).collect()
}

/// The `Filters` member, its names limited to `allowed`.
fn filters(
    given: Option<BTreeMap<String, Vec<String>>>,
    allowed: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, CloudHsmError> {
    let given = given.unwrap_or_default();
    if let Some(k) = given.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(CloudHsmError::invalid(format!(
            "Invalid filter key '{k}'; valid filter keys are {}",
            allowed.join(", ")
        )));
    }
    Ok(given)
}

fn describe_clusters(
    app: &Arc<App>,
    r: shapes::DescribeClustersRequest,
) -> Result<shapes::DescribeClustersResponse, CloudHsmError> {
    let filters = filters(r.filters, &["clusterIds", "states", "vpcIds"])?;
    let w = app.world();
    let items: Vec<(String, &Cluster)> = w
        .clusters
        .values()
        .filter(|c| {
            super::api::visible(c)
                && matches_filter(&filters, "clusterIds", &c.id)
                && matches_filter(&filters, "states", effective_state(c).as_str())
                && matches_filter(&filters, "vpcIds", &c.vpc_id)
        })
        .map(|c| (c.id.to_string(), c))
        .collect();
    let token = r.next_token.as_deref();
    let (page, next) = page(items, "clusters", false, token, max_of(r.max_results))?;
    Ok(shapes::DescribeClustersResponse {
        clusters: Some(page.into_iter().map(|c| cluster_shape(&w, c)).collect()),
        next_token: next,
    })
}

async fn initialize_cluster(
    app: &Arc<App>,
    r: shapes::InitializeClusterRequest,
) -> Result<shapes::InitializeClusterResponse, CloudHsmError> {
    let c =
        super::api::initialize_cluster(app, &r.cluster_id, &r.signed_cert, &r.trust_anchor).await?;
    Ok(shapes::InitializeClusterResponse {
        state: shapes::ClusterState::parse(c.state.as_str()),
        state_message: c.state_message,
    })
}

async fn create_hsm(
    app: &Arc<App>,
    r: shapes::CreateHsmRequest,
) -> Result<shapes::CreateHsmResponse, CloudHsmError> {
    let az = &r.availability_zone;
    let h = super::api::create_hsm(app, &r.cluster_id, az, r.ip_address.as_deref()).await?;
    let hsm_type = app
        .world()
        .clusters
        .get(&r.cluster_id)
        .map(|c| c.hsm_type.clone())
        .unwrap_or_default();
    Ok(shapes::CreateHsmResponse {
        hsm: Some(hsm_shape(&hsm_type, &h)),
    })
}

async fn delete_hsm(
    app: &Arc<App>,
    r: shapes::DeleteHsmRequest,
) -> Result<shapes::DeleteHsmResponse, CloudHsmError> {
    let which = match (r.hsm_id, r.eni_id, r.eni_ip) {
        (Some(h), _, _) => HsmRef::Id(h),
        (None, Some(e), _) => HsmRef::EniId(e),
        (None, None, Some(ip)) => HsmRef::EniIp(ip),
        (None, None, None) => {
            return Err(CloudHsmError::invalid(
                "Specify the HSM to delete with one of HsmId, EniId or EniIp",
            ));
        }
    };
    let hsm_id = super::api::delete_hsm(app, &r.cluster_id, &which).await?;
    Ok(shapes::DeleteHsmResponse {
        hsm_id: Some(hsm_id),
    })
}

async fn delete_cluster(
    app: &Arc<App>,
    r: shapes::DeleteClusterRequest,
) -> Result<shapes::DeleteClusterResponse, CloudHsmError> {
    let c = super::api::delete_cluster(app, &r.cluster_id).await?;
    Ok(shapes::DeleteClusterResponse {
        cluster: Some(cluster_shape(&app.world(), &c)),
    })
}

fn describe_backups(
    app: &Arc<App>,
    r: shapes::DescribeBackupsRequest,
) -> Result<shapes::DescribeBackupsResponse, CloudHsmError> {
    let filters = filters(r.filters, &["backupIds", "clusterIds", "states"])?;
    let ascending = r.sort_ascending.unwrap_or(false);
    let w = app.world();
    let items: Vec<(String, &Backup)> = w
        .backups
        .values()
        .filter(|b| {
            backup_visible(b)
                && matches_filter(&filters, "backupIds", &b.id)
                && matches_filter(&filters, "clusterIds", &b.cluster_id)
                && matches_filter(&filters, "states", &b.state)
        })
        .map(|b| (super::api::backup_sort_key(b), b))
        .collect();
    let kind = if ascending {
        "backups-asc"
    } else {
        "backups-desc"
    };
    let token = r.next_token.as_deref();
    let (page, next) = page(items, kind, !ascending, token, max_of(r.max_results))?;
    let ns = crate::namespace::current(app);
    Ok(shapes::DescribeBackupsResponse {
        backups: Some(
            page.into_iter()
                .map(|b| backup_shape(&ns.region, &ns.account, b))
                .collect(),
        ),
        next_token: next,
    })
}

/// `RestoreBackup` (`restore`: `PENDING_DELETION` → `READY`) and `DeleteBackup` (`READY` →
/// `PENDING_DELETION`).
async fn set_backup_state(
    app: &Arc<App>,
    id: &str,
    restore: bool,
) -> Result<shapes::Backup, CloudHsmError> {
    let writer = app.lock_writer().await;
    let mut b = app
        .world()
        .backups
        .get(id)
        .filter(|b| backup_visible(b))
        .cloned()
        .ok_or_else(|| CloudHsmError::not_found(format!("The backup {id} was not found")))?;
    let (from, to, op) = if restore {
        (BACKUP_PENDING_DELETION, BACKUP_READY, "RestoreBackup")
    } else {
        (BACKUP_READY, BACKUP_PENDING_DELETION, "DeleteBackup")
    };
    if b.state != from {
        return Err(CloudHsmError::invalid(format!(
            "The backup {id} is {}; {op} needs a {from} backup",
            b.state
        )));
    }
    b.state = to.to_string();
    app.commit(&writer, vec![Change::Backup(b.clone())]).await?;
    let ns = crate::namespace::current(app);
    Ok(backup_shape(&ns.region, &ns.account, &b))
}

async fn tag_resource(app: &Arc<App>, r: shapes::TagResourceRequest) -> Result<(), CloudHsmError> {
    let id = &r.resource_id;
    let tags = tag_pairs(r.tag_list);
    super::api::check_tags(&tags)?;
    let writer = app.lock_writer().await;
    let mut t = find_tagged(&app.world(), id)?;
    for (k, v) in tags {
        t.tags_mut().insert(k, v);
    }
    if t.tags().len() > MAX_TAGS {
        return Err(CloudHsmError::new(
            CloudHsmErrorKind::ResourceLimitExceeded,
            format!(
                "The resource {id} would have {} tags; the limit is {MAX_TAGS}",
                t.tags().len()
            ),
        ));
    }
    app.commit(&writer, vec![t.into_change()]).await?;
    Ok(())
}

async fn untag_resource(
    app: &Arc<App>,
    r: shapes::UntagResourceRequest,
) -> Result<(), CloudHsmError> {
    for k in &r.tag_key_list {
        super::api::check_tag_key(k)?;
    }
    let writer = app.lock_writer().await;
    let mut t = find_tagged(&app.world(), &r.resource_id)?;
    let before = t.tags().len();
    for k in &r.tag_key_list {
        t.tags_mut().remove(k);
    }
    if t.tags().len() != before {
        app.commit(&writer, vec![t.into_change()]).await?;
    }
    Ok(())
}

fn list_tags(
    app: &Arc<App>,
    r: shapes::ListTagsRequest,
) -> Result<shapes::ListTagsResponse, CloudHsmError> {
    let id = &r.resource_id;
    let t = find_tagged(&app.world(), id)?;
    // Tags are few: page by position (zero-padded so the keys sort like the positions).
    let items: Vec<(String, (&String, &String))> = t
        .tags()
        .iter()
        .enumerate()
        .map(|(i, kv)| (format!("{i:04}"), kv))
        .collect();
    let token = r.next_token.as_deref();
    let (page, next) = page(
        items,
        &format!("tags/{id}"),
        false,
        token,
        max_of(r.max_results),
    )?;
    Ok(shapes::ListTagsResponse {
        tag_list: page.into_iter().map(|(k, v)| tag(k, v)).collect(),
        next_token: next,
    })
}

fn tag(k: &str, v: &str) -> shapes::Tag {
    shapes::Tag {
        key: k.to_string(),
        value: v.to_string(),
    }
}

fn tag_list(tags: &BTreeMap<String, String>) -> Option<Vec<shapes::Tag>> {
    (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| tag(k, v)).collect())
}

/// The model's `Cluster` shape for `c`, with its HSMs from `world`.
pub fn cluster_shape(world: &World, c: &Cluster) -> shapes::Cluster {
    let uninitialized = c.state == super::model::ClusterState::Uninitialized;
    shapes::Cluster {
        cluster_id: Some(c.id.to_string()),
        state: shapes::ClusterState::parse(effective_state(c).as_str()),
        state_message: c.state_message.clone(),
        hsms: Some(
            world
                .cluster_hsms(&c.id)
                .into_iter()
                .map(|h| hsm_shape(&c.hsm_type, h))
                .collect(),
        ),
        hsm_type: Some(c.hsm_type.clone()),
        subnet_mapping: Some(c.subnet_mapping.clone()),
        security_group: Some(c.security_group.clone()),
        vpc_id: Some(c.vpc_id.clone()),
        network_type: shapes::NetworkType::parse(&c.network_type),
        mode: shapes::ClusterMode::parse(&c.mode),
        create_timestamp: Some(c.create_timestamp),
        source_backup_id: c.source_backup_id.clone(),
        certificates: Some(shapes::Certificates {
            cluster_csr: uninitialized.then(|| c.csr_pem.clone()),
            cluster_certificate: c.cluster_certificate.clone(),
            ..Default::default()
        }),
        backup_policy: Some(shapes::BackupPolicy::Default),
        backup_retention_policy: Some(shapes::BackupRetentionPolicy {
            r#type: Some(shapes::BackupRetentionType::Days),
            value: Some("90".into()),
        }),
        tag_list: tag_list(&c.tags),
        ..Default::default()
    }
}

/// The model's `Hsm` shape (`hsm_type` is the cluster's).
pub fn hsm_shape(hsm_type: &str, h: &Hsm) -> shapes::Hsm {
    shapes::Hsm {
        hsm_id: h.id.to_string(),
        cluster_id: Some(h.cluster_id.to_string()),
        availability_zone: Some(h.availability_zone.clone()),
        subnet_id: Some(h.subnet_id.clone()),
        eni_id: Some(h.eni_id.clone()),
        eni_ip: Some(h.eni_ip.clone()),
        hsm_type: (!hsm_type.is_empty()).then(|| hsm_type.to_string()),
        state: shapes::HsmState::parse(h.state.as_str()),
        state_message: h.state_message.clone(),
        ..Default::default()
    }
}

/// The model's `Backup` shape.
pub fn backup_shape(region: &str, account: &str, b: &Backup) -> shapes::Backup {
    shapes::Backup {
        backup_id: b.id.clone(),
        backup_arn: Some(backup_arn(region, account, &b.id)),
        backup_state: shapes::BackupState::parse(&b.state),
        cluster_id: Some(b.cluster_id.to_string()),
        create_timestamp: Some(b.create_timestamp),
        hsm_type: Some(b.snapshot.hsm_type.clone()),
        mode: shapes::ClusterMode::parse(&b.snapshot.mode),
        never_expires: Some(false),
        tag_list: tag_list(&b.tags),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(filters: &[(&str, &[&str])]) -> Option<BTreeMap<String, Vec<String>>> {
        let pair =
            |(k, v): &(&str, &[&str])| (k.to_string(), v.iter().map(|s| s.to_string()).collect());
        Some(filters.iter().map(pair).collect())
    }

    #[test]
    fn filters_match_what_they_list_and_an_empty_list_matches_nothing() {
        let f = filters(
            named(&[("states", &["ACTIVE"]), ("clusterIds", &[])]),
            &["clusterIds", "states", "vpcIds"],
        )
        .unwrap();
        assert!(matches_filter(&f, "states", "ACTIVE"));
        assert!(!matches_filter(&f, "states", "DELETED"));
        assert!(!matches_filter(&f, "clusterIds", "cluster-abcdefghijk"));
        assert!(
            matches_filter(&f, "vpcIds", "vpc-1"),
            "an absent filter matches all"
        );
        assert!(filters(None, &["states"]).unwrap().is_empty());
    }

    #[test]
    fn a_filter_name_the_operation_does_not_know_is_refused_by_name() {
        let e = filters(named(&[("color", &["red"])]), &["states"]).unwrap_err();
        assert_eq!(e.kind, CloudHsmErrorKind::InvalidRequest);
        assert_eq!(
            e.message,
            "Invalid filter key 'color'; valid filter keys are states"
        );
    }

    fn days(v: &str) -> shapes::BackupRetentionPolicy {
        shapes::BackupRetentionPolicy {
            r#type: Some(shapes::BackupRetentionType::Days),
            value: Some(v.into()),
        }
    }

    #[test]
    fn a_retention_period_is_7_to_379_days() {
        assert!(check_retention_policy(&days("7")).is_ok());
        assert!(check_retention_policy(&days("379")).is_ok());
        assert!(check_retention_policy(&days("6")).is_err());
        assert!(check_retention_policy(&days("380")).is_err());
        assert!(check_retention_policy(&days("ninety")).is_err());
    }
}

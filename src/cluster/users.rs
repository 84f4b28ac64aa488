//! The CloudHSM CLI's user management (D3): activation, users, passwords, logins, lockout.
//!
//! The simulator owns the user table (SoftHSM has one user PIN and never locks it) and
//! enforces CloudHSM's rules itself: user names of at most 31 characters from `[a-zA-Z0-9_]`,
//! case-insensitive (kept lower-case); passwords of 7–32 characters; any user may change its
//! own password and an admin may change anyone's; more than 5 wrong passwords lock a user
//! until an admin resets its password.
//!
//! **The D3 rule**: the cluster token's user PIN always equals `kmsuser`'s current password.
//! Whenever `kmsuser` is created, gets a new password, or is deleted, the token PIN is changed
//! first (`C_SetPIN`; a fresh secret on delete), then the user, the cluster's
//! `token_user_pin` are committed together. If the token refuses, nothing is committed. Each
//! such change also moves the cluster's `kmsuser_epoch`: KMS, which reads it through
//! [`kmsuser_epoch`], knows its own session to be gone when the epoch moved behind its back.
//!
//! Every mutating function takes the writer lock (`App::lock_writer`) itself: do not call them with it held (use
//! [`kmsuser_password_changes`] from code that already holds it). Not here: KMS's own
//! connect-time checks and password rotation (the KMS layer), HTTP.

use super::api::{effective_state, get_cluster};
use super::error::CloudHsmError;
use super::model::{Cluster, ClusterState, KMSUSER, Role, User, user_key};
use crate::app::{App, Change};
use crate::ids;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most users one cluster can hold (CloudHSM quota).
pub const MAX_USERS: usize = 1024;
/// Longest user name.
pub const MAX_USER_NAME: usize = 31;
/// Shortest password.
pub const MIN_PASSWORD: usize = 7;
/// Longest password.
pub const MAX_PASSWORD: usize = 32;

/// One row of `user list`, as the control door shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// Lower-case user name.
    pub username: String,
    /// `admin`, `crypto-user`, …
    pub role: String,
    /// Locked after too many failed logins.
    pub locked: bool,
    /// Multi-factor authentication enabled.
    pub mfa: bool,
    /// `full` (on every HSM) or `partial`.
    pub cluster_coverage: String,
    /// Whether the user has a session open through the control surface.
    pub logged_in: bool,
    /// Consecutive failed logins.
    pub failed_logins: u32,
}

impl UserView {
    /// The view of `u`.
    pub fn of(u: &User) -> Self {
        UserView {
            username: u.name.to_string(),
            role: u.role.as_str().to_string(),
            locked: u.locked,
            mfa: u.mfa,
            cluster_coverage: if u.coverage_full { "full" } else { "partial" }.to_string(),
            logged_in: u.sessions > 0,
            failed_logins: u.failed_logins,
        }
    }
}

/// Check a user name (≤ 31 characters of `[a-zA-Z0-9_]`); returns it lower-cased.
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` naming the rule.
pub fn check_user_name(name: &str) -> Result<String, CloudHsmError> {
    if name.is_empty() || name.len() > MAX_USER_NAME {
        return Err(CloudHsmError::invalid(format!(
            "The user name '{}' must be 1 to {MAX_USER_NAME} characters long",
            crate::protocol::input::shown(name)
        )));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(CloudHsmError::invalid(format!(
            "The user name '{}' may contain only letters, digits and _",
            crate::protocol::input::shown(name)
        )));
    }
    Ok(name.to_ascii_lowercase())
}

/// Check a password (7–32 characters).
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` naming the rule (never the password).
pub fn check_password(password: &str) -> Result<(), CloudHsmError> {
    let n = password.chars().count();
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        Ok(())
    } else {
        Err(CloudHsmError::invalid(format!(
            "The password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long (it has {n})"
        )))
    }
}

/// User management needs a working cluster: `ACTIVE` (or `DEGRADED`, which still serves).
fn require_active(c: &Cluster) -> Result<(), CloudHsmError> {
    match effective_state(c) {
        ClusterState::Active | ClusterState::Degraded => Ok(()),
        s => Err(CloudHsmError::invalid(format!(
            "The cluster {} is {}; users can be managed only in an ACTIVE cluster",
            c.id,
            s.as_str()
        ))),
    }
}

/// A copy of user `name` of the cluster, or `CloudHsmResourceNotFoundException`.
pub(crate) fn get_user(app: &App, cluster_id: &str, name: &str) -> Result<User, CloudHsmError> {
    app.world()
        .users
        .get(&user_key(cluster_id, name))
        .cloned()
        .ok_or_else(|| {
            CloudHsmError::not_found(format!(
                "The user {} was not found in cluster {cluster_id}",
                crate::protocol::input::shown(&name.to_ascii_lowercase())
            ))
        })
}

/// D3: change the token's user PIN from `kmsuser`'s old password (the cluster's
/// `token_user_pin`) to `new_password`, and record it in `c` (not yet committed).
///
/// Crash-safe (D20), with the writer lock held (its `Writer` passed in): the new PIN is first committed as the cluster's
/// `pending_user_pin`, then the token's PIN changes (`C_SetPIN`); the caller's commit of `c`
/// (new `token_user_pin`, nothing pending) ends it. A process stopped between the steps leaves
/// the intent, which [`settle_pin_change`] resolves. If the token refuses, the intent is
/// withdrawn and nothing has changed.
async fn set_token_pin(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    c: &mut Cluster,
    new_password: &str,
) -> Result<(), CloudHsmError> {
    if c.has_token && adopts_token_pin(c) {
        adopt_token_pin(app, c, new_password).await?;
    } else if c.has_token {
        settle_pin_change(app, writer, &c.id).await?;
        *c = get_cluster(app, &c.id)?;
        let mut intent = c.clone();
        intent.pending_user_pin = Some(new_password.to_string());
        app.commit(writer, vec![Change::Cluster(intent)]).await?;
        app.failpoints.hit("pin.intent_recorded");
        let token = app.token(&c.id).await?;
        let changed = token
            .set_user_pin(
                &app.pin(KMSUSER, &c.token_user_pin),
                &app.pin(KMSUSER, new_password),
            )
            .await;
        if let Err(e) = changed {
            if let Err(undo) = app.commit(writer, vec![Change::Cluster(c.clone())]).await {
                tracing::warn!(error = %undo, "cannot withdraw a PIN change the token refused");
            }
            return Err(e.into());
        }
        app.failpoints.hit("pin.token_changed");
    }
    c.token_user_pin = new_password.to_string();
    c.pending_user_pin = None;
    c.kmsuser_epoch += 1;
    Ok(())
}

/// Whether a new `kmsuser` password is adopted as the token's PIN (checked, never set): on a
/// bound token whose PIN the simulator does not change, or whose PIN it does not know yet.
fn adopts_token_pin(c: &Cluster) -> bool {
    c.bound_token.is_some() && (!c.rotates_pin() || c.token_user_pin.is_empty())
}

/// A bound token whose PIN the simulator does not change (`rotate_password = false`), or
/// whose PIN it does not know yet (the first `kmsuser`): `new_password`, rendered through the
/// PIN template, must already be the token's PIN. Checked with `C_Login`, never `C_SetPIN`.
async fn adopt_token_pin(
    app: &Arc<App>,
    c: &Cluster,
    new_password: &str,
) -> Result<(), CloudHsmError> {
    let label = c.token_label();
    if !c.token_user_pin.is_empty() && c.token_user_pin == new_password {
        return Ok(());
    }
    let token = app.token(&c.id).await?;
    let pin = app.pin(KMSUSER, new_password);
    // A token shared with the internal token (or another cluster) may be logged in already:
    // with this very PIN, it is proved; with another, it cannot be checked now.
    if token.logged_in_with(&pin) {
        return Ok(());
    }
    if token.is_logged_in() {
        return Err(CloudHsmError::invalid(format!(
            "The cluster {} is bound to token {label:?}, whose PIN cks-sim does not change \
             (rotate_password = false), and the token is in use: disconnect its key stores, \
             change the PIN on the device, then set kmsuser's password to it",
            c.id
        )));
    }
    token.check_user_pin(&pin).await.map_err(|e| {
        CloudHsmError::invalid(format!(
            "The token {label:?} of cluster {} refuses kmsuser's password as its user PIN \
             ({e}): the password must be what the token accepts through [hsm] pin_template \
             ({:?}); cks-sim never changes this token's PIN unless rotate_password = true",
            c.id, app.config.pin_template
        ))
    })
}

/// Settle a token PIN change that was begun and never committed (the process stopped, or
/// the commit failed, between the intent and the end), **with the writer lock held** (its `Writer` passed in). The change
/// was never acknowledged, so it is undone: whatever PIN the token has now, the previous one
/// (the cluster's `token_user_pin`, still `kmsuser`'s recorded password) is restored, and the
/// intent is cleared. A token that takes neither PIN is reported and the intent kept.
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster; `CloudHsmInternalFailureException`
/// if the token cannot be reached or takes neither PIN.
pub async fn settle_pin_change(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    cluster_id: &str,
) -> Result<(), CloudHsmError> {
    let c = get_cluster(app, cluster_id)?;
    let Some(pending) = c.pending_user_pin.clone() else {
        return Ok(());
    };
    let token = app.token(&c.id).await?;
    // A PIN check needs a token nobody is logged in to (PKCS#11 login state is per process);
    // a change is only pending while no key store on the cluster is connected.
    for _ in 0..64 {
        if !token.is_logged_in() {
            break;
        }
        token.logout().await?;
    }
    let previous = app.pin(KMSUSER, &c.token_user_pin);
    if token.check_user_pin(&previous).await.is_err() {
        let next = app.pin(KMSUSER, &pending);
        token.check_user_pin(&next).await.map_err(|e| {
            CloudHsmError::internal(format!(
                "cluster {cluster_id}: a PIN change was interrupted and the token takes neither \
                 the previous nor the new PIN ({e})"
            ))
        })?;
        token.set_user_pin(&next, &previous).await?;
        tracing::info!(cluster = cluster_id, "an interrupted PIN change was undone");
    }
    let mut settled = c;
    settled.pending_user_pin = None;
    app.commit(writer, vec![Change::Cluster(settled)]).await?;
    Ok(())
}

/// Settle every cluster's interrupted PIN change (at start-up, before key stores reconnect).
pub async fn settle_all_pin_changes(app: &Arc<App>) {
    let pending: Vec<crate::names::ClusterId> = app
        .world()
        .clusters
        .values()
        .filter(|c| c.pending_user_pin.is_some())
        .map(|c| c.id.clone())
        .collect();
    let writer = app.lock_writer().await;
    for id in pending {
        if let Err(e) = settle_pin_change(app, &writer, &id).await {
            tracing::error!(cluster = %id, error = %e.message, "cannot settle an interrupted PIN change");
        }
    }
}

/// The count of `kmsuser`'s password changes and deletions on cluster `cluster_id` (the
/// KMS domain compares it with the one its session was opened at).
pub fn kmsuser_epoch(w: &crate::app::World, cluster_id: &str) -> Option<u64> {
    w.clusters.get(cluster_id).map(|c| c.kmsuser_epoch)
}

/// The record of a failed `kmsuser` login that KMS attempted (it counts towards the
/// lockout), and whether it locked the user.
pub fn failed_login(user: &User) -> (Change, bool) {
    let mut u = user.clone();
    u.fail_login();
    let locked = u.locked;
    (Change::User(u), locked)
}

/// The `kmsuser_epoch` a batch of changes gives cluster `cluster_id`, if it changes it.
pub fn epoch_after(changes: &[Change], cluster_id: &str) -> Option<u64> {
    changes.iter().find_map(|c| match c {
        Change::Cluster(c) if c.id == cluster_id => Some(c.kmsuser_epoch),
        _ => None,
    })
}

/// The record of a successful login: the failure count starts again.
pub fn login_succeeded(user: &User) -> Change {
    let mut u = user.clone();
    u.failed_logins = 0;
    Change::User(u)
}

/// Activate an `INITIALIZED` cluster (`cluster activate` in the CloudHSM CLI): it becomes
/// `ACTIVE` and gets its first admin, `admin`, with `admin_password`.
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for a bad password or a cluster that is not
/// `INITIALIZED`; `CloudHsmResourceNotFoundException` for an unknown cluster.
pub async fn activate(
    app: &Arc<App>,
    cluster_id: &str,
    admin_password: &str,
) -> Result<(), CloudHsmError> {
    check_password(admin_password)?;
    let writer = app.lock_writer().await;
    let mut c = get_cluster(app, cluster_id)?;
    let state = effective_state(&c);
    if state != ClusterState::Initialized {
        return Err(CloudHsmError::invalid(format!(
            "The cluster {cluster_id} is {}; only an INITIALIZED cluster can be activated",
            state.as_str()
        )));
    }
    let admin = User::new(cluster_id, "admin", Role::Admin, admin_password);
    c.state = ClusterState::Active;
    c.state_message = None;
    app.commit(&writer, vec![Change::Cluster(c), Change::User(admin)])
        .await?;
    Ok(())
}

/// `user create`: a new `admin` or `crypto-user`. Creating `kmsuser` sets the token's user
/// PIN to its password (D3).
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for a bad name, role or password, a duplicate name, or
/// a cluster that is not `ACTIVE`; `CloudHsmResourceNotFoundException` for an unknown
/// cluster; `CloudHsmResourceLimitExceededException` past 1,024 users;
/// `CloudHsmInternalFailureException` if the token refuses the PIN change.
pub async fn create_user(
    app: &Arc<App>,
    cluster_id: &str,
    name: &str,
    role: Role,
    password: &str,
) -> Result<UserView, CloudHsmError> {
    let name = check_user_name(name)?;
    check_password(password)?;
    if !matches!(role, Role::Admin | Role::CryptoUser) {
        return Err(CloudHsmError::invalid(format!(
            "The role {} cannot be given to a new user; use admin or crypto-user",
            role.as_str()
        )));
    }
    let writer = app.lock_writer().await;
    let mut c = get_cluster(app, cluster_id)?;
    require_active(&c)?;
    let (exists, count) = {
        let w = app.world();
        (
            w.users.contains_key(&user_key(cluster_id, &name)),
            w.cluster_users(cluster_id).len(),
        )
    };
    if exists {
        return Err(CloudHsmError::invalid(format!(
            "The user {name} already exists in cluster {cluster_id}"
        )));
    }
    if count >= MAX_USERS {
        return Err(CloudHsmError::new(
            super::error::CloudHsmErrorKind::ResourceLimitExceeded,
            format!("The cluster {cluster_id} already has {MAX_USERS} users, the most it can hold"),
        ));
    }
    let user = User::new(cluster_id, &name, role, password);
    let mut changes = Vec::new();
    if name == KMSUSER {
        set_token_pin(app, &writer, &mut c, password).await?;
        changes.push(Change::Cluster(c));
    }
    let view = UserView::of(&user);
    changes.push(Change::User(user));
    app.commit(&writer, changes).await?;
    Ok(view)
}

/// `user delete`. Deleting `kmsuser` moves the token's user PIN to a fresh secret (D3) and
/// leaves any `CONNECTED` key store on the cluster without a delete-capable session.
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster or user;
/// `CloudHsmInvalidRequestException` for the cluster's only admin or a cluster that is not
/// `ACTIVE`; `CloudHsmInternalFailureException` if the token refuses the PIN change.
pub async fn delete_user(
    app: &Arc<App>,
    cluster_id: &str,
    name: &str,
) -> Result<(), CloudHsmError> {
    let writer = app.lock_writer().await;
    let mut c = get_cluster(app, cluster_id)?;
    require_active(&c)?;
    let user = get_user(app, cluster_id, name)?;
    if user.role == Role::Admin {
        let admins = app
            .world()
            .cluster_users(cluster_id)
            .iter()
            .filter(|u| u.role == Role::Admin)
            .count();
        if admins <= 1 {
            return Err(CloudHsmError::invalid(format!(
                "The user {} is the only admin of cluster {cluster_id} and cannot be deleted",
                user.name
            )));
        }
    }
    let mut changes = Vec::new();
    if user.name == KMSUSER {
        // A token whose PIN the simulator does not change keeps it (and it stays recorded).
        if c.rotates_pin() {
            set_token_pin(app, &writer, &mut c, &ids::secret(24)).await?;
        }
        c.kmsuser_epoch += 1;
        changes.push(Change::Cluster(c));
    }
    changes.push(Change::DelUser(user.key()));
    app.commit(&writer, changes).await?;
    Ok(())
}

/// `user list`: every user of the cluster, by name. Read-only and synchronous (it takes
/// the world's read lock only briefly).
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster.
pub fn list_users(app: &Arc<App>, cluster_id: &str) -> Result<Vec<UserView>, CloudHsmError> {
    let w = app.world();
    if !w.clusters.contains_key(cluster_id) {
        return Err(CloudHsmError::cluster_not_found(cluster_id));
    }
    let mut out: Vec<UserView> = w
        .cluster_users(cluster_id)
        .into_iter()
        .map(UserView::of)
        .collect();
    out.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(out)
}

/// `user change-password`: `auth_user` (logging in with `auth_password`) sets `target`'s
/// password to `new_password`. Allowed for the user itself (not locked) or for an admin; an
/// admin's reset unlocks a locked user. A wrong `auth_password` counts as a failed login of
/// `auth_user` (more than 5 lock it) and is refused. A new `kmsuser` password becomes the
/// token's user PIN (D3) and leaves any `CONNECTED` key store on the cluster without a
/// delete-capable session.
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for a bad new password or a cluster that is not
/// `ACTIVE`; `CloudHsmResourceNotFoundException` for an unknown cluster or user;
/// `CloudHsmAccessDeniedException` for a locked `auth_user`, a wrong password, or a non-admin
/// changing someone else's password; `CloudHsmInternalFailureException` if the token refuses
/// the PIN change.
pub async fn change_password(
    app: &Arc<App>,
    cluster_id: &str,
    target: &str,
    new_password: &str,
    auth_user: &str,
    auth_password: &str,
) -> Result<(), CloudHsmError> {
    check_password(new_password)?;
    let writer = app.lock_writer().await;
    let mut c = get_cluster(app, cluster_id)?;
    require_active(&c)?;
    let mut auth = get_user(app, cluster_id, auth_user)?;
    let mut t = get_user(app, cluster_id, target)?;
    if auth.locked {
        return Err(CloudHsmError::denied(format!(
            "The user {} is locked; an admin must reset its password",
            auth.name
        )));
    }
    if !auth.password_matches(auth_password) {
        auth.fail_login();
        let locked = auth.locked;
        let name = auth.name.clone();
        app.commit(&writer, vec![Change::User(auth)]).await?;
        return Err(CloudHsmError::denied(if locked {
            format!("Wrong password for user {name}; the user is now locked")
        } else {
            format!("Wrong password for user {name}")
        }));
    }
    let same = auth.name == t.name;
    if !same && auth.role != Role::Admin {
        if auth.failed_logins > 0 {
            auth.failed_logins = 0;
            app.commit(&writer, vec![Change::User(auth.clone())])
                .await?;
        }
        return Err(CloudHsmError::denied(format!(
            "The user {} is not an admin and cannot change the password of {}",
            auth.name, t.name
        )));
    }
    let mut changes = Vec::new();
    if !same && auth.failed_logins > 0 {
        auth.failed_logins = 0;
        changes.push(Change::User(auth));
    }
    t.set_password(new_password);
    if t.name == KMSUSER {
        set_token_pin(app, &writer, &mut c, new_password).await?;
        changes.push(Change::Cluster(c));
    }
    changes.push(Change::User(t));
    app.commit(&writer, changes).await?;
    Ok(())
}

/// `login` (a session outside KMS, through the control surface): on success the failure
/// count is cleared and the user has one more session.
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster or user;
/// `CloudHsmInvalidRequestException` for a cluster that is not `ACTIVE`;
/// `CloudHsmAccessDeniedException` for a locked user ("user is locked"), `kmsuser` while a key
/// store on the cluster is `CONNECTED` or `CONNECTING` ("kmsuser is logged in by AWS KMS"), or
/// a wrong password (counted; more than 5 lock the user).
pub async fn login(
    app: &Arc<App>,
    cluster_id: &str,
    name: &str,
    password: &str,
) -> Result<(), CloudHsmError> {
    let writer = app.lock_writer().await;
    let c = get_cluster(app, cluster_id)?;
    require_active(&c)?;
    let mut u = get_user(app, cluster_id, name)?;
    if u.locked {
        return Err(CloudHsmError::denied(format!(
            "user is locked: an admin must reset the password of {}",
            u.name
        )));
    }
    if u.name == KMSUSER && crate::kms::holds_kmsuser(&app.world(), cluster_id) {
        return Err(CloudHsmError::denied("kmsuser is logged in by AWS KMS"));
    }
    if !u.password_matches(password) {
        u.fail_login();
        let msg = if u.locked {
            format!("Wrong password for user {}; the user is now locked", u.name)
        } else {
            format!("Wrong password for user {}", u.name)
        };
        app.commit(&writer, vec![Change::User(u)]).await?;
        return Err(CloudHsmError::denied(msg));
    }
    u.failed_logins = 0;
    u.sessions = u.sessions.saturating_add(1);
    app.commit(&writer, vec![Change::User(u)]).await?;
    Ok(())
}

/// `logout`: one session fewer.
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster or user;
/// `CloudHsmInvalidRequestException` if the user is not logged in.
pub async fn logout(app: &Arc<App>, cluster_id: &str, name: &str) -> Result<(), CloudHsmError> {
    let writer = app.lock_writer().await;
    get_cluster(app, cluster_id)?;
    let mut u = get_user(app, cluster_id, name)?;
    if u.sessions == 0 {
        return Err(CloudHsmError::invalid(format!(
            "The user {} is not logged in",
            u.name
        )));
    }
    u.sessions -= 1;
    app.commit(&writer, vec![Change::User(u)]).await?;
    Ok(())
}

/// For the KMS layer's connect-time rotation (D11), **with the writer lock already held** (its `Writer` passed in): set
/// `kmsuser`'s password to `new_password` and the token's user PIN with it (the `C_SetPIN`
/// happens here), and return the changes (the user with its new password and cleared
/// failure count, the cluster with its new `token_user_pin`) for the caller to commit
/// together with its own (e.g. the key store's new password). Does not check the old
/// password, locks or sessions: the caller has done that. Key stores are not touched.
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster or no `kmsuser`;
/// `CloudHsmInvalidRequestException` for a bad password; `CloudHsmInternalFailureException`
/// if the token refuses the PIN change (then nothing has changed).
pub async fn kmsuser_password_changes(
    app: &Arc<App>,
    writer: &crate::app::Writer<'_>,
    cluster_id: &str,
    new_password: &str,
) -> Result<Vec<Change>, CloudHsmError> {
    check_password(new_password)?;
    let mut c = get_cluster(app, cluster_id)?;
    let mut u = get_user(app, cluster_id, KMSUSER)?;
    set_token_pin(app, writer, &mut c, new_password).await?;
    u.set_password(new_password);
    Ok(vec![Change::Cluster(c), Change::User(u)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_cloudhsm_rules() {
        assert_eq!(check_user_name("KmsUser").unwrap(), "kmsuser");
        assert_eq!(check_user_name("crypto_user_1").unwrap(), "crypto_user_1");
        assert!(check_user_name(&"a".repeat(31)).is_ok());
        assert!(check_user_name(&"a".repeat(32)).is_err());
        assert!(check_user_name("").is_err());
        assert!(check_user_name("bad-name").is_err());
        assert!(check_user_name("bäd").is_err());
        assert!(check_user_name("with space").is_err());
    }

    #[test]
    fn passwords_are_7_to_32_characters() {
        assert!(check_password("123456").is_err());
        assert!(check_password("1234567").is_ok());
        assert!(check_password(&"p".repeat(32)).is_ok());
        let e = check_password(&"p".repeat(33)).unwrap_err();
        assert!(
            !e.message.contains("ppp"),
            "never echo the password: {}",
            e.message
        );
    }

    fn cluster_in(state: &str) -> Cluster {
        serde_json::from_value(serde_json::json!({
            "id": "cluster-abcdefghijk", "state": state, "state_message": null,
            "hsm_type": "hsm2m.medium", "mode": "FIPS", "subnet_mapping": {},
            "security_group": "sg-1", "vpc_id": "vpc-1", "network_type": "IPV4",
            "create_timestamp": 0.0, "source_backup_id": null, "private_key_pem": "",
            "csr_pem": "", "cluster_certificate": null, "trust_anchor": null,
            "lineage": "cluster-abcdefghijk", "tags": {}, "token_user_pin": "",
            "token_so_pin": "", "has_token": true,
        }))
        .expect("a cluster")
    }

    #[test]
    fn epoch_after_reads_the_named_clusters_record_only() {
        let mut other = cluster_in("ACTIVE");
        other.id = "cluster-otherclusterx".into();
        other.kmsuser_epoch = 7;
        let mut named = cluster_in("ACTIVE");
        named.kmsuser_epoch = 3;
        let changes = vec![Change::Cluster(other), Change::Cluster(named)];
        assert_eq!(epoch_after(&changes, "cluster-abcdefghijk"), Some(3));
        assert_eq!(epoch_after(&changes[..1], "cluster-abcdefghijk"), None);
    }

    #[test]
    fn users_are_managed_in_an_active_or_degraded_cluster_only() {
        assert!(require_active(&cluster_in("ACTIVE")).is_ok());
        assert!(require_active(&cluster_in("DEGRADED")).is_ok());
        for state in [
            "INITIALIZED",
            "UNINITIALIZED",
            "UPDATE_IN_PROGRESS",
            "DELETED",
        ] {
            let e = require_active(&cluster_in(state)).expect_err(state);
            assert_eq!(
                e.kind,
                super::super::error::CloudHsmErrorKind::InvalidRequest
            );
            assert_eq!(
                e.message,
                format!(
                    "The cluster cluster-abcdefghijk is {state}; users can be managed only in an ACTIVE cluster"
                )
            );
        }
        let mut deleted = cluster_in("ACTIVE");
        deleted.faults.cluster_deleted = true;
        assert!(
            require_active(&deleted).is_err(),
            "a cluster deleted behind KMS's back"
        );
    }

    #[test]
    fn a_password_is_adopted_as_pin_only_on_a_bound_token_not_rotated_or_without_known_pin() {
        use super::super::model::BoundToken;
        let bound = |rotate: bool, pin: &str| {
            let mut c = cluster_in("ACTIVE");
            c.bound_token = Some(BoundToken {
                label: "own".into(),
                rotate_password: rotate,
            });
            c.token_user_pin = pin.into();
            c
        };
        let mut own = cluster_in("ACTIVE");
        assert!(
            !adopts_token_pin(&own),
            "the simulator's own token: C_SetPIN"
        );
        own.token_user_pin = "known".into();
        assert!(!adopts_token_pin(&own));
        assert!(adopts_token_pin(&bound(false, "known")), "never rotated");
        assert!(adopts_token_pin(&bound(false, "")));
        assert!(adopts_token_pin(&bound(true, "")), "PIN not known yet");
        assert!(
            !adopts_token_pin(&bound(true, "known")),
            "rotated: C_SetPIN"
        );
    }

    #[test]
    fn views_show_coverage_and_sessions() {
        let mut u = User::new(
            "cluster-abcdefghijk",
            "KMSUSER",
            Role::CryptoUser,
            "password1",
        );
        let v = UserView::of(&u);
        assert_eq!(v.username, "kmsuser");
        assert_eq!(v.role, "crypto-user");
        assert_eq!(v.cluster_coverage, "full");
        assert!(!v.logged_in && !v.locked && !v.mfa);
        u.coverage_full = false;
        u.sessions = 1;
        for _ in 0..6 {
            u.fail_login();
        }
        let v = UserView::of(&u);
        assert_eq!(v.cluster_coverage, "partial");
        assert!(v.logged_in && v.locked);
        assert_eq!(v.failed_logins, 6);
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["cluster_coverage"], "partial");
        assert_eq!(j["logged_in"], true);
    }

    /// A PIN change interrupted after the token changed, found while somebody else holds the
    /// token's login (a token two users of the module share): the settle logs the token out
    /// of every login first, since `C_Login` cannot check a PIN while the process is logged
    /// in, then restores kmsuser's recorded password as the token's PIN.
    #[cfg(feature = "testing")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_pin_change_is_undone_on_a_token_logged_out_of_every_login() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = crate::testing::started_app(dir.path(), "").await;
        let c = app
            .world()
            .clusters
            .values()
            .next()
            .cloned()
            .expect("the default cluster");
        let (previous, pending) = (c.token_user_pin.clone(), "Pending12345".to_string());
        let token = app.token(&c.id).await.expect("the cluster's token");
        token
            .set_user_pin(&app.pin(KMSUSER, &previous), &app.pin(KMSUSER, &pending))
            .await
            .expect("the token changes its PIN");
        let mut intent = c.clone();
        intent.pending_user_pin = Some(pending.clone());
        let writer = app.lock_writer().await;
        app.commit(&writer, vec![Change::Cluster(intent)])
            .await
            .expect("commit");
        token
            .login(&app.pin(KMSUSER, &pending))
            .await
            .expect("another login");

        settle_pin_change(&app, &writer, &c.id)
            .await
            .expect("settled");

        assert!(!token.is_logged_in(), "the other login is ended");
        token
            .check_user_pin(&app.pin(KMSUSER, &previous))
            .await
            .expect("the recorded password is the token's PIN again");
        assert!(
            token
                .check_user_pin(&app.pin(KMSUSER, &pending))
                .await
                .is_err()
        );
        assert_eq!(
            get_cluster(&app, &c.id).expect("cluster").pending_user_pin,
            None
        );
    }
}

//! User commands of the CloudHSM CLI on top of [`super::users`]: a login that names a role,
//! the password check every later command repeats, and the admin-only `user create`,
//! `user delete` and `user change-password` with the CLI's extra rules (the role given must
//! be the user's; a user who owns keys cannot be deleted; kmsuser's password cannot change
//! while AWS KMS holds its login; a logged-in user's password cannot be changed by someone
//! else). The rules of [`super::users`] (names, passwords, lockout, the D3 PIN rule) apply
//! unchanged. Not here: HTTP, JSON, the CLI's grammar.

use super::api::get_cluster;
use super::error::CloudHsmError;
use super::model::{KMSUSER, Role, User};
use super::users::{UserView, get_user};
use crate::app::{App, Change};
use std::sync::Arc;

/// Check `name`'s password without opening a session (every key command of the CLI
/// authenticates this way). The rules of a login: a locked user is refused, kmsuser is
/// refused while AWS KMS holds its login, and a wrong password counts as a failed login.
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster or user;
/// `CloudHsmAccessDeniedException` as above.
pub async fn authenticate(
    app: &Arc<App>,
    cluster_id: &str,
    name: &str,
    password: &str,
) -> Result<User, CloudHsmError> {
    let writer = app.lock_writer().await;
    get_cluster(app, cluster_id)?;
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
    if u.failed_logins > 0 {
        u.failed_logins = 0;
        app.commit(&writer, vec![Change::User(u.clone())]).await?;
    }
    Ok(u)
}

/// Check that `name` has `role` (the CLI names both at login).
///
/// # Errors
///
/// `CloudHsmResourceNotFoundException` for an unknown cluster or user;
/// `CloudHsmAccessDeniedException` for another role.
pub fn check_role(
    app: &App,
    cluster_id: &str,
    name: &str,
    role: Role,
) -> Result<(), CloudHsmError> {
    get_cluster(app, cluster_id)?;
    let u = get_user(app, cluster_id, name)?;
    if u.role == role {
        return Ok(());
    }
    // AWS's wording for a login with the wrong role is not in the CloudHSM user guide.
    Err(CloudHsmError::denied(format!(
        "The user {} does not have the role {}",
        u.name,
        role.as_str()
    )))
}

/// The CLI's `login --username --role`: the role must be the user's own (checked before the
/// password, so a wrong role costs no attempt), then [`super::users::login`] opens a session.
///
/// # Errors
///
/// As [`super::users::login`], and `CloudHsmAccessDeniedException` for a wrong role.
pub async fn login_with_role(
    app: &Arc<App>,
    cluster_id: &str,
    name: &str,
    role: Role,
    password: &str,
) -> Result<User, CloudHsmError> {
    check_role(app, cluster_id, name, role)?;
    super::users::login(app, cluster_id, name, password).await?;
    get_user(app, cluster_id, name)
}

fn require_admin(user: &User, what: &str) -> Result<(), CloudHsmError> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(CloudHsmError::denied(format!(
            "Only admins can {what}; {} is {}",
            user.name,
            user.role.as_str()
        )))
    }
}

fn require_role(u: &User, role: Role) -> Result<(), CloudHsmError> {
    if u.role == role {
        Ok(())
    } else {
        Err(CloudHsmError::invalid(format!(
            "The user {} has the role {}, not {}",
            u.name,
            u.role.as_str(),
            role.as_str()
        )))
    }
}

/// `user create` by the admin `auth`.
///
/// # Errors
///
/// `CloudHsmAccessDeniedException` when `auth` is not an admin; as
/// [`super::users::create_user`] otherwise.
pub async fn create_user(
    app: &Arc<App>,
    cluster_id: &str,
    auth: &User,
    name: &str,
    role: Role,
    password: &str,
) -> Result<UserView, CloudHsmError> {
    require_admin(auth, "create users")?;
    super::users::create_user(app, cluster_id, name, role, password).await
}

/// `user delete --username --role` by the admin `auth`: refused for a user who owns keys or
/// is logged in.
///
/// # Errors
///
/// `CloudHsmAccessDeniedException` when `auth` is not an admin;
/// `CloudHsmInvalidRequestException` for a wrong role, a key owner or a logged-in user; as
/// [`super::users::delete_user`] otherwise.
pub async fn delete_user(
    app: &Arc<App>,
    cluster_id: &str,
    auth: &User,
    name: &str,
    role: Role,
) -> Result<User, CloudHsmError> {
    require_admin(auth, "delete users")?;
    let u = get_user(app, cluster_id, name)?;
    require_role(&u, role)?;
    if u.sessions > 0 || (u.name == KMSUSER && crate::kms::holds_kmsuser(&app.world(), cluster_id))
    {
        return Err(CloudHsmError::invalid(format!(
            "The user {} is logged in and cannot be deleted",
            u.name
        )));
    }
    let owned = super::objects::owned_key_count(app, cluster_id, &u.name).await?;
    if owned > 0 {
        return Err(CloudHsmError::invalid(format!(
            "The user {} owns {owned} keys and cannot be deleted",
            u.name
        )));
    }
    super::users::delete_user(app, cluster_id, &u.name).await?;
    Ok(u)
}

/// `user change-password --username --role` by `auth` (logged in with `auth_password`): the
/// user itself, or an admin for anyone (which unlocks a locked user).
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for a wrong role; `CloudHsmAccessDeniedException` for
/// kmsuser while AWS KMS holds its login, or another user who is logged in; as
/// [`super::users::change_password`] otherwise.
pub async fn change_password(
    app: &Arc<App>,
    cluster_id: &str,
    auth: &User,
    auth_password: &str,
    name: &str,
    role: Role,
    new_password: &str,
) -> Result<User, CloudHsmError> {
    let u = get_user(app, cluster_id, name)?;
    require_role(&u, role)?;
    if u.name == KMSUSER && crate::kms::holds_kmsuser(&app.world(), cluster_id) {
        return Err(CloudHsmError::denied(
            "kmsuser is logged in by AWS KMS: disconnect the key store first",
        ));
    }
    if u.name != auth.name && u.sessions > 0 {
        return Err(CloudHsmError::denied(format!(
            "The user {} is logged in; its password cannot be changed now",
            u.name
        )));
    }
    super::users::change_password(
        app,
        cluster_id,
        &u.name,
        new_password,
        &auth.name,
        auth_password,
    )
    .await?;
    get_user(app, cluster_id, name)
}

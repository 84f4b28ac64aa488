//! Accounts and regions (architecture D19): every key, alias, custom key store, cluster and
//! backup lives in one (account, region) namespace, and a request sees only its caller's.
//!
//! The server runs each KMS and cloudhsmv2 request inside [`scoped`] with the namespace of
//! its signature (the credential's account, the scope's region); the domain asks [`sees`]
//! before it shows or touches a record, [`for_new`] when it creates one and [`current`] when
//! it writes an ARN. Outside a request (the control door, seeds, the deletion sweeper,
//! background connects) every record is visible, and new ones and ARNs go to the configured
//! default, `[identity] account` and `region`.
//!
//! Records store their namespace in two fields that are empty for the default one, so data
//! written before namespaces existed is the default namespace's without a migration, and the
//! default namespace's record IDs (aliases are stored under their name) keep their form.

use crate::app::App;
use std::future::Future;

/// An (account, region) pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// 12-digit account ID.
    pub account: String,
    /// Region name.
    pub region: String,
}

/// The namespace of the request being served, with the default one (which records store as
/// empty fields).
#[derive(Debug, Clone)]
struct Scope {
    ns: Namespace,
    default: Namespace,
}

tokio::task_local! {
    static CURRENT: Scope;
}

/// Run `f` as a request of namespace `ns`.
pub async fn scoped<F: Future>(app: &App, ns: Namespace, f: F) -> F::Output {
    CURRENT
        .scope(
            Scope {
                ns,
                default: default(app),
            },
            f,
        )
        .await
}

/// Run the synchronous `f` as a request of namespace `ns`.
pub fn sync_scoped<R>(app: &App, ns: Namespace, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(
        Scope {
            ns,
            default: default(app),
        },
        f,
    )
}

/// The namespace of the request being served, or the default one.
pub fn current(app: &App) -> Namespace {
    CURRENT
        .try_with(|s| s.ns.clone())
        .unwrap_or_else(|_| default(app))
}

/// Whether the record with stored namespace fields `account`, `region` is visible here: in
/// its own namespace's requests, and outside any request (the local doors see everything).
pub fn sees(account: &str, region: &str) -> bool {
    CURRENT
        .try_with(|s| {
            if account.is_empty() {
                s.ns == s.default
            } else {
                s.ns.account == account && s.ns.region == region
            }
        })
        .unwrap_or(true)
}

/// The namespace fields of a record created now.
pub fn for_new(app: &App) -> (String, String) {
    current(app).stored(app)
}

/// `[identity] account` and `region`.
pub fn default(app: &App) -> Namespace {
    Namespace {
        account: app.config.account.clone(),
        region: app.config.region.clone(),
    }
}

impl Namespace {
    /// The two fields a record stores for this namespace: empty for the default one.
    pub fn stored(&self, app: &App) -> (String, String) {
        if *self == default(app) {
            (String::new(), String::new())
        } else {
            (self.account.clone(), self.region.clone())
        }
    }

    /// `arn:aws:kms:<region>:<account>:`, the prefix of this namespace's KMS ARNs.
    pub fn kms_arn_prefix(&self) -> String {
        format!("arn:aws:kms:{}:{}:", self.region, self.account)
    }
}

/// The storage ID of the alias `name` in `ns`: the name itself in the default namespace, else
/// `<account>/<region>/<name>` (an alias name never contains `/` before `alias/`).
pub fn alias_storage_id(app: &App, ns: &Namespace, name: &str) -> String {
    match ns.stored(app) {
        (a, _) if a.is_empty() => name.to_string(),
        (a, r) => format!("{a}/{r}/{name}"),
    }
}

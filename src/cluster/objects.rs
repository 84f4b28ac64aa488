//! Keys on a cluster's token as the CloudHSM CLI sees them: owners, shares, key references,
//! attribute filters, and the key commands of crypto users (list, delete, generate, share).
//!
//! **Owners.** Every key object on a cluster's token has one owning user. The token has a
//! single user PIN, kmsuser's password (D3), so whatever was made on it is kmsuser's unless an
//! [`ObjectOwners`] record says otherwise: KMS key material is kmsuser's without a record; a
//! key made by `key generate-symmetric` gets a record naming its crypto user; sharing writes
//! (or extends) a record. A crypto user sees the keys it owns or shares and every public key;
//! an admin sees every key but cannot use, make, delete or share one.
//!
//! **Key references.** The CLI names a key by a 64-bit reference. Here it is the first eight
//! bytes of the object's `CKA_ID` (KMS key material: the key ID's UUID bytes; CLI-made keys: a
//! random ID), so it is stable across restarts.
//!
//! Deleting a KMS key's material leaves the KMS key in place, failing on use (spec §1.6);
//! deleting an orphan's material also removes its orphan record. Not here: HTTP, JSON, the
//! CLI's grammar.

use super::api::get_cluster;
use super::error::CloudHsmError;
use super::model::{KMSUSER, Role, User};
use super::users::get_user;
use crate::app::{App, Change};
use crate::hsm::{KeyAttributes, ObjectId, Token};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The owner and shared users of one token object, when they differ from "kmsuser, unshared".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectOwners {
    /// The cluster.
    pub cluster_id: String,
    /// The object's `CKA_ID`, lowercase hex.
    pub object_id: String,
    /// The owning user (lower case).
    pub owner: String,
    /// Crypto users the key is shared with (lower case, sorted).
    pub shared_users: Vec<String>,
}

impl ObjectOwners {
    /// The store ID: `<cluster-id>/<object id hex>`.
    pub fn key(&self) -> String {
        owners_key(&self.cluster_id, &self.object_id)
    }
}

fn owners_key(cluster_id: &str, object_id: &str) -> String {
    format!("{cluster_id}/{object_id}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One attribute value of a key as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// Text (`label`, `class`, `0x…` hex values).
    Text(String),
    /// A boolean attribute.
    Bool(bool),
    /// A number (`key-length-bytes`).
    Number(u64),
}

impl AttrValue {
    /// Whether a filter's `want` selects this value: text exactly (hex values in any case),
    /// booleans and numbers by their written form.
    pub fn matches(&self, want: &str) -> bool {
        match self {
            AttrValue::Text(s) if s.starts_with("0x") => s.eq_ignore_ascii_case(want),
            AttrValue::Text(s) => s == want,
            AttrValue::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
            AttrValue::Number(n) => want.parse::<u64>().is_ok_and(|w| w == *n),
        }
    }

    /// The value as text.
    pub fn as_text(&self) -> String {
        match self {
            AttrValue::Text(s) => s.clone(),
            AttrValue::Bool(b) => b.to_string(),
            AttrValue::Number(n) => n.to_string(),
        }
    }
}

/// A key on a cluster's token, with its owner and shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    /// The key reference (see the module documentation).
    pub reference: u64,
    /// The token's attributes.
    pub attrs: KeyAttributes,
    /// The owning user.
    pub owner: String,
    /// Crypto users the key is shared with.
    pub shared_users: Vec<String>,
}

/// The CLI name of a PKCS#11 class or key type: `SECRET_KEY` → `secret-key`, `AES` → `aes`.
fn cli_name(pkcs11: &str) -> String {
    let bare = pkcs11.trim_start_matches("CKO_").trim_start_matches("CKK_");
    bare.to_ascii_lowercase().replace('_', "-")
}

impl KeyView {
    /// The reference as the CLI prints it: `0x` and 16 hex digits.
    pub fn reference_text(&self) -> String {
        format!("0x{:016x}", self.reference)
    }

    /// The key's attributes under the CLI's names, in the CLI's order.
    pub fn attributes(&self) -> Vec<(String, AttrValue)> {
        let a = &self.attrs;
        let mut out = Vec::new();
        if let Some(t) = &a.key_type {
            out.push(("key-type".into(), AttrValue::Text(cli_name(t))));
        }
        out.push(("label".into(), AttrValue::Text(a.label.clone())));
        let id = if a.id.is_empty() {
            String::new()
        } else {
            format!("0x{}", hex(&a.id))
        };
        out.push(("id".into(), AttrValue::Text(id)));
        if let Some(cv) = &a.check_value {
            out.push((
                "check-value".into(),
                AttrValue::Text(format!("0x{}", hex(cv))),
            ));
        }
        out.push(("class".into(), AttrValue::Text(cli_name(&a.class))));
        for (name, b) in &a.flags {
            out.push((name.replace('_', "-"), AttrValue::Bool(*b)));
        }
        if let Some(n) = a.value_len {
            out.push(("key-length-bytes".into(), AttrValue::Number(n)));
        }
        out
    }

    fn attribute(&self, name: &str) -> Option<AttrValue> {
        self.attributes()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn is_public(&self) -> bool {
        cli_name(&self.attrs.class) == "public-key"
    }

    fn visible_to(&self, user: &User) -> bool {
        user.role == Role::Admin
            || self.owner == user.name
            || self.shared_users.iter().any(|s| *s == user.name)
            || self.is_public()
    }

    fn object_id(&self) -> Result<ObjectId, CloudHsmError> {
        ObjectId::try_from(self.attrs.id.as_slice()).map_err(|_| {
            CloudHsmError::invalid(format!(
                "The key {} was not made by AWS KMS or CloudHSM CLI here and cannot be changed",
                self.reference_text()
            ))
        })
    }
}

/// The key reference of an object with this `CKA_ID`: its first eight bytes, big-endian.
pub fn key_reference(id: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    for (dst, src) in b.iter_mut().zip(id.iter()) {
        *dst = *src;
    }
    u64::from_be_bytes(b)
}

/// A `--filter`: a key reference, or attribute terms that must all match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `key-reference=0x…`.
    Reference(u64),
    /// `attr.NAME=VALUE …` (empty: every key).
    Attributes(Vec<(String, String)>),
}

/// Parse the CLI's `--filter` terms.
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for a term of neither form or a bad reference.
pub fn parse_filter(terms: &[String]) -> Result<Filter, CloudHsmError> {
    if let [one] = terms
        && let Some(r) = one.strip_prefix("key-reference=")
    {
        let digits = r.trim_start_matches("0x").trim_start_matches("0X");
        return u64::from_str_radix(digits, 16)
            .map(Filter::Reference)
            .map_err(|_| CloudHsmError::invalid(format!("Invalid key reference: {r}")));
    }
    let mut out = Vec::new();
    for t in terms {
        let pair = t
            .strip_prefix("attr.")
            .and_then(|rest| rest.split_once('='))
            .ok_or_else(|| {
                CloudHsmError::invalid(format!(
                    "Invalid filter '{t}': use key-reference=0x… or attr.KEY_ATTRIBUTE_NAME=KEY_ATTRIBUTE_VALUE"
                ))
            })?;
        out.push((pair.0.to_string(), pair.1.to_string()));
    }
    Ok(Filter::Attributes(out))
}

impl Filter {
    /// Whether `key` matches.
    pub fn matches(&self, key: &KeyView) -> bool {
        match self {
            Filter::Reference(r) => key.reference == *r,
            Filter::Attributes(terms) => terms
                .iter()
                .all(|(name, want)| key.attribute(name).is_some_and(|v| v.matches(want))),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Filter::Attributes(t) if t.is_empty())
    }
}

/// The token of a cluster and the PIN that opens it.
async fn open_token(
    app: &Arc<App>,
    cluster_id: &str,
) -> Result<(Arc<Token>, String), CloudHsmError> {
    let c = get_cluster(app, cluster_id)?;
    if !c.has_token {
        return Err(CloudHsmError::invalid(format!(
            "The cluster {cluster_id} has no HSM key storage yet: initialize and activate it first"
        )));
    }
    let pin = app.pin(KMSUSER, &c.token_user_pin);
    Ok((app.token(cluster_id).await?, pin))
}

/// Every key object on the cluster's token, with owners and shares, by reference.
async fn all_keys(app: &Arc<App>, cluster_id: &str) -> Result<Vec<KeyView>, CloudHsmError> {
    let (token, pin) = open_token(app, cluster_id).await?;
    let attrs = token
        .with_login(&pin, |t| async move { t.list_key_attributes().await })
        .await?;
    let w = app.world();
    // A user deleted since it was given a share no longer shares the key.
    let exists = |name: &String| {
        w.users
            .contains_key(&super::model::user_key(cluster_id, name))
    };
    let mut out: Vec<KeyView> = attrs
        .into_iter()
        .map(|a| {
            let rec = w.object_owners.get(&owners_key(cluster_id, &hex(&a.id)));
            KeyView {
                reference: key_reference(&a.id),
                owner: rec.map_or_else(|| KMSUSER.to_string(), |r| r.owner.clone()),
                shared_users: rec
                    .map(|r| {
                        r.shared_users
                            .iter()
                            .filter(|u| exists(u))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
                attrs: a,
            }
        })
        .collect();
    out.sort_by_key(|k| k.reference);
    Ok(out)
}

/// One page of `key list`.
#[derive(Debug, Clone)]
pub struct KeyPage {
    /// The keys on this page.
    pub keys: Vec<KeyView>,
    /// How many keys matched in all.
    pub total: usize,
    /// Where the next page starts, if there is one.
    pub next_token: Option<String>,
}

/// `key list`: the keys `user` may see that match `filter`, `max_items` of them from
/// `starting_token` (an offset the previous page returned).
///
/// # Errors
///
/// `CloudHsmInvalidRequestException` for an admin's filter (filtering needs a crypto user),
/// `max_items` of 0 or a bad token; token failures as `CloudHsmInternalFailureException`.
pub async fn list_keys(
    app: &Arc<App>,
    cluster_id: &str,
    user: &User,
    filter: &Filter,
    max_items: usize,
    starting_token: Option<&str>,
) -> Result<KeyPage, CloudHsmError> {
    if user.role != Role::CryptoUser && !filter.is_empty() {
        return Err(CloudHsmError::invalid(
            "To filter keys, you must be logged in as a crypto user (CU)",
        ));
    }
    if max_items == 0 {
        return Err(CloudHsmError::invalid("--max-items must be at least 1"));
    }
    let start: usize = match starting_token {
        None => 0,
        Some(t) => t
            .parse()
            .map_err(|_| CloudHsmError::invalid(format!("Invalid starting token: {t}")))?,
    };
    let matched: Vec<KeyView> = all_keys(app, cluster_id)
        .await?
        .into_iter()
        .filter(|k| k.visible_to(user) && filter.matches(k))
        .collect();
    let total = matched.len();
    let end = start.saturating_add(max_items).min(total);
    let keys = matched.into_iter().skip(start).take(max_items).collect();
    Ok(KeyPage {
        keys,
        total,
        next_token: (end < total).then(|| end.to_string()),
    })
}

fn require_crypto_user(user: &User, what: &str) -> Result<(), CloudHsmError> {
    if user.role == Role::CryptoUser {
        Ok(())
    } else {
        Err(CloudHsmError::denied(format!(
            "Only crypto users (CUs) can {what}; {} is {}",
            user.name,
            user.role.as_str()
        )))
    }
}

/// The one key `user` may see that matches `filter`.
async fn one_key(
    app: &Arc<App>,
    cluster_id: &str,
    user: &User,
    filter: &Filter,
) -> Result<KeyView, CloudHsmError> {
    let mut found: Vec<KeyView> = all_keys(app, cluster_id)
        .await?
        .into_iter()
        .filter(|k| k.visible_to(user) && filter.matches(k))
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(CloudHsmError::not_found(
            "No keys found matching the filter for the current user",
        )),
        n => Err(CloudHsmError::invalid(format!(
            "The filter matches {n} keys; refine it to select exactly one key"
        ))),
    }
}

/// `key delete --filter …`: the owner (a crypto user) destroys the one matching key. A KMS
/// key's material goes while the KMS key stays (it then fails on use); an orphan's record
/// goes with its material.
///
/// # Errors
///
/// `CloudHsmAccessDeniedException` for an admin or a user who only shares the key;
/// `CloudHsmResourceNotFoundException` when nothing matches; `CloudHsmInvalidRequestException`
/// when several keys match.
pub async fn delete_key(
    app: &Arc<App>,
    cluster_id: &str,
    user: &User,
    filter: &Filter,
) -> Result<KeyView, CloudHsmError> {
    require_crypto_user(user, "delete keys")?;
    let writer = app.lock_writer().await;
    let key = one_key(app, cluster_id, user, filter).await?;
    if key.owner != user.name {
        return Err(CloudHsmError::denied(format!(
            "Only the owner of key {} ({}) can delete it",
            key.reference_text(),
            key.owner
        )));
    }
    let id = key.object_id()?;
    let (token, pin) = open_token(app, cluster_id).await?;
    token
        .with_login(&pin, |t| async move { t.destroy(id).await })
        .await?;
    let object_id = hex(&key.attrs.id);
    let mut changes = vec![Change::DelObjectOwners(owners_key(cluster_id, &object_id))];
    changes.extend(
        app.world()
            .orphans
            .iter()
            .filter(|(_, o)| o.cluster_id == cluster_id && o.object_id == object_id)
            .map(|(seq, _)| Change::DelOrphan(seq.clone())),
    );
    app.commit(&writer, changes).await?;
    Ok(key)
}

/// Check that each of `names` is a crypto user of the cluster other than `owner`; returns
/// them lower-cased, sorted, without repeats.
fn crypto_users(
    app: &App,
    cluster_id: &str,
    owner: &str,
    names: &[String],
) -> Result<Vec<String>, CloudHsmError> {
    let mut out = Vec::new();
    for n in names {
        let u = get_user(app, cluster_id, n)?;
        if u.role != Role::CryptoUser {
            return Err(CloudHsmError::invalid(format!(
                "Keys can be shared only with crypto users; {} is {}",
                u.name,
                u.role.as_str()
            )));
        }
        if u.name == owner {
            return Err(CloudHsmError::invalid(format!(
                "{} owns the key and cannot share it with itself",
                u.name
            )));
        }
        out.push(u.name.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `key generate-symmetric aes`: a persistent AES key of 16, 24 or 32 bytes labelled
/// `label`, owned by `user` (a crypto user) and shared with `share_with`.
///
/// # Errors
///
/// `CloudHsmAccessDeniedException` for an admin; `CloudHsmInvalidRequestException` for a
/// bad length, an empty label or a share with someone not a crypto user.
pub async fn generate_aes(
    app: &Arc<App>,
    cluster_id: &str,
    user: &User,
    label: &str,
    len_bytes: u64,
    share_with: &[String],
) -> Result<KeyView, CloudHsmError> {
    require_crypto_user(user, "generate keys")?;
    if ![16, 24, 32].contains(&len_bytes) {
        return Err(CloudHsmError::invalid(format!(
            "Invalid key length {len_bytes}: an AES key is 16, 24 or 32 bytes"
        )));
    }
    if label.is_empty() || label.len() > 127 {
        return Err(CloudHsmError::invalid(
            "The label must be 1 to 127 characters long",
        ));
    }
    let shared_users = crypto_users(app, cluster_id, &user.name, share_with)?;
    let writer = app.lock_writer().await;
    let mut id: ObjectId = [0; 16];
    id.copy_from_slice(&crate::ids::random_bytes(16));
    let (token, pin) = open_token(app, cluster_id).await?;
    let l = label.to_string();
    token
        .with_login(&pin, |t| async move {
            t.generate_aes_key_of_length(&l, id, len_bytes).await
        })
        .await?;
    let rec = ObjectOwners {
        cluster_id: cluster_id.to_string(),
        object_id: hex(&id),
        owner: user.name.to_string(),
        shared_users,
    };
    app.commit(&writer, vec![Change::ObjectOwners(rec)]).await?;
    let reference = key_reference(&id);
    all_keys(app, cluster_id)
        .await?
        .into_iter()
        .find(|k| k.reference == reference)
        .ok_or_else(|| CloudHsmError::internal("the generated key is not on the token"))
}

/// `key share` (`share = true`) or `key unshare`: the owner gives or takes back the use of
/// the one matching key to or from the crypto user `target`.
///
/// # Errors
///
/// `CloudHsmAccessDeniedException` for an admin or a non-owner;
/// `CloudHsmInvalidRequestException` for a target that is not a crypto user, is the owner,
/// already shares the key (share) or does not (unshare).
pub async fn share_key(
    app: &Arc<App>,
    cluster_id: &str,
    user: &User,
    filter: &Filter,
    target: &str,
    share: bool,
) -> Result<KeyView, CloudHsmError> {
    require_crypto_user(user, "share keys")?;
    let writer = app.lock_writer().await;
    let mut key = one_key(app, cluster_id, user, filter).await?;
    if key.owner != user.name {
        return Err(CloudHsmError::denied(format!(
            "Only the owner of key {} ({}) can share or unshare it",
            key.reference_text(),
            key.owner
        )));
    }
    key.object_id()?;
    let target = crypto_users(app, cluster_id, &key.owner, &[target.to_string()])?.remove(0);
    let present = key.shared_users.contains(&target);
    if share == present {
        return Err(CloudHsmError::invalid(if share {
            format!("The key is already shared with {target}")
        } else {
            format!("The key is not shared with {target}")
        }));
    }
    if share {
        key.shared_users.push(target);
        key.shared_users.sort();
    } else {
        key.shared_users.retain(|u| u != &target);
    }
    let rec = ObjectOwners {
        cluster_id: cluster_id.to_string(),
        object_id: hex(&key.attrs.id),
        owner: key.owner.clone(),
        shared_users: key.shared_users.clone(),
    };
    app.commit(&writer, vec![Change::ObjectOwners(rec)]).await?;
    Ok(key)
}

/// How many keys on the cluster's token `name` owns (0 when the cluster has no token).
///
/// # Errors
///
/// Token failures, as `CloudHsmInternalFailureException`.
pub async fn owned_key_count(
    app: &Arc<App>,
    cluster_id: &str,
    name: &str,
) -> Result<usize, CloudHsmError> {
    if !get_cluster(app, cluster_id)?.has_token {
        return Ok(0);
    }
    let name = name.to_ascii_lowercase();
    Ok(all_keys(app, cluster_id)
        .await?
        .iter()
        .filter(|k| k.owner == name)
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &[u8], label: &str, owner: &str) -> KeyView {
        KeyView {
            reference: key_reference(id),
            attrs: KeyAttributes {
                id: id.to_vec(),
                label: label.into(),
                class: "SECRET_KEY".into(),
                key_type: Some("AES".into()),
                check_value: Some(vec![0xae, 0x8f, 0xf0]),
                value_len: Some(32),
                flags: vec![("extractable", false), ("never_extractable", true)],
            },
            owner: owner.into(),
            shared_users: vec![],
        }
    }

    #[test]
    fn references_are_the_first_eight_id_bytes() {
        assert_eq!(
            key_reference(&[0, 0, 0, 0, 0, 0x1c, 0x06, 0x86, 9, 9]),
            0x1c0686
        );
        assert_eq!(key_reference(&[1]), 0x0100_0000_0000_0000);
        assert_eq!(
            view(&[0, 0, 0, 0, 0, 0, 0, 5], "l", "u").reference_text(),
            "0x0000000000000005"
        );
    }

    #[test]
    fn filters_match_cli_attribute_names() {
        let k = view(&[7; 16], "arn:aws:kms:x", "kmsuser");
        let f = parse_filter(&["attr.label=arn:aws:kms:x".into()]).unwrap();
        assert!(f.matches(&k));
        let f =
            parse_filter(&["attr.class=secret-key".into(), "attr.key-type=aes".into()]).unwrap();
        assert!(f.matches(&k));
        let f = parse_filter(&[
            "attr.never-extractable=true".into(),
            "attr.key-length-bytes=32".into(),
        ])
        .unwrap();
        assert!(f.matches(&k));
        let f = parse_filter(&["attr.label=other".into()]).unwrap();
        assert!(!f.matches(&k));
        let f = parse_filter(&[format!("key-reference={}", k.reference_text())]).unwrap();
        assert!(f.matches(&k));
        let f = parse_filter(&["key-reference=0x7".into()]).unwrap();
        assert!(!f.matches(&k));
    }

    #[test]
    fn labels_match_exactly_and_hex_values_in_any_case() {
        let k = view(&[0xab; 16], "MyKey", "u");
        let m = |t: &str| parse_filter(&[t.to_string()]).unwrap().matches(&k);
        assert!(m("attr.label=MyKey"));
        assert!(!m("attr.label=mykey"));
        assert!(m("attr.check-value=0xAE8FF0"));
        assert!(m("attr.extractable=FALSE"));
        assert!(!m("attr.key-length-bytes=16"));
        assert!(!m("attr.no-such-attribute=1"));
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(parse_filter(&["label=x".into()]).is_err());
        assert!(parse_filter(&["attr.label".into()]).is_err());
        assert!(parse_filter(&["key-reference=0xzz".into()]).is_err());
    }

    #[test]
    fn attributes_use_cli_names_and_values() {
        let a = view(&[0xab; 16], "l", "u").attributes();
        let get = |n: &str| a.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("class"), Some(AttrValue::Text("secret-key".into())));
        assert_eq!(get("key-type"), Some(AttrValue::Text("aes".into())));
        assert_eq!(get("check-value"), Some(AttrValue::Text("0xae8ff0".into())));
        assert_eq!(get("never-extractable"), Some(AttrValue::Bool(true)));
        assert_eq!(get("key-length-bytes"), Some(AttrValue::Number(32)));
        assert_eq!(
            get("id"),
            Some(AttrValue::Text(format!("0x{}", "ab".repeat(16))))
        );
    }
}

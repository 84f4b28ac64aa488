//! Seeding KMS (D15): `[[key_store]]` and `[[key]]` tables of a seed file (the same file whose
//! `[[cluster]]` tables `cluster::seed` applies), created through the real operations so every
//! rule holds. Applying a seed twice changes nothing: existing IDs are left as they are.
//!
//! ```toml
//! [[key_store]]
//! id = "cks-1234567890abcdef0"      # optional fixed ID
//! name = "ExampleKeyStore"
//! cluster_id = "cluster-234567abcdefg"
//! password = "kmsuserPassw0rd"      # kmsuser's current password
//! connect = true                    # connect after creating (default false)
//!
//! [[key]]
//! id = "1234abcd-12ab-34cd-56ef-1234567890ab"   # optional fixed key ID
//! key_store = "cks-1234567890abcdef0"           # absent: an AWS_KMS key
//! description = "seeded"
//! aliases = ["alias/example"]
//! ```

use super::error::KmsError;
use super::model::ConnectionState;
use crate::app::App;
use crate::kms_err;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The KMS part of a seed file.
#[derive(Debug, Default, Deserialize)]
pub struct KmsSeed {
    /// Key stores.
    #[serde(default)]
    pub key_store: Vec<SeedKeyStore>,
    /// Keys.
    #[serde(default)]
    pub key: Vec<SeedKey>,
}

/// One `[[key_store]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKeyStore {
    /// Fixed ID (`cks-` + 17 hex digits).
    pub id: Option<String>,
    /// Name.
    pub name: String,
    /// The cluster.
    pub cluster_id: String,
    /// The trust anchor PEM file; default: the cluster's own trust anchor.
    pub trust_anchor_file: Option<String>,
    /// kmsuser's password.
    pub password: String,
    /// Connect after creating.
    #[serde(default)]
    pub connect: bool,
}

/// One `[[key]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKey {
    /// Fixed key ID (a UUID).
    pub id: Option<String>,
    /// The key store (absent: an AWS_KMS key).
    pub key_store: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Aliases to point at the key.
    #[serde(default)]
    pub aliases: Vec<String>,
}

fn seed_err(what: &str, e: KmsError) -> KmsError {
    KmsError::new(e.kind, format!("seed {what}: {}", e.message))
}

/// A seed value within the length its request member has in the KMS model (a seed builds
/// domain values directly, without the request decoder).
fn within(what: &str, member: &str, value: &str, min: usize, max: usize) -> Result<(), KmsError> {
    let n = value.chars().count();
    let rule = if n < min {
        format!("Member must have length greater than or equal to {min}")
    } else if n > max {
        format!("Member must have length less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(seed_err(what, KmsError::validation(member, value, &rule)))
}

fn is_store_id(s: &str) -> bool {
    s.strip_prefix("cks-").is_some_and(|h| {
        h.len() == 17
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// Apply the KMS tables of the seed file at `path`.
pub async fn apply_file(app: &Arc<App>, path: &Path) -> Result<(), KmsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| kms_err!(Validation, "cannot read seed file {}: {e}", path.display()))?;
    let seed: KmsSeed = toml::from_str(&text)
        .map_err(|e| kms_err!(Validation, "invalid seed file {}: {e}", path.display()))?;
    apply(app, &seed, path.parent().unwrap_or(Path::new("."))).await
}

/// Apply `seed`; relative files are read from `base`.
pub async fn apply(app: &Arc<App>, seed: &KmsSeed, base: &Path) -> Result<(), KmsError> {
    for s in &seed.key_store {
        apply_key_store(app, s, base).await?;
    }
    for k in &seed.key {
        apply_key(app, k).await?;
    }
    Ok(())
}

/// One `[[key_store]]`: created unless it exists (by ID, else by name), then connected if
/// asked and still disconnected.
async fn apply_key_store(app: &Arc<App>, s: &SeedKeyStore, base: &Path) -> Result<(), KmsError> {
    let what = format!("key store {:?}", s.name);
    within(&what, "CustomKeyStoreName", &s.name, 1, 256)?;
    within(&what, "KeyStorePassword", &s.password, 7, 32)?;
    if let Some(id) = &s.id
        && !is_store_id(id)
    {
        return Err(kms_err!(
            Validation,
            "{what}: id {id:?} must be cks- followed by 17 lowercase hex digits"
        ));
    }
    let existing = {
        let w = app.world();
        match &s.id {
            Some(id) => w.stores.get(id).map(|x| x.id.to_string()),
            None => w
                .stores
                .values()
                .find(|x| x.name == s.name)
                .map(|x| x.id.to_string()),
        }
    };
    let id = match existing {
        Some(id) => id,
        None => {
            let anchor = match &s.trust_anchor_file {
                Some(f) => std::fs::read_to_string(base.join(f))
                    .map_err(|e| kms_err!(Validation, "{what}: cannot read {f}: {e}"))?,
                None => app
                    .world()
                    .clusters
                    .get(&s.cluster_id)
                    .and_then(|c| c.trust_anchor.clone())
                    .ok_or_else(|| {
                        kms_err!(
                            CloudHsmClusterNotFound,
                            "{what}: cluster {} is not initialized or does not exist",
                            s.cluster_id
                        )
                    })?,
            };
            let new = super::key_store::NewStore {
                name: s.name.clone(),
                cluster_id: s.cluster_id.clone(),
                trust_anchor: anchor,
                password: s.password.clone(),
            };
            super::key_store::create_store(app, new, s.id.clone())
                .await
                .map_err(|e| seed_err(&what, e))?
        }
    };
    connect_seeded(app, s, &id, &what).await
}

/// Connect a seeded store if the seed asks and it is disconnected; wait for the outcome.
async fn connect_seeded(
    app: &Arc<App>,
    s: &SeedKeyStore,
    id: &str,
    what: &str,
) -> Result<(), KmsError> {
    let state = app.world().stores.get(id).map(|x| x.state);
    if !(s.connect && state == Some(ConnectionState::Disconnected)) {
        return Ok(());
    }
    super::key_store::connect_store(app, id.to_string())
        .await
        .map_err(|e| seed_err(what, e))?;
    wait_settled(app, id).await;
    let st = app.world().stores.get(id).map(|x| (x.state, x.error_code));
    if let Some((ConnectionState::Failed, code)) = st {
        return Err(kms_err!(
            KmsInternal,
            "{what}: connecting failed with {}",
            code.map(|c| c.as_str()).unwrap_or("an unknown error")
        ));
    }
    Ok(())
}

/// One `[[key]]`: created unless it exists (by ID, else by its first alias), then its aliases.
async fn apply_key(app: &Arc<App>, k: &SeedKey) -> Result<(), KmsError> {
    let what = format!("key {}", k.id.as_deref().unwrap_or("(no id)"));
    within(&what, "Description", &k.description, 0, 8192)?;
    let fixed = match &k.id {
        Some(i) => Some(
            uuid::Uuid::parse_str(i)
                .map_err(|e| kms_err!(Validation, "{what}: not a UUID: {e}"))?,
        ),
        None => None,
    };
    let exists = match fixed {
        Some(u) => app.world().keys.contains_key(&u.to_string()),
        None => k
            .aliases
            .first()
            .is_some_and(|a| app.world().aliases.contains_key(a)),
    };
    let key_id = if exists {
        match fixed {
            Some(u) => u.to_string(),
            None => return Ok(()),
        }
    } else {
        let new = super::key::NewKey::symmetric(k.description.clone(), k.key_store.clone())
            .map_err(|e| seed_err(&what, e))?;
        super::key::create(app, new, fixed)
            .await
            .map_err(|e| seed_err(&what, e))?
            .id
            .to_string()
    };
    for a in &k.aliases {
        if app.world().aliases.contains_key(a) {
            continue;
        }
        super::key::new_alias(app, a.clone(), &key_id)
            .await
            .map_err(|e| seed_err(&what, e))?;
    }
    Ok(())
}

async fn wait_settled(app: &Arc<App>, id: &str) {
    for _ in 0..2000 {
        if app
            .world()
            .stores
            .get(id)
            .is_none_or(|s| s.state != ConnectionState::Connecting)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_store_name_over_256_characters_is_refused_in_the_models_words() {
        let e = within(
            "key store \"x\"",
            "CustomKeyStoreName",
            &"n".repeat(257),
            1,
            256,
        )
        .unwrap_err();
        assert_eq!(e.kind, crate::kms::error::KmsErrorKind::Validation);
        assert!(
            e.message
                .starts_with("seed key store \"x\": 1 validation error detected: Value 'nnn")
        );
        assert!(e.message.ends_with(
            "at 'customKeyStoreName' failed to satisfy constraint: Member must have length less than or equal to 256"
        ));
    }

    #[test]
    fn a_seed_password_too_short_is_refused_without_showing_it() {
        let e = within("key store \"x\"", "KeyStorePassword", "secret", 7, 32).unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
        assert!(e.message.ends_with(
            "Value at 'keyStorePassword' failed to satisfy constraint: Member must have length greater than or equal to 7"
        ));
        assert!(within("key store \"x\"", "KeyStorePassword", "secret1", 7, 32).is_ok());
    }
}

//! Numbered forward migrations. Append a new entry to `MIGRATIONS` for every schema change;
//! never edit a released one.

use super::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// Each entry takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the document tables. `json_valid` keeps a bad document from ever being committed.
    "CREATE TABLE meta       (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));
     CREATE TABLE clusters   (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));
     CREATE TABLE hsms       (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));
     CREATE TABLE users      (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));
     CREATE TABLE backups    (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));
     CREATE TABLE key_stores (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));
     CREATE TABLE keys       (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));
     CREATE TABLE aliases    (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));
     CREATE TABLE orphans    (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));",
    // 2: who owns a cluster token's object, and with whom it is shared (the CloudHSM CLI's
    // `key-owners` and `shared-users`), for objects not owned by kmsuser or shared.
    "CREATE TABLE token_objects (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));",
    // 3: KMS grants, by `<key ARN>/<grant id>`.
    "CREATE TABLE grants (id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)));",
];

/// The schema version this binary writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring `conn` to `LATEST_VERSION`, one transaction per step.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Sqlite {
        path: path.display().to_string(),
        source,
    };
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    if found > LATEST_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found,
            known: LATEST_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_applied_step_by_step_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        migrate(&mut conn, &path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST_VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 11);
    }
}

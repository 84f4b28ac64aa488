//! Metadata persistence in one SQLite file (D8): the only SQL in the crate.
//!
//! The store is a small document store: each table holds one JSON document per record,
//! keyed by the record's ID, written by the domain layers as opaque text. Every mutation is
//! one [`Batch`] applied in one transaction, committed before the caller answers and before
//! memory changes. The schema is versioned (`PRAGMA user_version`) with numbered forward
//! migrations; a file from a newer binary is refused with a clear message.
//!
//! Key material is never stored here.

mod migrations;

use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use migrations::LATEST_VERSION;

/// A failure of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("metadata store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer cks-sim.
    #[error(
        "metadata store {path} has schema version {found}, but this cks-sim knows versions up to \
         {known}: use a newer cks-sim or another --data-dir"
    )]
    TooNew {
        /// The database file.
        path: String,
        /// The version in the file.
        found: i64,
        /// The latest version this binary knows.
        known: i64,
    },
    /// A stored record cannot be read back: the start stops and says which, and the way out.
    #[error(
        "metadata store {path}: the record {table}/{id} cannot be read ({detail}). Repair or \
         remove that row (for example: sqlite3 {path} \"DELETE FROM {table} WHERE id = '{id}'\"), \
         or start with another --data-dir"
    )]
    BadRecord {
        /// The database file.
        path: String,
        /// The table's name.
        table: &'static str,
        /// The record's ID.
        id: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The lock around the connection was poisoned by a panic.
    #[error("metadata store lock poisoned")]
    Poisoned,
}

/// The tables of the store. Each holds `(id, doc)` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Simulated CloudHSM clusters.
    Clusters,
    /// HSMs of clusters.
    Hsms,
    /// Cluster users (id = `<cluster-id>/<user name>`).
    Users,
    /// Cluster backups.
    Backups,
    /// KMS custom key stores.
    KeyStores,
    /// KMS keys (with tags, policy and pending deletion).
    Keys,
    /// KMS aliases.
    Aliases,
    /// Orphaned key material log (id = sequence number as text).
    Orphans,
    /// Owners and shares of cluster token objects (id = `<cluster-id>/<object id hex>`).
    TokenObjects,
    /// KMS grants (id = `<key ARN>/<grant id>`).
    Grants,
    /// Simulator settings that persist (clock offset, …).
    Meta,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Clusters => "clusters",
            Table::Hsms => "hsms",
            Table::Users => "users",
            Table::Backups => "backups",
            Table::KeyStores => "key_stores",
            Table::Keys => "keys",
            Table::Aliases => "aliases",
            Table::Orphans => "orphans",
            Table::TokenObjects => "token_objects",
            Table::Grants => "grants",
            Table::Meta => "meta",
        }
    }
}

/// One change in a batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Insert or replace a document.
    Put {
        /// The table.
        table: Table,
        /// The record's ID.
        id: String,
        /// The JSON document.
        doc: String,
    },
    /// Delete a document (no error if absent).
    Delete {
        /// The table.
        table: Table,
        /// The record's ID.
        id: String,
    },
}

/// Changes applied together, in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Batch(pub Vec<Op>);

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch(Vec::new())
    }

    /// Add a put of `doc` (serialized to JSON).
    pub fn put<T: serde::Serialize>(
        &mut self,
        table: Table,
        id: impl Into<String>,
        doc: &T,
    ) -> &mut Self {
        // Serializing our own plain data types cannot fail (no maps with non-string keys).
        let doc = serde_json::to_string(doc).unwrap_or_else(|_| String::from("null"));
        self.0.push(Op::Put {
            table,
            id: id.into(),
            doc,
        });
        self
    }

    /// Add a delete.
    pub fn delete(&mut self, table: Table, id: impl Into<String>) -> &mut Self {
        self.0.push(Op::Delete {
            table,
            id: id.into(),
        });
        self
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// SQLite `synchronous=FULL`: the WAL is synced before a commit returns, so not even a
    /// power loss drops a change the simulator acknowledged. The default.
    #[default]
    Full,
    /// SQLite `synchronous=NORMAL`: a killed or crashed process loses nothing, but a power loss
    /// (or a crash of the machine) may drop the last acknowledged changes. For throwaway data.
    Normal,
}

impl Durability {
    /// The value of SQLite's `synchronous` pragma.
    pub fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }

    /// Parse a configuration value (`full` or `normal`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Durability::Full),
            "normal" => Some(Durability::Normal),
            _ => None,
        }
    }
}

/// The SQLite-backed store.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) the database at `path`, in WAL mode, migrated to the latest
    /// schema, with every commit on disk before it returns ([`Durability::Full`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// [`Store::open`] with a chosen durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", durability.pragma())
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        migrations::migrate(&mut conn, path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Apply every op of `batch` in one transaction.
    pub fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        for op in &batch.0 {
            match op {
                Op::Put { table, id, doc } => {
                    let sql = format!(
                        "INSERT INTO {} (id, doc) VALUES (?1, ?2) \
                         ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                        table.name()
                    );
                    tx.prepare_cached(&sql)
                        .and_then(|mut st| st.execute(params![id, doc]))
                        .map_err(|e| self.err(e))?;
                }
                Op::Delete { table, id } => {
                    let sql = format!("DELETE FROM {} WHERE id = ?1", table.name());
                    tx.prepare_cached(&sql)
                        .and_then(|mut st| st.execute(params![id]))
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every document of `table`, in ID order, deserialized.
    pub fn load<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let sql = format!("SELECT id, doc FROM {} ORDER BY id", table.name());
        let mut st = conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, doc) = row.map_err(|e| self.err(e))?;
            let value = self.decode(table, &id, &doc)?;
            out.push((id, value));
        }
        Ok(out)
    }

    /// One document, if present.
    pub fn get<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let sql = format!("SELECT doc FROM {} WHERE id = ?1", table.name());
        let doc: Option<String> = conn
            .query_row(&sql, params![id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        doc.map(|d| self.decode(table, id, &d)).transpose()
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        id: &str,
        doc: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(doc).map_err(|e| StoreError::BadRecord {
            path: self.path.display().to_string(),
            table: table.name(),
            id: id.to_string(),
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_reaches_latest_schema_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
        let mut b = Batch::new();
        b.put(Table::KeyStores, "cks-1", &serde_json::json!({"name": "a"}));
        b.put(Table::Keys, "k1", &serde_json::json!({"state": "Enabled"}));
        store.apply(&b).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let ks: Vec<(String, serde_json::Value)> = store.load(Table::KeyStores).unwrap();
        assert_eq!(ks, vec![("cks-1".into(), serde_json::json!({"name": "a"}))]);
        let mut b = Batch::new();
        b.delete(Table::KeyStores, "cks-1");
        store.apply(&b).unwrap();
        assert!(
            store
                .get::<serde_json::Value>(Table::KeyStores, "cks-1")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .get::<serde_json::Value>(Table::Keys, "k1")
                .unwrap()
                .is_some()
        );
    }

    fn synchronous_in_effect(store: &Store) -> i64 {
        let conn = store.conn.lock().unwrap();
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn commits_are_synced_before_they_return_unless_durability_is_normal() {
        let dir = tempfile::tempdir().unwrap();
        // SQLite numbers its levels: 1 = NORMAL, 2 = FULL.
        let full = Store::open(&dir.path().join("full.sqlite")).unwrap();
        assert_eq!(synchronous_in_effect(&full), 2);
        let normal = Store::open_with(&dir.path().join("n.sqlite"), Durability::Normal).unwrap();
        assert_eq!(synchronous_in_effect(&normal), 1);
    }

    #[test]
    fn failed_batch_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.sqlite")).unwrap();
        // The second op violates NOT NULL on doc via a raw op: simulate with a bad table op
        // by inserting into a table, then a statement that fails (an id too long is fine for
        // SQLite, so use a CHECK violation: docs must be valid JSON).
        let b = Batch(vec![
            Op::Put {
                table: Table::Keys,
                id: "k1".into(),
                doc: "{}".into(),
            },
            Op::Put {
                table: Table::Keys,
                id: "k2".into(),
                doc: "not json".into(),
            },
        ]);
        assert!(store.apply(&b).is_err());
        assert!(
            store
                .load::<serde_json::Value>(Table::Keys)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", LATEST_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Store::open(&path).unwrap_err().to_string();
        assert!(err.contains("newer cks-sim"), "{err}");
        assert!(
            err.contains(&format!("schema version {}", LATEST_VERSION + 1)),
            "{err}"
        );
    }
}

//! The daemon's persistent state: one redb database in `[gateway] state_dir`: each
//! connection's admin state, and each route's publication state as the operator last set it.
//!
//! A write commits (and is durable) before the daemon changes anything in memory, so an
//! answer the API gave is never forgotten and a failed write changes nothing. redb locks the
//! file: a second daemon on the same `state_dir` fails at start instead of racing the first.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use redb::{Database, DatabaseError, ReadableTable, TableDefinition, TableError};

use ipnet::IpNet;

use super::model::AdminState;

const PUBLISHED_VALUE: &str = "published";

/// The database's file name inside `state_dir`.
pub(crate) const FILE: &str = "vpngw.redb";

/// Connection name → `up` / `down`. Names not in the configuration are kept, so a connection
/// removed and added back keeps what its operator said.
const ADMIN: TableDefinition<'_, &str, &str> = TableDefinition::new("admin_state");
/// Route prefix → "published" or "withdrawn".
const PUBLISHED: TableDefinition<'_, &str, &str> = TableDefinition::new("published");

/// The open database.
#[derive(Debug)]
pub(crate) struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (creating them if needed) `state_dir`, mode 0700, and the database in it.
    pub(crate) fn open(state_dir: &Path) -> Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
        let path = state_dir.join(FILE);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => bail!(
                "{} is in use by another process (is a vpngw with the same state_dir already \
                 running?)",
                path.display()
            ),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("opening the state database {}", path.display()))
            }
        };
        tracing::info!(path = %path.display(), "state database open");
        Ok(Self { db, path })
    }

    /// Every stored admin state. A value the daemon cannot read is skipped with a warning (the
    /// connection then takes the default).
    pub(crate) fn admin_states(&self) -> Result<BTreeMap<String, AdminState>> {
        self.read_all(ADMIN, "admin state", |name, value| {
            Some((name.to_owned(), value.parse().ok()?))
        })
    }

    /// Publication states the operator set, by prefix: true = published.
    pub(crate) fn publications(&self) -> Result<BTreeMap<IpNet, bool>> {
        self.read_all(PUBLISHED, "publication state", |prefix, value| {
            Some((prefix.parse().ok()?, value == PUBLISHED_VALUE))
        })
    }

    /// Every entry of `table` that `parse` accepts; the others are logged and skipped.
    fn read_all<K: Ord, V>(
        &self,
        table: TableDefinition<'_, &str, &str>,
        what: &str,
        parse: impl Fn(&str, &str) -> Option<(K, V)>,
    ) -> Result<BTreeMap<K, V>> {
        let txn = self.db.begin_read().context("reading the state database")?;
        let table = match txn.open_table(table) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e).context("reading the state database"),
        };
        let mut out = BTreeMap::new();
        for entry in table.iter().context("reading the state database")? {
            let (key, value) = entry.context("reading the state database")?;
            match parse(key.value(), value.value()) {
                Some((k, v)) => {
                    out.insert(k, v);
                }
                None => tracing::warn!(
                    key = key.value(),
                    value = value.value(),
                    "ignoring a stored {what}"
                ),
            }
        }
        Ok(out)
    }

    pub(crate) fn set_published(&self, prefix: IpNet, published: bool) -> Result<()> {
        let value = if published {
            PUBLISHED_VALUE
        } else {
            "withdrawn"
        };
        self.write(PUBLISHED, &prefix.to_string(), value)
    }

    pub(crate) fn set_admin(&self, name: &str, state: AdminState) -> Result<()> {
        self.write(ADMIN, name, state.as_str())
    }

    /// One key's value, committed (durable) before this returns.
    fn write(&self, table: TableDefinition<'_, &str, &str>, key: &str, value: &str) -> Result<()> {
        let write = || -> Result<()> {
            let txn = self.db.begin_write()?;
            {
                let mut t = txn.open_table(table)?;
                t.insert(key, value)?;
            }
            txn.commit()?;
            Ok(())
        };
        write().with_context(|| format!("saving to {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::testutil::TempDir;

    #[test]
    fn admin_states_survive_reopening_and_a_second_opener_is_refused() {
        let dir = TempDir::new("store");
        let store = Store::open(&dir.path().join("state")).unwrap();
        assert!(store.admin_states().unwrap().is_empty());
        store.set_admin("dc1", AdminState::Down).unwrap();
        store.set_admin("dc2", AdminState::Up).unwrap();
        store.set_admin("dc2", AdminState::Down).unwrap();

        let e = Store::open(&dir.path().join("state")).unwrap_err();
        assert!(format!("{e:#}").contains("already running"), "{e:#}");

        drop(store);
        let again = Store::open(&dir.path().join("state")).unwrap();
        let states = again.admin_states().unwrap();
        assert_eq!(states.get("dc1"), Some(&AdminState::Down));
        assert_eq!(states.get("dc2"), Some(&AdminState::Down));
        assert_eq!(states.len(), 2);
    }
}

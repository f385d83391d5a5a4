//! tower-sessions' store over sea-orm (SQLite and PostgreSQL): records as JSON under the
//! SHA-256 of their id (a copy of the table opens no session), with the signed-in user's key
//! beside them so revoking a user ends their sessions; expired ones are deleted by a task.
//! Loaded records are kept in memory for a few seconds (written through on save, dropped on
//! delete), so a request does not always cost a query.

use async_trait::async_trait;
use engine::DatabaseConnection;
use engine::store::sessions;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

/// The session key under which the signed-in principal is kept.
pub const PRINCIPAL: &str = "principal";

#[derive(Clone)]
pub struct SqlStore {
    db: DatabaseConnection,
    /// Records by key, for at most the recheck time (none: always read SQL).
    recent: Option<moka::sync::Cache<String, Record>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlStore")
    }
}

impl SqlStore {
    pub fn new(db: DatabaseConnection) -> Self {
        SqlStore { db, recent: None }
    }

    /// Keeps loaded records in memory for `recheck` before reading SQL again.
    pub fn with_recheck(mut self, recheck: std::time::Duration) -> Self {
        self.recent = Some(moka::sync::Cache::builder().max_capacity(100_000).time_to_live(recheck).build());
        self
    }

    fn remember(&self, key: &str, record: &Record) {
        if let Some(c) = &self.recent {
            c.insert(key.to_string(), record.clone());
        }
    }

    /// Deletes expired sessions every `every` until the process ends.
    pub fn spawn_cleanup(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "deleting expired sessions failed; will retry");
                }
            }
        })
    }
}

fn key(id: &Id) -> String {
    engine::access::token_hash(&id.to_string())
}

fn backend(e: engine::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn expiry(r: &Record) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(r.expiry_date.unix_timestamp(), 0).unwrap_or_default()
}

fn encode(r: &Record) -> session_store::Result<(Vec<u8>, Option<String>)> {
    let user = r.data.get(PRINCIPAL).and_then(|p| serde_json::from_value::<engine::access::Principal>(p.clone()).ok()).and_then(|p| p.user_key());
    let data = serde_json::to_vec(&r.data).map_err(|e| session_store::Error::Encode(e.to_string()))?;
    Ok((data, user))
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let (data, user) = encode(record)?;
        // A 128-bit random id is taken only by astronomical chance; draw again if so.
        while !sessions::create(&self.db, &key(&record.id), data.clone(), expiry(record), user.clone()).await.map_err(backend)? {
            record.id = Id::default();
        }
        self.remember(&key(&record.id), record);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (data, user) = encode(record)?;
        sessions::save(&self.db, &key(&record.id), data, expiry(record), user).await.map_err(backend)?;
        self.remember(&key(&record.id), record);
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let k = key(id);
        if let Some(r) = self.recent.as_ref().and_then(|c| c.get(&k)) {
            if r.expiry_date > time::OffsetDateTime::now_utc() {
                return Ok(Some(r));
            }
        }
        let Some((bytes, expires)) = sessions::load(&self.db, &key(id), chrono::Utc::now()).await.map_err(backend)? else { return Ok(None) };
        let data = serde_json::from_slice(&bytes).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(expires.timestamp()).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let record = Record { id: *id, data, expiry_date };
        self.remember(&k, &record);
        Ok(Some(record))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        if let Some(c) = &self.recent {
            c.invalidate(&key(id));
        }
        sessions::delete(&self.db, &key(id)).await.map_err(backend)
    }
}

#[async_trait]
impl ExpiredDeletion for SqlStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        let n = sessions::delete_expired(&self.db, chrono::Utc::now()).await.map_err(backend)?;
        if n > 0 {
            tracing::debug!(sessions = n, "expired sessions deleted");
        }
        Ok(())
    }
}

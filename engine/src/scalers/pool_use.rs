//! Who uses which entry of a shared client pool: each scaler holds a [`PoolUse`] for the key
//! it dials; when the last one goes, the pool drops that entry and closes its connection, so
//! pools shrink as objects go away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A pool that can let go of an entry nobody uses any more.
pub trait Shrink: Send + Sync {
    /// Called after `key`'s last user went, with the users' lock held (`in_use`: the keys
    /// still in use).
    fn drop_entry(&self, key: &str, in_use: &HashMap<String, usize>);
    fn users(&self) -> &Users;
}

/// One scaler's use of a pool entry; dropping it releases the entry.
pub struct PoolUse {
    pool: Arc<dyn Shrink>,
    key: String,
}

impl PoolUse {
    /// Counts one more user of `key` in `pool`.
    pub fn new(pool: Arc<dyn Shrink>, key: String) -> PoolUse {
        *pool.users().lock().entry(key.clone()).or_default() += 1;
        PoolUse { pool, key }
    }
}

impl Drop for PoolUse {
    fn drop(&mut self) {
        let mut users = self.pool.users().lock();
        let last = match users.get_mut(&self.key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                users.remove(&self.key);
                true
            }
            None => false,
        };
        // Under the lock: a new user of the key waits until the old entry is gone.
        if last {
            self.pool.drop_entry(&self.key, &users);
        }
    }
}

/// Users per key of one pool.
#[derive(Default)]
pub struct Users(Mutex<HashMap<String, usize>>);

impl Users {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().expect("pool users lock")
    }

    /// Keys in use (for tests and benchmarks).
    pub fn keys(&self) -> usize {
        self.lock().len()
    }
}

//! Databases for SQL tests: SQLite in memory always, and a fresh database on the real
//! PostgreSQL named by TEST_DATABASE_URL (started by end2end/services.sh). In CI a missing
//! PostgreSQL fails the test instead of skipping it.

#![allow(dead_code)]

pub mod cluster;

use engine::DatabaseConnection;
use engine::store;
use sea_orm::{ConnectionTrait, Statement};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct TestDb {
    pub kind: &'static str,
    pub db: DatabaseConnection,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub async fn databases() -> Vec<TestDb> {
    let sqlite = store::connect("sqlite::memory:").await.expect("sqlite in memory");
    store::migrate(&sqlite).await.expect("migrations on sqlite");
    let mut out = vec![TestDb { kind: "sqlite", db: sqlite }];
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) => out.push(TestDb { kind: "postgres", db: fresh_postgres(&admin_url).await }),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but TEST_DATABASE_URL is not set: run the suite through dev.sh test, which starts PostgreSQL")
        }
        Err(_) => eprintln!("TEST_DATABASE_URL not set: PostgreSQL half of this test skipped (set it, or run dev.sh test)"),
    }
    out
}

/// A new, migrated database on the server at `admin_url`, so tests never share tables.
async fn fresh_postgres(admin_url: &str) -> DatabaseConnection {
    let admin = store::connect(admin_url).await.expect("connect to TEST_DATABASE_URL");
    let name = format!("swell_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
    admin
        .execute_raw(Statement::from_string(admin.get_database_backend(), format!("DROP DATABASE IF EXISTS {name}")))
        .await
        .expect("drop old test database");
    admin
        .execute_raw(Statement::from_string(admin.get_database_backend(), format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    let mut url = url::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    let db = store::connect(url.as_str()).await.expect("connect to the test database");
    store::migrate(&db).await.expect("migrations on postgres");
    db
}

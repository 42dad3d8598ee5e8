//! A fresh database per test.

use std::str::FromStr;

/// Connection parameters of the test PostgreSQL server (`CAIRN_TEST_PG`, a libpq key=value string or URL).
fn server() -> tokio_postgres::Config {
    let text = std::env::var("CAIRN_TEST_PG").unwrap_or_else(|_| {
        panic!("CAIRN_TEST_PG is not set: run the tests with scripts/test (it starts PostgreSQL and nats-server)")
    });
    tokio_postgres::Config::from_str(&text).expect("CAIRN_TEST_PG parses")
}

/// A migrated database that belongs to one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: deadpool_postgres::Pool,
}

impl TestDb {
    /// Creates `cairn_test_<random>` and applies every migration.
    pub async fn new() -> Self {
        let admin = server();
        let name = format!("cairn_test_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = admin.connect(tokio_postgres::NoTls).await.expect("connect to test PostgreSQL");
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let url = url_for(&admin, &name);
        let (mut c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        cairn_eventlog::migrate::migrate(&mut c).await.expect("migrate");
        let pool = cairn_platform::connect::pg_pool_for(&url, 24).expect("pool");
        Self { name, url, pool }
    }

    /// A new connection (outside the pool), e.g. to act as the superuser.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (c, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        c
    }

    pub async fn head(&self) -> i64 {
        let client = self.pool.get().await.expect("pool");
        cairn_eventlog::store::head(&client).await.expect("head").position
    }
}

fn url_for(admin: &tokio_postgres::Config, dbname: &str) -> String {
    let host = match admin.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".into(),
    };
    let port = admin.get_ports().first().copied().unwrap_or(5432);
    let user = admin.get_user().unwrap_or("postgres");
    format!("host={host} port={port} user={user} dbname={dbname}")
}

//! The whole platform in-process over a test database and nats-server.

use crate::nats::NatsServer;
use crate::pg::TestDb;
use cairn_platform::settings::Secret;
use cairn_platform::{Settings, Shutdown};
use serde_json::Value;
use std::time::Duration;

pub struct Stack {
    pub db: TestDb,
    pub nats: NatsServer,
    pub base: String,
    pub admin_key: String,
    pub settings: Settings,
    pub http: reqwest::Client,
    shutdown: Shutdown,
    tasks: tokio::task::JoinSet<()>,
}

/// The reference data directory (`CAIRN_DATA_DIR`, else the repository's `.local/data`).
pub fn data_dir() -> std::path::PathBuf {
    std::env::var_os("CAIRN_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/data"))
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_inner(true, |_| {}).await
    }

    /// The whole platform with settings adjusted by `configure` before anything starts.
    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::start_inner(true, configure).await
    }

    /// The platform without the exporter (a test runs and stops its own: `cairn_exporter::run` with
    /// [`Stack::settings`]).
    pub async fn start_without_exporter() -> Self {
        Self::start_inner(false, |_| {}).await
    }

    async fn start_inner(exporter: bool, configure: impl FnOnce(&mut Settings)) -> Self {
        cairn_platform::telemetry::init("warn");
        let db = TestDb::new().await;
        let nats = NatsServer::start().await;
        let port = crate::free_port();
        let mut settings = Settings::default();
        settings.database_url = Secret::new(db.url.clone());
        settings.nats_url = nats.url();
        settings.http_addr = format!("127.0.0.1:{port}");
        settings.data_dir = data_dir();
        settings.exports_dir = std::env::temp_dir().join(format!("cairn-exports-{}", uuid::Uuid::new_v4().simple()));
        settings.instance.base_url = format!("http://127.0.0.1:{port}");
        configure(&mut settings);
        let boot = cairn_api::bootstrap::bootstrap(&settings, &db.pool)
            .await
            .expect("bootstrap")
            .expect("a fresh database bootstraps");
        let shutdown = Shutdown::new();
        let mut tasks = tokio::task::JoinSet::new();
        macro_rules! spawn {
            ($run:path) => {{
                let s = settings.clone();
                let sd = shutdown.clone();
                tasks.spawn(async move {
                    if let Err(e) = $run(s, sd).await {
                        panic!("{} failed: {e}", stringify!($run));
                    }
                });
            }};
        }
        spawn!(cairn_relay::run);
        spawn!(cairn_indexer::run);
        spawn!(cairn_correlator::run);
        if exporter {
            spawn!(cairn_exporter::run);
        }
        spawn!(cairn_api::run);
        let stack = Self {
            db,
            nats,
            base: format!("http://127.0.0.1:{port}"),
            admin_key: boot.key,
            settings,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client"),
            shutdown,
            tasks,
        };
        let ready = crate::eventually(Duration::from_secs(20), || async {
            let Ok(r) = stack.http.get(format!("{}/health", stack.base)).send().await else { return false };
            let Ok(body) = r.json::<Value>().await else { return false };
            body["projectors"]["indexer"].as_i64().unwrap_or(0) >= boot.position
        })
        .await;
        assert!(ready, "the stack did not become healthy");
        stack
    }

    /// Starts a second API process-equivalent on the same log, database and NATS (its own caches, its
    /// own port), as a replica behind a load balancer would be; returns its base URL.
    pub async fn api_replica(&mut self) -> String {
        let port = crate::free_port();
        let mut settings = self.settings.clone();
        settings.http_addr = format!("127.0.0.1:{port}");
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            if let Err(e) = cairn_api::run(settings, shutdown).await {
                panic!("API replica failed: {e}");
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let http = self.http.clone();
        let up = crate::eventually(Duration::from_secs(20), || async { http.get(format!("{base}/health")).send().await.is_ok() }).await;
        assert!(up, "the API replica did not start");
        base
    }

    /// A request with MISP client headers and the given key.
    pub fn request(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .header("Authorization", key)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
    }

    /// GET as the site admin; returns (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.request(reqwest::Method::GET, path, &self.admin_key).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON as `key`; returns (status, JSON body).
    pub async fn post_as(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self.request(reqwest::Method::POST, path, key).json(body).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_as(&self.admin_key.clone(), path, body).await
    }

    /// Creates an organisation and a user with `role_id` in it; returns (org id, user key).
    pub async fn org_user(&self, org: &str, email: &str, role_id: i64) -> (String, String) {
        let (status, o) = self.post("/admin/organisations/add", &serde_json::json!({"name": org})).await;
        assert_eq!(status, 200, "{o}");
        let org_id = o["Organisation"]["id"].as_str().expect("org id").to_string();
        let (_, key) = self.user_in(&org_id, email, role_id.into()).await;
        (org_id, key)
    }

    /// Adds a user with `role_id` (a number or its string) to organisation `org_id`; returns (user id,
    /// user key).
    pub async fn user_in(&self, org_id: &str, email: &str, role_id: Value) -> (String, String) {
        let (status, u) = self.post("/admin/users/add", &serde_json::json!({"email": email, "org_id": org_id, "role_id": role_id})).await;
        assert_eq!(status, 200, "{u}");
        (u["User"]["id"].as_str().expect("user id").to_string(), u["User"]["authkey"].as_str().expect("authkey").to_string())
    }

    /// One stream's changes as `cairnctl history` prints them (JSON lines).
    pub fn history(&self, uuid: &str) -> Vec<Value> {
        let out = std::process::Command::new(crate::bins::path("cairnctl"))
            .args(["history", uuid])
            .env("CAIRN_DATABASE_URL", &self.db.url)
            .output()
            .expect("cairnctl history");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
    }

    pub async fn head_position(&self) -> i64 {
        self.db.head().await
    }

    pub async fn stop(mut self) {
        let _ = std::fs::remove_dir_all(&self.settings.exports_dir);
        self.shutdown.trigger();
        while let Some(r) = self.tasks.join_next().await {
            if let Err(e) = r {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    }
}

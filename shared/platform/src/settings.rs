//! Typed settings: defaults, then an optional TOML file (`CAIRN_CONFIG`, else `./cairn.toml` if present),
//! then `CAIRN_…` environment variables. Anything unparsable fails fast with a message naming the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A value that never reaches logs (`Debug` prints `***`).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid settings file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid value for {key}: {value:?} ({reason})")]
    Env { key: &'static str, value: String, reason: String },
}

/// Settings of every Cairn service (one struct: the services run together by default).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// PostgreSQL connection string (`CAIRN_DATABASE_URL`).
    pub database_url: Secret,
    /// Maximum PostgreSQL connections per pool (`CAIRN_DATABASE_POOL`).
    pub database_pool: usize,
    /// NATS server URL (`CAIRN_NATS_URL`).
    pub nats_url: String,
    /// NATS credentials of the service user (`CAIRN_NATS_USER`, `CAIRN_NATS_PASSWORD`).
    pub nats_user: Option<String>,
    pub nats_password: Option<Secret>,
    /// API listen address (`CAIRN_HTTP_ADDR`).
    pub http_addr: String,
    /// Where reference data fetched by the scripts lives (`CAIRN_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Where the exporter writes cached exports and the API reads them (`CAIRN_EXPORTS_DIR`).
    pub exports_dir: PathBuf,
    /// The misp-modules server enrichment queries go to (`CAIRN_MISP_MODULES_URL`, e.g.
    /// `http://127.0.0.1:6666`); MISP's `Plugin.Enrichment_services_url`/`_port` settings override it.
    pub misp_modules_url: Option<String>,
    /// The Ed25519 key (hex seed file) the relay's notary signs log checkpoints with
    /// (`CAIRN_CHECKPOINT_KEY_FILE`; none: no checkpoints).
    pub checkpoint_key_file: Option<PathBuf>,
    /// Seconds between checkpoints while the log grows (`CAIRN_CHECKPOINT_INTERVAL_SECS`).
    pub checkpoint_interval_secs: u64,
    /// Failed authentications per client address per minute before its requests answer 429
    /// (`CAIRN_AUTH_FAILURES_PER_MINUTE`; 0: no limit).
    pub auth_failures_per_minute: u64,
    /// How long a mutating request waits for the read models to reach its position (`CAIRN_RYW_TIMEOUT_MS`).
    pub read_your_writes_timeout_ms: u64,
    /// Milliseconds between two pulls of every pull-enabled server by the sync consumers
    /// (`CAIRN_SYNC_INTERVAL_MS`).
    pub sync_interval_ms: u64,
    /// Optional metrics listen address for standalone services (`CAIRN_METRICS_ADDR`).
    pub metrics_addr: Option<String>,
    pub instance: InstanceSettings,
    pub projector: ProjectorSettings,
    pub relay: RelaySettings,
}

/// MISP instance defaults (what a fresh MISP has).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceSettings {
    /// Host organisation name on first bootstrap (`CAIRN_HOST_ORG_NAME`; MISP's fresh install uses `ORGNAME`).
    pub host_org_name: String,
    /// E-mail of the bootstrap site admin (`CAIRN_ADMIN_EMAIL`).
    pub admin_email: String,
    /// `MISP.default_event_distribution`.
    pub default_event_distribution: u8,
    /// `MISP.default_attribute_distribution`.
    pub default_attribute_distribution: u8,
    /// Public base URL used in responses (`CAIRN_BASE_URL`).
    pub base_url: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectorSettings {
    /// Changes applied per transaction.
    pub batch_size: usize,
    /// When the projector is further behind than this, it reads PostgreSQL directly instead of JetStream.
    pub catchup_threshold: i64,
    /// Attempts before a change that keeps failing is dead-lettered.
    pub max_attempts: i32,
    /// How long the exporter, once a live change arrives, lets more accumulate into the same batch
    /// (nothing waits for the exporter to answer a request; the indexer and the correlator never linger).
    pub exporter_linger_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySettings {
    /// Changes read and published per round.
    pub batch_size: usize,
    /// Poll interval when no append notification arrives.
    pub poll_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: Secret::new("postgres://postgres@127.0.0.1:54329/cairn"),
            database_pool: 16,
            nats_url: "nats://127.0.0.1:54229".into(),
            nats_user: None,
            nats_password: None,
            http_addr: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from(".local/data"),
            exports_dir: PathBuf::from(".local/exports"),
            misp_modules_url: None,
            checkpoint_key_file: None,
            checkpoint_interval_secs: 60,
            auth_failures_per_minute: 30,
            read_your_writes_timeout_ms: 5_000,
            sync_interval_ms: 2_000,
            metrics_addr: None,
            instance: InstanceSettings::default(),
            projector: ProjectorSettings::default(),
            relay: RelaySettings::default(),
        }
    }
}

impl Default for InstanceSettings {
    fn default() -> Self {
        Self {
            host_org_name: "ORGNAME".into(),
            admin_email: "admin@admin.test".into(),
            default_event_distribution: 1,
            default_attribute_distribution: 5,
            base_url: "http://127.0.0.1:8080".into(),
        }
    }
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        Self { batch_size: 1_000, catchup_threshold: 2_000, max_attempts: 5, exporter_linger_ms: 50 }
    }
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self { batch_size: 2_000, poll_ms: 100 }
    }
}

impl Settings {
    /// Loads defaults, the settings file and the environment.
    ///
    /// # Errors
    /// A settings file that cannot be read or parsed, or an environment variable with an invalid value.
    pub fn load() -> Result<Self, SettingsError> {
        let file = match std::env::var_os("CAIRN_CONFIG") {
            Some(p) => Some(PathBuf::from(p)),
            None => Some(PathBuf::from("cairn.toml")).filter(|p| p.exists()),
        };
        let mut settings = match file {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        settings.apply_env(|k| std::env::var(k).ok())?;
        Ok(settings)
    }

    /// # Errors
    /// The file cannot be read or is not valid settings TOML.
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SettingsError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text)
            .map_err(|source| SettingsError::Parse { path: path.to_path_buf(), source: Box::new(source) })
    }

    /// Applies `CAIRN_…` overrides read through `get` (the environment, or a map in tests).
    ///
    /// # Errors
    /// A variable whose value does not parse.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), SettingsError> {
        fn parse<T: std::str::FromStr>(key: &'static str, v: String) -> Result<T, SettingsError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse::<T>().map_err(|e| SettingsError::Env { key, value: v, reason: e.to_string() })
        }
        if let Some(v) = get("CAIRN_DATABASE_URL") {
            self.database_url = Secret::new(v);
        }
        if let Some(v) = get("CAIRN_DATABASE_POOL") {
            self.database_pool = parse("CAIRN_DATABASE_POOL", v)?;
        }
        if let Some(v) = get("CAIRN_NATS_URL") {
            self.nats_url = v;
        }
        if let Some(v) = get("CAIRN_NATS_USER") {
            self.nats_user = Some(v);
        }
        if let Some(v) = get("CAIRN_NATS_PASSWORD") {
            self.nats_password = Some(Secret::new(v));
        }
        if let Some(v) = get("CAIRN_HTTP_ADDR") {
            let _: std::net::SocketAddr = parse("CAIRN_HTTP_ADDR", v.clone())?;
            self.http_addr = v;
        }
        if let Some(v) = get("CAIRN_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("CAIRN_MISP_MODULES_URL").filter(|v| !v.trim().is_empty()) {
            self.misp_modules_url = Some(v.trim().trim_end_matches('/').to_string());
        }
        if let Some(v) = get("CAIRN_CHECKPOINT_KEY_FILE").filter(|v| !v.trim().is_empty()) {
            self.checkpoint_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CAIRN_CHECKPOINT_INTERVAL_SECS") {
            self.checkpoint_interval_secs = parse("CAIRN_CHECKPOINT_INTERVAL_SECS", v)?;
        }
        if let Some(v) = get("CAIRN_AUTH_FAILURES_PER_MINUTE") {
            self.auth_failures_per_minute = parse("CAIRN_AUTH_FAILURES_PER_MINUTE", v)?;
        }
        if let Some(v) = get("CAIRN_EXPORTS_DIR") {
            self.exports_dir = PathBuf::from(v);
        }
        if let Some(v) = get("CAIRN_RYW_TIMEOUT_MS") {
            self.read_your_writes_timeout_ms = parse("CAIRN_RYW_TIMEOUT_MS", v)?;
        }
        if let Some(v) = get("CAIRN_SYNC_INTERVAL_MS") {
            self.sync_interval_ms = parse("CAIRN_SYNC_INTERVAL_MS", v)?;
        }
        if let Some(v) = get("CAIRN_METRICS_ADDR") {
            self.metrics_addr = Some(v);
        }
        if let Some(v) = get("CAIRN_HOST_ORG_NAME") {
            self.instance.host_org_name = v;
        }
        if let Some(v) = get("CAIRN_ADMIN_EMAIL") {
            self.instance.admin_email = v;
        }
        if let Some(v) = get("CAIRN_BASE_URL") {
            self.instance.base_url = v;
        }
        if let Some(v) = get("CAIRN_DEFAULT_EVENT_DISTRIBUTION") {
            self.instance.default_event_distribution = parse("CAIRN_DEFAULT_EVENT_DISTRIBUTION", v)?;
        }
        if let Some(v) = get("CAIRN_DEFAULT_ATTRIBUTE_DISTRIBUTION") {
            self.instance.default_attribute_distribution = parse("CAIRN_DEFAULT_ATTRIBUTE_DISTRIBUTION", v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_defaults() {
        let mut s = Settings::default();
        s.apply_env(|k| match k {
            "CAIRN_HTTP_ADDR" => Some("127.0.0.1:9999".into()),
            "CAIRN_HOST_ORG_NAME" => Some("ACME".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(s.http_addr, "127.0.0.1:9999");
        assert_eq!(s.instance.host_org_name, "ACME");
        assert_eq!(s.instance.default_event_distribution, 1);
    }

    #[test]
    fn a_bad_value_fails_naming_the_key() {
        let mut s = Settings::default();
        let err = s
            .apply_env(|k| (k == "CAIRN_HTTP_ADDR").then(|| "not an address".to_string()))
            .expect_err("invalid");
        assert!(err.to_string().contains("CAIRN_HTTP_ADDR"));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::default();
        assert!(!format!("{s:?}").contains("postgres://"));
    }

    #[test]
    fn a_file_sets_nested_values() {
        let s: Settings = toml::from_str("http_addr = \"0.0.0.0:80\"\n[instance]\nhost_org_name = \"X\"\n")
            .expect("parses");
        assert_eq!(s.http_addr, "0.0.0.0:80");
        assert_eq!(s.instance.host_org_name, "X");
        assert_eq!(s.instance.default_attribute_distribution, 5);
    }
}

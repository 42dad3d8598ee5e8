//! Shared state of the API: connections, the appender, the read-your-writes watcher, reference data.

use cairn_eventlog::Appender;
use cairn_eventlog::watcher::CheckpointWatcher;
use cairn_platform::Settings;
use cairn_platform::metrics::{Handle, Registry};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct ApiMetrics {
    pub requests: Handle,
    pub errors_4xx: Handle,
    pub errors_5xx: Handle,
    pub auth_failures: Handle,
    pub ryw_timeouts: Handle,
    pub ryw_waits: Handle,
    pub ryw_wait_micros: Handle,
}

impl ApiMetrics {
    fn new(r: &Registry) -> Self {
        Self {
            requests: r.counter("cairn_api_requests_total", "HTTP requests.", &[]),
            errors_4xx: r.counter("cairn_api_responses_4xx_total", "4xx responses.", &[]),
            errors_5xx: r.counter("cairn_api_responses_5xx_total", "5xx responses.", &[]),
            auth_failures: r.counter("cairn_api_auth_failures_total", "Refused API keys.", &[]),
            ryw_timeouts: r.counter("cairn_api_ryw_timeouts_total", "Read-your-writes waits that timed out.", &[]),
            ryw_waits: r.counter("cairn_api_ryw_waits_total", "Read-your-writes waits.", &[]),
            ryw_wait_micros: r.counter("cairn_api_ryw_wait_microseconds_total", "Time spent in read-your-writes waits.", &[]),
        }
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: deadpool_postgres::Pool,
    pub appender: Appender,
    pub watcher: CheckpointWatcher,
    pub nats: Option<async_nats::Client>,
    pub reference: Arc<crate::reference::Reference>,
    pub metrics: ApiMetrics,
    /// Folded states of recently used streams (see [`crate::commands`]).
    pub streams: Arc<crate::commands::StreamCache>,
    /// Instance-wide facts, cached briefly (see [`crate::instance_facts`]).
    pub instance: Arc<crate::instance_facts::InstanceCache>,
    /// Sharing-group membership per organisation, cached briefly (see [`crate::sg_cache`]).
    pub sharing_groups: Arc<crate::sg_cache::SharingGroupCache>,
    /// Valid API keys with their user and organisation, cached briefly (see [`crate::auth::KeyCache`]).
    pub auth_keys: Arc<crate::auth::KeyCache>,
    /// Id blocks per sequence (see [`crate::commands::IdBlocks`]).
    pub ids: Arc<crate::commands::IdBlocks>,
    /// Failed-authentication and rate-limit counters (see [`crate::throttle`]).
    pub throttle: Arc<crate::throttle::Throttle>,
}

impl AppState {
    pub fn new(
        settings: Arc<Settings>,
        pool: deadpool_postgres::Pool,
        appender: Appender,
        watcher: CheckpointWatcher,
        nats: Option<async_nats::Client>,
        reference: Arc<crate::reference::Reference>,
    ) -> Self {
        Self {
            settings,
            pool,
            appender,
            watcher,
            nats,
            reference,
            metrics: ApiMetrics::new(Registry::global()),
            streams: Arc::default(),
            instance: Arc::default(),
            sharing_groups: Arc::default(),
            auth_keys: Arc::default(),
            ids: Arc::default(),
            throttle: Arc::default(),
        }
    }
}

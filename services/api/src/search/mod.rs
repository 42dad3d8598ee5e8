//! restSearch: the parameters ([`params`]), the filters as SQL under the access rule ([`query`]),
//! and the results streamed in every supported format ([`json`], [`flat`], [`stream`]).
//!
//! Every format reads rows through the same two queries — Events (`query::events`) or attribute
//! rows (`query::attribute_rows`) — so every format sees exactly what the access rule lets through.
//! Results are read in id order a page at a time (keyset pagination) and written as they come, so
//! memory stays flat however many rows match.

pub mod flat;
pub mod json;
pub mod params;
pub mod query;
pub mod stream;

use crate::auth::Authed;
use crate::error::ApiError;
use crate::filters::Sql;
use crate::state::AppState;
use crate::warninglists::{Matcher, WarningsView};
use axum::response::Response;
use cairn_domain::acl::{AccessSettings, Viewer};
pub use params::{Params, Scope};
use std::sync::Arc;

/// Formats a restSearch answers, besides the line formats of [`flat::FLAT_FORMATS`].
const OTHER_FORMATS: &[&str] = &["json", "stix2"];

/// One search: who asks, what, and the instance facts it runs with.
#[derive(Clone)]
pub struct Search {
    pub state: AppState,
    pub viewer: Viewer,
    pub settings: AccessSettings,
    pub params: Params,
    pub scope: Scope,
    pub format: String,
    pub now: i64,
}

impl Search {
    /// Attribute rows (`a`, `e`, `o`) this search returns.
    pub fn attribute_sql(&self) -> Sql {
        let mut sql = Sql::default();
        query::attribute_rows(&mut sql, &self.params, &self.viewer, &self.settings, self.scope, self.now);
        sql
    }

    /// Events (`e`) this search returns.
    pub fn event_sql(&self) -> Sql {
        let mut sql = Sql::default();
        query::events(&mut sql, &self.params, &self.viewer, &self.settings, self.now);
        sql
    }

    pub fn warnings_view(&self) -> WarningsView {
        WarningsView { annotate: self.params.on("includeWarninglistHits"), enforce: self.params.on("enforceWarninglist") }
    }

    /// The warninglist matcher when `enforceWarninglist` must drop rows of a line format.
    pub async fn warnings(&self) -> Result<Option<Arc<Matcher>>, ApiError> {
        if !self.params.on("enforceWarninglist") {
            return Ok(None);
        }
        let m = crate::handlers::support::warninglists(&self.state).await?;
        Ok(m.is_active().then_some(m))
    }

    /// How many results the response holds (`X-Result-Count`): Events for Event-scope JSON,
    /// attribute rows otherwise; `limit`/`page` applied.
    async fn count(&self, events: bool) -> Result<i64, ApiError> {
        let client = self.state.pool.get().await?;
        let (sql, from) = if events {
            (self.event_sql(), "rm.events e")
        } else {
            (self.attribute_sql(), "rm.attributes a JOIN rm.events e ON e.id = a.event_id LEFT JOIN rm.objects o ON o.id = a.object_id")
        };
        let (limit, page) = self.params.limit_page();
        let window = limit.map_or(String::new(), |l| format!(" LIMIT {l} OFFSET {}", (page - 1) * l));
        let query = format!("SELECT count(*) FROM (SELECT 1 FROM {from} WHERE {}{window}) s", sql.where_clause());
        Ok(client.query_one(&query, &sql.refs()).await?.get(0))
    }

    /// MISP's download name: `misp.event.<id|list>.<ext>` (Event scope), `misp.attribute.list.<ext>`.
    fn filename(&self) -> Option<String> {
        let ext = cairn_formats::file_extension(&self.format).or(if self.format == "zeek" { Some("intel") } else { None })?;
        let what = match self.params.get("eventid") {
            Some(serde_json::Value::String(s)) if !s.contains(',') && !s.trim().is_empty() => s.trim().to_string(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => "list".to_string(),
        };
        Some(match self.scope {
            Scope::Event => format!("misp.event.{what}.{ext}"),
            Scope::Attribute => format!("misp.attribute.list.{ext}"),
            Scope::Object => format!("misp.object.list.{ext}"),
        })
    }
}

/// Keyset pagination in id order under MISP's `limit`/`page`, shared by every writer: each page's SQL
/// tail, and when to stop.
pub struct Pages {
    remaining: Option<i64>,
    offset: i64,
    after: i64,
    size: i64,
    take: i64,
}

impl Pages {
    /// Pages of at most `size` rows.
    pub fn new(params: &Params, size: i64) -> Self {
        let (limit, page) = params.limit_page();
        Self { remaining: limit, offset: limit.map_or(0, |l| (page - 1) * l), after: 0, size, take: 0 }
    }

    /// The next page's tail on `id` (` AND id > … ORDER BY id LIMIT … OFFSET …`); `None` once `limit`
    /// rows were given.
    pub fn next(&mut self, id: &str) -> Option<String> {
        self.take = self.remaining.map_or(self.size, |r| r.min(self.size));
        if self.take <= 0 {
            return None;
        }
        let tail = format!(" AND {id} > {} ORDER BY {id} LIMIT {} OFFSET {}", self.after, self.take, self.offset);
        self.offset = 0;
        Some(tail)
    }

    /// Records a page of `rows` rows whose last id is `last`; whether another page may follow.
    pub fn got(&mut self, rows: usize, last: i64) -> bool {
        self.remaining = self.remaining.map(|r| r - rows as i64);
        self.after = last;
        rows as i64 >= self.take
    }
}

/// Who a search runs for: the access rule's viewer, and the user setting formats read.
#[derive(Clone, Debug)]
pub struct Requester {
    pub viewer: Viewer,
    /// The user's NIDS sid base (Snort/Suricata rule ids).
    pub nids_sid: i64,
}

impl Requester {
    /// The authenticated caller.
    ///
    /// # Errors
    /// Database errors.
    pub async fn of(state: &AppState, auth: &Authed) -> Result<Self, ApiError> {
        Ok(Self { viewer: crate::handlers::support::viewer(state, auth).await?, nids_sid: auth.user.nids_sid })
    }
}

/// How a prepared search writes its output.
enum Writer {
    EventsJson,
    AttributesJson,
    ObjectsJson,
    Stix2,
    Flat(flat::Flat),
}

/// A restSearch ready to run: validated format, restrictive defaults applied, instance facts read.
/// [`respond`] streams it to a client, the exporter to a file — the same bytes either way.
pub struct Prepared {
    pub search: Search,
    writer: Writer,
}

impl Prepared {
    pub fn content_type(&self) -> &'static str {
        cairn_formats::content_type(&self.search.format).unwrap_or("application/json")
    }

    /// Writes the whole result into `chunks`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn write(self, chunks: stream::Chunks) -> Result<stream::Chunks, ApiError> {
        let search = &self.search;
        match self.writer {
            Writer::EventsJson => json::write_events(search, chunks).await,
            Writer::AttributesJson => json::write_attributes(search, chunks, false).await,
            Writer::ObjectsJson => json::write_objects(search, chunks).await,
            Writer::Stix2 => flat::write_stix2(search, chunks).await,
            Writer::Flat(writer) => flat::write_rows(search, writer, chunks).await,
        }
    }
}

/// Prepares a restSearch (any scope, any format) for `requester` with `params` as given.
///
/// # Errors
/// An unknown format (400), database errors.
pub async fn prepare(state: &AppState, requester: Requester, mut params: Params, scope: Scope) -> Result<Prepared, ApiError> {
    let format = params.return_format();
    let format = if format == "zeek" { "bro".to_string() } else { format };
    let supported = OTHER_FORMATS.contains(&format.as_str()) || flat::FLAT_FORMATS.contains(&format.as_str());
    if !supported || (scope == Scope::Object && format != "json") {
        let mut list: Vec<&str> = OTHER_FORMATS.iter().chain(flat::FLAT_FORMATS).copied().collect();
        if scope == Scope::Object {
            list = vec!["json"];
        }
        return Err(ApiError::BadRequest(format!("Invalid returnFormat \"{format}\"; supported: {}.", list.join(", "))));
    }
    if cairn_formats::restrictive(&format) {
        params.apply_restrictive_defaults();
    }
    let search = Search {
        state: state.clone(),
        viewer: requester.viewer,
        settings: crate::handlers::support::access_settings(state).await?,
        params,
        scope,
        format: format.clone(),
        now: chrono::Utc::now().timestamp(),
    };
    let writer = match (format.as_str(), scope) {
        ("json", Scope::Event) => Writer::EventsJson,
        ("json", Scope::Attribute) => Writer::AttributesJson,
        ("json", Scope::Object) => Writer::ObjectsJson,
        ("stix2", _) => Writer::Stix2,
        _ => {
            let cx = flat::FormatContext {
                base_url: state.settings.instance.base_url.clone(),
                nids_sid: requester.nids_sid,
                host_org_name: host_org_name(state).await?,
            };
            Writer::Flat(
                flat::Flat::new(&format, &search.params, scope, &cx)
                    .ok_or_else(|| ApiError::BadRequest(format!("Invalid returnFormat \"{format}\".")))?,
            )
        }
    };
    Ok(Prepared { search, writer })
}

/// Answers a restSearch (any scope, any format) with `params` as given.
///
/// # Errors
/// An unknown format (400), database errors before the first byte is written.
pub async fn respond(state: &AppState, auth: &Authed, params: Params, scope: Scope) -> Result<Response, ApiError> {
    let prepared = prepare(state, Requester::of(state, auth).await?, params, scope).await?;
    let search = &prepared.search;
    let events_json = search.format == "json" && scope == Scope::Event;
    let count = if scope == Scope::Object { None } else { Some(search.count(events_json).await?) };
    let filename = if search.format == "json" && scope != Scope::Event { None } else { search.filename() };
    let headers = stream::headers(prepared.content_type(), count, &search.format, filename);
    Ok(stream::streamed(headers, move |c| prepared.write(c)))
}

/// The host organisation's name (Bro/Zeek's `meta.source`).
async fn host_org_name(state: &AppState) -> Result<Option<String>, ApiError> {
    let facts = state.instance.get(&state.pool).await?;
    let client = state.pool.get().await?;
    Ok(client.query_opt("SELECT name FROM rm.organisations WHERE id = $1", &[&facts.host_org_id]).await?.map(|r| r.get(0)))
}

/// `GET /attributes/index`: every attribute the caller may see, as a plain list (streamed).
///
/// # Errors
/// Database errors before the first byte.
pub async fn attribute_index(state: &AppState, auth: &Authed, params: Params) -> Result<Response, ApiError> {
    let search = Search {
        state: state.clone(),
        viewer: crate::handlers::support::viewer(state, auth).await?,
        settings: crate::handlers::support::access_settings(state).await?,
        params,
        scope: Scope::Attribute,
        format: "json".into(),
        now: chrono::Utc::now().timestamp(),
    };
    let count = search.count(false).await?;
    let headers = stream::headers("application/json", Some(count), "json", None);
    Ok(stream::streamed(headers, move |c| async move { json::write_attributes(&search, c, true).await }))
}

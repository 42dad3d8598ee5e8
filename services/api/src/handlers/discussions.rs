//! Event discussions (misp_features.md §5): one Thread per Event, Posts visible exactly when the Event
//! is. Routes as MISP's: `posts/add/event/{id}`, `posts/add/thread/{id}`, `posts/edit/{id}`,
//! `posts/delete/{id}`, `threads/view/{id}`, `threads/viewEvent/{event}`, `threads/index`.

use super::events::{invalid_event, resolve, run};
use super::support::{self, json};
use super::Request;
use crate::auth::Authed;
use crate::collab::{self, POST_COLUMNS, THREAD_COLUMNS};
use crate::error::ApiError;
use crate::state::AppState;
use axum::response::Response;
use cairn_domain::event::EventCommand;
use serde_json::{Value, json};

fn invalid_post() -> ApiError {
    ApiError::NotFound("Invalid post.".into())
}

fn invalid_thread() -> ApiError {
    ApiError::NotFound("Invalid thread.".into())
}

/// The text of a post: `message` or `contents`, plain or wrapped in `{"Post": …}`.
fn contents(req: &Request) -> Result<(String, Option<i64>), ApiError> {
    let body = crate::body::parse(&req.body)?;
    let body = crate::body::unwrap(&body, "Post");
    let text = crate::body::text(body.get("message")).or_else(|| crate::body::text(body.get("contents"))).unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::SaveFailed { name: "Could not add the post".into(), errors: json!({"message": ["The post is empty."]}) });
    }
    let reply_to = crate::body::int(body.get("post_id")).filter(|p| *p > 0);
    Ok((text, reply_to))
}

/// A thread and its live posts, if its Event is visible.
async fn thread(state: &AppState, auth: &Authed, thread_id: i64) -> Result<Value, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(&format!("SELECT {THREAD_COLUMNS} FROM rm.threads t WHERE t.id = $1 AND NOT t.deleted"), &[&thread_id])
        .await?
        .ok_or_else(invalid_thread)?;
    let event_id: i64 = row.get(1);
    resolve(state, auth, &event_id.to_string()).await.map_err(|_| invalid_thread())?;
    let mut t = collab::thread_json(&row);
    let posts = client
        .query(&format!("SELECT {POST_COLUMNS} FROM rm.posts p WHERE p.thread_id = $1 AND NOT p.deleted ORDER BY p.id"), &[&thread_id])
        .await?;
    let user_ids: Vec<i64> = posts.iter().map(|p| p.get(3)).collect();
    let emails: std::collections::HashMap<i64, String> = client
        .query("SELECT id, email FROM rm.users WHERE id = ANY($1)", &[&user_ids])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let org_ids: Vec<i64> = posts.iter().map(|p| p.get(4)).collect();
    let orgs = collab::orgs(&client, &org_ids).await?;
    t["Post"] = posts
        .iter()
        .map(|p| {
            let mut v = collab::post_json(p);
            v["User"] = json!({"id": p.get::<_, i64>(3).to_string(), "email": emails.get(&p.get::<_, i64>(3))});
            v["Organisation"] = orgs.get(&p.get::<_, i64>(4)).cloned().unwrap_or(Value::Null);
            v
        })
        .collect();
    Ok(json!({"Thread": t}))
}

/// The live thread of an Event, if any.
async fn thread_of_event(state: &AppState, event_id: i64) -> Result<Option<i64>, ApiError> {
    let client = state.pool.get().await?;
    Ok(client.query_opt("SELECT id FROM rm.threads WHERE event_id = $1 AND NOT deleted", &[&event_id]).await?.map(|r| r.get(0)))
}

/// `POST /posts/add/event/{event}` or `/posts/add/thread/{thread}` with `{"message"}`.
pub async fn add(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (kind, key) = match (req.path.args.first().map(String::as_str), req.path.args.get(1)) {
        (Some(k @ ("event" | "thread")), Some(key)) => (k, key.clone()),
        (Some(key), None) => ("event", key.to_string()),
        _ => return Err(invalid_event()),
    };
    let (event_id, uuid) = if kind == "thread" {
        let client = state.pool.get().await?;
        let thread_id: i64 = key.trim().parse().map_err(|_| invalid_thread())?;
        let row = client.query_opt("SELECT event_id FROM rm.threads WHERE id = $1 AND NOT deleted", &[&thread_id]).await?.ok_or_else(invalid_thread)?;
        resolve(state, auth, &row.get::<_, i64>(0).to_string()).await.map_err(|_| invalid_thread())?
    } else {
        resolve(state, auth, &key).await?
    };
    let (text, reply_to) = contents(req)?;
    let thread_id = match thread_of_event(state, event_id).await? {
        Some(t) => t,
        None => crate::commands::allocate_ids(state, "thread", 1).await?.first().copied().unwrap_or_default(),
    };
    let id = crate::commands::allocate_ids(state, "post", 1).await?.first().copied().unwrap_or_default();
    run(state, auth, uuid, "posts.add", "add the post", EventCommand::AddPost { id, thread_id, contents: text, reply_to }).await?;
    let mut t = thread(state, auth, thread_id).await?;
    let post = t["Thread"]["Post"].as_array().and_then(|p| p.iter().find(|x| x["id"] == json!(id.to_string())).cloned()).unwrap_or(Value::Null);
    t["Post"] = post;
    Ok(json(t))
}

/// The Event (id, uuid) of a visible post.
async fn post_event(state: &AppState, auth: &Authed, req: &Request) -> Result<(i64, uuid::Uuid, i64), ApiError> {
    let id: i64 = req.path.args.first().and_then(|s| s.trim().parse().ok()).ok_or_else(invalid_post)?;
    let client = state.pool.get().await?;
    let row = client.query_opt("SELECT event_id FROM rm.posts WHERE id = $1 AND NOT deleted", &[&id]).await?.ok_or_else(invalid_post)?;
    let (event_id, uuid) = resolve(state, auth, &row.get::<_, i64>(0).to_string()).await.map_err(|_| invalid_post())?;
    Ok((id, uuid, event_id))
}

/// `POST /posts/edit/{id}` with `{"message"}` (the author or a site admin).
pub async fn edit(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, uuid, _) = post_event(state, auth, req).await?;
    let (text, _) = contents(req)?;
    run(state, auth, uuid, "posts.edit", "edit the post", EventCommand::EditPost { id, contents: text }).await?;
    Ok(support::saved("Post edited.", &req.url, Some(id.to_string())))
}

/// `POST /posts/delete/{id}` (the author or a site admin).
pub async fn delete(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let (id, uuid, _) = post_event(state, auth, req).await?;
    run(state, auth, uuid, "posts.delete", "delete the post", EventCommand::DeletePost { id }).await?;
    Ok(support::saved("Post deleted.", &req.url, Some(id.to_string())))
}

/// `GET /threads/view/{id}`.
pub async fn view(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let id: i64 = req.path.args.first().and_then(|s| s.trim().parse().ok()).ok_or_else(invalid_thread)?;
    Ok(json(thread(state, auth, id).await?))
}

/// `GET /threads/viewEvent/{event}`: the Event's discussion (an empty one when nobody posted yet).
pub async fn view_event(state: &AppState, auth: &Authed, req: &Request) -> Result<Response, ApiError> {
    let key = req.path.args.first().ok_or_else(invalid_event)?;
    let (event_id, _) = resolve(state, auth, key).await?;
    match thread_of_event(state, event_id).await? {
        Some(t) => Ok(json(thread(state, auth, t).await?)),
        None => Ok(json(json!({"Thread": {"event_id": event_id.to_string(), "post_count": "0", "Post": []}}))),
    }
}

/// `GET /threads/index`: the discussions of Events the caller may see, most recently active first,
/// with their post counts.
pub async fn index(state: &AppState, auth: &Authed) -> Result<Response, ApiError> {
    let viewer = support::viewer(state, auth).await?;
    let settings = support::access_settings(state).await?;
    let mut sql = crate::filters::Sql::default();
    crate::acl_sql::events(&mut sql, &viewer, &settings, "e");
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {THREAD_COLUMNS}, e.info, e.uuid FROM rm.threads t JOIN rm.events e ON e.id = t.event_id \
                 WHERE NOT t.deleted AND {} ORDER BY t.date_modified DESC, t.id DESC",
                sql.where_clause()
            ),
            &sql.refs(),
        )
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut t = collab::thread_json(r);
            t["Event"] = json!({"id": r.get::<_, i64>(1).to_string(), "info": r.get::<_, String>(8), "uuid": r.get::<_, uuid::Uuid>(9)});
            json!({"Thread": t})
        })
        .collect();
    Ok(json(Value::Array(list)))
}

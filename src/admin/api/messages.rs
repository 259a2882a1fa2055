//! Messages: send to an address, browse a queue (a read, never a consume), view and delete
//! one, purge, move, copy and retry to where a dead letter came from.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use bytestring::ByteString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::queues::find;
use super::{Ctx, reason, require};
use crate::admin::AdminContext;
use crate::admin::auth::{Caller, Role};
use crate::admin::envelope::{ApiError, DEFAULT_LIMIT, MAX_LIMIT};
use crate::broker::{
    Body, BrowseCursor, Destination, Filter, Message, MessageDraft, MessageFilter, Queue,
};
use crate::security::{Authorizer, Permission};

/// Longest body preview.
const MAX_PREVIEW: usize = 64 * 1024;
/// Largest body `body=full` puts in JSON (bigger ones: fetch the message raw).
const MAX_INLINE_BODY: usize = 1024 * 1024;

/// `POST /addresses/{a}/messages` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    body: String,
    body_encoding: Option<String>,
    persistent: Option<bool>,
    priority: Option<u8>,
    queue: Option<String>,
}

/// Sends a message as the caller (its `send` permission applies).
pub async fn send(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(address): Path<String>,
    Json(b): Json<SendBody>,
) -> Result<Json<Value>, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Operator).await?;
    let body = decode_body(&b.body, b.body_encoding.as_deref())?;
    let properties = b
        .headers
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (ByteString::from(k.as_str()), ByteString::from(v))
        })
        .collect();
    let dest = Destination {
        address: address.clone(),
        queue: b.queue.clone(),
        routing: None,
    };
    let draft = MessageDraft {
        destination: ByteString::from(match &b.queue {
            Some(q) => format!("{address}::{q}"),
            None => address.clone(),
        }),
        properties,
        body: Body::Inline(body),
        persistent: b.persistent,
        priority: b.priority.unwrap_or(4).min(9),
        expires: 0,
        deliver_at: 0,
        origin: None,
    };
    let report = ctx
        .broker
        .send_as(&dest, draft, &c.access)
        .map_err(|e| match e {
            crate::broker::BrokerError::NotAuthorized(m) => ApiError::forbidden(m),
            other => ApiError::bad_request(other.to_string()),
        })?;
    report
        .stored
        .await
        .map_err(|e| ApiError::unavailable(format!("the message could not be stored: {e}")))?;
    Ok(Json(json!({
        "message_id": report.message.as_ref().map(|m| m.id.to_string()),
        "routed_to": report.queues.iter().map(|q| q.name.to_string()).collect::<Vec<_>>(),
    })))
}

fn decode_body(body: &str, encoding: Option<&str>) -> Result<Bytes, ApiError> {
    match encoding.unwrap_or("utf8") {
        "utf8" | "utf-8" | "text" => Ok(Bytes::copy_from_slice(body.as_bytes())),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body)
            .map(Bytes::from)
            .map_err(|e| ApiError::bad_request(format!("body is not valid base64: {e}"))),
        other => Err(ApiError::bad_request(format!(
            "body_encoding '{other}' is not utf8 or base64"
        ))),
    }
}

/// Checks `browse` on the queue's address for the caller.
fn may_browse(c: &Caller, q: &Queue) -> Result<(), ApiError> {
    c.access
        .authorize(Permission::Browse, &q.address)
        .map_err(|d| ApiError::forbidden(d.0))
}

/// The body as JSON wants it: text when it is UTF-8, base64 otherwise.
fn body_json(bytes: &[u8], encoding: &str) -> (Value, &'static str) {
    if encoding != "base64"
        && let Ok(s) = std::str::from_utf8(bytes)
    {
        return (json!(s), "utf8");
    }
    (
        json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
        "base64",
    )
}

fn inline_bytes(m: &Message, max: usize) -> Option<Bytes> {
    match &m.body {
        Body::Inline(b) => Some(b.slice(..b.len().min(max))),
        Body::File(_) => None,
    }
}

/// One message's JSON.
fn render(
    m: &Message,
    delivery_count: u32,
    state: &str,
    body: &str,
    preview: usize,
    enc: &str,
) -> Value {
    let mut headers = Map::new();
    for (k, v) in &m.properties {
        headers.insert(k.to_string(), json!(&**v));
    }
    let mut v = json!({
        "id": m.id.to_string(),
        "destination": &*m.destination,
        "address": &*m.address,
        "headers": headers,
        "size": m.body.len(),
        "priority": m.priority,
        "persistent": m.persistent,
        "enqueued_at": m.timestamp,
        "expires_at": (m.expires != 0).then_some(m.expires),
        "deliver_at": (m.deliver_at != 0).then_some(m.deliver_at),
        "delivery_count": delivery_count,
        "state": state,
        "large": matches!(m.body, Body::File(_)),
    });
    let limit = match body {
        "none" => return v,
        "full" => MAX_INLINE_BODY,
        _ => preview.min(MAX_PREVIEW),
    };
    match inline_bytes(m, limit) {
        Some(b) => {
            let (text, encoding) = body_json(&b, enc);
            v["body_preview"] = text;
            v["body_encoding"] = json!(encoding);
            v["body_truncated"] = json!(b.len() < m.body.len());
        }
        None => {
            v["body_preview"] = Value::Null;
            v["body_truncated"] = json!(true);
        }
    }
    v
}

/// Browse parameters.
#[derive(Debug, Deserialize)]
pub struct BrowseQuery {
    cursor: Option<String>,
    limit: Option<usize>,
    selector: Option<String>,
    body: Option<String>,
    preview_bytes: Option<usize>,
    encoding: Option<String>,
}

fn selector(text: Option<&str>) -> Result<Option<Filter>, ApiError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.len() > 4096 => Err(ApiError::bad_request(
            "selector longer than 4096 characters",
        )),
        Some(s) => Filter::selector(s)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("selector: {e}"))),
    }
}

/// A page of a queue, without consuming: what waits, in offer order, from the cursor on.
pub async fn browse(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<BrowseQuery>,
) -> Result<Json<Value>, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Monitor).await?;
    let queue = find(&ctx, &name)?;
    may_browse(&c, &queue)?;
    let filter = selector(q.selector.as_deref())?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut cursor = match &q.cursor {
        None => BrowseCursor::default(),
        Some(t) => BrowseCursor::from_token(t)
            .ok_or_else(|| ApiError::bad_request("cursor is not one this API gave"))?,
    };
    let body = q.body.as_deref().unwrap_or("preview");
    if !matches!(body, "none" | "preview" | "full") {
        return Err(ApiError::bad_request("body must be none, preview or full"));
    }
    let preview = q.preview_bytes.unwrap_or(1024);
    let enc = q.encoding.as_deref().unwrap_or("auto");
    let now = crate::broker::now_millis();
    let mut items = Vec::new();
    let mut next = Some(cursor);
    // A selector may skip many: look through at most ten pages' worth per request.
    let mut budget = limit * 10;
    while let Some(at) = next {
        if items.len() >= limit || budget == 0 {
            break;
        }
        let page = queue.browse(at, (limit - items.len()).min(budget));
        budget = budget.saturating_sub(page.messages.len().max(1));
        next = page.next;
        for b in page.messages {
            if filter.as_ref().is_none_or(|f| f.matches(&b.message)) {
                let state = if b.message.deliver_at > now {
                    "scheduled"
                } else {
                    "ready"
                };
                items.push(render(
                    &b.message,
                    b.delivery_count,
                    state,
                    body,
                    preview,
                    enc,
                ));
            }
        }
        cursor = at;
    }
    let _ = cursor;
    Ok(Json(json!({
        "items": items,
        "next_cursor": next.map(|c| c.to_token()),
        "total": queue.stats.snapshot().messages(),
    })))
}

/// Finds a waiting message by id (browsing, so a read).
fn find_message(queue: &Queue, id: u64) -> Option<(Arc<Message>, u32)> {
    let mut at = Some(BrowseCursor::default());
    while let Some(c) = at {
        let page = queue.browse(c, 1000);
        if let Some(b) = page.messages.into_iter().find(|b| b.message.id == id) {
            return Some((b.message, b.delivery_count));
        }
        at = page.next;
    }
    None
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("'{id}' is not a message id")))
}

/// One message, whole. `Accept: application/octet-stream` gives the raw body.
pub async fn show(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Monitor).await?;
    let queue = find(&ctx, &name)?;
    may_browse(&c, &queue)?;
    let id = parse_id(&id)?;
    let (m, count) = find_message(&queue, id)
        .ok_or_else(|| ApiError::not_found(format!("no waiting message {id} in '{name}'")))?;
    let raw = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/octet-stream"));
    if raw {
        let bytes = match &m.body {
            Body::Inline(b) => b.clone(),
            Body::File(f) => Bytes::from(
                tokio::fs::read(f.path())
                    .await
                    .map_err(|e| ApiError::unavailable(format!("cannot read the body: {e}")))?,
            ),
        };
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response());
    }
    Ok(Json(render(&m, count, "ready", "full", MAX_INLINE_BODY, "auto")).into_response())
}

async fn remove(
    ctx: &AdminContext,
    c: &Caller,
    queue: &Arc<Queue>,
    which: MessageFilter,
) -> Result<usize, ApiError> {
    let (n, stored) = ctx.broker.remove_messages(queue, &which, &c.access)?;
    stored
        .await
        .map_err(|e| ApiError::unavailable(format!("the removal could not be stored: {e}")))?;
    Ok(n)
}

/// Deletes one waiting message.
pub async fn delete_one(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Operator).await?;
    let queue = find(&ctx, &name)?;
    let id = parse_id(&id)?;
    let which = MessageFilter {
        ids: Some(vec![id]),
        ..MessageFilter::default()
    };
    if remove(&ctx, &c, &queue, which).await? == 0 {
        return Err(ApiError::not_found(format!(
            "no waiting message {id} in '{name}'"
        )));
    }
    tracing::info!(queue = %name, message_id = id, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), "message deleted over the admin API");
    Ok(StatusCode::NO_CONTENT)
}

/// `?selector=&limit=`.
#[derive(Debug, Deserialize)]
pub struct PurgeQuery {
    selector: Option<String>,
    limit: Option<usize>,
}

/// Purges a queue: everything waiting, or what a selector matches, or the first N.
pub async fn purge(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<PurgeQuery>,
) -> Result<Json<Value>, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Operator).await?;
    let queue = find(&ctx, &name)?;
    let which = MessageFilter {
        ids: None,
        selector: selector(q.selector.as_deref())?,
        limit: q.limit,
    };
    let n = remove(&ctx, &c, &queue, which).await?;
    tracing::info!(queue = %name, removed = n, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), "queue purged over the admin API");
    Ok(Json(json!({"removed": n})))
}

/// Move, copy and retry bodies.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    to: Option<String>,
    ids: Option<Vec<String>>,
    selector: Option<String>,
    limit: Option<usize>,
}

fn which(b: &MoveBody) -> Result<MessageFilter, ApiError> {
    Ok(MessageFilter {
        ids: b
            .ids
            .as_ref()
            .map(|ids| {
                ids.iter()
                    .map(|i| parse_id(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?,
        selector: selector(b.selector.as_deref())?,
        limit: b.limit,
    })
}

async fn move_or_copy(
    ctx: Arc<AdminContext>,
    peer: SocketAddr,
    headers: HeaderMap,
    name: String,
    b: MoveBody,
    copy: bool,
) -> Result<Json<Value>, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Operator).await?;
    let queue = find(&ctx, &name)?;
    let to =
        b.to.as_deref().filter(|t| !t.is_empty()).ok_or_else(|| {
            ApiError::bad_request("'to' (an address, or address::queue) is required")
        })?;
    let dest = Destination::parse(to, None);
    let n = ctx
        .broker
        .move_messages(&queue, &dest, &which(&b)?, copy, &c.access)
        .await?;
    tracing::info!(queue = %name, to, count = n, copy, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), "messages moved over the admin API");
    Ok(Json(if copy {
        json!({"copied": n})
    } else {
        json!({"moved": n})
    }))
}

/// Moves messages to another address or queue.
pub async fn move_to(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(b): Json<MoveBody>,
) -> Result<Json<Value>, ApiError> {
    move_or_copy(ctx, peer, headers, name, b, false).await
}

/// Copies messages to another address or queue.
pub async fn copy_to(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(b): Json<MoveBody>,
) -> Result<Json<Value>, ApiError> {
    move_or_copy(ctx, peer, headers, name, b, true).await
}

/// Sends dead letters back to the address and queue they came from.
pub async fn retry(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Option<Json<MoveBody>>,
) -> Result<Json<Value>, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Operator).await?;
    let queue = find(&ctx, &name)?;
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let n = ctx
        .broker
        .retry_messages(&queue, &which(&b)?, &c.access)
        .await?;
    tracing::info!(queue = %name, count = n, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), "messages retried over the admin API");
    Ok(Json(json!({"retried": n})))
}

//! Connections (open and recently closed) and subscriptions; closing a connection with a
//! reason.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, reason, require};
use crate::admin::auth::Role;
use crate::admin::envelope::{ApiError, ListQuery, page};
use crate::session::{ClosedConnection, ConnectionInfo, SubscriptionView};

fn render_open(c: &ConnectionInfo) -> Value {
    let a = c.connected_as();
    json!({
        "name": c.id.to_string(),
        "id": c.id,
        "state": "open",
        "client_id": a.client_id,
        "user": a.user,
        "remote": c.remote.to_string(),
        "transport": c.transport.as_str(),
        "acceptor": c.acceptor,
        "version": a.version,
        "heart_beat": [a.heart_beat.0, a.heart_beat.1],
        "connected_at": c.connected_at,
        "last_activity": c.last_activity.load(Ordering::Relaxed),
        "messages_in": c.messages_in.load(Ordering::Relaxed),
        "messages_out": c.messages_out.load(Ordering::Relaxed),
        "bytes_in": c.bytes_in.load(Ordering::Relaxed),
        "bytes_out": c.bytes_out.load(Ordering::Relaxed),
        "pending_bytes": c.pending_bytes.load(Ordering::Relaxed),
        "subscriptions": c.subscriptions().len(),
    })
}

fn render_closed(c: &ClosedConnection) -> Value {
    json!({
        "name": c.id.to_string(),
        "id": c.id,
        "state": "closed",
        "client_id": c.connected_as.client_id,
        "user": c.connected_as.user,
        "remote": c.remote.to_string(),
        "transport": c.transport.as_str(),
        "version": c.connected_as.version,
        "connected_at": c.connected_at,
        "closed_at": c.closed_at,
        "reason": c.reason.as_str(),
        "detail": c.detail,
        "messages_in": c.messages_in,
        "messages_out": c.messages_out,
        "bytes_in": c.bytes_in,
        "bytes_out": c.bytes_out,
    })
}

fn render_subscription(c: &ConnectionInfo, s: &SubscriptionView) -> Value {
    let st = &s.stats;
    let delivered = st.delivered.load(Ordering::Relaxed);
    let acked = st.acked.load(Ordering::Relaxed);
    let nacked = st.nacked.load(Ordering::Relaxed);
    let at = |v: u64| (v != 0).then_some(v);
    json!({
        "name": format!("{}/{}", c.id, s.id),
        "id": s.id,
        "connection": c.id,
        "destination": s.destination,
        "queue": s.queue,
        "ack_mode": s.ack_mode,
        "selector": s.selector,
        "prefetch": s.prefetch,
        "durable_name": s.durable_name,
        "in_flight": delivered.saturating_sub(acked + nacked),
        "delivered": delivered,
        "acked": acked,
        "nacked": nacked,
        "last_delivered_at": at(st.last_delivered_at.load(Ordering::Relaxed)),
        "last_ack_at": at(st.last_ack_at.load(Ordering::Relaxed)),
    })
}

/// Connection list filters, besides the common ones (read from the same query string as
/// its [`ListQuery`]).
#[derive(Debug, Deserialize)]
pub struct ConnectionQuery {
    state: Option<String>,
    user: Option<String>,
    client_id: Option<String>,
    transport: Option<String>,
}

/// Open (default) or closed connections.
pub async fn list(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ConnectionQuery>,
    Query(mut list): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    let items: Vec<Value> = match q.state.as_deref() {
        None | Some("open") => ctx
            .connections
            .live()
            .iter()
            .map(|c| render_open(c))
            .collect(),
        Some("closed") => ctx.connections.closed().iter().map(render_closed).collect(),
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "state '{s}' is not open or closed"
            )));
        }
    };
    let eq = |v: &Value, key: &str, want: &Option<String>| {
        want.as_ref()
            .is_none_or(|w| v.get(key).and_then(Value::as_str) == Some(w.as_str()))
    };
    let items = items
        .into_iter()
        .filter(|v| {
            eq(v, "user", &q.user)
                && eq(v, "client_id", &q.client_id)
                && eq(v, "transport", &q.transport)
        })
        .collect();
    if list.sort.is_none() {
        list.sort = Some("id".into());
    }
    Ok(Json(page(items, &list)?))
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("'{id}' is not a connection id")))
}

/// One connection, with its subscriptions.
pub async fn show(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    let id = parse_id(&id)?;
    if let Some(c) = ctx.connections.get(id) {
        let mut v = render_open(&c);
        v["subscription_list"] = json!(
            c.subscriptions()
                .iter()
                .map(|s| render_subscription(&c, s))
                .collect::<Vec<_>>()
        );
        return Ok(Json(v));
    }
    ctx.connections
        .closed_one(id)
        .map(|c| Json(render_closed(&c)))
        .ok_or_else(|| ApiError::not_found(format!("no connection {id}")))
}

/// Closes a connection: it gets an ERROR whose `message` is the `X-Reason`, then the socket
/// closes.
pub async fn close(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = require(&ctx, &headers, peer, Role::Operator).await?;
    let id = parse_id(&id)?;
    let c = ctx
        .connections
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no open connection {id}")))?;
    let why = reason(&headers).unwrap_or_else(|| "closed by an operator".into());
    tracing::info!(connection = id, user = caller.name.as_deref().unwrap_or("anonymous"), reason = %why, "connection close requested over the admin API");
    c.request_close(why);
    Ok(StatusCode::ACCEPTED)
}

/// Subscription list filters, besides the common ones.
#[derive(Debug, Deserialize)]
pub struct SubscriptionQuery {
    queue: Option<String>,
    connection: Option<u64>,
}

/// Every subscription of every open connection.
pub async fn subscriptions(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<SubscriptionQuery>,
    Query(list): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    let mut items = Vec::new();
    for c in ctx.connections.live() {
        if q.connection.is_some_and(|id| id != c.id) {
            continue;
        }
        for s in c.subscriptions() {
            if q.queue.as_ref().is_none_or(|w| *w == s.queue) {
                items.push(render_subscription(&c, &s));
            }
        }
    }
    Ok(Json(page(items, &list)?))
}

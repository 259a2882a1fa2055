//! `/api/v1/queues`: list, show, create, delete, pause, resume.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, reason, require};
use crate::admin::AdminContext;
use crate::admin::auth::Role;
use crate::admin::envelope::{ApiError, ListQuery, page};
use crate::broker::{
    NewQueueSpec, Queue, QueueKindKeys, RoutingType, is_temporary_name, now_millis,
};

/// The queue's JSON as lists and `show` give it.
pub fn render(ctx: &AdminContext, q: &Queue, dead_letter: &[String]) -> Value {
    let f = q.stats.snapshot();
    let r = ctx.rates.queue(&q.name);
    let age = (f.oldest_ms > 0).then(|| now_millis().saturating_sub(f.oldest_ms));
    json!({
        "name": &*q.name,
        "address": &*q.address,
        "routing_type": match q.routing { RoutingType::Anycast => "anycast", RoutingType::Multicast => "multicast" },
        "durable": q.durable,
        "filter": q.filter.as_ref().map(|f| f.text().to_string()),
        "consumers": f.consumers,
        "messages_ready": f.ready,
        "messages_paged": f.paged,
        "messages_in_flight": f.in_flight,
        "messages_scheduled": f.scheduled,
        "messages": f.messages(),
        "bytes": f.bytes,
        "oldest_message_age_ms": age,
        "enqueued_total": f.enqueued,
        "delivered_total": f.delivered,
        "acknowledged_total": f.acknowledged,
        "redelivered_total": f.redelivered,
        "nacked_total": f.nacked,
        "expired_total": f.expired,
        "dead_lettered_total": f.dead_lettered,
        "removed_total": f.removed,
        "rate_in": r.r#in,
        "rate_out": r.out,
        "rate_ack": r.ack,
        "paused": f.paused,
        "dead_letter": dead_letter.iter().any(|a| **a == *q.address),
        "auto_created": q.auto_created,
        "temporary": is_temporary_name(&q.address),
        "stream": q.kind.retention.is_some(),
    })
}

/// Addresses some address setting names as its dead-letter address.
pub fn dead_letter_addresses(ctx: &AdminContext, queues: &[Arc<Queue>]) -> Vec<String> {
    let mut v: Vec<String> = queues
        .iter()
        .filter_map(|q| {
            ctx.broker
                .settings_for(&q.address)
                .dead_letter
                .address
                .clone()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every queue.
pub async fn list(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    let queues = ctx.broker.queues();
    let dla = dead_letter_addresses(&ctx, &queues);
    let items = queues.iter().map(|x| render(&ctx, x, &dla)).collect();
    Ok(Json(page(items, &q)?))
}

/// Finds a queue or answers 404.
pub fn find(ctx: &AdminContext, name: &str) -> Result<Arc<Queue>, ApiError> {
    ctx.broker
        .queue(name)
        .ok_or_else(|| ApiError::not_found(format!("no queue '{name}'")))
}

/// One queue, with its settings in force and its rate history.
pub async fn show(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    let q = find(&ctx, &name)?;
    let dla = dead_letter_addresses(&ctx, std::slice::from_ref(&q));
    let mut v = render(&ctx, &q, &dla);
    let s = ctx.broker.settings_for(&q.address);
    v["settings"] = json!({
        "max_delivery_attempts": q.max_delivery_attempts(),
        "dead_letter_address": s.dead_letter.address,
        "expiry_address": s.expiry.address,
        "max_size_bytes": s.max_size_bytes,
        "max_size_messages": s.max_size_messages,
        "address_full_policy": format!("{:?}", s.full_policy).to_ascii_uppercase(),
        "page_size_bytes": s.page_size_bytes,
        "default_persistent": s.default_persistent,
        "exclusive": q.kind.exclusive,
        "last_value_key": q.kind.last_value_key.as_deref(),
        "ring_size": q.kind.ring_size,
        "non_destructive": q.kind.retention.is_some(),
    });
    v["rate_history"] = json!(
        ctx.rates
            .queue_history(&q.name)
            .into_iter()
            .map(|(ago, r)| json!({"seconds_ago": ago, "in": r.r#in, "out": r.out, "ack": r.ack}))
            .collect::<Vec<_>>()
    );
    Ok(Json(v))
}

/// `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateQueue {
    address: Option<String>,
    routing_type: Option<String>,
    durable: Option<bool>,
    filter: Option<String>,
    exclusive: Option<bool>,
    last_value_key: Option<String>,
    non_destructive: Option<bool>,
    ring_size: Option<i64>,
}

/// Creates a queue (and its address); idempotent for the same definition.
pub async fn create(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<CreateQueue>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = require(&ctx, &headers, peer, Role::Admin).await?;
    let routing = match body.routing_type.as_deref() {
        None => RoutingType::Anycast,
        Some(t) => RoutingType::parse(t).ok_or_else(|| {
            ApiError::bad_request(format!("routing_type '{t}' is not anycast or multicast"))
        })?,
    };
    let spec = NewQueueSpec {
        address: body.address.unwrap_or_else(|| name.clone()),
        routing,
        durable: body.durable.unwrap_or(true),
        filter: body.filter,
        kind: QueueKindKeys {
            exclusive: body.exclusive,
            last_value: body.last_value_key.as_ref().map(|_| true),
            last_value_key: body.last_value_key,
            ring_size: body.ring_size,
            non_destructive: body.non_destructive,
            ..QueueKindKeys::default()
        },
    };
    let (q, created) = ctx.broker.declare_queue(&name, spec, &c.access)?;
    tracing::info!(queue = %name, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), created, "queue declared over the admin API");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(render(&ctx, &q, &[]))))
}

/// `?if_empty=&if_unused=&strict=`.
#[derive(Debug, Deserialize)]
pub struct DeleteQueue {
    if_empty: Option<bool>,
    if_unused: Option<bool>,
    strict: Option<bool>,
}

/// Deletes a queue and its messages.
pub async fn delete(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<DeleteQueue>,
) -> Result<StatusCode, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Admin).await?;
    let existed = ctx.broker.delete_queue(
        &name,
        q.if_empty.unwrap_or(false),
        q.if_unused.unwrap_or(false),
        &c.access,
    )?;
    if !existed && q.strict.unwrap_or(false) {
        return Err(ApiError::not_found(format!("no queue '{name}'")));
    }
    tracing::info!(queue = %name, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), existed, "queue deleted over the admin API");
    Ok(StatusCode::NO_CONTENT)
}

async fn set_paused(
    ctx: Arc<AdminContext>,
    peer: SocketAddr,
    headers: HeaderMap,
    name: String,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Operator).await?;
    let q = find(&ctx, &name)?;
    if !ctx.broker.pause_queue(&q, paused, &c.access)? {
        return Err(ApiError::conflict(format!(
            "queue '{name}' is a retained stream: its readers cannot be paused"
        )));
    }
    tracing::info!(queue = %name, paused, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), "queue dispatch changed over the admin API");
    Ok(Json(json!({"name": name, "paused": paused})))
}

/// Stops dispatch.
pub async fn pause(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(ctx, peer, headers, name, true).await
}

/// Restarts dispatch.
pub async fn resume(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(ctx, peer, headers, name, false).await
}

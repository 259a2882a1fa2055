//! `/api/v1/addresses`: list, show, create, delete.

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
use crate::broker::AddressView;

fn render(a: &AddressView) -> Value {
    let mut types = Vec::new();
    if a.anycast {
        types.push("anycast");
    }
    if a.multicast {
        types.push("multicast");
    }
    json!({
        "name": &*a.name,
        "routing_types": types,
        "queues": a.queues.len(),
        "auto_created": a.auto_created,
        "routed_total": a.usage.stats.routed.load(Ordering::Relaxed),
        "unroutable_total": a.usage.stats.unroutable.load(Ordering::Relaxed),
        "memory_bytes": a.usage.bytes(),
        "memory_limit_bytes": a.usage.limit(),
    })
}

/// Every address.
pub async fn list(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    let items = ctx.broker.addresses().iter().map(render).collect();
    Ok(Json(page(items, &q)?))
}

/// One address, with its queues' names.
pub async fn show(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    let a = ctx
        .broker
        .address(&name)
        .ok_or_else(|| ApiError::not_found(format!("no address '{name}'")))?;
    let mut v = render(&a);
    v["queue_names"] = json!(
        a.queues
            .iter()
            .map(|q| q.name.to_string())
            .collect::<Vec<_>>()
    );
    Ok(Json(v))
}

/// `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAddress {
    routing_types: Vec<String>,
}

/// Creates an address (or adds routing types); idempotent.
pub async fn create(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<CreateAddress>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = require(&ctx, &headers, peer, Role::Admin).await?;
    let (mut anycast, mut multicast) = (false, false);
    for t in &body.routing_types {
        match t.to_ascii_lowercase().as_str() {
            "anycast" => anycast = true,
            "multicast" => multicast = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "routing type '{other}' is not anycast or multicast"
                )));
            }
        }
    }
    let changed = ctx
        .broker
        .declare_address(&name, anycast, multicast, &c.access)?;
    tracing::info!(address = %name, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), changed, "address declared over the admin API");
    let a = ctx
        .broker
        .address(&name)
        .ok_or_else(|| ApiError::not_found(format!("no address '{name}'")))?;
    let status = if changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(render(&a))))
}

/// `?force=&strict=`.
#[derive(Debug, Deserialize)]
pub struct DeleteAddress {
    force: Option<bool>,
    strict: Option<bool>,
}

/// Deletes an address (with `force`, its queues and their messages too).
pub async fn delete(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<DeleteAddress>,
) -> Result<StatusCode, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Admin).await?;
    let existed = ctx
        .broker
        .delete_address(&name, q.force.unwrap_or(false), &c.access)?;
    if !existed && q.strict.unwrap_or(false) {
        return Err(ApiError::not_found(format!("no address '{name}'")));
    }
    tracing::info!(address = %name, user = c.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), existed, "address deleted over the admin API");
    Ok(StatusCode::NO_CONTENT)
}

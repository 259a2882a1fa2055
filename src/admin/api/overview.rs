//! Health, readiness, the overview, who the caller is, and the configuration.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, require};
use crate::admin::auth::Role;
use crate::admin::envelope::ApiError;
use crate::session::Transport;

/// Liveness: the process serves HTTP.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: journal recovered (the broker is built only after recovery, so a running
/// listener means it is), every listener bound, no resource alarm.
pub async fn readyz(State(ctx): Ctx) -> Response {
    let memory = ctx.broker.memory().is_full();
    let disk = ctx.broker.disk().is_full();
    let checks = vec![
        json!({"name": "journal", "ok": true, "detail": if ctx.broker.persistent() { "open and recovered" } else { "persistence off" }}),
        json!({"name": "listeners", "ok": !ctx.listeners.is_empty(), "detail": format!("{} bound", ctx.listeners.len())}),
        json!({"name": "memory_alarm", "ok": !memory, "detail": if memory { "global-max-size reached" } else { "below global-max-size" }}),
        json!({"name": "disk_alarm", "ok": !disk, "detail": if disk { ctx.broker.disk().reason() } else { "below max-disk-usage".to_string() }}),
    ];
    let ready = checks.iter().all(|c| c["ok"] == true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"ready": ready, "checks": checks}))).into_response()
}

/// The broker at a glance.
pub async fn overview(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    let b = &ctx.broker;
    let queues = b.queues();
    let (mut ready, mut in_flight, mut scheduled, mut consumers) = (0u64, 0u64, 0u64, 0u64);
    for q in &queues {
        let f = q.stats.snapshot();
        ready += f.ready;
        in_flight += f.in_flight;
        scheduled += f.scheduled;
        consumers += f.consumers;
    }
    let live = ctx.connections.live();
    let mut by_transport = serde_json::Map::new();
    for t in Transport::ALL {
        by_transport.insert(
            t.as_str().into(),
            json!(live.iter().filter(|c| c.transport == t).count()),
        );
    }
    let minute = (60 / ctx.config.sample_interval_secs.max(1)).max(1) as usize;
    let (last, over_minute) = ctx.rates.broker(minute);
    let s = b.stats();
    let memory = b.memory();
    let disk = crate::broker::read_usage(b.disk().dir()).ok();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "node": ctx.node,
        "uptime_seconds": ctx.started.elapsed().as_secs(),
        "listeners": ctx.listeners.iter().map(|l| json!({"name": l.name, "protocol": l.protocol, "address": l.address.to_string()})).collect::<Vec<_>>(),
        "totals": {
            "connections": live.len(),
            "connections_by_transport": by_transport,
            "addresses": b.addresses().len(),
            "queues": queues.len(),
            "consumers": consumers,
            "messages_ready": ready,
            "messages_in_flight": in_flight,
            "messages_scheduled": scheduled,
            "messages_received": s.received.get(),
            "messages_delivered": s.delivered.get(),
            "messages_acknowledged": s.acknowledged.get(),
        },
        "rates": {
            "interval_seconds": ctx.config.sample_interval_secs,
            "last": last,
            "minute": over_minute,
        },
        "alarms": {"memory": memory.is_full(), "disk": b.disk().is_full()},
        "memory": {"used_bytes": memory.bytes(), "limit_bytes": memory.limit()},
        "disk": disk.map(|u| json!({"used_bytes": u.used, "total_bytes": u.total, "max_percent": b.disk().max_percent()})),
        "journal": b.journal().map(|j| {
            let f = j.stats().commit_seconds.figures();
            json!({
                "enabled": true,
                "size_bytes": j.file_size(),
                "commits_total": j.commit_count(),
                "commit_p99_seconds_at_most": quantile_bound(&f, 0.99),
            })
        }).unwrap_or_else(|| json!({"enabled": false})),
        "config_loaded_at": ctx.reload.as_ref().map_or(ctx.config_loaded_at, |r| r.figures().2),
    })))
}

/// The upper bound of the bucket the `q` quantile falls in (histograms keep buckets, not
/// values); `None` before the first observation.
fn quantile_bound(f: &crate::journal::HistogramFigures, q: f64) -> Option<f64> {
    if f.count == 0 {
        return None;
    }
    let want = (f.count as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (bound, n) in &f.buckets {
        seen += n;
        if seen >= want {
            return Some(if bound.is_finite() { *bound } else { f64::MAX });
        }
    }
    None
}

/// Who the caller is, so the console can hide what it may not do.
pub async fn whoami(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let c = crate::admin::auth::authenticate(ctx.gate(), &headers, peer.ip())
        .await
        .map_err(|crate::admin::auth::Refused::Unauthorized(m)| ApiError::unauthorized(m))?;
    Ok(Json(json!({
        "user": c.name,
        "roles": c.roles,
        "admin_role": c.role.map(Role::as_str),
    })))
}

/// The effective configuration.
pub async fn config(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require(&ctx, &headers, peer, Role::Monitor).await?;
    match &ctx.reload {
        Some(r) => Ok(Json(r.view())),
        None => Ok(Json(json!({
            "source": null,
            "loaded_at": ctx.config_loaded_at,
            "config": null,
            "pending_restart": [],
            "note": "the broker runs on its embedded defaults (no configuration file), so there is nothing to reload",
        }))),
    }
}

/// `?dry_run=`.
#[derive(Debug, Deserialize)]
pub struct ReloadQuery {
    dry_run: Option<bool>,
}

/// Reloads the configuration file (all or nothing), or with `dry_run` only says what would
/// change.
pub async fn reload(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ReloadQuery>,
) -> Result<Json<Value>, ApiError> {
    let c = require(&ctx, &headers, peer, Role::Admin).await?;
    let Some(r) = &ctx.reload else {
        return Err(ApiError::conflict(
            "the broker was started without a configuration file: nothing to reload",
        ));
    };
    let dry_run = q.dry_run.unwrap_or(false);
    tracing::info!(
        user = c.name.as_deref().unwrap_or("anonymous"),
        dry_run,
        reason = super::reason(&headers).as_deref().unwrap_or(""),
        "configuration reload requested over the admin API"
    );
    Ok(Json(r.reload(dry_run).await))
}

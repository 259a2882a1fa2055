//! The cluster routes: `/cluster/leader` for load balancers (no credentials, like
//! `/healthz`: 200 only where clients are served), and the node's view and membership
//! changes under `/api/v1/cluster`. Served by the leader's admin listener and by a
//! follower's small one (`admin::follower`) alike.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{reason, require_at};
use crate::admin::auth::Role;
use crate::admin::cluster::{ClusterAdmin, ClusterControl, MemberRefusal};
use crate::admin::envelope::ApiError;

type St = State<Arc<ClusterAdmin>>;

/// Longest cluster address a join accepts (a host name and a port).
const MAX_ADDRESS: usize = 261;

/// The cluster routes, on their own state (merged into either admin listener's router).
pub fn routes(state: Arc<ClusterAdmin>) -> Router {
    Router::new()
        .route("/cluster/leader", get(leader))
        .route("/api/v1/cluster", get(status))
        .route("/api/v1/cluster/members", post(join))
        .route("/api/v1/cluster/members/{id}", axum::routing::delete(leave))
        .with_state(state)
}

/// 200 where clients are served (the leader, or a broker without `[cluster]`), 503
/// elsewhere, naming the leader and where it listens, so a load balancer or a browser's
/// page can route to it.
async fn leader(State(s): St) -> Response {
    let Some(c) = &s.control else {
        return Json(json!({"cluster": false, "leading": true, "node": null, "leader": null}))
            .into_response();
    };
    let (me, leader) = c.leadership();
    let leading = s.serving && leader == Some(me);
    let listeners = c.leader_listeners().map(|l| {
        l.into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<serde_json::Map<String, Value>>()
    });
    let body = json!({
        "cluster": true,
        "leading": leading,
        "node": me,
        "leader": leader,
        "leader_listeners": listeners,
    });
    let status = if leading {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

fn node(s: &ClusterAdmin) -> Result<&Arc<dyn ClusterControl>, ApiError> {
    s.control
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this broker runs alone: it has no [cluster] section"))
}

/// This node's view: members, leader, term, commit index, each member's lag.
async fn status(
    State(s): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_at(s.gate(), &headers, peer, Role::Monitor).await?;
    Ok(Json(node(&s)?.status()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Join {
    id: u64,
    address: String,
}

/// Adds a node: it first receives the log (or a snapshot) as a learner, then votes.
async fn join(
    State(s): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(j): Json<Join>,
) -> Result<Json<Value>, ApiError> {
    let caller = require_at(s.gate(), &headers, peer, Role::Admin).await?;
    let c = node(&s)?;
    if j.id == 0 {
        return Err(ApiError::bad_request("id: node ids start at 1"));
    }
    let port_ok = j
        .address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if j.address.len() > MAX_ADDRESS || !port_ok {
        return Err(ApiError::bad_request(format!(
            "address: expected host:port (the node's [cluster] listen address), got {:?}",
            j.address.chars().take(64).collect::<String>()
        )));
    }
    tracing::info!(id = j.id, address = %j.address, by = caller.name.as_deref().unwrap_or("anonymous"), reason = reason(&headers).as_deref().unwrap_or(""), "adding a cluster member");
    c.add_member(j.id, j.address)
        .await
        .map(Json)
        .map_err(refusal)
}

/// Removes a node (a voter or a learner).
async fn leave(
    State(s): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let caller = require_at(s.gate(), &headers, peer, Role::Admin).await?;
    let c = node(&s)?;
    tracing::info!(
        id,
        by = caller.name.as_deref().unwrap_or("anonymous"),
        reason = reason(&headers).as_deref().unwrap_or(""),
        "removing a cluster member"
    );
    c.remove_member(id).await.map(Json).map_err(refusal)
}

fn refusal(r: MemberRefusal) -> ApiError {
    match r {
        MemberRefusal::NotLeader(Some(l)) => ApiError::conflict(format!(
            "only the leader changes membership: ask node {l} (see /cluster/leader)"
        )),
        MemberRefusal::NotLeader(None) => ApiError::unavailable(
            "only the leader changes membership, and no leader is known now: try again",
        ),
        MemberRefusal::Refused(m) => ApiError::conflict(m),
    }
}

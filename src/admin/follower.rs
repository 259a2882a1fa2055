//! The admin listener of a cluster follower. A follower runs no broker (the leader holds
//! the queues), so it serves only what is true of it: liveness, readiness (never ready: it
//! serves no clients of its own), `/cluster/leader` (503, naming the leader) and the cluster
//! view. Everything else answers 503 and points at the leader.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, extract::State};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::api;
use super::cluster::ClusterAdmin;
use super::envelope::ApiError;

/// Serves a follower's admin listener until the task is aborted (when the node leads and
/// the full listener takes the port).
pub fn spawn_follower(listener: TcpListener, state: Arc<ClusterAdmin>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let app = router(state);
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the follower's admin listener stopped");
        }
    })
}

fn router(state: Arc<ClusterAdmin>) -> Router {
    let fallback_state = Arc::clone(&state);
    let app = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({"status": "ok", "role": "follower"})) }),
        )
        .route("/readyz", get(readyz))
        .with_state(Arc::clone(&state))
        .merge(api::cluster::routes(state))
        .fallback(move || {
            let s = Arc::clone(&fallback_state);
            async move { elsewhere(&s) }
        });
    api::harden(app)
}

/// Not ready: a follower serves no clients itself (it forwards them to the leader).
async fn readyz(State(s): State<Arc<ClusterAdmin>>) -> Response {
    let leader = s.control.as_ref().and_then(|c| c.leadership().1);
    let detail = match leader {
        Some(l) => format!("a cluster follower: node {l} leads and serves clients"),
        None => "a cluster follower: no leader is known now".to_string(),
    };
    let checks = vec![json!({"name": "cluster_leader", "ok": false, "detail": detail})];
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"ready": false, "checks": checks})),
    )
        .into_response()
}

fn elsewhere(s: &ClusterAdmin) -> ApiError {
    let leader = s.control.as_ref().and_then(|c| c.leadership().1);
    ApiError::unavailable(match leader {
        Some(l) => format!(
            "this node is a cluster follower and holds no broker: ask the leader, node {l} (see /cluster/leader)"
        ),
        None => "this node is a cluster follower and no leader is known now: try again".into(),
    })
}

//! The HTTP routes: health, metrics, the JSON API and the console. Each handler
//! authenticates the caller, checks its admin role (and, for message operations, the
//! address permission through the core), then answers in the shapes of `envelope.rs`.

mod addresses;
pub mod cluster;
mod connections;
mod messages;
mod overview;
mod queues;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AdminContext;
use super::auth::{self, Caller, Refused, Role};
use super::envelope::ApiError;

/// Shared state of every handler.
pub type Ctx = State<Arc<AdminContext>>;

/// Largest request body the API reads (a message sent through it included).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Every route.
pub fn router(ctx: Arc<AdminContext>) -> Router {
    let cluster_state = Arc::new(super::cluster::ClusterAdmin::new(
        Arc::clone(&ctx.security),
        ctx.config.clone(),
        ctx.anonymous_ok,
        ctx.open,
        ctx.cluster.clone(),
        true,
    ));
    let api = Router::new()
        .route("/overview", get(overview::overview))
        .route("/whoami", get(overview::whoami))
        .route("/openapi.json", get(super::openapi::document))
        .route("/config", get(overview::config))
        .route("/config/reload", post(overview::reload))
        .route("/addresses", get(addresses::list))
        .route(
            "/addresses/{name}",
            get(addresses::show)
                .put(addresses::create)
                .delete(addresses::delete),
        )
        .route("/addresses/{name}/messages", post(messages::send))
        .route("/queues", get(queues::list))
        .route(
            "/queues/{name}",
            get(queues::show).put(queues::create).delete(queues::delete),
        )
        .route("/queues/{name}/pause", post(queues::pause))
        .route("/queues/{name}/resume", post(queues::resume))
        .route(
            "/queues/{name}/messages",
            get(messages::browse).delete(messages::purge),
        )
        .route("/queues/{name}/messages/move", post(messages::move_to))
        .route("/queues/{name}/messages/copy", post(messages::copy_to))
        .route("/queues/{name}/messages/retry", post(messages::retry))
        .route(
            "/queues/{name}/messages/{id}",
            get(messages::show).delete(messages::delete_one),
        )
        .route("/connections", get(connections::list))
        .route(
            "/connections/{id}",
            get(connections::show).delete(connections::close),
        )
        .route("/subscriptions", get(connections::subscriptions));
    let app = Router::new()
        .route("/healthz", get(overview::healthz))
        .route("/readyz", get(overview::readyz))
        .route("/metrics", get(metrics))
        .route("/metrics/per-object", get(metrics_per_object))
        .route("/", get(super::console::page))
        .route("/console", get(super::console::page))
        .nest("/api/v1", api)
        .with_state(ctx)
        .merge(cluster::routes(cluster_state))
        .fallback(|| async { ApiError::not_found("no such endpoint") });
    harden(app)
}

/// The body limit and [`guard`], on any admin router.
pub fn harden(app: Router) -> Router {
    app.layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(guard))
}

/// Refuses mutations that carry a body in anything but JSON (a cross-site form cannot send
/// JSON), and sets the security headers on every answer.
async fn guard(req: Request, next: Next) -> Response {
    let mutating = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > 0)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let mut resp = if mutating && has_body && !json {
        ApiError::unsupported_media("a request body must be sent as Content-Type: application/json")
            .into_response()
    } else {
        as_json_error(next.run(req).await).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Gives axum's own refusals (a body, query or path it could not read: plain text) the API's
/// `{error, message}` shape, so a client only ever parses one kind of error.
async fn as_json_error(resp: Response) -> Response {
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() && plain) {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&body).into_owned();
    match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::unsupported_media(message),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::bad_request(format!("request body too large: {message}"))
        }
        _ => ApiError::bad_request(message),
    }
    .into_response()
}

/// Authenticates the caller and checks it has at least `need`.
pub async fn require(
    ctx: &AdminContext,
    headers: &HeaderMap,
    peer: SocketAddr,
    need: Role,
) -> Result<Caller, ApiError> {
    require_at(ctx.gate(), headers, peer, need).await
}

/// [`require`] at any gate (a cluster follower's listener has no [`AdminContext`]).
pub async fn require_at(
    gate: auth::Gate<'_>,
    headers: &HeaderMap,
    peer: SocketAddr,
    need: Role,
) -> Result<Caller, ApiError> {
    let caller = auth::authenticate(gate, headers, peer.ip())
        .await
        .map_err(|Refused::Unauthorized(m)| ApiError::unauthorized(m))?;
    match caller.role {
        Some(r) if r >= need => Ok(caller),
        _ => Err(ApiError::forbidden(format!(
            "this needs the {} role; {} has {}",
            need.as_str(),
            caller.name.as_deref().unwrap_or("anonymous"),
            caller.role.map_or("no admin role", Role::as_str)
        ))),
    }
}

/// The `X-Reason` header of a mutation, for the log.
pub fn reason(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect())
}

#[derive(Debug, Deserialize)]
struct MetricsQuery {
    queue: Option<String>,
}

async fn metrics(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<MetricsQuery>,
) -> Result<Response, ApiError> {
    scrape(ctx, peer, headers, q, false).await
}

async fn metrics_per_object(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<MetricsQuery>,
) -> Result<Response, ApiError> {
    scrape(ctx, peer, headers, q, true).await
}

async fn scrape(
    ctx: Arc<AdminContext>,
    peer: SocketAddr,
    headers: HeaderMap,
    q: MetricsQuery,
    per_object: bool,
) -> Result<Response, ApiError> {
    if ctx.config.metrics_need_auth() {
        require(&ctx, &headers, peer, Role::Monitor).await?;
    }
    let filter = match q.queue {
        Some(r) if r.len() > 1024 => return Err(ApiError::bad_request("queue regex too long")),
        Some(r) => Some(
            regex::Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| ApiError::bad_request(format!("queue: {e}")))?,
        ),
        None => None,
    };
    let body = super::metrics::render(ctx, filter, per_object)
        .map_err(|_| ApiError::unavailable("metrics could not be encoded"))?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

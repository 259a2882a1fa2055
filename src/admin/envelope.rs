//! The API's common shapes: errors as `{error, message}` with their status, and lists as
//! `{items, next_cursor, total, filtered}`, filtered, sorted and paged on the server with a
//! cursor (the last item's sort key) so that churn between pages cannot skip or repeat items.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 100;
/// See [`DEFAULT_LIMIT`].
pub const MAX_LIMIT: usize = 1000;
/// Longest `name_regex` accepted (the regex crate compiles in linear time, but bounded input
/// keeps a request's cost bounded too).
const MAX_REGEX: usize = 1024;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }
    /// 401.
    pub fn unauthorized(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }
    /// 403.
    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", m)
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", m)
    }
    /// 409.
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", m)
    }
    /// 415.
    pub fn unsupported_media(m: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            m,
        )
    }
    /// 503.
    pub fn unavailable(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
    }

    fn new(status: StatusCode, kind: &'static str, m: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: m.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": self.kind, "message": self.message})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // No `WWW-Authenticate: Basic`: it would make a browser prompt and then attach
            // the credentials to every request, cross-site ones included (see auth.rs).
            r.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer realm=\"wrenmq\""),
            );
        }
        r
    }
}

impl From<crate::broker::ManageError> for ApiError {
    fn from(e: crate::broker::ManageError) -> Self {
        use crate::broker::{BrokerError, ManageError};
        match e {
            ManageError::NotFound(m) => ApiError::not_found(m),
            ManageError::Conflict(m) => ApiError::conflict(m),
            ManageError::Invalid(m) => ApiError::bad_request(m),
            ManageError::Broker(BrokerError::NotAuthorized(d)) => ApiError::forbidden(d),
            ManageError::Broker(e) => ApiError::bad_request(e.to_string()),
        }
    }
}

/// The list parameters every list takes.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Where the previous page ended (its `next_cursor`).
    pub cursor: Option<String>,
    /// Only items whose name contains this.
    pub name: Option<String>,
    /// Only items whose name matches this regular expression.
    pub name_regex: Option<String>,
    /// The field to sort by (default `name`).
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
}

/// Applies [`ListQuery`] to items rendered as JSON objects: filter by name, sort by a field
/// (ties broken by name), then page from the cursor.
pub fn page(items: Vec<Value>, q: &ListQuery) -> Result<Value, ApiError> {
    let total = items.len();
    let regex = match &q.name_regex {
        Some(r) if r.len() > MAX_REGEX => {
            return Err(ApiError::bad_request(format!(
                "name_regex is longer than {MAX_REGEX} characters"
            )));
        }
        Some(r) => Some(
            regex::Regex::new(r).map_err(|e| ApiError::bad_request(format!("name_regex: {e}")))?,
        ),
        None => None,
    };
    let name_of = |v: &Value| v.get("name").map(key_text).unwrap_or_default();
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|v| {
            let n = name_of(v);
            q.name.as_ref().is_none_or(|s| n.contains(s.as_str()))
                && regex.as_ref().is_none_or(|r| r.is_match(&n))
        })
        .collect();
    let filtered = items.len();
    let sort = q.sort.clone().unwrap_or_else(|| "name".into());
    let desc = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "order '{o}' is not asc or desc"
            )));
        }
    };
    if let Some(first) = items.first()
        && sort != "name"
        && first.get(&sort).is_none()
    {
        return Err(ApiError::bad_request(format!(
            "cannot sort by unknown field '{sort}'"
        )));
    }
    let key = |v: &Value| SortKey::of(v.get(&sort), name_of(v));
    items.sort_by(|a, b| {
        let o = key(a).cmp(&key(b));
        if desc { o.reverse() } else { o }
    });
    let start = match &q.cursor {
        None => 0,
        Some(c) => {
            let after = SortKey::decode(c)
                .ok_or_else(|| ApiError::bad_request("cursor is not one this API gave"))?;
            items.partition_point(|v| {
                let k = key(v);
                if desc { k >= after } else { k <= after }
            })
        }
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let next = (start + page.len() < items.len())
        .then(|| page.last().map(|v| key(v).encode()))
        .flatten();
    Ok(json!({"items": page, "next_cursor": next, "total": total, "filtered": filtered}))
}

fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A sort position: the sort field's value (numbers before text) and the name.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SortKey(Option<f64>, String, String);

impl SortKey {
    fn of(v: Option<&Value>, name: String) -> SortKey {
        match v {
            Some(Value::Number(n)) => SortKey(n.as_f64(), String::new(), name),
            Some(Value::Bool(b)) => SortKey(Some(f64::from(u8::from(*b))), String::new(), name),
            Some(other) => SortKey(None, key_text(other), name),
            None => SortKey(None, String::new(), name),
        }
    }

    fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> Option<SortKey> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

impl PartialEq for SortKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for SortKey {}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortKey {
    /// Numbers (in total order) before text, then the name.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let number = match (self.0, other.0) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        number
            .then_with(|| self.1.cmp(&other.1))
            .then_with(|| self.2.cmp(&other.2))
    }
}

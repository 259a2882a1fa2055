//! The operator console: one static page embedded in the binary, which talks to the API
//! from script (nothing is loaded from the internet).

use axum::http::header;
use axum::response::IntoResponse;

/// The page (`web/admin.html`).
pub async fn page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../../web/admin.html"),
    )
}

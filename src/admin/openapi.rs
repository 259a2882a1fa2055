//! `/api/v1/openapi.json`: the API's description, kept beside the routes (a test checks that
//! every route is described and every described path is routed).

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI 3.1 document (`src/admin/openapi.json`).
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Serves it.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The paths the router serves, read from its source: every `.route("…"` under the
    /// `/api/v1` nest gets the prefix.
    fn routed() -> BTreeSet<String> {
        let src = include_str!("api/mod.rs");
        let mut out = BTreeSet::new();
        let nest = src.find(".nest(\"/api/v1\"").unwrap_or(src.len());
        let api_end = src
            .find("Router::new()\n        .route(\"/healthz\"")
            .unwrap_or(0);
        for (at, _) in src.match_indices(".route(") {
            let Some(rest) = src[at + 7..].trim_start().strip_prefix('"') else {
                continue;
            };
            let Some(end) = rest.find('"') else { continue };
            let path = &rest[..end];
            if path == "/" || path == "/console" {
                continue;
            }
            let in_api = at < api_end && api_end < nest;
            out.insert(if in_api {
                format!("/api/v1{path}")
            } else {
                path.to_string()
            });
        }
        // the cluster routes are written whole, outside the nest
        let cluster = include_str!("api/cluster.rs");
        for (at, _) in cluster.match_indices(".route(") {
            let rest = cluster[at + 7..].trim_start();
            if let Some(rest) = rest.strip_prefix('"')
                && let Some(end) = rest.find('"')
            {
                out.insert(rest[..end].to_string());
            }
        }
        out
    }

    #[test]
    fn every_route_is_described_and_every_description_routed() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let described: BTreeSet<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        assert_eq!(routed(), described);
    }
}

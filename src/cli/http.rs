//! The admin API client: one blocking request at a time over ureq, with the auth of
//! [`Resolved`], and every failure turned into a [`CliError`] with the right exit code (the
//! API's `{"error", "message"}` body is shown as the broker wrote it).

use std::time::Duration;

use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use ureq::Agent;

use super::error::{CliError, CliResult};
use super::global::Resolved;

/// How long one request may take, connect included: a hung broker must not hang a script.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response read (a browse with full bodies at the API's maximum page).
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// Everything but RFC 3986 unreserved characters is encoded, so a queue name with `/`, `::`
/// or spaces stays one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Builds `?k=v&...` from the pairs whose value is set.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The admin API at one base URL, with one way of authenticating.
pub struct Api {
    agent: Agent,
    base: String,
    auth: Option<String>,
}

impl Api {
    /// A client for `r.url`; a token wins over user and password.
    pub fn new(r: &Resolved) -> Api {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        let auth = match (&r.token, &r.user) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, Some(u)) => {
                let pair = format!("{u}:{}", r.password.as_deref().unwrap_or(""));
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            (None, None) => None,
        };
        Api {
            agent,
            base: r.url.clone(),
            auth,
        }
    }

    /// GET `path` (under the base URL, e.g. `/api/v1/queues`).
    pub fn get(&self, path: &str) -> CliResult<Value> {
        self.request("GET", path, None, None)
    }

    /// POST with an optional JSON body.
    pub fn post(&self, path: &str, body: Option<&Value>, reason: Option<&str>) -> CliResult<Value> {
        self.request("POST", path, body, reason)
    }

    /// PUT a JSON body.
    pub fn put(&self, path: &str, body: &Value, reason: Option<&str>) -> CliResult<Value> {
        self.request("PUT", path, Some(body), reason)
    }

    /// DELETE, with the `X-Reason` header when given.
    pub fn delete(&self, path: &str, reason: Option<&str>) -> CliResult<Value> {
        self.request("DELETE", path, None, reason)
    }

    /// GET, returning the raw status and JSON body without turning an error status into a
    /// [`CliError`] (for `/readyz`, whose 503 is an answer, not a failure).
    pub fn get_status(&self, path: &str) -> CliResult<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let resp = req.call().map_err(|e| transport_error(&url, e))?;
        let status = resp.status().as_u16();
        Ok((status, read_json(&url, resp)?))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        reason: Option<&str>,
    ) -> CliResult<Value> {
        let url = format!("{}{path}", self.base);
        let result = match method {
            "GET" | "DELETE" => {
                let mut req = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                if let Some(a) = &self.auth {
                    req = req.header("Authorization", a);
                }
                if let Some(r) = reason {
                    req = req.header("X-Reason", r);
                }
                req.call()
            }
            _ => {
                let mut req = if method == "PUT" {
                    self.agent.put(&url)
                } else {
                    self.agent.post(&url)
                };
                if let Some(a) = &self.auth {
                    req = req.header("Authorization", a);
                }
                if let Some(r) = reason {
                    req = req.header("X-Reason", r);
                }
                match body {
                    Some(b) => req.send_json(b),
                    None => req.send_empty(),
                }
            }
        };
        let resp = result.map_err(|e| transport_error(&url, e))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return read_json(&url, resp);
        }
        // An error answer that is not the API's JSON envelope still says what went wrong.
        let text = read_text(&url, resp)?;
        let value = serde_json::from_str(&text).unwrap_or_else(|_| {
            let start: String = text.trim().chars().take(300).collect();
            serde_json::json!({ "message": start })
        });
        Err(api_error(method, &url, status, &value))
    }
}

fn read_text(url: &str, mut resp: ureq::http::Response<ureq::Body>) -> CliResult<String> {
    resp.body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_string()
        .map_err(|e| CliError::protocol(format!("{url}: reading the response: {e}")))
}

fn read_json(url: &str, resp: ureq::http::Response<ureq::Body>) -> CliResult<Value> {
    let text = read_text(url, resp)?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| {
        let start: String = text.chars().take(120).collect();
        CliError::protocol(format!(
            "{url}: the response is not JSON ({e}): {start:?} (is --url the admin API?)"
        ))
    })
}

/// Maps an error status to an exit code: 401/403 → 77, 404/400/409/422 → 65,
/// 503 → 69, anything else → 76.
fn api_error(method: &str, url: &str, status: u16, body: &Value) -> CliError {
    let kind = body.get("error").and_then(Value::as_str).unwrap_or("");
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    let text = format!("{method} {url}: {status} {kind}: {message}");
    let mut e = match status {
        401 | 403 => CliError::no_perm(text),
        400 | 404 | 405 | 409 | 413 | 415 | 422 => CliError::data(text),
        502..=504 => CliError::unavailable(text),
        _ => CliError::protocol(text),
    };
    e.status = Some(status);
    e
}

fn transport_error(url: &str, e: ureq::Error) -> CliError {
    CliError::unavailable(format!("cannot reach the admin API at {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_stay_one_segment_and_queries_skip_unset_values() {
        assert_eq!(enc("orders::eu west/1"), "orders%3A%3Aeu%20west%2F1");
        assert_eq!(
            query(&[
                ("selector", Some("a = 'x&y'".into())),
                ("limit", None),
                ("body", Some("full".into()))
            ]),
            "?selector=a%20%3D%20%27x%26y%27&body=full"
        );
        assert_eq!(query(&[("limit", None)]), "");
    }

    #[test]
    fn statuses_map_to_sysexits() {
        let body = json!({"error": "not_found", "message": "no queue q"});
        let e = api_error("GET", "u", 404, &body);
        assert_eq!(e.code as u8, 65);
        assert!(e.message.contains("no queue q"));
        assert_eq!(api_error("GET", "u", 401, &body).code as u8, 77);
        assert_eq!(api_error("GET", "u", 403, &body).code as u8, 77);
        assert_eq!(api_error("GET", "u", 503, &body).code as u8, 69);
        assert_eq!(api_error("GET", "u", 500, &body).code as u8, 76);
    }
}

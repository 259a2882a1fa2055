//! Paged API lists (`{"items", "next_cursor", "total", "filtered"}`) read to the end or to a
//! `--top`, so the CLI shows the whole table while the API keeps every page bounded.

use serde_json::Value;

use super::error::{CliError, CliResult};
use super::http::{Api, query};

/// Options of a list request.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// Exact name filter (`?name=`).
    pub name: Option<String>,
    /// Regex name filter (`?name_regex=`).
    pub name_regex: Option<String>,
    /// Sort field.
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// At most this many items in all.
    pub top: Option<u64>,
    /// Extra query pairs (e.g. `state=closed`).
    pub extra: Vec<(&'static str, String)>,
}

/// The API's largest page.
const PAGE: u64 = 1000;
/// A safety stop: a broker that kept returning cursors would otherwise loop for ever.
const MAX_PAGES: usize = 1000;

/// All items of `path` (e.g. `/api/v1/queues`), following `next_cursor`.
pub fn fetch_all(api: &Api, path: &str, q: &ListQuery) -> CliResult<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let want = q.top.map_or(PAGE, |t| (t - items.len() as u64).min(PAGE));
        let mut pairs: Vec<(&str, Option<String>)> = vec![
            ("limit", Some(want.to_string())),
            ("cursor", cursor.clone()),
            ("name", q.name.clone()),
            ("name_regex", q.name_regex.clone()),
            ("sort", q.sort.clone()),
            ("order", q.order.clone()),
        ];
        for (k, v) in &q.extra {
            pairs.push((k, Some(v.clone())));
        }
        let page = api.get(&format!("{path}{}", query(&pairs)))?;
        let page_items = page.get("items").and_then(Value::as_array).ok_or_else(|| {
            CliError::protocol(format!("{path}: the answer has no \"items\" list"))
        })?;
        items.extend(page_items.iter().cloned());
        if q.top.is_some_and(|t| items.len() as u64 >= t) {
            items.truncate(q.top.map_or(usize::MAX, |t| t as usize));
            return Ok(items);
        }
        // A page may be short, even empty, and still have a cursor (a browse with a
        // selector looks through a bounded stretch of the queue per request).
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(items),
        }
    }
    Err(CliError::protocol(format!(
        "{path}: more than {MAX_PAGES} pages; narrow the list with --name, --regex or --top"
    )))
}

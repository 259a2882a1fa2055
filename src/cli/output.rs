//! How client verbs print: the API's JSON as is with `--json`, else a table for people
//! (borderless with `--non-interactive`, so a script or a log gets plain columns).

use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

use super::error::{CliError, CliResult};

/// One table column: its heading, and how to get the cell from an item.
pub struct Column {
    /// The heading.
    pub title: &'static str,
    /// The field of the item (dotted for nested objects).
    pub field: &'static str,
    /// How to show the value.
    pub kind: Kind,
}

/// How a value is shown in a cell.
#[derive(Clone, Copy)]
pub enum Kind {
    /// As it is (strings without quotes; null as `-`).
    Plain,
    /// A byte count, with a binary unit.
    Bytes,
    /// Milliseconds of age or duration, e.g. `3m12s`.
    Millis,
    /// A timestamp in ms since the epoch, as UTC `YYYY-MM-DD hh:mm:ss`.
    Time,
    /// A rate per second with one decimal.
    Rate,
}

/// Shorthand for a [`Column`].
pub const fn col(title: &'static str, field: &'static str, kind: Kind) -> Column {
    Column { title, field, kind }
}

/// A new table in the style of the run: UTF-8 borders for people, none for scripts.
pub fn new_table(plain: bool) -> Table {
    let mut t = Table::new();
    if plain {
        t.load_style(presets::NOTHING);
    } else {
        t.load_style(presets::UTF8_FULL_CONDENSED);
    }
    t.set_content_arrangement(ContentArrangement::Disabled);
    t
}

/// The value at a dotted path.
pub fn field<'a>(item: &'a Value, path: &str) -> &'a Value {
    let mut v = item;
    for part in path.split('.') {
        v = v.get(part).unwrap_or(&Value::Null);
    }
    v
}

/// One cell's text.
pub fn cell(v: &Value, kind: Kind) -> String {
    match (kind, v) {
        (_, Value::Null) => "-".to_string(),
        (Kind::Bytes, Value::Number(n)) => n.as_u64().map_or_else(|| n.to_string(), human_bytes),
        (Kind::Millis, Value::Number(n)) => n.as_u64().map_or_else(|| n.to_string(), human_millis),
        (Kind::Time, Value::Number(n)) => n.as_i64().map_or_else(|| n.to_string(), utc_time),
        (Kind::Rate, Value::Number(n)) => n
            .as_f64()
            .map_or_else(|| n.to_string(), |f| format!("{f:.1}")),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Array(a)) => a
            .iter()
            .map(|x| cell(x, Kind::Plain))
            .collect::<Vec<_>>()
            .join(","),
        (_, other) => other.to_string(),
    }
}

/// A table of `items` with `columns`.
pub fn items_table(items: &[Value], columns: &[Column], plain: bool) -> Table {
    let mut t = new_table(plain);
    t.set_header(columns.iter().map(|c| c.title));
    for item in items {
        t.add_row(columns.iter().map(|c| cell(field(item, c.field), c.kind)));
    }
    t
}

/// A two-column table of every leaf of an object, nested keys dotted (`totals.queues`).
pub fn kv_table(v: &Value, plain: bool) -> Table {
    let mut rows = Vec::new();
    flatten("", v, &mut rows);
    let mut t = new_table(plain);
    t.set_header(["key", "value"]);
    for (k, v) in rows {
        t.add_row([k, v]);
    }
    t
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out);
            }
        }
        Value::Array(a) if a.iter().any(Value::is_object) => {
            for (i, child) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), child, out);
            }
        }
        other => out.push((prefix.to_string(), cell(other, Kind::Plain))),
    }
}

/// Writes a line to stdout; a failed write (a closed pipe, a full disk) is EX_IOERR (74).
pub fn print_line(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| CliError::io(format!("writing to stdout: {e}")))
}

/// Prints a value as pretty JSON.
pub fn print_json(v: &Value) -> CliResult {
    let text =
        serde_json::to_string_pretty(v).map_err(|e| CliError::io(format!("encoding JSON: {e}")))?;
    print_line(&text)
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `192_000` → `3m12s`; under a second, `850ms`.
pub fn human_millis(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD hh:mm:ss` UTC (civil-from-days, so no time
/// crate is needed for one format).
pub fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_millis(850), "850ms");
        assert_eq!(human_millis(192_000), "3m12s");
        assert_eq!(human_millis(2 * 86_400_000 + 3_600_000), "2d1h");
        assert_eq!(utc_time(0), "1970-01-01 00:00:00");
        assert_eq!(utc_time(1_796_083_200_000), "2026-12-01 00:00:00");
    }

    #[test]
    fn tables_show_the_columns_and_nested_keys() {
        let items = vec![json!({"name": "q1", "stats": {"n": 3}, "bytes": 2048})];
        let t = items_table(
            &items,
            &[
                col("NAME", "name", Kind::Plain),
                col("N", "stats.n", Kind::Plain),
                col("BYTES", "bytes", Kind::Bytes),
                col("MISSING", "nope", Kind::Plain),
            ],
            true,
        )
        .to_string();
        for s in ["NAME", "q1", "3", "2.0 KiB", "MISSING", "-"] {
            assert!(t.contains(s), "{s} in {t}");
        }
        let kv = kv_table(&json!({"a": {"b": 1}, "c": ["x", "y"]}), true).to_string();
        assert!(kv.contains("a.b") && kv.contains("x,y"), "{kv}");
    }
}

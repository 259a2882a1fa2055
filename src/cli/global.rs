//! Flags every client verb shares (where the broker is, who we are, how to print), merged
//! with a named profile from the contexts file, so an operator types `--context prod`
//! instead of a URL and a password on every call (as NATS contexts and rabbitmqadmin `--node`).

use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use super::error::{CliError, CliResult};

/// The admin API address when neither a flag nor a context names one: `[admin] bind`'s default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:61680";
/// The STOMP address when neither a flag nor a context names one: the default acceptor.
pub const DEFAULT_STOMP: &str = "stomp://127.0.0.1:61613";

/// Global flags of the client verbs (`global = true`: accepted before or after the verb).
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Admin HTTP API base URL [default: http://127.0.0.1:61680].
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "WRENMQ_URL",
        hide_env_values = true
    )]
    pub url: Option<String>,
    /// STOMP address for send/receive, stomp://HOST:PORT [default: stomp://127.0.0.1:61613].
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "WRENMQ_STOMP",
        hide_env_values = true
    )]
    pub stomp: Option<String>,
    /// User name (HTTP basic auth for the admin API, STOMP login for send/receive).
    #[arg(long, global = true, env = "WRENMQ_USER", hide_env_values = true)]
    pub user: Option<String>,
    /// Password for --user.
    #[arg(long, global = true, env = "WRENMQ_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Bearer token for the admin API (instead of --user/--password).
    #[arg(long, global = true, env = "WRENMQ_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Profile from ~/.config/wrenmq/contexts.toml (or $WRENMQ_CONTEXTS) supplying the
    /// flags above.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Print JSON (the API's own objects) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// No table borders, no progress bars, no prompts: for scripts and logs.
    #[arg(long, global = true)]
    pub non_interactive: bool,
}

/// One profile of the contexts file; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Admin API base URL.
    pub url: Option<String>,
    /// STOMP URL.
    pub stomp: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
}

/// The contexts file: `default = "name"` and `[contexts.NAME]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextsFile {
    default: Option<String>,
    #[serde(default)]
    contexts: std::collections::BTreeMap<String, Context>,
}

/// The flags after merging: flag, then context, then built-in default.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Admin API base URL, without a trailing slash.
    pub url: String,
    /// STOMP URL.
    pub stomp: String,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
    /// Print JSON.
    pub json: bool,
    /// Plain output for scripts.
    pub non_interactive: bool,
}

/// Where the contexts file is: `$WRENMQ_CONTEXTS`, else `$XDG_CONFIG_HOME/wrenmq/contexts.toml`,
/// else `~/.config/wrenmq/contexts.toml`.
pub fn contexts_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WRENMQ_CONTEXTS") {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("wrenmq/contexts.toml"));
    }
    std::env::home_dir().map(|h| h.join(".config/wrenmq/contexts.toml"))
}

impl GlobalArgs {
    /// Merges the flags with the selected context. A `--context` that the file does not
    /// have, or a file that does not parse, is an error naming the file (78); without
    /// `--context` a missing file is fine and its `default` context, if any, applies.
    pub fn resolve(&self) -> CliResult<Resolved> {
        let context = match contexts_path() {
            Some(path) => load_context(&path, self.context.as_deref())?,
            None if self.context.is_some() => {
                return Err(CliError::config(
                    "--context given but no contexts file: set $WRENMQ_CONTEXTS or $HOME",
                ));
            }
            None => Context::default(),
        };
        Ok(self.merge(context))
    }

    fn merge(&self, c: Context) -> Resolved {
        let url = self
            .url
            .clone()
            .or(c.url)
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        Resolved {
            url: url.trim_end_matches('/').to_string(),
            stomp: self
                .stomp
                .clone()
                .or(c.stomp)
                .unwrap_or_else(|| DEFAULT_STOMP.to_string()),
            user: self.user.clone().or(c.user),
            password: self.password.clone().or(c.password),
            token: self.token.clone().or(c.token),
            json: self.json,
            non_interactive: self.non_interactive,
        }
    }
}

fn load_context(path: &std::path::Path, wanted: Option<&str>) -> CliResult<Context> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && wanted.is_none() => {
            return Ok(Context::default());
        }
        Err(e) => return Err(CliError::config(format!("{}: {e}", path.display()))),
    };
    let file: ContextsFile = toml::from_str(&text)
        .map_err(|e| CliError::config(format!("{}: {}", path.display(), e.message())))?;
    let Some(name) = wanted.map(str::to_string).or(file.default.clone()) else {
        return Ok(Context::default());
    };
    file.contexts.get(&name).cloned().ok_or_else(|| {
        let known: Vec<&str> = file.contexts.keys().map(String::as_str).collect();
        CliError::config(format!(
            "{}: no context \"{name}\" (known: {})",
            path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// Splits `stomp://host:port` (or `tcp://`, or a bare `host:port`) into host and port.
pub fn stomp_host_port(url: &str) -> CliResult<(String, u16)> {
    let rest = match url.split_once("://") {
        Some(("stomp" | "tcp", rest)) => rest,
        Some((scheme, _)) => {
            return Err(CliError::usage(format!(
                "--stomp {url}: unsupported scheme \"{scheme}\" (use stomp://HOST:PORT)"
            )));
        }
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => {
            let port = p
                .parse::<u16>()
                .map_err(|_| CliError::usage(format!("--stomp {url}: bad port \"{p}\"")))?;
            (h, port)
        }
        None => (rest, 61613),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(CliError::usage(format!("--stomp {url}: no host")));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_context_and_the_context_over_defaults() {
        let flags = GlobalArgs {
            user: Some("flag-user".into()),
            ..GlobalArgs::default()
        };
        let ctx = Context {
            url: Some("http://ctx:1/".into()),
            user: Some("ctx-user".into()),
            password: Some("ctx-pass".into()),
            ..Context::default()
        };
        let r = flags.merge(ctx);
        assert_eq!(r.url, "http://ctx:1");
        assert_eq!(r.user.as_deref(), Some("flag-user"));
        assert_eq!(r.password.as_deref(), Some("ctx-pass"));
        assert_eq!(r.stomp, DEFAULT_STOMP);
    }

    #[test]
    fn a_named_context_must_exist_and_the_file_must_parse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("contexts.toml");
        std::fs::write(
            &path,
            "default = \"a\"\n[contexts.a]\nurl = \"http://a:1\"\n[contexts.b]\nuser = \"u\"\n",
        )
        .expect("write");
        assert_eq!(
            load_context(&path, None).expect("default").url.as_deref(),
            Some("http://a:1")
        );
        assert_eq!(
            load_context(&path, Some("b")).expect("b").user.as_deref(),
            Some("u")
        );
        let missing = load_context(&path, Some("c")).expect_err("no c");
        assert_eq!(missing.code as u8, 78);
        assert!(
            missing.message.contains("known: a, b"),
            "{}",
            missing.message
        );
        std::fs::write(&path, "[contexts.a]\nurll = \"x\"\n").expect("write");
        let bad = load_context(&path, Some("a")).expect_err("unknown key");
        assert!(bad.message.contains("urll"), "{}", bad.message);
        let absent = dir.path().join("none.toml");
        assert!(load_context(&absent, None).is_ok());
        assert!(load_context(&absent, Some("a")).is_err());
    }

    #[test]
    fn stomp_urls() {
        assert_eq!(
            stomp_host_port("stomp://10.0.0.1:61614").expect("ok"),
            ("10.0.0.1".to_string(), 61614)
        );
        assert_eq!(
            stomp_host_port("localhost").expect("ok"),
            ("localhost".to_string(), 61613)
        );
        assert_eq!(
            stomp_host_port("tcp://[::1]:7").expect("ok"),
            ("::1".to_string(), 7)
        );
        assert!(stomp_host_port("ws://x:1").is_err());
        assert!(stomp_host_port("stomp://x:port").is_err());
    }
}

//! What a request on the WebSocket port gets: a checked WebSocket upgrade, or an HTTP answer.
//! Pure decisions over hyper's parsed request, so every refusal is a clear HTTP error that
//! says what would be accepted (tungstenite's own server handshake would just drop some).

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::Settings;
use super::answer::{self, Body};

use super::pages;

/// STOMP subprotocols we accept, best first: the highest one a client offers is chosen.
pub const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// What one request gets.
#[derive(Debug)]
pub enum Route {
    /// A complete answer; the connection closes after it.
    Answer(Response<Body>),
    /// A valid WebSocket upgrade: answer 101 with [`switching_protocols`] and start STOMP with
    /// the chosen subprotocol (`None`: the client offered none, which stompjs and others may
    /// do, and STOMP is assumed).
    Upgrade(Option<&'static str>),
}

/// Decides what `request` gets.
pub fn route<B>(request: &Request<B>, settings: &Settings) -> Route {
    if !has_token(request.headers(), header::UPGRADE, "websocket") {
        return Route::Answer(pages::plain_http(request, settings));
    }
    match check_upgrade(request, settings) {
        Ok(subprotocol) => Route::Upgrade(subprotocol),
        Err(refusal) => Route::Answer(refusal.into_response()),
    }
}

/// The 101 answer to an upgrade [`route`] accepted. `Sec-WebSocket-Accept` is tungstenite's
/// derivation from the client's key (RFC 6455 section 4.2.2).
pub fn switching_protocols<B>(
    request: &Request<B>,
    subprotocol: Option<&'static str>,
) -> Response<Body> {
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    // The derived key is base64, always a valid header value.
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key)) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(p) = subprotocol {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    response
}

/// Why an upgrade is refused: the status, a text saying what would be accepted, and maybe a
/// header naming what to send instead (`Allow`, `Sec-WebSocket-Version`).
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    text: String,
    header: Option<(header::HeaderName, &'static str)>,
}

impl Refusal {
    fn new(status: StatusCode, text: impl Into<String>) -> Self {
        Refusal {
            status,
            text: text.into(),
            header: None,
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }

    fn into_response(self) -> Response<Body> {
        let response = answer::text(self.status, self.text);
        match self.header {
            Some((name, value)) => answer::with_header(response, name, value),
            None => response,
        }
    }
}

/// Checks an upgrade request and picks the subprotocol to echo.
fn check_upgrade<B>(
    request: &Request<B>,
    settings: &Settings,
) -> Result<Option<&'static str>, Refusal> {
    if request.method() != Method::GET {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade must use GET\n",
        )
        .with_header(header::ALLOW, "GET"));
    }
    let path = request.uri().path();
    if !settings.paths.iter().any(|p| p == path) {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!(
                "no WebSocket endpoint at {path}; STOMP over WebSocket is served at {}\n",
                settings.paths.join(", ")
            ),
        ));
    }
    if request.version() != Version::HTTP_11 {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs HTTP/1.1\n",
        ));
    }
    let headers = request.headers();
    check_origin(headers, settings)?;
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs `Connection: Upgrade`\n",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13".as_slice())
    {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 (RFC 6455) is supported\n",
        )
        .with_header(header::SEC_WEBSOCKET_VERSION, "13"));
    }
    if !headers
        .get(header::SEC_WEBSOCKET_KEY)
        .is_some_and(|k| is_valid_key(k.as_bytes()))
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "missing or malformed Sec-WebSocket-Key (must be 16 bytes in base64)\n",
        ));
    }
    let offered = tokens(headers, header::SEC_WEBSOCKET_PROTOCOL);
    if offered.is_empty() {
        return Ok(None);
    }
    match SUBPROTOCOLS
        .iter()
        .find(|known| offered.iter().any(|o| o.eq_ignore_ascii_case(known)))
    {
        Some(p) => Ok(Some(p)),
        None => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!(
                "unsupported WebSocket subprotocol(s): {}; this endpoint speaks {} (or offer none)\n",
                offered.join(", "),
                SUBPROTOCOLS.join(", ")
            ),
        )),
    }
}

/// Comma-separated tokens of every header line called `name`, trimmed.
fn tokens(headers: &HeaderMap, name: header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|t| t.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    tokens(headers, name)
        .iter()
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// Refuses a browser upgrade from a page of another site (HTTP 403). Browsers let any page
/// open a WebSocket to any address, `ws://127.0.0.1:…` included, and send the page's origin;
/// without this check any web site a user visits could use a broker on their machine or
/// network. A request without `Origin` is not from a browser page and is accepted.
fn check_origin(headers: &HeaderMap, settings: &Settings) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes());
    let origin = origin.trim();
    let allowed = match &settings.allowed_origins {
        Some(list) => list
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin)),
        None => headers.get(header::HOST).is_some_and(|host| {
            same_origin(
                origin,
                &String::from_utf8_lossy(host.as_bytes()),
                settings.tls,
            )
        }),
    };
    if allowed {
        return Ok(());
    }
    let hint = match &settings.allowed_origins {
        Some(list) => format!("ws-allowed-origins lists {}", list.join(", ")),
        None => "by default only requests without Origin or from this acceptor's own origin are \
                 accepted; list the page's origin in the acceptor's ws-allowed-origins"
            .to_string(),
    };
    Err(Refusal::new(
        StatusCode::FORBIDDEN,
        format!("WebSocket upgrade from origin {origin} refused: {hint}\n"),
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port as the request's
/// `Host` header, i.e. the page was served by this acceptor (its web console).
fn same_origin(origin: &str, host: &str, tls: bool) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let scheme_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return false,
    };
    let Some((origin_host, origin_port)) = host_and_port(rest, scheme_port) else {
        return false;
    };
    let Some((host_host, host_port)) = host_and_port(host.trim(), if tls { 443 } else { 80 })
    else {
        return false;
    };
    origin_host.eq_ignore_ascii_case(host_host) && origin_port == host_port
}

/// Splits `host[:port]` (IPv6 in brackets) into host and port, with `default` when absent.
fn host_and_port(text: &str, default: u16) -> Option<(&str, u16)> {
    let (host, port) = match text.rfind(':') {
        Some(at) if !text[at..].contains(']') => (&text[..at], Some(&text[at + 1..])),
        _ => (text, None),
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    (!host.is_empty()).then_some((host, port))
}

/// A Sec-WebSocket-Key is 16 random bytes in base64: 22 significant characters and `==`.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(extra: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/stomp")
            .header("Host", "x")
            .header("Upgrade", "websocket")
            .header("Connection", "keep-alive, Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap_or_default()
    }

    fn chosen(request: &Request<()>) -> Result<Option<&'static str>, u16> {
        check_upgrade(request, &Settings::for_test()).map_err(|r| r.status.as_u16())
    }

    #[test]
    fn highest_offered_subprotocol_wins() {
        let r = upgrade(&[
            ("Sec-WebSocket-Protocol", "v10.stomp, v12.stomp"),
            ("Sec-WebSocket-Protocol", "v11.stomp"),
        ]);
        assert_eq!(chosen(&r), Ok(Some("v12.stomp")));
        let r = upgrade(&[("Sec-WebSocket-Protocol", "v10.stomp")]);
        assert_eq!(chosen(&r), Ok(Some("v10.stomp")));
    }

    #[test]
    fn no_subprotocol_is_stomp_and_unknown_only_is_refused() {
        assert_eq!(chosen(&upgrade(&[])), Ok(None));
        let r = upgrade(&[("Sec-WebSocket-Protocol", "mqtt")]);
        assert_eq!(chosen(&r), Err(400));
    }

    #[test]
    fn the_accept_key_is_the_rfc_6455_example() {
        let response = switching_protocols(&upgrade(&[]), Some("v12.stomp"));
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let accept = response.headers().get(header::SEC_WEBSOCKET_ACCEPT);
        // RFC 6455 section 1.3's key and its answer.
        assert_eq!(
            accept.map(HeaderValue::as_bytes),
            Some(b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".as_slice())
        );
        let protocol = response.headers().get(header::SEC_WEBSOCKET_PROTOCOL);
        assert_eq!(
            protocol.map(HeaderValue::as_bytes),
            Some(b"v12.stomp".as_slice())
        );
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        assert!(same_origin(
            "http://127.0.0.1:61614",
            "127.0.0.1:61614",
            false
        ));
        assert!(same_origin("http://Example.com", "example.com", false));
        assert!(same_origin("https://example.com", "example.com:443", true));
        assert!(same_origin("http://[::1]:8080", "[::1]:8080", false));
        assert!(!same_origin("http://[::1]", "[::1]:8080", false));
        assert!(!same_origin(
            "http://evil.example",
            "127.0.0.1:61614",
            false
        ));
        assert!(!same_origin("http://127.0.0.1:1", "127.0.0.1:61614", false));
        assert!(!same_origin("null", "127.0.0.1:61614", false));
        assert!(!same_origin("file://x", "x", false));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"short=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ!="));
    }
}

//! Requests on the WebSocket port that are not upgrades: the web console page, the stompjs
//! bundle it loads, and clear answers for everything else.

use bytes::Bytes;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};

use super::Settings;
use super::answer::{self, Body};
use super::handshake::SUBPROTOCOLS;

/// The live web console: connect, subscribe, send and watch messages from a browser.
const CONSOLE_HTML: &[u8] = include_bytes!("../../../web/console.html");
/// The `@stomp/stompjs` UMD bundle the console uses, served by the broker itself so that the
/// console works without any outside network (version and licence in `web/vendor/README.md`).
const STOMPJS: &[u8] = include_bytes!("../../../web/vendor/stomp.umd.min.js");
/// Paths of the console page.
const CONSOLE_PATHS: [&str; 2] = ["/", "/index.html"];
/// Paths of the stompjs bundle (the second is the file's name in the npm package).
const STOMPJS_PATHS: [&str; 2] = ["/stompjs.umd.min.js", "/stomp.umd.min.js"];

/// Answers a request that is not a WebSocket upgrade. A HEAD request gets the same head
/// (hyper sends no body for HEAD).
pub fn plain_http<B>(request: &Request<B>, settings: &Settings) -> Response<Body> {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return answer::with_header(
            answer::text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} not allowed; use GET\n"),
            ),
            header::ALLOW,
            "GET, HEAD",
        );
    }
    let path = request.uri().path();
    if CONSOLE_PATHS.contains(&path) {
        answer::new(
            StatusCode::OK,
            "text/html; charset=utf-8",
            Bytes::from_static(CONSOLE_HTML),
        )
    } else if STOMPJS_PATHS.contains(&path) {
        answer::new(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            Bytes::from_static(STOMPJS),
        )
    } else if settings.paths.iter().any(|p| p == path) {
        answer::with_header(
            answer::text(
                StatusCode::UPGRADE_REQUIRED,
                format!(
                    "{path} is a STOMP-over-WebSocket endpoint: connect with a WebSocket client \
                     (subprotocols {}). The web console is at /.\n",
                    SUBPROTOCOLS.join(", ")
                ),
            ),
            header::UPGRADE,
            "websocket",
        )
    } else {
        answer::text(
            StatusCode::NOT_FOUND,
            format!("nothing at {path}; the web console is at /\n"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(method: Method, path: &str) -> u16 {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap_or_default();
        plain_http(&request, &Settings::for_test())
            .status()
            .as_u16()
    }

    #[test]
    fn plain_get_routes() {
        assert_eq!(status(Method::GET, "/"), 200);
        assert_eq!(status(Method::GET, "/index.html"), 200);
        assert_eq!(status(Method::GET, "/index.html?x=1"), 200);
        assert_eq!(status(Method::GET, "/stompjs.umd.min.js"), 200);
        assert_eq!(status(Method::HEAD, "/"), 200);
        assert_eq!(status(Method::GET, "/stomp"), 426);
        assert_eq!(status(Method::GET, "/nope"), 404);
        assert_eq!(status(Method::POST, "/"), 405);
    }

    #[test]
    fn answers_close_the_connection() {
        let request = Request::get("/nope").body(()).unwrap_or_default();
        let response = plain_http(&request, &Settings::for_test());
        let connection = response.headers().get(header::CONNECTION);
        assert_eq!(connection.and_then(|v| v.to_str().ok()), Some("close"));
    }
}

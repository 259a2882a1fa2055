//! The HTTP answers of the WebSocket port other than the 101: complete (length known, body
//! included) and closing the connection, so a client is never left waiting on the socket.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

/// The body type of every answer of the WebSocket port: whole, with a known length.
pub type Body = Full<Bytes>;

/// A response with the headers every answer of this port carries.
pub fn new(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // One request per connection: the next request (a WebSocket upgrade after the console
    // page) opens its own, which the connection limits count like any other.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A plain-text answer, usually an error that says what was wrong and what would work.
pub fn text(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    new(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(text.into()),
    )
}

/// Adds a header such as `Allow` or `Sec-WebSocket-Version` that tells the client what to
/// send instead.
pub fn with_header(
    mut response: Response<Body>,
    name: HeaderName,
    value: &'static str,
) -> Response<Body> {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
    response
}

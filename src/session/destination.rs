//! Maps a STOMP destination string to a core [`Destination`]: acceptor prefixes decide the
//! routing type (and are stripped), otherwise the `destination-type` / `subscription-type`
//! header does, and `address::queue` names one queue.

use crate::broker::{Destination, RoutingType, TemporaryKind};
use crate::config::AcceptorConfig;

/// RabbitMQ's and ActiveMQ's prefix for a connection's temporary queue.
pub const TEMP_QUEUE: &str = "/temp-queue/";
/// RabbitMQ's and ActiveMQ's prefix for a connection's temporary topic.
pub const TEMP_TOPIC: &str = "/temp-topic/";

/// Recognizes `/temp-queue/NAME` and `/temp-topic/NAME`: `None` for any other destination,
/// an error for one without a NAME. NAME is the client's own label, scoped to its connection.
pub fn temporary_destination(text: &str) -> Option<Result<(TemporaryKind, &str), String>> {
    let (kind, name) = if let Some(rest) = text.strip_prefix(TEMP_QUEUE) {
        (TemporaryKind::Queue, rest)
    } else if let Some(rest) = text.strip_prefix(TEMP_TOPIC) {
        (TemporaryKind::Topic, rest)
    } else {
        return None;
    };
    if name.is_empty() {
        return Some(Err(format!(
            "destination '{text}' names no temporary destination (expected {TEMP_QUEUE}NAME or {TEMP_TOPIC}NAME)"
        )));
    }
    Some(Ok((kind, name)))
}

/// Resolves `text` as this acceptor understands it. `type_header` is the value of
/// `destination-type` (SEND) or `subscription-type` (SUBSCRIBE), if any.
pub fn map_destination(
    acceptor: &AcceptorConfig,
    text: &str,
    type_header: Option<(&str, &str)>,
) -> Result<Destination, String> {
    let explicit = match type_header {
        Some((name, value)) => Some(RoutingType::parse(value).ok_or_else(|| {
            format!("header '{name}' must be ANYCAST or MULTICAST, not '{value}'")
        })?),
        None => None,
    };
    let (name, routing) = if let Some(rest) = strip(text, &acceptor.anycast_prefix) {
        (rest, Some(RoutingType::Anycast))
    } else if let Some(rest) = strip(text, &acceptor.multicast_prefix) {
        (rest, Some(RoutingType::Multicast))
    } else {
        (text, explicit)
    };
    if name.is_empty() {
        return Err(format!("destination '{text}' names no address"));
    }
    let dest = Destination::parse(name, routing);
    if dest.address.is_empty() || dest.queue.as_deref() == Some("") {
        return Err(format!(
            "destination '{text}' is not a valid fully qualified queue name (address::queue)"
        ));
    }
    Ok(dest)
}

fn strip<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        None
    } else {
        text.strip_prefix(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_acceptors;

    fn acceptor() -> AcceptorConfig {
        default_acceptors().remove(0)
    }

    #[test]
    fn prefixes_choose_routing_and_are_stripped() {
        let a = acceptor();
        let d = map_destination(&a, "/queue/orders", None).unwrap();
        assert_eq!(d.address, "orders");
        assert_eq!(d.routing, Some(RoutingType::Anycast));
        let d = map_destination(&a, "/topic/news.eu", None).unwrap();
        assert_eq!(d.address, "news.eu");
        assert_eq!(d.routing, Some(RoutingType::Multicast));
    }

    #[test]
    fn header_decides_without_prefix() {
        let a = acceptor();
        let d = map_destination(&a, "orders", Some(("destination-type", "ANYCAST"))).unwrap();
        assert_eq!(d.routing, Some(RoutingType::Anycast));
        assert!(map_destination(&a, "orders", Some(("destination-type", "x"))).is_err());
        let d = map_destination(&a, "orders", None).unwrap();
        assert_eq!(d.routing, None);
    }

    #[test]
    fn temporary_prefixes() {
        assert_eq!(
            temporary_destination("/temp-queue/r"),
            Some(Ok((TemporaryKind::Queue, "r")))
        );
        assert_eq!(
            temporary_destination("/temp-topic/a.b"),
            Some(Ok((TemporaryKind::Topic, "a.b")))
        );
        assert!(matches!(
            temporary_destination("/temp-queue/"),
            Some(Err(_))
        ));
        assert_eq!(temporary_destination("/queue/temp-queue/r"), None);
        assert_eq!(temporary_destination("temp-queue.x"), None);
    }

    #[test]
    fn fully_qualified_queue_names() {
        let a = acceptor();
        let d = map_destination(&a, "orders::eu", None).unwrap();
        assert_eq!(d.address, "orders");
        assert_eq!(d.queue.as_deref(), Some("eu"));
        assert!(map_destination(&a, "orders::", None).is_err());
        assert!(map_destination(&a, "/queue/", None).is_err());
    }
}

//! Core tests without any network: routing, dispatch, windows, acks and redelivery.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::*;
use crate::config::{AddressSettingsEntry, Config};

#[derive(Default)]
struct Collect(Mutex<Vec<Delivery>>);

impl DeliverySink for Collect {
    fn deliver(&self, d: Delivery) -> bool {
        self.0.lock().unwrap().push(d);
        true
    }
}

impl Collect {
    fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn draft(body: &str) -> MessageDraft {
    MessageDraft {
        destination: "/queue/q".into(),
        properties: vec![],
        body: Bytes::from(body.to_string()).into(),
        persistent: Some(false),
        priority: 4,
        expires: 0,
        deliver_at: 0,
        origin: None,
    }
}

fn bodies(ds: &[Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| String::from_utf8_lossy(d.message.body.inline().unwrap()).into_owned())
        .collect()
}

fn consumer(
    broker: &Arc<Broker>,
    dest: Destination,
    window: Option<u32>,
) -> (ConsumerHandle, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let h = broker
        .subscribe(SubscribeSpec {
            destination: dest,
            window: Window {
                messages: window,
                bytes: None,
            },
            sink: sink.clone(),
            durable_name: None,
            reader: None,
            subscriber: Default::default(),
            priority: 0,
            selector: None,
            no_local: None,
            stream: Default::default(),
            connection: None,
            exclusive: false,
        })
        .unwrap();
    h.start();
    (h, sink)
}

fn anycast(name: &str) -> Destination {
    Destination::parse(name, Some(RoutingType::Anycast))
}

fn multicast(name: &str) -> Destination {
    Destination::parse(name, Some(RoutingType::Multicast))
}

#[test]
fn anycast_round_robins_between_consumers() {
    let b = Broker::new(&Config::default()).unwrap();
    let (_h1, s1) = consumer(&b, anycast("q"), None);
    let (_h2, s2) = consumer(&b, anycast("q"), None);
    for i in 0..6 {
        b.send(&anycast("q"), draft(&i.to_string())).unwrap();
    }
    assert_eq!(bodies(&s1.take()), ["0", "2", "4"]);
    assert_eq!(bodies(&s2.take()), ["1", "3", "5"]);
}

#[test]
fn multicast_copies_share_one_body() {
    let b = Broker::new(&Config::default()).unwrap();
    let subs: Vec<_> = (0..3).map(|_| consumer(&b, multicast("t"), None)).collect();
    b.send(&multicast("t"), draft("hello")).unwrap();
    let got: Vec<Delivery> = subs.iter().flat_map(|(_, s)| s.take()).collect();
    assert_eq!(got.len(), 3);
    let ptr = got[0].message.body.inline().unwrap().as_ptr();
    assert!(
        got.iter()
            .all(|d| d.message.body.inline().unwrap().as_ptr() == ptr)
    );
}

#[test]
fn topic_without_subscribers_drops_and_wildcards_match() {
    let b = Broker::new(&Config::default()).unwrap();
    let r = b.send(&multicast("news.eu"), draft("x")).unwrap();
    assert!(r.queues.is_empty());
    let (_h, all) = consumer(&b, multicast("news.#"), None);
    let (_h2, one) = consumer(&b, multicast("news.*"), None);
    b.send(&multicast("news.eu"), draft("a")).unwrap();
    b.send(&multicast("news.eu.sport"), draft("b")).unwrap();
    b.send(&multicast("news"), draft("c")).unwrap();
    assert_eq!(bodies(&all.take()), ["a", "b", "c"]);
    assert_eq!(bodies(&one.take()), ["a"]);
}

#[test]
fn window_holds_consumer_until_acked() {
    let b = Broker::new(&Config::default()).unwrap();
    let (h, s) = consumer(&b, anycast("q"), Some(2));
    for i in 0..5 {
        b.send(&anycast("q"), draft(&i.to_string())).unwrap();
    }
    let first = s.take();
    assert_eq!(bodies(&first), ["0", "1"]);
    let tags = h
        .settle(AckTarget::Tag(first[0].tag), false, false)
        .unwrap();
    drop(h.complete(&tags, Outcome::Ack));
    assert_eq!(bodies(&s.take()), ["2"]);
}

#[test]
fn cumulative_ack_covers_earlier_deliveries() {
    let b = Broker::new(&Config::default()).unwrap();
    let (h, s) = consumer(&b, anycast("q"), None);
    for i in 0..3 {
        b.send(&anycast("q"), draft(&i.to_string())).unwrap();
    }
    let got = s.take();
    let tags = h.settle(AckTarget::Tag(got[1].tag), true, false).unwrap();
    assert_eq!(tags, vec![got[0].tag, got[1].tag]);
    drop(h.complete(&tags, Outcome::Ack));
    let q = b.queue("q").unwrap();
    assert_eq!(q.message_count(), 1);
}

#[test]
fn returned_messages_keep_their_order_and_count() {
    let b = Broker::new(&Config::default()).unwrap();
    let (h1, s1) = consumer(&b, anycast("q"), None);
    for i in 0..4 {
        b.send(&anycast("q"), draft(&i.to_string())).unwrap();
    }
    let got = s1.take();
    // Nack the third, then leave with the rest unacked.
    let tags = h1.settle(AckTarget::Tag(got[2].tag), false, false).unwrap();
    drop(h1.complete(&tags, Outcome::Nack));
    let again = s1.take();
    assert_eq!(bodies(&again), ["2"]);
    assert_eq!(again[0].delivery_count, 2);
    h1.close();
    let (_h2, s2) = consumer(&b, anycast("q"), None);
    let back = s2.take();
    assert_eq!(bodies(&back), ["0", "1", "2", "3"]);
    assert!(back.iter().all(|d| d.delivery_count >= 2));
}

#[test]
fn auto_create_off_refuses_missing_destinations() {
    let cfg = Config {
        address_settings: vec![AddressSettingsEntry {
            pattern: "#".into(),
            auto_create_addresses: Some(false),
            auto_create_queues: Some(false),
            ..Default::default()
        }],
        ..Config::default()
    };
    let b = Broker::new(&cfg).unwrap();
    assert_eq!(
        b.send(&anycast("nope"), draft("x")).unwrap_err(),
        BrokerError::NoSuchAddress("nope".into())
    );
}

#[test]
fn non_durable_subscription_queue_goes_with_its_subscriber() {
    let b = Broker::new(&Config::default()).unwrap();
    let (h, _s) = consumer(&b, multicast("t"), None);
    assert_eq!(b.queues_of("t").len(), 1);
    h.close();
    assert!(b.queues_of("t").is_empty());
    assert!(!b.address_names().contains(&"t".to_string()));
}

#[test]
fn fully_qualified_queue_name_targets_one_queue() {
    let b = Broker::new(&Config::default()).unwrap();
    let (_h1, s1) = consumer(&b, Destination::parse("orders::eu", None), None);
    let (_h2, s2) = consumer(&b, Destination::parse("orders::us", None), None);
    b.send(&Destination::parse("orders::eu", None), draft("x"))
        .unwrap();
    assert_eq!(bodies(&s1.take()), ["x"]);
    assert!(s2.take().is_empty());
}

#[test]
fn address_limit_blocks_until_messages_go() {
    let mut cfg = Config::default();
    cfg.address_settings[0].max_size_bytes = Some(10);
    let b = Broker::new(&cfg).unwrap();
    let dest = anycast("q");
    b.send(&dest, draft("0123456789ab")).unwrap();
    assert!(matches!(b.capacity(&dest), Capacity::Blocked(_)));
    let (h, s) = consumer(&b, dest.clone(), None);
    let got = s.take();
    let tags = h.settle(AckTarget::Tag(got[0].tag), false, false).unwrap();
    drop(h.complete(&tags, Outcome::Ack));
    drop(got);
    assert!(matches!(b.capacity(&dest), Capacity::Available));
}

//! A predicate over messages, compiled once: a configured queue's `filter`, a subscription's
//! `selector`. The core only needs "does this message match"; how the text was parsed (the
//! JMS selector language, `crate::selector`) stays out of the queue.

use std::borrow::Cow;
use std::sync::Arc;

use super::message::Message;
use crate::selector::{Properties, Selector, SelectorError, Value};

/// A compiled message filter with the text it came from.
#[derive(Clone)]
pub struct Filter {
    text: Arc<str>,
    test: Arc<dyn Fn(&Message) -> bool + Send + Sync>,
}

impl Filter {
    /// A filter from its text and its compiled test.
    pub fn new(text: &str, test: impl Fn(&Message) -> bool + Send + Sync + 'static) -> Filter {
        Filter {
            text: Arc::from(text),
            test: Arc::new(test),
        }
    }

    /// A JMS selector (`selector` header, a queue's `filter`), parsed once.
    pub fn selector(text: &str) -> Result<Filter, SelectorError> {
        let selector = Selector::parse(text)?;
        Ok(Filter::new(text, move |m| {
            selector.matches(&MessageProperties(m))
        }))
    }

    /// Whether `message` passes.
    pub fn matches(&self, message: &Message) -> bool {
        (self.test)(message)
    }

    /// The text it was compiled from (stored with durable queues, compared on re-subscribe).
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Filter").field(&self.text).finish()
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.text == other.text
    }
}

/// A message as a selector sees it: its headers by name (strings, compared numerically
/// with numeric literals when they hold a number), and the JMS / Artemis names for what the
/// broker knows of it.
struct MessageProperties<'a>(&'a Message);

impl Properties for MessageProperties<'_> {
    fn property(&self, name: &str) -> Option<Value<'_>> {
        let m = self.0;
        let int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
        Some(match name {
            "JMSPriority" | "AMQPriority" => Value::Int(i64::from(m.priority)),
            "JMSTimestamp" | "AMQTimestamp" => int(m.timestamp),
            "JMSExpiration" | "AMQExpiration" => int(m.expires),
            "JMSMessageID" => Value::Str(Cow::Owned(m.id.to_string())),
            "JMSCorrelationID" => Value::Str(Cow::Borrowed(m.property("correlation-id")?)),
            "JMSType" => Value::Str(Cow::Borrowed(m.property("type")?)),
            "JMSDeliveryMode" => Value::Str(Cow::Borrowed(if m.persistent {
                "PERSISTENT"
            } else {
                "NON_PERSISTENT"
            })),
            "AMQDurable" => Value::Str(Cow::Borrowed(if m.persistent {
                "DURABLE"
            } else {
                "NON_DURABLE"
            })),
            "AMQSize" => int(m.size() as u64),
            "AMQAddress" => Value::Str(Cow::Borrowed(&m.address)),
            _ => Value::Str(Cow::Borrowed(m.property(name)?)),
        })
    }
}

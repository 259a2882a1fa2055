//! What operators do to the registry (the admin API and CLI): list and inspect addresses and
//! queues, create and delete them, and remove, move, copy or retry messages. Each operation is
//! one short critical section on the registry or a queue; what must be stored goes through the
//! journal like any other change, and a moved message is stored at its new place before it is
//! forgotten at the old one, so a crash in between can duplicate it but never lose it.

use std::sync::Arc;

use super::{Broker, Destination, MessageDraft, QueueOrigin, QueueTraits, configured_filter};
use crate::broker::error::BrokerError;
use crate::broker::filter::Filter;
use crate::broker::flow::AddressUsage;
use crate::broker::message::Message;
use crate::broker::queue::{Queue, QueueKindKeys};
use crate::broker::stats::add;
use crate::broker::{RoutingType, Stored};
use crate::security::{Authorizer, Permission};

/// Most messages taken out of a queue under one hold of its lock: a purge of millions is many
/// short critical sections, so dispatch is never held up for long.
const REMOVE_BATCH: usize = 10_000;

/// The `_AMQ_ORIG_*` headers a dead letter or expired message carries (see `divert.rs`).
const ORIG_ADDRESS: &str = "_AMQ_ORIG_ADDRESS";
const ORIG_QUEUE: &str = "_AMQ_ORIG_QUEUE";
const ORIG_PREFIX: &str = "_AMQ_ORIG_";

/// One address as operators see it.
#[derive(Debug, Clone)]
pub struct AddressView {
    /// Its name.
    pub name: Arc<str>,
    /// Whether it routes anycast.
    pub anycast: bool,
    /// Whether it routes multicast.
    pub multicast: bool,
    /// Created on first use rather than declared.
    pub auto_created: bool,
    /// Its queues.
    pub queues: Vec<Arc<Queue>>,
    /// Its memory counter, with its routing counters.
    pub usage: Arc<AddressUsage>,
}

/// Which messages a removal, move, copy or retry takes.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Only these message ids (all when `None`).
    pub ids: Option<Vec<u64>>,
    /// Only messages this selector matches.
    pub selector: Option<Filter>,
    /// At most this many, in offer order.
    pub limit: Option<usize>,
}

impl MessageFilter {
    fn matches(&self, m: &Message) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&m.id))
            && self.selector.as_ref().is_none_or(|s| s.matches(m))
    }
}

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// No such address or queue.
    #[error("{0}")]
    NotFound(String),
    /// It exists in a form that conflicts with the request (a queue of another address, an
    /// address that still has queues, a non-empty queue with `if_empty`).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The core refused it (permissions, limits).
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// What a new queue is to be.
#[derive(Debug, Clone)]
pub struct NewQueueSpec {
    /// Its address (created if missing).
    pub address: String,
    /// Its routing type.
    pub routing: RoutingType,
    /// Whether it survives a restart.
    pub durable: bool,
    /// A selector only matching messages pass.
    pub filter: Option<String>,
    /// Queue-kind keys (exclusive, last-value, ring, non-destructive...).
    pub kind: QueueKindKeys,
}

impl Broker {
    /// Every queue, by name.
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        let mut v: Vec<Arc<Queue>> = self.read().queues.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Every address, by name.
    pub fn addresses(&self) -> Vec<AddressView> {
        let reg = self.read();
        let mut v: Vec<AddressView> = reg
            .addresses
            .iter()
            .map(|(name, a)| AddressView {
                name: Arc::clone(name),
                anycast: a.anycast,
                multicast: a.multicast,
                auto_created: a.auto_created,
                queues: a.queues.clone(),
                usage: Arc::clone(&a.usage),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// One address.
    pub fn address(&self, name: &str) -> Option<AddressView> {
        let reg = self.read();
        reg.addresses.get_key_value(name).map(|(n, a)| AddressView {
            name: Arc::clone(n),
            anycast: a.anycast,
            multicast: a.multicast,
            auto_created: a.auto_created,
            queues: a.queues.clone(),
            usage: Arc::clone(&a.usage),
        })
    }

    /// Creates an address with these routing types, or adds them to an existing one
    /// (idempotent). Returns whether anything changed.
    pub fn declare_address(
        &self,
        name: &str,
        anycast: bool,
        multicast: bool,
        auth: &dyn Authorizer,
    ) -> Result<bool, ManageError> {
        if name.is_empty() {
            return Err(ManageError::Invalid("an address needs a name".into()));
        }
        self.check_address_words(name)?;
        let mut reg = self.write();
        let key: Arc<str> = Arc::from(name);
        let mut changed = false;
        if !reg.addresses.contains_key(name) {
            auth.authorize(Permission::CreateAddress, name)
                .map_err(BrokerError::from)?;
            let entry = self.new_address_entry(&key, false);
            reg.insert_address(Arc::clone(&key), entry);
            changed = true;
        }
        if let Some(a) = reg.addresses.get_mut(name) {
            changed |= (anycast && !a.anycast) || (multicast && !a.multicast);
            a.anycast |= anycast;
            a.multicast |= multicast;
        }
        Ok(changed)
    }

    /// Deletes an address. With queues it is refused unless `force`, which deletes them and
    /// their messages too. Returns whether it existed.
    pub fn delete_address(
        &self,
        name: &str,
        force: bool,
        auth: &dyn Authorizer,
    ) -> Result<bool, ManageError> {
        let mut reg = self.write();
        let Some(a) = reg.addresses.get(name) else {
            return Ok(false);
        };
        auth.authorize(Permission::DeleteAddress, name)
            .map_err(BrokerError::from)?;
        let queues = a.queues.clone();
        if !queues.is_empty() && !force {
            return Err(ManageError::Conflict(format!(
                "address '{name}' has {} queue(s); delete them first or pass force=true",
                queues.len()
            )));
        }
        for q in &queues {
            q.mark_deleted(true);
            self.unregister_queue(&mut reg, q);
        }
        reg.addresses.remove(name);
        reg.wildcard_addresses.retain(|w| &**w != name);
        Ok(true)
    }

    /// Creates a queue (and its address if missing). Idempotent when a queue of that name
    /// already exists on the same address with the same routing type; a different one is a
    /// conflict.
    pub fn declare_queue(
        &self,
        name: &str,
        spec: NewQueueSpec,
        auth: &dyn Authorizer,
    ) -> Result<(Arc<Queue>, bool), ManageError> {
        if name.is_empty() || name.contains("::") {
            return Err(ManageError::Invalid(format!(
                "'{name}' is not a valid queue name (empty, or contains '::')"
            )));
        }
        let filter =
            configured_filter(&spec.filter).map_err(|e| ManageError::Invalid(e.to_string()))?;
        match spec.routing {
            RoutingType::Anycast => self.declare_address(&spec.address, true, false, auth)?,
            RoutingType::Multicast => self.declare_address(&spec.address, false, true, auth)?,
        };
        let mut reg = self.write();
        if let Some(q) = reg.queues.get(name) {
            if *q.address != *spec.address || q.routing != spec.routing {
                return Err(ManageError::Conflict(format!(
                    "queue '{name}' exists on address '{}' ({})",
                    q.address, q.routing
                )));
            }
            return Ok((Arc::clone(q), false));
        }
        let perm = if spec.durable {
            Permission::CreateDurableQueue
        } else {
            Permission::CreateNonDurableQueue
        };
        auth.authorize(perm, &spec.address)
            .map_err(BrokerError::from)?;
        let address: Arc<str> = match reg.addresses.get_key_value(spec.address.as_str()) {
            Some((k, _)) => Arc::clone(k),
            None => return Err(ManageError::NotFound(format!("address '{}'", spec.address))),
        };
        let q = self.create_queue(
            &mut reg,
            &address,
            Arc::from(name),
            spec.routing,
            QueueOrigin::Configured {
                durable: spec.durable,
                incarnation: None,
            },
            QueueTraits {
                filter,
                kind_keys: spec.kind,
                ..QueueTraits::default()
            },
        );
        Ok((q, true))
    }

    /// Deletes a queue and its messages. `if_empty` / `if_unused` refuse a queue that holds
    /// messages / has consumers. Returns whether it existed.
    pub fn delete_queue(
        &self,
        name: &str,
        if_empty: bool,
        if_unused: bool,
        auth: &dyn Authorizer,
    ) -> Result<bool, ManageError> {
        let mut reg = self.write();
        let Some(q) = reg.queues.get(name).cloned() else {
            return Ok(false);
        };
        let perm = if q.durable {
            Permission::DeleteDurableQueue
        } else {
            Permission::DeleteNonDurableQueue
        };
        auth.authorize(perm, &q.address)
            .map_err(BrokerError::from)?;
        if if_empty && q.message_count() > 0 {
            return Err(ManageError::Conflict(format!(
                "queue '{name}' holds {} message(s) (if_empty)",
                q.message_count()
            )));
        }
        if if_unused && q.consumer_count() > 0 {
            return Err(ManageError::Conflict(format!(
                "queue '{name}' has {} consumer(s) (if_unused)",
                q.consumer_count()
            )));
        }
        q.mark_deleted(true);
        self.unregister_queue(&mut reg, &q);
        Ok(true)
    }

    /// Takes the messages `which` selects out of `queue` (waiting or scheduled, not those
    /// out with consumers nor those paged to disk), in offer order. Their journal records
    /// are not touched: the caller forgets them ([`Broker::forget`]) once whatever replaces
    /// them is stored.
    fn take_messages(&self, queue: &Arc<Queue>, which: &MessageFilter) -> Vec<Arc<Message>> {
        let mut out = Vec::new();
        let mut left = which.limit.unwrap_or(usize::MAX);
        while left > 0 {
            let batch = queue.remove_where(|m| which.matches(m), left.min(REMOVE_BATCH));
            let n = batch.len();
            out.extend(batch);
            left = left.saturating_sub(n);
            if n < REMOVE_BATCH {
                break;
            }
        }
        out
    }

    /// Forgets taken messages in the journal and counts them as removed by an operator.
    fn forget(&self, queue: &Queue, messages: &[Arc<Message>]) -> Stored {
        let mut ops = Vec::new();
        queue.record_removals(messages, &mut ops);
        add(&queue.stats.removed, messages.len() as u64);
        self.store(ops)
    }

    /// Removes messages from a queue for good (purge, delete one). `manage` on its address.
    pub fn remove_messages(
        &self,
        queue: &Arc<Queue>,
        which: &MessageFilter,
        auth: &dyn Authorizer,
    ) -> Result<(usize, Stored), ManageError> {
        auth.authorize(Permission::Manage, &queue.address)
            .map_err(BrokerError::from)?;
        let taken = self.take_messages(queue, which);
        let stored = self.forget(queue, &taken);
        Ok((taken.len(), stored))
    }

    /// Moves (or, with `copy`, copies) messages to `to`: each is sent there as a new message
    /// with the same headers and body, then (for a move) forgotten in `queue` once its copy
    /// is stored. `to` must exist. `manage` on the source, `send` on the target.
    pub async fn move_messages(
        &self,
        queue: &Arc<Queue>,
        to: &Destination,
        which: &MessageFilter,
        copy: bool,
        auth: &dyn Authorizer,
    ) -> Result<usize, ManageError> {
        auth.authorize(Permission::Manage, &queue.address)
            .map_err(BrokerError::from)?;
        self.check_target(to)?;
        let messages = if copy {
            queue.find_where(|m| which.matches(m), which.limit.unwrap_or(usize::MAX))
        } else {
            self.take_messages(queue, which)
        };
        self.resend(queue, messages, copy, auth, |_| Some(to.clone()))
            .await
    }

    /// Sends dead-lettered (or expired) messages back where they came from: the address and
    /// queue their `_AMQ_ORIG_*` headers name, without those headers. Messages without them
    /// stay. `manage` on the source, `send` on each origin.
    pub async fn retry_messages(
        &self,
        queue: &Arc<Queue>,
        which: &MessageFilter,
        auth: &dyn Authorizer,
    ) -> Result<usize, ManageError> {
        auth.authorize(Permission::Manage, &queue.address)
            .map_err(BrokerError::from)?;
        let with_origin = |m: &Message| which.matches(m) && origin_of(m).is_some();
        let mut taken = Vec::new();
        let mut left = which.limit.unwrap_or(usize::MAX);
        while left > 0 {
            let batch = queue.remove_where(with_origin, left.min(REMOVE_BATCH));
            let n = batch.len();
            taken.extend(batch);
            left = left.saturating_sub(n);
            if n < REMOVE_BATCH {
                break;
            }
        }
        self.resend(queue, taken, false, auth, origin_of).await
    }

    /// Whether a move target exists: an address, or `address::queue` with that queue on it.
    fn check_target(&self, to: &Destination) -> Result<(), ManageError> {
        let reg = self.read();
        let Some(a) = reg.addresses.get(to.address.as_str()) else {
            return Err(ManageError::NotFound(format!(
                "target address '{}' does not exist",
                to.address
            )));
        };
        if let Some(q) = &to.queue
            && !a.queues.iter().any(|x| *x.name == **q)
        {
            return Err(ManageError::NotFound(format!(
                "target queue '{}::{q}' does not exist",
                to.address
            )));
        }
        Ok(())
    }

    /// Sends each message to where `target` says, waits until the copies are stored, then
    /// (unless `copy`) forgets the originals. A message whose send fails goes back to
    /// `queue`.
    async fn resend(
        &self,
        queue: &Arc<Queue>,
        messages: Vec<Arc<Message>>,
        copy: bool,
        auth: &dyn Authorizer,
        target: impl Fn(&Message) -> Option<Destination>,
    ) -> Result<usize, ManageError> {
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        let mut error = None;
        for m in messages {
            let Some(dest) = target(&m) else {
                failed.push(m);
                continue;
            };
            let strip = dest.queue.is_some() && origin_of(&m).is_some();
            let draft = MessageDraft {
                destination: bytestring::ByteString::from(match &dest.queue {
                    Some(q) => format!("{}::{q}", dest.address),
                    None => dest.address.clone(),
                }),
                properties: m
                    .properties
                    .iter()
                    .filter(|(k, _)| !(strip && k.starts_with(ORIG_PREFIX)))
                    .cloned()
                    .collect(),
                body: m.body.clone(),
                persistent: Some(m.persistent),
                priority: m.priority,
                expires: m.expires,
                deliver_at: 0,
                origin: None,
            };
            match self.send_as(&dest, draft, auth) {
                Ok(report) => sent.push((m, report.stored)),
                Err(e) => {
                    error.get_or_insert(e);
                    failed.push(m);
                }
            }
        }
        let mut moved = Vec::with_capacity(sent.len());
        for (m, stored) in sent {
            if stored.await.is_ok() {
                moved.push(m);
            } else {
                failed.push(m);
            }
        }
        if !copy {
            // Originals whose copy did not go anywhere come back to the queue.
            for m in failed {
                let _ = queue.restore(m, 0, 0);
            }
            let _ = self.forget(queue, &moved).await;
        }
        match error {
            Some(e) if moved.is_empty() => Err(e.into()),
            _ => Ok(moved.len()),
        }
    }

    /// Pauses or resumes a queue's dispatch. False for a retained stream, which cannot be
    /// paused.
    pub fn pause_queue(
        &self,
        queue: &Arc<Queue>,
        paused: bool,
        auth: &dyn Authorizer,
    ) -> Result<bool, ManageError> {
        auth.authorize(Permission::Manage, &queue.address)
            .map_err(BrokerError::from)?;
        Ok(queue.set_paused(paused))
    }
}

/// Where a dead letter or expired message came from, by its `_AMQ_ORIG_*` headers.
fn origin_of(m: &Message) -> Option<Destination> {
    let get = |name: &str| {
        m.properties
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v.to_string())
    };
    let address = get(ORIG_ADDRESS)?;
    Some(Destination {
        address,
        queue: get(ORIG_QUEUE),
        routing: None,
    })
}

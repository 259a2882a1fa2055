//! Finding the queue a browser (SUBSCRIBE with `browser:true`) reads, and checking it may:
//! `browse` permission on the address (Artemis's), and not another connection's temporary
//! destination. A browse creates nothing: a queue that does not exist is browsed as empty.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Broker, Destination};
use crate::broker::{BrokerError, ConsumerId, Queue, RoutingType};
use crate::security::{Authorizer, Permission};

/// What a browse reads.
#[derive(Debug)]
pub struct Browse {
    /// Broker-wide unique like a consumer's, so the session can name the browse's messages
    /// (ack ids) without clashing with a real consumer's.
    pub id: ConsumerId,
    /// The queue, or `None` when it does not exist (nothing to show).
    pub queue: Option<Arc<Queue>>,
}

impl Broker {
    /// Resolves what connection `connection` (acting with `auth`'s rights) browses at
    /// `dest`: the queue named by `address::queue`, or the anycast queue of the address. A
    /// multicast address without a queue name has nothing to browse (its messages live in
    /// its subscriptions' queues, each reachable as `address::queue`).
    pub fn browse_as(
        &self,
        dest: &Destination,
        connection: u64,
        auth: &dyn Authorizer,
    ) -> Result<Browse, BrokerError> {
        if dest.address.is_empty() {
            return Err(BrokerError::EmptyAddress);
        }
        auth.authorize(Permission::Browse, &dest.address)?;
        self.check_temporary_reader(&dest.address, Some(connection))?;
        let reg = self.read();
        let entry = reg.addresses.get(dest.address.as_str());
        if entry.is_none() {
            super::temporary::refuse_missing(&dest.address)?;
        }
        let nothing = || BrokerError::NothingToBrowse(dest.address.clone());
        let queue = match &dest.queue {
            Some(name) => reg.queues.get(name.as_str()),
            None => {
                let multicast_only = entry.is_some_and(|a| a.multicast && !a.anycast);
                match dest.routing {
                    Some(RoutingType::Multicast) => return Err(nothing()),
                    None if multicast_only => return Err(nothing()),
                    _ => reg
                        .queues
                        .get(dest.address.as_str())
                        .filter(|q| q.routing == RoutingType::Anycast),
                }
            }
        };
        if let Some(q) = queue
            && *q.address != *dest.address
        {
            return Err(BrokerError::QueueAddressMismatch {
                queue: q.name.to_string(),
                actual: q.address.to_string(),
                requested: dest.address.clone(),
            });
        }
        Ok(Browse {
            id: self.next_consumer_id.fetch_add(1, Ordering::Relaxed),
            queue: queue.cloned(),
        })
    }
}

//! Who a client is to the core: the live client-ids (unique among connections, as JMS
//! requires, so two connections cannot both act as the owner of one durable subscription),
//! and the owner recorded on a durable subscription's queue.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::BrokerError;

/// Who subscribes, and who owns a durable subscription: the user (`None` for anonymous) and
/// the connection's client-id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    /// The authenticated user's name; `None` for an anonymous connection.
    pub user: Option<String>,
    /// The connection's `client-id`, if it gave one.
    pub client_id: Option<String>,
}

impl Owner {
    /// Whether `other` acts as the same user (anonymous counts as one user).
    pub fn same_user(&self, other: &Owner) -> bool {
        self.user == other.user
    }
}

/// The client-ids of live connections, broker-wide.
#[derive(Debug, Default)]
pub struct ClientIds {
    live: Arc<Mutex<HashSet<String>>>,
}

/// Holds a client-id while its connection lives; dropping it (the session closing, or its
/// future being dropped) frees the id.
#[derive(Debug)]
pub struct ClientIdClaim {
    id: String,
    live: Arc<Mutex<HashSet<String>>>,
}

impl Drop for ClientIdClaim {
    fn drop(&mut self) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl ClientIds {
    /// Claims `id` for a connection; refused while another live connection holds it.
    pub fn claim(&self, id: &str) -> Result<ClientIdClaim, BrokerError> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if !live.insert(id.to_string()) {
            return Err(BrokerError::ClientIdInUse(id.to_string()));
        }
        Ok(ClientIdClaim {
            id: id.to_string(),
            live: Arc::clone(&self.live),
        })
    }

    /// Whether a live connection holds `id` (for inspection and tests).
    pub fn in_use(&self, id: &str) -> bool {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_held_until_its_claim_drops() {
        let ids = ClientIds::default();
        let first = ids.claim("app").expect("free");
        assert_eq!(
            ids.claim("app").unwrap_err(),
            BrokerError::ClientIdInUse("app".into())
        );
        assert!(ids.claim("other").is_ok());
        drop(first);
        assert!(!ids.in_use("app"));
        assert!(ids.claim("app").is_ok());
    }
}

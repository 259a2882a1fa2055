//! The cap on words per address: a client's address is compared word by word with every
//! wildcard subscription on each send, so its length is what bounds the cost of routing.

use super::Broker;
use crate::broker::BrokerError;

impl Broker {
    /// Refuses an address with more `.`-separated words than `limits.max-address-words`,
    /// before anything is looked up or created for it.
    pub fn check_address_words(&self, address: &str) -> Result<(), BrokerError> {
        let words = address.split('.').count();
        if words > self.max_address_words {
            return Err(BrokerError::TooManyAddressWords {
                words,
                limit: self.max_address_words,
            });
        }
        Ok(())
    }
}

//! Command-line overrides applied on top of the loaded file.
//!
//! Operators often run the same `broker.toml` on several hosts or ports (tests, containers), so a
//! few settings can be replaced from the command line without editing the file.

use super::{AcceptorConfig, AcceptorProtocol, Config};
use std::net::SocketAddr;
use std::path::PathBuf;

impl Config {
    /// Applies `overrides` (another configuration's, remembered at its start) to this one, so
    /// a reloaded file is compared with the running configuration on the same terms.
    pub fn apply_overrides(&mut self, overrides: &super::CliOverrides) {
        for (protocol, addr) in &overrides.binds {
            self.override_bind(*protocol, *addr);
        }
        if let Some(dir) = &overrides.data_dir {
            self.override_data_dir(dir.clone());
        }
        if let Some(addr) = overrides.admin_bind {
            self.override_admin_bind(addr);
        }
    }

    /// Moves the admin listener to `addr` (`--admin-bind`).
    pub fn override_admin_bind(&mut self, addr: SocketAddr) {
        self.overrides.admin_bind = Some(addr);
        self.admin.bind = addr;
    }

    /// Makes the broker listen on `addr` for `protocol`: the first acceptor of that protocol is
    /// rebound, or, if the file declares none, [`AcceptorConfig::default_for`] that protocol is
    /// added with this bind.
    ///
    /// An added acceptor copies the prefixes of the first existing acceptor, so the same
    /// destination names work over every transport. A name clash or bind conflict this creates is
    /// reported by [`Config::validate`], which should be called again afterwards.
    pub fn override_bind(&mut self, protocol: AcceptorProtocol, addr: SocketAddr) {
        self.overrides.binds.push((protocol, addr));
        if let Some(acceptor) = self.acceptors.iter_mut().find(|a| a.protocol == protocol) {
            acceptor.bind = addr;
            return;
        }
        let mut acceptor = AcceptorConfig::default_for(protocol);
        acceptor.bind = addr;
        if let Some(first) = self.acceptors.first() {
            acceptor.anycast_prefix = first.anycast_prefix.clone();
            acceptor.multicast_prefix = first.multicast_prefix.clone();
        }
        self.acceptors.push(acceptor);
    }

    /// Moves the journal to `dir`, e.g. so that tests and several local brokers do not share
    /// `./data`.
    pub fn override_data_dir(&mut self, dir: PathBuf) {
        self.overrides.data_dir = Some(dir.clone());
        self.journal.data_dir = dir;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rebinds_the_existing_stomp_acceptor() {
        let mut config = Config::default();
        config.override_bind(AcceptorProtocol::Stomp, addr("0.0.0.0:7000"));
        assert_eq!(config.acceptors.len(), 1);
        assert_eq!(config.acceptors[0].name, "stomp");
        assert_eq!(config.acceptors[0].bind, addr("0.0.0.0:7000"));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn rebinds_only_the_first_acceptor_of_the_protocol() {
        let mut config = Config::default();
        let mut second = AcceptorConfig::default_for(AcceptorProtocol::Stomp);
        second.name = "stomp-2".to_string();
        second.bind = addr("127.0.0.1:7002");
        config.acceptors.push(second);
        config.override_bind(AcceptorProtocol::Stomp, addr("127.0.0.1:7001"));
        assert_eq!(config.acceptors[0].bind, addr("127.0.0.1:7001"));
        assert_eq!(config.acceptors[1].bind, addr("127.0.0.1:7002"));
    }

    #[test]
    fn adds_a_websocket_acceptor_when_none_exists() {
        let mut config = Config::default();
        config.acceptors[0].anycast_prefix = "/q/".to_string();
        config.override_bind(AcceptorProtocol::Websocket, addr("127.0.0.1:9000"));
        assert_eq!(config.acceptors.len(), 2);
        let ws = &config.acceptors[1];
        assert_eq!(ws.name, "websocket");
        assert_eq!(ws.protocol, AcceptorProtocol::Websocket);
        assert_eq!(ws.bind, addr("127.0.0.1:9000"));
        assert_eq!(ws.anycast_prefix, "/q/");
        assert_eq!(ws.multicast_prefix, "/topic/");
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn adds_a_stomp_acceptor_to_an_empty_list() {
        let mut config = Config {
            acceptors: Vec::new(),
            ..Config::default()
        };
        config.override_bind(AcceptorProtocol::Stomp, addr("127.0.0.1:0"));
        assert_eq!(config.acceptors.len(), 1);
        assert_eq!(config.acceptors[0].name, "stomp");
        assert_eq!(config.acceptors[0].anycast_prefix, "/queue/");
        assert_eq!(config.acceptors[0].bind, addr("127.0.0.1:0"));
    }

    #[test]
    fn default_websocket_acceptor_uses_port_61614() {
        let ws = AcceptorConfig::default_for(AcceptorProtocol::Websocket);
        assert_eq!(ws.bind, addr("127.0.0.1:61614"));
        assert_eq!(ws.anycast_prefix, "/queue/");
    }

    #[test]
    fn overrides_data_dir() {
        let mut config = Config::default();
        config.override_data_dir(PathBuf::from("/var/lib/wrenmq"));
        assert_eq!(config.journal.data_dir, PathBuf::from("/var/lib/wrenmq"));
    }
}

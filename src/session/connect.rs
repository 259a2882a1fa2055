//! CONNECT/STOMP: authentication, version negotiation and heart-beat agreement.

use std::sync::atomic::Ordering;

use super::registry::ConnectedAs;
use super::{Failure, Outbound, Session};
use crate::security::{Access, Credentials};
use crate::stomp::{Command, Frame, Version};
use std::sync::Arc;
use std::time::Duration;

impl Session {
    /// Authenticates CONNECT's credentials: `login`/`passcode` when given, else the client
    /// certificate's user, else anonymous if the acceptor allows it. A refusal never says
    /// which half was wrong.
    pub(super) async fn authenticate(&mut self, frame: &Frame) -> Result<(), Failure> {
        let login = frame.get("login").filter(|l| !l.is_empty());
        let credentials = match (login, self.certificate_user.as_deref()) {
            (Some(login), _) => Credentials::Password {
                login,
                passcode: frame.get("passcode").unwrap_or(""),
            },
            (None, Some(cn)) => Credentials::Certificate(cn),
            (None, None) => Credentials::Anonymous,
        };
        let security = Arc::clone(&self.ctx.security);
        match security
            .authenticate(credentials, self.ctx.anonymous_ok, self.peer.ip())
            .await
        {
            Ok(principal) => {
                self.access = Access::new(security, principal);
                Ok(())
            }
            Err(refused) => Err(Failure {
                message: refused.message.to_string(),
                detail: Some(refused.detail.to_string()),
                headers: Vec::new(),
            }),
        }
    }

    pub(super) async fn connect(&mut self, frame: &Frame) -> Result<(), Failure> {
        if self.version.is_some() {
            return Err(Failure::new(
                "already connected: CONNECT may be sent only once",
            ));
        }
        let version = negotiate(frame.get("accept-version"))?;
        let totals = std::sync::Arc::clone(&self.ctx.connections.totals);
        if let Err(refused) = self.authenticate(frame).await {
            totals.auth_failed.0.fetch_add(1, Ordering::Relaxed);
            return Err(refused);
        }
        totals.auth_ok.0.fetch_add(1, Ordering::Relaxed);
        // After authentication, so only a user who may log in learns which ids are live.
        let client_claim = match frame.get("client-id") {
            Some(id) => Some(self.ctx.broker.client_ids().claim(id)?),
            None => None,
        };
        let hb = &self.ctx.acceptor.heartbeat;
        let (client_sends, client_wants) = match (version, frame.get("heart-beat")) {
            (Version::V1_0, _) | (_, None) => (0, 0),
            (_, Some(h)) => parse_heart_beat(h)?,
        };
        // Each direction beats at the client's own interval, but never faster than the
        // broker's floor (`send-ms` / `receive-ms`, 500 ms by default as in Artemis).
        let send_every = if hb.send_ms > 0 && client_wants > 0 {
            hb.send_ms.max(client_wants)
        } else {
            0
        };
        let expect_every = if hb.receive_ms > 0 && client_sends > 0 {
            hb.receive_ms.max(client_sends)
        } else {
            0
        };
        self.read_timeout = if expect_every > 0 {
            Some(Duration::from_millis(
                (expect_every as f64 * hb.grace).ceil() as u64,
            ))
        } else if hb.connection_ttl_ms > 0 {
            Some(Duration::from_millis(hb.connection_ttl_ms))
        } else {
            None
        };
        self.client_id = frame.get("client-id").map(str::to_string);
        self.client_claim = client_claim;
        self.login = frame.get("login").map(str::to_string);
        self.version = Some(version);
        let gone = |_| Failure::new("connection closed");
        self.out.push(Outbound::Version(version)).map_err(gone)?;
        let mut connected = Frame::new(Command::Connected)
            .header("version", version.as_str())
            .header("server", self.ctx.server_name.as_str())
            .header("session", uuid::Uuid::new_v4().to_string());
        if version != Version::V1_0 {
            connected = connected.header(
                "heart-beat",
                // The negotiated intervals themselves: the client takes the larger of these
                // and its own, which gives exactly them, so both sides agree on what the
                // client asked for (down to the broker's floors).
                format!("{send_every},{expect_every}"),
            );
        }
        self.out.frame(connected).await.map_err(gone)?;
        self.out
            .push(Outbound::HeartBeat(Duration::from_millis(send_every)))
            .map_err(gone)?;
        self.info.set_connected_as(ConnectedAs {
            client_id: self.client_id.clone(),
            user: self.access.principal.name.clone(),
            version: Some(version.as_str().to_string()),
            heart_beat: (send_every, expect_every),
        });
        tracing::debug!(peer = %self.peer, %version, send_every, expect_every, "connected");
        Ok(())
    }
}

/// Picks the highest version both sides speak; no `accept-version` means STOMP 1.0.
pub(super) fn negotiate(accept: Option<&str>) -> Result<Version, Failure> {
    let Some(list) = accept else {
        return Ok(Version::V1_0);
    };
    list.split(',')
        .filter_map(Version::parse)
        .max()
        .ok_or_else(|| Failure {
            message: format!("no supported STOMP version in accept-version '{list}'"),
            detail: Some("WrenMQ supports STOMP 1.0, 1.1 and 1.2".to_string()),
            // STOMP 1.2: the ERROR lists the versions the server supports.
            headers: vec![("version", "1.0,1.1,1.2".to_string())],
        })
}

pub(super) fn parse_heart_beat(h: &str) -> Result<(u64, u64), Failure> {
    let bad = || {
        Failure::new(format!(
            "heart-beat '{h}' is not two comma-separated numbers"
        ))
    };
    let (a, b) = h.split_once(',').ok_or_else(bad)?;
    Ok((
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ))
}

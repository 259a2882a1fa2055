//! Connection limits, checked by every acceptor before a session starts: broker-wide, per
//! peer IP and per acceptor. A refused plain-TCP connection gets a raw ERROR frame and is
//! closed; nothing else about the broker notices it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `message` header of the ERROR a refused connection gets.
pub const TOO_MANY_CONNECTIONS: &str = "too many connections";

/// How long a refused connection is given to take its ERROR before it is dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Broker-wide and per-IP connection counts, shared by every acceptor.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One acceptor's own count, for its optional `limits.max-connections`.
#[derive(Debug, Default)]
pub struct AcceptorSlots {
    max: Option<usize>,
    open: AtomicUsize,
}

impl AcceptorSlots {
    /// Slots for an acceptor allowing at most `max` connections (`None`: no own limit).
    pub fn new(max: Option<usize>) -> AcceptorSlots {
        AcceptorSlots {
            max,
            open: AtomicUsize::new(0),
        }
    }
}

/// An admitted connection; its slots are given back when dropped.
#[derive(Debug)]
pub struct Admission {
    limiter: Arc<ConnectionLimiter>,
    acceptor: Arc<AcceptorSlots>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.acceptor.open.fetch_sub(1, Ordering::AcqRel);
        let mut c = self.limiter.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimiter {
    /// A limiter allowing `max_total` connections, `max_per_ip` from any one IP.
    pub fn new(max_total: usize, max_per_ip: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            max_total,
            max_per_ip,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a connection from `ip` on `acceptor`, or says which limit is reached.
    pub fn admit(
        self: &Arc<Self>,
        acceptor: &Arc<AcceptorSlots>,
        ip: IpAddr,
    ) -> Result<Admission, String> {
        let mut c = self.lock();
        if c.total >= self.max_total {
            return Err(format!(
                "the broker has reached its limit of {} connections",
                self.max_total
            ));
        }
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.max_per_ip {
            return Err(format!(
                "{ip} already has the limit of {} connections",
                self.max_per_ip
            ));
        }
        let open = acceptor.open.fetch_add(1, Ordering::AcqRel);
        if let Some(max) = acceptor.max
            && open >= max
        {
            acceptor.open.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "this acceptor has reached its limit of {max} connections"
            ));
        }
        c.total += 1;
        *c.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Admission {
            limiter: Arc::clone(self),
            acceptor: Arc::clone(acceptor),
            ip,
        })
    }

    /// Connections open now (for tests and logs).
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

/// The raw ERROR frame a refused connection gets, written before any session exists.
pub fn refusal_frame(detail: &str) -> Vec<u8> {
    format!(
        "ERROR\nmessage:{TOO_MANY_CONNECTIONS}\ncontent-type:text/plain\ncontent-length:{}\n\n{detail}\0",
        detail.len()
    )
    .into_bytes()
}

/// Writes the refusal to a plain TCP connection and closes it, waiting briefly for the
/// client to close first so the ERROR is not lost to a reset. Bounded in time and bytes.
pub async fn refuse(mut stream: TcpStream, detail: String) {
    let work = async {
        stream.write_all(&refusal_frame(&detail)).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0usize;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, work).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_total_per_ip_and_per_acceptor() {
        let limiter = Arc::new(ConnectionLimiter::new(4, 2));
        let any = Arc::new(AcceptorSlots::new(None));
        let small = Arc::new(AcceptorSlots::new(Some(1)));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let c: IpAddr = [10, 0, 0, 3].into();
        let a1 = limiter.admit(&any, a).unwrap();
        let _a2 = limiter.admit(&any, a).unwrap();
        assert!(limiter.admit(&any, a).unwrap_err().contains("10.0.0.1"));
        let _b1 = limiter.admit(&small, b).unwrap();
        assert!(limiter.admit(&small, b).unwrap_err().contains("acceptor"));
        let _b2 = limiter.admit(&any, b).unwrap();
        assert!(limiter.admit(&any, c).unwrap_err().contains("broker"));
        drop(a1);
        assert_eq!(limiter.open(), 3);
        assert!(limiter.admit(&any, c).is_ok());
    }

    #[test]
    fn refusal_is_a_complete_error_frame() {
        let f = refusal_frame("x");
        assert!(f.starts_with(b"ERROR\nmessage:too many connections\n"));
        assert!(f.ends_with(b"\n\nx\0"));
    }
}

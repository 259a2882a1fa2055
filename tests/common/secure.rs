#![allow(dead_code)]

//! Helpers for the security tests: users with argon2 hashes, a secured test configuration,
//! a test PKI made with rcgen (CA, server and client certificates written to a temporary
//! directory), a tokio-rustls client, and a tiny STOMP reader for any byte stream.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use wrenmq::config::{Config, SecuritySettingEntry, TlsConfig, UserConfig};

use crate::common::{TIMEOUT, frame_bytes, test_config};

/// A user with an argon2 hash of `password`.
pub fn user(name: &str, password: &str, roles: &[&str]) -> UserConfig {
    UserConfig {
        name: name.to_string(),
        password_hash: Some(wrenmq::security::hash_password(password).expect("hash")),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn roles(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

/// A security-settings entry granting `perms` (config key names) to `granted` roles.
pub fn grant(pattern: &str, perms: &[&str], granted: &[&str]) -> SecuritySettingEntry {
    let mut e = SecuritySettingEntry {
        pattern: pattern.to_string(),
        ..Default::default()
    };
    for p in perms {
        let slot = match *p {
            "send" => &mut e.send,
            "consume" => &mut e.consume,
            "browse" => &mut e.browse,
            "create-address" => &mut e.create_address,
            "delete-address" => &mut e.delete_address,
            "create-durable-queue" => &mut e.create_durable_queue,
            "delete-durable-queue" => &mut e.delete_durable_queue,
            "create-non-durable-queue" => &mut e.create_non_durable_queue,
            "delete-non-durable-queue" => &mut e.delete_non_durable_queue,
            "manage" => &mut e.manage,
            other => panic!("unknown permission {other}"),
        };
        *slot = roles(granted);
    }
    e
}

/// Every permission key.
pub const ALL: [&str; 10] = [
    "send",
    "consume",
    "browse",
    "create-address",
    "delete-address",
    "create-durable-queue",
    "delete-durable-queue",
    "create-non-durable-queue",
    "delete-non-durable-queue",
    "manage",
];

/// The test configuration with anonymous access off, fast login throttling, and users
/// `admin` (role admin, password `admin-pw`), `bob` (producer, `bob-pw`) and `carol`
/// (consumer, `carol-pw`). Security settings are left to each test.
pub fn secured_config(settings: Vec<SecuritySettingEntry>) -> Config {
    let mut config = test_config();
    config.security.allow_anonymous = Some(false);
    config.security.login_failure_delay_ms = 20;
    config.security.login_failure_max_delay_ms = 80;
    config.users = vec![
        user("admin", "admin-pw", &["admin"]),
        user("bob", "bob-pw", &["producer"]),
        user("carol", "carol-pw", &["consumer"]),
    ];
    config.security_settings = settings;
    config
}

/// What `config/secure.toml` ships in place of each password hash.
pub const PLACEHOLDER: &str = "REPLACE-ME with the output of: wrenmq user hash";

/// The shipped `config/secure.toml` as an operator would deploy it: each user's placeholder
/// replaced by the hash of `<name>-secret`, ports at 0 on 127.0.0.1, the journal off, and the
/// TLS acceptor pointed at `pki` (or removed without one).
pub fn secure_example(pki: Option<&TestPki>) -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/secure.toml");
    let mut text = std::fs::read_to_string(&path).expect("read config/secure.toml");
    for name in ["alice", "bob", "carol"] {
        let at = text
            .find(&format!("name = \"{name}\""))
            .unwrap_or_else(|| panic!("secure.toml declares {name}"));
        let rel = text[at..].find(PLACEHOLDER).expect("a placeholder hash");
        let hash = wrenmq::security::hash_password(&format!("{name}-secret")).expect("hash");
        text.replace_range(at + rel..at + rel + PLACEHOLDER.len(), &hash);
    }
    let mut config = wrenmq::config::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.security.allow_anonymous, Some(false));
    config.journal.enabled = false;
    if pki.is_none() {
        config.acceptors.retain(|a| a.tls.is_none());
    }
    for acceptor in &mut config.acceptors {
        acceptor.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        if let (Some(tls), Some(pki)) = (&mut acceptor.tls, pki) {
            tls.cert = pki.server_cert.clone();
            tls.key = pki.server_key.clone();
            tls.client_ca = Some(pki.ca.clone());
        }
    }
    config.validate().expect("still valid");
    config
}

/// CONNECT bytes for STOMP 1.2 with optional credentials.
pub fn connect_frame(login: Option<(&str, &str)>) -> Vec<u8> {
    let mut headers = vec![("accept-version", "1.2"), ("host", "localhost")];
    if let Some((l, p)) = login {
        headers.push(("login", l));
        headers.push(("passcode", p));
    }
    frame_bytes("CONNECT", &headers, b"")
}

/// A CA, a server certificate for 127.0.0.1/localhost, and client certificates, as PEM files.
pub struct TestPki {
    /// Keeps the files alive.
    pub dir: tempfile::TempDir,
    /// CA certificate (PEM) path.
    pub ca: PathBuf,
    /// Server certificate chain path.
    pub server_cert: PathBuf,
    /// Server key path.
    pub server_key: PathBuf,
    ca_issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestPki {
    /// Makes a fresh PKI in a temporary directory.
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "WrenMQ test CA");
        let ca_issuer =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, "wrenmq");
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &ca_issuer).expect("server cert");
        let ca = dir.path().join("ca.pem");
        let server_cert = dir.path().join("server.pem");
        let server_key = dir.path().join("server.key");
        std::fs::write(&ca, ca_issuer.pem()).expect("write");
        std::fs::write(&server_cert, cert.pem()).expect("write");
        std::fs::write(&server_key, key.serialize_pem()).expect("write");
        TestPki {
            dir,
            ca,
            server_cert,
            server_key,
            ca_issuer,
        }
    }

    /// `[acceptors.tls]` for the server certificate, optionally trusting the CA for clients.
    pub fn tls_config(&self, client_ca: bool) -> TlsConfig {
        TlsConfig {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: client_ca.then(|| self.ca.clone()),
            client_auth: None,
        }
    }

    /// A client certificate with CN `cn` signed by the CA: (cert chain, key).
    pub fn client_identity(
        &self,
        cn: &str,
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.ca_issuer)
            .expect("client cert");
        let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key");
        (vec![cert.der().clone()], key)
    }

    /// A rustls client trusting the test CA, with an optional client certificate.
    pub fn client_config(&self, identity: Option<&str>) -> Arc<ClientConfig> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).expect("ca") {
            roots.add(cert.expect("ca pem")).expect("add ca");
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(cn) => {
                let (chain, key) = self.client_identity(cn);
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
        };
        Arc::new(config)
    }
}

/// Connects over TLS to `addr` (server name 127.0.0.1).
pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    timeout(TIMEOUT, TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?
}

/// A frame read by [`read_frame`]: command, headers, body.
pub type RawFrame = (String, Vec<(String, String)>, String);

/// Reads one frame (skipping heart-beat EOLs) from any stream, within [`TIMEOUT`].
/// `None` on EOF, error or timeout.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Option<RawFrame> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        while buf.first().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.remove(0);
        }
        if let Some(nul) = buf.iter().position(|b| *b == 0) {
            let raw: Vec<u8> = buf.drain(..=nul).collect();
            let text = String::from_utf8_lossy(&raw[..raw.len() - 1]).to_string();
            let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            let mut lines = head.lines();
            let command = lines.next().unwrap_or("").to_string();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            return Some((command, headers, body.to_string()));
        }
        let mut chunk = [0u8; 8192];
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The first value of header `name`.
pub fn header<'a>(frame: &'a RawFrame, name: &str) -> Option<&'a str> {
    frame
        .1
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Writes all of `bytes`.
pub async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
    stream.flush().await.expect("flush");
}

/// Waits until `cond` holds, polling every 20 ms, for at most `within`.
pub async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

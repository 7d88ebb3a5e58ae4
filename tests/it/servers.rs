//! Small real servers on loopback for the application probes: TLS (certificates made at
//! test time with rcgen), an Automate-like HTTPS endpoint, MySQL greetings, plain HTTP.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test CA and what it signs.
pub struct Ca {
    pub pem: String,
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "automate-ports test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names`, valid from `not_before` to `not_after`.
    pub fn leaf(
        &self,
        names: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Leaf {
        let (cert, key) = self.issue(names, not_before, not_after);
        Leaf {
            chain: vec![cert.der().clone(), self.der.clone()],
            key: key.serialize_der(),
        }
    }

    /// A leaf for `names` as PEM, for a server outside this process: (the chain, leaf
    /// first, then this CA; the private key in PKCS#8).
    pub fn leaf_pem(
        &self,
        names: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (String, String) {
        let (cert, key) = self.issue(names, not_before, not_after);
        (format!("{}{}", cert.pem(), self.pem), key.serialize_pem())
    }

    fn issue(
        &self,
        names: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert, key)
    }
}

pub struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

/// A self-signed leaf (no CA).
pub fn self_signed(names: &[&str]) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.self_signed(&key).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
    }
}

pub fn days_from_now(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(days)
}

/// An HTTPS server on 127.0.0.1 that answers every request with `response`. Returns its port.
pub fn tls_server(leaf: Leaf, response: &'static [u8]) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            leaf.chain,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key)),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut tcp) = stream else { continue };
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let Ok(mut conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
                let mut buf = [0u8; 4096];
                let mut request = Vec::new();
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(response);
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

/// A plain TCP server on 127.0.0.1 that sends `greeting` on connect (MySQL speaks first),
/// or, with `after_request`, answers the first request (HTTP). Returns its port.
pub fn plain_server(greeting: Vec<u8>, after_request: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut tcp) = stream else { continue };
            let greeting = greeting.clone();
            std::thread::spawn(move || {
                if after_request {
                    let mut buf = [0u8; 4096];
                    let _ = tcp.read(&mut buf);
                }
                let _ = tcp.write_all(&greeting);
                // Hold the connection a moment, as a real server would.
                std::thread::sleep(std::time::Duration::from_millis(200));
            });
        }
    });
    port
}

/// Automate's answer to `/LabTech/agent.aspx`: version 200.264.
pub const AUTOMATE_ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n0|1|2|||||||200.264";

/// The greeting a MySQL server of this `version` sends first (protocol 10), as a packet.
pub fn mysql_greeting(version: &[u8]) -> Vec<u8> {
    let mut payload = vec![10];
    payload.extend_from_slice(version);
    payload.extend_from_slice(b"\0\x01\x00\x00\x00abcdefgh\0");
    mysql_packet(&payload)
}

/// MySQL's error 1130 (this host is not allowed to connect) with `message`, as a packet.
pub fn mysql_host_refused(message: &[u8]) -> Vec<u8> {
    let mut payload = vec![0xff, 0x6a, 0x04];
    payload.extend_from_slice(message);
    mysql_packet(&payload)
}

/// A MySQL packet: 3-byte length, sequence 0, payload.
fn mysql_packet(payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, 0];
    out.extend_from_slice(payload);
    out
}

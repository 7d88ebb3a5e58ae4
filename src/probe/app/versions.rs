//! Which TLS versions the server accepts, and (on Windows) whether Schannel, the TLS the
//! Automate agent uses, gets through where rustls did.
//!
//! rustls speaks TLS 1.2 and 1.3 only. For 1.0, 1.1 and 1.2 a minimal ClientHello offering just
//! that version is sent on a connection of its own, and the first record read: a ServerHello
//! at that version accepts it, an alert or a lower version refuses it. Nothing is encrypted and
//! no handshake is completed. TLS 1.3 is known from the rustls handshake itself.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::AppConfig;
use crate::endpoint::Host;
use crate::model::{AppResult, TlsVersions};
use crate::tlsoffer::{Offer, TlsVersion};

/// Cipher suites of TLS 1.0 to 1.2 that servers commonly accept, newest first, ending with
/// the renegotiation SCSV.
const SUITES: [u16; 23] = [
    0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc009, 0xc013, 0xc00a, 0xc014, 0xc023, 0xc027,
    0xc024, 0xc028, 0x009e, 0x009f, 0x009c, 0x009d, 0x002f, 0x0035, 0x003c, 0x000a, 0x00ff,
];

/// The ClientHello that offers exactly `version` (1.0 to 1.2), with the name for SNI.
pub(crate) fn client_hello(version: TlsVersion, host: Option<&str>) -> Vec<u8> {
    let mut ext = Vec::new();
    if let Some(host) = host {
        let name = host.as_bytes();
        let n = u16::try_from(name.len()).unwrap_or(0);
        put_ext(
            &mut ext,
            0x0000,
            &[&(n + 3).to_be_bytes()[..], &[0], &n.to_be_bytes(), name].concat(),
        );
    }
    // x25519, secp256r1, secp384r1; uncompressed points.
    put_ext(&mut ext, 0x000a, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]);
    put_ext(&mut ext, 0x000b, &[1, 0]);
    // rsa/ecdsa with SHA-256, SHA-384, SHA-1; rsa-pss-rsae-sha256.
    put_ext(
        &mut ext,
        0x000d,
        &[0, 12, 4, 1, 4, 3, 5, 1, 5, 3, 8, 4, 2, 1],
    );
    let mut body = Vec::new();
    body.extend_from_slice(&version.wire().to_be_bytes());
    body.extend_from_slice(&random());
    body.push(0); // no session id
    body.extend_from_slice(&u16::try_from(SUITES.len() * 2).unwrap_or(0).to_be_bytes());
    for suite in SUITES {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&u16::try_from(ext.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut handshake = vec![1];
    handshake.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap_or(0).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

fn put_ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&u16::try_from(data.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(data);
}

fn random() -> [u8; 32] {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &state
                .hash_one((i, std::time::SystemTime::now()))
                .to_le_bytes(),
        );
    }
    out
}

/// What the first bytes a server sent say about the version offered: `Some(true)` a
/// ServerHello at that version, `Some(false)` an alert, another version or something else
/// entirely, `None` too short to tell.
pub(crate) fn accepted(version: TlsVersion, first: &[u8]) -> Option<bool> {
    match first {
        // Handshake record, ServerHello, its version after the 4-byte message header.
        [0x16, _, _, _, _, 0x02, _, _, _, major, minor, ..] => {
            Some(u16::from_be_bytes([*major, *minor]) == version.wire())
        }
        [0x16, ..] if first.len() < 11 => None,
        [] => None,
        _ => Some(false),
    }
}

/// Offers `version` alone on a new connection to `addr`.
async fn try_version(addr: SocketAddr, host: Option<&str>, version: TlsVersion) -> Offer {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(&client_hello(version, host)).await?;
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < buf.len() {
            match stream.read(&mut buf[got..]).await? {
                0 => break,
                n => got += n,
            }
            if let Some(answer) = accepted(version, &buf[..got]) {
                return Ok(Some(answer));
            }
        }
        // Closed before a full answer: a refusal.
        Ok::<_, std::io::Error>(Some(accepted(version, &buf[..got]).unwrap_or(false)))
    };
    match attempt.await {
        Ok(Some(true)) => Offer::Yes,
        // A reset after the hello is a server refusing it.
        Ok(Some(false) | None) | Err(_) => Offer::No,
    }
}

/// The server's versions, the agent's offer and, on Windows, Schannel's handshake, all within
/// `timeout`; whatever does not answer in time stays unknown.
pub(crate) async fn survey(
    addr: SocketAddr,
    host: &Host,
    result: &AppResult,
    config: &AppConfig,
    timeout: Duration,
) -> TlsVersions {
    let sni = host.name();
    let bounded = |v| async move {
        tokio::time::timeout(timeout, try_version(addr, sni, v))
            .await
            .unwrap_or(Offer::Unknown)
    };
    let (v10, v11, v12) = tokio::join!(
        bounded(TlsVersion::Tls10),
        bounded(TlsVersion::Tls11),
        bounded(TlsVersion::Tls12)
    );
    // rustls offered 1.3 and 1.2: what it negotiated says whether 1.3 is there.
    let negotiated = result.tls.as_ref().map(|t| t.version.as_str());
    let v13 = match negotiated {
        Some("TLS 1.3") => Offer::Yes,
        Some("TLS 1.2") => Offer::No,
        _ => Offer::Unknown,
    };
    let mut versions = TlsVersions::new([v10, v11, v12, v13]);
    versions.agent_offers = config.agent_offer.as_ref().map(|o| o.offers.into());
    versions.schannel = super::schannel::handshake(addr, host, config, timeout).await;
    versions
}

/// What the versions change about the probe's result. A server that accepts only TLS 1.0 or
/// 1.1 is named as such (rustls's handshake failure alone reads like "not TLS"). Schannel
/// failing where rustls got through means the agent would fail here although this tool's
/// own handshake passed. A failure where the agent's offer is settled; a warning where only
/// the OS default could be tried (the agent may ask for more in its own code).
pub(crate) fn judge(mut found: AppResult, versions: TlsVersions, config: &AppConfig) -> AppResult {
    let accepted = versions.server_accepts.yes();
    if matches!(found.finding, crate::model::Finding::TlsHandshake { .. })
        && !accepted.is_empty()
        && accepted.iter().all(|v| *v < TlsVersion::Tls12)
    {
        let schannel_ok = versions.schannel.as_ref().is_some_and(|s| s.ok);
        // The agent still connects where Schannel does: deprecated, not broken.
        found.verdict = if schannel_ok {
            crate::model::AppVerdict::Warn
        } else {
            crate::model::AppVerdict::Fail
        };
        found.finding = crate::model::Finding::OldTlsOnly {
            accepted,
            schannel_ok,
        };
        found.tls_versions = Some(versions);
        return found;
    }
    let failed = versions.schannel.as_ref().filter(|s| !s.ok).cloned();
    found.tls_versions = Some(versions);
    let Some(schannel) = failed else {
        return found;
    };
    if found.verdict == crate::model::AppVerdict::Fail {
        return found;
    }
    let was = found.verdict;
    let settled = config
        .agent_offer
        .as_ref()
        .is_some_and(crate::tlsoffer::AgentOffer::settled);
    found.verdict = if settled {
        crate::model::AppVerdict::Fail
    } else {
        crate::model::AppVerdict::Warn
    };
    found.finding = crate::model::Finding::SchannelFailed {
        error: schannel.error.unwrap_or_default(),
        code: schannel.code,
        settled,
        inner: Box::new(found.finding.clone()),
        was,
    };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_offers_one_version_with_the_name() {
        let hello = client_hello(TlsVersion::Tls11, Some("automate.example.com"));
        assert_eq!(&hello[..3], &[0x16, 0x03, 0x01]);
        let len = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
        assert_eq!(hello.len(), 5 + len);
        assert_eq!(hello[5], 1, "ClientHello");
        assert_eq!(&hello[9..11], &[0x03, 0x02]);
        assert!(hello
            .windows(b"automate.example.com".len())
            .any(|w| w == b"automate.example.com"));
        let bare = client_hello(TlsVersion::Tls12, None);
        assert_eq!(&bare[9..11], &[0x03, 0x03]);
        assert!(bare.len() < hello.len());
    }

    #[test]
    fn what_the_first_record_says() {
        let hello_at = |major, minor| vec![0x16, 3, 3, 0, 80, 2, 0, 0, 76, major, minor, 0];
        assert_eq!(accepted(TlsVersion::Tls10, &hello_at(3, 1)), Some(true));
        assert_eq!(accepted(TlsVersion::Tls11, &hello_at(3, 1)), Some(false));
        assert_eq!(accepted(TlsVersion::Tls12, &hello_at(3, 3)), Some(true));
        // A protocol_version alert.
        assert_eq!(
            accepted(TlsVersion::Tls10, &[0x15, 3, 1, 0, 2, 2, 70]),
            Some(false)
        );
        assert_eq!(accepted(TlsVersion::Tls10, b"HTTP/1.1 400"), Some(false));
        assert_eq!(accepted(TlsVersion::Tls10, &[0x16, 3, 1]), None);
        assert_eq!(accepted(TlsVersion::Tls10, &[]), None);
    }
}

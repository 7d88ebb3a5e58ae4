//! The handshake through Schannel, the TLS stack of Windows that the Automate agent's .NET
//! runtime uses, next to rustls: an old Windows (TLS 1.2 off for clients) or an agent runtime
//! that asks for TLS 1.0 fails here against a server that requires TLS 1.2, while rustls
//! succeeds. The certificate is judged once, by rustls and this machine's store
//! (rustls-platform-verifier asks Windows), so Schannel accepts any certificate here and
//! `--insecure` and `--ca-file` mean the same for both: what fails is the negotiation.

use std::net::SocketAddr;
use std::time::Duration;

use super::AppConfig;
use crate::model::SchannelResult;

/// Schannel's answer for `host` at `addr`, asking for what the agent here asks for (or the
/// OS default), within `timeout`. `None` off Windows.
#[cfg(not(windows))]
pub(super) fn handshake(
    _addr: SocketAddr,
    _host: &crate::endpoint::Host,
    _config: &AppConfig,
    _timeout: Duration,
) -> std::future::Ready<Option<SchannelResult>> {
    std::future::ready(None)
}

#[cfg(windows)]
pub(super) async fn handshake(
    addr: SocketAddr,
    host: &crate::endpoint::Host,
    config: &AppConfig,
    timeout: Duration,
) -> Option<SchannelResult> {
    let asked = config.agent_offer.as_ref().and_then(|o| o.asks.clone());
    let name = host.name().map(str::to_string);
    let for_blocking = asked.clone();
    let shaken = tokio::task::spawn_blocking(move || {
        blocking(addr, name.as_deref(), for_blocking.as_deref(), timeout)
    });
    let outcome = match tokio::time::timeout(timeout * 2, shaken).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Err((None, e.to_string())),
        Err(_) => Err((
            None,
            format!("no answer in {}", crate::probe::fmt_duration(timeout)),
        )),
    };
    Some(match outcome {
        Ok(()) => SchannelResult {
            ok: true,
            asked,
            error: None,
            code: None,
        },
        Err((code, error)) => SchannelResult {
            ok: false,
            asked,
            error: Some(error),
            code,
        },
    })
}

/// The handshake on a blocking socket, each read and write bounded by `timeout`.
#[cfg(windows)]
fn blocking(
    addr: SocketAddr,
    name: Option<&str>,
    asked: Option<&[crate::model::TlsVersion]>,
    timeout: Duration,
) -> Result<(), (Option<u32>, String)> {
    use crate::model::TlsVersion;
    use schannel::schannel_cred::{Direction, Protocol, SchannelCred};
    use schannel::tls_stream::{Builder, HandshakeError};
    let io = |e: std::io::Error| (None, e.to_string());
    let stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut cred = SchannelCred::builder();
    if let Some(asked) = asked {
        let protocols: Vec<Protocol> = asked
            .iter()
            .map(|v| match v {
                TlsVersion::Tls10 => Protocol::Tls10,
                TlsVersion::Tls11 => Protocol::Tls11,
                TlsVersion::Tls12 => Protocol::Tls12,
                TlsVersion::Tls13 => Protocol::Tls13,
            })
            .collect();
        cred.enabled_protocols(&protocols);
    }
    let cred = cred
        .acquire(Direction::Outbound)
        .map_err(|e| schannel_error(&e))?;
    let mut builder = Builder::new();
    if let Some(name) = name {
        builder.domain(name);
    }
    builder
        .accept_invalid_hostnames(true)
        .verify_callback(|_| Ok(()));
    let mut handshake = builder.connect(cred, stream);
    // A blocking socket completes the handshake in one call; the loop is for WouldBlock.
    for _ in 0..64 {
        match handshake {
            Ok(_) => return Ok(()),
            Err(HandshakeError::Failure(e)) => return Err(schannel_error(&e)),
            Err(HandshakeError::Interrupted(mid)) => handshake = mid.handshake(),
        }
    }
    Err((None, "the handshake did not finish".into()))
}

/// The SECURITY_STATUS of a failed call, by name where it is a common one.
#[cfg(windows)]
fn schannel_error(e: &std::io::Error) -> (Option<u32>, String) {
    match e.raw_os_error() {
        Some(raw) => {
            // SECURITY_STATUS values are HRESULTs: the bits, not the sign.
            let code = u32::from_ne_bytes(raw.to_ne_bytes());
            let text = match crate::words::tls::sec_status_name(code) {
                Some(name) => format!("{name} (0x{code:08X})"),
                None => format!("0x{code:08X}: {e}"),
            };
            (Some(code), text)
        }
        None => (None, e.to_string()),
    }
}

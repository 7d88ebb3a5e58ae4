//! TLS: the handshake, the certificate and whether a client here would trust it; then,
//! for Automate, its agent endpoint through the same connection.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

use super::automate::automate_answer;
use super::certificate::Certificate;
use super::http::request;
use super::{AppConfig, AppResult, AppVerdict, TlsInfo, Verifiers};
use crate::endpoint::Host;
use crate::model::{AppProbe, CertificateFinding, Finding};

// ---------------------------------------------------------------- TLS

/// Accepts any certificate during the handshake (signatures are still checked), so the
/// certificate can be examined and judged afterwards against each trust store in turn.
#[derive(Debug)]
struct Examine(Arc<CryptoProvider>);

impl ServerCertVerifier for Examine {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS probe, and for Automate its agent endpoint over the session just examined.
pub(super) async fn tls_and_maybe_automate(
    probe: AppProbe,
    stream: TcpStream,
    host: &Host,
    ip: IpAddr,
    config: &AppConfig,
) -> AppResult {
    let verifiers = config.verifiers();
    let name = server_name(host, ip);
    let mut tls = match handshake(probe, stream, &name, verifiers).await {
        Ok(tls) => tls,
        Err(failed) => return *failed,
    };
    let session = Session::of(tls.get_ref().1, name);
    let (tls_result, info) = judge_certificate(&session, host, config, verifiers);
    if probe == AppProbe::Tls {
        return tls_result;
    }
    if probe == AppProbe::Installer {
        let token = config.installer_token.as_deref();
        let path = super::installer::path(token);
        let response = request(&mut tls, host, &path, super::installer::PREFIX).await;
        let mut r = super::installer::answer(probe, response, &tls_result, token.is_some());
        r.tls = info;
        r.insecure = tls_result.insecure;
        return r;
    }
    let response = request(&mut tls, host, "/LabTech/agent.aspx", 64 * 1024).await;
    let mut r = automate_answer(response, &tls_result);
    r.tls = info;
    r.insecure = tls_result.insecure;
    r
}

/// The name to verify the certificate against: the host's name, else the address.
fn server_name(host: &Host, ip: IpAddr) -> ServerName<'static> {
    host.name()
        .and_then(|name| ServerName::try_from(name.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(host.ip().unwrap_or(ip).into()))
}

/// Completes the handshake accepting any certificate: it is judged afterwards, in words.
async fn handshake(
    probe: AppProbe,
    stream: TcpStream,
    name: &ServerName<'static>,
    verifiers: &Verifiers,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Box<AppResult>> {
    let provider = Arc::clone(&verifiers.provider);
    let client = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            let error = e.to_string();
            Box::new(AppResult::new(
                probe,
                AppVerdict::Fail,
                Finding::TlsSetup { error },
            ))
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Examine(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    connector.connect(name.clone(), stream).await.map_err(|e| {
        let error = e.to_string();
        Box::new(AppResult::new(
            probe,
            AppVerdict::Fail,
            Finding::TlsHandshake { error },
        ))
    })
}

/// What a completed handshake showed: the protocol version and the chain, for the name.
struct Session {
    version: String,
    chain: Vec<CertificateDer<'static>>,
    name: ServerName<'static>,
}

impl Session {
    fn of(conn: &rustls::ClientConnection, name: ServerName<'static>) -> Session {
        let version = conn
            .protocol_version()
            .map_or("TLS".to_string(), |v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
                rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
                other => format!("{other:?}"),
            });
        let chain = conn
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        Session {
            version,
            chain,
            name,
        }
    }
}

/// Whether a trust store accepts the chain. Errors that say the chain is trusted but the
/// certificate itself is wrong count as trusted: the name and dates are judged on their own.
fn trusted_by(v: &dyn ServerCertVerifier, session: &Session) -> bool {
    let Some((end_entity, intermediates)) = session.chain.split_first() else {
        return false;
    };
    matches!(
        v.verify_server_cert(
            end_entity,
            intermediates,
            &session.name,
            &[],
            UnixTime::now()
        ),
        Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. }
                    | CertificateError::Expired
                    | CertificateError::ExpiredContext { .. }
                    | CertificateError::NotValidYet
                    | CertificateError::NotValidYetContext { .. },
            ))
    )
}

/// Judges the certificate: name, validity dates, and which trust stores accept the chain.
fn judge_certificate(
    session: &Session,
    host: &Host,
    config: &AppConfig,
    verifiers: &Verifiers,
) -> (AppResult, Option<TlsInfo>) {
    let fail = |finding| {
        (
            AppResult::new(AppProbe::Tls, AppVerdict::Fail, finding),
            None,
        )
    };
    let Some(end_entity) = session.chain.first() else {
        return fail(Finding::NoCertificate);
    };
    let Some(cert) = Certificate::read(end_entity) else {
        return fail(Finding::CertificateUnreadable);
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let info = TlsInfo {
        version: session.version.clone(),
        subject: cert.subject.clone(),
        sans: cert.sans.clone(),
        issuer: cert.issuer.clone(),
        not_after: humantime::format_rfc3339_seconds(
            UNIX_EPOCH + std::time::Duration::from_secs(cert.not_after.max(0) as u64),
        )
        .to_string(),
        days_left: (cert.not_after - now).div_euclid(86_400),
        trusted_public: trusted_by(verifiers.public.as_ref(), session),
        trusted_system: verifiers
            .system
            .as_deref()
            .is_some_and(|v| trusted_by(v, session)),
        trusted_ca_file: verifiers.ca_file.as_deref().map(|v| trusted_by(v, session)),
    };
    let mut r = certificate_verdict(&cert, &info, host, now, config);
    r.tls = Some(info.clone());
    (r, Some(info))
}

/// The first problem with the certificate, in order of what a user must fix first.
fn certificate_verdict(
    cert: &Certificate,
    info: &TlsInfo,
    host: &Host,
    now: i64,
    config: &AppConfig,
) -> AppResult {
    let trusted_somewhere = info.trusted_public || info.trusted_ca_file == Some(true);
    let (verdict, finding) = if !cert.is_for(host) {
        let host = host.to_string();
        (AppVerdict::Fail, CertificateFinding::WrongName { host })
    } else if now > cert.not_after {
        let days = (now - cert.not_after) / 86_400;
        (AppVerdict::Fail, CertificateFinding::Expired { days })
    } else if now < cert.not_before {
        (AppVerdict::Fail, CertificateFinding::NotYetValid)
    } else if !trusted_somewhere && !config.insecure {
        if info.trusted_system {
            (AppVerdict::Warn, CertificateFinding::TrustedOnlyHere)
        } else {
            (AppVerdict::Fail, CertificateFinding::TrustedNowhere)
        }
    } else if info.days_left < i64::from(config.cert_warn_days) {
        let days = info.days_left;
        (AppVerdict::Warn, CertificateFinding::ExpiresSoon { days })
    } else if config.insecure && !trusted_somewhere {
        (AppVerdict::Pass, CertificateFinding::Unchecked)
    } else {
        (AppVerdict::Pass, CertificateFinding::Fine)
    };
    let mut r = AppResult::new(AppProbe::Tls, verdict, Finding::Certificate(finding));
    r.insecure = config.insecure;
    r
}

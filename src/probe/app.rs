//! Application probes: once a TCP port is open, ask what answers (TLS and its certificate,
//! ConnectWise Automate's agent endpoint, a MySQL greeting, an HTTP server). An open port
//! proves little when TLS inspection, captive portals and proxies answer for anything.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::lang::Lang;
use crate::model::AppProbe;
use crate::tr;

/// What an application probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppResult {
    pub probe: AppProbe,
    pub verdict: AppVerdict,
    /// One line for the report's reason.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// The Automate version from `/LabTech/agent.aspx`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automate_version: Option<String>,
    /// MySQL server version, or the HTTP `Server` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql_error: Option<u16>,
    /// The certificate's trust was not checked (`--insecure`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppVerdict {
    Pass,
    Warn,
    Fail,
}

/// The TLS session and certificate as seen from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    pub version: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub issuer: String,
    pub not_after: String,
    pub days_left: i64,
    /// Trusted by the public (webpki) roots.
    pub trusted_public: bool,
    /// Trusted by this machine's certificate store.
    pub trusted_system: bool,
    /// Trusted by `--ca-file`, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_ca_file: Option<bool>,
}

/// Settings of the application probes, and the verifiers built once per run.
#[derive(Debug)]
pub struct AppConfig {
    pub insecure: bool,
    /// The language of the summaries.
    pub lang: Lang,
    pub cert_warn_days: u32,
    extra_roots: Vec<CertificateDer<'static>>,
    verifiers: OnceLock<Verifiers>,
}

#[derive(Debug)]
struct Verifiers {
    provider: Arc<CryptoProvider>,
    public: Arc<WebPkiServerVerifier>,
    /// `None` when this machine has no usable certificate store.
    system: Option<Arc<dyn ServerCertVerifier>>,
    ca_file: Option<Arc<WebPkiServerVerifier>>,
}

impl AppConfig {
    /// `ca_file`: PEM certificates of a private CA to trust as well.
    pub fn new(
        insecure: bool,
        cert_warn_days: u32,
        ca_file: Option<&Path>,
        lang: Lang,
    ) -> anyhow::Result<AppConfig> {
        let mut extra_roots = Vec::new();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read --ca-file {}: {e}", path.display()))?;
            for item in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: CertificateDer<'static> = item.map_err(|e| {
                    anyhow::anyhow!("--ca-file {} is not PEM certificates: {e}", path.display())
                })?;
                extra_roots.push(cert);
            }
            anyhow::ensure!(
                !extra_roots.is_empty(),
                "--ca-file {} holds no certificate: give the CA's certificate in PEM form",
                path.display()
            );
        }
        Ok(AppConfig {
            insecure,
            lang,
            cert_warn_days,
            extra_roots,
            verifiers: OnceLock::new(),
        })
    }

    fn verifiers(&self) -> &Verifiers {
        self.verifiers.get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let public_roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let public = WebPkiServerVerifier::builder_with_provider(
                Arc::new(public_roots),
                Arc::clone(&provider),
            )
            .build()
            .expect("the public roots form a verifier");
            let system = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
                .ok()
                .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>);
            let ca_file = (!self.extra_roots.is_empty()).then(|| {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(self.extra_roots.iter().cloned());
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .expect("a non-empty root store forms a verifier")
            });
            Verifiers {
                provider,
                public,
                system,
                ca_file,
            }
        })
    }
}

/// Runs `probe` on a connected stream. The caller bounds the time.
pub async fn run(
    probe: AppProbe,
    stream: TcpStream,
    host: &str,
    ip: IpAddr,
    config: &AppConfig,
) -> AppResult {
    match probe {
        AppProbe::Mysql => mysql(stream, config.lang).await,
        AppProbe::Http => {
            let mut stream = stream;
            http(&mut stream, host, "/", config.lang).await
        }
        AppProbe::Tls | AppProbe::Automate => {
            tls_and_maybe_automate(probe, stream, host, ip, config).await
        }
    }
}

/// Text the far side chose (a `Server` header, a certificate's names, a MySQL version or
/// error) as it may be shown: control characters (terminal escapes, bells, line breaks) and
/// bidirectional overrides become U+FFFD, and at most 256 characters are kept, so nothing a
/// remote machine sends can clear a technician's screen, retitle the window or reorder a
/// report line.
pub fn untrusted(text: &str) -> String {
    // Above the longest DNS name (253), so certificate names still match as they are.
    const MAX_CHARS: usize = 256;
    let mut out: String = text
        .chars()
        .take(MAX_CHARS)
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A finding with only a verdict and a summary; probes fill in the rest.
pub fn result(probe: AppProbe, verdict: AppVerdict, summary: impl Into<String>) -> AppResult {
    AppResult {
        probe,
        verdict,
        summary: summary.into(),
        tls: None,
        automate_version: None,
        server: None,
        http_status: None,
        mysql_error: None,
        insecure: false,
    }
}

// ---------------------------------------------------------------- MySQL

/// Reads the server's first packet; never sends anything (no credentials, no handshake).
async fn mysql(mut stream: TcpStream, lang: Lang) -> AppResult {
    let fail = |summary: String| result(AppProbe::Mysql, AppVerdict::Fail, summary);
    let mut header = [0u8; 4];
    if stream.read_exact(&mut header).await.is_err() {
        return fail(tr!(
            lang,
            "the port is open but no MySQL answered (it closed without a greeting)",
            "der Port ist offen, aber kein MySQL hat geantwortet (Verbindung ohne Begrüßung geschlossen)"
        ));
    }
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut payload = vec![0u8; len.min(16 * 1024)];
    if stream.read_exact(&mut payload).await.is_err() || payload.is_empty() {
        return fail(tr!(
            lang,
            "the port is open but no MySQL answered (a short, broken greeting)",
            "der Port ist offen, aber kein MySQL hat geantwortet (kurze, kaputte Begrüßung)"
        ));
    }
    parse_mysql_greeting(&payload, lang)
}

/// The first packet of a MySQL/MariaDB server: a protocol-10 handshake or an error.
pub fn parse_mysql_greeting(payload: &[u8], lang: Lang) -> AppResult {
    match payload.first() {
        Some(10) => {
            let end = payload[1..]
                .iter()
                .position(|&b| b == 0)
                .map_or(payload.len(), |p| p + 1);
            let raw = untrusted(&String::from_utf8_lossy(&payload[1..end]));
            // MariaDB reports "5.5.5-10.11.6-MariaDB..." to old clients: show the real version.
            let version = match raw.strip_prefix("5.5.5-") {
                Some(rest) if rest.contains("MariaDB") => rest.to_string(),
                _ => raw,
            };
            let product = if version.contains("MariaDB") {
                "MariaDB"
            } else {
                "MySQL"
            };
            let mut r = result(
                AppProbe::Mysql,
                AppVerdict::Pass,
                tr!(
                    lang,
                    "{product} {version} answered",
                    "{product} {version} hat geantwortet"
                ),
            );
            r.server = Some(version);
            r
        }
        Some(0xff) if payload.len() >= 3 => {
            let code = u16::from_le_bytes([payload[1], payload[2]]);
            let mut message = &payload[3..];
            // Protocol 4.1 errors carry '#' and a five-character SQL state first.
            if message.first() == Some(&b'#') && message.len() >= 6 {
                message = &message[6..];
            }
            let message = untrusted(String::from_utf8_lossy(message).trim());
            let summary = if code == 1130 {
                tr!(
                    lang,
                    "MySQL refuses this host (error 1130: {message}): grant this host access on the database server",
                    "MySQL weist diesen Host ab (Fehler 1130: {message}): diesem Host auf dem Datenbankserver Zugriff gewähren"
                )
            } else {
                tr!(
                    lang,
                    "MySQL answered with error {code}: {message}",
                    "MySQL hat mit Fehler {code} geantwortet: {message}"
                )
            };
            let mut r = result(AppProbe::Mysql, AppVerdict::Fail, summary);
            r.mysql_error = Some(code);
            r
        }
        _ => result(
            AppProbe::Mysql,
            AppVerdict::Fail,
            tr!(
                lang,
                "the port is open but what answered is not MySQL",
                "der Port ist offen, aber was geantwortet hat, ist kein MySQL"
            ),
        ),
    }
}

// ---------------------------------------------------------------- HTTP

async fn http<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    path: &str,
    lang: Lang,
) -> AppResult {
    let response = match request(stream, host, path, 16 * 1024).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return result(
                AppProbe::Http,
                AppVerdict::Fail,
                tr!(
                    lang,
                    "the port is open but no HTTP answered ({e})",
                    "der Port ist offen, aber kein HTTP hat geantwortet ({e})"
                ),
            )
        }
    };
    let head = parse_http_head(&response);
    match head.status {
        Some(status) => {
            let server = head.server.clone();
            let summary = match &server {
                Some(s) => format!("HTTP {status} {} (Server: {s})", head.reason),
                None => format!("HTTP {status} {}", head.reason),
            };
            let mut r = result(
                AppProbe::Http,
                AppVerdict::Pass,
                summary.trim_end().to_string(),
            );
            r.http_status = Some(status);
            r.server = server;
            r
        }
        None => result(
            AppProbe::Http,
            AppVerdict::Fail,
            tr!(
                lang,
                "the port is open but no HTTP answered",
                "der Port ist offen, aber kein HTTP hat geantwortet"
            ),
        ),
    }
}

/// Sends a GET and reads the response until the peer closes or `limit` bytes arrived.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    path: &str,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let host_header = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: automate-ports/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while response.len() < limit {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // A TLS peer that closes without close_notify still sent its answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
                break
            }
            Err(e) => return Err(e),
        }
    }
    Ok(response)
}

#[doc(hidden)]
#[derive(Debug, Default)]
pub struct HttpHead {
    status: Option<u16>,
    reason: String,
    server: Option<String>,
}

#[doc(hidden)]
pub fn parse_http_head(response: &[u8]) -> HttpHead {
    let text = String::from_utf8_lossy(&response[..response.len().min(16 * 1024)]);
    let mut lines = text.split("\r\n");
    let mut head = HttpHead::default();
    if let Some(status_line) = lines.next() {
        let mut parts = status_line.splitn(3, ' ');
        if parts.next().is_some_and(|v| v.starts_with("HTTP/")) {
            head.status = parts.next().and_then(|s| s.parse().ok());
            head.reason = untrusted(parts.next().unwrap_or(""));
        }
    }
    for line in lines.take_while(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("server") {
                head.server = Some(untrusted(value.trim()));
            }
        }
    }
    head
}

/// The version in Automate's answer to `/LabTech/agent.aspx`: six pipes, then
/// digits.digits (what community agent tooling matches).
pub fn automate_version(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let mut rest: &str = &text;
    while let Some(at) = rest.find("||||||") {
        let after = rest[at..].trim_start_matches('|');
        let version: String = after
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = version.split('.');
        let (major, minor) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !major.is_empty() && !minor.is_empty() {
            return Some(version.trim_end_matches('.').to_string());
        }
        rest = &rest[at + 6..];
    }
    None
}

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

async fn tls_and_maybe_automate(
    probe: AppProbe,
    stream: TcpStream,
    host: &str,
    ip: IpAddr,
    config: &AppConfig,
) -> AppResult {
    let verifiers = config.verifiers();
    let lang = config.lang;
    let name = match host.parse::<IpAddr>() {
        Ok(literal) => ServerName::IpAddress(literal.into()),
        Err(_) => match ServerName::try_from(host.to_string()) {
            Ok(n) => n,
            Err(_) => ServerName::IpAddress(ip.into()),
        },
    };
    let client = match rustls::ClientConfig::builder_with_provider(Arc::clone(&verifiers.provider))
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Examine(Arc::clone(&verifiers.provider))))
            .with_no_client_auth(),
        Err(e) => {
            let summary = tr!(
                lang,
                "cannot set up TLS: {e}",
                "TLS lässt sich nicht einrichten: {e}"
            );
            return result(probe, AppVerdict::Fail, summary);
        }
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let mut tls = match connector.connect(name.clone(), stream).await {
        Ok(tls) => tls,
        Err(e) => {
            let summary = tr!(
                lang,
                "the port is open but the TLS handshake failed ({e}): not a TLS server, or a proxy that breaks TLS",
                "der Port ist offen, aber der TLS-Handshake schlug fehl ({e}): kein TLS-Server, oder ein Proxy, der TLS bricht"
            );
            return result(probe, AppVerdict::Fail, summary);
        }
    };
    let (tls_result, info) = {
        let conn = tls.get_ref().1;
        let version = conn
            .protocol_version()
            .map_or("TLS".to_string(), |v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
                rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
                other => format!("{other:?}"),
            });
        let chain: Vec<CertificateDer<'static>> = conn
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        judge_certificate(&chain, &name, host, ip, &version, config, verifiers)
    };
    if probe == AppProbe::Tls {
        return tls_result;
    }

    // Automate: ask the agent endpoint over the session just examined.
    let response = request(&mut tls, host, "/LabTech/agent.aspx", 64 * 1024).await;
    // On a pass this is the certificate in brief, with "insecure" when trust was not checked.
    let tls_note = &tls_result.summary;
    let answered_but = |version: &str| {
        tr!(
            lang,
            "ConnectWise Automate {version} answered, but {tls_note}",
            "ConnectWise Automate {version} hat geantwortet, aber {tls_note}"
        )
    };
    let mut r = match response {
        Ok(bytes) => match automate_version(&bytes) {
            Some(version) if tls_result.verdict != AppVerdict::Fail => {
                let mut r = result(
                    AppProbe::Automate,
                    tls_result.verdict,
                    tr!(
                        lang,
                        "ConnectWise Automate {version} answered ({tls_note})",
                        "ConnectWise Automate {version} hat geantwortet ({tls_note})"
                    ),
                );
                if tls_result.verdict == AppVerdict::Warn {
                    r.summary = answered_but(&version);
                }
                r.automate_version = Some(version);
                r
            }
            Some(version) => {
                let mut r = result(AppProbe::Automate, AppVerdict::Fail, answered_but(&version));
                r.automate_version = Some(version);
                r
            }
            None => {
                let head = parse_http_head(&bytes);
                let what = match (head.status, &head.server) {
                    (Some(s), Some(server)) => format!(" (HTTP {s}, Server: {server})"),
                    (Some(s), None) => format!(" (HTTP {s})"),
                    _ => String::new(),
                };
                let mut r = result(
                    AppProbe::Automate,
                    AppVerdict::Fail,
                    tr!(
                        lang,
                        "the port is open but Automate did not answer{what}: proxy, captive portal, or another web server?",
                        "der Port ist offen, aber Automate hat nicht geantwortet{what}: ein Proxy, ein Captive Portal oder ein anderer Webserver?"
                    ),
                );
                r.http_status = head.status;
                r.server = head.server;
                r
            }
        },
        Err(e) => result(
            AppProbe::Automate,
            AppVerdict::Fail,
            tr!(
                lang,
                "the port is open but Automate did not answer ({e}): proxy, captive portal, or another web server?",
                "der Port ist offen, aber Automate hat nicht geantwortet ({e}): ein Proxy, ein Captive Portal oder ein anderer Webserver?"
            ),
        ),
    };
    r.tls = info;
    r.insecure = tls_result.insecure;
    r
}

fn tls_summary(info: &TlsInfo, lang: Lang) -> String {
    let days = info.days_left.abs();
    let expiry = if info.days_left >= 0 {
        tr!(lang, "expires in {days} days", "läuft in {days} Tagen ab")
    } else {
        tr!(
            lang,
            "expired {days} days ago",
            "vor {days} Tagen abgelaufen"
        )
    };
    let (version, subject, issuer) = (&info.version, &info.subject, &info.issuer);
    tr!(
        lang,
        "{version}, certificate for {subject} by {issuer}, {expiry}",
        "{version}, Zertifikat für {subject} von {issuer}, {expiry}"
    )
}

/// Judges the certificate: name, validity dates, and which trust stores accept the chain.
#[allow(clippy::too_many_arguments)]
fn judge_certificate(
    chain: &[CertificateDer<'static>],
    name: &ServerName<'static>,
    host: &str,
    ip: IpAddr,
    version: &str,
    config: &AppConfig,
    verifiers: &Verifiers,
) -> (AppResult, Option<TlsInfo>) {
    let lang = config.lang;
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return (
            result(
                AppProbe::Tls,
                AppVerdict::Fail,
                lang.pick(
                    "the server sent no certificate",
                    "der Server hat kein Zertifikat geschickt",
                ),
            ),
            None,
        );
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity) else {
        return (
            result(
                AppProbe::Tls,
                AppVerdict::Fail,
                lang.pick(
                    "the server's certificate does not parse",
                    "das Zertifikat des Servers ist nicht lesbar",
                ),
            ),
            None,
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let not_after = cert.validity().not_after.timestamp();
    let not_before = cert.validity().not_before.timestamp();
    let mut sans: Vec<String> = Vec::new();
    let mut san_ips: Vec<IpAddr> = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for general in &ext.value.general_names {
            match general {
                x509_parser::extensions::GeneralName::DNSName(n) => sans.push(untrusted(n)),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    let parsed = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(a) = parsed {
                        sans.push(a.to_string());
                        san_ips.push(a);
                    }
                }
                _ => {}
            }
        }
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(untrusted);
    let subject = common_name
        .clone()
        .or_else(|| sans.first().cloned())
        .unwrap_or_else(|| untrusted(&cert.subject().to_string()));
    let issuer = cert
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map_or_else(|| untrusted(&cert.issuer().to_string()), untrusted);

    let trusted = |v: &dyn ServerCertVerifier| {
        match v.verify_server_cert(end_entity, intermediates, name, &[], UnixTime::now()) {
            // These errors say the chain is trusted but the certificate itself is wrong; the
            // name and dates are judged on their own below.
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }
                | CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            )) => true,
            Err(_) => false,
        }
    };
    let info = TlsInfo {
        version: version.to_string(),
        subject,
        sans: sans.clone(),
        issuer,
        not_after: humantime::format_rfc3339_seconds(
            UNIX_EPOCH + std::time::Duration::from_secs(not_after.max(0) as u64),
        )
        .to_string(),
        days_left: (not_after - now).div_euclid(86_400),
        trusted_public: trusted(verifiers.public.as_ref()),
        trusted_system: verifiers.system.as_deref().is_some_and(trusted),
        trusted_ca_file: verifiers.ca_file.as_deref().map(|v| trusted(v)),
    };

    let name_ok = match host.parse::<IpAddr>() {
        Ok(literal) => san_ips.contains(&literal),
        Err(_) => {
            sans.iter().any(|san| dns_matches(san, host))
                || (sans.is_empty()
                    && common_name
                        .as_deref()
                        .is_some_and(|cn| dns_matches(cn, host)))
        }
    };
    let _ = ip;
    let described = tls_summary(&info, lang);
    let mut r = result(AppProbe::Tls, AppVerdict::Pass, described.clone());
    r.insecure = config.insecure;
    let trusted_somewhere = info.trusted_public || info.trusted_ca_file == Some(true);
    if !name_ok {
        r.verdict = AppVerdict::Fail;
        let names = if sans.is_empty() {
            info.subject.clone()
        } else {
            sans.join(", ")
        };
        r.summary = tr!(
            lang,
            "the certificate is for {names}, not {host} ({described})",
            "das Zertifikat gilt für {names}, nicht für {host} ({described})"
        );
    } else if now > not_after {
        r.verdict = AppVerdict::Fail;
        let days = (now - not_after) / 86_400;
        r.summary = tr!(
            lang,
            "the certificate expired {days} days ago ({described})",
            "das Zertifikat ist vor {days} Tagen abgelaufen ({described})"
        );
    } else if now < not_before {
        r.verdict = AppVerdict::Fail;
        r.summary = tr!(
            lang,
            "the certificate is not valid yet ({described})",
            "das Zertifikat ist noch nicht gültig ({described})"
        );
    } else if !trusted_somewhere && !config.insecure {
        if info.trusted_system {
            r.verdict = AppVerdict::Warn;
            r.summary = tr!(
                lang,
                "trusted by this machine but not by public roots: likely TLS inspection or a private CA ({described})",
                "von diesem Rechner vertraut, aber nicht von öffentlichen Stammzertifikaten: wahrscheinlich TLS-Inspektion oder eine private CA ({described})"
            );
        } else {
            r.verdict = AppVerdict::Fail;
            r.summary = tr!(
                lang,
                "not trusted by this machine or public roots (self-signed or unknown CA): likely TLS inspection or a private CA ({described})",
                "weder von diesem Rechner noch von öffentlichen Stammzertifikaten vertraut (selbstsigniert oder unbekannte CA): wahrscheinlich TLS-Inspektion oder eine private CA ({described})"
            );
        }
    } else if info.days_left < i64::from(config.cert_warn_days) {
        r.verdict = AppVerdict::Warn;
        let days = info.days_left;
        r.summary = tr!(
            lang,
            "the certificate expires in {days} days ({described})",
            "das Zertifikat läuft in {days} Tagen ab ({described})"
        );
    } else if config.insecure && !trusted_somewhere {
        r.summary = tr!(
            lang,
            "{described}; insecure: trust not checked",
            "{described}; insecure: Vertrauen nicht geprüft"
        );
    }
    r.tls = Some(info.clone());
    (r, Some(info))
}

/// Host name matching with a single left-most wildcard label (RFC 6125).
fn dns_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (
        pattern.trim_end_matches('.').to_ascii_lowercase(),
        host.trim_end_matches('.').to_ascii_lowercase(),
    );
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_keeps_its_words_and_loses_its_controls() {
        assert_eq!(untrusted("nginx/1.24"), "nginx/1.24");
        assert_eq!(
            untrusted("evil\x1b[2J\x1b]0;x\x07\r\nX-Injected: 1"),
            "evil\u{fffd}[2J\u{fffd}]0;x\u{fffd}\u{fffd}\u{fffd}X-Injected: 1"
        );
        assert_eq!(untrusted("a\u{202e}cba"), "a\u{fffd}cba");
        let long = "x".repeat(300);
        assert_eq!(untrusted(&long).chars().count(), 257);
        assert!(untrusted(&long).ends_with('…'));
        assert_eq!(untrusted(&"y".repeat(253)), "y".repeat(253));
    }

    #[test]
    fn mysql_greetings_and_errors() {
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"8.0.36\0rest");
        assert_eq!(
            parse_mysql_greeting(&greeting, Lang::En).summary,
            "MySQL 8.0.36 answered"
        );
        let mut maria = vec![10];
        maria.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        assert_eq!(
            parse_mysql_greeting(&maria, Lang::En).summary,
            "MariaDB 10.11.6-MariaDB-0+deb12u1 answered"
        );
        let mut refused = vec![0xff, 0x6a, 0x04];
        refused
            .extend_from_slice(b"Host '192.0.2.1' is not allowed to connect to this MySQL server");
        let r = parse_mysql_greeting(&refused, Lang::En);
        assert_eq!((r.verdict, r.mysql_error), (AppVerdict::Fail, Some(1130)));
        assert!(
            r.summary.contains("grant this host access"),
            "{}",
            r.summary
        );
        let mut sqlstate = vec![0xff, 0x15, 0x04, b'#'];
        sqlstate.extend_from_slice(b"28000Access denied");
        assert!(parse_mysql_greeting(&sqlstate, Lang::En)
            .summary
            .ends_with("error 1045: Access denied"));
        assert_eq!(
            parse_mysql_greeting(b"SSH-2.0-OpenSSH", Lang::En).verdict,
            AppVerdict::Fail
        );
    }

    #[test]
    fn mysql_findings_in_german() {
        let mut greeting = vec![10];
        greeting.extend_from_slice(b"8.0.36\0rest");
        assert_eq!(
            parse_mysql_greeting(&greeting, Lang::De).summary,
            "MySQL 8.0.36 hat geantwortet"
        );
        let mut refused = vec![0xff, 0x6a, 0x04];
        refused.extend_from_slice(b"Host '192.0.2.1' is not allowed");
        let r = parse_mysql_greeting(&refused, Lang::De);
        assert_eq!(
            r.summary,
            "MySQL weist diesen Host ab (Fehler 1130: Host '192.0.2.1' is not allowed): diesem Host auf dem Datenbankserver Zugriff gewähren"
        );
    }

    #[test]
    fn automate_versions() {
        assert_eq!(
            automate_version(b"1|2|||||||200.264"),
            Some("200.264".into())
        );
        assert_eq!(automate_version(b"||||||2024.11"), Some("2024.11".into()));
        assert_eq!(automate_version(b"<html>hello</html>"), None);
        assert_eq!(automate_version(b"||||||abc"), None);
    }

    #[test]
    fn http_heads() {
        let head =
            parse_http_head(b"HTTP/1.1 302 Found\r\nServer: nginx\r\nLocation: /x\r\n\r\nbody");
        assert_eq!(
            (head.status, head.reason.as_str(), head.server.as_deref()),
            (Some(302), "Found", Some("nginx"))
        );
        assert_eq!(parse_http_head(b"SSH-2.0-x\r\n").status, None);
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_matches("*.example.com", "automate.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("Automate.Example.com", "automate.example.com"));
    }
}

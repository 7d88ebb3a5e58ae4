//! Application probes: once a TCP port is open, ask what answers (TLS and its certificate,
//! ConnectWise Automate's agent endpoint, a MySQL greeting, an HTTP server). An open port
//! proves little when TLS inspection, captive portals and proxies answer for anything.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use tokio::net::TcpStream;

use crate::endpoint::Host;
use crate::model::AppProbe;
pub use crate::model::{AppResult, AppVerdict, Finding, TlsInfo};

mod automate;
mod certificate;
mod http;
pub mod installer;
mod mysql;
pub mod proxy;
mod relay;
mod schannel;
mod tls;
pub(crate) mod versions;

pub use http::{automate_version, parse_http_head, HttpHead};
use http::{http, request};
use mysql::mysql;
pub use mysql::parse_mysql_greeting;
use tls::tls_and_maybe_automate;

/// `--cert-warn-days`: warn when the certificate expires sooner than this.
pub const CERT_WARN_DAYS: u32 = 14;

/// Settings of the application probes, and the verifiers built once per run.
#[derive(Debug)]
pub struct AppConfig {
    pub insecure: bool,
    pub cert_warn_days: u32,
    /// HTTP and HTTPS probes go through this proxy (`--proxy`, or the agent's own).
    pub proxy: Option<proxy::Proxy>,
    /// What the Automate agent on this machine offers and asks Schannel for (Windows, agent
    /// role), judged from its settings.
    pub agent_offer: Option<crate::tlsoffer::AgentOffer>,
    /// `--installer-token`: the installer download asks for this token's installer.
    pub installer_token: Option<String>,
    extra_roots: Vec<CertificateDer<'static>>,
    verifiers: OnceLock<Verifiers>,
}

#[derive(Debug)]
pub(super) struct Verifiers {
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
            cert_warn_days,
            proxy: None,
            agent_offer: None,
            installer_token: None,
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
    host: &Host,
    ip: IpAddr,
    config: &AppConfig,
) -> AppResult {
    match probe {
        AppProbe::Mysql => mysql(stream).await,
        AppProbe::Relay => relay::relay(stream).await,
        AppProbe::Http => {
            let mut stream = stream;
            http(&mut stream, host, "/").await
        }
        AppProbe::Tls | AppProbe::Automate | AppProbe::Installer => {
            tls_and_maybe_automate(probe, stream, host, ip, config).await
        }
        AppProbe::AutomateHttp => {
            let mut stream = stream;
            let response = request(&mut stream, host, "/LabTech/agent.aspx", 64 * 1024).await;
            let plain =
                AppResult::new(AppProbe::AutomateHttp, AppVerdict::Pass, Finding::PlainHttp);
            let mut r = automate::automate_answer(response, &plain);
            r.probe = AppProbe::AutomateHttp;
            r
        }
        AppProbe::InstallerHttp => {
            let mut stream = stream;
            let token = config.installer_token.as_deref();
            let path = installer::path(token);
            let response = request(&mut stream, host, &path, installer::PREFIX).await;
            let plain = AppResult::new(
                AppProbe::InstallerHttp,
                AppVerdict::Pass,
                Finding::PlainHttp,
            );
            installer::answer(AppProbe::InstallerHttp, response, &plain, token.is_some())
        }
    }
}

pub use crate::model::untrusted;

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
}

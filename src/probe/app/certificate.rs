//! What a server certificate says (names, addresses, dates, issuer), its text made safe to
//! print, and whether it is for the host asked for.

use std::net::IpAddr;

use rustls::pki_types::CertificateDer;

use super::untrusted;
use crate::endpoint::Host;

/// What the end-entity certificate says, its text made safe to print.
pub(super) struct Certificate {
    pub(super) not_before: i64,
    pub(super) not_after: i64,
    /// DNS names and addresses, as text.
    pub(super) sans: Vec<String>,
    pub(super) san_ips: Vec<IpAddr>,
    pub(super) common_name: Option<String>,
    pub(super) issuer: String,
    pub(super) subject: String,
}

impl Certificate {
    pub(super) fn read(der: &CertificateDer<'_>) -> Option<Certificate> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut sans: Vec<String> = Vec::new();
        let mut san_ips: Vec<IpAddr> = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for general in &ext.value.general_names {
                match general {
                    x509_parser::extensions::GeneralName::DNSName(n) => sans.push(untrusted(n)),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        if let Some(a) = address(bytes) {
                            sans.push(a.to_string());
                            san_ips.push(a);
                        }
                    }
                    _ => {}
                }
            }
        }
        let first_cn = |name: &x509_parser::x509::X509Name<'_>| {
            name.iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(untrusted)
        };
        let common_name = first_cn(cert.subject());
        let subject = common_name
            .clone()
            .or_else(|| sans.first().cloned())
            .unwrap_or_else(|| untrusted(&cert.subject().to_string()));
        Some(Certificate {
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            issuer: first_cn(cert.issuer())
                .unwrap_or_else(|| untrusted(&cert.issuer().to_string())),
            sans,
            san_ips,
            common_name,
            subject,
        })
    }

    /// Whether it is for `host`: an address literal among the SAN addresses, else a name
    /// among the SAN names (the common name only when there are none).
    pub(super) fn is_for(&self, host: &Host) -> bool {
        match host.name() {
            None => host.ip().is_some_and(|ip| self.san_ips.contains(&ip)),
            Some(host) => {
                self.sans.iter().any(|san| dns_matches(san, host))
                    || (self.sans.is_empty()
                        && self
                            .common_name
                            .as_deref()
                            .is_some_and(|cn| dns_matches(cn, host)))
            }
        }
    }
}

fn address(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
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
    fn wildcards_match_one_label() {
        assert!(dns_matches("*.example.com", "automate.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("Automate.Example.com", "automate.example.com"));
    }

    #[test]
    fn an_address_matches_address_names_and_a_name_dns_names() {
        let cert = Certificate {
            not_before: 0,
            not_after: 0,
            sans: vec!["a.example".into(), "fe80::1".into()],
            san_ips: vec!["fe80::1".parse().unwrap()],
            common_name: Some("192.0.2.1".into()),
            issuer: String::new(),
            subject: String::new(),
        };
        let host = |s: &str| Host::parse(s).unwrap();
        assert!(cert.is_for(&host("A.example")));
        // The zone says how to reach the address; the certificate names the address.
        assert!(cert.is_for(&host("fe80::1%eth0")));
        assert!(cert.is_for(&host("[fe80::1]")));
        // An address is never matched as text against a DNS name or the common name.
        assert!(!cert.is_for(&host("192.0.2.1")));
        assert!(!cert.is_for(&host("b.example")));
    }
}

//! What a server certificate says (names, addresses, dates, issuer), its text made safe to
//! print, and whether it is for the host asked for.

use std::net::IpAddr;

use rustls::pki_types::CertificateDer;

use super::untrusted;

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
    pub(super) fn is_for(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(literal) => self.san_ips.contains(&literal),
            Err(_) => {
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
}

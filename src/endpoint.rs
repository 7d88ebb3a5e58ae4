//! A server as the Automate agent names it: `https://automate.example.com`,
//! `http://server:8080`, or a bare host. The scheme and an explicit port decide where the
//! agent's web check goes (http: 80, https: 443); the bare host is what is resolved.
//! `--server` takes the same forms, so a technician can paste the agent's own setting.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A host with, where given, the scheme and port the agent uses to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub scheme: Option<Scheme>,
    pub port: Option<u16>,
}

impl Endpoint {
    /// Reads `http://host:port/`, `https://[v6]:8443`, `host` or `v6 literal`. A path is
    /// allowed and dropped (agents write `https://server/`); any other scheme is an error.
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        Endpoint::parse_with(raw, false)
    }

    /// Like [`Endpoint::parse`], and also `host:port` without a scheme: for targets whose
    /// checks take the port from the host (`--target relay=host:443`).
    pub fn parse_any(raw: &str) -> Result<Endpoint, String> {
        Endpoint::parse_with(raw, true)
    }

    fn parse_with(raw: &str, bare_port: bool) -> Result<Endpoint, String> {
        let text = raw.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Some(Scheme::Http), rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Some(Scheme::Https), rest),
            Some((s, _)) => {
                return Err(format!(
                    "'{text}' has the scheme '{s}': use http:// or https://, or the host alone"
                ))
            }
            None => (None, text),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(format!(
                "'{text}' carries a user name: give the server alone"
            ));
        }
        let (host, port) = split_port(authority)
            .ok_or_else(|| format!("'{text}' has a port that is not a number from 1 to 65535"))?;
        if port.is_some() && scheme.is_none() && !bare_port {
            return Err(format!(
                "'{text}' looks like host:port: give the host alone (the role decides the ports), or a URL such as https://{authority}"
            ));
        }
        let host = host.trim_end_matches('.').to_string();
        if host.is_empty() {
            return Err(format!("'{text}' names no host"));
        }
        Ok(Endpoint { host, scheme, port })
    }

    /// The port the agent's web traffic goes to, when the endpoint says: the explicit port,
    /// else the scheme's. `None`: the role's own port.
    pub fn web_port(&self) -> Option<u16> {
        if self.port.is_some() {
            return self.port;
        }
        match self.scheme? {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
        }
    }

    /// Plain HTTP, no TLS.
    pub fn is_plain(&self) -> bool {
        self.scheme == Some(Scheme::Http)
    }
}

/// `host:port`, `[v6]:port`, `[v6]`, or a bare v6 literal (several colons, no port).
/// `None` when a port is given but is not 1-65535.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else if authority.matches(':').count() == 1 {
        let (host, port) = authority.split_once(':')?;
        (host, Some(port))
    } else {
        (authority, None)
    };
    match port {
        None => Some((host, None)),
        Some(p) => {
            let n: u16 = p.trim().parse().ok()?;
            (n != 0).then_some((host, Some(n)))
        }
    }
}

/// A host name or an IP address; no URL, no port.
pub fn parse_host(s: &str) -> Result<String, String> {
    let host = s.trim();
    if host.is_empty() {
        return Err(
            "the host is empty: give a name like automate.example.com or an address".into(),
        );
    }
    if let Some((scheme, _)) = host.split_once("://") {
        return Err(format!(
            "'{host}' is a URL: give only the host name, without '{scheme}://' and path"
        ));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(bare.to_string());
    }
    if crate::resolve::zoned(bare)?.is_some() {
        return Ok(bare.to_string());
    }
    if host.contains(':') {
        return Err(format!(
            "'{host}' looks like host:port: give only the host; the role decides the ports"
        ));
    }
    let valid = host.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !valid || host.len() > 253 {
        return Err(format!("'{host}' is not a valid host name"));
    }
    Ok(host.to_string())
}

impl fmt::Display for Endpoint {
    /// The form `parse` reads back: a URL when there is a scheme, else the host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.scheme, self.port) {
            (None, Some(p)) => write!(f, "{host}:{p}"),
            (None, None) => f.write_str(&self.host),
            (Some(s), port) => {
                let scheme = if s == Scheme::Http { "http" } else { "https" };
                match port {
                    Some(p) => write!(f, "{scheme}://{host}:{p}"),
                    None => write!(f, "{scheme}://{host}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(raw: &str) -> Endpoint {
        Endpoint::parse(raw).unwrap()
    }

    #[test]
    fn the_forms_agents_and_technicians_write() {
        let plain = ep("http://127.0.0.1:18080");
        assert_eq!(
            (plain.host.as_str(), plain.web_port(), plain.is_plain()),
            ("127.0.0.1", Some(18080), true)
        );
        assert_eq!(ep("https://automate.example.com/").web_port(), Some(443));
        assert_eq!(ep("HTTP://a.example").web_port(), Some(80));
        assert_eq!(ep("https://[2001:db8::5]:8443/LabTech").host, "2001:db8::5");
        assert_eq!(ep("https://[2001:db8::5]:8443").web_port(), Some(8443));
        assert_eq!(ep("2001:db8::7").host, "2001:db8::7");
        assert_eq!(ep("2001:db8::7").web_port(), None);
        assert_eq!(ep("automate.example.com.").host, "automate.example.com");
        for (raw, back) in [
            ("http://a.example:8080/", "http://a.example:8080"),
            ("https://[::1]:8443", "https://[::1]:8443"),
            ("a.example", "a.example"),
        ] {
            assert_eq!(ep(raw).to_string(), back);
            assert_eq!(ep(back), ep(raw));
        }
    }

    #[test]
    fn mistakes_are_named() {
        for (raw, says) in [
            ("ftp://a.example", "scheme 'ftp'"),
            ("a.example:443", "host:port"),
            ("https://a.example:0", "not a number"),
            ("https://a.example:99999", "not a number"),
            ("https://user@a.example", "user name"),
            ("https://", "names no host"),
        ] {
            let e = Endpoint::parse(raw).unwrap_err();
            assert!(e.contains(says), "{raw}: {e}");
        }
    }
}

//! A server as the Automate agent names it: `https://automate.example.com`,
//! `http://server:8080`, or a bare host. The scheme and an explicit port decide where the
//! agent's web check goes (http: 80, https: 443); the bare host is what is resolved.
//! `--server` takes the same forms, so a technician can paste the agent's own setting.
//! Every host a user, a profile or an agent's settings names is read here once, into a
//! [`Host`], and travels typed from there.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A host, checked: a name to resolve, an address, or a link-local IPv6 address with the
/// zone (interface) it is reached through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
    /// `fe80::1%eth0` or `fe80::1%7`: the zone as written; [`Host::scope`] finds its interface.
    Zoned {
        ip: Ipv6Addr,
        zone: String,
    },
}

impl Host {
    /// A host name or an IP address (brackets allowed), with a zone for a link-local IPv6
    /// address; no URL, no port. Only the text is read: an interface a zone names is looked
    /// up by [`Host::scope`], not while the command line is parsed.
    pub fn parse(s: &str) -> Result<Host, String> {
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
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        if let Some((addr, zone)) = bare.split_once('%') {
            let Ok(ip) = addr.parse::<Ipv6Addr>() else {
                return Err(format!(
                    "'{host}' is not an IPv6 address with a zone: write it as fe80::1%eth0"
                ));
            };
            if !ip.is_unicast_link_local() {
                return Err(format!(
                    "'{host}': a zone (%{zone}) belongs only to a link-local address (fe80::/10); leave it out"
                ));
            }
            if zone.is_empty() || zone.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "'{host}' has no usable zone after '%': write it as fe80::1%eth0"
                ));
            }
            return Ok(Host::Zoned {
                ip,
                zone: zone.to_string(),
            });
        }
        if host.contains(':') {
            return Err(format!(
                "'{host}' looks like host:port: give only the host; the role decides the ports"
            ));
        }
        let name = host.trim_end_matches('.');
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid || name.len() > 253 {
            return Err(format!("'{host}' is not a valid host name"));
        }
        Ok(Host::Name(name.to_string()))
    }

    /// The interface index a zoned address is reached through (0 for every other host): the
    /// zone's number, or the index of the interface it names. The one place a zone meets the
    /// operating system.
    pub fn scope(&self) -> Result<u32, String> {
        let Host::Zoned { zone, .. } = self else {
            return Ok(0);
        };
        if let Ok(index) = zone.parse::<u32>() {
            return Ok(index);
        }
        interface_index(zone).ok_or_else(|| {
            format!(
                "'{self}': no network interface '{zone}' on this machine: give the interface the address is on (ip link; on Windows its number from netsh interface ipv6 show interfaces)"
            )
        })
    }

    /// The name to ask for in TLS (SNI) and to find among a certificate's DNS names; an
    /// address has none.
    pub fn name(&self) -> Option<&str> {
        match self {
            Host::Name(name) => Some(name),
            Host::Ip(_) | Host::Zoned { .. } => None,
        }
    }

    /// As an HTTP `Host` header writes it: IPv6 in brackets and without its zone, which
    /// means nothing to the far side (RFC 6874).
    pub fn authority(&self) -> String {
        match self {
            Host::Name(name) => name.clone(),
            Host::Ip(IpAddr::V4(v4)) => v4.to_string(),
            Host::Ip(IpAddr::V6(v6)) | Host::Zoned { ip: v6, .. } => format!("[{v6}]"),
        }
    }

    /// The address, for a host that is one (zoned or not); `None` for a name.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::Ip(ip) => Some(*ip),
            Host::Zoned { ip, .. } => Some(IpAddr::V6(*ip)),
        }
    }
}

#[cfg(unix)]
fn interface_index(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

/// Windows names zones by number; a name is not looked up.
#[cfg(not(unix))]
fn interface_index(_name: &str) -> Option<u32> {
    None
}

impl fmt::Display for Host {
    /// As a user writes it, without brackets: `a.example`, `2001:db8::1`, `fe80::1%eth0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Zoned { ip, zone } => write!(f, "{ip}%{zone}"),
        }
    }
}

/// A host with, where given, the scheme and port the agent uses to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: Host,
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
        if host.trim_end_matches('.').is_empty() {
            return Err(format!("'{text}' names no host"));
        }
        let host = Host::parse(host)?;
        Ok(Endpoint { host, scheme, port })
    }

    /// A host alone: no scheme, no port.
    pub fn host(host: Host) -> Endpoint {
        Endpoint {
            host,
            scheme: None,
            port: None,
        }
    }

    /// A host alone, as `--mediator`, `--db` and the like take one.
    pub fn parse_host(s: &str) -> Result<Endpoint, String> {
        Host::parse(s).map(Endpoint::host)
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

impl fmt::Display for Endpoint {
    /// The form `parse` reads back: a URL when there is a scheme, else the host.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An IPv6 address is bracketed where a port or scheme could follow it.
        let host = match self.host.ip() {
            Some(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.to_string(),
        };
        match (self.scheme, self.port) {
            (None, Some(p)) => write!(f, "{host}:{p}"),
            (None, None) => write!(f, "{}", self.host),
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
            (
                plain.host.to_string().as_str(),
                plain.web_port(),
                plain.is_plain()
            ),
            ("127.0.0.1", Some(18080), true)
        );
        assert_eq!(ep("https://automate.example.com/").web_port(), Some(443));
        assert_eq!(ep("HTTP://a.example").web_port(), Some(80));
        assert_eq!(
            ep("https://[2001:db8::5]:8443/LabTech").host.to_string(),
            "2001:db8::5"
        );
        assert_eq!(ep("https://[2001:db8::5]:8443").web_port(), Some(8443));
        assert_eq!(ep("2001:db8::7").host.to_string(), "2001:db8::7");
        assert_eq!(ep("2001:db8::7").web_port(), None);
        assert_eq!(
            ep("automate.example.com.").host.to_string(),
            "automate.example.com"
        );
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
    fn hosts_are_read_once_into_their_kind() {
        let v6: Ipv6Addr = "fe80::1".parse().unwrap();
        for (raw, host, shown) in [
            (" a.example. ", Host::Name("a.example".into()), "a.example"),
            ("[::1]", Host::Ip("::1".parse().unwrap()), "::1"),
            (
                "192.0.2.9",
                Host::Ip("192.0.2.9".parse().unwrap()),
                "192.0.2.9",
            ),
            (
                "fe80::1%eth0",
                Host::Zoned {
                    ip: v6,
                    zone: "eth0".into(),
                },
                "fe80::1%eth0",
            ),
        ] {
            assert_eq!(Host::parse(raw), Ok(host.clone()), "{raw}");
            assert_eq!(host.to_string(), shown);
            assert_eq!(Host::parse(shown), Ok(host));
        }
        // A numbered zone needs no lookup; a name is looked up only when asked.
        let numbered = Host::parse("fe80::1%7").unwrap();
        assert_eq!(numbered.scope(), Ok(7));
        assert_eq!(numbered.ip(), Some(IpAddr::V6(v6)));
        let unknown = Host::parse("[fe80::1%nosuch9]").unwrap();
        assert!(unknown
            .scope()
            .unwrap_err()
            .contains("no network interface 'nosuch9'"));
        assert_eq!(Host::parse("a.example").unwrap().scope(), Ok(0));
        // What goes on the wire: SNI only for a name; a Host header without the zone.
        assert_eq!(Host::parse("a.example").unwrap().name(), Some("a.example"));
        assert_eq!(numbered.name(), None);
        assert_eq!(numbered.authority(), "[fe80::1]");
        assert_eq!(Host::parse("::1").unwrap().authority(), "[::1]");
        assert_eq!(Host::parse("192.0.2.9").unwrap().authority(), "192.0.2.9");
        for (raw, says) in [
            ("", "empty"),
            ("a..b", "not a valid host name"),
            ("https://a.example", "URL"),
            ("a.example:443", "host:port"),
            ("2001:db8::1%eth0", "link-local"),
            ("fe80::1%", "no usable zone"),
            ("fe80::zz%eth0", "not an IPv6 address"),
        ] {
            let e = Host::parse(raw).unwrap_err();
            assert!(e.contains(says), "{raw}: {e}");
        }
        // The URL forms carry the same host, brackets and zone included.
        let e = Endpoint::parse("https://[fe80::1%eth0]:8443/").unwrap();
        assert_eq!(e.host, Host::parse("fe80::1%eth0").unwrap());
        assert_eq!(e.to_string(), "https://[fe80::1%eth0]:8443");
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

//! The command line's value parsers: what a user types, checked and named when wrong (one
//! line, exit 2, through clap).

use std::time::Duration;

use crate::endpoint::Endpoint;

pub(super) fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|_| format!("'{s}' is not a duration: write it like 500ms, 2s or 1m"))?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(300) {
        return Err(format!("{s} is out of range: use 1ms to 5m"));
    }
    Ok(d)
}

pub(super) fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|_| format!("'{s}' is not a duration: write it like 90s, 30m or 2h"))?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!("{s} is out of range: use 1s to 7 days"));
    }
    Ok(d)
}

/// An installer token as it goes into the download URL: letters, digits and `-`.
pub fn parse_installer_token(s: &str) -> Result<String, String> {
    let token = s.trim();
    if crate::probe::app::installer::valid_token(token) {
        Ok(token.to_string())
    } else {
        Err(format!("'{s}' is not an installer token: give the token from the Automate console (letters, digits and '-')"))
    }
}

/// An HTTP proxy: `http://host:port` (or `host:port`).
pub fn parse_proxy(s: &str) -> Result<Endpoint, String> {
    let text = s.trim();
    if text.to_ascii_lowercase().starts_with("https://") {
        return Err(format!(
            "'{text}': a proxy reached over TLS is not supported; give its http:// address (CONNECT still carries HTTPS)"
        ));
    }
    let url = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    Endpoint::parse(&url)
}

/// A proxy user for Basic authentication. RFC 7617 allows no colon in it (the header
/// joins user and password with one), and control characters are no one's user name.
pub fn parse_proxy_user(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("give the proxy's user name".into());
    }
    if s.contains(':') {
        return Err(
            "a user name for Basic authentication cannot contain ':'; the password goes in AUTOMATE_PORTS_PROXY_PASSWORD".into(),
        );
    }
    if s.chars().any(char::is_control) {
        return Err("the user name contains control characters".into());
    }
    Ok(s.to_string())
}

/// The server: a host as [`Host::parse`] takes it, or a URL the way the agent's
/// `Server Address` writes it (`https://host:8443`), whose scheme and port the plan uses.
pub fn parse_server(s: &str) -> Result<Endpoint, String> {
    if !s.contains("://") {
        return Endpoint::parse_host(s);
    }
    Endpoint::parse(s)
}

/// A host, `host:port` or a URL, for a target whose checks may take the port from it (the
/// plan refuses a port where none does).
pub fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    let text = s.trim();
    if !text.contains("://") && text.matches(':').count() != 1 && !text.contains("]:") {
        return Endpoint::parse_host(text);
    }
    Endpoint::parse_any(text)
}

pub(super) fn parse_target(s: &str) -> Result<(String, Endpoint), String> {
    let (name, host) = s.split_once('=').ok_or_else(|| {
        format!("'{s}' is not NAME=HOST, e.g. --target server=automate.example.com")
    })?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "'{name}' is not a target name: use lower-case letters, digits and '-'"
        ));
    }
    let host = if name == "server" {
        parse_server(host)?
    } else {
        parse_endpoint(host)?
    };
    Ok((name.to_string(), host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Host;

    fn parse_host(s: &str) -> Result<Endpoint, String> {
        Endpoint::parse_host(s)
    }

    #[test]
    fn hosts_are_checked() {
        let shown = |r: Result<Endpoint, String>| r.unwrap().to_string();
        assert_eq!(
            shown(parse_host(" automate.example.com ")),
            "automate.example.com"
        );
        assert_eq!(shown(parse_host("[::1]")), "::1");
        assert!(parse_host("https://a.example/x")
            .unwrap_err()
            .contains("URL"));
        assert!(parse_host("a.example:443")
            .unwrap_err()
            .contains("host:port"));
        assert!(parse_host("a..b").is_err());
        assert_eq!(
            shown(parse_server("HTTPS://Automate.example.com:8443/")),
            "https://Automate.example.com:8443"
        );
        assert_eq!(
            shown(parse_server("http://[::1]:18080")),
            "http://[::1]:18080"
        );
        assert!(parse_server("https://a..b").is_err());
        assert!(parse_server("a.example:443")
            .unwrap_err()
            .contains("host:port"));
        assert!(parse_host("").is_err());
        // A zone is read, not looked up: no interface is asked for while arguments parse.
        assert_eq!(
            parse_host("fe80::1%nosuch9").unwrap().host,
            Host::Zoned {
                ip: "fe80::1".parse().unwrap(),
                zone: "nosuch9".into()
            }
        );
        assert!(parse_host("2001:db8::1%lo")
            .unwrap_err()
            .contains("link-local"));
        assert_eq!(
            shown(parse_endpoint("[fe80::1%eth0]:443")),
            "[fe80::1%eth0]:443"
        );
        assert_eq!(
            shown(parse_proxy("proxy.example:3128")),
            "http://proxy.example:3128"
        );
    }

    #[test]
    fn durations_and_targets() {
        assert_eq!(parse_timeout("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_timeout("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_timeout("2x").is_err());
        assert!(parse_timeout("0s").is_err());
        assert_eq!(
            parse_target("db=10.0.0.5").unwrap(),
            (
                "db".into(),
                Endpoint::host(Host::Ip("10.0.0.5".parse().unwrap()))
            )
        );
        assert!(parse_target("db").is_err());
    }

    #[test]
    fn proxy_users() {
        assert_eq!(
            parse_proxy_user("DOMAIN\\svc-lt").unwrap(),
            "DOMAIN\\svc-lt"
        );
        assert_eq!(
            parse_proxy_user("tech@example.com").unwrap(),
            "tech@example.com"
        );
        assert!(parse_proxy_user("user:secret")
            .unwrap_err()
            .contains("AUTOMATE_PORTS_PROXY_PASSWORD"));
        assert!(parse_proxy_user("").is_err());
        assert!(parse_proxy_user("a\nb").is_err());
    }
}

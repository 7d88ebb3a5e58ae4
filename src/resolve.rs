//! Name resolution through the operating system's resolver, so the tool sees the same
//! addresses the Automate agent would. Each name is resolved once, under a timeout.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::endpoint::Host;
use crate::model::Family;

/// What the resolver found for each host: its addresses, or why there are none.
pub type Resolved = HashMap<Host, Result<Vec<IpAddr>, Unresolved>>;

/// Resolves every host concurrently. A failure is a result, not an error of the run.
pub async fn resolve_all(hosts: Vec<Host>, family: Family, timeout: Duration) -> Resolved {
    let mut set = JoinSet::new();
    for host in hosts {
        set.spawn(async move {
            let result = resolve(&host, family, timeout).await;
            (host, result)
        });
    }
    let mut resolved = Resolved::new();
    while let Some(joined) = set.join_next().await {
        let (host, result) = joined.expect("resolver task does not panic");
        resolved.insert(host, result);
    }
    resolved
}

/// Why a host has no address to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// The resolver did not answer within the timeout.
    NoAnswer { host: String, timeout: Duration },
    /// The resolver said no, in the OS's words.
    Failed {
        host: String,
        detail: String,
        after: Duration,
    },
    /// Addresses exist, but none of the family `-4`/`-6` asked for.
    NoFamily { host: String, v6: bool },
}

/// The addresses of one host (A and AAAA), de-duplicated, in the resolver's order. An
/// address is its own answer (a zone goes with the probes, see `plan::expand`).
pub async fn resolve(
    host: &Host,
    family: Family,
    timeout: Duration,
) -> Result<Vec<IpAddr>, Unresolved> {
    let addresses = if let Some(known) = without_lookup(host) {
        known?
    } else {
        let name = host.to_string();
        let started = Instant::now();
        let lookup = tokio::net::lookup_host((name.clone(), 0));
        match tokio::time::timeout(timeout, lookup).await {
            Err(_) => return Err(no_answer(&name, timeout)),
            Ok(found) => looked_up(&name, found, started)?,
        }
    };
    of_family(&host.to_string(), addresses, family)
}

/// The same for a caller outside the runtime (the proxy's name, before any probe): the OS
/// resolver on a thread of its own, waited for at most `timeout`.
pub fn resolve_blocking(
    host: &Host,
    family: Family,
    timeout: Duration,
) -> Result<Vec<IpAddr>, Unresolved> {
    use std::net::ToSocketAddrs;
    let addresses = if let Some(known) = without_lookup(host) {
        known?
    } else {
        let name = host.to_string();
        let started = Instant::now();
        let query = (name.clone(), 0);
        match crate::sys::within(timeout, move || query.to_socket_addrs()) {
            None => return Err(no_answer(&name, timeout)),
            Some(found) => looked_up(&name, found, started)?,
        }
    };
    of_family(&host.to_string(), addresses, family)
}

/// What `host` is without asking a resolver: an address, or a name that never resolves;
/// `None`: ask.
fn without_lookup(host: &Host) -> Option<Result<Vec<IpAddr>, Unresolved>> {
    if let Some(ip) = host.ip() {
        return Some(Ok(vec![ip]));
    }
    let name = host.to_string();
    never_resolves(&name).map(|why| {
        Err(Unresolved::Failed {
            host: name.clone(),
            detail: why.to_string(),
            after: Duration::ZERO,
        })
    })
}

fn no_answer(host: &str, timeout: Duration) -> Unresolved {
    Unresolved::NoAnswer {
        host: host.to_string(),
        timeout,
    }
}

/// The resolver's answer, de-duplicated in its order, or its refusal in plain words.
fn looked_up(
    host: &str,
    found: std::io::Result<impl Iterator<Item = std::net::SocketAddr>>,
    started: Instant,
) -> Result<Vec<IpAddr>, Unresolved> {
    let found = found.map_err(|e| Unresolved::Failed {
        host: host.to_string(),
        detail: plain_resolver_error(&e),
        after: started.elapsed(),
    })?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for addr in found {
        crate::model::push_new(&mut ips, addr.ip());
    }
    Ok(ips)
}

/// The addresses `-4`/`-6` allow, or why there are none.
fn of_family(
    host: &str,
    addresses: Vec<IpAddr>,
    family: Family,
) -> Result<Vec<IpAddr>, Unresolved> {
    let kept: Vec<IpAddr> = addresses
        .into_iter()
        .filter(|ip| family.allows(*ip))
        .collect();
    if kept.is_empty() {
        return Err(Unresolved::NoFamily {
            host: host.to_string(),
            v6: family == Family::V6,
        });
    }
    Ok(kept)
}

/// Why `host` never resolves without asking anyone: `.invalid` is reserved (RFC 6761, 6.4:
/// resolvers "SHOULD always return immediately with a negative response"), so no DNS query
/// leaves the machine for it.
pub fn never_resolves(host: &str) -> Option<&'static str> {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    (name == "invalid" || name.ends_with(".invalid"))
        .then_some("a reserved name that never resolves (RFC 6761, .invalid)")
}

fn plain_resolver_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;

    #[tokio::test]
    async fn reserved_invalid_names_fail_without_a_query() {
        let t = Duration::from_secs(1);
        for host in ["automate.invalid", "INVALID", "x.Invalid."] {
            let host = Host::parse(host).unwrap();
            let Err(Unresolved::Failed { detail, after, .. }) =
                resolve(&host, Family::Any, t).await
            else {
                panic!("{host} resolved");
            };
            assert!(detail.contains("RFC 6761"), "{detail}");
            assert_eq!(after, Duration::ZERO);
        }
        assert_eq!(never_resolves("invalid.example.com"), None);
    }

    #[tokio::test]
    async fn literals_skip_the_resolver_and_honour_the_family() {
        let t = Duration::from_secs(1);
        let host = |s: &str| Host::parse(s).unwrap();
        assert_eq!(
            resolve(&host("127.0.0.1"), Family::Any, t)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            resolve(&host("[::1]"), Family::V6, t).await.unwrap()[0],
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        );
        let e = resolve(&host("127.0.0.1"), Family::V6, t)
            .await
            .unwrap_err();
        assert_eq!(
            e.text(Lang::En),
            "127.0.0.1 has no IPv6 address (-6 was given)"
        );
        assert_eq!(
            e.text(Lang::De),
            "127.0.0.1 hat keine IPv6-Adresse (-6 wurde angegeben)"
        );
    }

    #[tokio::test]
    async fn a_reserved_name_fails_fast_and_clearly() {
        // .invalid never resolves (RFC 2606); on an offline machine this is immediate.
        let host = Host::parse("nothing.invalid").unwrap();
        let e = resolve(&host, Family::Any, Duration::from_secs(3))
            .await
            .unwrap_err()
            .text(Lang::En);
        assert!(e.contains("nothing.invalid"), "{e}");
    }
}

//! Name resolution through the operating system's resolver, so the tool sees the same
//! addresses the Automate agent would. Each name is resolved once, under a timeout.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::model::Family;
use crate::plan::Resolved;

use super::fmt_duration;

/// Resolves every host concurrently. A failure is a result, not an error of the run.
pub async fn resolve_all(hosts: Vec<String>, family: Family, timeout: Duration) -> Resolved {
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

/// The addresses of one host (A and AAAA), de-duplicated, in the resolver's order.
pub async fn resolve(host: &str, family: Family, timeout: Duration) -> Result<Vec<IpAddr>, String> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses = if let Ok(ip) = literal.parse::<IpAddr>() {
        vec![ip]
    } else {
        let started = Instant::now();
        match tokio::time::timeout(timeout, tokio::net::lookup_host((host, 0))).await {
            Err(_) => {
                return Err(format!(
                    "DNS lookup of {host} got no answer in {}",
                    fmt_duration(timeout)
                ))
            }
            Ok(Err(e)) => {
                return Err(format!(
                    "{host} does not resolve ({}, after {})",
                    plain_resolver_error(&e),
                    fmt_duration(started.elapsed())
                ))
            }
            Ok(Ok(found)) => {
                let mut ips: Vec<IpAddr> = Vec::new();
                for addr in found {
                    if !ips.contains(&addr.ip()) {
                        ips.push(addr.ip());
                    }
                }
                ips
            }
        }
    };
    let kept: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|ip| family.allows(*ip))
        .collect();
    if kept.is_empty() {
        let (asked, flag) = match family {
            Family::V6 => ("IPv6", "-6"),
            _ => ("IPv4", "-4"),
        };
        return Err(format!("{host} has no {asked} address ({flag} was given)"));
    }
    Ok(kept)
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

    #[tokio::test]
    async fn literals_skip_the_resolver_and_honour_the_family() {
        let t = Duration::from_secs(1);
        assert_eq!(resolve("127.0.0.1", Family::Any, t).await.unwrap().len(), 1);
        assert_eq!(
            resolve("[::1]", Family::V6, t).await.unwrap()[0],
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        );
        let e = resolve("127.0.0.1", Family::V6, t).await.unwrap_err();
        assert!(e.contains("no IPv6 address (-6 was given)"), "{e}");
    }

    #[tokio::test]
    async fn a_reserved_name_fails_fast_and_clearly() {
        // .invalid never resolves (RFC 2606); on an offline machine this is immediate.
        let e = resolve("nothing.invalid", Family::Any, Duration::from_secs(3))
            .await
            .unwrap_err();
        assert!(e.contains("nothing.invalid"), "{e}");
    }
}

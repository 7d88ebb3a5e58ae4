//! What the NAT mapping probe saw, and what it means for tunnels: pure data the probe
//! writes, the verdict judges and the report embeds.
//!
//! Automate's tunnels set P2P up through the mediator: both ends send out on UDP, and each
//! learns the other's address as the mediator saw it. That only works when this site's NAT
//! keeps one external port for a socket whatever the destination (RFC 4787's
//! endpoint-independent mapping). A NAT that gives each destination a new port (symmetric)
//! hands the peer a port that leads nowhere, and tunnels fall back to the relay.

use std::net::SocketAddr;

use serde::Serialize;

/// How this site's NAT maps one socket to two destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Mapping {
    /// `serve` saw this machine's own address and port: no NAT on the way.
    #[serde(rename = "none")]
    NoNat,
    /// One external address and port for both destinations: P2P can work.
    #[serde(rename = "endpoint-independent")]
    EndpointIndependent,
    /// A different external address or port per destination: P2P cannot be set up from
    /// here, tunnels take the relay.
    #[serde(rename = "symmetric")]
    Symmetric,
    /// Only one destination answered: nothing to compare.
    #[serde(rename = "unknown")]
    Unknown,
}

/// One destination port of the mapping probe and the source `serve` saw there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Seen {
    pub port: u16,
    /// `None`: no mapped reply came from this port.
    pub from: Option<SocketAddr>,
}

/// What the mapping probe found: one socket, one mapped probe to each of two ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct NatMapping {
    /// This machine's address towards the target, and the probing socket's port.
    pub local: SocketAddr,
    pub seen: [Seen; 2],
    pub mapping: Mapping,
}

impl NatMapping {
    pub fn new(local: SocketAddr, seen: [Seen; 2]) -> NatMapping {
        let mapping = match (seen[0].from, seen[1].from) {
            (Some(a), Some(b)) if a != b => Mapping::Symmetric,
            (Some(a), Some(_)) if same_socket(a, local) => Mapping::NoNat,
            (Some(_), Some(_)) => Mapping::EndpointIndependent,
            _ => Mapping::Unknown,
        };
        NatMapping {
            local,
            seen,
            mapping,
        }
    }

    /// Whether P2P tunnels can be set up from this side.
    pub fn allows_p2p(&self) -> bool {
        matches!(self.mapping, Mapping::NoNat | Mapping::EndpointIndependent)
    }
}

/// IPv4 may come back IPv4-mapped from a dual-stack socket: compare what it means.
fn same_socket(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(port: u16, from: Option<&str>) -> Seen {
        Seen {
            port,
            from: from.map(|f| f.parse().unwrap()),
        }
    }

    #[test]
    fn classifies_the_mapping() {
        let local: SocketAddr = "10.0.0.2:40123".parse().unwrap();
        let cases = [
            (
                Some("203.0.113.5:40123"),
                Some("203.0.113.5:40123"),
                Mapping::EndpointIndependent,
            ),
            (
                Some("203.0.113.5:40123"),
                Some("203.0.113.5:51234"),
                Mapping::Symmetric,
            ),
            (
                Some("203.0.113.5:40123"),
                Some("203.0.113.6:40123"),
                Mapping::Symmetric,
            ),
            (
                Some("10.0.0.2:40123"),
                Some("10.0.0.2:40123"),
                Mapping::NoNat,
            ),
            (Some("203.0.113.5:40123"), None, Mapping::Unknown),
            (None, Some("203.0.113.5:40123"), Mapping::Unknown),
        ];
        for (a, b, want) in cases {
            let found = NatMapping::new(local, [seen(8002, a), seen(40000, b)]);
            assert_eq!(found.mapping, want, "{a:?} {b:?}");
            assert_eq!(
                found.allows_p2p(),
                matches!(want, Mapping::NoNat | Mapping::EndpointIndependent)
            );
        }
        let v6: SocketAddr = "[2001:db8::2]:5000".parse().unwrap();
        let found = NatMapping::new(
            v6,
            [
                seen(8002, Some("[2001:db8::2]:5000")),
                seen(40000, Some("[2001:db8::2]:5000")),
            ],
        );
        assert_eq!(found.mapping, Mapping::NoNat);
    }
}

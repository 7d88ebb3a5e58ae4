//! The NAT mapping probe: one UDP socket sends a mapped probe (the key's, see PROTOCOL.md)
//! to two ports of `serve` on one host, and compares the source address and port `serve`
//! saw at each. Both probes leave at once, so one try takes one timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::socket::{classify, local_error, unspecified};
use super::{Attempt, Heard, Why};
use crate::model::{Protocol, State};
use crate::nat::{NatMapping, Seen};
use crate::protocol::{self, Key, Probe, ReplyCheck, MAX_REPLY_LEN};

/// Probes a try sends to a port that stays silent: one at once, then one each quarter.
const SENDS_PER_TRY: u32 = 4;

pub(super) async fn mapping(
    addr: SocketAddr,
    second: u16,
    key: &Key,
    timeout: Duration,
    heard: &Heard,
) -> Attempt {
    let socket = match UdpSocket::bind(unspecified(addr.ip())).await {
        Ok(s) => s,
        Err(e) => return local_error(&e, addr),
    };
    let mut other = addr;
    other.set_port(second);
    let targets = [addr, other];
    let mut sent: [Vec<Probe>; 2] = [Vec::new(), Vec::new()];
    for (i, target) in targets.iter().enumerate() {
        if let Some(failed) = send(&socket, key, *target, &mut sent[i]).await {
            return failed;
        }
    }
    let mut seen = targets.map(|t| Seen {
        port: t.port(),
        from: None,
    });
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    // One reply lost on a lossy link would leave nothing to compare: each quarter of the
    // try, a port still silent gets a fresh probe from the same socket (the same mapping).
    // Once was not enough: at 2 % loss each way, about one try in 600 lost both.
    let every = timeout / SENDS_PER_TRY;
    let mut resends = 1..SENDS_PER_TRY;
    let mut resend_at = resends.next().map(|n| start + every * n);
    let mut buf = [0u8; MAX_REPLY_LEN + 1];
    while seen.iter().any(|s| s.from.is_none()) {
        let wake = resend_at.map_or(deadline, |r| r.min(deadline));
        let Ok(received) =
            tokio::time::timeout_at(wake, crate::sys::udp::recv_from(&socket, &mut buf)).await
        else {
            if wake == deadline {
                break;
            }
            resend_at = resends.next().map(|n| start + every * n);
            for i in (0..2).filter(|&i| seen[i].from.is_none()) {
                if let Some(failed) = send(&socket, key, targets[i], &mut sent[i]).await {
                    return failed;
                }
            }
            continue;
        };
        // An unconnected socket hears anyone, and Windows reports an earlier ICMP error
        // here: only a reply that proves the key for one of our probes counts.
        let Ok((n, from)) = received else { continue };
        let Some(i) = targets.iter().position(|t| *t == from) else {
            continue;
        };
        for probe in &sent[i] {
            match protocol::check_reply(key, &buf[..n], probe) {
                ReplyCheck::Mapped(source) => {
                    seen[i].from = Some(source);
                    heard.mark();
                }
                ReplyCheck::Stale { responder_ms } => {
                    return Attempt::Answer(State::Open, super::socket::stale(probe, responder_ms))
                }
                ReplyCheck::OtherPort(port) => {
                    return Attempt::Answer(State::Open, Why::Redirected(port))
                }
                ReplyCheck::Valid | ReplyCheck::Invalid => continue,
            }
            break;
        }
    }
    if seen.iter().all(|s| s.from.is_none()) {
        return Attempt::Silent;
    }
    let local = SocketAddr::new(
        source_ip(addr).await.unwrap_or(addr.ip()),
        socket.local_addr().map_or(0, |l| l.port()),
    );
    Attempt::Answer(
        State::Open,
        Why::Mapped(Box::new(NatMapping::new(local, seen))),
    )
}

/// Sends a new mapped probe to `target` and keeps it in `sent`; `Some` when sending failed.
async fn send(
    socket: &UdpSocket,
    key: &Key,
    target: SocketAddr,
    sent: &mut Vec<Probe>,
) -> Option<Attempt> {
    let probe = Probe::new_mapped(target.port(), crate::sys::now_ms());
    sent.push(probe);
    match socket.send_to(&probe.encode(key), target).await {
        Ok(_) => None,
        Err(e) => Some(classify(&e, target, Protocol::Udp)),
    }
}

/// The address this machine sends from towards `addr`: a connected UDP socket learns the
/// route's source without sending anything.
async fn source_ip(addr: SocketAddr) -> Option<std::net::IpAddr> {
    let probe = UdpSocket::bind(unspecified(addr.ip())).await.ok()?;
    probe.connect(addr).await.ok()?;
    probe.local_addr().ok().map(|l| l.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::Mapping;

    /// A port of `serve` on loopback that ignores the first `lose` probes, then answers each
    /// with the mapped reply; returns its port.
    async fn responder(key: Key, lose: usize) -> u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 256];
            for n in 0.. {
                let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(probe) = protocol::authenticate(&key, &buf[..len]) else {
                    continue;
                };
                if n >= lose {
                    let reply = protocol::encode_mapped(&key, &probe.nonce, port, from);
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        port
    }

    #[tokio::test]
    async fn a_port_that_loses_two_probes_in_a_row_is_still_compared() {
        let key = Key::derive("nat-unit-test-key-0123").unwrap();
        let first = responder(key.clone(), 0).await;
        let second = responder(key.clone(), 2).await;
        let flags = Heard::flags(1);
        let heard = Heard::new(&flags, 0);
        let addr = SocketAddr::from(([127, 0, 0, 1], first));
        let attempt = mapping(addr, second, &key, Duration::from_millis(800), &heard).await;
        let Attempt::Answer(State::Open, Why::Mapped(found)) = attempt else {
            panic!("a mapped answer from both ports");
        };
        assert!(found.seen.iter().all(|s| s.from.is_some()), "{found:?}");
        assert_eq!(found.mapping, Mapping::NoNat);
    }
}

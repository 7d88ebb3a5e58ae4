//! `demo`: stages a pretend on-premises Automate server on 127.0.0.1 (listeners on some of
//! the `server` role's ports, others left closed, the database exposed on purpose), runs the
//! real `check` pipeline against it, and verifies that every result matches the staging.
//! It needs no network and no other machine.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

use crate::check::{self, Options};
use crate::model::{Family, PortRange, Protocol, State};
use crate::plan::ports_to_probe;
use crate::probe::net::NetProber;
use crate::profiles;
use crate::report::Report;

const HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What the demo did on one port, and so what the check must find there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Staged {
    /// We listen (or something already did): must be open.
    Open,
    /// We made sure nothing listens: must be closed.
    Closed,
    /// We could not stage it (no permission): not verified.
    Unknown,
}

/// The staged machine: sockets held open until it is dropped.
pub struct Stage {
    ports: BTreeMap<(Protocol, u16), Staged>,
    notes: Vec<String>,
    tasks: JoinSet<()>,
}

impl Stage {
    /// Stages the pretend server. Ports below 1024 need root on Linux; where a bind is
    /// refused the demo says so and leaves that port unverified.
    pub async fn new() -> Stage {
        let mut stage = Stage {
            ports: BTreeMap::new(),
            notes: Vec::new(),
            tasks: JoinSet::new(),
        };
        for port in [443, 8484, 8002, 3306] {
            stage.listen_tcp(port).await;
        }
        for port in [80, 70] {
            stage.keep_closed(port).await;
        }
        let relay = ports_to_probe(PortRange::new(49152, 65535).expect("valid"), false);
        for (i, port) in relay.into_iter().enumerate() {
            if i == 9 || i == 10 {
                stage.keep_closed(port).await;
            } else {
                stage.listen_tcp(port).await;
            }
        }
        stage.echo_udp(75).await;
        stage
    }

    async fn listen_tcp(&mut self, port: u16) {
        match TcpListener::bind(SocketAddr::new(HOST, port)).await {
            Ok(listener) => {
                self.ports.insert((Protocol::Tcp, port), Staged::Open);
                self.tasks.spawn(async move {
                    while let Ok((conn, _)) = listener.accept().await {
                        drop(conn);
                    }
                });
            }
            Err(e) => self.bind_failed(Protocol::Tcp, port, &e, Staged::Open),
        }
    }

    async fn keep_closed(&mut self, port: u16) {
        // Binding and releasing proves nobody else listens there.
        match TcpListener::bind(SocketAddr::new(HOST, port)).await {
            Ok(_) => {
                self.ports.insert((Protocol::Tcp, port), Staged::Closed);
            }
            Err(e) => self.bind_failed(Protocol::Tcp, port, &e, Staged::Unknown),
        }
    }

    async fn echo_udp(&mut self, port: u16) {
        match UdpSocket::bind(SocketAddr::new(HOST, port)).await {
            Ok(socket) => {
                self.ports.insert((Protocol::Udp, port), Staged::Open);
                self.tasks.spawn(async move {
                    let mut buf = [0u8; 1500];
                    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                        let _ = socket.send_to(&buf[..n], from).await;
                    }
                });
            }
            Err(e) => self.bind_failed(Protocol::Udp, port, &e, Staged::Open),
        }
    }

    fn bind_failed(&mut self, protocol: Protocol, port: u16, e: &io::Error, in_use: Staged) {
        let staged = if e.kind() == io::ErrorKind::AddrInUse {
            self.notes.push(format!(
                "{port}/{protocol} is already in use on this machine"
            ));
            in_use
        } else {
            self.notes.push(format!(
                "could not stage {port}/{protocol} ({e}); ports below 1024 need root on Linux, so that result is not verified"
            ));
            Staged::Unknown
        };
        self.ports.insert((protocol, port), staged);
    }

    /// One paragraph on what was staged, for the user.
    pub fn describe(&self) -> String {
        let mut text = String::from(
            "Demo: a pretend Automate server on 127.0.0.1. Listening: 443, 8484, 8002 and 30 of the 32 sampled relay ports (TCP), 75 (UDP echo). \
             Left closed on purpose: 80, 70 and two relay ports. Exposed on purpose: 3306 (the database must not be reachable). \
             Running: automate-ports check --role server --server 127.0.0.1",
        );
        for note in &self.notes {
            text.push_str("\nnote: ");
            text.push_str(note);
        }
        text
    }

    /// Every port whose result differs from the staging, in words.
    pub fn mismatches(&self, report: &Report) -> Vec<String> {
        let mut out = Vec::new();
        for c in &report.checks {
            // The report's ports are the profile's, so they parse; the demo never uses --full-ranges.
            let ports = crate::profiles::parse_port_spec(&c.ports)
                .map(|range| ports_to_probe(range, false))
                .unwrap_or_default();
            let failed = c.failed_ports.clone().unwrap_or_default();
            for port in ports {
                let seen_open = if c.counts.is_some() {
                    // In a range, the open ports are exactly those not listed as failed.
                    !failed.contains(&port)
                } else {
                    c.state == Some(State::Open)
                };
                let want = self
                    .ports
                    .get(&(c.protocol, port))
                    .copied()
                    .unwrap_or(Staged::Unknown);
                let ok = match want {
                    Staged::Open => seen_open,
                    Staged::Closed => !seen_open,
                    Staged::Unknown => true,
                };
                if !ok {
                    out.push(format!(
                        "{port}/{} was staged {} but the check found it {}",
                        c.protocol,
                        if want == Staged::Open {
                            "open"
                        } else {
                            "closed"
                        },
                        if seen_open { "open" } else { "not open" }
                    ));
                }
            }
        }
        out
    }
}

/// Runs the `server` role against the staged server on 127.0.0.1.
pub async fn run() -> anyhow::Result<Report> {
    let profile = profiles::builtin("server")?;
    let options = Options {
        targets: BTreeMap::from([("server".to_string(), HOST.to_string())]),
        family: Family::Any,
        timeout: Duration::from_secs(1),
        retries: 1,
        concurrency: None,
        rate: None,
        full_ranges: false,
        strict: false,
    };
    check::run(&profile, &options, Arc::new(NetProber::default()), &()).await
}

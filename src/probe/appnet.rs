//! The application probe over the socket: connect and ask, or the same through the proxy's
//! tunnel; for TLS, the server's versions and the agent's offer beside it.

use std::time::Duration;

use tokio::net::TcpStream;

use super::app::{AppConfig, AppVerdict};
use super::socket::tcp_connect;
use super::{Attempt, Heard, Why};
use crate::endpoint::Host;
use crate::model::{AppProbe, State};
use crate::plan::ProbeJob;

/// Connects (phase one), then runs the application probe on the open port (phase two,
/// bounded by the timeout again).
pub(super) async fn app_probe(
    probe: AppProbe,
    job: &ProbeJob,
    config: &AppConfig,
    timeout: Duration,
    heard: &Heard,
) -> Attempt {
    let Ok((attempt, stream)) = tokio::time::timeout(timeout, tcp_connect(job.addr)).await else {
        return Attempt::Silent;
    };
    let Some(stream) = stream else {
        return attempt;
    };
    heard.mark();
    let result = run_app(probe, stream, job, config, timeout).await;
    Attempt::Answer(State::Open, Why::App(Box::new(result)))
}

/// The application probe on a connected stream, bounded by the timeout: silence is a finding.
async fn run_app(
    probe: AppProbe,
    stream: TcpStream,
    job: &ProbeJob,
    config: &AppConfig,
    timeout: Duration,
) -> super::app::AppResult {
    let host = job
        .host
        .as_deref()
        .cloned()
        .unwrap_or(Host::Ip(job.addr.ip()));
    let ran = super::app::run(probe, stream, &host, job.addr.ip(), config);
    let mut found = tokio::time::timeout(timeout, ran)
        .await
        .unwrap_or_else(|_| {
            let silent = super::app::Finding::NoAnswer { timeout };
            super::app::AppResult::new(probe, AppVerdict::Fail, silent)
        });
    // The TLS versions, on connections of their own: not through a proxy, which would see
    // (and answer for) them instead of the server.
    if probe.is_tls() && config.proxy.is_none() {
        let versions = super::app::versions::survey(job.addr, &host, &found, config, timeout).await;
        found = super::app::versions::judge(found, versions, config);
    }
    found
}

/// Through the proxy: the tunnel, then the application probe inside it (each phase bounded
/// by the timeout). What the proxy said instead of opening the tunnel is the result; the
/// target's port state is then unknown (`error`), not blamed on a firewall. With a key too:
/// serve answers only on its own port, and the agent's path is the proxy's.
pub(super) async fn proxied(
    probe: AppProbe,
    job: &ProbeJob,
    config: &AppConfig,
    timeout: Duration,
    heard: &Heard,
) -> Attempt {
    let proxy = config.proxy.as_ref().expect("only called with a proxy");
    let tunnel = tokio::time::timeout(timeout, super::app::proxy::connect(proxy, job.addr)).await;
    let tunnel = tunnel.unwrap_or_else(|_| {
        let t = crate::probe::fmt_duration(timeout);
        Err(super::app::Finding::ProxyUnreachable {
            error: format!("no answer in {t}"),
        })
    });
    let mut found = match tunnel {
        Ok(stream) => {
            heard.mark();
            run_app(probe, stream, job, config, timeout).await
        }
        Err(finding) => super::app::AppResult::new(probe, AppVerdict::Fail, finding),
    };
    found.proxy = Some(proxy.url.clone());
    if found.finding.is_proxy() {
        return Attempt::Answer(State::Error, Why::App(Box::new(found)));
    }
    // With a key the real service proves the path, as where serve leaves it the port.
    if job.keyed && found.proves_the_path() {
        Attempt::Answer(State::Open, Why::RealService(Box::new(found)))
    } else {
        Attempt::Answer(State::Open, Why::App(Box::new(found)))
    }
}

//! Which way tunnels will take from here: P2P when this site's NAT keeps one port per
//! socket and outbound UDP leaves, else the relay through the server when its TCP ports
//! are open, else none. Judged per address of the mapping check's target, from the results
//! of the checks on that same address.

use crate::lang::Lang;
use crate::model::{Protocol, State};
use crate::report::{CheckResult, TunnelPath, TunnelRoute, Verdict};

/// One path per mapping check (`probe = "nat"`) that ran, and the note that says it, judged
/// from the other checks on the same address. One that did not run (skipped without a key,
/// or its name did not resolve) tells nothing: no path.
pub(super) fn paths(
    mapping_checks: &[&CheckResult],
    others: &[&CheckResult],
    lang: Lang,
) -> (Vec<TunnelPath>, Vec<String>) {
    let ran = |c: &CheckResult| !matches!(c.state, None | Some(State::Error | State::Unfinished));
    let mut paths = Vec::new();
    let mut notes = Vec::new();
    for nat in mapping_checks.iter().filter(|c| ran(c)) {
        let same_place: Vec<&CheckResult> = others
            .iter()
            .copied()
            .filter(|c| c.address == nat.address && c.host == nat.host && ran(c))
            .collect();
        let relay: Vec<&&CheckResult> = same_place
            .iter()
            .filter(|c| c.protocol == Protocol::Tcp)
            .collect();
        let udp_blocked = same_place
            .iter()
            .any(|c| c.protocol == Protocol::Udp && c.verdict != Verdict::Pass);
        let mapping = nat.nat.as_ref().map(|n| n.mapping);
        let p2p = nat
            .nat
            .as_ref()
            .is_some_and(crate::nat::NatMapping::allows_p2p)
            && !udp_blocked;
        let relay_open = !relay.is_empty() && relay.iter().all(|c| c.verdict == Verdict::Pass);
        let route = match (p2p, relay_open) {
            (true, _) => TunnelRoute::P2p,
            (false, true) => TunnelRoute::Relay,
            (false, false) => TunnelRoute::None,
        };
        let host = match (&nat.host, nat.address) {
            (Some(host), Some(ip)) if *host != ip.to_string() => format!("{host} ({ip})"),
            (Some(host), _) => host.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => String::new(),
        };
        let why_not = crate::words::nat::why_not_p2p(mapping, udp_blocked, lang);
        notes.push(crate::words::nat::path(route, &host, &why_not, lang));
        paths.push(TunnelPath {
            host: nat.host.clone(),
            address: nat.address,
            route,
            mapping,
        });
    }
    (paths, notes)
}

//! Where a traced path stops: the hops a trace saw judged into a [`Trace`], its sentence, and
//! the firewall the hint names. Pure, like the rest of the verdict.
//!
//! What a trace can tell, honestly: the last router that answered, and whether the probe was
//! refused and by whom. It cannot tell a router that drops the probe after answering for its
//! TTL (Linux routers do: the TTL is checked before the forward rules) from the next device
//! dropping it; the sentences say "there or at the next hop". Whether the last answer came
//! from the router just in front of the target is known only when another TCP port of the
//! target answered, so that its distance could be measured.

use std::net::IpAddr;
use std::time::Duration;

use crate::lang::Lang;
use crate::model::{HopAnswer, HopKind, Protocol, Rejection, Stop, Trace, TraceHop, TraceMethod};
use crate::probe::Traced;
use crate::report::CheckResult;
use crate::tr;

/// What is being traced, and what is known of the target.
#[derive(Debug, Clone, Copy)]
pub struct Trail<'a> {
    pub traced: &'a Traced,
    pub protocol: Protocol,
    pub port: u16,
    pub target: IpAddr,
    /// The target's distance in hops, measured on a TCP port of it that answered.
    pub target_hops: Option<u8>,
}

/// The hops judged: where the path stops, in data and in a sentence.
pub fn judge(t: &Trail<'_>, lang: Lang) -> Trace {
    let mut trace = judge_hops(t, lang);
    match t.traced.method {
        TraceMethod::Port => {}
        TraceMethod::IcmpEcho => only_echo(&mut trace, t, lang),
    }
    trace
}

/// A trace by ICMP echo shows the routers on the way to the address, not the port's own
/// path: a firewall that drops the port may let ping through, or the other way round. Its
/// hops are kept, and the sentence says what it saw without naming a firewall for the port.
fn only_echo(trace: &mut Trace, t: &Trail<'_>, lang: Lang) {
    if trace.hops.is_empty() {
        return;
    }
    let what = format!("{} {}", t.protocol.upper(), t.port);
    let target = t.target;
    let last = trace.stopped_after.and_then(|k| {
        let hop = trace.hops.get(usize::from(k) - 1)?;
        Some((k, hop.address?))
    });
    let seen = match (trace.stop, last) {
        (Stop::Reached, _) => {
            let n = trace.hops.len();
            tr!(
                lang,
                "ICMP echo reaches {target} ({n} hops), so the route is there and a firewall on the way drops {what} only",
                "ICMP-Echo erreicht {target} ({n} Hops): die Route steht, eine Firewall auf dem Weg verwirft nur {what}"
            )
        }
        (_, Some((k, addr))) => tr!(
            lang,
            "ICMP echo stops after hop {k} ({addr}) too",
            "auch ICMP-Echo endet nach Hop {k} ({addr})"
        ),
        (_, None) => tr!(
            lang,
            "no hop answered ICMP echo either",
            "auch auf ICMP-Echo antwortete kein Hop"
        ),
    };
    trace.reason = tr!(
        lang,
        "{what}'s own path was not traced (that needs administrator rights here); {seen}",
        "der Weg von {what} selbst wurde nicht verfolgt (dafür sind hier Administratorrechte nötig); {seen}"
    );
    trace.stop = Stop::NotTraced;
    trace.rejected_by = None;
}

fn judge_hops(t: &Trail<'_>, lang: Lang) -> Trace {
    let hops = &t.traced.hops;
    let mut trace = Trace {
        port: t.port,
        method: t.traced.method,
        hops: Vec::new(),
        stopped_after: None,
        rejected_by: None,
        target_hops: t.target_hops,
        stop: Stop::NotTraced,
        reason: String::new(),
    };
    if matches!(hops.first(), None | Some((HopAnswer::Unsupported, _))) {
        trace.reason = tr!(
            lang,
            "path not traced: this system cannot trace a port's own path",
            "Weg nicht verfolgt: dieses System kann den Weg eines Ports nicht verfolgen"
        );
        return trace;
    }
    let end = hops.iter().position(|(a, _)| a.ends_path());
    let routers = &hops[..end.unwrap_or(hops.len())];
    let last = routers
        .iter()
        .rposition(|(a, _)| matches!(a, HopAnswer::Expired(_)));
    trace.stopped_after = last.map(ttl);
    let shown = end.unwrap_or(last.map_or(0, |i| i + 1)).min(hops.len() - 1);
    trace.hops = hops[..=shown]
        .iter()
        .enumerate()
        .map(|(i, (answer, rtt))| hop(i, answer, *rtt))
        .collect();
    let what = format!("{} {}", t.protocol.upper(), t.port);
    let target = t.target;
    let at = |i: usize| address(&hops[i].0).map_or_else(|| "?".into(), |a| a.to_string());
    match end.map(|i| (i, &hops[i].0)) {
        Some((i, HopAnswer::Reached)) => {
            let n = ttl(i);
            trace.stop = Stop::Reached;
            trace.target_hops = Some(n);
            trace.reason = tr!(
                lang,
                "the trace reached {target} ({n} hops): {what} answered it this time",
                "der Trace erreichte {target} ({n} Hops): {what} hat diesmal geantwortet"
            );
        }
        Some((i, HopAnswer::Rejected { by, why })) => {
            trace.stop = Stop::Rejected;
            trace.rejected_by = Some(*by);
            // The rejecting router answered for its own TTL too: name it by that hop.
            let n = hops
                .iter()
                .position(|(a, _)| *a == HopAnswer::Expired(*by))
                .map_or_else(|| ttl(i), ttl);
            let why = rejection(*why, lang);
            trace.reason = if *by == target {
                tr!(
                    lang,
                    "rejected by {target} itself (hop {n}, {why}): its own firewall refuses {what}",
                    "von {target} selbst abgewiesen (Hop {n}, {why}): seine eigene Firewall weist {what} ab"
                )
            } else {
                tr!(
                    lang,
                    "rejected by {by} (hop {n}, {why}): that router or firewall refuses {what}",
                    "von {by} abgewiesen (Hop {n}, {why}): dieser Router bzw. diese Firewall weist {what} ab"
                )
            };
        }
        Some((_, HopAnswer::Local(words))) => {
            trace.stop = Stop::ThisMachine;
            trace.reason = tr!(
                lang,
                "dropped on this machine: it refused to send {what} ({words})",
                "auf diesem Rechner verworfen: er verweigerte das Senden von {what} ({words})"
            );
        }
        Some((_, HopAnswer::Expired(_) | HopAnswer::Silent | HopAnswer::Unsupported)) | None => {
            silent_end(&mut trace, last, &at, routers, &what, target, lang);
        }
    }
    trace
}

/// No answer ended the path: it stops after the last router that answered.
fn silent_end(
    trace: &mut Trace,
    last: Option<usize>,
    at: &dyn Fn(usize) -> String,
    routers: &[(HopAnswer, Option<Duration>)],
    what: &str,
    target: IpAddr,
    lang: Lang,
) {
    let k = last.map_or(0, ttl);
    match (last, trace.target_hops) {
        (None, Some(1)) => {
            trace.stop = Stop::AtTarget;
            trace.reason = tr!(
                lang,
                "{target} is on this machine's own network (1 hop) and drops {what}: its own firewall",
                "{target} liegt im eigenen Netz dieses Rechners (1 Hop) und verwirft {what}: seine eigene Firewall"
            );
        }
        (None, _) => {
            trace.stop = Stop::NoHop;
            trace.reason = tr!(
                lang,
                "no hop answered, not even the first router: this machine's firewall drops {what}, or the routers here do not answer traces",
                "kein Hop antwortete, nicht einmal der erste Router: die Firewall dieses Rechners verwirft {what}, oder die Router hier beantworten keine Traces"
            );
        }
        (Some(i), Some(d)) if k + 1 >= d => {
            let addr = at(i);
            trace.stop = Stop::AtTarget;
            trace.reason = if what.starts_with("UDP") {
                tr!(
                    lang,
                    "gets as far as hop {k} ({addr}), the last router before {target} ({d} hops away): {target} does not answer {what}: its own firewall (or that router) drops it, or what listens there stays silent to this probe",
                    "kommt bis Hop {k} ({addr}), dem letzten Router vor {target} ({d} Hops entfernt): {target} beantwortet {what} nicht: seine eigene Firewall (oder dieser Router) verwirft es, oder was dort lauscht, schweigt auf diese Probe"
                )
            } else {
                tr!(
                    lang,
                    "gets as far as hop {k} ({addr}), the last router before {target} ({d} hops away): {target} itself drops {what} (its own firewall), or that router does",
                    "kommt bis Hop {k} ({addr}), dem letzten Router vor {target} ({d} Hops entfernt): {target} selbst verwirft {what} (seine eigene Firewall), oder dieser Router"
                )
            };
        }
        (Some(i), d) => {
            let addr = at(i);
            let distance = match d {
                Some(d) => {
                    let n = d.saturating_sub(k);
                    tr!(lang, "{n} hops before {target}", "{n} Hops vor {target}")
                }
                None => tr!(
                    lang,
                    "how far {target} is could not be measured",
                    "die Entfernung von {target} ließ sich nicht messen"
                ),
            };
            let public = routers
                .iter()
                .enumerate()
                .find(|(_, (a, _))| address(a).is_some_and(|a| !is_private(a)));
            if let Some((j, _)) = public {
                let (n, first) = (ttl(j), at(j));
                trace.stop = Stop::Beyond;
                trace.reason = tr!(
                    lang,
                    "leaves this site (hop {n}, {first} answered) and stops after hop {k} ({addr}), {distance}: the firewall there or at the next hop drops {what}",
                    "verlässt diesen Standort (Hop {n}, {first} antwortete) und endet nach Hop {k} ({addr}), {distance}: die Firewall dort oder am nächsten Hop verwirft {what}"
                );
            } else {
                trace.stop = Stop::Site;
                trace.reason = tr!(
                    lang,
                    "stops after hop {k} ({addr}), the last to answer, all of them inside this site (private addresses), {distance}: the firewall there or the next device drops {what}",
                    "endet nach Hop {k} ({addr}), dem letzten, der antwortete, alle innerhalb dieses Standorts (private Adressen), {distance}: die Firewall dort oder das nächste Gerät verwirft {what}"
                );
            }
        }
    }
}

/// The sentence the hint leads with: the firewall to change, as far as the trace names it.
pub fn lead(trace: &Trace, target: IpAddr, protocol: Protocol, lang: Lang) -> Option<String> {
    let what = format!("{} {}", protocol.upper(), trace.port);
    let last = trace.stopped_after.and_then(|k| {
        trace
            .hops
            .get(usize::from(k) - 1)
            .and_then(|h| h.address)
            .map(|a| (k, a))
    });
    Some(match (trace.stop, trace.rejected_by, last) {
        (Stop::Rejected, Some(by), _) if by == target => tr!(
            lang,
            "Change the firewall on {target} itself: it rejects {what}.",
            "Die Firewall auf {target} selbst ändern: sie weist {what} ab."
        ),
        (Stop::Rejected, Some(by), _) => tr!(
            lang,
            "Change the firewall at {by}: it rejects {what}.",
            "Die Firewall bei {by} ändern: sie weist {what} ab."
        ),
        (Stop::AtTarget, _, Some((_, addr))) if protocol == Protocol::Udp => tr!(
            lang,
            "The path gets to the router in front of {target} ({addr}): check the firewall on {target} itself, or that router's rules; automate-ports serve there and --key tell a drop from a service that does not answer.",
            "Der Weg reicht bis zum Router vor {target} ({addr}): die Firewall auf {target} selbst prüfen oder die Regeln dieses Routers; automate-ports serve dort und --key unterscheiden eine Sperre von einem Dienst, der nicht antwortet."
        ),
        (Stop::AtTarget, _, Some((_, addr))) => tr!(
            lang,
            "The path gets to the router in front of {target} ({addr}): change the firewall on {target} itself, or that router's rules.",
            "Der Weg reicht bis zum Router vor {target} ({addr}): die Firewall auf {target} selbst ändern oder die Regeln dieses Routers."
        ),
        (Stop::AtTarget, _, None) => tr!(
            lang,
            "Change the firewall on {target} itself.",
            "Die Firewall auf {target} selbst ändern."
        ),
        (Stop::Site, _, Some((k, addr))) => tr!(
            lang,
            "The path dies right after {addr} (hop {k}), still inside this site: check that router's firewall first, then the next device on the way.",
            "Der Weg endet direkt nach {addr} (Hop {k}), noch innerhalb dieses Standorts: zuerst die Firewall dieses Routers prüfen, dann das nächste Gerät auf dem Weg."
        ),
        (Stop::Beyond, _, Some((k, addr))) => tr!(
            lang,
            "The block is outside this site, after {addr} (hop {k}): the firewall in front of {target} or a provider's filter; whoever runs that network must change it.",
            "Die Sperre liegt außerhalb dieses Standorts, nach {addr} (Hop {k}): die Firewall vor {target} oder ein Filter eines Providers; wer dieses Netz betreibt, muss sie ändern."
        ),
        (Stop::NoHop, _, _) => tr!(
            lang,
            "No router answered the trace: look at this machine's own firewall and endpoint protection first.",
            "Kein Router beantwortete den Trace: zuerst die Firewall und den Endpoint-Schutz dieses Rechners prüfen."
        ),
        (Stop::ThisMachine, _, _) => tr!(
            lang,
            "Change this machine's own firewall.",
            "Die eigene Firewall dieses Rechners ändern."
        ),
        (Stop::NotTraced, _, _) if trace.method == TraceMethod::IcmpEcho => tr!(
            lang,
            "Run it again as administrator to see where {what} itself stops.",
            "Als Administrator erneut ausführen, um zu sehen, wo {what} selbst endet."
        ),
        (Stop::Reached | Stop::NotTraced | Stop::Rejected | Stop::Site | Stop::Beyond, _, _) => {
            return None
        }
    })
}

/// Adds a judged trace to its result: the trace, and the firewall it names ahead of the hint.
pub fn attach(result: &mut CheckResult, trace: Trace, lang: Lang) {
    if let (Some(hint), Some(target)) = (&result.hint, result.address) {
        if let Some(lead) = lead(&trace, target, result.protocol, lang) {
            result.hint = Some(format!("{lead} {hint}"));
        }
    }
    result.trace = Some(trace);
}

fn ttl(index: usize) -> u8 {
    (index + 1) as u8
}

fn address(answer: &HopAnswer) -> Option<IpAddr> {
    match answer {
        HopAnswer::Expired(a) | HopAnswer::Rejected { by: a, .. } => Some(*a),
        HopAnswer::Reached | HopAnswer::Silent | HopAnswer::Local(_) | HopAnswer::Unsupported => {
            None
        }
    }
}

fn hop(index: usize, answer: &HopAnswer, rtt: Option<Duration>) -> TraceHop {
    let kind = match answer {
        HopAnswer::Expired(_) => HopKind::Expired,
        HopAnswer::Rejected { .. } => HopKind::Rejected,
        HopAnswer::Reached => HopKind::Reached,
        HopAnswer::Silent | HopAnswer::Unsupported => HopKind::Silent,
        HopAnswer::Local(_) => HopKind::Local,
    };
    TraceHop {
        ttl: ttl(index),
        answer: kind,
        address: address(answer),
        rtt_ms: rtt.map(|d| (d.as_secs_f64() * 100_000.0).round() / 100.0),
    }
}

fn rejection(why: Rejection, lang: Lang) -> String {
    match why {
        Rejection::Prohibited => lang.pick(
            "ICMP administratively prohibited",
            "ICMP administrativ untersagt",
        ),
        Rejection::Port => lang.pick(
            "ICMP port unreachable in the target's name",
            "ICMP Port unerreichbar im Namen des Ziels",
        ),
        Rejection::Network => lang.pick("ICMP network unreachable", "ICMP Netz unerreichbar"),
        Rejection::Host => lang.pick("ICMP host unreachable", "ICMP Host unerreichbar"),
        Rejection::Other => lang.pick("ICMP destination unreachable", "ICMP Ziel unerreichbar"),
    }
    .to_string()
}

/// Addresses of a site's own network: private, shared (carrier-grade NAT), link-local,
/// loopback, unique local. A hop outside them has left the site.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests;

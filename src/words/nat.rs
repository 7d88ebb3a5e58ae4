//! The NAT mapping in words: what `serve` saw at each port, what it means for P2P, and
//! which path tunnels will take from here.

use crate::lang::Lang;
use crate::nat::{Mapping, NatMapping};
use crate::tr;

/// The reason of a mapping check.
pub fn mapping(found: &NatMapping, lang: Lang) -> String {
    let [a, b] = found.seen;
    let (pa, pb) = (a.port, b.port);
    let local = found.local;
    match (found.mapping, a.from, b.from) {
        (Mapping::NoNat, Some(seen), _) => tr!(
            lang,
            "serve saw this machine's own {seen} at both {pa} and {pb}: no NAT on the way, P2P can work",
            "serve sah an {pa} und {pb} die eigene Adresse dieses Rechners {seen}: kein NAT auf dem Weg, P2P ist möglich"
        ),
        (Mapping::EndpointIndependent, Some(seen), _) => tr!(
            lang,
            "serve saw {seen} at both {pa} and {pb} (this machine: {local}): the NAT keeps one port for every destination (endpoint-independent mapping), P2P can work",
            "serve sah an {pa} und {pb} dieselbe {seen} (dieser Rechner: {local}): das NAT behält einen Port für jedes Ziel (endpunktunabhängiges Mapping), P2P ist möglich"
        ),
        (Mapping::Symmetric, Some(x), Some(y)) => tr!(
            lang,
            "serve saw {x} at {pa} but {y} at {pb} (this machine: {local}): the NAT gives each destination its own port (symmetric), so P2P cannot be set up from here",
            "serve sah an {pa} {x}, an {pb} aber {y} (dieser Rechner: {local}): das NAT gibt jedem Ziel einen eigenen Port (symmetrisch), P2P lässt sich von hier nicht aufbauen"
        ),
        (_, Some(seen), None) => partial(pa, seen, pb, lang),
        (_, None, Some(seen)) => partial(pb, seen, pa, lang),
        _ => tr!(lang, "no mapped reply", "keine Antwort mit Mapping"),
    }
}

fn partial(answered: u16, seen: std::net::SocketAddr, silent: u16, lang: Lang) -> String {
    tr!(
        lang,
        "serve answered at {answered} (it saw {seen}) but not at {silent}: the mapping could not be compared",
        "serve hat an {answered} geantwortet (es sah {seen}), an {silent} nicht: das Mapping ließ sich nicht vergleichen"
    )
}

/// Which way tunnels will go from this machine to the other site, for the report's notes.
pub fn path(path: crate::report::TunnelRoute, host: &str, why_not_p2p: &str, lang: Lang) -> String {
    use crate::report::TunnelRoute as R;
    match path {
        R::P2p => tr!(
            lang,
            "Tunnels from here can go P2P: this site's NAT keeps one port per socket and outbound UDP reaches {host}; P2P also needs the mediator's handshake (mediator-udp) and a matching NAT at the other site, else the relay through {host} takes over.",
            "Tunnel von hier können P2P laufen: das NAT dieses Standorts behält einen Port je Socket und ausgehendes UDP erreicht {host}; P2P braucht außerdem den Handshake des Mediators (mediator-udp) und ein passendes NAT am anderen Standort, sonst übernimmt das Relay über {host}."
        ),
        R::Relay => tr!(
            lang,
            "Tunnels from here will use the relay through {host} ({why_not_p2p}); its TCP ports are open.",
            "Tunnel von hier laufen über das Relay über {host} ({why_not_p2p}); dessen TCP-Ports sind offen."
        ),
        R::None => tr!(
            lang,
            "No tunnel path works from here: P2P cannot ({why_not_p2p}), and the relay through {host} is blocked (see the relay checks).",
            "Von hier funktioniert kein Tunnelweg: P2P nicht ({why_not_p2p}), und das Relay über {host} ist gesperrt (siehe die Relay-Prüfungen)."
        ),
    }
}

/// Why P2P is out, in a few words for [`path`].
pub fn why_not_p2p(mapping: Option<Mapping>, udp_blocked: bool, lang: Lang) -> String {
    match (mapping, udp_blocked) {
        (Some(Mapping::Symmetric), _) => tr!(
            lang,
            "this site's NAT gives each destination its own port",
            "das NAT dieses Standorts gibt jedem Ziel einen eigenen Port"
        ),
        (_, true) => tr!(
            lang,
            "outbound UDP for P2P does not leave this site",
            "ausgehendes UDP für P2P verlässt diesen Standort nicht"
        ),
        _ => tr!(
            lang,
            "the NAT mapping could not be determined",
            "das NAT-Mapping ließ sich nicht bestimmen"
        ),
    }
}

//! Tunnel readiness as tunnels really connect: from behind a NAT (a masquerading namespace),
//! `check --role tunnel --key` against `serve --role tunnel` on the server proves outbound
//! UDP and says how the NAT maps, and so which path tunnels will take.

use serde_json::Value;

use crate::require_root;
use crate::util::{result_at, results, NatLab, ROUTER_V4, ROUTER_V6, SERVER_V4, SERVER_V6};

const TUNNEL: [&str; 4] = ["--role", "tunnel", "--server", "lab-server"];

fn brief(v: &Value) -> String {
    format!(
        "{} {} {}: {} | hint: {}",
        v["id"], v["state"], v["verdict"], v["reason"], v["hint"]
    )
}

fn routes(report: &Value) -> Vec<(String, String)> {
    report["tunnels"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|t| {
                    (
                        t["address"].as_str().unwrap_or_default().to_string(),
                        t["route"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// At default flags, with the key, three runs per NAT: the mapping, the source serve saw
/// (the router's address), the route per address, and the note that says it.
fn behind(nat: &str, setup: impl Fn(&NatLab), mapping: &str, route: &str, note: &str) {
    let lab = NatLab::new("tn", nat);
    setup(&lab);
    let _serve = lab.serve(&["--role", "tunnel", "--for", "3m"]);
    for run in 1..=3 {
        let (code, report) = lab.check(&TUNNEL, true);
        assert_eq!(code, 0, "run {run}: tunnel checks are optional\n{report}");
        for (address, router, local) in [
            (SERVER_V4, ROUTER_V4, "10.77.0.2"),
            (SERVER_V6, ROUTER_V6, "fd77::2"),
        ] {
            let found = result_at(&report, "nat-mapping", address);
            assert_eq!(
                found["nat"]["mapping"],
                mapping,
                "{nat} run {run}: {}",
                brief(found)
            );
            let local_seen: std::net::SocketAddr =
                found["nat"]["local"].as_str().unwrap().parse().unwrap();
            assert_eq!(local_seen.ip().to_string(), local, "{}", brief(found));
            for seen in found["nat"]["seen"].as_array().unwrap() {
                if let Some(from) = seen["from"].as_str() {
                    let from: std::net::SocketAddr = from.parse().unwrap();
                    assert_eq!(
                        from.ip().to_string(),
                        router,
                        "serve sees the NAT's address"
                    );
                }
            }
            let want = if mapping == "endpoint-independent" {
                "pass"
            } else {
                "warn"
            };
            assert_eq!(found["verdict"], want, "{nat} run {run}: {}", brief(found));
            if want == "warn" {
                let hint = found["hint"].as_str().unwrap_or_default();
                assert!(
                    !hint.contains("inbound"),
                    "no inbound forwards for P2P: {hint}"
                );
            }
            for id in ["relay-tcp", "relay-range"] {
                let relay = result_at(&report, id, address);
                assert_eq!(relay["verdict"], "pass", "run {run}: {}", brief(relay));
                assert_eq!(relay["verified"], true, "run {run}: {}", brief(relay));
            }
        }
        assert_eq!(
            routes(&report),
            vec![
                (SERVER_V4.to_string(), route.to_string()),
                (SERVER_V6.to_string(), route.to_string())
            ],
            "{nat} run {run}: {}",
            report["notes"]
        );
        let notes = report["notes"].to_string();
        assert!(notes.contains(note), "{nat} run {run}: {notes}");
        // The public mediator stays unkeyed and honest: it does not resolve here.
        for mediator in results(&report, "mediator-udp") {
            assert_eq!(
                (mediator["state"].as_str(), mediator["verdict"].as_str()),
                (Some("error"), Some("warn"))
            );
        }
    }
}

#[test]
fn behind_a_port_keeping_nat_tunnels_can_go_p2p() {
    require_root!();
    behind(
        "",
        |_| {},
        "endpoint-independent",
        "p2p",
        "Tunnels from here can go P2P",
    );
}

/// 2 % loss each way on both ends: a lost mapped reply is asked for again within the try,
/// so the mapping is still compared, not reported unknown.
#[test]
fn on_a_lossy_link_the_mapping_is_still_compared() {
    require_root!();
    let lossy = |lab: &NatLab| {
        for ns in [&lab.client, &lab.server] {
            for kind in ["neighbour-solicitation", "neighbour-advertisement"] {
                ns.rule(
                    "ip6tables",
                    &format!("-A INPUT -p icmpv6 --icmpv6-type {kind} -j ACCEPT"),
                );
            }
            for tool in ["iptables", "ip6tables"] {
                ns.rule(
                    tool,
                    "-A INPUT -m statistic --mode random --probability 0.02 -j DROP",
                );
            }
        }
    };
    behind(
        "",
        lossy,
        "endpoint-independent",
        "p2p",
        "Tunnels from here can go P2P",
    );
}

#[test]
fn behind_a_randomising_nat_tunnels_use_the_relay() {
    require_root!();
    behind(
        "fully-random",
        |_| {},
        "symmetric",
        "relay",
        "Tunnels from here will use the relay through lab-server",
    );
}

#[test]
fn a_site_firewall_that_drops_outbound_p2p_udp_sends_tunnels_to_the_relay() {
    require_root!();
    behind(
        "",
        |lab| {
            for tool in ["iptables", "ip6tables"] {
                lab.router
                    .rule(tool, "-A FORWARD -p udp --dport 40000:41000 -j DROP");
            }
        },
        "unknown",
        "relay",
        "outbound UDP for P2P does not leave this site",
    );
}

/// Without the key nothing can say what serve saw: the mapping is skipped and says why,
/// and no tunnel path is claimed.
#[test]
fn without_the_key_the_mapping_is_skipped_and_no_path_is_claimed() {
    require_root!();
    let lab = NatLab::new("tk", "fully-random");
    let (code, report) = lab.check(&TUNNEL, false);
    assert_eq!(code, 0, "{report}");
    for found in results(&report, "nat-mapping") {
        assert_eq!(found["verdict"], "skip", "{}", brief(found));
        assert!(
            found["reason"].as_str().unwrap().contains("--key"),
            "{}",
            brief(found)
        );
    }
    assert!(report.get("tunnels").is_none(), "{}", report["tunnels"]);
}

//! The judgement of traced paths, over hand-made answers.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const TARGET: &str = "198.51.100.2";

fn judged(answers: &[HopAnswer], target_hops: Option<u8>, lang: Lang) -> Trace {
    judged_by(TraceMethod::Port, answers, target_hops, lang)
}

fn judged_by(
    method: TraceMethod,
    answers: &[HopAnswer],
    target_hops: Option<u8>,
    lang: Lang,
) -> Trace {
    let mut hops: Vec<_> = answers
        .iter()
        .map(|a| (a.clone(), Some(Duration::from_millis(3))))
        .collect();
    hops.resize(30, (HopAnswer::Silent, None));
    let traced = Traced { hops, method };
    judge(
        &Trail {
            traced: &traced,
            protocol: Protocol::Tcp,
            port: 8484,
            target: ip(TARGET),
            target_hops,
        },
        lang,
    )
}

fn expired(s: &str) -> HopAnswer {
    HopAnswer::Expired(ip(s))
}

#[test]
fn a_stop_inside_the_site_names_the_last_router_that_answered() {
    let t = judged(&[expired("192.168.1.1")], Some(3), Lang::En);
    assert_eq!(t.stop, Stop::Site);
    assert_eq!(t.stopped_after, Some(1));
    assert_eq!(
        t.hops.len(),
        2,
        "the hop after the last answer is shown silent"
    );
    assert!(t.reason.contains("hop 1 (192.168.1.1)"), "{}", t.reason);
    assert!(t.reason.contains("2 hops before"), "{}", t.reason);
    let lead = lead(&t, ip(TARGET), Protocol::Tcp, Lang::En).unwrap();
    assert!(lead.contains("192.168.1.1"), "{lead}");
}

#[test]
fn a_public_hop_means_the_path_left_the_site() {
    let t = judged(
        &[
            expired("192.168.1.1"),
            expired("203.0.113.9"),
            expired("203.0.113.10"),
        ],
        None,
        Lang::En,
    );
    assert_eq!(t.stop, Stop::Beyond);
    assert!(
        t.reason.contains("leaves this site (hop 2, 203.0.113.9"),
        "{}",
        t.reason
    );
    assert!(t.reason.contains("could not be measured"), "{}", t.reason);
}

#[test]
fn the_last_router_before_the_target_puts_the_block_at_the_target() {
    let t = judged(
        &[expired("10.0.0.1"), expired("203.0.113.2")],
        Some(3),
        Lang::En,
    );
    assert_eq!(t.stop, Stop::AtTarget);
    assert!(t.reason.contains("itself drops TCP 8484"), "{}", t.reason);
    // The target on this machine's own network: nothing on the way to answer.
    let t = judged(&[], Some(1), Lang::En);
    assert_eq!(t.stop, Stop::AtTarget);
}

#[test]
fn a_rejection_names_the_router_by_the_hop_it_answered_for() {
    let by = ip("203.0.113.2");
    let t = judged(
        &[
            expired("10.0.0.1"),
            expired("203.0.113.2"),
            HopAnswer::Rejected {
                by,
                why: Rejection::Prohibited,
            },
        ],
        None,
        Lang::En,
    );
    assert_eq!((t.stop, t.rejected_by), (Stop::Rejected, Some(by)));
    assert!(
        t.reason
            .contains("rejected by 203.0.113.2 (hop 2, ICMP administratively prohibited)"),
        "{}",
        t.reason
    );
    assert_eq!(t.hops.len(), 3);
    let lead = lead(&t, ip(TARGET), Protocol::Tcp, Lang::En).unwrap();
    assert!(lead.contains("firewall at 203.0.113.2"), "{lead}");
    let own = judged(
        &[HopAnswer::Rejected {
            by: ip(TARGET),
            why: Rejection::Prohibited,
        }],
        None,
        Lang::En,
    );
    assert!(own.reason.contains("itself"), "{}", own.reason);
}

#[test]
fn silence_from_the_first_hop_on_is_said_as_such() {
    let t = judged(&[], None, Lang::En);
    assert_eq!((t.stop, t.stopped_after), (Stop::NoHop, None));
    assert_eq!(t.hops.len(), 1);
    let local = judged(
        &[HopAnswer::Local("Operation not permitted".into())],
        None,
        Lang::En,
    );
    assert_eq!(local.stop, Stop::ThisMachine);
}

#[test]
fn a_reached_target_gives_its_distance_and_no_lead() {
    let t = judged(&[expired("10.0.0.1"), HopAnswer::Reached], None, Lang::En);
    assert_eq!((t.stop, t.target_hops), (Stop::Reached, Some(2)));
    assert_eq!(lead(&t, ip(TARGET), Protocol::Tcp, Lang::En), None);
}

#[test]
fn unsupported_is_not_traced_and_every_stop_has_its_german() {
    let traced = Traced {
        hops: vec![(HopAnswer::Unsupported, None)],
        method: TraceMethod::Port,
    };
    let t = judge(
        &Trail {
            traced: &traced,
            protocol: Protocol::Udp,
            port: 75,
            target: ip(TARGET),
            target_hops: None,
        },
        Lang::De,
    );
    assert_eq!(t.stop, Stop::NotTraced);
    assert!(t.reason.starts_with("Weg nicht verfolgt"), "{}", t.reason);
    for (answers, d) in [
        (vec![expired("192.168.1.1")], Some(3)),
        (vec![expired("192.168.1.1"), expired("203.0.113.9")], None),
        (vec![expired("192.168.1.1")], Some(2)),
        (vec![], None),
    ] {
        let t = judged(&answers, d, Lang::De);
        let en = judged(&answers, d, Lang::En);
        assert_ne!(t.reason, en.reason);
        assert!(
            t.reason.contains("verwirft") || t.reason.contains("kein Hop"),
            "{}",
            t.reason
        );
    }
}

#[test]
fn private_means_this_site() {
    for private in [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "fd00::1",
        "fe80::1",
    ] {
        assert!(is_private(ip(private)), "{private}");
    }
    for public in ["203.0.113.1", "8.8.8.8", "100.128.0.1", "2001:db8::1"] {
        assert!(!is_private(ip(public)), "{public}");
    }
}

/// ICMP echo (Windows without administrator rights) shows the routers, not the port's path:
/// never a firewall named for the port, always the advice to trace it as administrator.
#[test]
fn an_echo_trace_keeps_its_hops_but_names_no_firewall() {
    let echo =
        |answers: &[HopAnswer], lang| judged_by(TraceMethod::IcmpEcho, answers, Some(3), lang);
    let stopped = echo(&[expired("192.168.1.1")], Lang::En);
    assert_eq!(stopped.stop, Stop::NotTraced);
    assert_eq!(stopped.method, TraceMethod::IcmpEcho);
    assert_eq!(stopped.stopped_after, Some(1));
    assert_eq!(stopped.hops[0].address, Some(ip("192.168.1.1")));
    assert_eq!(
        stopped.reason,
        "TCP 8484's own path was not traced (that needs administrator rights here); ICMP echo stops after hop 1 (192.168.1.1) too"
    );
    let first = lead(&stopped, ip(TARGET), Protocol::Tcp, Lang::En).unwrap();
    assert!(first.contains("as administrator"), "{first}");

    let through = echo(
        &[
            expired("192.168.1.1"),
            expired("203.0.113.9"),
            HopAnswer::Reached,
        ],
        Lang::En,
    );
    assert_eq!(through.stop, Stop::NotTraced);
    assert!(
        through
            .reason
            .contains("ICMP echo reaches 198.51.100.2 (3 hops)"),
        "{}",
        through.reason
    );

    let rejected = echo(
        &[HopAnswer::Rejected {
            by: ip("192.168.1.1"),
            why: Rejection::Prohibited,
        }],
        Lang::En,
    );
    assert_eq!(
        (rejected.stop, rejected.rejected_by),
        (Stop::NotTraced, None)
    );
    assert!(
        rejected
            .reason
            .ends_with("no hop answered ICMP echo either"),
        "{}",
        rejected.reason
    );

    let de = echo(&[expired("192.168.1.1")], Lang::De);
    assert!(de.reason.contains("Administratorrechte"), "{}", de.reason);
    assert!(lead(&de, ip(TARGET), Protocol::Tcp, Lang::De)
        .unwrap()
        .contains("Administrator"));
}

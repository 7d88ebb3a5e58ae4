//! The agent's offer over a table of registry states, each row with the rule that decides it.

use super::*;
use Offer::{No, Unknown, Yes};

const WIN7: (u32, u32, u32) = (6, 1, 7601);
const WIN81: (u32, u32, u32) = (6, 3, 9600);
const WIN10: (u32, u32, u32) = (10, 0, 19045);
const WIN11: (u32, u32, u32) = (10, 0, 22631);

fn keys(strong: Option<u32>, system: Option<u32>) -> NetKeys {
    let one = |v: Option<u32>| v.map_or(Dword::Absent, Dword::Is);
    NetKeys {
        sch_use_strong_crypto: one(strong),
        system_default_tls_versions: one(system),
    }
}

fn client(enabled: Option<u32>, disabled_by_default: Option<u32>) -> ProtocolKeys {
    ProtocolKeys {
        enabled,
        disabled_by_default,
    }
}

fn settings(windows: (u32, u32, u32), runtime: Option<Runtime>) -> Settings {
    Settings {
        windows: Some(windows),
        runtime,
        ..Settings::default()
    }
}

type Row = (&'static str, Settings, [Offer; 4]);

fn clr4(major: u32, minor: u32) -> Runtime {
    Runtime::Clr4 {
        target: Some((major, minor)),
    }
}

/// (what the row is, its settings, TLS 1.0 to 1.3 offered).
fn rows() -> Vec<Row> {
    let mut rows = windows_7_and_8();
    rows.extend(windows_10_and_11());
    rows
}

fn windows_7_and_8() -> Vec<Row> {
    let mut win7_keys = settings(WIN7, Some(Runtime::Clr2));
    win7_keys.net2 = keys(Some(1), Some(1));
    win7_keys.schannel[1] = client(Some(1), Some(0));
    win7_keys.schannel[2] = client(Some(1), Some(0));
    let mut win7_strong_only = settings(WIN7, Some(Runtime::Clr2));
    win7_strong_only.net2 = keys(Some(1), None);
    let mut win7_system_only = settings(WIN7, Some(Runtime::Clr2));
    win7_system_only.net2 = keys(None, Some(1));
    let mut win81_strong = settings(WIN81, Some(clr4(4, 5)));
    win81_strong.net4 = keys(Some(1), None);
    vec![
        // .NET 3.5 offers SSL 3.0 and TLS 1.0 without the keys (SRC_DOTNET).
        (
            "a fresh Windows 7 SP1, .NET 3.5",
            settings(WIN7, Some(Runtime::Clr2)),
            [Yes, No, No, No],
        ),
        // SystemDefaultTlsVersions: the OS default, which the Schannel keys open to 1.1 and
        // 1.2 (SRC_DOTNET, SRC_SCHANNEL_KEYS).
        (
            "Windows 7 SP1 with the TLS 1.2 update and keys",
            win7_keys,
            [Yes, Yes, Yes, No],
        ),
        // SchUseStrongCrypto asks for 1.0 to 1.2 by name: DisabledByDefault does not apply.
        (
            "Windows 7 SP1, .NET 3.5, SchUseStrongCrypto only",
            win7_strong_only,
            [Yes, Yes, Yes, No],
        ),
        // The OS default on Windows 7 leaves 1.1 and 1.2 out (SRC_SCHANNEL_OS).
        (
            "Windows 7 SP1, .NET 3.5, SystemDefaultTlsVersions only",
            win7_system_only,
            [Yes, No, No, No],
        ),
        (
            "Windows 8.1, .NET 4.5 target, no keys",
            settings(WIN81, Some(clr4(4, 5))),
            [Yes, No, No, No],
        ),
        (
            "Windows 8.1, .NET 4.5 target, SchUseStrongCrypto",
            win81_strong,
            [Yes, Yes, Yes, No],
        ),
    ]
}

fn windows_10_and_11() -> Vec<Row> {
    let mut win10_46_off = settings(WIN10, Some(clr4(4, 6)));
    win10_46_off.net4 = keys(Some(0), None);
    let mut win10_tls12_off = settings(WIN10, Some(clr4(4, 8)));
    win10_tls12_off.schannel[2] = client(Some(0), None);
    let mut views_differ = settings(WIN10, Some(clr4(4, 5)));
    views_differ.net4.sch_use_strong_crypto = Dword::Differs;
    let mut unknown_runtime_tls12_off = settings(WIN10, None);
    unknown_runtime_tls12_off.schannel[2] = client(Some(0), Some(1));
    vec![
        // 4.7 and later: the OS default; Windows 10 has no TLS 1.3 for clients.
        (
            "Windows 10, .NET 4.7.2 target",
            settings(WIN10, Some(clr4(4, 7))),
            [Yes, Yes, Yes, No],
        ),
        // 4.6: strong crypto unless switched off.
        (
            "Windows 10, .NET 4.6 target",
            settings(WIN10, Some(clr4(4, 6))),
            [Yes, Yes, Yes, No],
        ),
        (
            "Windows 10, .NET 4.6 target, SchUseStrongCrypto = 0",
            win10_46_off,
            [Yes, No, No, No],
        ),
        (
            "Windows 10, TLS 1.2 client disabled",
            win10_tls12_off,
            [Yes, Yes, No, No],
        ),
        // Windows 11: 1.2 and 1.3 by default; 1.0 and 1.1 vary by build.
        (
            "Windows 11, .NET 4.8 target",
            settings(WIN11, Some(clr4(4, 8))),
            [Unknown, Unknown, Yes, Yes],
        ),
        // Without the runtime only what the OS forbids is settled.
        (
            "Windows 10, runtime unknown",
            settings(WIN10, None),
            [Unknown, Unknown, Unknown, No],
        ),
        (
            "Windows 10, runtime unknown, TLS 1.2 disabled",
            unknown_runtime_tls12_off,
            [Unknown, Unknown, No, No],
        ),
        // A CLR 4 agent without its target framework: 4.5 and 4.8 differ.
        (
            "Windows 10, CLR 4 without a target",
            settings(WIN10, Some(Runtime::Clr4 { target: None })),
            [Unknown, Unknown, Unknown, No],
        ),
        // 64-bit and 32-bit views disagree, the agent's bitness is not known.
        (
            "Windows 10, .NET 4.5, the views differ",
            views_differ,
            [Unknown, Unknown, Unknown, No],
        ),
    ]
}

#[test]
fn the_agents_offer_over_registry_states() {
    for (what, settings, want) in rows() {
        let offer = judge(&settings);
        assert_eq!(offer.offers, want, "{what}");
        assert!(offer.basis.contains(&SRC_SCHANNEL_OS), "{what}");
    }
}

#[test]
fn what_the_agent_asks_schannel_for() {
    let fresh = judge(&settings(WIN7, Some(Runtime::Clr2)));
    assert_eq!(fresh.asks, Some(vec![TlsVersion::Tls10]));
    assert!(fresh.settled());
    let mut system = settings(WIN7, Some(Runtime::Clr2));
    system.net2 = keys(None, Some(1));
    assert_eq!(judge(&system).asks, None, "the OS default set");
    assert!(!judge(&settings(WIN10, None)).settled());
    assert_eq!(judge(&Settings::default()).offers, [Unknown; 4]);
}

#[test]
fn the_runtime_from_the_agents_config() {
    let config = |tag: &str| {
        format!("<?xml version=\"1.0\"?><configuration><startup>{tag}</startup></configuration>")
    };
    assert_eq!(
        parse_supported_runtime(&config(r#"<supportedRuntime version="v2.0.50727"/>"#)),
        Some(Runtime::Clr2)
    );
    assert_eq!(
        parse_supported_runtime(&config(
            r#"<supportedRuntime version="v4.0" sku=".NETFramework,Version=v4.6.2" />"#
        )),
        Some(Runtime::Clr4 {
            target: Some((4, 6))
        })
    );
    assert_eq!(
        parse_supported_runtime(&config(r#"<supportedRuntime version="v4.0"/>"#)),
        Some(Runtime::Clr4 { target: None })
    );
    assert_eq!(parse_supported_runtime("<configuration/>"), None);
    assert_eq!(
        parse_supported_runtime(&config(r#"<supportedRuntime version="v1.1.4322"/>"#)),
        None
    );
}

#[test]
fn registry_views_as_one_value() {
    assert_eq!(Dword::of_views(None, None), Dword::Absent);
    assert_eq!(Dword::of_views(Some(1), Some(1)), Dword::Is(1));
    assert_eq!(Dword::of_views(Some(1), Some(0)), Dword::Differs);
    assert_eq!(Dword::of_views(Some(1), None), Dword::Differs);
}

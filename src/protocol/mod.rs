//! The authenticated probe protocol between `check --key` and `serve` (spec: PROTOCOL.md).
//! Pure byte handling: no sockets, no clocks read here (times are passed in).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const MAGIC: [u8; 4] = *b"APRB";
pub const VERSION: u8 = 2;
const TYPE_PROBE: u8 = 1;
const TYPE_REPLY: u8 = 2;
const TYPE_STALE: u8 = 3;
/// A probe that asks for the mapped reply: what source address and port `serve` saw.
const TYPE_PROBE_MAPPED: u8 = 4;
const TYPE_MAPPED: u8 = 5;

/// magic 4, version 1, type 1, reserved 2, timestamp 8, nonce 16, port 2, mac 32.
pub const PROBE_LEN: usize = 66;
/// magic 4, version 1, type 1, port 2, nonce 16, mac 32: never larger than a probe.
pub const REPLY_LEN: usize = 56;
/// A stale reply adds the responder's clock (8): still never larger than a probe.
pub const STALE_LEN: usize = 64;
/// A mapped reply: magic 4, version 1, type 1, port 2, the source port seen 2, family 1,
/// reserved 1, the source address seen 16, mac 32. The nonce is not echoed (the prober
/// knows it; the MAC covers it), which keeps it smaller than a probe.
pub const MAPPED_LEN: usize = 60;
/// The longest reply a prober has to read.
pub const MAX_REPLY_LEN: usize = STALE_LEN;
/// What a prober reads first: enough to know which reply it is and how long.
pub const REPLY_HEAD_LEN: usize = 6;
/// How far a probe's timestamp may be from the responder's clock.
pub const FRESH_WINDOW: Duration = Duration::from_secs(300);
/// Valid probes the responder answers from one source (an IPv4 address or an IPv6 /64): a
/// burst of this many, large enough for a sweep of every range, ...
pub const SOURCE_BURST: u32 = 40_000;
/// ... then this many a second. Probes beyond it are closed unanswered, so a client that
/// retries them keeps its retries below this rate.
pub const SOURCE_RATE: u32 = 20_000;

/// The responder's rate per source, `(burst, per second)`: [`SOURCE_BURST`] and
/// [`SOURCE_RATE`]. In a debug build `AUTOMATE_PORTS_TEST_RATE=BURST/RATE` sets both, for both
/// sides, so that a lab test reaches the limit with a sweep of a few thousand ports.
pub fn source_rate() -> (u32, u32) {
    #[cfg(debug_assertions)]
    if let Some((burst, rate)) = std::env::var("AUTOMATE_PORTS_TEST_RATE")
        .ok()
        .as_deref()
        .and_then(|v| v.split_once('/'))
        .and_then(|(b, r)| Some((b.parse().ok()?, r.parse().ok()?)))
    {
        return (burst, rate);
    }
    (SOURCE_BURST, SOURCE_RATE)
}
/// Shortest shared key accepted.
pub const MIN_KEY_LEN: usize = 16;
/// PBKDF2 rounds that stretch the shared key: one sniffed probe then costs an attacker this
/// many HMACs per guess, and each side pays it once per process (tens of milliseconds).
pub const KDF_ROUNDS: u32 = 100_000;
/// The KDF's salt, fixed by the protocol (both sides must derive the same key from the
/// shared one alone).
const KDF_SALT: &[u8] = b"automate-ports/2 probe key";

const _: () = assert!(REPLY_LEN <= PROBE_LEN && STALE_LEN <= PROBE_LEN && MAPPED_LEN <= PROBE_LEN);
const _: () = assert!(MAPPED_LEN <= MAX_REPLY_LEN);

/// The MAC key, derived from the shared key so the raw key never touches the wire. Kept
/// as a keyed HMAC state: each MAC then clones it instead of hashing the key pads again.
#[derive(Clone)]
pub struct Key(HmacSha256);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// Derives the MAC key from a shared key of at least [`MIN_KEY_LEN`] characters:
    /// PBKDF2-HMAC-SHA256, [`KDF_ROUNDS`] rounds, the protocol's fixed salt.
    pub fn derive(shared: &str) -> Result<Key, String> {
        if shared.trim().chars().count() < MIN_KEY_LEN {
            return Err(format!(
                "the key is too short: use at least {MIN_KEY_LEN} characters, the same on both sides (automate-ports serve --new-key makes one)"
            ));
        }
        let mut derived = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(shared.as_bytes(), KDF_SALT, KDF_ROUNDS, &mut derived);
        Ok(Key(
            HmacSha256::new_from_slice(&derived).expect("HMAC takes any key length")
        ))
    }

    /// A new random shared key: 32 characters from the OS generator (192 bits).
    pub fn generate() -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bytes = [0u8; 32];
        // The OS generator failing is not recoverable and not the user's doing.
        getrandom::fill(&mut bytes).expect("the operating system's random generator works");
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b % 64)]))
            .collect()
    }

    fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }
}

/// A probe as sent by `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Sender's clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub nonce: [u8; 16],
    /// The port the sender aimed at.
    pub port: u16,
    /// Asks for the mapped reply (the source address and port the responder saw), which
    /// tells the prober how its NAT maps it.
    pub mapped: bool,
}

impl Probe {
    /// A probe with a fresh nonce: a random per-process prefix and a counter. Nonces must be
    /// unique, not secret (the MAC stops forgeries), so one call to the OS generator per
    /// process is enough, not one per probe.
    pub fn new(port: u16, timestamp_ms: u64) -> Probe {
        static PREFIX: OnceLock<[u8; 8]> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = PREFIX.get_or_init(|| {
            let mut bytes = [0u8; 8];
            // The OS generator failing is not recoverable and not the user's doing.
            getrandom::fill(&mut bytes).expect("the operating system's random generator works");
            bytes
        });
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(prefix);
        nonce[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        Probe {
            timestamp_ms,
            nonce,
            port,
            mapped: false,
        }
    }

    /// A probe that asks for the mapped reply.
    pub fn new_mapped(port: u16, timestamp_ms: u64) -> Probe {
        Probe {
            mapped: true,
            ..Probe::new(port, timestamp_ms)
        }
    }

    pub fn encode(&self, key: &Key) -> [u8; PROBE_LEN] {
        let mut out = [0u8; PROBE_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = if self.mapped {
            TYPE_PROBE_MAPPED
        } else {
            TYPE_PROBE
        };
        out[8..16].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[16..32].copy_from_slice(&self.nonce);
        out[32..34].copy_from_slice(&self.port.to_be_bytes());
        let mut mac = key.mac();
        mac.update(&out[..34]);
        out[34..].copy_from_slice(&mac.finalize().into_bytes());
        out
    }
}

/// Why a responder ignored a datagram or a connection's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    Truncated,
    Oversized,
    Malformed,
    WrongKey,
    Stale,
    BeforeStart,
    Replayed,
    RateLimited,
}

impl Reject {
    pub const ALL: [Reject; 8] = [
        Reject::Truncated,
        Reject::Oversized,
        Reject::Malformed,
        Reject::WrongKey,
        Reject::Stale,
        Reject::BeforeStart,
        Reject::Replayed,
        Reject::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Truncated => "truncated",
            Reject::Oversized => "oversized",
            Reject::Malformed => "malformed",
            Reject::WrongKey => "wrong key",
            Reject::Stale => "stale",
            Reject::BeforeStart => "older than serve's start",
            Reject::Replayed => "replayed",
            Reject::RateLimited => "rate-limited",
        }
    }
}

/// Checks a probe's form, MAC and freshness. Replays and rate limits are the caller's
/// (they need state).
pub fn decode_probe(key: &Key, bytes: &[u8], now_ms: u64) -> Result<Probe, Reject> {
    let probe = authenticate(key, bytes)?;
    if !is_fresh(probe.timestamp_ms, now_ms, 0) {
        return Err(Reject::Stale);
    }
    Ok(probe)
}

/// Whether a probe made at `timestamp_ms` may be answered at `now_ms` by a responder that
/// started at `not_before_ms`: within [`FRESH_WINDOW`] of its clock, and not older than its
/// start (a probe recorded before a restart cannot be replayed to it).
pub fn is_fresh(timestamp_ms: u64, now_ms: u64, not_before_ms: u64) -> bool {
    timestamp_ms.abs_diff(now_ms) <= FRESH_WINDOW.as_millis() as u64
        && timestamp_ms >= not_before_ms
}

/// Checks a probe's form and MAC only: what a stranger costs the responder before it is
/// forgotten. Freshness is [`is_fresh`].
pub fn authenticate(key: &Key, bytes: &[u8]) -> Result<Probe, Reject> {
    if bytes.len() < PROBE_LEN {
        return Err(Reject::Truncated);
    }
    if bytes.len() > PROBE_LEN {
        return Err(Reject::Oversized);
    }
    let kind = bytes[5];
    if bytes[..4] != MAGIC
        || bytes[4] != VERSION
        || !matches!(kind, TYPE_PROBE | TYPE_PROBE_MAPPED)
        || bytes[6..8] != [0, 0]
    {
        return Err(Reject::Malformed);
    }
    let mut mac = key.mac();
    mac.update(&bytes[..34]);
    // Constant-time comparison: a wrong key learns nothing from timing.
    mac.verify_slice(&bytes[34..])
        .map_err(|_| Reject::WrongKey)?;
    Ok(Probe {
        timestamp_ms: u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes")),
        nonce: bytes[16..32].try_into().expect("16 bytes"),
        port: u16::from_be_bytes([bytes[32], bytes[33]]),
        mapped: kind == TYPE_PROBE_MAPPED,
    })
}

/// The reply to a valid probe: proves the key, binds the nonce and the port it arrived on.
pub fn encode_reply(key: &Key, nonce: &[u8; 16], arrived_on: u16) -> [u8; REPLY_LEN] {
    let mut out = [0u8; REPLY_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4] = VERSION;
    out[5] = TYPE_REPLY;
    out[6..8].copy_from_slice(&arrived_on.to_be_bytes());
    out[8..24].copy_from_slice(nonce);
    let mut mac = key.mac();
    mac.update(&out[..24]);
    out[24..].copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The reply to a valid probe that asked for its mapping: as [`encode_reply`], plus the
/// source address and port the probe came from as the responder saw them (after every NAT
/// on the way). IPv4 travels as such, not IPv4-mapped.
pub fn encode_mapped(
    key: &Key,
    nonce: &[u8; 16],
    arrived_on: u16,
    seen: SocketAddr,
) -> [u8; MAPPED_LEN] {
    let mut out = [0u8; MAPPED_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4] = VERSION;
    out[5] = TYPE_MAPPED;
    out[6..8].copy_from_slice(&arrived_on.to_be_bytes());
    out[8..10].copy_from_slice(&seen.port().to_be_bytes());
    match seen.ip().to_canonical() {
        IpAddr::V4(v4) => {
            out[10] = 4;
            out[12..16].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out[10] = 6;
            out[12..28].copy_from_slice(&v6.octets());
        }
    }
    let mut mac = key.mac();
    mac.update(&out[..28]);
    mac.update(nonce);
    out[28..].copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The answer to a probe with a valid MAC that is not fresh: proves the key, binds the
/// nonce and port, and carries the responder's clock so the prober can say by how much
/// the clocks differ instead of blaming a firewall for the silence.
pub fn encode_stale(key: &Key, nonce: &[u8; 16], arrived_on: u16, now_ms: u64) -> [u8; STALE_LEN] {
    let mut out = [0u8; STALE_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4] = VERSION;
    out[5] = TYPE_STALE;
    out[6..8].copy_from_slice(&arrived_on.to_be_bytes());
    out[8..24].copy_from_slice(nonce);
    out[24..32].copy_from_slice(&now_ms.to_be_bytes());
    let mut mac = key.mac();
    mac.update(&out[..32]);
    out[32..].copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// How long the reply that starts with `head` ([`REPLY_HEAD_LEN`] bytes) is, if it is one.
pub fn reply_len(head: &[u8]) -> Option<usize> {
    if head.len() < REPLY_HEAD_LEN || head[..4] != MAGIC || head[4] != VERSION {
        return None;
    }
    match head[5] {
        TYPE_REPLY => Some(REPLY_LEN),
        TYPE_STALE => Some(STALE_LEN),
        TYPE_MAPPED => Some(MAPPED_LEN),
        _ => None,
    }
}

/// What a reply proves to the prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCheck {
    /// From a responder with the key, for this probe, on the port we aimed at.
    Valid,
    /// From a responder with the key, but the probe arrived on another port: a port forward
    /// or REDIRECT sends this port elsewhere.
    OtherPort(u16),
    /// From a responder with the key, for this probe, on the port we aimed at, which saw it
    /// come from this address and port.
    Mapped(SocketAddr),
    /// From a responder with the key, which refused the probe as stale; its clock then.
    Stale { responder_ms: u64 },
    /// Not a reply to this probe from anyone with the key.
    Invalid,
}

pub fn check_reply(key: &Key, bytes: &[u8], probe: &Probe) -> ReplyCheck {
    if reply_len(bytes) != Some(bytes.len()) {
        return ReplyCheck::Invalid;
    }
    if bytes[5] == TYPE_STALE {
        let mut mac = key.mac();
        mac.update(&bytes[..32]);
        if mac.verify_slice(&bytes[32..]).is_err() || bytes[8..24] != probe.nonce {
            return ReplyCheck::Invalid;
        }
        return ReplyCheck::Stale {
            responder_ms: u64::from_be_bytes(bytes[24..32].try_into().expect("8 bytes")),
        };
    }
    let seen = if bytes[5] == TYPE_MAPPED {
        let Some(seen) = check_mapped(key, bytes, probe) else {
            return ReplyCheck::Invalid;
        };
        Some(seen)
    } else {
        let mut mac = key.mac();
        mac.update(&bytes[..24]);
        if mac.verify_slice(&bytes[24..]).is_err() || bytes[8..24] != probe.nonce {
            return ReplyCheck::Invalid;
        }
        None
    };
    match (u16::from_be_bytes([bytes[6], bytes[7]]), seen) {
        (port, _) if port != probe.port => ReplyCheck::OtherPort(port),
        (_, Some(seen)) => ReplyCheck::Mapped(seen),
        (_, None) => ReplyCheck::Valid,
    }
}

/// The address a mapped reply carries, if its MAC (over the probe's nonce) holds.
fn check_mapped(key: &Key, bytes: &[u8], probe: &Probe) -> Option<SocketAddr> {
    let mut mac = key.mac();
    mac.update(&bytes[..28]);
    mac.update(&probe.nonce);
    mac.verify_slice(&bytes[28..]).ok()?;
    let port = u16::from_be_bytes([bytes[8], bytes[9]]);
    let ip = match bytes[10] {
        4 => IpAddr::from(<[u8; 4]>::try_from(&bytes[12..16]).expect("4 bytes")),
        6 => IpAddr::from(<[u8; 16]>::try_from(&bytes[12..28]).expect("16 bytes")),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests;

//! The authenticated probe protocol: `authenticate`, `decode_probe`, `reply_len` and
//! `check_reply` on arbitrary bytes. Never panics, and nothing but the exact bytes made here
//! with the key is accepted: arbitrary bytes cannot forge the MAC.
#![no_main]

use std::sync::OnceLock;

use automate_ports::protocol::{
    authenticate, check_reply, decode_probe, encode_mapped, encode_reply, encode_stale, reply_len,
    Key, Probe, ReplyCheck, MAPPED_LEN, PROBE_LEN, REPLY_LEN, STALE_LEN,
};
use libfuzzer_sys::fuzz_target;

/// The shared key of the seeds (fuzz/seeds/probe); PBKDF2 runs once per process.
const SHARED_KEY: &str = "fuzzing-key-0123456789";
/// The responder's clock: the canonical probe's own timestamp, so it is fresh.
const NOW_MS: u64 = 1_800_000_000_000;
const NONCE: [u8; 16] = *b"fuzz-nonce-0001!";
const PORT: u16 = 8002;

struct Fixture {
    key: Key,
    probe: Probe,
    probe_bytes: [u8; PROBE_LEN],
    reply_bytes: [u8; REPLY_LEN],
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = Key::derive(SHARED_KEY).expect("key is long enough");
        let probe = Probe {
            timestamp_ms: NOW_MS,
            nonce: NONCE,
            port: PORT,
            mapped: false,
        };
        let probe_bytes = probe.encode(&key);
        let reply_bytes = encode_reply(&key, &NONCE, PORT);
        assert_eq!(decode_probe(&key, &probe_bytes, NOW_MS), Ok(probe));
        assert_eq!(check_reply(&key, &reply_bytes, &probe), ReplyCheck::Valid);
        // The checked-in seeds (written independently by fuzz/make-seeds.py) are exactly
        // these bytes: if the protocol changes, regenerate them.
        assert_eq!(include_bytes!("../seeds/probe/valid-probe"), &probe_bytes);
        assert_eq!(include_bytes!("../seeds/probe/valid-reply"), &reply_bytes);
        assert_eq!(
            include_bytes!("../seeds/probe/other-port-reply"),
            &encode_reply(&key, &NONCE, 8080)
        );
        assert_eq!(
            include_bytes!("../seeds/probe/stale-reply"),
            &encode_stale(&key, &NONCE, PORT, NOW_MS + 600_000)
        );
        Fixture {
            key,
            probe,
            probe_bytes,
            reply_bytes,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();

    if let Ok(p) = authenticate(&f.key, data) {
        assert_eq!(data, &f.probe_bytes[..], "a probe nobody made with the key passed");
        assert_eq!(p, f.probe);
    }
    if let Ok(p) = decode_probe(&f.key, data, NOW_MS) {
        assert_eq!(data, &f.probe_bytes[..], "a probe nobody made with the key decoded");
        assert_eq!(p, f.probe);
    }

    if let Some(n) = reply_len(data) {
        assert!(
            n == REPLY_LEN || n == STALE_LEN || n == MAPPED_LEN,
            "reply_len {n}"
        );
    }

    let port_field = (data.len() >= 8).then(|| u16::from_be_bytes([data[6], data[7]]));
    match check_reply(&f.key, data, &f.probe) {
        ReplyCheck::Valid => {
            assert_eq!(data, &f.reply_bytes[..], "a forged reply was accepted");
        }
        ReplyCheck::OtherPort(port) => {
            assert_ne!(port, PORT);
            assert_eq!(
                data,
                &encode_reply(&f.key, &NONCE, port)[..],
                "a forged other-port reply was accepted"
            );
        }
        ReplyCheck::Stale { responder_ms } => {
            let port = port_field.expect("a stale reply has a port");
            assert_eq!(
                data,
                &encode_stale(&f.key, &NONCE, port, responder_ms)[..],
                "a forged stale reply was accepted"
            );
        }
        ReplyCheck::Mapped(seen) => {
            let port = port_field.expect("a mapped reply has a port");
            assert_eq!(
                data,
                &encode_mapped(&f.key, &NONCE, port, seen)[..],
                "a forged mapped reply was accepted"
            );
        }
        ReplyCheck::Invalid => {}
    }
});

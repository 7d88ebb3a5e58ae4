use super::*;
use proptest::prelude::*;

const NOW: u64 = 1_790_000_000_000;

/// Derived once: the KDF is slow on purpose.
fn key() -> Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| Key::derive("correct horse battery").unwrap())
        .clone()
}

#[test]
fn round_trip() {
    let probe = Probe::new(8484, NOW);
    let bytes = probe.encode(&key());
    assert_eq!(decode_probe(&key(), &bytes, NOW + 1000), Ok(probe));
    let reply = encode_reply(&key(), &probe.nonce, 8484);
    assert_eq!(check_reply(&key(), &reply, &probe), ReplyCheck::Valid);
    let moved = encode_reply(&key(), &probe.nonce, 443);
    assert_eq!(
        check_reply(&key(), &moved, &probe),
        ReplyCheck::OtherPort(443)
    );
    let stale = encode_stale(&key(), &probe.nonce, 8484, NOW + 400_000);
    assert_eq!(reply_len(&stale), Some(STALE_LEN));
    assert_eq!(reply_len(&reply), Some(REPLY_LEN));
    assert_eq!(
        check_reply(&key(), &stale, &probe),
        ReplyCheck::Stale {
            responder_ms: NOW + 400_000
        }
    );
    let mut forged = stale;
    forged[30] ^= 1;
    assert_eq!(check_reply(&key(), &forged, &probe), ReplyCheck::Invalid);
    assert!(is_fresh(NOW, NOW + 300_000, NOW));
    assert!(
        !is_fresh(NOW - 1, NOW, NOW),
        "older than the responder's start"
    );
    assert!(!is_fresh(NOW + 300_001, NOW, 0));
    let other = Probe::new(8484, NOW);
    assert_eq!(
        check_reply(&key(), &reply, &other),
        ReplyCheck::Invalid,
        "nonce is bound"
    );
}

#[test]
fn mapped_replies_carry_what_the_responder_saw() {
    for seen in ["198.51.100.7:40123", "[2001:db8::9]:8002"] {
        let seen: SocketAddr = seen.parse().unwrap();
        let probe = Probe::new_mapped(8002, NOW);
        let bytes = probe.encode(&key());
        assert_eq!(decode_probe(&key(), &bytes, NOW), Ok(probe));
        let reply = encode_mapped(&key(), &probe.nonce, 8002, seen);
        assert_eq!(reply_len(&reply), Some(MAPPED_LEN));
        assert_eq!(
            check_reply(&key(), &reply, &probe),
            ReplyCheck::Mapped(seen)
        );
        let moved = encode_mapped(&key(), &probe.nonce, 40000, seen);
        assert_eq!(
            check_reply(&key(), &moved, &probe),
            ReplyCheck::OtherPort(40000)
        );
        let other = Probe::new_mapped(8002, NOW);
        assert_eq!(
            check_reply(&key(), &reply, &other),
            ReplyCheck::Invalid,
            "nonce is bound"
        );
        for i in 0..MAPPED_LEN {
            let mut forged = reply;
            forged[i] ^= 0x10;
            assert!(
                matches!(check_reply(&key(), &forged, &probe), ReplyCheck::Invalid),
                "byte {i}"
            );
        }
    }
    let mapped_v4: SocketAddr = "[::ffff:192.0.2.1]:9".parse().unwrap();
    let probe = Probe::new_mapped(75, NOW);
    let reply = encode_mapped(&key(), &probe.nonce, 75, mapped_v4);
    assert_eq!(
        check_reply(&key(), &reply, &probe),
        ReplyCheck::Mapped("192.0.2.1:9".parse().unwrap())
    );
}

#[test]
fn rejects_by_cause() {
    let bytes = Probe::new(75, NOW).encode(&key());
    assert_eq!(
        decode_probe(&key(), &bytes[..10], NOW),
        Err(Reject::Truncated)
    );
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(decode_probe(&key(), &long, NOW), Err(Reject::Oversized));
    let wrong = Key::derive("another key entirely").unwrap();
    assert_eq!(decode_probe(&wrong, &bytes, NOW), Err(Reject::WrongKey));
    assert_eq!(
        decode_probe(&key(), &bytes, NOW + 301_000),
        Err(Reject::Stale)
    );
    let mut bad = bytes;
    bad[4] = 9;
    assert_eq!(decode_probe(&key(), &bad, NOW), Err(Reject::Malformed));
    let reply = encode_reply(&wrong, &[0; 16], 75);
    assert_eq!(
        check_reply(&key(), &reply, &Probe::new(75, NOW)),
        ReplyCheck::Invalid
    );
    assert!(Key::derive("fifteen chars!!").is_err());
    assert!(
        Key::derive("                    ").is_err(),
        "blanks are no key"
    );
    let new = Key::generate();
    assert_eq!(new.len(), 32);
    assert!(Key::derive(&new).is_ok());
    assert_ne!(new, Key::generate());
    assert_eq!(format!("{:?}", key()), "Key(<redacted>)");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_never_pass(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(decode_probe(&key(), &bytes, NOW).is_err());
        prop_assert_eq!(check_reply(&key(), &bytes, &Probe::new(1, NOW)), ReplyCheck::Invalid);
    }

    #[test]
    fn any_flipped_bit_is_rejected(index in 0usize..PROBE_LEN, bit in 0u8..8, port: u16) {
        let mut bytes = Probe::new(port, NOW).encode(&key());
        bytes[index] ^= 1 << bit;
        prop_assert!(decode_probe(&key(), &bytes, NOW).is_err());
    }

    #[test]
    fn valid_probes_decode(port: u16, skew in 0u64..300_000) {
        let probe = Probe::new(port, NOW - skew);
        prop_assert_eq!(decode_probe(&key(), &probe.encode(&key()), NOW), Ok(probe));
    }
}

//! The inbound table, port-4500 demultiplexing, counters, limit events, batches, and the
//! promises about keys.

mod common;

use common::{config, framed, ip_packet, keymat, pair, seal};
use esp::{
    ConfigError, DropReason, InboundSa, LimitKind, Limits, OutboundSa, Outcome, Received,
    RecvError, SaConfig, SaEvent, SadError, SadIn, SealError, Slot, Spi, Transform,
};

#[test]
fn port_4500_demux() {
    let (mut out, mut sad) = pair(&config(Transform::Aes128Gcm16, false));

    let mut keepalive = [0xffu8];
    assert_eq!(
        sad.handle_datagram(&mut keepalive),
        Ok(Received::NatKeepalive)
    );

    let mut ike = vec![0, 0, 0, 0];
    ike.extend_from_slice(&[0x22; 28]);
    assert_eq!(
        sad.handle_datagram(&mut ike),
        Ok(Received::Ike { range: 4..32 })
    );

    let mut esp = seal(&mut out, &ip_packet(4, 60, &[7]));
    assert!(matches!(
        sad.handle_datagram(&mut esp),
        Ok(Received::Ipv4 { seq: 1, .. })
    ));

    for bad in [&[][..], &[0xfe][..], &[1, 2, 3, 4, 5, 6, 7][..]] {
        let mut b = bad.to_vec();
        let e = sad.handle_datagram(&mut b).unwrap_err();
        assert_eq!(e.reason(), DropReason::Short);
    }
    let rx = sad.rx_counters();
    assert_eq!((rx.ike, rx.nat_keepalive, rx.ipv4), (1, 1, 1));
    assert_eq!(rx.inner_bytes, 60);
    assert_eq!(sad.drop_counters().short, 3);
}

#[test]
fn unknown_spi_and_auth_failure_are_counted() {
    let (mut out, mut sad) = pair(&config(Transform::ChaCha20Poly1305, false));
    let mut p = seal(&mut out, &ip_packet(4, 60, &[7]));
    p[3] ^= 0x01;
    assert_eq!(
        sad.handle_datagram(&mut p),
        Err(RecvError::UnknownSpi(Spi(0xc0ffef)))
    );

    // Same SPI, different keys: the ICV fails.
    let km = keymat(Transform::ChaCha20Poly1305, 99);
    let mut stranger = OutboundSa::new(&config(Transform::ChaCha20Poly1305, false), &km).unwrap();
    let mut p = seal(&mut stranger, &ip_packet(4, 60, &[7]));
    assert!(matches!(
        sad.handle_datagram(&mut p),
        Err(RecvError::AuthFailed { seq: 1, .. })
    ));
    let d = sad.drop_counters();
    assert_eq!((d.unknown_spi, d.auth_failed), (1, 1));
    assert_eq!(d.total(), 2);
    let labels: Vec<_> = d.iter().map(|(r, _)| r.as_str()).collect();
    assert!(labels.contains(&"unknown_spi") && labels.contains(&"bad_padding"));
}

#[test]
fn table_management() {
    let c = config(Transform::Aes256Gcm16, false);
    let km = keymat(c.transform, 1);
    let mut sad = SadIn::new();
    assert!(sad.is_empty());
    sad.insert(InboundSa::new(&c, &km).unwrap()).unwrap();
    assert_eq!(
        sad.insert(InboundSa::new(&c, &km).unwrap()),
        Err(SadError::DuplicateSpi(c.spi))
    );
    let c2 = SaConfig::new(Spi(0x1234), Transform::Aes128CbcSha256);
    sad.insert(InboundSa::new(&c2, &keymat(c2.transform, 1)).unwrap())
        .unwrap();
    assert_eq!(sad.len(), 2);
    let mut spis: Vec<_> = sad.spis().collect();
    spis.sort();
    assert_eq!(spis, vec![Spi(0x1234), c.spi]);
    assert_eq!(
        sad.get(Spi(0x1234)).unwrap().transform(),
        Transform::Aes128CbcSha256
    );
    assert!(sad.remove(c.spi).is_some());
    assert!(sad.get(c.spi).is_none());
}

#[test]
fn outbound_limits_raise_soft_then_hard_and_stop() {
    let c = SaConfig {
        limits: Limits {
            soft_packets: Some(3),
            hard_packets: Some(5),
            ..Limits::default()
        },
        ..config(Transform::Aes128Gcm16, false)
    };
    let (mut out, _) = pair(&c);
    let inner = ip_packet(4, 100, &[1]);
    let mut events = Vec::new();
    for _ in 0..5 {
        seal(&mut out, &inner);
        events.extend(std::iter::from_fn(|| out.poll_event()));
    }
    assert_eq!(
        events,
        vec![
            SaEvent::SoftLimit(LimitKind::Packets),
            SaEvent::HardLimit(LimitKind::Packets)
        ]
    );
    let (mut buf, range) = framed(&inner);
    assert_eq!(
        out.seal(&mut buf, range),
        Err(SealError::Expired(LimitKind::Packets))
    );
    assert_eq!(out.packets(), 5);
    assert_eq!(out.poll_event(), None);
}

#[test]
fn inbound_byte_limits_raise_events_and_expire() {
    let c = SaConfig {
        limits: Limits {
            soft_bytes: Some(150),
            hard_bytes: Some(300),
            ..Limits::default()
        },
        ..config(Transform::Aes256CbcSha256, true)
    };
    let (_, mut sad) = pair(&c);
    // The sender has no limits of its own here.
    let (mut out, _) = pair(&SaConfig {
        limits: Limits::default(),
        ..c
    });
    let inner = ip_packet(6, 100, &[1]);
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..5 {
        let mut p = seal(&mut out, &inner);
        if let Err(e) = sad.handle_datagram(&mut p) {
            errors.push(e);
        }
        events.extend(std::iter::from_fn(|| sad.poll_event()));
    }
    // 112 ciphertext bytes per packet: soft after 2, hard after 3.
    assert_eq!(
        events,
        vec![
            (c.spi, SaEvent::SoftLimit(LimitKind::Bytes)),
            (c.spi, SaEvent::HardLimit(LimitKind::Bytes))
        ]
    );
    assert_eq!(errors.len(), 2);
    assert!(matches!(
        errors[0],
        RecvError::Expired {
            kind: LimitKind::Bytes,
            ..
        }
    ));
    assert_eq!(sad.drop_counters().expired, 2);
    assert!(sad.get(c.spi).unwrap().is_expired());
    assert_eq!(sad.get(c.spi).unwrap().packets(), 3);
}

#[test]
fn sequence_number_soft_event_before_exhaustion() {
    let (mut out, _) = pair(&config(Transform::Aes128Gcm16, false));
    esp::fuzzing::set_last_seq(
        &mut out,
        u64::from(u32::MAX) - (u64::from(u32::MAX) / 16) - 1,
    );
    seal(&mut out, &ip_packet(4, 40, &[0]));
    assert_eq!(
        out.poll_event(),
        Some(SaEvent::SoftLimit(LimitKind::SequenceNumber))
    );
}

#[test]
fn batches() {
    let (mut out, mut sad) = pair(&config(Transform::Aes128Gcm16, true));
    let inners: Vec<Vec<u8>> = (0..8)
        .map(|i| ip_packet(if i % 2 == 0 { 4 } else { 6 }, 60 + i * 100, &[i as u8]))
        .collect();
    let mut bufs: Vec<Vec<u8>> = inners.iter().map(|p| framed(p).0).collect();
    bufs[5].truncate(common::HEADROOM + inners[5].len()); // no tailroom
    let mut slots: Vec<Slot<'_>> = bufs
        .iter_mut()
        .zip(&inners)
        .map(|(b, p)| Slot::new(b, common::HEADROOM..common::HEADROOM + p.len()))
        .collect();
    assert_eq!(out.seal_batch(&mut slots), 7);
    assert!(matches!(
        slots[5].outcome,
        Outcome::SealFailed(SealError::Tailroom { .. })
    ));
    // Receive the sealed ones (slot 5 still holds its plaintext: an unknown SPI).
    let mut replayed = slots[0].buf[slots[0].range.clone()].to_vec();
    for s in &mut slots {
        s.outcome = Outcome::Pending;
    }
    assert_eq!(sad.handle_datagram_batch(&mut slots), 7);
    for (i, s) in slots.iter().enumerate() {
        if i == 5 {
            assert!(matches!(s.outcome, Outcome::Dropped(_)), "{:?}", s.outcome);
            continue;
        }
        assert!(matches!(s.outcome, Outcome::Received(_)));
        assert_eq!(&s.buf[s.range.clone()], &inners[i][..]);
    }
    assert!(matches!(
        sad.handle_datagram(&mut replayed),
        Err(RecvError::Replayed { seq: 1, .. })
    ));
    assert_eq!(out.packets(), 7);
}

#[test]
fn config_errors() {
    let c = config(Transform::Aes128CbcSha256, false);
    assert_eq!(
        OutboundSa::new(&c, &[0; 47]).unwrap_err(),
        ConfigError::KeyLength {
            transform: Transform::Aes128CbcSha256,
            expected: 48,
            got: 47
        }
    );
    let bad = SaConfig {
        limits: Limits {
            soft_packets: Some(10),
            hard_packets: Some(5),
            ..Limits::default()
        },
        ..c
    };
    assert_eq!(
        InboundSa::new(&bad, &[0; 48]).unwrap_err(),
        ConfigError::Limits(LimitKind::Packets)
    );
    assert!(matches!(
        OutboundSa::new(&SaConfig::new(Spi(0), c.transform), &[0; 48]),
        Err(ConfigError::ReservedSpi(Spi(0)))
    ));
}

#[test]
fn seal_refuses_non_ip_payloads_and_bad_ranges() {
    let (mut out, _) = pair(&config(Transform::Aes128Gcm16, false));
    let mut buf = vec![0u8; 200];
    buf[64] = 0x30;
    assert_eq!(
        out.seal(&mut buf, 64..100),
        Err(SealError::NotIp { first_byte: 0x30 })
    );
    assert!(matches!(
        out.seal(
            &mut buf,
            std::ops::Range {
                start: 100,
                end: 64
            }
        ),
        Err(SealError::NotIp { .. } | SealError::BadRange { .. })
    ));
    assert!(matches!(
        out.seal_dummy(&mut buf, 190..300),
        Err(SealError::BadRange { .. })
    ));
    // Nothing was consumed by the failures.
    assert_eq!(out.last_seq(), 0);
    let s = out.seal_dummy(&mut buf, 64..100).unwrap();
    assert_eq!(s.seq, 1);
}

#[test]
fn keys_never_appear_in_debug_output() {
    for t in Transform::ALL {
        let km = vec![0xabu8; t.keymat_len()];
        let c = config(t, false);
        let out = OutboundSa::new(&c, &km).unwrap();
        let mut sad = SadIn::new();
        sad.insert(InboundSa::new(&c, &km).unwrap()).unwrap();
        let text = format!("{out:?} {sad:?} {:?}", sad.get(c.spi).unwrap());
        assert!(!text.to_lowercase().contains("abab"), "{text}");
        assert!(!text.contains("171, 171"), "{text}");
        assert!(text.contains("0x00c0ffee"));
    }
}

#[test]
fn transform_names_parse() {
    for (s, t) in [
        ("aes128gcm16", Transform::Aes128Gcm16),
        ("aes256gcm16", Transform::Aes256Gcm16),
        ("chacha20poly1305", Transform::ChaCha20Poly1305),
        ("aes128-sha256", Transform::Aes128CbcSha256),
        ("aes256-sha256", Transform::Aes256CbcSha256),
    ] {
        assert_eq!(s.parse::<Transform>().unwrap(), t);
        assert_eq!(t.to_string(), s);
    }
    let e = "3des-md5".parse::<Transform>().unwrap_err();
    assert!(e.to_string().contains("3des-md5"));
}

#[test]
fn sas_and_table_can_move_to_a_worker_thread() {
    fn send<T: Send>() {}
    send::<OutboundSa>();
    send::<InboundSa>();
    send::<SadIn>();
}

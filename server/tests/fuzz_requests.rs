//! Property tests ("fuzzing" with proptest, bounded: a few thousand cases, seconds in CI) of
//! what the server reads from requests: headers, percent-encoding, integers, ranges, cursors,
//! tokens, ids. None may panic; each accepted value must mean what the protocol says. And the
//! client's encoder (`opfs_media::sync::protocol::encode_component`) and the server's decoder
//! must agree on every string.

use axum::http::{HeaderMap, HeaderValue};
use opfs_media::sync::protocol::encode_component;
use opfs_media_server::api::parse_range;
use opfs_media_server::auth::{authenticate, AuthMode};
use opfs_media_server::cursor::{Cursors, Kind};
use opfs_media_server::request::{content_type, if_match, parse_id, pct_decode, safe_uint, MAX_SAFE_INT};
use proptest::prelude::*;

fn headers(name: &'static str, raw: &[u8]) -> Option<HeaderMap> {
    let v = HeaderValue::from_bytes(raw).ok()?;
    let mut h = HeaderMap::new();
    h.insert(name, v);
    Some(h)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn client_encoding_and_server_decoding_agree(s in "\\PC{0,40}|.{0,40}") {
        prop_assert_eq!(pct_decode(&encode_component(&s)), Some(s));
    }

    #[test]
    fn percent_decoding_of_anything_is_strict(s in "[%0-9a-fA-Fz -~]{0,40}") {
        if let Some(d) = pct_decode(&s) {
            // Whatever decodes, encodes back to something that decodes to the same.
            prop_assert_eq!(pct_decode(&encode_component(&d)), Some(d));
        }
    }

    #[test]
    fn integers_are_canonical_and_safe(s in "[-+0-9a ]{0,20}") {
        if let Some(n) = safe_uint(&s) {
            prop_assert!((0..=MAX_SAFE_INT).contains(&n));
            prop_assert_eq!(n.to_string(), s);
        }
    }

    #[test]
    fn ranges_parse_to_what_they_say(s in "(bytes=)?[-0-9, ]{0,30}", size in 0u64..10_000) {
        if let Some(spec) = parse_range(&s) {
            if let Some(r) = spec.within(size) {
                prop_assert!(r.start < r.end && r.end <= size, "{:?} of {}", r, size);
            }
        }
    }

    #[test]
    fn any_header_bytes_give_a_value_or_a_typed_400(raw in prop::collection::vec(any::<u8>(), 0..40)) {
        if let Some(h) = headers("if-match", &raw) {
            match if_match(&h) {
                Ok(Some(v)) => prop_assert!((0..=MAX_SAFE_INT).contains(&v)),
                Ok(None) => {}
                Err(e) => prop_assert_eq!(e.status.as_u16(), 400),
            }
        }
        if let Some(h) = headers("content-type", &raw) {
            if let Err(e) = content_type(&h) {
                prop_assert_eq!(e.status.as_u16(), 400);
            }
        }
        if let Some(h) = headers("authorization", &raw) {
            for mode in [AuthMode::DevInsecure, AuthMode::Hmac(b"fuzz-secret-0123456789".to_vec())] {
                if let Err(e) = authenticate(&mode, &h) {
                    prop_assert!(matches!(e.status.as_u16(), 400 | 401), "{}", e.status);
                }
            }
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_everything_else(user in "[a-z]{1,8}", pos in "[0-9a-f-]{0,40}", junk in ".{0,80}") {
        let c = Cursors::new(b"fuzz-secret-0123456789");
        let issued = c.encode(&user, Kind::Changes, &pos);
        prop_assert_eq!(c.decode(&user, Kind::Changes, &issued).ok(), Some(pos.clone()));
        prop_assert!(c.decode(&format!("{user}x"), Kind::Changes, &issued).is_err(), "another user's cursor");
        prop_assert!(c.decode(&user, Kind::List, &issued).is_err(), "a cursor of the other endpoint");
        prop_assert!(Cursors::new(b"another-secret-0123456789").decode(&user, Kind::Changes, &issued).is_err());
        if junk != issued {
            if let Ok(p) = c.decode(&user, Kind::Changes, &junk) {
                prop_assert!(false, "forged cursor {:?} accepted as {:?}", junk, p);
            }
        }
    }

    #[test]
    fn ids_are_canonical_uuids(s in "[0-9a-fA-F-]{30,40}|.{0,40}") {
        if let Ok(id) = parse_id(&s) {
            prop_assert_eq!(id.len(), 36);
            prop_assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-'));
        }
    }
}

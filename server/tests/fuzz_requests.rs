//! Property tests ("fuzzing" with proptest, bounded: a few thousand cases, seconds in CI) of
//! what the server reads from requests: headers, percent-encoding, integers, ranges, cursors,
//! tokens, ids. None may panic; each accepted value must mean what the protocol says. And the
//! client's encoder (`opfs_media::sync::protocol::encode_component`) and the server's decoder
//! must agree on every string. Where a parser has a defined answer (percent-decoding, integers,
//! `Range`, `If-Match`, cursors, `Content-Digest`) a property states that answer (an oracle),
//! so a parser that refuses everything fails too.

use axum::http::{HeaderMap, HeaderValue};
use opfs_media::sync::protocol::encode_component;
use opfs_media_server::api::{parse_range, RangeSpec};
use opfs_media_server::auth::{authenticate, AuthMode};
use opfs_media_server::cursor::{Cursors, Kind};
use opfs_media_server::request::{content_type, if_match, parse_id, pct_decode, safe_uint, MAX_SAFE_INT};
use opfs_media_server::resumable::rules::{content_digest_sha256, content_digest_value};
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

/// `%XX` for every byte, in upper or lower case hex as `upper` says per byte.
fn escape_all(bytes: &[u8], upper: &[bool]) -> String {
    bytes
        .iter()
        .zip(upper.iter().cycle())
        .map(|(b, &u)| if u { format!("%{b:02X}") } else { format!("%{b:02x}") })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Oracle: any bytes, every one escaped (either hex case), decode to those bytes when they
    /// are UTF-8 and to nothing when they are not; unescaped ASCII around them stays as is.
    #[test]
    fn percent_decoding_gives_the_escaped_bytes(bytes in prop::collection::vec(any::<u8>(), 0..24), upper in prop::collection::vec(any::<bool>(), 1..4), plain in "[a-zA-Z0-9._~+ -]{0,8}") {
        let want = String::from_utf8(bytes.clone()).ok();
        prop_assert_eq!(pct_decode(&escape_all(&bytes, &upper)), want.clone());
        prop_assert_eq!(pct_decode(&format!("{plain}{}{plain}", escape_all(&bytes, &upper))), want.map(|w| format!("{plain}{w}{plain}")));
    }

    /// Oracle: every integer 0..=2^53-1 in canonical decimal is itself; past it, or spelled
    /// with a sign, a leading zero or spaces, it is refused.
    #[test]
    fn integers_read_as_their_value(n in prop_oneof![0i64..=MAX_SAFE_INT, Just(MAX_SAFE_INT), Just(0)], over in (MAX_SAFE_INT + 1)..=i64::MAX) {
        prop_assert_eq!(safe_uint(&n.to_string()), Some(n));
        prop_assert_eq!(safe_uint(&over.to_string()), None);
        prop_assert_eq!(safe_uint(&format!("+{n}")), None);
        prop_assert_eq!(safe_uint(&format!("0{n}")), None);
        prop_assert_eq!(safe_uint(&format!(" {n}")), None);
        for v in [format!("\"{n}\""), format!("W/\"{n}\""), n.to_string()] {
            let h = headers("if-match", v.as_bytes()).unwrap();
            prop_assert_eq!(if_match(&h).ok(), Some(Some(n)), "If-Match: {}", v);
        }
    }

    /// Oracle: `bytes=f-l`, `bytes=f-` and `bytes=-n` parse to what they say, and select of a
    /// `size`-byte file exactly the bytes RFC 9110 14.1.2 gives (or nothing when unsatisfiable).
    #[test]
    fn ranges_select_what_rfc_9110_says(f in 0u64..20_000, len in prop_oneof![Just(0u64), 0u64..20_000], size in 0u64..10_000) {
        let l = f + len;
        prop_assert_eq!(parse_range(&format!("bytes={f}-{l}")), Some(RangeSpec::From(f, Some(l))));
        prop_assert_eq!(RangeSpec::From(f, Some(l)).within(size), (f < size).then(|| f..(l + 1).min(size)));
        prop_assert_eq!(parse_range(&format!("bytes={f}-")), Some(RangeSpec::From(f, None)));
        prop_assert_eq!(RangeSpec::From(f, None).within(size), (f < size).then_some(f..size));
        prop_assert_eq!(parse_range(&format!("bytes=-{len}")), Some(RangeSpec::Suffix(len)));
        prop_assert_eq!(RangeSpec::Suffix(len).within(size), (len > 0 && size > 0).then(|| size.saturating_sub(len)..size));
        if len > 0 {
            prop_assert_eq!(parse_range(&format!("bytes={l}-{f}")), None, "last before first");
        }
        prop_assert_eq!(parse_range(&format!("bytes={f}-{l},0-1")), None, "a list");
        prop_assert_eq!(parse_range(&format!("items={f}-{l}")), None, "another unit");
    }

    /// A cursor with any one character changed is refused: the signature covers all of it, and
    /// base64 with a changed last symbol does not decode to the same bytes.
    #[test]
    fn a_changed_cursor_is_refused(user in "[a-z]{1,8}", pos in "[0-9a-f-]{0,40}", at in any::<prop::sample::Index>(), ch in "[A-Za-z0-9_.=-]") {
        let c = Cursors::new(b"fuzz-secret-0123456789");
        let issued = c.encode(&user, Kind::List, &pos);
        let i = at.index(issued.len());
        let changed = format!("{}{}{}", &issued[..i], ch, &issued[i + 1..]);
        if changed != issued {
            match c.decode(&user, Kind::List, &changed) {
                Err(e) => prop_assert_eq!(e.status.as_u16(), 400),
                Ok(p) => prop_assert!(false, "{:?} (changed at {}) accepted as {:?}", changed, i, p),
            }
        }
    }

    /// Oracle: the `sha-256` member of a `Content-Digest` dictionary is that digest, wherever it
    /// stands among other members and parameters; a value of another length is none.
    #[test]
    fn content_digest_gives_its_sha256(d in any::<[u8; 32]>(), other in prop::collection::vec(any::<u8>(), 0..64), first in any::<bool>(), short in prop::collection::vec(any::<u8>(), 0..31)) {
        let value = content_digest_value(&d);
        prop_assert_eq!(content_digest_sha256(&value), Some(d));
        let other = format!("sha-512=:{}:", base64_std(&other));
        let both = if first { format!("{value};p=1, {other}") } else { format!("{other},\t{value}") };
        prop_assert_eq!(content_digest_sha256(&both), Some(d), "{}", both);
        prop_assert_eq!(content_digest_sha256(&other), None, "no sha-256 member");
        prop_assert_eq!(content_digest_sha256(&content_digest_value(&short)), None, "{} bytes", short.len());
    }
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

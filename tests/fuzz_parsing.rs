//! Property tests ("fuzzing" with proptest, bounded: a few thousand cases, seconds in CI) of
//! everything the client parses from outside: server replies (`protocol::outcome`,
//! `protocol::live_assets`) and stored records (`MediaAsset` from the catalog's JSON), and of
//! the input rules (`validate`). None may panic; each answer must be one the engine can act on.
//! Where a parser has a defined answer, the property is that answer (an oracle or a round
//! trip), not only "no panic": a valid asset reply is read field for field, a `Content-Range`
//! gives its first byte, an error code comes back as sent.
#![cfg(not(target_arch = "wasm32"))]

use opfs_media::asset::MediaAsset;
use opfs_media::sync::engine::{Change, Meta, Outcome, RemoteAsset, Reply, Request};
use opfs_media::sync::protocol::{content_range_start, encode_component, live_assets, outcome};
use opfs_media::validate;
use proptest::prelude::*;
use serde_json::{json, Value};

fn requests() -> Vec<Request> {
    let meta = Meta { name: "n".into(), tags: vec![] };
    vec![
        Request::Upload { id: "a".into(), sha256: "00".into(), meta: meta.clone() },
        Request::Patch { id: "a".into(), if_match: 1, meta },
        Request::Delete { id: "a".into() },
        Request::Changes { cursor: None },
    ]
}

/// Any JSON value, a few levels deep, with the protocol's field names among the keys so the
/// parsers get past their first checks.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id".to_owned()),
        Just("name".to_owned()),
        Just("type".to_owned()),
        Just("size".to_owned()),
        Just("sha256".to_owned()),
        Just("version".to_owned()),
        Just("createdAt".to_owned()),
        Just("updatedAt".to_owned()),
        Just("tags".to_owned()),
        Just("changes".to_owned()),
        Just("asset".to_owned()),
        Just("deleted".to_owned()),
        Just("nextCursor".to_owned()),
        Just("hasMore".to_owned()),
        Just("error".to_owned()),
        Just("code".to_owned()),
        Just("details".to_owned()),
        Just("storage".to_owned()),
        Just("syncStatus".to_owned()),
        Just("handleName".to_owned()),
        "[a-zA-Z]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<u64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..10).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid server asset with one field replaced by anything.
fn mutated_asset() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("id"),
        Just("name"),
        Just("type"),
        Just("size"),
        Just("sha256"),
        Just("version"),
        Just("createdAt"),
        Just("updatedAt"),
        Just("tags")
    ];
    (field, json_value()).prop_map(|(f, v)| {
        let mut a = json!({ "id": "0192f3a4-5b6c-7d8e-9f01-23456789abcd", "name": "a.png", "type": "image/png",
            "size": 3, "sha256": "ab", "version": 2, "createdAt": 1, "updatedAt": 2, "tags": [] });
        a[f] = v;
        a
    })
}

/// What the engine may be told: a success, a typed failure, never anything else.
fn check_outcome(status: u16, o: &Outcome) {
    match o {
        Outcome::Ok(_) => assert!((200..300).contains(&status), "Ok for status {status}"),
        Outcome::Failed { status: s, code, .. } => {
            assert!(!code.is_empty(), "a failure without a code");
            if (200..300).contains(&status) {
                assert_eq!((*s, code.as_str()), (502, "PROTOCOL_ERROR"), "an unreadable success");
            } else {
                assert_eq!(*s, status, "the status is kept");
            }
        }
        Outcome::Network => panic!("a reply is never a network failure"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn replies_of_any_bytes_are_typed(status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..300), retry in proptest::option::of(any::<u64>())) {
        for req in requests() {
            check_outcome(status, &outcome(&req, status, retry, &body));
        }
        let _ = live_assets(&body);
    }

    #[test]
    fn replies_of_any_json_are_typed(status in prop_oneof![Just(200u16), Just(201), Just(409), Just(412), Just(429), 100u16..600], v in json_value()) {
        let body = serde_json::to_vec(&v).unwrap();
        for req in requests() {
            check_outcome(status, &outcome(&req, status, None, &body));
        }
        let _ = live_assets(&body);
    }

    #[test]
    fn a_mutated_asset_parses_or_is_a_protocol_error(a in mutated_asset()) {
        let body = serde_json::to_vec(&a).unwrap();
        let up = &requests()[0];
        check_outcome(200, &outcome(up, 200, None, &body));
        let page = serde_json::to_vec(&json!({ "changes": [{ "id": a["id"], "deleted": false, "asset": a }], "nextCursor": "c", "hasMore": false })).unwrap();
        check_outcome(200, &outcome(&requests()[3], 200, None, &page));
        // A 412 carrying the mutated asset as its current version: parsed or dropped, never a panic.
        let err = serde_json::to_vec(&json!({ "error": { "code": "PRECONDITION_FAILED", "message": "m", "details": a } })).unwrap();
        check_outcome(412, &outcome(&requests()[1], 412, None, &err));
    }

    #[test]
    fn stored_records_of_any_json_load_or_fail_typed(v in json_value()) {
        // A record that loads survives a write and a read unchanged.
        if let Ok(a) = serde_json::from_value::<MediaAsset>(v) {
            let again: MediaAsset = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
            prop_assert_eq!(again, a);
        }
    }

    #[test]
    fn input_rules_never_panic_and_hold(s in ".{0,300}", tags in prop::collection::vec(".{0,80}", 0..80)) {
        if let Ok(n) = validate::display_name(&s) {
            prop_assert!(!n.is_empty() && !n.chars().any(char::is_control), "{:?}", n);
        }
        let _ = validate::asset_id(&s);
        let _ = validate::mime_type(&s);
        let _ = validate::library_name(&s);
        if let Ok(t) = validate::tags(&tags) {
            prop_assert!(t.len() <= tags.len());
        }
        // Percent-encoding (as `encodeURIComponent`) leaves only its unreserved characters and
        // %XX escapes, and decodes back to the very same bytes.
        let e = encode_component(&s);
        prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()%".contains(&b)), "{:?}", e);
        let mut decoded = Vec::new();
        let mut bytes = e.bytes();
        while let Some(b) = bytes.next() {
            if b == b'%' {
                let hex: String = [bytes.next().unwrap(), bytes.next().unwrap()].iter().map(|&c| c as char).collect();
                decoded.push(u8::from_str_radix(&hex, 16).unwrap());
            } else {
                decoded.push(b);
            }
        }
        prop_assert_eq!(decoded, s.as_bytes().to_vec());
    }
}

/// A valid asset as a server sends it, and what the engine must read from it.
fn valid_asset() -> impl Strategy<Value = (Value, RemoteAsset)> {
    (
        "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        "\\PC{1,40}",
        "[0-9a-f]{64}",
        0i64..=9_007_199_254_740_991,
        0i64..=9_007_199_254_740_991,
        prop::collection::vec("\\PC{1,20}", 0..5),
        0u64..=9_007_199_254_740_991,
    )
        .prop_map(|(id, name, sha, version, updated_at, tags, size)| {
            let wire = json!({ "id": id, "name": name, "type": "image/png", "size": size, "sha256": sha,
                "version": version, "createdAt": 1, "updatedAt": updated_at, "tags": tags,
                "url": format!("/api/media/assets/{id}") });
            let remote =
                RemoteAsset { id, sha256: sha, meta: Meta { name, tags }, version, updated_at, updated_by: None };
            (wire, remote)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Oracle: a valid asset reply is read field for field, as the reply to an upload, a patch
    /// and inside a changes page; the 412's current record too.
    #[test]
    fn a_valid_asset_is_read_as_sent((wire, remote) in valid_asset(), status in 200u16..300) {
        let body = serde_json::to_vec(&wire).unwrap();
        for req in &requests()[..2] {
            prop_assert_eq!(outcome(req, status, None, &body), Outcome::Ok(Reply::Asset(remote.clone())));
        }
        let page = serde_json::to_vec(&json!({ "changes": [{ "id": wire["id"], "deleted": false, "asset": wire },
            { "id": "gone", "deleted": true }], "nextCursor": "c1", "hasMore": true })).unwrap();
        let want = Reply::Changes {
            changes: vec![Change::Live(remote.clone()), Change::Tombstone { id: "gone".into() }],
            next_cursor: "c1".into(),
            has_more: true,
        };
        prop_assert_eq!(outcome(&requests()[3], status, None, &page), Outcome::Ok(want));
        let err = serde_json::to_vec(&json!({ "error": { "code": "PRECONDITION_FAILED", "message": "m", "details": wire } })).unwrap();
        match outcome(&requests()[1], 412, Some(3), &err) {
            Outcome::Failed { status, code, current, retry_after } => {
                prop_assert_eq!((status, code.as_str(), current, retry_after), (412, "PRECONDITION_FAILED", Some(remote), Some(3)));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Oracle: an error code of the protocol's shape comes back as sent, with the status.
    #[test]
    fn error_codes_come_back_as_sent(code in "[A-Z][A-Z0-9_]{0,63}", status in 400u16..600) {
        let body = serde_json::to_vec(&json!({ "error": { "code": code, "message": "m" } })).unwrap();
        match outcome(&requests()[2], status, None, &body) {
            Outcome::Failed { status: s, code: c, .. } => prop_assert_eq!((s, c), (status, code)),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// Oracle: `Content-Range: bytes <first>-<last>/<size or *>` gives `first` exactly when
    /// `first <= last`; anything else around the numbers is refused.
    #[test]
    fn content_range_gives_its_first_byte(first in any::<u64>(), last in any::<u64>(), one_byte in any::<bool>(), size in proptest::option::of(any::<u64>()), junk in "[ -.:-~]{0,3}") {
        let last = if one_byte { first } else { last };
        let total = size.map_or("*".to_owned(), |n| n.to_string());
        let v = format!("bytes {first}-{last}/{total}");
        prop_assert_eq!(content_range_start(&v), (first <= last).then_some(first));
        prop_assert_eq!(content_range_start(&format!("  {v} ")), (first <= last).then_some(first), "surrounding space");
        // Junk without digits or `/` (the size after `/` is not read).
        if !junk.trim().is_empty() {
            prop_assert_eq!(content_range_start(&format!("bytes {first}{junk}-{last}/{total}")), None);
            prop_assert_eq!(content_range_start(&format!("bytes {first}-{last}{junk}/{total}")), None);
        }
        prop_assert_eq!(content_range_start(&format!("items {first}-{last}/{total}")), None);
    }
}

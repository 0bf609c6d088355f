//! Reading JSON in the sync code: `serde_json` natively (the tests), the browser's own
//! `JSON.parse` + serde-wasm-bindgen on wasm, so the package carries no JSON parser.
//!
//! The sync package used to parse server replies, stored sync state and channel messages
//! with `serde_json`: its parser and the `Value` deserializers were ~45 KB of wasm code
//! (docs/size.md). Writing JSON still goes through `serde_json` (its serializer is small),
//! so request bodies, stored state and channel messages are byte for byte what they were.
//! For replies the protocol allows, both parsers give the same values; they differ only on
//! documents no conforming server sends (a duplicate key, an integer beyond 2^53, `5.0`
//! where an integer is expected, a lone surrogate escape).

use serde::de::DeserializeOwned;

/// An unparsed-further part of a JSON document (the error `details`, the capabilities'
/// resumable-upload limits), read into a type later with [`from_raw`].
#[cfg(not(target_arch = "wasm32"))]
pub type Raw = serde_json::Value;

/// An unparsed-further part of a JSON document, kept as the JS value `JSON.parse` made.
#[cfg(target_arch = "wasm32")]
#[derive(Clone, Debug)]
pub struct Raw(wasm_bindgen::JsValue);

#[cfg(target_arch = "wasm32")]
impl PartialEq for Raw {
    fn eq(&self, other: &Self) -> bool {
        js_sys::Object::is(&self.0, &other.0)
    }
}

#[cfg(target_arch = "wasm32")]
impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only serde-wasm-bindgen hands the JS value over as it is; on wasm every document
        // is read through it (`from_slice`), so this is the only deserializer `Raw` meets.
        serde_wasm_bindgen::preserve::deserialize(d).map(Raw)
    }
}

/// Reads `T` from a JSON document; `None` if it is not JSON or not a `T`.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        serde_json::from_slice(body).ok()
    }
    #[cfg(target_arch = "wasm32")]
    {
        let text = std::str::from_utf8(body).ok()?;
        let value = js_sys::JSON::parse(text).ok()?;
        serde_wasm_bindgen::from_value(value).ok()
    }
}

/// Reads `T` from a JSON text; `None` if it is not JSON or not a `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Option<T> {
    from_slice(text.as_bytes())
}

/// Reads `T` from a part of a document; `None` if it is not a `T`.
pub fn from_raw<T: DeserializeOwned>(raw: Raw) -> Option<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        serde_json::from_value(raw).ok()
    }
    #[cfg(target_arch = "wasm32")]
    {
        serde_wasm_bindgen::from_value(raw.0).ok()
    }
}

/// Whether `raw` is an object with the member `key` (of any value, `null` included).
pub fn has(raw: &Raw, key: &str) -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        raw.get(key).is_some()
    }
    #[cfg(target_arch = "wasm32")]
    {
        is_object(raw)
            && !js_sys::Object::get_own_property_descriptor(raw.0.unchecked_ref::<js_sys::Object>(), &key.into())
                .is_undefined()
    }
}

/// The member `key` of `raw` as a non-negative integer, if it is one.
pub fn get_u64(raw: &Raw, key: &str) -> Option<u64> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        raw.get(key).and_then(|v| v.as_u64())
    }
    #[cfg(target_arch = "wasm32")]
    {
        if !has(raw, key) {
            return None;
        }
        let v = js_sys::Reflect::get(&raw.0, &key.into()).ok()?;
        let n = v.as_f64()?;
        (js_sys::Number::is_safe_integer(&v) && n >= 0.0).then_some(n as u64)
    }
}

/// A JSON object (not an array, not `null`), as `serde_json::Value::get` looks members up.
#[cfg(target_arch = "wasm32")]
fn is_object(raw: &Raw) -> bool {
    raw.0.is_object() && !js_sys::Array::is_array(&raw.0)
}

#[cfg(target_arch = "wasm32")]
use wasm_bindgen::JsCast as _;

/// The wasm side against what `serde_json` gives for the same documents (the native side is
/// `serde_json` itself). Runs with `cargo test --target wasm32-unknown-unknown --lib json`
/// (wasm-bindgen-test-runner, in Node).
#[cfg(all(test, target_arch = "wasm32"))]
mod wasm_tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Body {
        error: Inner,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Inner {
        code: String,
        #[serde(default)]
        details: Option<Raw>,
    }

    #[wasm_bindgen_test]
    fn members_and_offsets_read_as_serde_json_reads_them() {
        let body: Body =
            from_slice(br#"{"error":{"code":"OFFSET_MISMATCH","details":{"offset":42,"x":null}}}"#).unwrap();
        assert_eq!(body.error.code, "OFFSET_MISMATCH");
        let d = body.error.details.unwrap();
        assert!(has(&d, "offset") && has(&d, "x") && !has(&d, "y") && !has(&d, "toString"));
        assert_eq!(get_u64(&d, "offset"), Some(42));
        assert_eq!(get_u64(&d, "x"), None);
        for bad in [r#"{"offset":-1}"#, r#"{"offset":"1"}"#, r#"{"offset":1.5}"#, r#"{"offset":1e300}"#] {
            let raw: Raw = from_str(bad).unwrap();
            assert_eq!(get_u64(&raw, "offset"), None, "{bad}");
        }
        let arr: Raw = from_str("[1]").unwrap();
        assert!(!has(&arr, "0") && !has(&arr, "length"));
        let null: Option<Raw> = from_str("null");
        assert!(null.is_none_or(|n| !has(&n, "offset")));
    }

    #[wasm_bindgen_test]
    fn documents_that_are_not_json_or_not_the_type_are_none() {
        assert!(from_slice::<Body>(b"").is_none());
        assert!(from_slice::<Body>(b"<html>").is_none());
        assert!(from_slice::<Body>(b"{\"error\":{\"code\":\"A\"}} x").is_none());
        assert!(from_slice::<Body>(b"{\"error\":{\"code\":5}}").is_none());
        assert!(from_slice::<Body>(&[b'"', 0xff, b'"']).is_none());
        let b: Body = from_slice(b"{\"error\":{\"code\":\"A\"}}").unwrap();
        assert!(b.error.details.is_none());
        assert_eq!(from_raw::<Vec<u64>>(from_str::<Raw>("[1,2]").unwrap()), Some(vec![1, 2]));
    }
}

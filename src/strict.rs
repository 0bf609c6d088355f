//! `deny_unknown_fields` for option objects read with serde-wasm-bindgen, which looks up only
//! the fields a struct declares and so never sees a misspelt one. The field list comes from the
//! struct's own `Deserialize` impl (the `FIELDS` serde passes to `deserialize_struct`), so it
//! cannot drift from the struct. Plain Rust, tested natively; `interop::options` applies it.
//! (Options used to go through `serde_json` for this: its parser was ~25 KB of the core wasm.)

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The serialized field names of struct `T` (after `rename`/`rename_all`); empty for a type
/// that is not a struct.
pub fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(Probe) {
        Err(Found(fields)) => fields,
        Ok(_) => &[],
    }
}

/// The error serde gives for the first key of `keys` that is not in `fields`
/// (``unknown field `x`, expected one of `a`, `b` ``), or `None` if all are known.
pub fn unknown_key<'a>(keys: impl IntoIterator<Item = &'a str>, fields: &'static [&'static str]) -> Option<String> {
    let key = keys.into_iter().find(|k| !fields.contains(k))?;
    Some(<de::value::Error as de::Error>::unknown_field(key, fields).to_string())
}

/// A deserializer that only answers "which fields?": it fails every call, carrying the field
/// list when asked for a struct.
struct Probe;

#[derive(Debug)]
struct Found(&'static [&'static str]);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Found(&[])
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::{AssetPatch, ImportOptions, ListFilter};
    use crate::budget::BudgetSpec;

    #[test]
    fn fields_are_the_serialized_names() {
        assert_eq!(fields::<ImportOptions>(), ["name", "type", "tags"]);
        assert_eq!(fields::<ListFilter>(), ["syncStatus", "tag", "typePrefix"]);
        assert_eq!(fields::<AssetPatch>(), ["name", "tags"]);
        assert_eq!(fields::<BudgetSpec>(), ["maxBytes", "quotaFraction"]);
        assert!(fields::<String>().is_empty());
    }

    #[test]
    fn unknown_keys_get_serdes_message() {
        let f = fields::<ListFilter>();
        assert_eq!(unknown_key(["tag", "typePrefix"], f), None);
        assert_eq!(unknown_key([], f), None);
        assert_eq!(
            unknown_key(["tag", "colour"], f).as_deref(),
            Some("unknown field `colour`, expected one of `syncStatus`, `tag`, `typePrefix`")
        );
        assert_eq!(unknown_key(["x"], &[]).as_deref(), Some("unknown field `x`, there are no fields"));
    }
}

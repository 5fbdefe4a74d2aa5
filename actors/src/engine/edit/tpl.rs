//! `Tpl<T>`: a value of type `T`, or a string holding `{{NAME}}`
//! placeholders that will become one once merge fields and render params
//! are filled in.
//!
//! Shotstack lets a placeholder stand "for any value within the JSON edit",
//! so every field of the schema is a `Tpl`. Deserialising delegates to `T`
//! through the same deserializer, so errors inside `T` keep their JSON path.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, Visitor};
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq)]
pub enum Tpl<T> {
    Value(T),
    /// The raw string, placeholders and all, to be filled before rendering.
    Template(String),
}

impl<T> Tpl<T> {
    /// The value, unless it still waits for its placeholders.
    pub fn value(&self) -> Option<&T> {
        match self {
            Tpl::Value(v) => Some(v),
            Tpl::Template(_) => None,
        }
    }
}

/// The names of the `{{NAME}}` placeholders in `s`, in order. A name is
/// letters, digits, `_`, `-` or `.`, optionally padded with spaces inside
/// the braces.
pub fn placeholders(s: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim();
        if is_placeholder_name(name) {
            names.push(name);
            rest = &after[close + 2..];
        } else {
            rest = after;
        }
    }
    names
}

pub fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tpl<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TplVisitor(PhantomData))
    }
}

struct TplVisitor<T>(PhantomData<T>);

macro_rules! forward_primitive {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            T::deserialize(IntoDeserializer::<E>::into_deserializer(v)).map(Tpl::Value)
        }
    )*};
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for TplVisitor<T> {
    type Value = Tpl<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value or a \"{{PLACEHOLDER}}\"")
    }

    forward_primitive!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if !placeholders(v).is_empty() {
            return Ok(Tpl::Template(v.to_owned()));
        }
        T::deserialize(IntoDeserializer::<E>::into_deserializer(v)).map(Tpl::Value)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        T::deserialize(IntoDeserializer::<E>::into_deserializer(())).map(Tpl::Value)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        T::deserialize(SeqAccessDeserializer::new(seq)).map(Tpl::Value)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Tpl::Value)
    }
}

impl<T: Serialize> Serialize for Tpl<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tpl::Value(v) => v.serialize(s),
            Tpl::Template(raw) => s.serialize_str(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders() {
        assert_eq!(
            placeholders("Hi {{NAME}}, {{ plan_2 }}!"),
            vec!["NAME", "plan_2"]
        );
        assert!(placeholders("{{}} {{a b}} {x}").is_empty());
    }

    #[test]
    fn a_placeholder_stands_for_any_type() {
        let n: Tpl<f64> = serde_json::from_str("\"{{LEN}}\"").unwrap();
        assert_eq!(n, Tpl::Template("{{LEN}}".into()));
        let n: Tpl<f64> = serde_json::from_str("2.5").unwrap();
        assert_eq!(n, Tpl::Value(2.5));
        assert!(serde_json::from_str::<Tpl<f64>>("\"2.5\"").is_err());
        let v: Tpl<Vec<Tpl<u32>>> = serde_json::from_str("[1, \"{{X}}\"]").unwrap();
        assert_eq!(
            v,
            Tpl::Value(vec![Tpl::Value(1), Tpl::Template("{{X}}".into())])
        );
    }
}

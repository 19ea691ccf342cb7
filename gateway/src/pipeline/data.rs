//! The response data as execution holds it while subgraph answers arrive and merge.
//!
//! `serde_json::Value` keeps objects in hash maps whose keys are heap strings: every
//! object a subgraph sends costs a table, a hash per field and an allocation per key,
//! and the profile of the gateway benchmark spent most of its time there. Objects here
//! are short vectors searched in order (a selection rarely has more than a dozen
//! fields), and keys and strings up to 24 bytes live inline, so most of an answer parses
//! without allocating beyond one vector per object and list.

use std::collections::HashMap;

use compact_str::CompactString;
use serde_json::{Number, Value};
use shop_federation::plan::Rename;

/// A key or string value: inline up to 24 bytes.
pub type Str = CompactString;

#[derive(Clone, Debug, Default, PartialEq)]
pub enum Node {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    Str(Str),
    List(Vec<Node>),
    Object(Object),
}

/// An object's fields in the order they arrived; one entry per key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object(Vec<(Str, Node)>);

/// Above this many fields a parsed object's keys are checked for repeats with a hash
/// map rather than by scanning (a hostile subgraph could send thousands).
const SCAN_LIMIT: usize = 16;

impl Object {
    pub fn new() -> Self {
        Object(Vec::new())
    }

    pub fn with_capacity(n: usize) -> Self {
        Object(Vec::with_capacity(n))
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Where `key` is, searching from `from` round to it: readers that take the fields
    /// of many alike objects in one order find each at the first place they look
    /// (what they touch of an object is then one entry, not every entry before it).
    pub fn position_from(&self, key: &str, from: usize) -> Option<usize> {
        let from = from.min(self.0.len());
        let (before, after) = self.0.split_at(from);
        after
            .iter()
            .position(|(k, _)| k == key)
            .map(|i| from + i)
            .or_else(|| before.iter().position(|(k, _)| k == key))
    }

    /// The value of the field at `i` (as found by [`Object::position_from`]).
    pub fn value_at(&self, i: usize) -> Option<&Node> {
        self.0.get(i).map(|(_, v)| v)
    }

    pub fn value_at_mut(&mut self, i: usize) -> Option<&mut Node> {
        self.0.get_mut(i).map(|(_, v)| v)
    }

    /// Sets `key`, in place when it is already there.
    pub fn insert(&mut self, key: &str, value: Node) {
        match self.get_mut(key) {
            Some(v) => *v = value,
            None => self.0.push((Str::new(key), value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// Gives the field `from` the key `to` (dropping any field already called `to`).
    pub fn rename(&mut self, from: &str, to: &str) {
        if let Some(v) = self.remove(from) {
            self.insert(to, v);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Deep-merges `source` into this object: objects key by key, lists element by
    /// element, anything else replaced unless the newcomer is null.
    pub fn merge(&mut self, source: Object) {
        self.0.reserve(source.0.len());
        for (k, v) in source.0 {
            match self.get_mut(&k) {
                Some(existing) => existing.merge(v),
                None => self.0.push((k, v)),
            }
        }
    }

    /// As [`Object::merge`], copying from `source` only what this object lacks (for an
    /// entity that serves several positions).
    pub fn merge_from(&mut self, source: &Object) {
        self.0.reserve(source.0.len());
        for (k, v) in &source.0 {
            match self.get_mut(k) {
                Some(existing) => existing.merge_from(v),
                None => self.0.push((k.clone(), v.clone())),
            }
        }
    }

    /// An object of these fields as parsed: of a repeated key, the last value is kept at
    /// the first key's place, as JSON parsers that keep order do.
    pub fn from_fields(fields: Vec<(Str, Node)>) -> Object {
        let mut obj = Object(fields);
        let n = obj.0.len();
        let repeats = n > SCAN_LIMIT
            || (may_repeat(&obj.0)
                && (1..n).any(|i| obj.0[..i].iter().any(|(k, _)| *k == obj.0[i].0)));
        if repeats {
            obj.dedupe_keys();
        }
        obj
    }

    fn dedupe_keys(&mut self) {
        let mut first: HashMap<Str, usize> = HashMap::with_capacity(self.0.len());
        let mut out: Vec<(Str, Node)> = Vec::with_capacity(self.0.len());
        for (k, v) in std::mem::take(&mut self.0) {
            match first.get(&k) {
                Some(&i) => out[i].1 = v,
                None => {
                    first.insert(k.clone(), out.len());
                    out.push((k, v));
                }
            }
        }
        self.0 = out;
    }
}

/// Whether two of these keys could be the same: `false` when each falls in a different
/// one of 128 bins by its length and end bytes, which keys of a selection almost always
/// do, so the comparison of every pair is skipped.
fn may_repeat(fields: &[(Str, Node)]) -> bool {
    let mut seen = 0u128;
    for (k, _) in fields {
        let b = k.as_bytes();
        let first = b.first().copied().unwrap_or(0);
        let last = b.last().copied().unwrap_or(0);
        let bin = (b.len() * 7 + usize::from(first) * 3 + usize::from(last) * 5) % 128;
        let bit = 1u128 << bin;
        if seen & bit != 0 {
            return true;
        }
        seen |= bit;
    }
    false
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object(o) => o.get(key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Object(o) => o.get_mut(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Node::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    pub fn take(&mut self) -> Node {
        std::mem::take(self)
    }

    /// Deep-merges `source` into this value (see [`Object::merge`]).
    pub fn merge(&mut self, source: Node) {
        match (self, source) {
            (Node::Object(t), Node::Object(s)) => t.merge(s),
            (Node::List(t), Node::List(s)) if t.len() == s.len() => {
                for (a, b) in t.iter_mut().zip(s) {
                    a.merge(b);
                }
            }
            (t, s) => {
                if !s.is_null() || t.is_null() {
                    *t = s;
                }
            }
        }
    }

    /// Deep-merges a copy of `source` into this value (see [`Object::merge_from`]).
    pub fn merge_from(&mut self, source: &Node) {
        match (self, source) {
            (Node::Object(t), Node::Object(s)) => t.merge_from(s),
            (Node::List(t), Node::List(s)) if t.len() == s.len() => {
                for (a, b) in t.iter_mut().zip(s) {
                    a.merge_from(b);
                }
            }
            (t, s) => {
                if !s.is_null() || t.is_null() {
                    *t = s.clone();
                }
            }
        }
    }

    pub fn from_value(v: Value) -> Node {
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => Node::Number(n),
            Value::String(s) => Node::Str(Str::from(s)),
            Value::Array(items) => Node::List(items.into_iter().map(Node::from_value).collect()),
            Value::Object(map) => Node::Object(Object(
                map.into_iter()
                    .map(|(k, v)| (Str::from(k), Node::from_value(v)))
                    .collect(),
            )),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.to_string()),
            Node::List(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// Appends this value as JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Node::Str(s) => write_str(out, s),
            Node::Null => out.extend_from_slice(b"null"),
            Node::Bool(true) => out.extend_from_slice(b"true"),
            Node::Bool(false) => out.extend_from_slice(b"false"),
            // Writing into a vector cannot fail, and a parsed number is finite.
            Node::Number(n) => {
                let _ = serde_json::to_writer(out, n);
            }
            Node::List(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Node::Object(obj) => {
                out.push(b'{');
                for (i, (k, v)) in obj.0.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, k);
                    out.push(b':');
                    v.write_json(out);
                }
                out.push(b'}');
            }
        }
    }

    /// Gives the fields a fetch aliased their names back (in its answer's `data`, or in
    /// one entity of it), before the answer is merged.
    pub fn apply_renames(&mut self, renames: &[Rename]) {
        for r in renames {
            self.rename(&r.path, &r.from, &r.to);
        }
    }

    /// Renames the field `from` to `to` in every object `path` leads to (through lists).
    pub fn rename(&mut self, path: &[String], from: &str, to: &str) {
        match self {
            Node::List(items) => {
                for item in items {
                    item.rename(path, from, to);
                }
            }
            Node::Object(obj) => match path.split_first() {
                None => obj.rename(from, to),
                Some((key, rest)) => {
                    if let Some(child) = obj.get_mut(key) {
                        child.rename(rest, from, to);
                    }
                }
            },
            _ => {}
        }
    }
}

/// Appends `s` as a JSON string. Most strings need no escaping: checking that with a
/// loop the compiler vectorizes and copying them is cheaper than escaping byte by byte.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let needs_escape = s.bytes().fold(false, |acc, b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escape {
        // Writing into a vector cannot fail.
        let _ = serde_json::to_writer(out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        super::super::parse::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn round_trips_through_json_text_like_serde_json() {
        let text = r#"{"a":[1,-2,3.5,1e300,"x\"y\u00e9","tab\there","back\\slash","\u0001",false,true,null,{}],"b":{"c":"a long string of more than twenty-four bytes"},"d":18446744073709551615}"#;
        let mut ours = Vec::new();
        parse(text).write_json(&mut ours);
        let theirs = serde_json::to_vec(&serde_json::from_str::<Value>(text).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
        assert_eq!(
            parse(text).to_value(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(
            Node::from_value(serde_json::from_str(text).unwrap()),
            parse(text)
        );
    }

    #[test]
    fn repeated_keys_keep_the_last_value_at_the_first_place() {
        let few = parse(r#"{"a":1,"b":2,"a":3}"#);
        assert_eq!(few.to_value().to_string(), r#"{"a":3,"b":2}"#);
        // Past the scanning limit the same rule holds.
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str("\"k3\":\"last\",\"k39\":\"end\"}");
        let many = parse(&text);
        let obj = many.as_object().unwrap();
        assert_eq!(obj.len(), 40);
        assert_eq!(obj.get("k3"), Some(&Node::Str("last".into())));
        assert_eq!(obj.iter().nth(3).map(|(k, _)| k), Some("k3"));
        assert_eq!(obj.get("k39"), Some(&Node::Str("end".into())));
    }

    #[test]
    fn a_search_from_a_hint_goes_round_the_whole_object() {
        let obj = parse(r#"{"a":1,"b":2,"c":3}"#);
        let obj = obj.as_object().unwrap();
        for from in 0..5 {
            assert_eq!(obj.position_from("a", from), Some(0));
            assert_eq!(obj.position_from("c", from), Some(2));
            assert_eq!(obj.position_from("d", from), None);
        }
        assert_eq!(obj.value_at(1), Some(&Node::Number(2.into())));
    }

    #[test]
    fn merge_is_deep_and_null_does_not_erase() {
        let mut a = parse(r#"{"p":[{"id":1,"name":"a"},{"id":2}],"q":"kept"}"#);
        a.merge(parse(r#"{"p":[{"stock":3},{"stock":0}],"q":null}"#));
        assert_eq!(
            a.to_value(),
            serde_json::json!({"p": [{"id": 1, "name": "a", "stock": 3}, {"id": 2, "stock": 0}], "q": "kept"})
        );
    }

    #[test]
    fn rename_follows_the_path_through_lists() {
        let mut a = parse(r#"{"xs":[{"_a0":1},{"_a0":2,"b":0}]}"#);
        a.rename(&["xs".to_string()], "_a0", "b");
        assert_eq!(
            a.to_value(),
            serde_json::json!({"xs": [{"b": 1}, {"b": 2}]})
        );
    }
}

//! Reads a subgraph's JSON answer into a [`Node`] tree.
//!
//! Subgraph answers are the largest input the gateway reads, and going through serde
//! cost a fifth of the benchmark's CPU: UTF-8 checked string by string, and every value
//! moved through `Result`s several times on its way into the tree. Here the text is
//! checked as UTF-8 once, strings without escapes are sliced from it, and each object's
//! fields gather on one shared stack so that its vector is allocated once, at its size.
//!
//! It accepts exactly RFC 8259 JSON, as `serde_json` does, with the same limit of 128
//! nested lists and objects; the tests hold it to `serde_json` on the same inputs.

use super::data::{Node, Object, Str};

/// Lists and objects nested deeper than this are refused (as serde_json does).
const MAX_DEPTH: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid JSON at byte {at}: {what}")]
pub struct ParseError {
    pub at: usize,
    pub what: &'static str,
}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(bytes: &[u8]) -> Result<Node, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError {
        at: e.valid_up_to(),
        what: "not UTF-8",
    })?;
    let mut p = Parser {
        text,
        bytes,
        i: 0,
        depth: 0,
        fields: Vec::new(),
        items: Vec::new(),
        scratch: String::new(),
    };
    p.skip_ws();
    let node = p.value()?;
    p.skip_ws();
    if p.i != bytes.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(node)
}

/// Fields an entity's object has room for beyond those it arrived with: growing them
/// one merge at a time took 6.5% of the gateway benchmark's CPU in reallocation.
const ENTITY_ROOM: usize = 6;

struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    i: usize,
    depth: usize,
    /// Fields of the objects being read, innermost last.
    fields: Vec<(Str, Node)>,
    /// Items of the lists being read, innermost last.
    items: Vec<Node>,
    /// A string with escapes, as it is decoded.
    scratch: String,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> ParseError {
        ParseError { at: self.i, what }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn expect(&mut self, literal: &'static [u8], value: Node) -> Result<Node, ParseError> {
        if self.bytes[self.i..].starts_with(literal) {
            self.i += literal.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn value(&mut self) -> Result<Node, ParseError> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.list(),
            Some(b'"') => Ok(Node::Str(self.string()?)),
            Some(b't') => self.expect(b"true", Node::Bool(true)),
            Some(b'f') => self.expect(b"false", Node::Bool(false)),
            Some(b'n') => self.expect(b"null", Node::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end")),
        }
    }

    /// Opens a list or object at its bracket; `false` when it closes at once.
    fn open(&mut self, close: u8) -> Result<bool, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.i += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.i += 1;
            self.depth -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After an item: `true` when a comma says another follows, `false` at `close`.
    fn more(&mut self, close: u8, what: &'static str) -> Result<bool, ParseError> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.skip_ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(self.error(what)),
        }
    }

    fn object(&mut self) -> Result<Node, ParseError> {
        let start = self.fields.len();
        if self.open(b'}')? {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(self.error("expected a key"));
                }
                let key = self.string()?;
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(self.error("expected ':'"));
                }
                self.i += 1;
                self.skip_ws();
                let value = self.value()?;
                self.fields.push((key, value));
                if !self.more(b'}', "expected ',' or '}'")? {
                    break;
                }
            }
        }
        // An object with `__typename` is an entity that later fetches usually add
        // fields to: room for them now saves a reallocation and copy per merge.
        let room = if self.fields[start..].iter().any(|(k, _)| k == "__typename") {
            ENTITY_ROOM
        } else {
            0
        };
        let mut fields = Vec::with_capacity(self.fields.len() - start + room);
        fields.extend(self.fields.drain(start..));
        Ok(Node::Object(Object::from_fields(fields)))
    }

    fn list(&mut self) -> Result<Node, ParseError> {
        let start = self.items.len();
        if self.open(b']')? {
            loop {
                let item = self.value()?;
                self.items.push(item);
                if !self.more(b']', "expected ',' or ']'")? {
                    break;
                }
            }
        }
        Ok(Node::List(self.items.split_off(start)))
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<Str, ParseError> {
        self.i += 1;
        let start = self.i;
        self.i = plain_run(self.bytes, self.i);
        match self.peek() {
            Some(b'"') => {
                let s = Str::new(&self.text[start..self.i]);
                self.i += 1;
                return Ok(s);
            }
            Some(b'\\') => {}
            Some(_) => return Err(self.error("control character in a string")),
            None => return Err(self.error("unterminated string")),
        }
        // Escapes: decode into the scratch string from here on.
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.push_str(&self.text[start..self.i]);
        let result = self.escaped(&mut out);
        let s = result.map(|()| Str::new(&out));
        self.scratch = out;
        s
    }

    /// The rest of a string with escapes, from the first backslash.
    fn escaped(&mut self, out: &mut String) -> Result<(), ParseError> {
        loop {
            let run = self.i;
            self.i = plain_run(self.bytes, self.i);
            match self.peek() {
                Some(b'"' | b'\\') => {}
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("unterminated string")),
            }
            out.push_str(&self.text[run..self.i]);
            if self.peek() == Some(b'"') {
                self.i += 1;
                return Ok(());
            }
            self.i += 1;
            let c = match self.peek() {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => {
                    self.i += 1;
                    let c = self.unicode_escape()?;
                    out.push(c);
                    continue;
                }
                _ => return Err(self.error("invalid escape")),
            };
            out.push(c);
            self.i += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self
            .bytes
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.error("unterminated string"))?;
        let mut n = 0u32;
        for &d in digits {
            let v = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            n = n * 16 + v;
        }
        self.i += 4;
        Ok(n)
    }

    /// The character of a `\uXXXX` escape (after the `u`), joining surrogate pairs.
    fn unicode_escape(&mut self) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.i..].starts_with(b"\\u") {
                    return Err(self.error("lone surrogate in \\u escape"));
                }
                self.i += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone surrogate in \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone surrogate in \\u escape")),
            n => n,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Node, ParseError> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
            integer = false;
        }
        let text = &self.text[start..self.i];
        if integer {
            // Integers that fit keep their exact value; larger ones become floats.
            if negative {
                if let Ok(n) = text.parse::<i64>() {
                    // serde_json reads "-0" as the float -0.0.
                    if n == 0 {
                        return Ok(float(-0.0));
                    }
                    return Ok(Node::Number(n.into()));
                }
            } else if let Ok(n) = text.parse::<u64>() {
                return Ok(Node::Number(n.into()));
            }
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(float(f)),
            _ => Err(ParseError {
                at: start,
                what: "number out of range",
            }),
        }
    }
}

/// Where the run of string bytes from `i` that need no attention ends: the index of
/// the first quote, backslash or control character (or the end). Eight bytes are
/// checked at a time; each test below leaves the high bit set in a byte that matches,
/// and a borrow can only set it in bytes after a true match, so the lowest one is exact.
fn plain_run(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let quote = zero_in(w ^ (ONES * u64::from(b'"')));
        let backslash = zero_in(w ^ (ONES * u64::from(b'\\')));
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let found = quote | backslash | control;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

fn float(f: f64) -> Node {
    serde_json::Number::from_f64(f).map_or(Node::Null, Node::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_run_ends_at_the_first_byte_that_needs_attention() {
        let naive = |bytes: &[u8], from: usize| {
            (from..bytes.len())
                .find(|&i| matches!(bytes[i], b'"' | b'\\' | 0..0x20))
                .unwrap_or(bytes.len())
        };
        // Every placement of each byte, special or not, in runs of up to 19 bytes and
        // with a second special byte after it (a borrow must not move the answer).
        let probes = [b'"', b'\\', 0x00, 0x1f, 0x20, b'!', 0x7f, 0x80, 0xa2, 0xff];
        for len in 0..20 {
            for at in 0..len {
                for &b in &probes {
                    for &after in &[b'a', 0x00, b'"'] {
                        let mut bytes = vec![b'a'; len];
                        bytes[at] = b;
                        if at + 1 < len {
                            bytes[at + 1] = after;
                        }
                        for from in 0..=at {
                            assert_eq!(
                                plain_run(&bytes, from),
                                naive(&bytes, from),
                                "{bytes:?} from {from}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// What serde_json makes of `text`: the value, or that it refused it.
    fn reference(text: &str) -> Option<serde_json::Value> {
        serde_json::from_str(text).ok()
    }

    fn ours(text: &str) -> Option<serde_json::Value> {
        parse(text.as_bytes()).ok().map(|n| n.to_value())
    }

    #[test]
    fn agrees_with_serde_json_on_valid_and_invalid_documents() {
        let cases = [
            "null",
            " true ",
            "false",
            "0",
            "-0",
            "-0.0",
            "1",
            "-1",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "1.5",
            "1e3",
            "1E+3",
            "1e-3",
            "2.5e-308",
            "1.7976931348623157e308",
            "1e400",
            "-1e400",
            "0.1",
            "123456789012345678901234567890",
            r#""""#,
            r#""plain""#,
            r#""é€𝄞""#,
            r#""\"\\\/\b\f\n\r\t""#,
            r#""\u0041\u00e9\u20ac\ud834\udd1e""#,
            r#""\ud834""#,
            r#""\udd1e""#,
            r#""\ud834\u0041""#,
            r#""\u12""#,
            r#""\x""#,
            "\"tab\there\"",
            "\"unterminated",
            "[]",
            "[ ]",
            "[1,2,3]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{}",
            r#"{"a":1}"#,
            r#"{ "a" : [ 1 , { "b" : null } ] , "c" : "d" }"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":1,"a":2}"#,
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "1e+",
            "tru",
            "nul",
            "truex",
            "[1] [2]",
            "",
            "   ",
            "\u{feff}1",
        ];
        for text in cases {
            assert_eq!(ours(text), reference(text), "{text:?}");
        }
    }

    #[test]
    fn agrees_with_serde_json_on_generated_documents() {
        // A small deterministic generator: nested values with keys, escapes, numbers.
        let mut seed: u64 = 0x5eed;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        fn gen_value(next: &mut impl FnMut(u64) -> u64, depth: usize, out: &mut String) {
            let pick = if depth > 3 { next(5) } else { next(7) };
            match pick {
                0 => out.push_str(["null", "true", "false"][next(3) as usize]),
                1 => out.push_str(&format!("{}", next(u64::MAX >> 1) as i64 - (1 << 61))),
                2 => out.push_str(&format!(
                    "{}.{}e{}",
                    next(1000),
                    next(1000),
                    next(40) as i64 - 20
                )),
                3 | 4 => {
                    out.push('"');
                    for _ in 0..next(12) {
                        out.push_str(
                            [
                                "a",
                                "é",
                                "\\n",
                                "\\\"",
                                "\\u00e9",
                                "\\ud83d\\ude00",
                                " ",
                                "€",
                                "\\\\",
                            ][next(9) as usize],
                        );
                    }
                    out.push('"');
                }
                5 => {
                    out.push('[');
                    for i in 0..next(5) {
                        if i > 0 {
                            out.push(',');
                        }
                        gen_value(next, depth + 1, out);
                    }
                    out.push(']');
                }
                _ => {
                    out.push('{');
                    // Past the scanning limit sometimes, so repeated keys go both ways.
                    for i in 0..next(if depth == 0 { 40 } else { 8 }) {
                        if i > 0 {
                            out.push_str(if next(2) == 0 { "," } else { " , " });
                        }
                        out.push_str(&format!("\"k{}\":", next(20)));
                        gen_value(next, depth + 1, out);
                    }
                    out.push('}');
                }
            }
        }
        for _ in 0..2000 {
            let mut text = String::new();
            gen_value(&mut next, 0, &mut text);
            let expected = reference(&text);
            assert!(
                expected.is_some(),
                "the generator made invalid JSON: {text}"
            );
            assert!(ours(&text) == expected, "differs from serde_json: {text}");
            // And the order of keys and of repeated keys' values, which Value equality
            // does not see.
            let mut written = Vec::new();
            parse(text.as_bytes()).unwrap().write_json(&mut written);
            let reference_text = serde_json::to_vec(&expected.unwrap()).unwrap();
            assert!(written == reference_text, "order differs: {text}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(
            parse(deep.as_bytes()).map_err(|e| e.what),
            Err("nested too deeply")
        );
        let deep_objects = "{\"a\":".repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert!(parse(deep_objects.as_bytes()).is_err());
        assert!(reference(&deep_objects).is_none());
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8() {
        assert_eq!(parse(b"\"\xff\"").map_err(|e| e.what), Err("not UTF-8"));
    }
}

//! GraphQL requests and responses as they cross HTTP.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GraphQLRequest {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
    #[serde(default)]
    pub extensions: Option<Map<String, Value>>,
    /// A listed operation's id (see [`crate::trusted`]); Relay sends it as `doc_id`.
    #[serde(default, alias = "doc_id")]
    pub document_id: Option<String>,
}

/// A response body plus the HTTP status it should go out with.
#[derive(Clone, Debug, Serialize)]
pub struct GraphQLResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Data>,
    #[serde(skip)]
    pub status: u16,
}

/// What the response shaper writes first, so that a response without errors is its
/// buffer plus a closing brace, not a copy.
pub const DATA_PREFIX: &[u8] = b"{\"data\":";

/// A response's `data`: JSON text, in `buf` from `start`.
#[derive(Clone, Debug)]
pub struct Data {
    buf: Vec<u8>,
    start: usize,
}

impl Data {
    pub fn null() -> Self {
        Data {
            buf: b"null".to_vec(),
            start: 0,
        }
    }

    /// JSON written after [`DATA_PREFIX`] in the same buffer.
    pub fn after_prefix(buf: Vec<u8>) -> Self {
        debug_assert!(buf.starts_with(DATA_PREFIX));
        Data {
            buf,
            start: DATA_PREFIX.len(),
        }
    }

    pub fn json(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Read back only where a response is serialized as part of something else (a
        // WebSocket or event-stream message); plain HTTP writes the text as it is.
        let raw: &serde_json::value::RawValue =
            serde_json::from_slice(self.json()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl GraphQLResponse {
    /// The response as JSON text, written around `data` without reading it back.
    pub fn into_json(self) -> Result<Vec<u8>, serde_json::Error> {
        let Some(data) = &self.data else {
            return serde_json::to_vec(&self);
        };
        if self.errors.is_empty() && data.start == DATA_PREFIX.len() {
            let mut out = self.data.map(|d| d.buf).unwrap_or_default();
            out.push(b'}');
            return Ok(out);
        }
        let mut out = Vec::with_capacity(data.json().len() + 32);
        out.push(b'{');
        if !self.errors.is_empty() {
            out.extend_from_slice(b"\"errors\":");
            serde_json::to_writer(&mut out, &self.errors)?;
            out.push(b',');
        }
        out.extend_from_slice(b"\"data\":");
        out.extend_from_slice(data.json());
        out.push(b'}');
        Ok(out)
    }

    /// A request error: nothing ran, so there is no `data` key.
    pub fn request_error(status: u16, message: impl Into<String>, code: &str) -> Self {
        GraphQLResponse {
            errors: vec![error(message, code)],
            data: None,
            status,
        }
    }
}

/// An error object with `extensions.code`.
pub fn error(message: impl Into<String>, code: &str) -> Value {
    serde_json::json!({ "message": message.into(), "extensions": { "code": code } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaped(json: &str) -> Data {
        let mut buf = DATA_PREFIX.to_vec();
        buf.extend_from_slice(json.as_bytes());
        Data::after_prefix(buf)
    }

    #[test]
    fn responses_are_written_around_the_shaped_data_errors_first() {
        let plain = GraphQLResponse {
            errors: Vec::new(),
            data: Some(shaped(r#"{"a":[1,"x"]}"#)),
            status: 200,
        };
        assert_eq!(
            String::from_utf8(plain.clone().into_json().unwrap()).unwrap(),
            r#"{"data":{"a":[1,"x"]}}"#
        );
        // Inside another message, through serde, the data is the same.
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"data":{"a":[1,"x"]}}"#
        );
        let with_errors = GraphQLResponse {
            errors: vec![error("no", "NOT_FOUND")],
            data: Some(shaped("null")),
            status: 200,
        };
        let text = String::from_utf8(with_errors.clone().into_json().unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"errors":[{"message":"no","extensions":{"code":"NOT_FOUND"}}],"data":null}"#
        );
        assert_eq!(serde_json::to_string(&with_errors).unwrap(), text);
        let refused = GraphQLResponse::request_error(400, "bad", "BAD_REQUEST");
        assert_eq!(
            String::from_utf8(refused.into_json().unwrap()).unwrap(),
            r#"{"errors":[{"message":"bad","extensions":{"code":"BAD_REQUEST"}}]}"#
        );
    }
}

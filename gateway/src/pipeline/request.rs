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

/// A response's `data`: the JSON text the response shaper wrote.
#[derive(Clone, Debug)]
pub struct Data(pub Vec<u8>);

impl Data {
    pub fn null() -> Self {
        Data(b"null".to_vec())
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Read back only where a response is serialized as part of something else (a
        // WebSocket or event-stream message); plain HTTP writes the text as it is.
        let raw: &serde_json::value::RawValue =
            serde_json::from_slice(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl GraphQLResponse {
    /// The response as JSON text, written around `data` without reading it back.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let Some(data) = &self.data else {
            return serde_json::to_vec(self);
        };
        let mut out = Vec::with_capacity(data.0.len() + 32);
        out.push(b'{');
        if !self.errors.is_empty() {
            out.extend_from_slice(b"\"errors\":");
            serde_json::to_writer(&mut out, &self.errors)?;
            out.push(b',');
        }
        out.extend_from_slice(b"\"data\":");
        out.extend_from_slice(&data.0);
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

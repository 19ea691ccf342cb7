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
    pub data: Option<Value>,
    #[serde(skip)]
    pub status: u16,
}

impl GraphQLResponse {
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

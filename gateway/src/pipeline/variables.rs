//! Variable coercion per the spec (CoerceVariableValues), done by apollo-compiler
//! against the API schema; defaults are applied so subgraphs see complete values.

use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use serde_json::{Map, Value};

use super::prepare::Prepared;
use super::request::GraphQLResponse;
use crate::Gateway;

impl Gateway {
    pub fn coerce_variables(
        &self,
        prepared: &Prepared,
        raw: Option<Map<String, Value>>,
    ) -> Result<(Map<String, Value>, Valid<JsonMap>), GraphQLResponse> {
        let op = prepared
            .document
            .operations
            .get(prepared.operation_name.as_deref())
            .map_err(|e| {
                GraphQLResponse::request_error(
                    400,
                    e.message().to_string(),
                    "GRAPHQL_VALIDATION_FAILED",
                )
            })?;
        let raw = raw.unwrap_or_default();
        super::limits::check_variables(&raw, &self.options.limits).map_err(|e| {
            GraphQLResponse {
                errors: vec![e.to_error()],
                data: None,
                status: 400,
            }
        })?;
        let raw = Value::Object(raw);
        let as_apollo: JsonMap = serde_json::from_value(raw).map_err(|e| {
            GraphQLResponse::request_error(400, format!("variables: {e}"), "BAD_USER_INPUT")
        })?;
        let coerced =
            apollo_compiler::request::coerce_variable_values(&self.supergraph.api, op, &as_apollo)
                .map_err(|e| {
                    GraphQLResponse::request_error(400, e.message().to_string(), "BAD_USER_INPUT")
                })?;
        let back: Map<String, Value> = serde_json::to_value(coerced.clone().into_inner())
            .ok()
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        Ok((back, coerced))
    }
}

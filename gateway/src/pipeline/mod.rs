//! The request pipeline, one stage per module.

pub mod execute;
pub mod prepare;
pub mod request;
pub mod response;
pub mod variables;

use serde_json::Value;

use crate::Gateway;
use execute::{ExecContext, ExecState};
use request::{GraphQLRequest, GraphQLResponse};

/// Where a request came from, as far as execution cares.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// The verified `Authorization` header, forwarded to subgraphs.
    pub authorization: Option<String>,
    /// `X-Forwarded-For` for subgraphs: what the client sent, then the client's address.
    pub forwarded_for: Option<String>,
    /// The verified caller, for `@authenticated` and `@requiresScopes`.
    pub principal: Option<shop_kit::auth::Principal>,
    /// GET requests may only run queries.
    pub is_get: bool,
}

impl Gateway {
    /// Runs one GraphQL request end to end.
    pub async fn execute(&self, req: GraphQLRequest, meta: &RequestMeta) -> GraphQLResponse {
        let Some(query) = req.query.as_deref().filter(|q| !q.trim().is_empty()) else {
            return GraphQLResponse::request_error(400, "the request has no query", "BAD_REQUEST");
        };
        let prepared = match self.prepare(query, req.operation_name.as_deref()) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        let viewer = shop_federation::authz::Viewer {
            authenticated: meta.principal.is_some(),
            scopes: meta
                .principal
                .as_ref()
                .map(|p| p.scopes.as_slice())
                .unwrap_or_default(),
        };
        let prepared = match self.authorize_prepared(query, prepared, viewer) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        if meta.is_get && prepared.kind() != shop_federation::operation::OperationKind::Query {
            return GraphQLResponse::request_error(
                405,
                "only queries may be sent with GET; use POST",
                "METHOD_NOT_ALLOWED",
            );
        }
        let (variables, coerced) = match self.coerce_variables(&prepared, req.variables) {
            Ok(v) => v,
            Err(resp) => return resp,
        };
        let state = ExecState::new();
        if prepared.introspection
            && let Ok(op) = prepared
                .document
                .operations
                .get(prepared.operation_name.as_deref())
        {
            match apollo_compiler::introspection::partial_execute(
                &self.supergraph.api,
                &self.implementers,
                &prepared.document,
                op,
                &coerced,
            ) {
                Ok(resp) => {
                    if let Some(data) = resp.data
                        && let (Ok(v), Ok(mut d)) = (serde_json::to_value(data), state.data.lock())
                    {
                        execute::merge(&mut d, v);
                    }
                }
                Err(e) => {
                    return GraphQLResponse::request_error(
                        400,
                        e.message().to_string(),
                        "GRAPHQL_VALIDATION_FAILED",
                    );
                }
            }
        }
        if let Some(node) = &prepared.plan.node {
            let ctx = ExecContext {
                variables: &variables,
                authorization: meta.authorization.as_deref(),
                forwarded_for: meta.forwarded_for.as_deref(),
            };
            self.run(node, &state, &ctx).await;
        }
        let data = state.data.into_inner().unwrap_or(Value::Null);
        // Our codes say what the caller can do about it: sign in, or not at all. The
        // code Apollo Router uses for the same removal travels as `reason`.
        let refused = if meta.principal.is_some() {
            "FORBIDDEN"
        } else {
            "UNAUTHENTICATED"
        };
        let mut errors: Vec<Value> = prepared
            .unauthorized
            .iter()
            .map(|path| {
                serde_json::json!({
                    "message": "Unauthorized field or type",
                    "path": path,
                    "extensions": { "code": refused, "reason": "UNAUTHORIZED_FIELD_OR_TYPE" }
                })
            })
            .collect();
        errors.extend(state.errors.into_inner().unwrap_or_default());
        let root_type = match prepared.kind() {
            shop_federation::operation::OperationKind::Mutation => {
                self.supergraph.api.schema_definition.mutation.as_ref()
            }
            _ => self.supergraph.api.schema_definition.query.as_ref(),
        }
        .map(|n| n.to_string())
        .unwrap_or_else(|| "Query".into());
        let shaped = response::Shaper {
            schema: &self.supergraph.api,
            variables: &variables,
            errors: &mut errors,
        }
        .root(&prepared.operation.selection_set, &data, &root_type);
        GraphQLResponse {
            errors,
            data: Some(shaped.unwrap_or(Value::Null)),
            status: 200,
        }
    }
}

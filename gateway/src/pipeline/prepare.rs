//! Parse, validate, normalize and plan; the result is cached per (query, operation name).

use std::sync::Arc;

use apollo_compiler::ExecutableDocument;
use apollo_compiler::validation::Valid;
use serde_json::Value;
use shop_federation::operation::OperationKind;
use shop_federation::{Operation, QueryPlan};

use super::limits::LimitExceeded;
use super::request::{GraphQLResponse, error};
use crate::Gateway;

/// An operation ready to run any number of times with different variables.
pub struct Prepared {
    pub document: Valid<ExecutableDocument>,
    pub operation_name: Option<String>,
    pub operation: Operation,
    pub plan: QueryPlan,
    /// Whether root fields ask for `__schema` or `__type`, answered by the gateway.
    pub introspection: bool,
    /// The progressive-override labels the plan was made with.
    pub labels: Vec<String>,
    /// Whether some field is guarded by `@authenticated`, `@requiresScopes` or `@policy`,
    /// so the operation is filtered per caller before it runs.
    pub guarded: bool,
    /// Fields removed for the caller, when this is a filtered copy.
    pub unauthorized: Vec<shop_federation::authz::Removal>,
    /// Length of the operation text, for the cache's memory estimate.
    pub text_bytes: usize,
    /// Its request histograms, found once (see [`crate::metrics`]).
    pub(crate) series: std::sync::OnceLock<crate::metrics::OperationSeries>,
}

impl Prepared {
    pub fn kind(&self) -> OperationKind {
        self.operation.kind
    }

    /// The name the operation was given in its document, if any.
    pub fn name(&self) -> Option<&str> {
        let op = self
            .document
            .operations
            .get(self.operation_name.as_deref())
            .ok()?;
        op.name.as_ref().map(|n| n.as_str())
    }

    /// What this operation holds in memory, estimated from its text: the syntax tree,
    /// the validated document, the normalized operation and the plan each keep a few
    /// copies of every name. Measured at about 27 bytes per byte of dense operation text
    /// (resident growth over 40 distinct 28 KB operations); the factor errs high.
    /// `tests/plan_cache_memory.rs` checks the bound against real memory.
    pub fn estimated_bytes(&self) -> usize {
        self.text_bytes.saturating_mul(BYTES_PER_TEXT_BYTE) + 4096
    }
}

/// See [`Prepared::estimated_bytes`].
const BYTES_PER_TEXT_BYTE: usize = 48;

fn located_errors(
    errors: &apollo_compiler::validation::DiagnosticList,
    code: &str,
    max: usize,
) -> Vec<Value> {
    let mut out: Vec<Value> = errors
        .iter()
        .take(max)
        .map(|d| {
            let e = d.to_json();
            let mut v = serde_json::json!({ "message": e.message, "extensions": { "code": code } });
            if !e.locations.is_empty() {
                v["locations"] = serde_json::to_value(&e.locations).unwrap_or(Value::Null);
            }
            v
        })
        .collect();
    if errors.len() > max {
        out.push(super::limits::left_out(errors.len() - max));
    }
    out
}

impl Gateway {
    /// Returns the prepared operation, from the cache when the same text was seen before.
    /// A miss parses, validates, checks the operation limits, normalizes and plans on a
    /// blocking thread: that work grows with the document, and the runtime's threads
    /// must stay free for every other request (and `/health`).
    pub async fn prepare(
        self: &Arc<Self>,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Prepared>, GraphQLResponse> {
        let limits = &self.options.limits;
        if query.len() > limits.max_document_bytes {
            let e = LimitExceeded::DocumentBytes {
                actual: query.len(),
                max: limits.max_document_bytes,
            };
            return Err(GraphQLResponse {
                errors: vec![e.to_error()],
                data: None,
                status: 413,
            });
        }
        let labels = self.override_labels_for_request();
        let key = (
            query.to_string(),
            operation_name.map(str::to_string),
            labels.iter().cloned().collect(),
            String::new(),
        );
        let hit = self.cache_get(&key);
        self.metrics.plan_cache(hit.is_some());
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let gw = self.clone();
        let (text, name) = (key.0.clone(), key.1.clone());
        let prepared = tokio::task::spawn_blocking(move || {
            gw.prepare_uncached(&text, name.as_deref(), &labels)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "preparing an operation failed");
            GraphQLResponse::request_error(500, "internal error", "INTERNAL_SERVER_ERROR")
        })??;
        let prepared = Arc::new(prepared);
        self.cache_put(key, prepared.clone());
        Ok(prepared)
    }

    fn prepare_uncached(
        &self,
        query: &str,
        operation_name: Option<&str>,
        labels: &shop_federation::Labels,
    ) -> Result<Prepared, GraphQLResponse> {
        let api = &self.supergraph.api;
        let limits = &self.options.limits;
        let mut parser = apollo_compiler::parser::Parser::new()
            .token_limit(limits.max_tokens)
            .recursion_limit(limits.max_parser_recursion);
        let ast = parser
            .parse_ast(query, "operation.graphql")
            .map_err(|e| GraphQLResponse {
                errors: located_errors(&e.errors, "GRAPHQL_PARSE_FAILED", limits.max_errors),
                data: None,
                status: 400,
            })?;
        let document = ast
            .to_executable_validate(api)
            .map_err(|e| GraphQLResponse {
                errors: located_errors(&e.errors, "GRAPHQL_VALIDATION_FAILED", limits.max_errors),
                data: None,
                status: 400,
            })?;
        let op = document.operations.get(operation_name).map_err(|e| {
            GraphQLResponse::request_error(
                400,
                e.message().to_string(),
                "GRAPHQL_VALIDATION_FAILED",
            )
        })?;
        super::limits::check(&document, op, limits).map_err(|e| GraphQLResponse {
            errors: vec![e.to_error()],
            data: None,
            status: 400,
        })?;
        let operation =
            shop_federation::normalize(api, &document, operation_name).map_err(|e| {
                GraphQLResponse::request_error(400, e.to_string(), "GRAPHQL_VALIDATION_FAILED")
            })?;
        let plan = self.plan_operation(&operation, labels)?;
        let introspection = has_root_introspection(&operation.selection_set);
        let guarded = self.requirements.guards(&operation);
        Ok(Prepared {
            document,
            operation_name: operation_name.map(str::to_string),
            operation,
            plan,
            introspection,
            labels: labels.iter().cloned().collect(),
            guarded,
            unauthorized: Vec::new(),
            text_bytes: query.len(),
            series: Default::default(),
        })
    }

    fn plan_operation(
        &self,
        operation: &shop_federation::Operation,
        labels: &shop_federation::Labels,
    ) -> Result<shop_federation::QueryPlan, GraphQLResponse> {
        shop_federation::plan_with_labels(&self.supergraph, operation, labels).map_err(|e| {
            tracing::error!(error = %e, "query planning failed");
            GraphQLResponse {
                errors: vec![error(
                    format!("query planning failed: {e}"),
                    "QUERY_PLANNING_FAILED",
                )],
                data: None,
                status: 500,
            }
        })
    }

    /// The operation as `viewer` may run it: `prepared` itself when nothing is guarded
    /// from them, else a copy planned without the fields they may not see (cached per
    /// set of removed fields). The copy keeps the full operation for shaping, so removed
    /// fields answer null, as the federation authorization directives specify.
    pub fn authorize_prepared(
        &self,
        query: &str,
        prepared: Arc<Prepared>,
        viewer: shop_federation::authz::Viewer<'_>,
    ) -> Result<Arc<Prepared>, GraphQLResponse> {
        if !prepared.guarded {
            return Ok(prepared);
        }
        let Some((filtered, removed)) = self.requirements.filter(&prepared.operation, viewer)
        else {
            return Ok(prepared);
        };
        // A subscription whose field is refused has nothing left to stream.
        if prepared.kind() == OperationKind::Subscription
            && removed.iter().any(|r| r.path.len() == 1)
        {
            let (status, code) = if viewer.authenticated {
                (403, "FORBIDDEN")
            } else {
                (401, "UNAUTHENTICATED")
            };
            let message = removed
                .iter()
                .find(|r| r.path.len() == 1)
                .map(|r| super::refusal_message(r, viewer.authenticated))
                .unwrap_or_default();
            return Err(GraphQLResponse {
                errors: vec![serde_json::json!({
                    "message": message,
                    "extensions": { "code": code, "reason": "UNAUTHORIZED_FIELD_OR_TYPE" }
                })],
                data: None,
                status,
            });
        }
        let fingerprint = removed
            .iter()
            .map(|r| r.path.join("."))
            .collect::<Vec<_>>()
            .join(",");
        let key = (
            query.to_string(),
            prepared.operation_name.clone(),
            prepared.labels.clone(),
            fingerprint,
        );
        if let Some(hit) = self.cache_get(&key) {
            return Ok(hit);
        }
        let labels: shop_federation::Labels = prepared.labels.iter().cloned().collect();
        let plan = self.plan_operation(&filtered, &labels)?;
        let copy = Arc::new(Prepared {
            document: prepared.document.clone(),
            operation_name: prepared.operation_name.clone(),
            operation: prepared.operation.clone(),
            plan,
            introspection: prepared.introspection,
            labels: prepared.labels.clone(),
            guarded: true,
            unauthorized: removed,
            text_bytes: prepared.text_bytes,
            series: Default::default(),
        });
        self.cache_put(key, copy.clone());
        Ok(copy)
    }
}

/// Whether root fields (also inside root fragments) ask for `__schema` or `__type`.
fn has_root_introspection(set: &shop_federation::operation::SelectionSet) -> bool {
    set.items.iter().any(|s| match s {
        shop_federation::operation::Selection::Field(f) => {
            f.name == "__schema" || f.name == "__type"
        }
        shop_federation::operation::Selection::InlineFragment(i) => {
            has_root_introspection(&i.selection_set)
        }
    })
}

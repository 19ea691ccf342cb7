//! The request pipeline, one stage per module.

pub mod data;
pub mod execute;
pub mod limits;
pub mod parse;
pub mod prepare;
pub mod request;
pub mod response;
pub mod stream;
pub mod variables;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use shop_federation::operation::OperationKind;

use crate::{Gateway, metrics};
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
    /// The files of a multipart request, streamed to the fetches that take them.
    pub uploads: Option<Arc<crate::uploads::Uploads>>,
    /// The client's name as it gives it (`apollographql-client-name` or
    /// `graphql-client-name`), for the clients only listed operations may run for.
    pub client_name: Option<String>,
}

/// What a caller must do to be allowed a removed field: sign in, or hold a scope (and
/// which of our roles grant it).
pub fn refusal_message(removal: &shop_federation::authz::Removal, authenticated: bool) -> String {
    let field = removal
        .field
        .split_once('.')
        .map_or(removal.field.as_str(), |(_, f)| f);
    let r = &removal.requirement;
    if r.policy {
        return format!("`{field}` is guarded by an access policy this gateway cannot grant");
    }
    if !authenticated {
        return format!("sign in to use `{field}`");
    }
    let alternatives: Vec<String> = r
        .scopes
        .iter()
        .flatten()
        .map(|all_of| {
            let roles: Vec<&str> = shop_kit::auth::Role::ALL
                .iter()
                .filter(|role| {
                    let granted = shop_kit::auth::scopes_for(&[**role]);
                    all_of.iter().all(|s| granted.contains(s))
                })
                .map(|role| role.as_str())
                .collect();
            let noun = if all_of.len() == 1 { "scope" } else { "scopes" };
            let scopes = all_of.join(" and ");
            if roles.is_empty() {
                format!("the {noun} {scopes}")
            } else {
                format!("the {noun} {scopes} (the {} role)", roles.join(" or "))
            }
        })
        .collect();
    if alternatives.is_empty() {
        return format!("you may not use `{field}`");
    }
    format!("`{field}` needs {}", alternatives.join(", or "))
}

/// What makes two client queries the same work: the same prepared operation (one
/// query text and operation name, planned for the same labels and authorization), the
/// same coerced variables, and the same caller as the subgraphs would see it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InboundKey {
    /// The address of the shared `Prepared`: the one the cache handed both requests
    /// (each holds it while in flight, so it cannot be another operation's).
    prepared: usize,
    variables: String,
    authorization: Option<String>,
    forwarded_for: Option<String>,
    is_get: bool,
}

/// A response ready to send: its HTTP status and JSON body.
#[derive(Clone, Debug)]
pub struct Serialized {
    pub status: u16,
    pub body: axum::body::Bytes,
}

fn subscription_over_plain_http() -> GraphQLResponse {
    GraphQLResponse::request_error(
        400,
        "subscriptions are served over WebSocket (graphql-transport-ws) or \
         Server-Sent Events (Accept: text/event-stream)",
        "OPERATION_NOT_SUPPORTED",
    )
}

/// An operation checked, authorized and with its variables coerced, ready to run.
pub struct Admitted {
    pub prepared: Arc<prepare::Prepared>,
    pub variables: Map<String, Value>,
    coerced: apollo_compiler::validation::Valid<apollo_compiler::response::JsonMap>,
    /// The estimated cost (see [`crate::cost`]), and the budget it was held to.
    pub cost: (u64, Option<u64>),
    /// The response should say what the operation cost.
    pub report_cost: bool,
}

impl Gateway {
    /// Runs one GraphQL request end to end (queries and mutations; subscriptions go
    /// through [`Gateway::stream`]).
    pub async fn execute(
        self: &Arc<Self>,
        req: GraphQLRequest,
        meta: &RequestMeta,
    ) -> GraphQLResponse {
        let started = Instant::now();
        match self.admit(req, meta).await {
            Ok(admitted) => {
                let resp = self.run_query_or_mutation(&admitted, meta).await;
                let outcome = self.metrics.outcome(&resp.errors);
                self.record(&admitted.prepared, outcome, started);
                resp
            }
            Err(resp) => {
                self.metrics
                    .refused(&resp.errors, started.elapsed().as_secs_f64());
                resp
            }
        }
    }

    /// Records a request that ran under its operation's series.
    fn record(
        &self,
        prepared: &prepare::Prepared,
        outcome: metrics::RequestOutcome,
        started: Instant,
    ) {
        let series = prepared.series.get_or_init(|| {
            self.metrics
                .operation_series(prepared.name(), prepared.kind())
        });
        self.metrics
            .request(series, outcome, started.elapsed().as_secs_f64());
    }

    /// Runs an admitted query or mutation; a subscription is refused (plain HTTP
    /// cannot carry its events).
    async fn run_query_or_mutation(
        &self,
        admitted: &Admitted,
        meta: &RequestMeta,
    ) -> GraphQLResponse {
        if admitted.prepared.kind() == OperationKind::Subscription {
            return subscription_over_plain_http();
        }
        self.run_admitted(admitted, meta).await
    }

    /// Runs one GraphQL request end to end and serializes its response. A query
    /// identical to one already running (see [`InboundKey`]) waits for that one's
    /// answer instead of running again, when `dedupe_requests` is on.
    pub async fn execute_serialized(
        self: &Arc<Self>,
        req: GraphQLRequest,
        meta: &RequestMeta,
    ) -> Serialized {
        let started = Instant::now();
        let admitted = match self.admit(req, meta).await {
            Ok(a) => a,
            Err(resp) => {
                self.metrics
                    .refused(&resp.errors, started.elapsed().as_secs_f64());
                return self.serialize(resp);
            }
        };
        let shareable = self.options.dedupe_requests
            && admitted.prepared.kind() == OperationKind::Query
            && meta.uploads.is_none();
        if !shareable {
            let resp = self.run_query_or_mutation(&admitted, meta).await;
            let outcome = self.metrics.outcome(&resp.errors);
            self.record(&admitted.prepared, outcome, started);
            return self.with_cost(&admitted, self.serialize(resp));
        }
        let key = InboundKey {
            prepared: Arc::as_ptr(&admitted.prepared) as usize,
            variables: Value::Object(admitted.variables.clone()).to_string(),
            authorization: meta.authorization.clone(),
            forwarded_for: meta.forwarded_for.clone(),
            is_get: meta.is_get,
        };
        let ((answer, outcome), shared) = self
            .requests_in_flight
            .run(key, || async {
                let resp = self.run_admitted(&admitted, meta).await;
                // Counted once, by the request that ran; those sharing it count as
                // requests with its outcome.
                let outcome = self.metrics.outcome(&resp.errors);
                (self.serialize(resp), outcome)
            })
            .await;
        if shared {
            self.metrics.shared(false);
        }
        self.record(&admitted.prepared, outcome, started);
        self.with_cost(&admitted, answer)
    }

    /// Adds `extensions.cost` (estimated, actual, max) to a response when asked; the
    /// actual cost is counted in the answer as sent.
    fn with_cost(&self, admitted: &Admitted, mut answer: Serialized) -> Serialized {
        if !admitted.report_cost || answer.body.last() != Some(&b'}') {
            return answer;
        }
        let data = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|mut v| v.get_mut("data").map(Value::take))
            .unwrap_or(Value::Null);
        let actual = self
            .cost_model
            .actual(&admitted.prepared.operation, &data::Node::from_value(data));
        let (estimated, max) = admitted.cost;
        let cost =
            serde_json::json!({ "cost": { "estimated": estimated, "actual": actual, "max": max } });
        let mut body = answer.body.to_vec();
        body.pop();
        body.extend_from_slice(b",\"extensions\":");
        body.extend_from_slice(cost.to_string().as_bytes());
        body.push(b'}');
        answer.body = body.into();
        answer
    }

    /// The response as JSON, refused as a whole when it is larger than the response
    /// limit (an entity placed at many positions can outgrow what the subgraphs sent).
    pub fn serialize(&self, resp: GraphQLResponse) -> Serialized {
        let max = self.options.limits.max_response_bytes;
        let status = resp.status;
        let instead = match resp.into_json() {
            Ok(body) if body.len() <= max => {
                return Serialized {
                    status,
                    body: body.into(),
                };
            }
            Ok(_) => GraphQLResponse {
                errors: vec![limits::LimitExceeded::ResponseBytes { max }.to_error()],
                data: None,
                status: 200,
            },
            Err(e) => {
                tracing::error!(error = %e, "serializing a response failed");
                GraphQLResponse::request_error(500, "internal error", "INTERNAL_SERVER_ERROR")
            }
        };
        Serialized {
            status: instead.status,
            body: serde_json::to_vec(&instead).unwrap_or_default().into(),
        }
    }

    /// Parses, validates, plans (cached), authorizes and coerces variables.
    pub async fn admit(
        self: &Arc<Self>,
        mut req: GraphQLRequest,
        meta: &RequestMeta,
    ) -> Result<Admitted, GraphQLResponse> {
        let listed = match &self.options.trusted_documents {
            Some(trusted) => trusted.resolve(&mut req)?,
            None => false,
        };
        if !listed {
            if let Some(trusted) = &self.options.trusted_documents {
                // Checked before a text is kept for persisted queries, too.
                trusted.admit(req.query.as_deref(), meta.client_name.as_deref())?;
            }
            self.persisted.resolve(&mut req).await?;
        }
        let Some(query) = req.query.as_deref().filter(|q| !q.trim().is_empty()) else {
            return Err(GraphQLResponse::request_error(
                400,
                "the request has no query",
                "BAD_REQUEST",
            ));
        };
        let prepared = self.prepare(query, req.operation_name.as_deref()).await?;
        if prepared.introspection && !self.options.protections.introspection {
            return Err(GraphQLResponse::request_error(
                400,
                "introspection is switched off on this gateway (`__schema` and `__type`)",
                "INTROSPECTION_DISABLED",
            ));
        }
        let viewer = shop_federation::authz::Viewer {
            authenticated: meta.principal.is_some(),
            scopes: meta
                .principal
                .as_ref()
                .map(|p| p.scopes.as_slice())
                .unwrap_or_default(),
        };
        let prepared = self.authorize_prepared(query, prepared, viewer)?;
        let span = tracing::Span::current();
        if let Some(name) = prepared.name() {
            span.record("graphql.operation.name", name);
        }
        span.record("graphql.operation.type", prepared.kind().keyword());
        // GET must not change anything (caches, prefetchers, links); a subscription
        // over GET is fine (EventSource only does GET) and plain HTTP refuses it later.
        if meta.is_get && prepared.kind() == OperationKind::Mutation {
            return Err(GraphQLResponse::request_error(
                405,
                "mutations cannot be sent with GET; use POST",
                "METHOD_NOT_ALLOWED",
            ));
        }
        let (variables, coerced) = self.coerce_variables(&prepared, req.variables)?;
        let budget = self.options.cost.budget_for(meta.client_name.as_deref());
        let report_cost = self.options.cost.always_report
            || req
                .extensions
                .as_ref()
                .and_then(|e| e.get("cost"))
                .is_some_and(|v| v.as_bool() == Some(true) || v.is_object());
        // Nothing to refuse and nobody asking: no estimate.
        let estimated = if budget.is_some() || report_cost {
            self.cost_model.estimate(&prepared.operation, &variables)
        } else {
            0
        };
        if let Some(max) = budget
            && estimated > max
        {
            return Err(GraphQLResponse {
                errors: vec![crate::cost::too_expensive(estimated, max)],
                data: None,
                status: 400,
            });
        }
        Ok(Admitted {
            prepared,
            variables,
            coerced,
            cost: (estimated, budget),
            report_cost,
        })
    }

    /// Runs an admitted query or mutation.
    pub async fn run_admitted(&self, admitted: &Admitted, meta: &RequestMeta) -> GraphQLResponse {
        let Admitted {
            prepared,
            variables,
            coerced,
            ..
        } = admitted;
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
                coerced,
            ) {
                Ok(resp) => {
                    if let Some(data) = resp.data
                        && let Ok(v) = serde_json::to_value(data)
                    {
                        state.merge_data(data::Node::from_value(v));
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
            let (traced, trace_headers) = shop_kit::telemetry::recorded_or_headers();
            let ctx = ExecContext {
                variables,
                authorization: meta.authorization.as_deref(),
                forwarded_for: meta.forwarded_for.as_deref(),
                uploads: meta.uploads.as_ref(),
                // A mutation's fetches change things: each is made.
                dedupe: self.options.dedupe_subgraph_requests
                    && prepared.kind() != OperationKind::Mutation,
                read_only: prepared.kind() != OperationKind::Mutation,
                traced,
                trace_headers,
            };
            self.run(node, &state, &ctx).await;
        }
        self.finish(prepared, variables, state, meta)
    }

    /// Shapes what execution gathered into the response: refused fields reported,
    /// the selection applied, nulls bubbled.
    pub fn finish(
        &self,
        prepared: &prepare::Prepared,
        variables: &Map<String, Value>,
        state: ExecState,
        meta: &RequestMeta,
    ) -> GraphQLResponse {
        let data = state.data.into_inner().unwrap_or_default();
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
            .map(|removal| {
                serde_json::json!({
                    "message": refusal_message(removal, meta.principal.is_some()),
                    "path": removal.path,
                    "extensions": { "code": refused, "reason": "UNAUTHORIZED_FIELD_OR_TYPE" }
                })
            })
            .collect();
        if state.too_large.load(std::sync::atomic::Ordering::Relaxed) {
            // Half an answer past the limit helps nobody, and shaping it costs as much
            // as the whole: refuse it as a whole.
            let e = limits::LimitExceeded::ResponseBytes {
                max: self.options.limits.max_response_bytes,
            };
            return GraphQLResponse {
                errors: vec![e.to_error()],
                data: None,
                status: 200,
            };
        }
        errors.extend(state.errors.into_inner().unwrap_or_default());
        let schema = &self.supergraph.api.schema_definition;
        let root_type = match prepared.kind() {
            OperationKind::Mutation => schema.mutation.as_ref(),
            OperationKind::Subscription => schema.subscription.as_ref(),
            OperationKind::Query => schema.query.as_ref(),
        }
        .map(|n| n.to_string())
        .unwrap_or_else(|| "Query".into());
        // Room for the closing brace too, so that finishing the body does not copy it.
        let expected = state
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
            .min(self.options.limits.max_response_bytes)
            + 64;
        let shaped = response::Shaper::new(&self.supergraph.api, variables, &mut errors).root(
            &prepared.operation.selection_set,
            &data,
            &root_type,
            expected,
        );
        // The gathered data is no longer needed: free it before the response is sent.
        drop(data);
        limits::cap_errors(&mut errors, self.options.limits.max_errors);
        GraphQLResponse {
            errors,
            data: Some(shaped.map_or_else(request::Data::null, request::Data::after_prefix)),
            status: 200,
        }
    }
}

//! Subscriptions: the root field streams from its subgraph over WebSocket
//! (`graphql-transport-ws`), and each event runs the rest of the plan (entity fetches
//! to other subgraphs) before it is shaped and handed to the client's transport.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use futures::{SinkExt, Stream};
use serde_json::{Map, Value};
use shop_federation::operation::OperationKind;
use shop_federation::plan::{FetchNode, PlanNode};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::data::Node;
use super::execute::{ExecContext, ExecState, transport_error, with_service};
use super::request::{GraphQLRequest, GraphQLResponse};
use super::{Admitted, RequestMeta};
use crate::Gateway;

/// The subprotocol both legs speak.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The generation that took over, once one does; never, for `None` (nobody can take
/// over any more).
async fn replaced(
    retired: &mut Option<tokio::sync::watch::Receiver<Option<Arc<Gateway>>>>,
) -> Option<Arc<Gateway>> {
    let Some(rx) = retired else {
        return std::future::pending().await;
    };
    loop {
        if let Some(next) = rx.borrow_and_update().clone() {
            return Some(next);
        }
        if rx.changed().await.is_err() {
            return None;
        }
    }
}

/// The last message of a subscription the new schema does not serve as it was.
fn schema_changed(reason: &str) -> GraphQLResponse {
    GraphQLResponse {
        errors: vec![serde_json::json!({
            "message": format!("the API changed under this subscription ({reason}); subscribe again"),
            "extensions": { "code": "SCHEMA_CHANGED" }
        })],
        data: None,
        status: 200,
    }
}

/// What the upstream leg reports.
enum Upstream {
    Next(Value),
    Error(Vec<Value>),
    Complete,
    Closed(String),
}

impl Gateway {
    /// Starts an operation whose results arrive as a stream: a subscription's events, or
    /// the single result of a query or mutation sent over a streaming transport.
    /// A request error (invalid, unauthorized, subgraph unreachable) comes back as `Err`.
    pub async fn subscribe(
        self: &Arc<Self>,
        req: GraphQLRequest,
        meta: RequestMeta,
    ) -> Result<BoxStream<'static, GraphQLResponse>, GraphQLResponse> {
        let admitted = self.admit(req, &meta).await?;
        if admitted.prepared.kind() != OperationKind::Subscription {
            let resp = self.run_admitted(&admitted, &meta).await;
            return Ok(stream::once(async move { resp }).boxed());
        }
        let Some(PlanNode::Subscription { primary, .. }) = admitted.prepared.plan.node.clone()
        else {
            return Err(GraphQLResponse::request_error(
                400,
                "the subscription selects nothing a subgraph streams",
                "OPERATION_NOT_SUPPORTED",
            ));
        };
        let variables: Map<String, Value> = primary
            .variables
            .iter()
            .filter_map(|v| {
                admitted
                    .variables
                    .get(v)
                    .map(|val| (v.clone(), val.clone()))
            })
            .collect();
        let upstream = self
            .open_upstream(&primary, variables, &meta)
            .await
            .map_err(|reason| GraphQLResponse {
                errors: vec![transport_error(&primary.service, &reason)],
                data: None,
                status: 502,
            })?;
        let gw = self.clone();
        let admitted = Arc::new(admitted);
        let service = primary.service.clone();
        // Counted as open until the stream ends or is dropped.
        let open = crate::metrics::Open::new(&self.metrics.subscriptions);
        let retired = Some(self.successor());
        let events = stream::unfold(Some((upstream, open, retired)), move |state| {
            let gw = gw.clone();
            let admitted = admitted.clone();
            let meta = meta.clone();
            let service = service.clone();
            async move {
                let (mut rx, open, mut retired) = state?;
                let received = loop {
                    tokio::select! {
                        received = rx.recv() => break received,
                        next = replaced(&mut retired) => {
                            match next {
                                Some(next) => {
                                    if let Some(reason) = gw.changed_under(&admitted, &next).await {
                                        return Some((schema_changed(&reason), None));
                                    }
                                    // Still fits: keep running, and watch the newer one.
                                    retired = Some(next.successor());
                                }
                                None => retired = None,
                            }
                        }
                    }
                };
                let resp = match received {
                    Some(Upstream::Next(payload)) => {
                        gw.event_response(&admitted, &meta, &service, payload).await
                    }
                    Some(Upstream::Error(errors)) => {
                        let errors = errors
                            .into_iter()
                            .map(|e| with_service(e, &service, None))
                            .collect();
                        return Some((
                            GraphQLResponse {
                                errors,
                                data: None,
                                status: 200,
                            },
                            None,
                        ));
                    }
                    Some(Upstream::Complete) | None => return None,
                    Some(Upstream::Closed(reason)) => {
                        let error =
                            transport_error(&service, &format!("the stream ended: {reason}"));
                        let resp = GraphQLResponse {
                            errors: vec![error],
                            data: None,
                            status: 200,
                        };
                        return Some((resp, None));
                    }
                };
                Some((resp, Some((rx, open, retired))))
            }
        });
        Ok(events.boxed())
    }

    /// Why a subscription running here no longer fits `next`'s schema: its operation
    /// does not validate there, or its events would come from another subgraph.
    async fn changed_under(&self, admitted: &Admitted, next: &Arc<Gateway>) -> Option<String> {
        let text = admitted.prepared.document.to_string();
        let name = admitted.prepared.operation_name.as_deref();
        let now = match next.prepare(&text, name).await {
            Ok(p) => p,
            Err(resp) => {
                let why = resp
                    .errors
                    .first()
                    .and_then(|e| e["message"].as_str())
                    .unwrap_or("it no longer validates");
                return Some(why.to_string());
            }
        };
        let service = |node: &Option<PlanNode>| match node {
            Some(PlanNode::Subscription { primary, .. }) => Some(primary.service.clone()),
            _ => None,
        };
        let (before, after) = (
            service(&admitted.prepared.plan.node),
            service(&now.plan.node),
        );
        (before != after).then(|| {
            format!(
                "its events now come from {} instead of {}",
                after.as_deref().unwrap_or("no subgraph"),
                before.as_deref().unwrap_or("no subgraph")
            )
        })
    }

    /// One event: its data plus whatever the rest of the plan fetches, shaped. A failing
    /// follow-up fetch leaves its fields null with errors; the event still goes out.
    async fn event_response(
        &self,
        admitted: &Admitted,
        meta: &RequestMeta,
        service: &str,
        payload: Value,
    ) -> GraphQLResponse {
        let state = ExecState::new();
        if let Some(data) = payload.get("data").cloned().filter(|d| !d.is_null()) {
            let mut data = Node::from_value(data);
            // Fields the subscription's fetch aliased (one response name, two types in
            // the subgraph) get their names back, as a query's root fetch does.
            if let Some(PlanNode::Subscription { primary, .. }) = &admitted.prepared.plan.node {
                data.apply_renames(&primary.renames);
            }
            state.merge_data(data);
        }
        if let (Some(errors), Ok(mut out)) = (
            payload.get("errors").and_then(Value::as_array),
            state.errors.lock(),
        ) {
            out.extend(
                errors
                    .iter()
                    .map(|e| with_service(e.clone(), service, None)),
            );
        }
        if let Some(node) = &admitted.prepared.plan.node {
            let (traced, trace_headers) = shop_kit::telemetry::recorded_or_headers();
            let ctx = ExecContext {
                variables: &admitted.variables,
                authorization: meta.authorization.as_deref(),
                forwarded_for: meta.forwarded_for.as_deref(),
                uploads: None,
                // Events of one subscription often need the same entities at once.
                dedupe: self.options.dedupe_subgraph_requests,
                read_only: true,
                traced,
                trace_headers,
            };
            self.run(node, &state, &ctx).await;
        }
        self.finish(&admitted.prepared, &admitted.variables, state, meta)
    }

    /// Opens the subgraph leg: connect, `connection_init` with the caller's token,
    /// wait for the ack, `subscribe`. The returned channel yields what the subgraph sends;
    /// dropping it completes the subscription upstream and closes the socket.
    async fn open_upstream(
        &self,
        fetch: &FetchNode,
        variables: Map<String, Value>,
        meta: &RequestMeta,
    ) -> Result<mpsc::Receiver<Upstream>, String> {
        let graph = self
            .supergraph
            .graphs
            .iter()
            .find(|g| g.name == fetch.service)
            .ok_or("unknown subgraph")?;
        let url = ws_url(&graph.url);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("bad subscription URL {url}: {e}"))?;
        let headers = request.headers_mut();
        headers.insert("sec-websocket-protocol", HeaderValue::from_static(PROTOCOL));
        if let Some(auth) = meta
            .authorization
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert("authorization", auth);
        }
        if let Some(ff) = meta
            .forwarded_for
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert("x-forwarded-for", ff);
        }
        let timeout = self
            .timeout_for(&fetch.service)
            .min(Duration::from_secs(30));
        let handshake = async {
            let (mut ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .map_err(|e| format!("connecting failed: {e}"))?;
            let mut init = Map::new();
            if let Some(auth) = &meta.authorization {
                init.insert("Authorization".into(), Value::String(auth.clone()));
            }
            send_json(
                &mut ws,
                serde_json::json!({ "type": "connection_init", "payload": init }),
            )
            .await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let msg: Value = serde_json::from_str(&text).unwrap_or_default();
                        match msg["type"].as_str() {
                            Some("connection_ack") => break,
                            Some("ping") => {
                                send_json(&mut ws, serde_json::json!({ "type": "pong" })).await?
                            }
                            _ => return Err(format!("unexpected message before the ack: {text}")),
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Err(format!(
                            "closed before the ack: {}",
                            frame.map(|f| f.reason.to_string()).unwrap_or_default()
                        ));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("closed before the ack".into()),
                }
            }
            send_json(
                &mut ws,
                serde_json::json!({
                    "type": "subscribe", "id": "1",
                    "payload": { "query": fetch.operation, "variables": variables }
                }),
            )
            .await?;
            Ok::<_, String>(ws)
        };
        let ws = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| "timed out".to_string())??;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(pump(ws, tx));
        Ok(rx)
    }
}

/// Relays the subgraph's messages until it completes, the socket ends, or nobody
/// listens any more (then it says `complete` and closes).
async fn pump<S>(mut ws: S, tx: mpsc::Sender<Upstream>)
where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    loop {
        let msg = tokio::select! {
            _ = tx.closed() => {
                let _ = send_json(&mut ws, serde_json::json!({ "type": "complete", "id": "1" })).await;
                let _ = ws.close().await;
                return;
            }
            msg = ws.next() => msg,
        };
        let item = match msg {
            Some(Ok(Message::Text(text))) => {
                let msg: Value = serde_json::from_str(&text).unwrap_or_default();
                match msg["type"].as_str() {
                    Some("next") => Upstream::Next(msg["payload"].clone()),
                    Some("error") => {
                        Upstream::Error(msg["payload"].as_array().cloned().unwrap_or_default())
                    }
                    Some("complete") => Upstream::Complete,
                    Some("ping") => {
                        let _ = send_json(&mut ws, serde_json::json!({ "type": "pong" })).await;
                        continue;
                    }
                    _ => continue,
                }
            }
            Some(Ok(Message::Close(frame))) => Upstream::Closed(
                frame
                    .map(|f| format!("closed ({}) {}", u16::from(f.code), f.reason))
                    .unwrap_or_else(|| "closed".into()),
            ),
            Some(Ok(_)) => continue,
            Some(Err(e)) => Upstream::Closed(e.to_string()),
            None => Upstream::Closed("the connection dropped".into()),
        };
        let last = !matches!(item, Upstream::Next(_));
        if tx.send(item).await.is_err() || last {
            let _ = ws.close().await;
            return;
        }
    }
}

async fn send_json<S>(ws: &mut S, msg: Value) -> Result<(), String>
where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .map_err(|e| e.to_string())
}

/// `http(s)://…` → `ws(s)://…`.
fn ws_url(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_string()
    }
}

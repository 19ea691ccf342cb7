//! Streaming transports to clients: WebSocket with the `graphql-transport-ws` protocol
//! (what the `graphql-ws` library speaks) and Server-Sent Events (GraphQL over SSE,
//! distinct connections mode). Both run operations through [`Gateway::subscribe`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::Gateway;
use crate::pipeline::RequestMeta;
use crate::pipeline::request::{GraphQLRequest, GraphQLResponse};

/// Limits and timers of streaming connections.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Open WebSocket and SSE connections per client address.
    pub max_connections_per_client: usize,
    /// Open WebSocket and SSE connections over all clients: past it new ones are
    /// refused (503) before the process runs out of file descriptors. Default: from the
    /// process's open-file limit, see [`default_max_connections`].
    pub max_connections: usize,
    /// Operations running at once on one WebSocket connection.
    pub max_subscriptions_per_connection: usize,
    /// How often the server pings (WebSocket) or sends a comment (SSE) so idle
    /// connections survive proxies; a WebSocket peer silent for three periods is closed.
    pub keepalive: Duration,
    /// How long a WebSocket client has to send `connection_init`.
    pub init_timeout: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            max_connections_per_client: 32,
            max_connections: default_max_connections(),
            max_subscriptions_per_connection: 64,
            keepalive: Duration::from_secs(15),
            init_timeout: Duration::from_secs(10),
        }
    }
}

/// How many streaming connections fit this process: each live subscription holds two
/// descriptors (the client's socket and the upstream WebSocket), and a quarter of the
/// open-file limit stays for everything else (subgraph HTTP, databases, plain requests).
pub fn default_max_connections() -> usize {
    let soft_limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse::<usize>().ok())
        })
        .unwrap_or(1024);
    (soft_limit - soft_limit / 4) / 2
}

/// Why a streaming connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This client has as many open as it may.
    PerClient,
    /// The process has as many open as it can hold.
    Total,
}

impl Refused {
    pub fn response(self) -> Response {
        match self {
            Refused::PerClient => too_many_connections(),
            Refused::Total => {
                let body = GraphQLResponse::request_error(
                    503,
                    "the server has as many live connections as it can hold; try again shortly",
                    "SERVICE_UNAVAILABLE",
                );
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "5")],
                    axum::Json(body),
                )
                    .into_response()
            }
        }
    }
}

/// Counts a client's open streaming connections; the slot frees when dropped.
pub struct ConnectionSlot {
    gateway: Arc<Gateway>,
    client: String,
}

impl Gateway {
    /// Takes a connection slot for `client`, unless it or the whole process has used
    /// them all.
    pub fn open_connection(self: &Arc<Self>, client: &str) -> Result<ConnectionSlot, Refused> {
        let mut open = self.connections.lock().map_err(|_| Refused::Total)?;
        let total: usize = open.values().sum();
        if total >= self.options.live.max_connections {
            return Err(Refused::Total);
        }
        let n = open.entry(client.to_string()).or_insert(0);
        if *n >= self.options.live.max_connections_per_client {
            return Err(Refused::PerClient);
        }
        *n += 1;
        Ok(ConnectionSlot {
            gateway: self.clone(),
            client: client.to_string(),
        })
    }

    /// Streaming connections open now, over all clients.
    pub fn open_connections(&self) -> usize {
        self.connections
            .lock()
            .map(|c| c.values().sum())
            .unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.gateway.connections.lock()
            && let Some(n) = open.get_mut(&self.client)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

pub fn too_many_connections() -> Response {
    let body = GraphQLResponse::request_error(
        429,
        "too many open streaming connections from this client",
        "TOO_MANY_REQUESTS",
    );
    (axum::http::StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------- Server-Sent Events

/// Answers a request with `Accept: text/event-stream`: `next` events, then `complete`.
/// Request errors (invalid, unauthorized) are a plain JSON response with their status.
pub async fn sse(
    gw: Arc<Gateway>,
    req: GraphQLRequest,
    meta: RequestMeta,
    slot: ConnectionSlot,
) -> Response {
    let results = match gw.subscribe(req, meta).await {
        Ok(s) => s,
        Err(resp) => return crate::transport::respond(resp),
    };
    let keepalive = gw.options.live.keepalive;
    let events = results
        .map(|resp| {
            let data = serde_json::to_string(&resp).unwrap_or_default();
            Ok::<_, Infallible>(SseEvent::default().event("next").data(data))
        })
        .chain(stream::once(async {
            Ok(SseEvent::default().event("complete").data(""))
        }))
        // The slot lives as long as the stream: the connection counts until it ends.
        .map(move |e| {
            let _held = &slot;
            e
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keepalive))
        .into_response()
}

// ---------------------------------------------------------------- WebSocket

/// Close codes of the protocol.
mod close {
    pub const BAD_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
    pub const GOING_AWAY: u16 = 1001;
    /// RFC 6455: a message larger than the endpoint takes.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Whether a read failed because the message was over the size limit (then the peer is
/// told so with a close code, rather than the connection just dropping).
fn too_big(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<tokio_tungstenite::tungstenite::Error>())
        .is_some_and(|e| matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)))
}

/// What a connection knows before `connection_init`.
pub struct Connection {
    /// `Authorization` of the upgrade request, if any (a token in `connection_init`
    /// takes precedence).
    pub authorization: Option<String>,
    pub forwarded_for: Option<String>,
    /// The client's name from the upgrade request (see [`RequestMeta::client_name`]).
    pub client_name: Option<String>,
    pub slot: ConnectionSlot,
}

enum Out {
    Json(Value),
    Close(u16, String),
}

/// Serves one WebSocket connection until either side ends it.
/// Each `subscribe` runs on the generation serving when it arrives (see
/// [`crate::reload`]).
pub async fn serve_socket(
    handle: Arc<crate::reload::GatewayHandle>,
    socket: WebSocket,
    conn: Connection,
) {
    let gw = handle.current();
    let (mut sink, mut incoming) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Out>(256);
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let (frame, last) = match msg {
                Out::Json(v) => (Message::Text(v.to_string().into()), false),
                Out::Close(code, reason) => (
                    Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })),
                    true,
                ),
            };
            if sink.send(frame).await.is_err() || last {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let options = gw.options.live.clone();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    let mut meta: Option<RequestMeta> = None;
    let mut init_seen = false;
    let init_deadline = tokio::time::sleep(options.init_timeout);
    tokio::pin!(init_deadline);
    let mut ticker = tokio::time::interval(options.keepalive);
    ticker.tick().await;
    let mut last_heard = Instant::now();
    let mut expiry: Option<tokio::time::Instant> = None;
    let reason: Option<(u16, String)> = loop {
        let token_expired = async {
            match expiry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut init_deadline, if meta.is_none() => {
                break Some((close::INIT_TIMEOUT, "Connection initialisation timeout".into()));
            }
            _ = token_expired => {
                break Some((close::FORBIDDEN, "the access token expired; reconnect with a fresh one".into()));
            }
            _ = ticker.tick() => {
                if last_heard.elapsed() > options.keepalive * 3 {
                    break Some((close::GOING_AWAY, "no answer to pings".into()));
                }
                let _ = out.send(Out::Json(serde_json::json!({ "type": "ping" }))).await;
            }
            Some(id) = done_rx.recv() => {
                running.remove(&id);
            }
            msg = incoming.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(_))) => {
                        break Some((close::BAD_MESSAGE, "binary messages are not part of the protocol".into()));
                    }
                    Some(Err(e)) if too_big(&e) => {
                        break Some((
                            close::MESSAGE_TOO_BIG,
                            format!("messages are limited to {} bytes", gw.options.limits.max_request_bytes),
                        ));
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => { last_heard = Instant::now(); continue; }
                };
                last_heard = Instant::now();
                let Ok(msg) = serde_json::from_str::<Value>(&text) else {
                    break Some((close::BAD_MESSAGE, "the message is not JSON".into()));
                };
                match msg["type"].as_str() {
                    Some("connection_init") => {
                        if init_seen {
                            break Some((close::TOO_MANY_INITS, "Too many initialisation requests".into()));
                        }
                        init_seen = true;
                        match authenticate(&gw, &conn, &msg["payload"]).await {
                            Ok(m) => {
                                expiry = m.principal.as_ref().and_then(|p| p.expires_at).map(deadline_of);
                                meta = Some(m);
                                let _ = out.send(Out::Json(serde_json::json!({ "type": "connection_ack" }))).await;
                            }
                            Err(reason) => break Some((close::FORBIDDEN, reason)),
                        }
                    }
                    Some("ping") => {
                        let _ = out.send(Out::Json(serde_json::json!({ "type": "pong" }))).await;
                    }
                    Some("pong") => {}
                    Some("subscribe") => {
                        let Some(meta) = &meta else {
                            break Some((close::UNAUTHORIZED, "Unauthorized".into()));
                        };
                        let Some(id) = msg["id"].as_str().filter(|id| !id.is_empty()).map(str::to_string) else {
                            break Some((close::BAD_MESSAGE, "subscribe needs an id".into()));
                        };
                        if running.contains_key(&id) {
                            break Some((close::DUPLICATE_ID, format!("Subscriber for {id} already exists")));
                        }
                        let Ok(req) = serde_json::from_value::<GraphQLRequest>(msg["payload"].clone()) else {
                            break Some((close::BAD_MESSAGE, "subscribe needs a GraphQL request as payload".into()));
                        };
                        if running.len() >= options.max_subscriptions_per_connection {
                            let error = crate::pipeline::request::error(
                                "too many operations running on this connection",
                                "TOO_MANY_REQUESTS",
                            );
                            let _ = out.send(Out::Json(serde_json::json!({ "type": "error", "id": id, "payload": [error] }))).await;
                            continue;
                        }
                        let task = tokio::spawn(run_operation(
                            handle.current(), id.clone(), req, meta.clone(), out.clone(), done_tx.clone(),
                        ));
                        running.insert(id, task.abort_handle());
                    }
                    Some("complete") => {
                        if let Some(task) = msg["id"].as_str().and_then(|id| running.remove(id)) {
                            task.abort();
                        }
                    }
                    _ => break Some((close::BAD_MESSAGE, "unknown message type".into())),
                }
            }
        }
    };
    for task in running.values() {
        task.abort();
    }
    if let Some((code, reason)) = reason {
        let _ = out.send(Out::Close(code, reason)).await;
    }
    drop(out);
    let _ = writer.await;
    drop(conn);
}

fn deadline_of(exp: i64) -> tokio::time::Instant {
    let now = chrono_now();
    let left = u64::try_from(exp.saturating_sub(now)).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_secs(left)
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The caller of a connection: a token in `connection_init`'s payload (`Authorization`,
/// any case) or else the upgrade request's header, verified as for HTTP requests.
async fn authenticate(
    gw: &Gateway,
    conn: &Connection,
    payload: &Value,
) -> Result<RequestMeta, String> {
    let from_payload = payload
        .as_object()
        .and_then(|p| {
            p.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        })
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string);
    let authorization = from_payload.or_else(|| conn.authorization.clone());
    let principal = match (&authorization, &gw.options.verifier) {
        (Some(value), Some(verifier)) => Some(
            verifier
                .verify_header(value)
                .await
                .map_err(|e| e.to_string())?,
        ),
        _ => None,
    };
    Ok(RequestMeta {
        authorization,
        principal,
        forwarded_for: conn.forwarded_for.clone(),
        is_get: false,
        uploads: None,
        client_name: conn.client_name.clone(),
    })
}

/// Runs one operation of a connection: `next` per result, then `complete`; a request
/// error is one `error` message.
async fn run_operation(
    gw: Arc<Gateway>,
    id: String,
    req: GraphQLRequest,
    meta: RequestMeta,
    out: mpsc::Sender<Out>,
    done: mpsc::UnboundedSender<String>,
) {
    let results: Result<BoxStream<'static, GraphQLResponse>, GraphQLResponse> =
        gw.subscribe(req, meta).await;
    match results {
        Err(resp) => {
            let _ = out
                .send(Out::Json(
                    serde_json::json!({ "type": "error", "id": id, "payload": resp.errors }),
                ))
                .await;
        }
        Ok(mut results) => {
            while let Some(resp) = results.next().await {
                let payload = serde_json::to_value(&resp).unwrap_or_default();
                if out
                    .send(Out::Json(
                        serde_json::json!({ "type": "next", "id": id, "payload": payload }),
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let _ = out
                .send(Out::Json(
                    serde_json::json!({ "type": "complete", "id": id }),
                ))
                .await;
        }
    }
    let _ = done.send(id);
}

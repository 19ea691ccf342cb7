//! Real streaming clients for the end-to-end tests: a WebSocket client speaking
//! `graphql-transport-ws` and a GraphQL-over-SSE client, both over loopback.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for one message before it fails.
const WAIT: Duration = Duration::from_secs(15);

pub struct WsClient {
    socket: Socket,
    /// Whether server pings get a pong (tests of dead peers turn it off).
    pub answer_pings: bool,
    /// Server pings seen so far.
    pub pings: usize,
}

/// What the server did next.
#[derive(Debug)]
pub enum Received {
    Message(Value),
    Closed(u16, String),
}

impl Received {
    pub fn message(self) -> Value {
        match self {
            Received::Message(v) => v,
            Received::Closed(code, reason) => panic!("closed ({code}) {reason}"),
        }
    }
}

pub fn ws_url(http_url: &str) -> String {
    http_url.replacen("http://", "ws://", 1)
}

impl WsClient {
    /// Opens a socket (subprotocol `graphql-transport-ws`), with `header_token` as the
    /// upgrade's `Authorization` when given. Err is the HTTP status of a refused upgrade.
    pub async fn open(gateway_url: &str, header_token: Option<&str>) -> Result<WsClient, u16> {
        let mut request = ws_url(gateway_url).into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        if let Some(t) = header_token {
            request.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {t}")).expect("header"),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, resp)) => {
                assert_eq!(
                    resp.headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok()),
                    Some("graphql-transport-ws"),
                    "the server picks the protocol"
                );
                Ok(WsClient {
                    socket,
                    answer_pings: true,
                    pings: 0,
                })
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("connecting: {e}"),
        }
    }

    /// Opens and initialises a connection with `token` in the `connection_init` payload.
    pub async fn connect(gateway_url: &str, token: Option<&str>) -> WsClient {
        let mut c = Self::open(gateway_url, None).await.expect("upgrade");
        let payload = match token {
            Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        c.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = c.recv().await.message();
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        c
    }

    pub async fn send(&mut self, msg: Value) {
        self.socket
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "type": "subscribe", "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next protocol message (server pings are answered and skipped).
    pub async fn recv(&mut self) -> Received {
        loop {
            let msg = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a message in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON message");
                    if v["type"] == "ping" {
                        self.pings += 1;
                        if self.answer_pings {
                            self.send(json!({ "type": "pong" })).await;
                        }
                        continue;
                    }
                    return Received::Message(v);
                }
                Some(Ok(Message::Close(frame))) => {
                    return frame
                        .map(|f| Received::Closed(u16::from(f.code), f.reason.to_string()))
                        .unwrap_or(Received::Closed(1005, String::new()));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Received::Closed(1006, e.to_string()),
                None => return Received::Closed(1006, "ended".into()),
            }
        }
    }

    /// The payload of the next `next` message for `id`.
    pub async fn next_for(&mut self, id: &str) -> Value {
        let msg = self.recv().await.message();
        assert_eq!(msg["type"], "next", "expected next for {id}: {msg}");
        assert_eq!(msg["id"], id);
        msg["payload"].clone()
    }

    /// Nothing arrives (besides pings) for `quiet`.
    pub async fn silent_for(&mut self, quiet: Duration) -> bool {
        let until = tokio::time::Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(until, self.socket.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(Message::Text(t)))) if t.contains("\"ping\"") => {
                    self.pings += 1;
                    if self.answer_pings {
                        self.send(json!({ "type": "pong" })).await;
                    }
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(_) => return false,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// A GraphQL-over-SSE stream: `(event, data)` pairs as they arrive.
pub struct SseClient {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl SseClient {
    /// POSTs `query` with `Accept: text/event-stream`; Err is a non-streaming answer.
    pub async fn start(
        gateway_url: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<SseClient, (u16, Value)> {
        let mut req = reqwest::Client::new()
            .post(gateway_url)
            .header("accept", "text/event-stream")
            .header("content-type", "application/json")
            .body(json!({ "query": query, "variables": variables }).to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let streaming = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !streaming {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err((status, body));
        }
        Ok(SseClient {
            body: resp.bytes_stream().boxed(),
            buffer: String::new(),
        })
    }

    /// The next event (comments, i.e. keep-alives, skipped); `None` when the stream ends.
    pub async fn next_event(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                if block.lines().all(|l| l.starts_with(':') || l.is_empty()) {
                    continue;
                }
                return Some((event, data.join("\n")));
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("an event in time")?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("stream")));
        }
    }

    /// The next `next` event's payload.
    pub async fn next_payload(&mut self) -> Value {
        let (event, data) = self.next_event().await.expect("an event");
        assert_eq!(event, "next", "{data}");
        serde_json::from_str(&data).expect("JSON payload")
    }
}

//! The gateway's GraphQL API as the pages call it: one POST per operation, the answer's
//! `data` decoded into the page's own types, errors kept with their codes so a page can
//! say what went wrong in words.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A failed call, by what the shopper should be told.
#[derive(thiserror::Error, Debug)]
pub enum ApiError {
    /// The gateway did not answer (down, timed out, not JSON).
    #[error("the shop cannot be reached right now")]
    Unreachable(String),
    /// The API refused: its first error's `extensions.code` and message.
    #[error("{message}")]
    Refused { code: String, message: String },
}

/// A client of the gateway; cheap to clone.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    /// For event streams: no overall timeout.
    streams: reqwest::Client,
    url: String,
}

/// How long a page waits for the API.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Api {
    pub fn new(url: &str) -> Self {
        Api {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            streams: reqwest::Client::builder()
                .connect_timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            url: url.to_string(),
        }
    }

    /// Runs one operation; `token` is the signed-in user's access token.
    pub async fn run<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Result<T, ApiError> {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let bytes = req
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ApiError::Unreachable(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        serde_json::from_value(data_of(&bytes)?)
            .map_err(|e| ApiError::Unreachable(format!("unexpected answer: {e}")))
    }
}

impl Api {
    /// Runs one operation with a file (a GraphQL multipart request: the file is the
    /// variable `file`), its bytes streamed from `body`; the answer's `data`.
    pub async fn upload(
        &self,
        operations: Value,
        body: reqwest::Body,
        file_name: &str,
        content_type: &str,
        token: Option<&str>,
    ) -> Result<Value, ApiError> {
        let part = reqwest::multipart::Part::stream(body)
            .file_name(file_name.to_string())
            .mime_str(content_type)
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", r#"{"0":["variables.file"]}"#)
            .part("0", part);
        // No overall timeout: a big file takes as long as the browser takes to send it.
        let mut req = self
            .streams
            .post(&self.url)
            // The gateway lets a multipart request through only with a header a
            // browser would have had to ask leave for (its CSRF rule).
            .header("apollo-require-preflight", "true")
            .multipart(form);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let bytes = req
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        data_of(&bytes)
    }

    /// A file the gateway serves (`/files/...`, as an export's link gives it), to pass
    /// on as it streams.
    pub async fn download(&self, path: &str) -> Result<reqwest::Response, ApiError> {
        // Only the gateway's own files: the link is the API's, but nothing here fetches
        // from elsewhere on anyone's say.
        let url = if path.starts_with('/') && !path.starts_with("//") {
            format!("{}{path}", self.origin())
        } else if path.starts_with(&format!("{}/", self.origin())) {
            path.to_string()
        } else {
            return Err(ApiError::Unreachable(format!(
                "not the gateway's file: {path}"
            )));
        };
        self.streams
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ApiError::Unreachable(e.to_string()))
    }

    /// `http://host:port` of the gateway's URL.
    fn origin(&self) -> &str {
        let after_scheme = self.url.find("://").map_or(0, |i| i + 3);
        match self.url[after_scheme..].find('/') {
            Some(i) => &self.url[..after_scheme + i],
            None => &self.url,
        }
    }
}

/// An answer's `data`, or its first error.
fn data_of(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut reply: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if reply["errors"].as_array().is_some_and(|e| !e.is_empty()) {
        return Err(refusal(&reply));
    }
    Ok(reply["data"].take())
}

/// The first error of an answer, by its code.
fn refusal(reply: &Value) -> ApiError {
    let first = &reply["errors"][0];
    ApiError::Refused {
        code: first["extensions"]["code"]
            .as_str()
            .unwrap_or("INTERNAL_SERVER_ERROR")
            .to_string(),
        message: first["message"].as_str().unwrap_or_default().to_string(),
    }
}

/// An open subscription: the `data` of each event the gateway streams.
pub struct Subscription {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Subscription {
    /// The next event's `data`; `None` when the stream ends or breaks.
    pub async fn next(&mut self) -> Option<Value> {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = if v.trim() == "complete" {
                            "complete"
                        } else {
                            "next"
                        };
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if event == "complete" {
                    return None;
                }
                if data.is_empty() {
                    continue;
                }
                let mut v: Value = serde_json::from_str(&data).ok()?;
                if v.get("errors").is_some_and(|e| !e.is_null()) {
                    return None;
                }
                return Some(v["data"].take());
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            // A stream that sends no event separator is not one we can read.
            if self.buffer.len() > 1 << 20 {
                return None;
            }
        }
    }
}

impl Api {
    /// Opens a subscription over server-sent events (the gateway's `text/event-stream`
    /// answer to a POST).
    pub async fn subscribe(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Result<Subscription, ApiError> {
        use futures::StreamExt;
        let body = serde_json::json!({ "query": query, "variables": variables });
        // No overall timeout: the stream lasts as long as the page is open.
        let mut req = self
            .streams
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let streaming = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !streaming {
            let bytes = resp.bytes().await.unwrap_or_default();
            let reply: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(refusal(&reply));
        }
        Ok(Subscription {
            body: resp.bytes_stream().boxed(),
            buffer: String::new(),
        })
    }
}

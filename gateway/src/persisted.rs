//! Automatic persisted queries: Apollo's `persistedQuery` request extension. A client
//! sends only the SHA-256 of its operation; the first time the gateway answers
//! `PERSISTED_QUERY_NOT_FOUND` and the client sends the text with the hash, which the
//! gateway checks and keeps. Later requests are a hash and variables: small enough
//! for a GET a CDN can cache.
//!
//! What is kept is bounded by bytes (least recently used out first), so a client
//! registering endless distinct texts only pushes older ones out. With Redis
//! configured, texts are also kept there for a day, so that a text sent to one replica
//! is found by the others; Redis being away only costs the sharing.

use std::sync::Mutex;

use lru::LruCache;
use serde_json::Value;
use shop_kit::secrets::hash_token as sha256_hex;

use crate::pipeline::request::{GraphQLRequest, GraphQLResponse};

/// Settings of automatic persisted queries.
#[derive(Clone, Debug)]
pub struct PersistedOptions {
    /// Whether the extension is honoured. Default on.
    pub enabled: bool,
    /// Bytes of operation text kept. Default 16 MiB.
    pub cache_bytes: usize,
}

impl Default for PersistedOptions {
    fn default() -> Self {
        PersistedOptions {
            enabled: true,
            cache_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Operation texts by the hex SHA-256 of their text.
pub struct PersistedQueries {
    options: PersistedOptions,
    kept: Mutex<Kept>,
    /// Redis and the key prefix, when texts are shared between replicas.
    shared: std::sync::OnceLock<(redis::aio::ConnectionManager, String)>,
}

/// How long a text shared through Redis is kept there after it was last sent.
const SHARED_SECONDS: u64 = 24 * 60 * 60;

struct Kept {
    texts: LruCache<String, String>,
    bytes: usize,
}

impl PersistedQueries {
    pub fn new(options: PersistedOptions) -> Self {
        PersistedQueries {
            options,
            kept: Mutex::new(Kept {
                texts: LruCache::unbounded(),
                bytes: 0,
            }),
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Shares texts with the other replicas through Redis, under
    /// `<prefix>:apq:<hash>`.
    pub fn share_through_redis(&self, conn: redis::aio::ConnectionManager, prefix: &str) {
        let _ = self.shared.set((conn, format!("{prefix}:apq:")));
    }

    async fn shared_get(&self, hash: &str) -> Option<String> {
        let (conn, prefix) = self.shared.get()?;
        let mut conn = conn.clone();
        redis::cmd("GET")
            .arg(format!("{prefix}{hash}"))
            .query_async::<Option<String>>(&mut conn)
            .await
            .inspect_err(
                |e| tracing::warn!(error = %e, "reading a persisted query from Redis failed"),
            )
            .ok()
            .flatten()
    }

    async fn shared_put(&self, hash: &str, text: &str) {
        let Some((conn, prefix)) = self.shared.get() else {
            return;
        };
        let mut conn = conn.clone();
        let res = redis::cmd("SET")
            .arg(format!("{prefix}{hash}"))
            .arg(text)
            .arg("EX")
            .arg(SHARED_SECONDS)
            .query_async::<()>(&mut conn)
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "keeping a persisted query in Redis failed");
        }
    }

    /// Fills in the request's text from its `persistedQuery` extension, or keeps the
    /// text it came with under its hash. A request without the extension is left as
    /// it is.
    pub async fn resolve(&self, req: &mut GraphQLRequest) -> Result<(), GraphQLResponse> {
        let Some(ext) = req
            .extensions
            .as_ref()
            .and_then(|e| e.get("persistedQuery"))
        else {
            return Ok(());
        };
        if !self.options.enabled {
            return Err(GraphQLResponse {
                errors: vec![crate::pipeline::request::error(
                    "PersistedQueryNotSupported",
                    "PERSISTED_QUERY_NOT_SUPPORTED",
                )],
                data: None,
                status: 200,
            });
        }
        if ext.get("version").and_then(Value::as_u64) != Some(1) {
            return Err(GraphQLResponse::request_error(
                400,
                "persistedQuery: only version 1 is supported",
                "BAD_REQUEST",
            ));
        }
        let hash = match ext.get("sha256Hash").and_then(Value::as_str) {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                h.to_ascii_lowercase()
            }
            _ => {
                return Err(GraphQLResponse::request_error(
                    400,
                    "persistedQuery: sha256Hash must be 64 hexadecimal digits",
                    "BAD_REQUEST",
                ));
            }
        };
        match req.query.as_deref().filter(|q| !q.is_empty()) {
            Some(text) => {
                if sha256_hex(text) != hash {
                    return Err(GraphQLResponse::request_error(
                        400,
                        "persistedQuery: the sha256Hash does not match the query",
                        "PERSISTED_QUERY_HASH_MISMATCH",
                    ));
                }
                let known = self
                    .kept
                    .lock()
                    .is_ok_and(|mut k| k.texts.get(&hash).is_some());
                if !known {
                    self.shared_put(&hash, text).await;
                    self.keep(hash, text);
                }
                Ok(())
            }
            None => {
                let local = self
                    .kept
                    .lock()
                    .ok()
                    .and_then(|mut k| k.texts.get(&hash).cloned());
                let found = match local {
                    Some(text) => Some(text),
                    None => {
                        // Checked again: what Redis holds is only as good as who wrote it.
                        let shared = self
                            .shared_get(&hash)
                            .await
                            .filter(|t| sha256_hex(t) == hash);
                        if let Some(t) = &shared {
                            self.keep(hash.clone(), t);
                        }
                        shared
                    }
                };
                match found {
                    Some(text) => {
                        req.query = Some(text);
                        Ok(())
                    }
                    // The message is what Apollo's clients look for to send the text.
                    None => Err(GraphQLResponse {
                        errors: vec![crate::pipeline::request::error(
                            "PersistedQueryNotFound",
                            "PERSISTED_QUERY_NOT_FOUND",
                        )],
                        data: None,
                        status: 200,
                    }),
                }
            }
        }
    }

    fn keep(&self, hash: String, text: &str) {
        let weight = hash.len() + text.len();
        if weight > self.options.cache_bytes {
            return;
        }
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.texts.contains(&hash) {
            kept.texts.promote(&hash);
            return;
        }
        kept.texts.put(hash, text.to_string());
        kept.bytes += weight;
        while kept.bytes > self.options.cache_bytes {
            match kept.texts.pop_lru() {
                Some((h, t)) => kept.bytes -= h.len() + t.len(),
                None => break,
            }
        }
    }

    /// Texts kept now.
    pub fn len(&self) -> usize {
        self.kept.lock().map(|k| k.texts.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

//! Attempt counting for abuse limits (login, password reset): fixed windows per key,
//! in Redis when configured so every process shares the counts, in memory otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{ApiError, ApiResult};

/// At most `max` attempts per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

#[derive(Clone)]
pub enum RateLimiter {
    Memory(Arc<Mutex<HashMap<String, (Instant, u32)>>>),
    Redis {
        conn: redis::aio::ConnectionManager,
        prefix: String,
    },
}

/// Above this many keys, the in-memory map drops windows that have ended.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn in_memory() -> Self {
        RateLimiter::Memory(Arc::default())
    }

    pub async fn redis(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| e.to_string())?;
        Ok(RateLimiter::Redis {
            conn,
            prefix: format!("{prefix}:limit:"),
        })
    }

    /// How many attempts `key` has made in its current window.
    pub async fn count(&self, key: &str, limit: Limit) -> ApiResult<u32> {
        match self {
            RateLimiter::Memory(map) => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                Ok(match map.get(key) {
                    Some((start, n)) if start.elapsed() < limit.window => *n,
                    _ => 0,
                })
            }
            RateLimiter::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                let n: Option<u32> = redis::cmd("GET")
                    .arg(format!("{prefix}{key}"))
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error)?;
                Ok(n.unwrap_or(0))
            }
        }
    }

    /// Counts one attempt; returns the count including it.
    pub async fn hit(&self, key: &str, limit: Limit) -> ApiResult<u32> {
        match self {
            RateLimiter::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() > PRUNE_ABOVE {
                    map.retain(|_, (start, _)| start.elapsed() < limit.window);
                }
                let entry = map.entry(key.to_string()).or_insert((Instant::now(), 0));
                if entry.0.elapsed() >= limit.window {
                    *entry = (Instant::now(), 0);
                }
                entry.1 = entry.1.saturating_add(1);
                Ok(entry.1)
            }
            RateLimiter::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                let full = format!("{prefix}{key}");
                // INCR then set the expiry only when the window starts (NX), atomically.
                let (n,): (u32,) = redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg(&full)
                    .cmd("EXPIRE")
                    .arg(&full)
                    .arg(limit.window.as_secs().max(1))
                    .arg("NX")
                    .ignore()
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error)?;
                Ok(n)
            }
        }
    }

    /// Forgets `key`'s attempts (after a successful login, say).
    pub async fn clear(&self, key: &str) -> ApiResult<()> {
        match self {
            RateLimiter::Memory(map) => {
                map.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
                Ok(())
            }
            RateLimiter::Redis { conn, prefix } => {
                let mut conn = conn.clone();
                redis::cmd("DEL")
                    .arg(format!("{prefix}{key}"))
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(redis_error)
            }
        }
    }

    /// `TOO_MANY_REQUESTS` when any of `keys` already used up its limit.
    pub async fn ensure_below(&self, keys: &[(&str, Limit)]) -> ApiResult<()> {
        for (key, limit) in keys {
            if self.count(key, *limit).await? >= limit.max {
                return Err(ApiError::TooManyRequests(format!(
                    "too many attempts; try again in {} minutes",
                    limit.window.as_secs().div_ceil(60)
                )));
            }
        }
        Ok(())
    }
}

fn redis_error(e: redis::RedisError) -> ApiError {
    ApiError::Internal(format!("rate limiter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_counts_within_a_window_and_clears() {
        let l = RateLimiter::in_memory();
        let limit = Limit {
            max: 2,
            window: Duration::from_secs(60),
        };
        assert_eq!(l.hit("a", limit).await.ok(), Some(1));
        assert!(l.ensure_below(&[("a", limit)]).await.is_ok());
        assert_eq!(l.hit("a", limit).await.ok(), Some(2));
        assert!(matches!(
            l.ensure_below(&[("a", limit)]).await,
            Err(ApiError::TooManyRequests(_))
        ));
        assert_eq!(l.count("b", limit).await.ok(), Some(0));
        l.clear("a").await.expect("clear");
        assert!(l.ensure_below(&[("a", limit)]).await.is_ok());
    }

    #[tokio::test]
    async fn memory_windows_end() {
        let l = RateLimiter::in_memory();
        let limit = Limit {
            max: 1,
            window: Duration::from_millis(30),
        };
        l.hit("a", limit).await.expect("hit");
        assert!(l.ensure_below(&[("a", limit)]).await.is_err());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(l.ensure_below(&[("a", limit)]).await.is_ok());
    }

    #[tokio::test]
    async fn redis_shares_counts_between_limiters() {
        let Some(url) = crate::testing::redis_url("limits") else {
            return;
        };
        let prefix = format!("shop-test-{}", crate::ids::new_id());
        let a = RateLimiter::redis(&url, &prefix).await.expect("redis");
        let b = RateLimiter::redis(&url, &prefix).await.expect("redis");
        let limit = Limit {
            max: 2,
            window: Duration::from_secs(60),
        };
        a.hit("k", limit).await.expect("hit");
        assert_eq!(b.hit("k", limit).await.expect("hit"), 2);
        assert!(matches!(
            a.ensure_below(&[("k", limit)]).await,
            Err(ApiError::TooManyRequests(_))
        ));
        b.clear("k").await.expect("clear");
        assert_eq!(a.count("k", limit).await.expect("count"), 0);
    }
}

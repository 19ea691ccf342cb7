//! Request rate limits per client address, per signed-in user and per client name:
//! token buckets, kept in this process or, with Redis, shared by every gateway.
//!
//! Each bucket holds `burst` requests and refills at `burst` per `period`. It is kept
//! as one number, the time at which it would be full again (the generic cell rate
//! algorithm, which is a token bucket without a timer): a request is allowed when
//! taking its token leaves that time at most one `period` ahead of now. A refused
//! request takes nothing, and is told when the next token comes (`Retry-After`).
//!
//! Addresses count by their /64 for IPv6, the block one subscriber usually holds, so
//! that walking through one's own addresses gets no fresh buckets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A rate: `burst` requests at once, refilled at `burst` per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub period: Duration,
}

impl Rate {
    /// Reads `100/1s`, `600/1m`, `5000/1h`, `20/10s` (the unit alone means one of it).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let invalid = || format!("{text:?} is not a rate like 100/1s, 600/1m or 5000/1h");
        let (n, period) = text.trim().split_once('/').ok_or_else(invalid)?;
        let burst: u32 = n.trim().parse().map_err(|_| invalid())?;
        let period = period.trim();
        let unit_at = period
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let count: u64 = match &period[..unit_at] {
            "" => 1,
            digits => digits.parse().map_err(|_| invalid())?,
        };
        let unit = match &period[unit_at..] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(invalid()),
        };
        let period = unit.checked_mul(u32::try_from(count).map_err(|_| invalid())?);
        match period {
            Some(p) if burst > 0 && !p.is_zero() && p <= Duration::from_secs(86_400) => {
                Ok(Rate { burst, period: p })
            }
            _ => Err(invalid()),
        }
    }

    /// The time one token takes to come back, in microseconds.
    fn interval_us(&self) -> u64 {
        (self.period.as_micros() as u64 / u64::from(self.burst)).max(1)
    }

    fn period_us(&self) -> u64 {
        self.period.as_micros() as u64
    }
}

/// Which limits apply. Every one is off by default: a right figure depends on the
/// traffic a deployment expects, and a wrong one refuses real shoppers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateLimits {
    /// Per client address (see [`crate::transport::TrustedProxies`]).
    pub per_address: Option<Rate>,
    /// Per signed-in user (the verified token's subject).
    pub per_user: Option<Rate>,
    /// Per client name (`apollographql-client-name`, `graphql-client-name`): listed
    /// names with their own rate; `None` under the name `*` is the rate of every other
    /// name, each its own bucket (callers without a name share one).
    pub per_client: HashMap<String, Rate>,
}

impl RateLimits {
    /// Reads `storefront=1000/1s, partner=10/1s, *=100/1s`.
    pub fn parse_clients(text: &str) -> Result<HashMap<String, Rate>, String> {
        let mut out = HashMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, rate) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not name=rate"))?;
            out.insert(name.trim().to_string(), Rate::parse(rate)?);
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.per_address.is_none() && self.per_user.is_none() && self.per_client.is_empty()
    }

    fn client_rate(&self, name: Option<&str>) -> Option<Rate> {
        name.and_then(|n| self.per_client.get(n))
            .or_else(|| self.per_client.get("*"))
            .copied()
    }
}

/// What a request is counted as before it is read further: its address and the client
/// name it gives.
pub struct Caller<'a> {
    pub address: Option<IpAddr>,
    pub client_name: Option<&'a str>,
}

/// A refusal: which limit, and when to come back.
#[derive(Debug, PartialEq, Eq)]
pub struct Limited {
    pub limit: &'static str,
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for `Retry-After`, never 0 (that would invite a retry at once).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_micros().div_ceil(1_000_000).max(1) as u64
    }
}

/// Above this many buckets, the in-memory store drops the ones that are full again.
const PRUNE_ABOVE: usize = 100_000;

/// Where buckets are kept.
pub enum Store {
    Memory {
        epoch: Instant,
        /// Bucket key → the time (µs after `epoch`) it is full again.
        buckets: Mutex<HashMap<String, u64>>,
    },
    Redis {
        conn: redis::aio::ConnectionManager,
        prefix: String,
    },
}

/// Checks every bucket in one step and, only when all allow, takes a token from each:
/// a request refused by one limit spends nothing of the others. Redis's own clock is
/// used, so that gateways whose clocks differ agree. Returns `{0, 0}` when allowed,
/// else the microseconds until the request would be and the bucket that waits longest.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local worst = 0
local next = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local n = tat + interval
  if n - now - period > wait then
    wait = n - now - period
    worst = i
  end
  next[i] = n
end
if wait > 0 then return {wait, worst} end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', next[i]), 'PX', math.ceil((next[i] - now) / 1000) + 1)
end
return {0, 0}
";

impl Store {
    pub fn in_memory() -> Store {
        Store::Memory {
            epoch: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn redis(conn: redis::aio::ConnectionManager, prefix: &str) -> Store {
        Store::Redis {
            conn,
            prefix: format!("{prefix}:rate:"),
        }
    }

    /// Takes a token from each of `buckets` (key, rate) if all have one; otherwise how
    /// long until they would, and which bucket waits longest (its index). Redis unreachable lets the request through: limits
    /// protect the service, and refusing everyone would be the outage they guard
    /// against.
    async fn take(&self, buckets: &[(String, Rate)]) -> Result<(), (Duration, usize)> {
        match self {
            Store::Memory {
                epoch,
                buckets: map,
            } => {
                let now = epoch.elapsed().as_micros() as u64;
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() > PRUNE_ABOVE {
                    map.retain(|_, full_at| *full_at > now);
                }
                let (mut wait, mut worst) = (0, 0);
                let mut next = Vec::with_capacity(buckets.len());
                for (i, (key, rate)) in buckets.iter().enumerate() {
                    let tat = map.get(key).copied().unwrap_or(now).max(now);
                    let n = tat + rate.interval_us();
                    let over = (n - now).saturating_sub(rate.period_us());
                    if over > wait {
                        (wait, worst) = (over, i);
                    }
                    next.push(n);
                }
                if wait > 0 {
                    return Err((Duration::from_micros(wait), worst));
                }
                for ((key, _), n) in buckets.iter().zip(next) {
                    map.insert(key.clone(), n);
                }
                Ok(())
            }
            Store::Redis { conn, prefix } => {
                static SCRIPT: std::sync::LazyLock<redis::Script> =
                    std::sync::LazyLock::new(|| redis::Script::new(GCRA_SCRIPT));
                let mut script = SCRIPT.prepare_invoke();
                for (key, rate) in buckets {
                    script.key(format!("{prefix}{key}"));
                    script.arg(rate.interval_us()).arg(rate.period_us());
                }
                let mut conn = conn.clone();
                match script.invoke_async::<(u64, usize)>(&mut conn).await {
                    Ok((0, _)) => Ok(()),
                    // Lua counts from 1.
                    Ok((wait, worst)) => {
                        Err((Duration::from_micros(wait), worst.saturating_sub(1)))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "rate limits: Redis failed; request let through");
                        Ok(())
                    }
                }
            }
        }
    }
}

/// The limits and where their buckets are: in this process, or in Redis once it is
/// shared (see [`RateLimiter::share_through_redis`]).
pub struct RateLimiter {
    pub limits: RateLimits,
    store: Store,
    shared: std::sync::OnceLock<Store>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits, store: Store) -> RateLimiter {
        RateLimiter {
            limits,
            store,
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Keeps the buckets in Redis from now on, under `<prefix>:rate:`, so that every
    /// gateway counts against the same ones.
    pub fn share_through_redis(&self, conn: redis::aio::ConnectionManager, prefix: &str) {
        let _ = self.shared.set(Store::redis(conn, prefix));
    }

    /// Counts a request by its address and client name (before the caller's token is
    /// checked, so that a flood is turned away cheaply).
    pub async fn check_caller(&self, caller: &Caller<'_>) -> Result<(), Limited> {
        let mut buckets = Vec::new();
        let mut names = Vec::new();
        if let (Some(rate), Some(address)) = (self.limits.per_address, caller.address) {
            buckets.push((format!("a:{}", address_key(address)), rate));
            names.push("address");
        }
        if let Some(rate) = self.limits.client_rate(caller.client_name) {
            buckets.push((
                format!("c:{}", caller.client_name.unwrap_or_default()),
                rate,
            ));
            names.push("client");
        }
        self.take(&buckets, &names).await
    }

    /// Counts a request by the signed-in user who sent it.
    pub async fn check_user(&self, subject: &str) -> Result<(), Limited> {
        match self.limits.per_user {
            Some(rate) => {
                self.take(&[(format!("u:{subject}"), rate)], &["user"])
                    .await
            }
            None => Ok(()),
        }
    }

    async fn take(
        &self,
        buckets: &[(String, Rate)],
        names: &[&'static str],
    ) -> Result<(), Limited> {
        if buckets.is_empty() {
            return Ok(());
        }
        self.shared
            .get()
            .unwrap_or(&self.store)
            .take(buckets)
            .await
            .map_err(|(retry_after, worst)| Limited {
                limit: names.get(worst).copied().unwrap_or("address"),
                retry_after,
            })
    }
}

/// The key an address counts under: itself for IPv4, its /64 for IPv6.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_nonsense_is_refused() {
        let r = Rate::parse("100/1s").unwrap();
        assert_eq!((r.burst, r.period), (100, Duration::from_secs(1)));
        assert_eq!(
            Rate::parse("600/m").unwrap().period,
            Duration::from_secs(60)
        );
        assert_eq!(
            Rate::parse("20/10s").unwrap().period,
            Duration::from_secs(10)
        );
        assert_eq!(
            Rate::parse(" 5 / 250ms ").unwrap().period,
            Duration::from_millis(250)
        );
        for bad in [
            "", "10", "0/1s", "10/0s", "10/1d", "-1/1s", "10/s1", "x/1s", "1/99999h",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[tokio::test]
    async fn a_bucket_allows_its_burst_then_one_per_interval_and_refusals_take_nothing() {
        let limiter = RateLimiter::new(
            RateLimits {
                per_address: Some(Rate::parse("3/300ms").unwrap()),
                ..Default::default()
            },
            Store::in_memory(),
        );
        let caller = Caller {
            address: Some("10.0.0.1".parse().unwrap()),
            client_name: None,
        };
        for _ in 0..3 {
            limiter.check_caller(&caller).await.unwrap();
        }
        let refused = limiter.check_caller(&caller).await.unwrap_err();
        assert_eq!(refused.limit, "address");
        assert!(
            refused.retry_after <= Duration::from_millis(100),
            "{refused:?}"
        );
        assert!(
            refused.retry_after > Duration::from_millis(50),
            "{refused:?}"
        );
        assert_eq!(refused.retry_after_secs(), 1);
        // Another address has its own bucket.
        let other = Caller {
            address: Some("10.0.0.2".parse().unwrap()),
            client_name: None,
        };
        limiter.check_caller(&other).await.unwrap();
        // One interval later, exactly one more.
        tokio::time::sleep(Duration::from_millis(110)).await;
        limiter.check_caller(&caller).await.unwrap();
        assert!(limiter.check_caller(&caller).await.is_err());
    }

    #[tokio::test]
    async fn client_names_get_their_listed_rate_or_the_default_each() {
        let limiter = RateLimiter::new(
            RateLimits {
                per_client: RateLimits::parse_clients("storefront=3/1m, *=1/1m").unwrap(),
                ..Default::default()
            },
            Store::in_memory(),
        );
        let named = |name: Option<&'static str>| Caller {
            address: None,
            client_name: name,
        };
        for _ in 0..3 {
            limiter
                .check_caller(&named(Some("storefront")))
                .await
                .unwrap();
        }
        assert_eq!(
            limiter
                .check_caller(&named(Some("storefront")))
                .await
                .unwrap_err()
                .limit,
            "client"
        );
        limiter.check_caller(&named(Some("partner"))).await.unwrap();
        assert!(limiter.check_caller(&named(Some("partner"))).await.is_err());
        limiter.check_caller(&named(Some("other"))).await.unwrap();
        limiter.check_caller(&named(None)).await.unwrap();
        assert!(limiter.check_caller(&named(None)).await.is_err());
    }

    #[tokio::test]
    async fn a_request_refused_by_one_limit_spends_nothing_of_another() {
        let limiter = RateLimiter::new(
            RateLimits {
                per_address: Some(Rate::parse("2/1m").unwrap()),
                per_client: RateLimits::parse_clients("app=1/1m").unwrap(),
                ..Default::default()
            },
            Store::in_memory(),
        );
        let app = Caller {
            address: Some("10.0.0.1".parse().unwrap()),
            client_name: Some("app"),
        };
        limiter.check_caller(&app).await.unwrap();
        assert_eq!(
            limiter.check_caller(&app).await.unwrap_err().limit,
            "client"
        );
        // The address bucket still holds its second token.
        let plain = Caller {
            address: Some("10.0.0.1".parse().unwrap()),
            client_name: Some("web"),
        };
        limiter.check_caller(&plain).await.unwrap();
        assert!(limiter.check_caller(&plain).await.is_err());
    }
}

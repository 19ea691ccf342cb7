//! Domain events: written to an outbox table in the same transaction as the state
//! change, published by a relay, delivered at least once to every consumer group.
//!
//! The bus is in-process on the embedded default and Redis streams when `REDIS_URL` is
//! set (one stream per topic, one consumer group per subscribing domain). Handlers must
//! be idempotent: a crash between handling and acknowledging redelivers the event.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// One domain event as it travels on the bus.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub id: String,
    pub topic: String,
    pub payload: serde_json::Value,
    pub occurred_at: String,
    /// The id of the thing the event is about (an order, a product, a user).
    #[serde(default)]
    pub aggregate: String,
    /// 1, 2, 3, ... per aggregate in the order the changes were committed; a consumer
    /// that has seen a higher one knows this one is stale.
    #[serde(default)]
    pub sequence: i64,
    /// The W3C `traceparent` of the request that wrote the event: its consumers'
    /// spans continue that trace (see [`crate::telemetry`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
pub type Handler = Arc<dyn Fn(Event) -> HandlerFuture + Send + Sync>;

/// The event bus; cheap to clone.
#[derive(Clone)]
pub enum EventBus {
    InProcess(Arc<InProcessBus>),
    Redis(Box<RedisBus>),
}

#[derive(Default)]
pub struct InProcessBus {
    /// Consumer groups and what they listen to, plus the recent events: a group that
    /// starts after an event was published still gets it (as a Redis consumer group
    /// created at the stream's start does), so start-up order loses nothing.
    groups: Mutex<Groups>,
    fanout: Fanout,
    /// Per outbox table: its publish counter and the events some group has not
    /// handled yet (counter value → groups still to finish it).
    outboxes: Mutex<HashMap<String, Deliveries>>,
}

#[derive(Default)]
struct Groups {
    subscribers: Vec<(Vec<String>, GroupSender)>,
    /// Recent events with their approximate size in bytes.
    history: std::collections::VecDeque<(Event, usize)>,
    history_bytes: usize,
}

/// Feeds one consumer group: each event with its acknowledgement when it came from an
/// outbox.
type GroupSender = mpsc::UnboundedSender<(Event, Option<Ack>)>;

#[derive(Default)]
struct Deliveries {
    counter: i64,
    pending: std::collections::BTreeMap<i64, usize>,
}

/// A consumer group's acknowledgement of one outbox event on the in-process bus.
struct Ack {
    bus: std::sync::Weak<InProcessBus>,
    outbox: String,
    delivery: i64,
}

impl Ack {
    fn done(self) {
        let Some(bus) = self.bus.upgrade() else {
            return;
        };
        let Ok(mut outboxes) = bus.outboxes.lock() else {
            return;
        };
        if let Some(d) = outboxes.get_mut(&self.outbox)
            && let Some(left) = d.pending.get_mut(&self.delivery)
        {
            *left = left.saturating_sub(1);
            if *left == 0 {
                d.pending.remove(&self.delivery);
            }
        }
    }
}

impl InProcessBus {
    fn outboxes(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Deliveries>>, String> {
        self.outboxes
            .lock()
            .map_err(|_| "bus lock poisoned".to_string())
    }

    /// Hands `event` to every group subscribed to its topic (each with an ack when it
    /// comes from an outbox) and to live listeners; returns how many groups got it.
    fn deliver(
        self: &Arc<Self>,
        event: &Event,
        outbox: Option<(&str, i64)>,
    ) -> Result<usize, String> {
        let mut groups = self
            .groups
            .lock()
            .map_err(|_| "bus lock poisoned".to_string())?;
        let mut delivered = 0;
        groups.subscribers.retain(|(topics, tx)| {
            if topics.iter().any(|t| t == &event.topic) {
                let ack = outbox.map(|(table, delivery)| Ack {
                    bus: Arc::downgrade(self),
                    outbox: table.to_string(),
                    delivery,
                });
                let sent = tx.send((event.clone(), ack)).is_ok();
                delivered += usize::from(sent);
                sent
            } else {
                !tx.is_closed()
            }
        });
        // Bounded by count and by bytes: a catalog import's events carry hundreds of
        // products each, and twenty thousand of them held a quarter of a gigabyte.
        let size = approx_size(&event.payload) + event.topic.len() + 64;
        while !groups.history.is_empty()
            && (groups.history.len() >= IN_PROCESS_HISTORY
                || groups.history_bytes + size > IN_PROCESS_HISTORY_BYTES)
        {
            if let Some((_, dropped)) = groups.history.pop_front() {
                groups.history_bytes -= dropped;
            }
        }
        groups.history.push_back((event.clone(), size));
        groups.history_bytes += size;
        drop(groups);
        self.fanout.send(event);
        Ok(delivered)
    }
}

/// A place in a topic's stream: Redis's `<ms>-<seq>` entry id; the in-process bus uses
/// the outbox's publish counter as `<n>-0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamPos {
    ms: u64,
    seq: u64,
}

impl StreamPos {
    pub fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        Some(StreamPos {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// Zero-padded, so the database orders positions as text.
    pub fn stored(&self) -> String {
        format!("{:020}-{:020}", self.ms, self.seq)
    }

    /// Where the in-process bus puts an outbox's `n`th event.
    fn of_counter(n: i64) -> Self {
        StreamPos {
            ms: n.unsigned_abs(),
            seq: 0,
        }
    }

    fn redis(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    fn next(self) -> Self {
        match self.seq.checked_add(1) {
            Some(seq) => StreamPos { ms: self.ms, seq },
            None => StreamPos {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

/// What the bus did with an outbox event.
#[derive(Debug, PartialEq)]
pub enum Placed {
    /// Published, each event at its position, with the outbox's counter on the bus
    /// after it (one more per event).
    At(Vec<(StreamPos, i64)>),
    /// Not published: the bus's counter is not what the relay expected (it lost events).
    CounterMoved,
}

/// Which of a topic's published outbox events every consumer group has acknowledged.
#[derive(Debug, PartialEq)]
pub enum Acked {
    /// None can be counted as acknowledged (the stream is gone).
    Nothing,
    /// Every event placed before this position.
    Below(StreamPos),
    /// All of them (or no group consumes the topic).
    All,
}

/// How long a Redis stream keeps acknowledged entries, for consumer groups created
/// later and live readers catching up after a reconnect.
const STREAM_RETENTION: Duration = Duration::from_secs(3600);

/// Publishes an outbox event only when the outbox's counter is what the relay last saw,
/// and bumps it in the same step: a Redis that restarted without the relay's earlier
/// events shows a lower counter, and those events are published again.
const PUBLISH_SCRIPT: &str = r"
local counter = tonumber(redis.call('GET', KEYS[1]) or '0')
if counter ~= tonumber(ARGV[1]) then
  return {0}
end
local out = {1}
for i = 2, #KEYS do
  table.insert(out, redis.call('XADD', KEYS[i], '*', 'event', ARGV[i]))
end
redis.call('SET', KEYS[1], counter + #KEYS - 1)
return out
";

/// The outbox's counter and, per consumer group of the stream, the last entry it was
/// given and its oldest unacknowledged one: read together, so they describe one state.
const ACKED_SCRIPT: &str = r"
local counter = string.format('%d', tonumber(redis.call('GET', KEYS[1]) or '0'))
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {counter, 'missing'}
end
local out = {counter, 'ok'}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[2])) do
  local name, pending, last
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1]
    elseif group[i] == 'pending' then pending = group[i + 1]
    elseif group[i] == 'last-delivered-id' then last = group[i + 1] end
  end
  local oldest = ''
  if pending > 0 then
    oldest = redis.call('XPENDING', KEYS[2], name)[2]
  end
  table.insert(out, last)
  table.insert(out, oldest)
end
return out
";

/// How many recent events the in-process bus keeps for consumers that start late, and
/// how many bytes of them at most.
const IN_PROCESS_HISTORY: usize = 20_000;
const IN_PROCESS_HISTORY_BYTES: usize = 16 * 1024 * 1024;

/// Roughly what a JSON value takes in memory, without serializing it.
fn approx_size(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 16,
        Value::String(s) => 32 + s.len(),
        Value::Array(items) => 32 + items.iter().map(approx_size).sum::<usize>(),
        Value::Object(m) => {
            32 + m
                .iter()
                .map(|(k, v)| 48 + k.len() + approx_size(v))
                .sum::<usize>()
        }
    }
}

#[derive(Clone)]
pub struct RedisBus {
    conn: redis::aio::ConnectionManager,
    client: redis::Client,
    prefix: String,
    fanout: Arc<Fanout>,
    /// How long an entry may stay unacknowledged with one consumer before another of
    /// its group takes it over (the first one's process died holding it).
    claim_after: Duration,
}

/// The default for [`RedisBus::claim_after`]: well past any handler's normal run, so a
/// slow but live consumer rarely has its work taken (and if it does, inboxes absorb
/// the second run).
const CLAIM_AFTER: Duration = Duration::from_secs(60);

/// Live listeners of this process (subscriptions), one broadcast channel per topic.
/// Unlike consumer groups, every listener sees every event, and only while listening.
#[derive(Default)]
pub struct Fanout {
    /// Per topic: the channel, and whether events reach it yet (a Redis reader first
    /// learns where the stream ends).
    topics: Mutex<HashMap<String, Topic>>,
    /// The newest sequence passed on per (topic, aggregate): an outbox publishes an
    /// event again when the bus lost track of it, and live listeners should not see
    /// an update twice (consumer groups have their inboxes for that).
    latest: Mutex<HashMap<(String, String), i64>>,
}

/// How many aggregates [`Fanout::latest`] remembers before starting afresh.
const FANOUT_LATEST: usize = 100_000;

/// A topic's channel and whether events reach it yet.
type Topic = (broadcast::Sender<Event>, Arc<AtomicBool>);

/// How many events a slow listener may fall behind before it misses some (it is told).
const FANOUT_BUFFER: usize = 1024;

impl Fanout {
    /// The topic's channel, its readiness flag, and whether it was just created.
    fn channel(
        &self,
        topic: &str,
        ready: bool,
    ) -> (broadcast::Sender<Event>, Arc<AtomicBool>, bool) {
        let Ok(mut topics) = self.topics.lock() else {
            return (
                broadcast::channel(1).0,
                Arc::new(AtomicBool::new(false)),
                false,
            );
        };
        match topics.get(topic) {
            Some((tx, flag)) => (tx.clone(), flag.clone(), false),
            None => {
                let (tx, _) = broadcast::channel(FANOUT_BUFFER);
                let flag = Arc::new(AtomicBool::new(ready));
                topics.insert(topic.to_string(), (tx.clone(), flag.clone()));
                (tx, flag, true)
            }
        }
    }

    /// Whether `event` is news to live listeners: not an event of its aggregate they
    /// were already given (events without a sequence always are).
    fn is_news(&self, event: &Event) -> bool {
        if event.sequence <= 0 {
            return true;
        }
        let Ok(mut latest) = self.latest.lock() else {
            return true;
        };
        if latest.len() >= FANOUT_LATEST {
            latest.clear();
        }
        let seen = latest
            .entry((event.topic.clone(), event.aggregate.clone()))
            .or_insert(0);
        if event.sequence <= *seen {
            return false;
        }
        *seen = event.sequence;
        true
    }

    fn send(&self, event: &Event) {
        if !self.is_news(event) {
            return;
        }
        let tx = self
            .topics
            .lock()
            .ok()
            .and_then(|t| t.get(&event.topic).map(|(tx, _)| tx.clone()));
        if let Some(tx) = tx {
            // No receiver is not an error: nobody listens right now.
            let _ = tx.send(event.clone());
        }
    }

    fn listeners(&self) -> usize {
        self.listening(|_| true)
    }

    /// Receivers of the ready topics `which` accepts.
    fn listening(&self, which: impl Fn(&str) -> bool) -> usize {
        self.topics
            .lock()
            .map(|t| {
                t.iter()
                    .filter(|(topic, (_, ready))| which(topic) && ready.load(Ordering::Acquire))
                    .map(|(_, (tx, _))| tx.receiver_count())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// Merges the receivers of several topics into one stream; a listener that fell behind
/// skips what it missed (subscriptions resynchronise; durable work uses consumer groups).
fn listen(receivers: Vec<broadcast::Receiver<Event>>) -> BoxStream<'static, Event> {
    use futures::StreamExt;
    let streams = receivers.into_iter().map(|rx| {
        futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "a live listener fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    });
    futures::stream::select_all(streams).boxed()
}

impl EventBus {
    pub fn in_process() -> Self {
        EventBus::InProcess(Arc::new(InProcessBus::default()))
    }

    /// A Redis-streams bus; `prefix` namespaces the stream keys.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let conn = redis::aio::ConnectionManager::new(client.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(EventBus::Redis(Box::new(RedisBus {
            conn,
            client,
            prefix: prefix.to_string(),
            fanout: Arc::new(Fanout::default()),
            claim_after: CLAIM_AFTER,
        })))
    }

    /// Sets how long a Redis consumer's unacknowledged entry waits before another
    /// consumer of its group takes it over (tests shorten it).
    pub fn with_claim_after(self, after: Duration) -> Self {
        match self {
            EventBus::Redis(mut bus) => {
                bus.claim_after = after;
                EventBus::Redis(bus)
            }
            other => other,
        }
    }

    /// Every event of `topics` published from now on, in this process, as long as the
    /// stream is kept: for live subscriptions. On Redis each topic stream is read by one
    /// task per process, so every replica (and every gateway behind it) sees every event.
    pub fn subscribe(&self, topics: &[&str]) -> BoxStream<'static, Event> {
        let mut receivers = Vec::new();
        for topic in topics {
            match self {
                EventBus::InProcess(bus) => {
                    receivers.push(bus.fanout.channel(topic, true).0.subscribe())
                }
                EventBus::Redis(bus) => {
                    let (tx, ready, created) = bus.fanout.channel(topic, false);
                    receivers.push(tx.subscribe());
                    if created {
                        let bus = bus.clone();
                        let topic = topic.to_string();
                        tokio::spawn(async move { bus.fan_out(topic, tx, ready).await });
                    }
                }
            }
        }
        listen(receivers)
    }

    /// How many live listeners this process has whose events flow (tests wait for a
    /// subscription to start before causing its events).
    pub fn listeners(&self) -> usize {
        match self {
            EventBus::InProcess(bus) => bus.fanout.listeners(),
            EventBus::Redis(bus) => bus.fanout.listeners(),
        }
    }

    /// Live listeners of `topic` in this process.
    pub fn listeners_on(&self, topic: &str) -> usize {
        let fanout = match self {
            EventBus::InProcess(bus) => &bus.fanout,
            EventBus::Redis(bus) => &bus.fanout,
        };
        fanout.listening(|t| t == topic)
    }

    pub async fn publish(&self, event: &Event) -> Result<(), String> {
        crate::metrics::process()
            .events_published
            .with_label_values(&[&event.topic])
            .inc();
        match self {
            EventBus::InProcess(bus) => bus.deliver(event, None).map(|_| ()),
            EventBus::Redis(bus) => {
                let body = serde_json::to_string(event).map_err(|e| e.to_string())?;
                let mut conn = bus.conn.clone();
                let key = bus.stream_key(&event.topic);
                redis::cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("event")
                    .arg(body)
                    .query_async::<String>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// The outbox's publish counter on the bus: how many of its events the bus holds
    /// the record of (0 for a bus that never saw it, or lost it).
    pub async fn outbox_counter(&self, outbox: &str) -> Result<i64, String> {
        match self {
            EventBus::InProcess(bus) => Ok(bus.outboxes()?.get(outbox).map_or(0, |d| d.counter)),
            EventBus::Redis(bus) => {
                let mut conn = bus.conn.clone();
                redis::cmd("GET")
                    .arg(bus.counter_key(outbox))
                    .query_async::<Option<i64>>(&mut conn)
                    .await
                    .map(|c| c.unwrap_or(0))
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Publishes events of `outbox`, in order, if the outbox's counter on the bus is
    /// `expected`: all of them or (the counter moved) none. One round trip on Redis.
    pub async fn publish_outbox(
        &self,
        outbox: &str,
        expected: i64,
        events: &[Event],
    ) -> Result<Placed, String> {
        match self {
            EventBus::InProcess(bus) => {
                let mut outboxes = bus.outboxes()?;
                let d = outboxes.entry(outbox.to_string()).or_default();
                if d.counter != expected {
                    return Ok(Placed::CounterMoved);
                }
                let mut placed = Vec::with_capacity(events.len());
                for event in events {
                    let delivery = d.counter + 1;
                    // Still under the outboxes lock: no ack can arrive before it is
                    // counted.
                    let groups = bus.deliver(event, Some((outbox, delivery)))?;
                    d.counter = delivery;
                    if groups > 0 {
                        d.pending.insert(delivery, groups);
                    }
                    placed.push((StreamPos::of_counter(delivery), delivery));
                }
                count_published(events);
                Ok(Placed::At(placed))
            }
            EventBus::Redis(bus) => {
                if events.is_empty() {
                    return Ok(Placed::At(Vec::new()));
                }
                // Hashed once: the script's digest is what each call sends.
                static SCRIPT: std::sync::LazyLock<redis::Script> =
                    std::sync::LazyLock::new(|| redis::Script::new(PUBLISH_SCRIPT));
                let mut script = SCRIPT.prepare_invoke();
                script.key(bus.counter_key(outbox)).arg(expected);
                for event in events {
                    let body = serde_json::to_string(event).map_err(|e| e.to_string())?;
                    script.key(bus.stream_key(&event.topic)).arg(body);
                }
                let mut conn = bus.conn.clone();
                let reply: Vec<redis::Value> = script
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut reply = reply.into_iter();
                let published: i64 = reply
                    .next()
                    .map(redis::from_redis_value)
                    .transpose()
                    .map_err(|e| e.to_string())?
                    .unwrap_or(0);
                if published != 1 {
                    return Ok(Placed::CounterMoved);
                }
                let mut placed = Vec::with_capacity(events.len());
                for (n, v) in reply.enumerate() {
                    let id: String = redis::from_redis_value(v).map_err(|e| e.to_string())?;
                    let pos = StreamPos::parse(&id).ok_or_else(|| format!("stream id {id}"))?;
                    placed.push((pos, expected + n as i64 + 1));
                }
                if placed.len() != events.len() {
                    return Err(format!(
                        "the bus placed {} of {} events",
                        placed.len(),
                        events.len()
                    ));
                }
                count_published(events);
                Ok(Placed::At(placed))
            }
        }
    }

    /// The outbox's counter on the bus and which of `topic`'s events from it every
    /// consumer group has acknowledged, as of one moment.
    pub async fn acked(&self, outbox: &str, topic: &str) -> Result<(i64, Acked), String> {
        match self {
            EventBus::InProcess(bus) => {
                let outboxes = bus.outboxes()?;
                let Some(d) = outboxes.get(outbox) else {
                    return Ok((0, Acked::Nothing));
                };
                // One counter for all of the outbox's topics: the oldest unhandled
                // event of any topic bounds them all (conservative, and cheap).
                let acked = match d.pending.keys().next() {
                    Some(oldest) => Acked::Below(StreamPos::of_counter(*oldest)),
                    None => Acked::All,
                };
                Ok((d.counter, acked))
            }
            EventBus::Redis(bus) => {
                let mut conn = bus.conn.clone();
                let reply: Vec<String> = redis::Script::new(ACKED_SCRIPT)
                    .key(bus.counter_key(outbox))
                    .key(bus.stream_key(topic))
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let counter = reply
                    .first()
                    .and_then(|c| c.parse().ok())
                    .ok_or("outbox counter missing")?;
                if reply.get(1).map(String::as_str) != Some("ok") {
                    return Ok((counter, Acked::Nothing));
                }
                let mut below: Option<StreamPos> = None;
                for group in reply[2..].chunks(2) {
                    let [last, oldest] = group else {
                        return Err("malformed consumer group reply".into());
                    };
                    // A group has acknowledged everything before its oldest pending
                    // entry, or, with none pending, everything it was given.
                    let acked = if oldest.is_empty() {
                        StreamPos::parse(last).map(StreamPos::next)
                    } else {
                        StreamPos::parse(oldest)
                    }
                    .ok_or_else(|| format!("stream ids {last} {oldest}"))?;
                    below = Some(below.map_or(acked, |b| b.min(acked)));
                }
                Ok((counter, below.map_or(Acked::All, Acked::Below)))
            }
        }
    }

    /// Drops what every group acknowledged from `topic`'s stream, keeping at least the
    /// last hour (Redis; the in-process bus keeps a bounded history anyway). Exact, not
    /// `~`: each turn removes only what aged out since the last, and approximate
    /// trimming would leave a small stream untouched for good.
    pub async fn trim(&self, topic: &str, acked: &Acked) -> Result<(), String> {
        let EventBus::Redis(bus) = self else {
            return Ok(());
        };
        let retention = u64::try_from(STREAM_RETENTION.as_millis()).unwrap_or(u64::MAX);
        let horizon = chrono::Utc::now()
            .timestamp_millis()
            .unsigned_abs()
            .saturating_sub(retention);
        let horizon = StreamPos {
            ms: horizon,
            seq: 0,
        };
        let min_id = match acked {
            Acked::Nothing => return Ok(()),
            Acked::Below(pos) => (*pos).min(horizon),
            Acked::All => horizon,
        };
        let mut conn = bus.conn.clone();
        redis::cmd("XTRIM")
            .arg(bus.stream_key(topic))
            .arg("MINID")
            .arg(min_id.redis())
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Makes sure consumer `group` exists on `topic` (Redis), so events published before
    /// its first consumer starts wait for it; consumers create their groups themselves.
    pub async fn ensure_group(&self, topic: &str, group: &str) -> Result<(), String> {
        match self {
            EventBus::InProcess(_) => Ok(()),
            EventBus::Redis(bus) => {
                let mut conn = bus.conn.clone();
                create_group(&mut conn, &bus.stream_key(topic), group).await
            }
        }
    }

    /// Runs `handler` for every event of `topics`, once per consumer `group` across all
    /// processes of that group. A failed handler is retried with back-off.
    pub fn spawn_consumer(&self, group: &str, topics: &[&str], handler: Handler) -> JoinHandle<()> {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        match self {
            EventBus::InProcess(bus) => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                if let Ok(mut groups) = bus.groups.lock() {
                    for (past, _) in groups
                        .history
                        .iter()
                        .filter(|(e, _)| topics.contains(&e.topic))
                    {
                        let _ = tx.send((past.clone(), None));
                    }
                    groups.subscribers.push((topics, tx));
                }
                let group = group.to_string();
                tokio::spawn(async move {
                    // Events waiting for this consumer: read by `/metrics`.
                    let waiting = Arc::new(std::sync::atomic::AtomicI64::new(0));
                    let _lag = lag_sampler(&group, {
                        let waiting = waiting.clone();
                        move || {
                            let n = waiting.load(std::sync::atomic::Ordering::Relaxed);
                            Box::pin(async move { n })
                        }
                    });
                    while let Some((event, ack)) = rx.recv().await {
                        let queued = i64::try_from(rx.len()).unwrap_or(i64::MAX);
                        waiting.store(queued + 1, std::sync::atomic::Ordering::Relaxed);
                        handle_with_retry(&group, &handler, event).await;
                        if let Some(ack) = ack {
                            ack.done();
                        }
                        let queued = i64::try_from(rx.len()).unwrap_or(i64::MAX);
                        waiting.store(queued, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            }
            EventBus::Redis(bus) => {
                let bus = bus.clone();
                let group = group.to_string();
                tokio::spawn(async move {
                    let _lag = lag_sampler(&group, {
                        let (bus, group) = (bus.clone(), group.clone());
                        let keys: Vec<String> = topics.iter().map(|t| bus.stream_key(t)).collect();
                        move || {
                            let (bus, group, keys) = (bus.clone(), group.clone(), keys.clone());
                            Box::pin(async move { bus.group_lag(&group, &keys).await })
                        }
                    });
                    bus.consume(group, topics, handler).await
                })
            }
        }
    }
}

/// Reads a consumer group's lag for `/metrics` while the returned guard lives.
fn lag_sampler(
    group: &str,
    read: impl Fn() -> futures::future::BoxFuture<'static, i64> + Send + Sync + 'static,
) -> crate::metrics::SamplerGuard {
    let group = group.to_string();
    crate::metrics::add_sampler(Arc::new(move || {
        let (lag, group) = (read(), group.clone());
        Box::pin(async move {
            vec![crate::metrics::Reading {
                name: "shop_events_consumer_lag",
                help: "Events a consumer group has not handled yet",
                labels: vec![("group", group)],
                value: lag.await,
            }]
        })
    }))
}

fn count_published(events: &[Event]) {
    let published = &crate::metrics::process().events_published;
    for event in events {
        published.with_label_values(&[&event.topic]).inc();
    }
}

async fn handle_with_retry(group: &str, handler: &Handler, event: Event) {
    let span = tracing::info_span!(
        "event.handle",
        otel.kind = "consumer",
        messaging.destination.name = %event.topic,
        messaging.consumer.group.name = %group,
    );
    if let Some(parent) = &event.traceparent {
        crate::telemetry::continue_from(&span, parent);
    }
    handle_traced(group, handler, event).instrument(span).await
}

async fn handle_traced(group: &str, handler: &Handler, event: Event) {
    let mut delay = Duration::from_millis(50);
    let handled = &crate::metrics::process().events_handled;
    for attempt in 1.. {
        match handler(event.clone()).await {
            Ok(()) => {
                handled.with_label_values(&[group, "ok"]).inc();
                return;
            }
            Err(e) => {
                handled.with_label_values(&[group, "failed"]).inc();
                tracing::warn!(topic = %event.topic, id = %event.id, attempt, error = %e, "event handler failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

impl RedisBus {
    fn stream_key(&self, topic: &str) -> String {
        format!("{}:events:{}", self.prefix, topic)
    }

    fn counter_key(&self, outbox: &str) -> String {
        format!("{}:outbox:{}", self.prefix, outbox)
    }

    /// A connection for blocking reads (`BLOCK` up to 5 s): the client's default response
    /// timeout (500 ms) would cut every idle read short and cost a reconnect each time.
    async fn blocking_connection(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())
    }

    /// Reads `topic`'s stream from its current end and hands every entry to this
    /// process's listeners; after a Redis outage it resumes after the last entry seen.
    async fn fan_out(self, topic: String, tx: broadcast::Sender<Event>, ready: Arc<AtomicBool>) {
        let key = self.stream_key(&topic);
        let mut last: Option<String> = None;
        loop {
            let result: Result<(), String> = async {
                let mut conn = self.blocking_connection().await?;
                if last.is_none() {
                    // Where the stream ends now: listeners get what is published after.
                    let newest: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                        .arg(&key)
                        .arg("+")
                        .arg("-")
                        .arg("COUNT")
                        .arg(1)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    let id = newest.ids.first().map(|e| e.id.clone());
                    last = Some(id.unwrap_or_else(|| "0-0".into()));
                    ready.store(true, Ordering::Release);
                }
                loop {
                    let from = last.clone().unwrap_or_else(|| "0-0".into());
                    let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
                        .arg("COUNT")
                        .arg(500)
                        .arg("BLOCK")
                        .arg(5000)
                        .arg("STREAMS")
                        .arg(&key)
                        .arg(&from)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    for stream in reply.map(|r| r.keys).unwrap_or_default() {
                        for entry in stream.ids {
                            let body: Option<String> = entry.get("event");
                            if let Some(event) =
                                body.and_then(|b| serde_json::from_str::<Event>(&b).ok())
                                && self.fanout.is_news(&event)
                            {
                                let _ = tx.send(event);
                            }
                            last = Some(entry.id);
                        }
                    }
                }
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(topic, error = %e, "redis fan-out reader failed; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Entries of `keys` that `group` has not acknowledged: read but unacknowledged
    /// (pending) plus not yet read (Redis's `lag`, which it may not know after a trim:
    /// then only pending counts).
    async fn group_lag(&self, group: &str, keys: &[String]) -> i64 {
        let mut conn = self.conn.clone();
        let mut total = 0;
        for key in keys {
            let groups: redis::RedisResult<Vec<std::collections::HashMap<String, redis::Value>>> =
                redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(key)
                    .query_async(&mut conn)
                    .await;
            let Ok(groups) = groups else { continue };
            let number = |v: Option<&redis::Value>| -> i64 {
                v.and_then(|v| redis::from_redis_value::<i64>(v.clone()).ok())
                    .unwrap_or(0)
            };
            for g in groups {
                let name = g
                    .get("name")
                    .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok());
                if name.as_deref() == Some(group) {
                    total += number(g.get("pending")) + number(g.get("lag"));
                }
            }
        }
        total
    }

    async fn consume(self, group: String, topics: Vec<String>, handler: Handler) {
        let consumer = format!("{}-{}", group, crate::ids::new_id());
        let keys: Vec<String> = topics.iter().map(|t| self.stream_key(t)).collect();
        loop {
            match self.consume_once(&group, &consumer, &keys, &handler).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "redis event consumer failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn consume_once(
        &self,
        group: &str,
        consumer: &str,
        keys: &[String],
        handler: &Handler,
    ) -> Result<(), String> {
        let mut conn = self.blocking_connection().await?;
        for key in keys {
            create_group(&mut conn, key, group).await?;
        }
        let claim_every = (self.claim_after / 2).min(Duration::from_secs(5));
        let mut next_claim = tokio::time::Instant::now();
        // First our own pending entries (delivered before a crash, never acknowledged), then new ones.
        let mut start = "0";
        loop {
            if tokio::time::Instant::now() >= next_claim {
                next_claim = tokio::time::Instant::now() + claim_every;
                for key in keys {
                    self.claim_abandoned(&mut conn, key, group, consumer, handler)
                        .await?;
                }
            }
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(group)
                .arg(consumer)
                .arg("COUNT")
                .arg(100);
            if start == ">" {
                let block = u64::try_from(claim_every.as_millis())
                    .unwrap_or(2000)
                    .clamp(1, 2000);
                cmd.arg("BLOCK").arg(block);
            }
            cmd.arg("STREAMS");
            for key in keys {
                cmd.arg(key);
            }
            for _ in keys {
                cmd.arg(start);
            }
            let reply: redis::streams::StreamReadReply = match cmd
                .query_async::<Option<redis::streams::StreamReadReply>>(&mut conn)
                .await
            {
                Ok(Some(r)) => r,
                Ok(None) => redis::streams::StreamReadReply { keys: vec![] },
                Err(e) => return Err(e.to_string()),
            };
            let mut seen = 0;
            for stream in reply.keys {
                for entry in stream.ids {
                    seen += 1;
                    handle_entry(&mut conn, &stream.key, group, &entry, handler).await?;
                }
            }
            if start == "0" && seen == 0 {
                start = ">";
            }
        }
    }

    /// Takes over entries another consumer of `group` was given but has not
    /// acknowledged for [`RedisBus::claim_after`] (its process died), and handles them.
    async fn claim_abandoned(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        key: &str,
        group: &str,
        consumer: &str,
        handler: &Handler,
    ) -> Result<(), String> {
        let idle = u64::try_from(self.claim_after.as_millis()).unwrap_or(u64::MAX);
        let mut from = "0-0".to_string();
        // Bounded: a huge backlog is taken over a few hundred entries per pass.
        for _ in 0..5 {
            let reply: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(key)
                .arg(group)
                .arg(consumer)
                .arg(idle)
                .arg(&from)
                .arg("COUNT")
                .arg(100)
                .query_async(conn)
                .await
                .map_err(|e| e.to_string())?;
            if !reply.claimed.is_empty() {
                tracing::info!(
                    stream = key,
                    group,
                    taken = reply.claimed.len(),
                    "took over events another consumer left unacknowledged"
                );
            }
            for entry in &reply.claimed {
                handle_entry(conn, key, group, entry, handler).await?;
            }
            if reply.next_stream_id == "0-0" {
                break;
            }
            from = reply.next_stream_id;
        }
        Ok(())
    }
}

/// Creates `group` on the stream `key` from its start, unless it exists.
async fn create_group<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    key: &str,
    group: &str,
) -> Result<(), String> {
    let created: Result<String, redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// Runs the handler on one stream entry (until it succeeds) and acknowledges it; an
/// entry that is not an event is acknowledged and skipped.
async fn handle_entry(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    group: &str,
    entry: &redis::streams::StreamId,
    handler: &Handler,
) -> Result<(), String> {
    let body: Option<String> = entry.get("event");
    if let Some(event) = body.and_then(|b| serde_json::from_str::<Event>(&b).ok()) {
        handle_with_retry(group, handler, event).await;
    }
    redis::cmd("XACK")
        .arg(key)
        .arg(group)
        .arg(&entry.id)
        .query_async::<i64>(conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A domain's outbox table; events written here in a transaction are published by
/// [`spawn_relay`] after commit, and stay until every consumer group has acknowledged
/// them, so a bus that loses events (Redis restarting without its data, a process
/// ending with its in-process bus) gets them again. Next to it live the domain's
/// per-aggregate sequence counters (`<domain>_event_sequences`) and its inbox of
/// processed events (`<domain>_inbox`, see [`Inbox`]).
#[derive(Clone)]
pub struct Outbox {
    table: &'static str,
    sequences: String,
    /// The domain's inbox, which the relay keeps pruned.
    inbox: Inbox,
    wake: Arc<Notify>,
    /// When the relay next looks for acknowledged events to remove.
    next_prune: Arc<Mutex<tokio::time::Instant>>,
}

/// How often the relay removes acknowledged events (and trims streams).
const PRUNE_EVERY: Duration = Duration::from_millis(500);

/// How long an inbox remembers a processed event: far longer than any redelivery.
const INBOX_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(7);

impl Outbox {
    /// `table` is `<domain>_outbox`.
    pub fn new(table: &'static str) -> Self {
        let domain = table.strip_suffix("_outbox").unwrap_or(table);
        Outbox {
            table,
            sequences: format!("{domain}_event_sequences"),
            inbox: Inbox::new(domain),
            wake: Arc::new(Notify::new()),
            next_prune: Arc::new(Mutex::new(tokio::time::Instant::now())),
        }
    }

    /// Adds an event about `aggregate` to the outbox inside the caller's transaction,
    /// numbered after the aggregate's previous event. Writers of one aggregate already
    /// serialise on its row, so the counter row adds no contention of its own.
    pub async fn write<C: ConnectionTrait>(
        &self,
        conn: &C,
        topic: &str,
        aggregate: &str,
        payload: serde_json::Value,
    ) -> Result<(), DbErr> {
        self.write_all(conn, aggregate, vec![(topic, payload)])
            .await
    }

    /// [`Outbox::write`] for several events of one aggregate, numbered in the order
    /// given, in three statements however many there are.
    pub async fn write_all<C: ConnectionTrait>(
        &self,
        conn: &C,
        aggregate: &str,
        events: Vec<(&str, serde_json::Value)>,
    ) -> Result<(), DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        let count = events.len() as i64;
        let first = self.take_sequence(conn, aggregate, count).await? - count + 1;
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; events.len()].join(", ");
        let sql = format!(
            "INSERT INTO {} (event_id, topic, payload, created_at, aggregate, sequence, \
             traceparent) VALUES {rows}",
            self.table
        );
        let now = chrono::Utc::now().to_rfc3339();
        let traceparent = crate::telemetry::current_traceparent();
        let mut values: Vec<Value> = Vec::with_capacity(events.len() * 7);
        for (i, (topic, payload)) in events.into_iter().enumerate() {
            values.extend([
                crate::ids::new_id().into(),
                topic.to_string().into(),
                payload.to_string().into(),
                now.clone().into(),
                aggregate.to_string().into(),
                (first + i as i64).into(),
                traceparent.clone().into(),
            ]);
        }
        conn.execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            values,
        ))
        .await?;
        Ok(())
    }

    /// Reserves `count` sequence numbers of `aggregate`; answers the last of them.
    async fn take_sequence<C: ConnectionTrait>(
        &self,
        conn: &C,
        aggregate: &str,
        count: i64,
    ) -> Result<i64, DbErr> {
        let backend = conn.get_database_backend();
        let values = [Value::from(aggregate), count.into(), count.into()];
        // One upsert: an UPDATE that finds no row and then an INSERT would take a gap
        // lock first on MySQL, and two new aggregates' transactions deadlock on it.
        if backend != sea_orm::DbBackend::MySql {
            // SQLite answers the new value in the same statement.
            let upsert = format!(
                "INSERT INTO {} (aggregate, last) VALUES (?, ?) \
                 ON CONFLICT (aggregate) DO UPDATE SET last = last + ? RETURNING last",
                self.sequences
            );
            let row = conn
                .query_one_raw(Statement::from_sql_and_values(backend, upsert, values))
                .await?
                .ok_or_else(|| DbErr::RecordNotFound(format!("sequence of {aggregate}")))?;
            return row.try_get("", "last");
        }
        // MySQL has no RETURNING; `LAST_INSERT_ID(expr)` hands the new value back in
        // the statement's own reply, as it does for a sequence table in MySQL's manual.
        let upsert = format!(
            "INSERT INTO {} (aggregate, last) VALUES (?, LAST_INSERT_ID(?)) \
             ON DUPLICATE KEY UPDATE last = LAST_INSERT_ID(last + ?)",
            self.sequences
        );
        let done = conn
            .execute_raw(Statement::from_sql_and_values(backend, upsert, values))
            .await?;
        i64::try_from(done.last_insert_id())
            .ok()
            .filter(|last| *last >= count)
            .ok_or_else(|| DbErr::Custom(format!("sequence of {aggregate}: no value back")))
    }

    /// Tells the relay that committed events are waiting; call after commit.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// One relay turn: publishes what is in the outbox now, oldest first, and removes
    /// what every consumer group has acknowledged; returns how many events went out.
    /// On MySQL the replicas of a subgraph take turns (a named lock), so events leave in
    /// order and once; a relay that finds the lock taken does nothing.
    pub async fn relay_once(
        &self,
        db: &DatabaseConnection,
        bus: &EventBus,
    ) -> Result<usize, String> {
        let backend = db.get_database_backend();
        let err = |e: DbErr| e.to_string();
        // Most turns find nothing to do; they should not take any lock for that. Rows
        // stay after publishing until acknowledged, so "any row" would be true nearly
        // always under load: only rows not on the bus (never published, or published
        // to a bus that has since lost them) call for a turn, or pruning falling due.
        let prune = self.prune_due();
        let waiting = if prune {
            db.query_one_raw(Statement::from_string(
                backend,
                format!("SELECT id FROM {} LIMIT 1", self.table),
            ))
            .await
        } else {
            let counter = bus.outbox_counter(self.table).await?;
            db.query_one_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT id FROM {} WHERE {NOT_ON_BUS} LIMIT 1", self.table),
                [Value::from(counter)],
            ))
            .await
        }
        .map_err(err)?;
        if waiting.is_none() {
            return Ok(0);
        }
        // The MySQL lock belongs to a connection: a transaction keeps one for the whole
        // turn. On SQLite the write lock taken at BEGIN serialises relays the same way.
        let txn = crate::db::begin_write(db).await.map_err(err)?;
        let lock_name = format!("{}.relay", self.table);
        if backend == sea_orm::DbBackend::MySql {
            let got = txn
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    "SELECT GET_LOCK(CONCAT(DATABASE(), '.', ?), 0) AS got",
                    [Value::from(lock_name.as_str())],
                ))
                .await
                .map_err(err)?
                .and_then(|r| r.try_get::<Option<i64>>("", "got").ok().flatten());
            if got != Some(1) {
                return Ok(0);
            }
        }
        let result = self.turn(&txn, bus, prune).await;
        if backend == sea_orm::DbBackend::MySql {
            // Commit before letting go of the lock: a relay that took it while this
            // turn's records were still invisible would publish the same rows again.
            // (The transaction's own commit below then has nothing left to do.)
            txn.execute_unprepared("COMMIT").await.map_err(err)?;
            let _ = txn
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    "SELECT RELEASE_LOCK(CONCAT(DATABASE(), '.', ?))",
                    [Value::from(lock_name.as_str())],
                ))
                .await;
        }
        txn.commit().await.map_err(err)?;
        result
    }

    async fn turn(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        bus: &EventBus,
        prune: bool,
    ) -> Result<usize, String> {
        // Read under the turn's lock: another replica's turn may have moved it.
        let counter = bus.outbox_counter(self.table).await?;
        let (sent, counter) = self.publish_batch(txn, bus, counter).await?;
        if prune {
            self.prune_acknowledged(txn, bus, counter).await?;
        }
        Ok(sent)
    }

    fn prune_due(&self) -> bool {
        let Ok(mut next) = self.next_prune.lock() else {
            return false;
        };
        let now = tokio::time::Instant::now();
        if now < *next {
            return false;
        }
        *next = now + PRUNE_EVERY;
        true
    }

    /// Publishes up to [`RELAY_BATCH`] events not on the bus, oldest first, in one call
    /// to the bus, and records where each went in one statement. Not on the bus: never
    /// published, or published above the outbox's counter on the bus (`delivery >
    /// counter`: the bus came back without them, as Redis does after a restart without
    /// persistence), which go out again. A failure leaves them for the next turn.
    /// Returns how many went out and the outbox's counter on the bus after them.
    async fn publish_batch(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        bus: &EventBus,
        mut counter: i64,
    ) -> Result<(usize, i64), String> {
        let backend = txn.get_database_backend();
        let select = format!(
            "SELECT id, event_id, topic, payload, created_at, aggregate, sequence, delivery, \
             traceparent \
             FROM {} WHERE {NOT_ON_BUS} ORDER BY id LIMIT {RELAY_BATCH}",
            self.table
        );
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                select,
                [Value::from(counter)],
            ))
            .await
            .map_err(|e| e.to_string())?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        let mut lost = 0;
        for row in rows {
            ids.push(row.try_get::<i64>("", "id").map_err(|e| e.to_string())?);
            let payload: String = row.try_get("", "payload").map_err(|e| e.to_string())?;
            if row
                .try_get::<Option<i64>>("", "delivery")
                .map_err(|e| e.to_string())?
                .is_some()
            {
                lost += 1;
            }
            events.push(Event {
                id: row.try_get("", "event_id").map_err(|e| e.to_string())?,
                topic: row.try_get("", "topic").map_err(|e| e.to_string())?,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                occurred_at: row.try_get("", "created_at").map_err(|e| e.to_string())?,
                aggregate: row.try_get("", "aggregate").map_err(|e| e.to_string())?,
                sequence: row.try_get("", "sequence").map_err(|e| e.to_string())?,
                traceparent: row.try_get("", "traceparent").ok().flatten(),
            });
        }
        if events.is_empty() {
            return Ok((0, counter));
        }
        if lost > 0 {
            tracing::warn!(
                table = self.table,
                lost,
                "the bus lost published events; publishing them again"
            );
        }
        let placed = match bus.publish_outbox(self.table, counter, &events).await? {
            Placed::At(placed) => placed,
            // The bus lost events since this turn began: the next turn resends them.
            Placed::CounterMoved => return Ok((0, counter)),
        };
        let placed: Vec<(i64, String, i64)> = ids
            .into_iter()
            .zip(placed)
            .map(|(id, (pos, delivery))| (id, pos.stored(), delivery))
            .collect();
        if let Some((_, _, last)) = placed.last() {
            counter = *last;
        }
        record_deliveries(txn, self.table, &placed).await?;
        Ok((placed.len(), counter))
    }

    /// Removes the published events every consumer group has acknowledged, topic by
    /// topic, and trims the bus's streams to match. `counter` is the outbox's counter
    /// on the bus as this turn left it: if the bus says otherwise it lost events, and
    /// nothing is removed until the next turn has published them again.
    async fn prune_acknowledged(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        bus: &EventBus,
        counter: i64,
    ) -> Result<(), String> {
        let rows = txn
            .query_all_raw(Statement::from_string(
                txn.get_database_backend(),
                format!(
                    "SELECT id, topic, stream_id FROM {} WHERE delivery IS NOT NULL \
                     ORDER BY id LIMIT 1000",
                    self.table
                ),
            ))
            .await
            .map_err(|e| e.to_string())?;
        let mut by_topic: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        for row in rows {
            let id: i64 = row.try_get("", "id").map_err(|e| e.to_string())?;
            let topic: String = row.try_get("", "topic").map_err(|e| e.to_string())?;
            let pos: String = row.try_get("", "stream_id").map_err(|e| e.to_string())?;
            by_topic.entry(topic).or_default().push((id, pos));
        }
        let mut done = Vec::new();
        for (topic, rows) in by_topic {
            let (now, acked) = bus.acked(self.table, &topic).await?;
            if now != counter {
                return Ok(());
            }
            match &acked {
                Acked::Nothing => continue,
                Acked::Below(pos) => {
                    let below = pos.stored();
                    done.extend(rows.iter().filter(|(_, p)| *p < below).map(|(id, _)| *id));
                }
                Acked::All => done.extend(rows.iter().map(|(id, _)| *id)),
            }
            bus.trim(&topic, &acked).await?;
        }
        if !done.is_empty() {
            by_ids(txn, &format!("DELETE FROM {}", self.table), &done).await?;
        }
        Ok(())
    }
}

/// Runs `statement` (an UPDATE or DELETE without its WHERE) on the rows `ids`, in
/// chunks: rows are changed by primary key only, so MySQL locks nothing else.
async fn by_ids(
    txn: &sea_orm::DatabaseTransaction,
    statement: &str,
    ids: &[i64],
) -> Result<(), String> {
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let values: Vec<Value> = chunk.iter().map(|id| Value::from(*id)).collect();
        txn.execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            format!("{statement} WHERE id IN ({marks})"),
            values,
        ))
        .await
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Records where each published row went (`(id, stream position, delivery)`), in one
/// statement: a turn's round trips to the database cost more than its events.
async fn record_deliveries(
    txn: &sea_orm::DatabaseTransaction,
    table: &str,
    placed: &[(i64, String, i64)],
) -> Result<(), String> {
    if placed.is_empty() {
        return Ok(());
    }
    let whens = vec!["WHEN ? THEN ?"; placed.len()].join(" ");
    let marks = vec!["?"; placed.len()].join(", ");
    let mut values: Vec<Value> = Vec::with_capacity(placed.len() * 5);
    for (id, pos, _) in placed {
        values.push(Value::from(*id));
        values.push(Value::from(pos.as_str()));
    }
    for (id, _, delivery) in placed {
        values.push(Value::from(*id));
        values.push(Value::from(*delivery));
    }
    values.extend(placed.iter().map(|(id, _, _)| Value::from(*id)));
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        format!(
            "UPDATE {table} SET stream_id = CASE id {whens} END, \
             delivery = CASE id {whens} END WHERE id IN ({marks})"
        ),
        values,
    ))
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// A domain's record of the events its consumers have processed, so a redelivered
/// event has no second effect. Claim the event inside the transaction that applies it:
/// both commit together, or neither does.
#[derive(Clone)]
pub struct Inbox {
    table: String,
}

impl Inbox {
    /// `domain`'s inbox (`<domain>_inbox`).
    pub fn new(domain: &str) -> Self {
        Inbox {
            table: format!("{domain}_inbox"),
        }
    }

    /// Records that `consumer` processes `event` in `txn`; false when it already has.
    pub async fn claim(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        consumer: &str,
        event: &Event,
    ) -> Result<bool, DbErr> {
        let insert = Statement::from_sql_and_values(
            txn.get_database_backend(),
            format!(
                "INSERT INTO {} (consumer, event_id, processed_at) VALUES (?, ?, ?)",
                self.table
            ),
            [
                Value::from(consumer),
                Value::from(event.id.as_str()),
                Value::from(chrono::Utc::now().to_rfc3339()),
            ],
        );
        match txn.execute_raw(insert).await {
            Ok(_) => Ok(true),
            Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Forgets processed events older than the inbox's retention; answers how many.
    pub async fn prune(&self, db: &DatabaseConnection) -> Result<u64, String> {
        let cutoff = (chrono::Utc::now() - INBOX_RETENTION).to_rfc3339();
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            format!("DELETE FROM {} WHERE processed_at < ?", self.table),
            [Value::from(cutoff)],
        ))
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| e.to_string())
    }
}

/// Publishes outbox events until the process ends: woken after each commit, and
/// polling once a second for events written by other processes or before a crash, and
/// for acknowledgements. Once an hour it prunes the domain's inbox.
pub fn spawn_relay(db: DatabaseConnection, outbox: Outbox, bus: EventBus) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _backlog = backlog_sampler(&db, outbox.table);
        let mut next_inbox_prune = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_inbox_prune {
                next_inbox_prune += Duration::from_secs(3600);
                if let Err(e) = outbox.inbox.prune(&db).await {
                    tracing::warn!(table = outbox.inbox.table, error = %e, "inbox pruning failed");
                }
            }
            match outbox.relay_once(&db, &bus).await {
                // A full batch may have left more behind.
                Ok(n) if n >= RELAY_BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(table = outbox.table, error = %e, "outbox relay failed"),
            }
            if tokio::time::timeout(Duration::from_secs(1), outbox.wake.notified())
                .await
                .is_ok()
            {
                // Woken by a commit: the commits of the next moments go out in the same
                // turn. A turn costs several statements whatever it carries, and under
                // load one per commit cost more than the events themselves.
                tokio::time::sleep(RELAY_GATHER).await;
            }
        }
    })
}

/// Reads how many events an outbox holds for `/metrics` while the guard lives: those
/// not yet published and those some consumer group has not acknowledged.
fn backlog_sampler(db: &DatabaseConnection, table: &'static str) -> crate::metrics::SamplerGuard {
    let db = db.clone();
    crate::metrics::add_sampler(Arc::new(move || {
        let db = db.clone();
        Box::pin(async move {
            let count = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    format!("SELECT COUNT(*) AS n FROM {table}"),
                ))
                .await
                .ok()
                .flatten()
                .and_then(|row| row.try_get::<i64>("", "n").ok());
            count
                .map(|n| crate::metrics::Reading {
                    name: "shop_events_outbox_backlog",
                    help: "Events in an outbox that some consumer group has not handled yet",
                    labels: vec![("outbox", table.to_string())],
                    value: n,
                })
                .into_iter()
                .collect()
        })
    }))
}

/// Outbox rows the bus does not have, given its counter: never published, or published
/// above it (to a bus that has since lost them).
const NOT_ON_BUS: &str = "delivery IS NULL OR delivery > ?";

/// The most events one relay turn publishes.
const RELAY_BATCH: usize = 200;

/// How long a woken relay waits for more commits before its turn.
const RELAY_GATHER: Duration = Duration::from_millis(5);

/// Helper for writing a handler from an async closure over a cloned context.
pub fn handler<C, F, Fut>(ctx: C, f: F) -> Handler
where
    C: Clone + Send + Sync + 'static,
    F: Fn(C, Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |event| {
        let ctx = ctx.clone();
        let f = f.clone();
        Box::pin(async move { f(ctx, event).await })
    })
}

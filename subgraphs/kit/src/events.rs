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
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
pub type Handler = Arc<dyn Fn(Event) -> HandlerFuture + Send + Sync>;

/// The event bus; cheap to clone.
#[derive(Clone)]
pub enum EventBus {
    InProcess(Arc<InProcessBus>),
    Redis(RedisBus),
}

#[derive(Default)]
pub struct InProcessBus {
    /// Consumer groups and what they listen to, plus the recent events: a group that
    /// starts after an event was published still gets it (as a Redis consumer group
    /// created at the stream's start does), so start-up order loses nothing.
    groups: Mutex<Groups>,
    fanout: Fanout,
}

#[derive(Default)]
struct Groups {
    subscribers: Vec<(Vec<String>, mpsc::UnboundedSender<Event>)>,
    history: std::collections::VecDeque<Event>,
}

/// How many recent events the in-process bus keeps for consumers that start late.
const IN_PROCESS_HISTORY: usize = 20_000;

#[derive(Clone)]
pub struct RedisBus {
    conn: redis::aio::ConnectionManager,
    client: redis::Client,
    prefix: String,
    fanout: Arc<Fanout>,
}

/// Live listeners of this process (subscriptions), one broadcast channel per topic.
/// Unlike consumer groups, every listener sees every event, and only while listening.
#[derive(Default)]
pub struct Fanout {
    /// Per topic: the channel, and whether events reach it yet (a Redis reader first
    /// learns where the stream ends).
    topics: Mutex<HashMap<String, Topic>>,
}

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

    fn send(&self, event: &Event) {
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
        self.topics
            .lock()
            .map(|t| {
                t.values()
                    .filter(|(_, ready)| ready.load(Ordering::Acquire))
                    .map(|(tx, _)| tx.receiver_count())
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
        Ok(EventBus::Redis(RedisBus {
            conn,
            client,
            prefix: prefix.to_string(),
            fanout: Arc::new(Fanout::default()),
        }))
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

    pub async fn publish(&self, event: &Event) -> Result<(), String> {
        match self {
            EventBus::InProcess(bus) => {
                let mut groups = bus
                    .groups
                    .lock()
                    .map_err(|_| "bus lock poisoned".to_string())?;
                groups.subscribers.retain(|(topics, tx)| {
                    if topics.iter().any(|t| t == &event.topic) {
                        tx.send(event.clone()).is_ok()
                    } else {
                        !tx.is_closed()
                    }
                });
                if groups.history.len() == IN_PROCESS_HISTORY {
                    groups.history.pop_front();
                }
                groups.history.push_back(event.clone());
                drop(groups);
                bus.fanout.send(event);
                Ok(())
            }
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

    /// Runs `handler` for every event of `topics`, once per consumer `group` across all
    /// processes of that group. A failed handler is retried with back-off.
    pub fn spawn_consumer(&self, group: &str, topics: &[&str], handler: Handler) -> JoinHandle<()> {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        match self {
            EventBus::InProcess(bus) => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                if let Ok(mut groups) = bus.groups.lock() {
                    for past in groups.history.iter().filter(|e| topics.contains(&e.topic)) {
                        let _ = tx.send(past.clone());
                    }
                    groups.subscribers.push((topics, tx));
                }
                tokio::spawn(async move {
                    while let Some(event) = rx.recv().await {
                        handle_with_retry(&handler, event).await;
                    }
                })
            }
            EventBus::Redis(bus) => {
                let bus = bus.clone();
                let group = group.to_string();
                tokio::spawn(async move { bus.consume(group, topics, handler).await })
            }
        }
    }
}

async fn handle_with_retry(handler: &Handler, event: Event) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1.. {
        match handler(event.clone()).await {
            Ok(()) => return,
            Err(e) => {
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
            let created: Result<String, redis::RedisError> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(key)
                .arg(group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            if let Err(e) = created
                && e.code() != Some("BUSYGROUP")
            {
                return Err(e.to_string());
            }
        }
        // First our own pending entries (delivered before a crash, never acknowledged), then new ones.
        let mut start = "0";
        loop {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(group)
                .arg(consumer)
                .arg("COUNT")
                .arg(100);
            if start == ">" {
                cmd.arg("BLOCK").arg(2000);
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
                    let body: Option<String> = entry.get("event");
                    if let Some(event) = body.and_then(|b| serde_json::from_str::<Event>(&b).ok()) {
                        handle_with_retry(handler, event).await;
                    }
                    let _: i64 = redis::cmd("XACK")
                        .arg(&stream.key)
                        .arg(group)
                        .arg(&entry.id)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            if start == "0" && seen == 0 {
                start = ">";
            }
        }
    }
}

/// A domain's outbox table; events written here in a transaction are published by
/// [`spawn_relay`] after commit. Next to it live the domain's per-aggregate sequence
/// counters (`<domain>_event_sequences`) and its inbox of processed events
/// (`<domain>_inbox`, see [`Inbox`]).
#[derive(Clone)]
pub struct Outbox {
    table: &'static str,
    sequences: String,
    wake: Arc<Notify>,
}

impl Outbox {
    /// `table` is `<domain>_outbox`.
    pub fn new(table: &'static str) -> Self {
        let domain = table.strip_suffix("_outbox").unwrap_or(table);
        Outbox {
            table,
            sequences: format!("{domain}_event_sequences"),
            wake: Arc::new(Notify::new()),
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
        let sequence = self.next_sequence(conn, aggregate).await?;
        let sql = format!(
            "INSERT INTO {} (event_id, topic, payload, created_at, aggregate, sequence) \
             VALUES (?, ?, ?, ?, ?, ?)",
            self.table
        );
        let values: Vec<Value> = vec![
            crate::ids::new_id().into(),
            topic.to_string().into(),
            payload.to_string().into(),
            chrono::Utc::now().to_rfc3339().into(),
            aggregate.to_string().into(),
            sequence.into(),
        ];
        conn.execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            sql,
            values,
        ))
        .await?;
        Ok(())
    }

    async fn next_sequence<C: ConnectionTrait>(
        &self,
        conn: &C,
        aggregate: &str,
    ) -> Result<i64, DbErr> {
        let backend = conn.get_database_backend();
        // One upsert: an UPDATE that finds no row and then an INSERT would take a gap
        // lock first on MySQL, and two new aggregates' transactions deadlock on it.
        let upsert = match backend {
            sea_orm::DbBackend::MySql => format!(
                "INSERT INTO {} (aggregate, last) VALUES (?, 1) \
                 ON DUPLICATE KEY UPDATE last = last + 1",
                self.sequences
            ),
            _ => format!(
                "INSERT INTO {} (aggregate, last) VALUES (?, 1) \
                 ON CONFLICT (aggregate) DO UPDATE SET last = last + 1",
                self.sequences
            ),
        };
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            upsert,
            [Value::from(aggregate)],
        ))
        .await?;
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT last FROM {} WHERE aggregate = ?", self.sequences),
                [Value::from(aggregate)],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("sequence of {aggregate}")))?;
        row.try_get("", "last")
    }

    /// Tells the relay that committed events are waiting; call after commit.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes what is in the outbox now, oldest first; returns how many events went
    /// out. On MySQL the replicas of a subgraph take turns (a named lock), so events
    /// leave in order and once; a relay that finds the lock taken publishes nothing.
    pub async fn relay_once(
        &self,
        db: &DatabaseConnection,
        bus: &EventBus,
    ) -> Result<usize, String> {
        let backend = db.get_database_backend();
        let err = |e: DbErr| e.to_string();
        // Most turns find nothing; they should not take any lock for that.
        let waiting = db
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT id FROM {} LIMIT 1", self.table),
            ))
            .await
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
        let result = self.publish_batch(&txn, bus).await;
        if backend == sea_orm::DbBackend::MySql {
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

    /// Publishes up to 200 events and deletes each once the bus has it. A failure stops
    /// the batch; what was not deleted goes out on the next turn.
    async fn publish_batch(
        &self,
        conn: &sea_orm::DatabaseTransaction,
        bus: &EventBus,
    ) -> Result<usize, String> {
        let backend = conn.get_database_backend();
        let select = format!(
            "SELECT id, event_id, topic, payload, created_at, aggregate, sequence FROM {} \
             ORDER BY id LIMIT 200",
            self.table
        );
        let rows = conn
            .query_all_raw(Statement::from_string(backend, select))
            .await
            .map_err(|e| e.to_string())?;
        let mut sent = 0;
        for row in rows {
            let id: i64 = row.try_get("", "id").map_err(|e| e.to_string())?;
            let payload: String = row.try_get("", "payload").map_err(|e| e.to_string())?;
            let event = Event {
                id: row.try_get("", "event_id").map_err(|e| e.to_string())?,
                topic: row.try_get("", "topic").map_err(|e| e.to_string())?,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                occurred_at: row.try_get("", "created_at").map_err(|e| e.to_string())?,
                aggregate: row.try_get("", "aggregate").map_err(|e| e.to_string())?,
                sequence: row.try_get("", "sequence").map_err(|e| e.to_string())?,
            };
            bus.publish(&event).await?;
            let delete = Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM {} WHERE id = ?", self.table),
                [Value::from(id)],
            );
            conn.execute_raw(delete).await.map_err(|e| e.to_string())?;
            sent += 1;
        }
        Ok(sent)
    }
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
}

/// Publishes outbox events until the process ends: woken after each commit, and
/// polling once a second for events written by other processes or before a crash.
pub fn spawn_relay(db: DatabaseConnection, outbox: Outbox, bus: EventBus) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match outbox.relay_once(&db, &bus).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(table = outbox.table, error = %e, "outbox relay failed"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), outbox.wake.notified()).await;
        }
    })
}

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

//! Database connections: MySQL (any MySQL-protocol engine) or SQLite, chosen by URL.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

/// Connections a MySQL pool opens by default: a process running one subgraph gets
/// them all; the all-in-one process divides them among its subgraphs (see
/// [`connect_with`]). MySQL's and MariaDB's default server limit is 151.
pub const DEFAULT_MYSQL_CONNECTIONS: u32 = 64;

/// Opens a pool for `url` with the default size. SQLite files are created when
/// missing and run in WAL mode with foreign keys enforced, so one writer never blocks
/// readers.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, DEFAULT_MYSQL_CONNECTIONS).await
}

/// Opens a pool for `url` of at most `max_connections` (MySQL; SQLite files keep
/// their own small pool). A request that finds every connection busy waits up to ten
/// seconds in line, then gets `SERVICE_UNAVAILABLE`.
pub async fn connect_with(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if url.starts_with("sqlite:") {
        // One connection per file. SQLite lets one writer in at a time, and a second
        // connection that finds the file locked waits in SQLite's busy handler, which
        // sleeps 1, 2, 5, 10... ms between tries: under concurrent writes that idles
        // the lock most of the time (checkouts ran at 185/s with p99 640 ms on 8
        // connections, 249/s with p99 180 ms on one). With one connection, requests
        // queue in the pool instead and the file is never locked against us. The
        // price: code must not wait on a second connection while it holds one (a
        // read on the pool inside a transaction would wait for itself).
        // Nothing can drop an in-process connection, so no ping before each use.
        opts.max_connections(1)
            .min_connections(1)
            .test_before_acquire(false);
        opts.map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // A statement in a transaction keeps a journal to undo itself; in a
                // file, that is a write and a read per page a bulk insert touches.
                .pragma("temp_store", "memory")
                // A checkpoint copies the log's pages into the file; SQLite's default
                // of every 1,000 pages copies the hot pages of a bulk write again and
                // again. Every 10,000 pages (about 40 MB of log) copies each once.
                .pragma("wal_autocheckpoint", "10000")
        });
    } else {
        // A ping before every use (the pool's default) is one more round trip per
        // statement outside a transaction; only a connection idle long enough for the
        // server or a proxy to have dropped it is tested first.
        opts.max_connections(max_connections.max(2))
            .min_connections(1)
            .test_before_acquire_if_idle_for(Duration::from_secs(30));
    }
    let mut db = Database::connect(opts).await?;
    db.set_metric_callback(crate::telemetry::record_query);
    Ok(db)
}

/// Read-only connections to a SQLite file that a writer holds.
pub const SQLITE_READERS: u32 = 4;

/// A pool for reads that need not see a transaction in progress: what a storefront
/// page asks for. On a SQLite file, a few read-only connections of their own: in WAL
/// mode a reader never waits for the writer, while the one writing connection (see
/// [`connect_with`]) holds a long batch, such as a catalog import's. Anything else (a
/// MySQL pool, in-memory SQLite, no database at all) gets `db` back: there reads never
/// queued behind writes, or no other connection can see the data.
pub fn read_pool(db: &DatabaseConnection) -> DatabaseConnection {
    use sea_orm::DatabaseConnectionType;
    let DatabaseConnectionType::SqlxSqlitePoolConnection(_) = &db.inner else {
        return db.clone();
    };
    let writer = db.get_sqlite_connection_pool();
    let options = (*writer.connect_options()).clone();
    // sqlx keeps whether a database is in memory to itself but for its Debug output.
    let name = options.get_filename().to_string_lossy();
    if name.contains(":memory:")
        || name.starts_with("file:sqlx-in-memory")
        || format!("{options:?}").contains("in_memory: true")
    {
        return db.clone();
    }
    // Read-only connections cannot create the file or change its journal mode; WAL is
    // a property of the file, set by the writer.
    let options = options.create_if_missing(false).read_only(true);
    let pool = sea_orm::sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(SQLITE_READERS)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .connect_lazy_with(options);
    let mut readers = sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
    readers.set_metric_callback(crate::telemetry::record_query);
    readers
}

/// Whether the database answers; used by `/ready`.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// The SQLite URL of a file in `dir` named after `name`.
pub fn sqlite_file_url(dir: &std::path::Path, name: &str) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.join(format!("{name}.sqlite")).display()
    )
}

/// Batches "load by id" lookups of any entity whose primary key is a string `id`, so an
/// entity resolver or a nested field costs one query per request, not one per object.
pub struct ByIdLoader<E> {
    db: DatabaseConnection,
    _entity: std::marker::PhantomData<fn() -> E>,
}

impl<E> ByIdLoader<E> {
    pub fn new(db: DatabaseConnection) -> Self {
        ByIdLoader {
            db,
            _entity: std::marker::PhantomData,
        }
    }
}

impl<E> async_graphql::dataloader::Loader<String> for ByIdLoader<E>
where
    E: sea_orm::EntityTrait,
    E::Model: Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, E::Model>, Self::Error> {
        use sea_orm::{ColumnTrait, Iterable, ModelTrait, PrimaryKeyToColumn, QueryFilter};
        let Some(pk) = E::PrimaryKey::iter().next() else {
            return Ok(Default::default());
        };
        let col = pk.into_column();
        let rows = E::find()
            .filter(col.is_in(keys.iter().cloned()))
            .all(&self.db)
            .await
            .map_err(|e| async_graphql::Error::from(crate::ApiError::from(e)))?;
        Ok(rows
            .into_iter()
            .filter_map(|m| match m.get(col) {
                sea_orm::Value::String(Some(id)) => Some((id.to_string(), m)),
                _ => None,
            })
            .collect())
    }
}

/// The time now as the database keeps it: our MySQL `TIMESTAMP` columns hold whole
/// seconds (SQLite keeps the text as given). A row answered as written, without
/// reading it back, carries the time a later read will show.
pub fn now_as_stored(conn: &impl ConnectionTrait) -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    let now = chrono::Utc::now();
    if conn.get_database_backend() == sea_orm::DbBackend::MySql {
        now.trunc_subsecs(0)
    } else {
        now
    }
}

/// Inserts a row whose every column is set and answers it as built. sea-orm's `insert`
/// reads the row back on MySQL (it has no `RETURNING`): a second statement, on the
/// busiest paths, for values the caller already has. Timestamps come back as given,
/// finer than a MySQL `TIMESTAMP` keeps them: use it for rows not shown as inserted.
pub async fn insert_known<A, C>(
    conn: &C,
    row: A,
) -> Result<<A::Entity as sea_orm::EntityTrait>::Model, DbErr>
where
    A: sea_orm::ActiveModelTrait
        + sea_orm::TryIntoModel<<A::Entity as sea_orm::EntityTrait>::Model>
        + Clone
        + Send,
    <A::Entity as sea_orm::EntityTrait>::Model: sea_orm::IntoActiveModel<A>,
    C: ConnectionTrait,
{
    use sea_orm::EntityTrait;
    let model = row.clone().try_into_model()?;
    A::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(model)
}

/// Begins a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails
/// with "database is locked" when another connection wrote in between, without waiting.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        db.begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
    } else {
        db.begin().await
    }
}

/// How long a DataLoader collects keys before it queries. async-graphql's default is
/// 1 ms; a list's resolvers queue their keys within microseconds, and on an entity
/// fetch the extra wait cost more than the query itself.
pub const LOADER_WINDOW: std::time::Duration = std::time::Duration::from_micros(200);

/// A DataLoader with our batching window (see [`LOADER_WINDOW`]). Its batch runs in
/// a task of its own, in the span of the resolver that asked first, so a traced
/// request's queries stay in its trace.
pub fn loader<T>(inner: T) -> async_graphql::dataloader::DataLoader<T>
where
    T: async_graphql::dataloader::Loader<String>,
{
    async_graphql::dataloader::DataLoader::new(inner, |batch| {
        tokio::spawn(tracing::Instrument::in_current_span(batch))
    })
    .delay(LOADER_WINDOW)
}

/// Whether the database refused `e`'s statement only because of other transactions:
/// chosen as a deadlock's victim (MySQL 1213, rolled back whole), a lock wait past
/// `innodb_lock_wait_timeout` (1205), or SQLite still locked after its busy timeout.
/// Running the whole transaction again is safe and usually succeeds.
pub fn is_transient(e: &DbErr) -> bool {
    let (DbErr::Exec(sea_orm::RuntimeErr::SqlxError(err))
    | DbErr::Query(sea_orm::RuntimeErr::SqlxError(err))
    | DbErr::Conn(sea_orm::RuntimeErr::SqlxError(err))) = e
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = err.as_ref() else {
        return false;
    };
    if let Some(my) = db.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        // Lock wait timeout, deadlock, and the server out of connections (a pool that
        // grows when another process holds the rest): all pass.
        return matches!(my.number(), 1205 | 1213 | 1040);
    }
    // SQLite's primary result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6); extended
    // codes carry the primary one in their low byte.
    db.code()
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// How many times a transaction is tried (the first time included) before its caller
/// gets `SERVICE_UNAVAILABLE`.
pub const TRANSACTION_ATTEMPTS: u32 = 5;

/// Runs `work` (a whole transaction: begin, statements, commit) and, when the database
/// gave up on it because of other transactions ([`is_transient`]), runs it again after
/// a short random pause that grows with each attempt, at most [`TRANSACTION_ATTEMPTS`]
/// times in all. A transaction rolled back by a deadlock wrote nothing, so the work must
/// only have effects through its transaction (or effects that are harmless twice,
/// such as waking the outbox).
pub async fn retrying<T, F, Fut>(what: &str, mut work: F) -> crate::error::ApiResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::error::ApiResult<T>>,
{
    let mut attempt = 1;
    loop {
        match work().await {
            Err(crate::error::ApiError::Database(e))
                if is_transient(&e) && attempt < TRANSACTION_ATTEMPTS =>
            {
                tracing::debug!(transaction = what, attempt, error = %e, "retrying");
                // 5–10 ms, then 10–20, 20–40, 40–80: apart so the losers do not meet again.
                let base = 5u64 << (attempt - 1);
                let jitter = getrandom::u64().unwrap_or(0) % base;
                tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether `e` is an insert that hit a unique key (the row exists already).
pub fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

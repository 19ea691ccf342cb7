//! Transactions that lose to other transactions (a deadlock, a lock wait timeout, a
//! busy SQLite file) are run again, a bounded number of times, and then refused with a
//! code a client can act on; real conflicts on MariaDB and SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use shop_kit::testing::{TestDb, cleanup, databases};
use shop_kit::{ApiError, ApiResult, ErrorCode};

async fn table(db: &DatabaseConnection) {
    db.execute_unprepared("CREATE TABLE kit_retry (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        .await
        .unwrap();
    db.execute_unprepared("INSERT INTO kit_retry (id, n) VALUES (1, 0), (2, 0)")
        .await
        .unwrap();
}

async fn bump<C: ConnectionTrait>(c: &C, id: i32) -> ApiResult<()> {
    c.execute_unprepared(&format!("UPDATE kit_retry SET n = n + 1 WHERE id = {id}"))
        .await?;
    Ok(())
}

async fn total(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST(SUM(n) AS SIGNED) AS s FROM kit_retry".to_string(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "s").unwrap()
}

/// Two transactions take the same two rows in opposite order, meeting in the middle on
/// their first attempt: MariaDB rolls one back as a deadlock's victim, and that one is
/// run again and succeeds. Both increments land, once each.
#[tokio::test]
async fn a_deadlock_victim_is_run_again_and_both_transactions_land() {
    let dbs = databases("kit_db_deadlock").await;
    for db in dbs.iter().filter(|d| d.label() == "mysql") {
        let conn = db.connect().await;
        table(&conn).await;
        let met = Arc::new(tokio::sync::Barrier::new(2));
        let attempts = Arc::new(AtomicU32::new(0));
        let run = |first: i32, second: i32| {
            let (conn, met, attempts) = (conn.clone(), met.clone(), attempts.clone());
            async move {
                let mut mine = 0;
                shop_kit::db::retrying("deadlock test", || {
                    mine += 1;
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let (conn, met, attempt) = (conn.clone(), met.clone(), mine);
                    async move {
                        let txn = conn.begin().await?;
                        bump(&txn, first).await?;
                        if attempt == 1 {
                            met.wait().await;
                        }
                        bump(&txn, second).await?;
                        txn.commit().await?;
                        Ok(())
                    }
                })
                .await
            }
        };
        let (a, b) = tokio::join!(run(1, 2), run(2, 1));
        a.expect("first transaction");
        b.expect("second transaction");
        assert_eq!(attempts.load(Ordering::SeqCst), 3, "one of them ran twice");
        assert_eq!(total(&conn).await, 4, "each transaction counted once");
    }
    cleanup(&dbs).await;
}

/// A row held by another transaction longer than the lock wait: each attempt times
/// out, the attempts stop at the bound, and the caller gets SERVICE_UNAVAILABLE (not
/// an internal error) with nothing written.
#[tokio::test]
async fn a_lock_held_too_long_ends_in_service_unavailable_after_bounded_attempts() {
    let dbs = databases("kit_db_lock_wait").await;
    for db in dbs.iter().filter(|d| d.label() == "mysql") {
        let conn = db.connect().await;
        table(&conn).await;
        let holder = conn.begin().await.unwrap();
        bump(&holder, 1).await.unwrap();
        let attempts = AtomicU32::new(0);
        let r: ApiResult<()> = shop_kit::db::retrying("lock wait test", || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            let txn = conn.begin().await?;
            txn.execute_unprepared("SET SESSION innodb_lock_wait_timeout = 1")
                .await?;
            bump(&txn, 1).await?;
            txn.commit().await?;
            Ok(())
        })
        .await;
        let err = r.expect_err("the row stayed locked");
        assert_eq!(err.code(), ErrorCode::Unavailable, "{err:?}");
        assert!(err.public_message().contains("try again"));
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            shop_kit::db::TRANSACTION_ATTEMPTS
        );
        holder.rollback().await.unwrap();
        assert_eq!(total(&conn).await, 0, "nothing was written");
    }
    cleanup(&dbs).await;
}

/// SQLite: a writer that finds the file locked past its busy timeout is run again once
/// the other writer is done.
#[tokio::test]
async fn a_busy_sqlite_file_is_waited_out() {
    let dbs = databases("kit_db_busy").await;
    let db = dbs.iter().find(|d| d.label() == "sqlite").unwrap();
    let TestDb::Sqlite { path } = db else {
        unreachable!()
    };
    let conn = db.connect().await;
    table(&conn).await;
    // A second pool on the same file that gives up on a lock after 20 ms.
    let impatient = {
        use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(Duration::from_millis(20));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
    };
    let holder = shop_kit::db::begin_write(&conn).await.unwrap();
    bump(&holder, 1).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(60)).await;
        holder.commit().await.unwrap();
    });
    let attempts = AtomicU32::new(0);
    let seen_transient = AtomicU32::new(0);
    shop_kit::db::retrying("busy test", || async {
        attempts.fetch_add(1, Ordering::SeqCst);
        let r: ApiResult<()> = async {
            let txn = shop_kit::db::begin_write(&impatient).await?;
            bump(&txn, 2).await?;
            txn.commit().await?;
            Ok(())
        }
        .await;
        if let Err(ApiError::Database(e)) = &r
            && shop_kit::db::is_transient(e)
        {
            seen_transient.fetch_add(1, Ordering::SeqCst);
        }
        r
    })
    .await
    .expect("ran once the lock was free");
    release.await.unwrap();
    assert!(
        seen_transient.load(Ordering::SeqCst) >= 1,
        "it met the lock"
    );
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        seen_transient.load(Ordering::SeqCst) + 1
    );
    assert_eq!(total(&conn).await, 2);
    cleanup(&dbs).await;
}

/// Other failures are not retried: a duplicate key is answered at once.
#[tokio::test]
async fn other_failures_are_not_retried() {
    let dbs = databases("kit_db_no_retry").await;
    for db in &dbs {
        let conn = db.connect().await;
        table(&conn).await;
        let attempts = AtomicU32::new(0);
        let r: ApiResult<()> = shop_kit::db::retrying("duplicate test", || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            conn.execute_unprepared("INSERT INTO kit_retry (id, n) VALUES (1, 5)")
                .await?;
            Ok(())
        })
        .await;
        assert_eq!(r.unwrap_err().code(), ErrorCode::Conflict, "{}", db.label());
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "{}", db.label());
    }
    cleanup(&dbs).await;
}

/// `.cargo/config.toml` builds the bundled SQLite with the query planner stability
/// guarantee (else every `LIMIT ?` statement, each `.one()`, is planned again on every
/// run) and without allocation statistics. A build that lost the setting shows here.
#[tokio::test]
async fn the_bundled_sqlite_is_built_with_our_flags() {
    let db = shop_kit::db::connect_with("sqlite::memory:", 1)
        .await
        .unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA compile_options".to_string(),
        ))
        .await
        .unwrap();
    let options: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    for wanted in ["ENABLE_QPSG", "DEFAULT_MEMSTATUS=0"] {
        assert!(
            options.iter().any(|o| o == wanted),
            "SQLite built without {wanted}: {options:?}"
        );
    }
}

/// On a SQLite file, reads on the read pool go on while the one writing connection is
/// inside a transaction (they see the last commit, not the transaction's rows), and
/// cannot write. On the writing pool the same read waits for the transaction.
#[tokio::test]
async fn sqlite_readers_do_not_wait_for_a_write_in_progress() {
    let dbs = databases("kit_read_pool").await;
    for db in &dbs {
        let TestDb::Sqlite { .. } = db else { continue };
        let writer = db.connect().await;
        table(&writer).await;
        let reads = shop_kit::db::read_pool(&writer);
        assert_eq!(total(&reads).await, 0);

        let txn = shop_kit::db::begin_write(&writer).await.unwrap();
        bump(&txn, 1).await.unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(5), total(&reads))
            .await
            .expect("a reader waited for the writer");
        assert_eq!(seen, 0, "a reader saw an uncommitted write");
        // The writing pool has one connection, held by the transaction.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), total(&writer))
                .await
                .is_err()
        );
        txn.commit().await.unwrap();
        assert_eq!(total(&reads).await, 1);

        let write = reads.execute_unprepared("UPDATE kit_retry SET n = 5").await;
        assert!(write.is_err(), "the read pool wrote");
        assert_eq!(total(&writer).await, 1);
    }
    cleanup(&dbs).await;
}

/// Where no second connection could see the data (in-memory SQLite) or reads never
/// queue behind writes (MySQL), the read pool is the pool itself.
#[tokio::test]
async fn the_read_pool_of_an_in_memory_database_is_the_database_itself() {
    let db = shop_kit::db::connect_with("sqlite::memory:", 1)
        .await
        .unwrap();
    table(&db).await;
    let reads = shop_kit::db::read_pool(&db);
    assert_eq!(total(&reads).await, 0);
}

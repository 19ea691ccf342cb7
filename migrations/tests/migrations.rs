//! Every domain's migrations go up, down and up again, on SQLite and MySQL, and each
//! domain keeps its own tracking table.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
use shop_kit::testing::{cleanup, databases};

async fn tables(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Vec<String> {
    let sql = match db.get_database_backend() {
        sea_orm_migration::sea_orm::DbBackend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        }
        _ => {
            "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("tables");
    rows.iter()
        .map(|r| r.try_get::<String>("", "t").expect("t"))
        .collect()
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again_with_a_tracking_table_per_domain() {
    let dbs = databases("migrations").await;
    for test_db in &dbs {
        let db = test_db.connect().await;
        for domain in shop_migrations::DOMAINS {
            shop_migrations::up(&db, domain).await.expect("up");
        }
        let after_up = tables(&db).await;
        assert!(
            !after_up.contains(&"users_mail".to_string()),
            "[{}] account mail moved to notifications",
            test_db.label()
        );
        for t in [
            "catalog_migrations",
            "inventory_migrations",
            "catalog_products",
            "inventory_items",
            "inventory_ledger",
            "catalog_outbox",
            "users_migrations",
            "users_users",
            "users_sessions",
            "users_signing_keys",
            "users_event_sequences",
            "users_inbox",
            "orders_event_sequences",
            "notifications_migrations",
            "notifications_notifications",
            "notifications_deliveries",
            "notifications_inbox",
        ] {
            assert!(
                after_up.contains(&t.to_string()),
                "[{}] missing {t}: {after_up:?}",
                test_db.label()
            );
        }
        for domain in shop_migrations::DOMAINS {
            shop_migrations::down(&db, domain).await.expect("down");
        }
        let after_down = tables(&db).await;
        assert!(
            after_down.iter().all(|t| t.ends_with("_migrations")),
            "[{}] left behind: {after_down:?}",
            test_db.label()
        );
        for domain in shop_migrations::DOMAINS {
            shop_migrations::up(&db, domain).await.expect("up again");
            // Applying twice is a no-op.
            shop_migrations::up(&db, domain).await.expect("idempotent");
        }
        assert_eq!(tables(&db).await, after_up, "[{}]", test_db.label());
        db.close().await.ok();
    }
    cleanup(&dbs).await;
}

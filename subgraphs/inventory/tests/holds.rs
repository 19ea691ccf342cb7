//! Holds, commitments and restocks on SQLite and (when configured) MariaDB: the numbers
//! always add up from the ledger, expired holds block no one, and concurrent buyers of
//! the last units never oversell.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use shop_inventory::entity::{hold, item};
use shop_inventory::service::holds;
use shop_inventory::service::stock::{self, explain_item};
use shop_inventory::{InventoryCtx, InventorySettings};
use shop_kit::testing::{TestDb, each_db};
use shop_kit::{ApiError, StockShortfall};

const PRODUCT: &str = "01a20000-0000-7000-8000-0000000000b1";
const OTHER: &str = "01a20000-0000-7000-8000-0000000000b2";
const CATALOG: &str = "01a20000-0000-7000-8000-0000000000c1";

async fn env(db: &TestDb) -> InventoryCtx {
    let conn = db.connect().await;
    shop_migrations::up(&conn, "inventory")
        .await
        .expect("migrate");
    let ctx = InventoryCtx::with_settings(conn, InventorySettings::default());
    for p in [PRODUCT, OTHER] {
        stock::receive_initial(&ctx, p, CATALOG, "supplier-1", 5, "initial stock")
            .await
            .unwrap();
    }
    ctx
}

async fn item_of(ctx: &InventoryCtx, product: &str) -> item::Model {
    item::Entity::find_by_id(product.to_string())
        .one(&ctx.db)
        .await
        .unwrap()
        .unwrap()
}

/// The stored levels, and that the ledger explains them.
async fn levels(ctx: &InventoryCtx, product: &str) -> (i64, i64, i64, i64) {
    let it = item_of(ctx, product).await;
    let e = explain_item(&ctx.db, it.clone()).await.unwrap();
    assert!(e.consistent(), "the ledger adds up: {e:?}");
    (it.quantity, it.reserved, it.committed, it.available())
}

fn lines(items: &[(&str, i64)]) -> BTreeMap<String, i64> {
    items.iter().map(|(p, q)| (p.to_string(), *q)).collect()
}

async fn expire_holds_of(ctx: &InventoryCtx, owner: &str) {
    hold::Entity::update_many()
        .col_expr(
            hold::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(hold::Column::Owner.eq(owner))
        .exec(&ctx.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn holds_take_units_until_released_and_refuse_what_is_not_there() {
    each_db("inv_holds_basic", async |db| {
        let ctx = env(db).await;
        let held = holds::set_hold(&ctx, "cart-a", PRODUCT, 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(held.quantity, 3);
        assert!(held.expires_at > chrono::Utc::now() + chrono::Duration::seconds(590));
        // The hold as answered is the hold as stored (to the precision kept).
        assert_eq!(
            holds::holds_of(&ctx, "cart-a").await.unwrap(),
            vec![held.clone()]
        );
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 3, 0, 2));

        // Another cart wants 3: only 2 are there; nothing changes.
        match holds::set_hold(&ctx, "cart-b", PRODUCT, 3).await {
            Err(ApiError::OutOfStock(lines)) => assert_eq!(
                lines,
                vec![StockShortfall {
                    product_id: PRODUCT.into(),
                    requested: 3,
                    available: 2
                }]
            ),
            other => panic!("expected OUT_OF_STOCK, got {other:?}"),
        }
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 3, 0, 2));

        // Lowering a hold returns units; raising takes more; 0 releases it.
        holds::set_hold(&ctx, "cart-a", PRODUCT, 1).await.unwrap();
        holds::set_hold(&ctx, "cart-b", PRODUCT, 4).await.unwrap();
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 5, 0, 0));
        assert!(holds::set_hold(&ctx, "cart-b", PRODUCT, 5).await.is_err());
        holds::set_hold(&ctx, "cart-b", PRODUCT, 0).await.unwrap();
        holds::release_all(&ctx, "cart-a", "cart emptied")
            .await
            .unwrap();
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 0, 0, 5));
        assert!(holds::holds_of(&ctx, "cart-a").await.unwrap().is_empty());

        for (owner, product, q) in [
            ("bad owner!", PRODUCT, 1),
            ("cart-a", "nope", 1),
            ("cart-a", PRODUCT, -1),
        ] {
            assert!(matches!(
                holds::set_hold(&ctx, owner, product, q).await,
                Err(ApiError::BadUserInput(_))
            ));
        }
        // A supplier cannot take away units that are committed to orders.
        holds::commit(&ctx, "cart-c", "order-1", &lines(&[(PRODUCT, 4)]))
            .await
            .unwrap();
        let owner = shop_kit::auth::Caller(Some(shop_kit::auth::Principal::with_roles(
            "supplier-1",
            &[shop_kit::auth::Role::Supplier],
            "test",
        )));
        assert!(matches!(
            stock::set(&ctx, &owner, PRODUCT, 3, "count").await,
            Err(ApiError::Conflict(_))
        ));
        stock::set(&ctx, &owner, PRODUCT, 4, "count").await.unwrap();
        assert_eq!(levels(&ctx, PRODUCT).await, (4, 0, 4, 0));
    })
    .await;
}

#[tokio::test]
async fn expired_holds_block_no_one_and_the_sweeper_records_their_release() {
    each_db("inv_holds_expiry", async |db| {
        let ctx = env(db).await;
        holds::set_hold(&ctx, "cart-a", PRODUCT, 5).await.unwrap();
        holds::set_hold(&ctx, "cart-a", OTHER, 2).await.unwrap();
        expire_holds_of(&ctx, "cart-a").await;
        // Reads do not count them.
        let expired = holds::expired_held(&ctx.db, &[PRODUCT.into(), OTHER.into()])
            .await
            .unwrap();
        assert_eq!(
            expired,
            BTreeMap::from([(PRODUCT.into(), 5), (OTHER.into(), 2)])
        );
        // Activity does not revive them.
        holds::extend(&ctx, "cart-a").await.unwrap();
        let still = holds::holds_of(&ctx, "cart-a").await.unwrap();
        assert!(still.iter().all(|h| h.expires_at <= chrono::Utc::now()));
        // Another cart gets the units at once: the hold releases the expired ones first.
        holds::set_hold(&ctx, "cart-b", PRODUCT, 5).await.unwrap();
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 5, 0, 0));
        // The sweeper releases the rest.
        assert_eq!(holds::sweep(&ctx, 100).await.unwrap(), 1);
        assert_eq!(holds::sweep(&ctx, 100).await.unwrap(), 0);
        assert_eq!(levels(&ctx, OTHER).await, (5, 0, 0, 5));
        assert!(holds::holds_of(&ctx, "cart-a").await.unwrap().is_empty());
        let e = explain_item(&ctx.db, item_of(&ctx, OTHER).await)
            .await
            .unwrap();
        assert!(
            e.by_kind
                .contains(&(shop_inventory::entity::ledger::Kind::Release, -2))
        );
    })
    .await;
}

#[tokio::test]
async fn checkout_commits_all_lines_or_none_and_cancellation_restocks() {
    each_db("inv_holds_commit", async |db| {
        let ctx = env(db).await;
        holds::set_hold(&ctx, "cart-a", PRODUCT, 2).await.unwrap();
        holds::set_hold(&ctx, "cart-b", OTHER, 4).await.unwrap();
        // cart-a orders 3 of PRODUCT (1 more than held: taken from available) and 2 of
        // OTHER (only 1 available): nothing is committed.
        let order = lines(&[(PRODUCT, 3), (OTHER, 2)]);
        match holds::commit(&ctx, "cart-a", "order-1", &order).await {
            Err(ApiError::OutOfStock(lines)) => assert_eq!(
                lines,
                vec![StockShortfall {
                    product_id: OTHER.into(),
                    requested: 2,
                    available: 1
                }]
            ),
            other => panic!("expected OUT_OF_STOCK, got {other:?}"),
        }
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 2, 0, 3));
        assert_eq!(holds::holds_of(&ctx, "cart-a").await.unwrap().len(), 1);

        let order = lines(&[(PRODUCT, 3), (OTHER, 1)]);
        holds::commit(&ctx, "cart-a", "order-1", &order)
            .await
            .unwrap();
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 0, 3, 2));
        assert_eq!(levels(&ctx, OTHER).await, (5, 4, 1, 0));
        assert!(holds::holds_of(&ctx, "cart-a").await.unwrap().is_empty());
        // The same order again: nothing more is taken.
        holds::commit(&ctx, "cart-a", "order-1", &order)
            .await
            .unwrap();
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 0, 3, 2));

        // A hold bigger than the line: the surplus goes back.
        holds::commit(&ctx, "cart-b", "order-2", &lines(&[(OTHER, 3)]))
            .await
            .unwrap();
        assert_eq!(levels(&ctx, OTHER).await, (5, 0, 4, 1));

        holds::restock(&ctx, "order-1", "order cancelled")
            .await
            .unwrap();
        holds::restock(&ctx, "order-1", "order cancelled")
            .await
            .unwrap();
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 0, 0, 5));
        assert_eq!(levels(&ctx, OTHER).await, (5, 0, 3, 2));
    })
    .await;
}

/// Units reserved for a product, from the live holds rather than the stock row.
async fn held_units(ctx: &InventoryCtx, product: &str) -> i64 {
    hold::Entity::find()
        .filter(hold::Column::ProductId.eq(product))
        .all(&ctx.db)
        .await
        .unwrap()
        .iter()
        .map(|h| h.quantity)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_changed_while_its_cart_checks_out_leaves_reserved_as_the_holds_say() {
    // The shopper raises a line (1 -> 2) while the cart's checkout commits it. Either
    // order is fine; what may not happen is the commit releasing the hold's old
    // quantity and deleting the new one, leaving units reserved for no hold.
    each_db("inv_holds_commit_race", async |db| {
        let ctx = Arc::new(env(db).await);
        for round in 0..30 {
            let cart = format!("cart-{round}");
            let order = format!("order-{round}");
            holds::set_hold(&ctx, &cart, PRODUCT, 1).await.unwrap();
            let (commit, raise) = tokio::join!(
                {
                    let (ctx, cart, order) = (ctx.clone(), cart.clone(), order.clone());
                    tokio::spawn(async move {
                        holds::commit(&ctx, &cart, &order, &lines(&[(PRODUCT, 1)])).await
                    })
                },
                {
                    let (ctx, cart) = (ctx.clone(), cart.clone());
                    tokio::spawn(async move { holds::set_hold(&ctx, &cart, PRODUCT, 2).await })
                },
            );
            commit.unwrap().unwrap();
            raise.unwrap().unwrap();
            let it = item_of(&ctx, PRODUCT).await;
            assert_eq!(
                it.reserved,
                held_units(&ctx, PRODUCT).await,
                "round {round}: reserved units match the live holds ({it:?})"
            );
            assert_eq!(it.committed, 1, "round {round}: the order took its unit");
            let _ = levels(&ctx, PRODUCT).await;
            holds::release_all(&ctx, &cart, "cart emptied")
                .await
                .unwrap();
            holds::restock(&ctx, &order, "order cancelled")
                .await
                .unwrap();
            assert_eq!(levels(&ctx, PRODUCT).await, (5, 0, 0, 5), "round {round}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_anonymous_carts_holds_merge_into_the_users_cart() {
    each_db("inv_holds_transfer", async |db| {
        let ctx = env(db).await;
        holds::set_hold(&ctx, "anon-1", PRODUCT, 2).await.unwrap();
        holds::set_hold(&ctx, "anon-1", OTHER, 1).await.unwrap();
        holds::set_hold(&ctx, "user-cart", PRODUCT, 1)
            .await
            .unwrap();
        let merged = holds::transfer(&ctx, "anon-1", "user-cart").await.unwrap();
        let by_product: BTreeMap<_, _> = merged
            .iter()
            .map(|h| (h.product_id.clone(), h.quantity))
            .collect();
        assert_eq!(
            by_product,
            BTreeMap::from([(PRODUCT.into(), 3), (OTHER.into(), 1)])
        );
        assert!(holds::holds_of(&ctx, "anon-1").await.unwrap().is_empty());
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 3, 0, 2));
        assert_eq!(levels(&ctx, OTHER).await, (5, 1, 0, 4));
    })
    .await;
}

#[tokio::test]
async fn stock_low_fires_once_per_crossing() {
    each_db("inv_holds_low", async |db| {
        let ctx = env(db).await;
        let count = async || {
            use sea_orm::ConnectionTrait;
            let rows = ctx
                .db
                .query_all_raw(sea_orm::Statement::from_string(
                    ctx.db.get_database_backend(),
                    format!(
                        "SELECT topic FROM inventory_outbox \
                         WHERE topic = 'inventory.stock_low' AND payload LIKE '%{PRODUCT}%'"
                    ),
                ))
                .await
                .unwrap();
            rows.len()
        };
        // Threshold 5 and 5 received as the first stock: a product that never had more
        // has not run low, so no alert (the demo seed would alert on every such one).
        assert_eq!(count().await, 0);
        holds::set_hold(&ctx, "cart-a", PRODUCT, 1).await.unwrap();
        holds::set_hold(&ctx, "cart-a", PRODUCT, 2).await.unwrap();
        assert_eq!(count().await, 0, "still at or below it: no crossing");
        let owner = shop_kit::auth::Caller(Some(shop_kit::auth::Principal::with_roles(
            "supplier-1",
            &[shop_kit::auth::Role::Supplier],
            "test",
        )));
        stock::adjust(&ctx, &owner, PRODUCT, 10, "delivery")
            .await
            .unwrap();
        assert!(
            !item_of(&ctx, PRODUCT).await.low_stock,
            "back above the threshold"
        );
        holds::set_hold(&ctx, "cart-b", PRODUCT, 9).await.unwrap();
        assert_eq!(count().await, 1, "running down across it alerts once");
        holds::set_hold(&ctx, "cart-b", PRODUCT, 10).await.unwrap();
        assert_eq!(count().await, 1, "still low: no new event");

        // A new alert level puts it below at once: that is a crossing too, announced
        // once; raising it further or lowering it below what is left is not.
        stock::adjust(&ctx, &owner, PRODUCT, 20, "delivery")
            .await
            .unwrap();
        assert!(!item_of(&ctx, PRODUCT).await.low_stock);
        stock::set_low_stock_threshold(&ctx, &owner, PRODUCT, 30)
            .await
            .unwrap();
        assert!(item_of(&ctx, PRODUCT).await.low_stock);
        assert_eq!(count().await, 2, "the new level alerts");
        stock::set_low_stock_threshold(&ctx, &owner, PRODUCT, 31)
            .await
            .unwrap();
        assert_eq!(count().await, 2, "already low");
        stock::set_low_stock_threshold(&ctx, &owner, PRODUCT, 0)
            .await
            .unwrap();
        assert!(
            !item_of(&ctx, PRODUCT).await.low_stock,
            "above the new level"
        );
        assert_eq!(count().await, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_buyers_of_the_last_units_never_oversell() {
    each_db("inv_holds_race", async |db| {
        let ctx = Arc::new(env(db).await);
        // 5 units; 24 buyers each hold 1 and check out, 12 more check out without a
        // hold, all at once.
        let mut tasks = Vec::new();
        for i in 0..36 {
            let ctx = ctx.clone();
            tasks.push(tokio::spawn(async move {
                let cart = format!("cart-{i}");
                if i < 24 {
                    match holds::set_hold(&ctx, &cart, PRODUCT, 1).await {
                        Ok(_) => {}
                        Err(ApiError::OutOfStock(_)) => return false,
                        Err(e) => panic!("hold: {e:?}"),
                    }
                }
                match holds::commit(&ctx, &cart, &format!("order-{i}"), &lines(&[(PRODUCT, 1)]))
                    .await
                {
                    Ok(()) => true,
                    Err(ApiError::OutOfStock(_)) => {
                        holds::release_all(&ctx, &cart, "checkout failed")
                            .await
                            .unwrap();
                        false
                    }
                    Err(e) => panic!("commit: {e:?}"),
                }
            }));
        }
        let mut sold = 0;
        for t in tasks {
            if t.await.unwrap() {
                sold += 1;
            }
        }
        assert_eq!(sold, 5, "exactly the units there were");
        assert_eq!(levels(&ctx, PRODUCT).await, (5, 0, 5, 0));
    })
    .await;
}

#[tokio::test]
async fn readers_see_live_holds_and_the_ledger_explains_the_numbers() {
    use serde_json::json;
    use shop_kit::auth::{Principal, Role};
    use shop_kit::testing::{data_of, error_code_of, execute_as};
    each_db("inv_holds_reads", async |db| {
        let ctx = env(db).await;
        let schema = shop_inventory::schema(ctx.clone());
        let label = db.label();
        let stock = async || {
            let admin = shop_kit::auth::Principal::with_roles(
                "admin-1",
                &[shop_kit::auth::Role::Admin],
                "test",
            );
            let r = execute_as(
                &schema,
                Some(admin),
                "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { stock inStock } } }",
                json!({ "r": [{ "__typename": "Product", "id": PRODUCT }] }),
            )
            .await;
            data_of(&r, label)["_entities"][0].clone()
        };
        holds::set_hold(&ctx, "cart-a", PRODUCT, 3).await.unwrap();
        holds::commit(&ctx, "cart-b", "order-9", &lines(&[(PRODUCT, 2)]))
            .await
            .unwrap();
        assert_eq!(stock().await, json!({ "stock": 0, "inStock": false }));
        expire_holds_of(&ctx, "cart-a").await;
        assert_eq!(
            stock().await,
            json!({ "stock": 3, "inStock": true }),
            "an expired hold is not counted even before the sweeper runs"
        );

        let supplier = Some(Principal::with_roles("supplier-1", &[Role::Supplier], "test"));
        let q = "query($p: ID!) { stockExplanation(productId: $p) { onHand held committed available consistent movements { kind total } } stockLevel(productId: $p) { reserved committed available } stockLedger(productId: $p, first: 2) { edges { node { kind delta heldAfter committedAfter reference } } } }";
        let d = data_of(
            &execute_as(&schema, supplier.clone(), q, json!({ "p": PRODUCT })).await,
            label,
        );
        let e = &d["stockExplanation"];
        assert_eq!(e["onHand"], 5);
        assert_eq!(e["held"], 3, "stored until released");
        assert_eq!(e["committed"], 2);
        assert_eq!(e["consistent"], true);
        assert_eq!(
            e["movements"],
            json!([
                { "kind": "RECEIVE", "total": 5 }, { "kind": "ADJUST", "total": 0 },
                { "kind": "HOLD", "total": 5 }, { "kind": "RELEASE", "total": 0 },
                { "kind": "COMMIT", "total": 2 }, { "kind": "RESTOCK", "total": 0 }
            ])
        );
        assert_eq!(
            d["stockLevel"],
            json!({ "reserved": 0, "committed": 2, "available": 3 })
        );
        assert_eq!(
            d["stockLedger"]["edges"],
            json!([
                { "node": { "kind": "COMMIT", "delta": 2, "heldAfter": 3, "committedAfter": 2, "reference": "order-9" } },
                { "node": { "kind": "HOLD", "delta": 2, "heldAfter": 5, "committedAfter": 0, "reference": "cart-b" } }
            ])
        );
        let stranger = Some(Principal::with_roles("supplier-2", &[Role::Supplier], "test"));
        let r = execute_as(&schema, stranger, q, json!({ "p": PRODUCT })).await;
        assert_eq!(error_code_of(&r, label), "FORBIDDEN");
    })
    .await;
}

#[tokio::test]
async fn a_recount_below_the_holds_keeps_the_first_holds_and_cuts_the_newest() {
    each_db("inv_holds_recount", async |db| {
        let ctx = env(db).await;
        for i in 0..5 {
            holds::set_hold(&ctx, &format!("cart-{i}"), PRODUCT, 1)
                .await
                .unwrap();
        }
        // A recount finds only 2 units: the holds may not promise more than there is.
        let owner = shop_kit::auth::Caller(Some(shop_kit::auth::Principal::with_roles(
            "supplier-1",
            &[shop_kit::auth::Role::Supplier],
            "test",
        )));
        let after = stock::set(&ctx, &owner, PRODUCT, 2, "recount")
            .await
            .unwrap();
        assert_eq!((after.quantity, after.reserved), (2, 2));
        let mut sold = Vec::new();
        for i in 0..5 {
            match holds::commit(
                &ctx,
                &format!("cart-{i}"),
                &format!("order-{i}"),
                &lines(&[(PRODUCT, 1)]),
            )
            .await
            {
                Ok(()) => sold.push(i),
                Err(ApiError::OutOfStock(_)) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(sold, [0, 1], "the first two to hold keep their units");
        let (on_hand, held, committed, _) = levels(&ctx, PRODUCT).await;
        assert_eq!((on_hand, held, committed), (2, 0, 2));
    })
    .await;
}

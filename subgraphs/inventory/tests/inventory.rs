//! The inventory subgraph's resolvers and event handling on SQLite and (when configured) MySQL.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use shop_inventory::service::events::apply;
use shop_inventory::{InventoryCtx, InventorySchema, schema};
use shop_kit::auth::{Principal, Role};
use shop_kit::events::Event;
use shop_kit::testing::{TestDb, cleanup, data_of, databases, error_code_of, execute_as};

const OWNER: &str = "supplier-owner";
const PRODUCT: &str = "01a20000-0000-7000-8000-0000000000a1";
const OTHER_PRODUCT: &str = "01a20000-0000-7000-8000-0000000000a2";
const CATALOG: &str = "01a20000-0000-7000-8000-0000000000c1";

struct Env {
    schema: InventorySchema,
    ctx: InventoryCtx,
    label: &'static str,
}

fn who(id: &str, role: Role) -> Option<Principal> {
    Some(Principal::with_roles(id, &[role], "test"))
}

fn event(topic: &str, payload: Value) -> Event {
    Event {
        id: shop_kit::ids::new_id(),
        topic: topic.into(),
        payload,
        occurred_at: String::new(),
        aggregate: String::new(),
        sequence: 0,
        traceparent: None,
    }
}

impl Env {
    async fn new(db: &TestDb) -> Env {
        let conn = db.connect().await;
        shop_migrations::up(&conn, "inventory")
            .await
            .expect("migrate");
        let ctx = InventoryCtx::new(conn);
        for p in [PRODUCT, OTHER_PRODUCT] {
            apply(
                &ctx,
                event(
                    "catalog.product_created",
                    json!({ "productId": p, "catalogId": CATALOG, "supplierId": OWNER }),
                ),
            )
            .await
            .expect("product created");
        }
        Env {
            schema: schema(ctx.clone()),
            ctx,
            label: db.label(),
        }
    }

    async fn gql(&self, caller: Option<Principal>, query: &str, variables: Value) -> Value {
        execute_as(&self.schema, caller, query, variables).await
    }

    async fn ok(&self, caller: Option<Principal>, query: &str, variables: Value) -> Value {
        data_of(&self.gql(caller, query, variables).await, self.label)
    }

    async fn code(&self, caller: Option<Principal>, query: &str, variables: Value) -> String {
        error_code_of(&self.gql(caller, query, variables).await, self.label)
    }

    async fn outbox_topics(&self) -> Vec<(String, Value)> {
        use sea_orm::{ConnectionTrait, Statement};
        let rows = self
            .ctx
            .db
            .query_all_raw(Statement::from_string(
                self.ctx.db.get_database_backend(),
                "SELECT topic, payload FROM inventory_outbox ORDER BY id",
            ))
            .await
            .expect("outbox");
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("", "payload").expect("payload");
                (
                    r.try_get("", "topic").expect("topic"),
                    serde_json::from_str(&payload).expect("json"),
                )
            })
            .collect()
    }
}

async fn for_each_db(test: &str, body: impl AsyncFn(&Env)) {
    let dbs = databases(test).await;
    for db in &dbs {
        let env = Env::new(db).await;
        body(&env).await;
        env.ctx.db.clone().close().await.ok();
    }
    cleanup(&dbs).await;
}

const SET: &str = "mutation($p: ID!, $q: Int!, $r: String!) { setStock(productId: $p, quantity: $q, reason: $r) { quantity available } }";
const ADJUST: &str = "mutation($p: ID!, $d: Int!, $r: String!) { adjustStock(productId: $p, delta: $d, reason: $r) { quantity } }";

#[tokio::test]
async fn stock_changes_are_recorded_in_the_ledger_and_announced() {
    for_each_db("ledger", async |env| {
        let owner = who(OWNER, Role::Supplier);
        let d = env.ok(owner.clone(), SET, json!({ "p": PRODUCT, "q": 10, "r": "delivery" })).await;
        assert_eq!(d["setStock"], json!({ "quantity": 10, "available": 10 }));
        env.ok(owner.clone(), ADJUST, json!({ "p": PRODUCT, "d": -3, "r": "damaged" })).await;
        let d = env
            .ok(owner.clone(), "query($p: ID!) { stockLedger(productId: $p) { totalCount edges { node { delta quantityAfter reason actorId } } } }", json!({ "p": PRODUCT }))
            .await;
        assert_eq!(d["stockLedger"]["totalCount"], 2);
        assert_eq!(
            d["stockLedger"]["edges"],
            json!([
                { "node": { "delta": -3, "quantityAfter": 7, "reason": "damaged", "actorId": OWNER } },
                { "node": { "delta": 10, "quantityAfter": 10, "reason": "delivery", "actorId": OWNER } }
            ])
        );
        let events = env.outbox_topics().await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].0, "inventory.stock_changed");
        assert_eq!(events[1].1["available"], 7);
        assert!(events[1].1["version"].as_i64() > events[0].1["version"].as_i64());
        let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { stock onlyLeft inStock } } }";
        let reps = json!({ "r": [
            { "__typename": "Product", "id": PRODUCT },
            { "__typename": "Product", "id": OTHER_PRODUCT },
            { "__typename": "Product", "id": "01a20000-0000-7000-8000-00000000ffff" }
        ] });
        let d = env.ok(who("admin-1", Role::Admin), query, reps.clone()).await;
        assert_eq!(d["_entities"], json!([{ "stock": 7, "onlyLeft": null, "inStock": true }, { "stock": 0, "onlyLeft": null, "inStock": false }, { "stock": 0, "onlyLeft": null, "inStock": false }]));
        // The supplier sees its own numbers; anyone else availability only.
        let d = env.ok(who(OWNER, Role::Supplier), query, reps.clone()).await;
        assert_eq!(d["_entities"][0]["stock"], 7);
        for caller in [None, who("someone", Role::Customer), who("rival", Role::Supplier)] {
            let d = env.ok(caller, query, reps.clone()).await;
            assert_eq!(d["_entities"][0], json!({ "stock": null, "onlyLeft": null, "inStock": true }));
        }
    })
    .await;
}

#[tokio::test]
async fn stock_never_goes_negative_and_bad_input_changes_nothing() {
    for_each_db("negative", async |env| {
        let owner = who(OWNER, Role::Supplier);
        env.ok(owner.clone(), SET, json!({ "p": PRODUCT, "q": 2, "r": "count" })).await;
        assert_eq!(env.code(owner.clone(), ADJUST, json!({ "p": PRODUCT, "d": -3, "r": "sale" })).await, "CONFLICT");
        assert_eq!(env.code(owner.clone(), SET, json!({ "p": PRODUCT, "q": -1, "r": "x" })).await, "BAD_USER_INPUT");
        assert_eq!(env.code(owner.clone(), SET, json!({ "p": PRODUCT, "q": 1, "r": " " })).await, "BAD_USER_INPUT");
        assert_eq!(env.code(owner.clone(), ADJUST, json!({ "p": PRODUCT, "d": 0, "r": "x" })).await, "BAD_USER_INPUT");
        assert_eq!(env.code(owner.clone(), SET, json!({ "p": "nope", "q": 1, "r": "x" })).await, "BAD_USER_INPUT");
        assert_eq!(env.code(owner, SET, json!({ "p": "01a20000-0000-7000-8000-00000000ffff", "q": 1, "r": "x" })).await, "NOT_FOUND");
        let d = env.ok(who(OWNER, Role::Supplier), "query($p: ID!) { stockLevel(productId: $p) { quantity } stockLedger(productId: $p) { totalCount } }", json!({ "p": PRODUCT })).await;
        assert_eq!(d["stockLevel"]["quantity"], 2);
        assert_eq!(d["stockLedger"]["totalCount"], 1);
    })
    .await;
}

#[tokio::test]
async fn only_the_owner_or_an_admin_may_change_stock() {
    for_each_db("stock_owner", async |env| {
        let vars = json!({ "p": PRODUCT, "q": 5, "r": "x" });
        assert_eq!(
            env.code(who("someone-else", Role::Supplier), SET, vars.clone())
                .await,
            "FORBIDDEN"
        );
        assert_eq!(
            env.code(who(OWNER, Role::Customer), SET, vars.clone())
                .await,
            "FORBIDDEN"
        );
        assert_eq!(env.code(None, SET, vars.clone()).await, "UNAUTHENTICATED");
        assert_eq!(
            env.code(
                who("someone-else", Role::Supplier),
                "query($p: ID!) { stockLedger(productId: $p) { totalCount } }",
                json!({ "p": PRODUCT })
            )
            .await,
            "FORBIDDEN"
        );
        env.ok(who("admin", Role::Admin), SET, vars).await;
    })
    .await;
}

#[tokio::test]
async fn catalog_events_create_and_remove_stock_records_idempotently() {
    for_each_db("catalog_events", async |env| {
        let owner = who(OWNER, Role::Supplier);
        env.ok(
            owner.clone(),
            SET,
            json!({ "p": PRODUCT, "q": 4, "r": "x" }),
        )
        .await;
        // A redelivered creation keeps the existing record.
        apply(
            &env.ctx,
            event(
                "catalog.product_created",
                json!({ "productId": PRODUCT, "catalogId": CATALOG, "supplierId": OWNER }),
            ),
        )
        .await
        .expect("apply");
        let level = "query($p: ID!) { stockLevel(productId: $p) { quantity } }";
        assert_eq!(
            env.ok(owner.clone(), level, json!({ "p": PRODUCT })).await["stockLevel"]["quantity"],
            4
        );
        apply(
            &env.ctx,
            event(
                "catalog.product_deleted",
                json!({ "productId": OTHER_PRODUCT }),
            ),
        )
        .await
        .expect("apply");
        assert_eq!(
            env.code(owner.clone(), level, json!({ "p": OTHER_PRODUCT }))
                .await,
            "NOT_FOUND"
        );
        apply(
            &env.ctx,
            event("catalog.catalog_deleted", json!({ "catalogId": CATALOG })),
        )
        .await
        .expect("apply");
        apply(
            &env.ctx,
            event("catalog.catalog_deleted", json!({ "catalogId": CATALOG })),
        )
        .await
        .expect("twice is fine");
        assert_eq!(
            env.code(owner, level, json!({ "p": PRODUCT })).await,
            "NOT_FOUND"
        );
        use sea_orm::{EntityTrait, PaginatorTrait};
        use shop_inventory::entity::{item, ledger};
        assert_eq!(
            item::Entity::find()
                .count(&env.ctx.db)
                .await
                .expect("count"),
            0
        );
        assert_eq!(
            ledger::Entity::find()
                .count(&env.ctx.db)
                .await
                .expect("count"),
            0
        );
        // Malformed events are dropped, not retried forever.
        apply(
            &env.ctx,
            event("catalog.product_created", json!({ "oops": 1 })),
        )
        .await
        .expect("dropped");
    })
    .await;
}

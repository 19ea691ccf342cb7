//! Crash drills: the all-in-one process is aborted (as `kill -9` would stop it) at each
//! step of the checkout saga in turn, then started again; every interrupted checkout
//! must end, finished or undone, within a bounded time, with money and stock agreeing.
//! On the embedded SQLite files, and on MariaDB when configured.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{Child, free_port, shop_in, wait_ready};
use common::store::{CHECKOUT, address, card};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use shop_kit::auth::Role;

/// Where the process is aborted, and whether the checkout must then be finished
/// (the payment was taken) or undone (it was not).
/// Once the provider holds the buyer's money (authorized or captured), the checkout is
/// finished: its stock was committed before the charge.
const DRILL: &[(&str, Outcome)] = &[
    ("checkout.after_commit_stock", Outcome::Undone),
    ("payments.after_provider_charge", Outcome::Finished),
    ("checkout.after_charge", Outcome::Finished),
    ("checkout.after_create_order", Outcome::Finished),
    ("checkout.after_cart_emptied", Outcome::Finished),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Finished,
    Undone,
}

struct Shop {
    child: Child,
    url: String,
    client: reqwest::Client,
}

async fn start(dir: &std::path::Path, database: Option<&str>, crash_at: Option<&str>) -> Shop {
    let port = free_port();
    let mut cmd = shop_in(dir, &format!("127.0.0.1:{port}"));
    // Short, so the recovery comes soon after a restart; not one second, which a
    // checkout can take in a debug build while the freshly seeded platform is still
    // busy in the background (recommendations building their similar lists).
    cmd.env("SHOP_CHECKOUT_STALE_SECONDS", "3")
        .env("SHOP_TAX_RATES", "DE=19")
        .env("SHOP_CRASH_AT", crash_at.unwrap_or(""))
        // An import's worker that died is replaced two seconds after its last renewal.
        .env("SHOP_IMPORT_LEASE_SECONDS", "2")
        .stderr(match std::env::var("SHOP_DRILL_LOG") {
            Ok(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            Err(_) => Stdio::null(),
        });
    if let Some(url) = database {
        cmd.env("DATABASE_URL", url);
    }
    // SHOP_DRILL_LOG=<file> keeps the processes' logs, for when a drill fails.
    if std::env::var("SHOP_DRILL_LOG").is_ok() {
        cmd.env_remove("SHOP_DRILL_LOG").env("RUST_LOG", "info");
    }
    let child = Child(cmd.spawn().expect("start shop"));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    Shop {
        child,
        url: format!("{base}/graphql"),
        client,
    }
}

impl Shop {
    async fn gql(&self, token: &str, query: &str, variables: Value) -> Result<Value, String> {
        let resp = self
            .client
            .post(&self.url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(json!({ "query": query, "variables": variables }).to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    /// Waits for the process to die by the drill's abort.
    async fn aborted(mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                assert!(!status.success(), "the process was to abort: {status:?}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the crash point was never reached"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn dev_token(dir: &std::path::Path, user: &str, role: Role) -> String {
    let key = shop::platform::dev_signing_key(dir).unwrap();
    key.mint(
        shop::config::DEV_ISSUER,
        shop::config::DEV_AUDIENCE,
        user,
        &[role],
        Duration::from_secs(3600),
    )
    .unwrap()
}

/// Seeded products that have at least `min` units available: (id, available).
async fn stocked_products(s: &Shop, token: &str, min: i64) -> Vec<(String, i64)> {
    let r = s
        .gql(
            token,
            "{ products(first: 50) { edges { node { id stock currency: price { currency } } } } }",
            json!({}),
        )
        .await
        .unwrap();
    r["data"]["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["currency"]["currency"] == "EUR" && n["stock"].as_i64().unwrap_or(0) >= min)
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["stock"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn available(s: &Shop, token: &str, product: &str) -> i64 {
    let r = s
        .gql(
            token,
            "query($id: ID!) { product(id: $id) { stock } }",
            json!({ "id": product }),
        )
        .await
        .unwrap();
    r["data"]["product"]["stock"].as_i64().unwrap()
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// The database of `subgraph`: the shared MySQL one, or its SQLite file in `dir`.
async fn database_of(
    dir: &std::path::Path,
    database: Option<&str>,
    subgraph: &str,
) -> DatabaseConnection {
    let url = match database {
        Some(url) => url.to_string(),
        None => shop_kit::db::sqlite_file_url(dir, subgraph),
    };
    shop_kit::db::connect(&url).await.unwrap()
}

/// One checkout per drill point, each interrupted at its point; after each restart the
/// previous one must have ended as its point demands.
async fn drill(label: &str, database: Option<&str>) {
    let dir = std::env::temp_dir().join(format!("shop-crash-{label}-{}", shop_kit::ids::new_id()));
    let token = dev_token(&dir, "crash-buyer", Role::Customer);
    // Exact stock numbers are for admins and the product's supplier.
    let admin = dev_token(&dir, shop::seed::DEMO_ADMIN, Role::Admin);
    let mut products = Vec::new();
    for (i, (point, expected)) in DRILL.iter().enumerate() {
        // Armed: the checkout dies at `point`.
        let s = start(&dir, database, Some(point)).await;
        if products.is_empty() {
            products = stocked_products(&s, &admin, 3).await;
            assert!(products.len() >= DRILL.len(), "{products:?}");
        }
        let (product, before) = products[i].clone();
        let r = s
            .gql(&token, "mutation { createCart { cart { id } } }", json!({}))
            .await
            .unwrap();
        let cart = r["data"]["createCart"]["cart"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s
            .gql(
                &token,
                "mutation($c: ID!, $p: ID!) { addToCart(cartId: $c, productId: $p, quantity: 2) { id } }",
                json!({ "c": cart, "p": product }),
            )
            .await
            .unwrap();
        assert!(r.get("errors").is_none(), "{r}");
        let key = format!("drill-{i}");
        let answer = s
            .gql(
                &token,
                CHECKOUT,
                json!({ "c": cart, "a": address(), "p": card("4242424242424242"), "k": key }),
            )
            .await;
        assert!(
            answer.is_err(),
            "{point}: the process was to die mid-checkout: {answer:?}"
        );
        s.aborted().await;

        // Restarted unarmed: the recovery must end it (not the buyer's retry, which
        // would take it over and could finish it with the card it brings).
        let s = start(&dir, database, None).await;
        let orders = database_of(&dir, database, "orders").await;
        let started = Instant::now();
        let sql = format!(
            "SELECT COUNT(*) FROM orders_checkouts WHERE idempotency_key = '{key}' AND step IN ('COMPLETED', 'FAILED')"
        );
        while count(&orders, &sql).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{point}: the checkout did not end within 30 s of the restart"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Asked again with its key, it answers what it ended as.
        let answer = s
            .gql(
                &token,
                CHECKOUT,
                json!({ "c": cart, "a": address(), "p": card("4242424242424242"), "k": key }),
            )
            .await
            .unwrap();
        let now = available(&s, &admin, &product).await;
        match expected {
            Outcome::Finished => {
                assert_eq!(
                    answer["data"]["checkout"]["status"], "PAID",
                    "{point}: {answer}"
                );
                let id = answer["data"]["checkout"]["id"].as_str().unwrap();
                let r = s
                    .gql(
                        &token,
                        "query($id: ID!) { order(id: $id) { payment { status } } }",
                        json!({ "id": id }),
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    r["data"]["order"]["payment"]["status"], "CAPTURED",
                    "{point}: {r}"
                );
                assert_eq!(now, before - 2, "{point}: the two units are sold");
            }
            Outcome::Undone => {
                assert_eq!(
                    answer
                        .pointer("/errors/0/extensions/code")
                        .and_then(Value::as_str),
                    Some("CART_EXPIRED"),
                    "{point}: {answer}"
                );
                assert_eq!(now, before - 2, "{point}: the units are the cart's again");
            }
        }
    }

    // Nothing is left authorized or half-recorded anywhere.
    let payments = database_of(&dir, database, "payments").await;
    assert_eq!(
        count(
            &payments,
            "SELECT COUNT(*) FROM payments_test_provider WHERE status = 'AUTHORIZED'"
        )
        .await,
        0,
        "no authorization is left at the provider"
    );
    assert_eq!(
        count(
            &payments,
            "SELECT COUNT(*) FROM payments_payments WHERE status IN ('PENDING', 'AUTHORIZED')"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &payments,
            "SELECT COUNT(*) FROM payments_test_provider WHERE status = 'CAPTURED'"
        )
        .await,
        DRILL
            .iter()
            .filter(|(_, o)| *o == Outcome::Finished)
            .count() as i64
    );
    let orders = database_of(&dir, database, "orders").await;
    assert_eq!(
        count(&orders, "SELECT COUNT(*) FROM orders_checkouts WHERE step NOT IN ('COMPLETED', 'FAILED') OR active_cart_id IS NOT NULL").await,
        0,
        "every checkout ended and let go of its cart"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkout_aborted_at_any_step_ends_after_a_restart() {
    drill("sqlite", None).await;
    let dbs = shop_kit::testing::databases("crash_drill").await;
    if let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") {
        drill("mysql", Some(&mysql.url())).await;
    }
    shop_kit::testing::cleanup(&dbs).await;
}

/// A catalog import aborted while it validated, then while it applied (after its first
/// batch committed): after a restart it is taken up again and ends DONE with every row
/// in, once.
async fn import_drill(label: &str, database: Option<&str>) {
    let dir = std::env::temp_dir().join(format!(
        "shop-crash-import-{label}-{}",
        shop_kit::ids::new_id()
    ));
    let supplier = dev_token(&dir, shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    // Several batches (shop_catalog's imports::engine::APPLY_BATCH, which validation
    // also writes its staged changes by), so the abort after the first one leaves the
    // apply half done.
    let rows = 2 * shop_catalog::service::imports::engine::APPLY_BATCH as i64 + 500;
    let mut file = String::from("sku,name,price,currency,stock\n");
    for i in 0..rows {
        file.push_str(&format!(
            "C-{i},Crash item {i},{}.50,EUR,{}\n",
            1 + i % 40,
            i % 7
        ));
    }
    for point in ["imports.mid_validation", "imports.after_apply_batch"] {
        let s = start(&dir, database, Some(point)).await;
        let r = s
            .gql(
                &supplier,
                "mutation($n: String!) { createCatalog(input: {name: $n}) { id } }",
                json!({ "n": point }),
            )
            .await
            .unwrap();
        let catalog = r["data"]["createCatalog"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let operations = json!({
            "query": "mutation($c: ID!, $f: Upload) { startCatalogImport(catalogId: $c, file: $f) { id } }",
            "variables": { "c": catalog, "f": null }
        });
        let body = format!(
            "--b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n--b\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.f\"]}}\r\n--b\r\nContent-Disposition: form-data; name=\"0\"; filename=\"crash.csv\"\r\n\r\n{file}\r\n--b--\r\n"
        );
        // The worker may die before or after the answer leaves: either is fine.
        let answer = s
            .client
            .post(&s.url)
            .bearer_auth(&supplier)
            .header("content-type", "multipart/form-data; boundary=b")
            .header("apollo-require-preflight", "true")
            .body(body)
            .send()
            .await;
        if let Ok(resp) = answer {
            let text = resp.text().await.unwrap_or_default();
            assert!(!text.contains("errors"), "{point}: {text}");
        }
        s.aborted().await;

        let s = start(&dir, database, None).await;
        let db = database_of(&dir, database, "catalog").await;
        let started = Instant::now();
        let done = format!(
            "SELECT COUNT(*) FROM catalog_imports WHERE catalog_id = '{catalog}' AND status = 'done'"
        );
        while count(&db, &done).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{point}: the import did not end within 60 s of the restart"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            count(
                &db,
                &format!("SELECT COUNT(*) FROM catalog_imports WHERE catalog_id = '{catalog}'")
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &db,
                &format!("SELECT applied FROM catalog_imports WHERE catalog_id = '{catalog}'")
            )
            .await,
            rows,
            "{point}: every change applied once"
        );
        assert_eq!(
            count(
                &db,
                &format!("SELECT COUNT(*) FROM catalog_products WHERE catalog_id = '{catalog}'")
            )
            .await,
            rows,
            "{point}"
        );
        // Every product's stock record came with the import's events.
        let inventory = database_of(&dir, database, "inventory").await;
        let items = format!("SELECT COUNT(*) FROM inventory_items WHERE catalog_id = '{catalog}'");
        let started = Instant::now();
        while count(&inventory, &items).await != rows {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{point}: stock records missing"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(s);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_aborted_while_validating_or_applying_ends_after_a_restart() {
    import_drill("sqlite", None).await;
    let dbs = shop_kit::testing::databases("crash_import").await;
    if let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") {
        import_drill("mysql", Some(&mysql.url())).await;
    }
    shop_kit::testing::cleanup(&dbs).await;
}

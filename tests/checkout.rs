//! Checkout end to end through the gateway: the saga across carts, inventory and
//! payments, its refusals and compensations, idempotency, cancellation, and concurrent
//! buyers of the last units, on SQLite and MariaDB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::store::{CHECKOUT, address, card, cart_of, checkout, product, set_stock, start};
use common::{Harness, each_db, stock_of};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use shop_kit::auth::Role;

async fn ledger_adds_up(h: &Harness, product: &str) -> Value {
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    let r = h
        .gql(
            Some(&admin),
            "query($p: ID!) { stockExplanation(productId: $p) { onHand held committed available consistent } }",
            json!({ "p": product }),
        )
        .await;
    let e = r.data()["stockExplanation"].clone();
    assert_eq!(e["consistent"], true, "the ledger adds up: {e}");
    e
}

#[tokio::test]
async fn a_checkout_makes_one_paid_order_and_a_retry_returns_it() {
    each_db("e2e_checkout_ok", async |db| {
        let h = start(db).await;
        let lamp = product(&h, 1_999, 5).await;
        let bulb = product(&h, 350, 10).await;
        let (token, cart) = cart_of(&h, "buyer-1", &[(&lamp, 2), (&bulb, 3)]).await;

        let r = checkout(&h, &token, &cart, "4242 4242 4242 4242", "key-1").await;
        let order = r.data()["checkout"].clone();
        let subtotal = 1_999 * 2 + 350 * 3;
        let tax = (subtotal * 1900 + 5_000) / 10_000;
        assert_eq!(order["status"], "PAID");
        assert_eq!(order["subtotal"]["amount"], subtotal);
        assert_eq!(order["tax"]["amount"], tax);
        assert_eq!(order["total"], json!({ "amount": subtotal + tax, "currency": "EUR" }));
        assert_eq!(order["lines"].as_array().unwrap().len(), 2);
        assert_eq!(order["shippingAddress"], json!({ "city": "Berlin", "country": "DE" }));
        assert_eq!(
            order["statusHistory"],
            json!([{ "status": "PENDING", "actor": "buyer-1" }, { "status": "PAID", "actor": "system" }])
        );
        let id = order["id"].as_str().unwrap().to_string();

        // The stock is taken, the cart empty, the payment captured.
        assert_eq!(stock_of(&h, &lamp).await, 3);
        assert_eq!(ledger_adds_up(&h, &lamp).await["committed"], 2);
        let r = h
            .gql(Some(&token), "query($c: ID!) { cart(id: $c) { itemCount } }", json!({ "c": cart }))
            .await;
        assert_eq!(r.data()["cart"]["itemCount"], 0);
        let r = h
            .gql(
                Some(&token),
                "query($id: ID!) { order(id: $id) { createdAt status payment { status amount { amount } card { brand last4 } } } }",
                json!({ "id": id }),
            )
            .await;
        // The order as the checkout answered it is the order as stored (to the
        // precision the database keeps).
        assert_eq!(r.data()["order"]["createdAt"], order["createdAt"]);
        assert_eq!(
            r.data()["order"]["payment"],
            json!({ "status": "CAPTURED", "amount": { "amount": subtotal + tax }, "card": { "brand": "VISA", "last4": "4242" } })
        );

        // The same key again: the same order, nothing charged or taken twice.
        let again = checkout(&h, &token, &cart, "4242424242424242", "key-1").await;
        assert_eq!(again.data()["checkout"]["id"], id.as_str());
        assert_eq!(again.data()["checkout"]["createdAt"], order["createdAt"]);
        assert_eq!(stock_of(&h, &lamp).await, 3);

        // The buyer's orders, and nobody else's.
        let r = h
            .gql(Some(&token), "{ myOrders(first: 10) { totalCount edges { node { id } } } }", json!({}))
            .await;
        assert_eq!(r.data()["myOrders"]["totalCount"], 1);
        let stranger = h.token("buyer-2", Role::Customer);
        let r = h
            .gql(Some(&stranger), "query($id: ID!) { order(id: $id) { id } }", json!({ "id": id }))
            .await;
        assert_eq!(r.code(), "NOT_FOUND");

        // Anonymous shoppers cannot check out.
        let r = h
            .gql(None, CHECKOUT, json!({ "c": cart, "a": address(), "p": card("4242424242424242"), "k": "k" }))
            .await;
        assert_eq!(r.code(), "UNAUTHENTICATED");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn refusals_undo_everything_and_explain_why() {
    let h = start(None).await;
    let lamp = product(&h, 1_000, 4).await;
    let (token, cart) = cart_of(&h, "buyer-3", &[(&lamp, 2)]).await;

    // A declined card: the stock goes back to the cart's hold, nothing is charged.
    let r = checkout(&h, &token, &cart, "4000000000009995", "d-1").await;
    assert_eq!(r.code(), "PAYMENT_DECLINED");
    assert_eq!(
        r.body["errors"][0]["extensions"]["declineCode"],
        "insufficient_funds"
    );
    let e = ledger_adds_up(&h, &lamp).await;
    assert_eq!(
        (
            e["committed"].as_i64(),
            e["held"].as_i64(),
            e["onHand"].as_i64()
        ),
        (Some(0), Some(2), Some(4)),
        "the cart holds its two units again"
    );
    let r = h
        .gql(
            Some(&token),
            "query($c: ID!) { cart(id: $c) { lines { status holdExpiresAt } } }",
            json!({ "c": cart }),
        )
        .await;
    let line = &r.data()["cart"]["lines"][0];
    assert_eq!(line["status"], "HELD", "{line}");
    let until: chrono::DateTime<chrono::Utc> =
        line["holdExpiresAt"].as_str().unwrap().parse().unwrap();
    assert!(until > chrono::Utc::now() + chrono::Duration::minutes(9));
    // Nobody else can take them meanwhile.
    let (_, other) = cart_of(&h, "buyer-4", &[]).await;
    let other_token = h.token("buyer-4", Role::Customer);
    let r = h
        .gql(
            Some(&other_token),
            "mutation($c: ID!, $p: ID!) { addToCart(cartId: $c, productId: $p, quantity: 3) { id } }",
            json!({ "c": other, "p": lamp }),
        )
        .await;
    assert_eq!(r.code(), "OUT_OF_STOCK");
    let again = checkout(&h, &token, &cart, "4242424242424242", "d-1").await;
    assert_eq!(
        again.code(),
        "PAYMENT_DECLINED",
        "the same key, the same answer"
    );

    // Bad input is refused with the field.
    let r = h
        .gql(
            Some(&token),
            CHECKOUT,
            json!({ "c": cart, "a": { "name": "", "line1": "x", "city": "y", "postalCode": "1", "country": "DE" }, "p": card("4242424242424242"), "k": "b-1" }),
        )
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("shippingAddress.name")
    );
    let r = checkout(&h, &token, &cart, "4242424242424241", "b-2").await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("card.number")
    );
    assert_eq!(ledger_adds_up(&h, &lamp).await["committed"], 0);

    // The price moved after the lamp was added: refused, the cart shows the new price,
    // and a new attempt pays it.
    let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    h.gql(
        Some(&supplier),
        "mutation($p: ID!) { updateProduct(id: $p, input: { price: { amount: 1200, currency: \"EUR\" } }) { id } }",
        json!({ "p": lamp }),
    )
    .await
    .data();
    let r = checkout(&h, &token, &cart, "4242424242424242", "p-1").await;
    assert_eq!(r.code(), "PRICE_CHANGED");
    assert_eq!(
        r.body["errors"][0]["extensions"]["lines"],
        json!([{ "productId": lamp, "was": 1000, "now": 1200 }])
    );
    let r = checkout(&h, &token, &cart, "4242424242424242", "p-2").await;
    assert_eq!(
        r.data()["checkout"]["lines"][0]["unitPrice"]["amount"],
        1_200
    );
    let id = r.data()["checkout"]["id"].as_str().unwrap().to_string();

    // Cancelled before shipping: refunded and restocked.
    let r = h
        .gql(
            Some(&token),
            "mutation($id: ID!) { cancelOrder(id: $id, reason: \"changed my mind\") { status canCancel statusHistory { status note } payment { status refundedAmount { amount } } } }",
            json!({ "id": id }),
        )
        .await;
    let o = r.data()["cancelOrder"].clone();
    assert_eq!(o["status"], "CANCELLED");
    assert_eq!(o["canCancel"], false);
    assert_eq!(o["payment"]["status"], "REFUNDED");
    assert_eq!(
        o["statusHistory"][2],
        json!({ "status": "CANCELLED", "note": "changed my mind" })
    );
    let e = ledger_adds_up(&h, &lamp).await;
    assert_eq!(
        (e["committed"].as_i64(), e["available"].as_i64()),
        (Some(0), Some(4))
    );
    let r = h
        .gql(
            Some(&token),
            "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(r.code(), "CONFLICT");
    h.stop().await;
}

#[tokio::test]
async fn concurrent_checkouts_for_the_last_units_never_oversell() {
    each_db("e2e_checkout_race", async |db| {
        let h = start(db).await;
        let buyers = 12;
        let lamp = product(&h, 2_500, buyers).await;
        let mut carts = Vec::new();
        for i in 0..buyers {
            carts.push(cart_of(&h, &format!("racer-{i}"), &[(&lamp, 1)]).await);
        }
        // A recount finds 3: twelve carts hold a lamp each, three can have one.
        set_stock(&h, &lamp, 3).await;
        let h = std::sync::Arc::new(h);
        let mut tasks = Vec::new();
        for (i, (token, cart)) in carts.into_iter().enumerate() {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let r = checkout(&h, &token, &cart, "4242424242424242", &format!("race-{i}")).await;
                let code = match r
                    .body
                    .pointer("/errors/0/extensions/code")
                    .and_then(Value::as_str)
                {
                    None => "ORDER".to_string(),
                    Some(code) => code.to_string(),
                };
                (code, r.body)
            }));
        }
        let mut outcomes = std::collections::BTreeMap::new();
        let mut unexpected = Vec::new();
        for t in tasks {
            let (code, body) = t.await.unwrap();
            if code != "ORDER" && code != "OUT_OF_STOCK" {
                unexpected.push(body);
            }
            *outcomes.entry(code).or_insert(0) += 1;
        }
        assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
        assert_eq!(
            outcomes,
            std::collections::BTreeMap::from([
                ("ORDER".to_string(), 3),
                ("OUT_OF_STOCK".to_string(), 9)
            ])
        );
        let e = ledger_adds_up(&h, &lamp).await;
        assert_eq!(
            (
                e["onHand"].as_i64(),
                e["committed"].as_i64(),
                e["available"].as_i64()
            ),
            (Some(3), Some(3), Some(0))
        );
        let h = std::sync::Arc::try_unwrap(h)
            .ok()
            .expect("no task holds the harness");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn tax_follows_the_shipping_address_not_the_carts_country() {
    each_db("e2e_checkout_tax", async |db| {
        let h = start(db).await;
        let lamp = product(&h, 10_000, 10).await;
        let buy = async |buyer: &str, cart_country: Option<&str>, ship_to: &str| {
            let token = h.token(buyer, Role::Customer);
            let cart = common::store::own_cart(&h, &token).await;
            h.gql(
                Some(&token),
                "mutation($c: ID!, $p: ID!) { addToCart(cartId: $c, productId: $p, quantity: 1) { id } }",
                json!({ "c": cart, "p": lamp }),
            )
            .await
            .data();
            if let Some(country) = cart_country {
                h.gql(
                    Some(&token),
                    "mutation($c: ID!, $k: String!) { setCartCountry(cartId: $c, country: $k) { id } }",
                    json!({ "c": cart, "k": country }),
                )
                .await
                .data();
            }
            let mut a = common::store::address();
            a["country"] = json!(ship_to);
            h.gql(
                Some(&token),
                CHECKOUT,
                json!({ "c": cart, "a": a, "p": common::store::card("4242424242424242"), "k": "tax" }),
            )
            .await
        };
        // No country on the cart, shipped to Germany (19 %): German tax.
        let r = buy("tax-1", None, "DE").await;
        assert_eq!(r.data()["checkout"]["tax"]["amount"], 1_900, "{}", r.body);
        assert_eq!(r.data()["checkout"]["total"]["amount"], 11_900);
        // A cart set to an untaxed country, shipped to Germany: still German tax.
        let r = buy("tax-2", Some("NO"), "de").await;
        assert_eq!(r.data()["checkout"]["tax"]["amount"], 1_900, "{}", r.body);
        // A German cart shipped to France (no rate configured): no tax.
        let r = buy("tax-3", Some("DE"), "FR").await;
        assert_eq!(r.data()["checkout"]["tax"]["amount"], 0, "{}", r.body);
        // Unknown countries are refused, for the cart and for the address.
        let r = buy("tax-4", None, "XX").await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
        let token = h.token("tax-5", Role::Customer);
        let cart = common::store::own_cart(&h, &token).await;
        let r = h
            .gql(
                Some(&token),
                "mutation($c: ID!) { setCartCountry(cartId: $c, country: \"XX\") { id } }",
                json!({ "c": cart }),
            )
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        assert_eq!(
            stock_of(&h, &lamp).await,
            6,
            "three sold, one held by the refused buyer's cart"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn orders_keep_what_was_sold_after_the_product_is_deleted() {
    each_db("e2e_order_deleted_product", async |db| {
        let h = start(db).await;
        let lamp = product(&h, 2_000, 3).await;
        let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
        h.gql(
            Some(&supplier),
            "mutation($p: ID!) { updateProduct(id: $p, input: { images: [\"https://img.test/lamp.jpg\"] }) { id } }",
            json!({ "p": lamp }),
        )
        .await
        .data();
        let (token, cart) = cart_of(&h, "keeper", &[(&lamp, 1)]).await;
        checkout(&h, &token, &cart, "4242424242424242", "keep").await.data();
        let r = h
            .gql(Some(&supplier), "mutation($p: ID!) { deleteProduct(id: $p) }", json!({ "p": lamp }))
            .await;
        assert!(r.body.get("errors").is_none(), "{}", r.body);

        let r = h
            .gql(
                Some(&token),
                "{ myOrders(first: 5) { edges { node { status lines { name sku image quantity unitPrice { amount } product { name } } } } } }",
                json!({}),
            )
            .await;
        let line = &r.body["data"]["myOrders"]["edges"][0]["node"]["lines"][0];
        assert_eq!(line["name"], "Test Lamp", "{}", r.body);
        assert!(line["sku"].as_str().unwrap().starts_with("T-"));
        assert_eq!(line["image"], "https://img.test/lamp.jpg");
        assert_eq!(line["unitPrice"]["amount"], 2_000);
        assert_eq!(line["product"], Value::Null, "{}", r.body);

        let r = h
            .gql(
                Some(&supplier),
                "query($s: ID) { supplierOrderLines(supplierId: $s, first: 5) { edges { node { name image product { name } } } } }",
                json!({ "s": shop::seed::DEMO_SUPPLIERS[0].0 }),
            )
            .await;
        let node = &r.body["data"]["supplierOrderLines"]["edges"][0]["node"];
        assert_eq!(node["name"], "Test Lamp", "{}", r.body);
        assert_eq!(node["product"], Value::Null, "{}", r.body);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn one_cart_checked_out_many_times_at_once_is_charged_once() {
    each_db("e2e_checkout_twice", async |db| {
        let h = start(db).await;
        let lamp = product(&h, 1_500, 5).await;
        let (token, cart) = cart_of(&h, "double-clicker", &[(&lamp, 1)]).await;
        // Ten tabs, ten idempotency keys, one cart.
        let attempts = (0..10).map(|i| {
            let (h, token, cart) = (&h, &token, &cart);
            async move { checkout(h, token, cart, "4242424242424242", &format!("tab-{i}")).await }
        });
        let answers = futures::future::join_all(attempts).await;
        let orders: Vec<&Value> = answers
            .iter()
            .filter(|r| r.body.get("errors").is_none())
            .map(|r| &r.body["data"]["checkout"])
            .collect();
        assert_eq!(
            orders.len(),
            1,
            "{answers:?}",
            answers = answers.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        for r in answers.iter().filter(|r| r.body.get("errors").is_some()) {
            // Refused while the first runs, or finding the cart checked out after it.
            assert!(
                ["CONFLICT", "BAD_USER_INPUT", "CART_EXPIRED"].contains(&r.code()),
                "{}",
                r.body
            );
        }
        let payments = h.platform.db("payments");
        let statuses = payments
            .query_all_raw(sea_orm::Statement::from_string(
                payments.get_database_backend(),
                "SELECT status FROM payments_payments WHERE user_id = 'double-clicker'",
            ))
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.try_get::<String>("", "status").unwrap())
            .collect::<Vec<_>>();
        assert_eq!(statuses, ["CAPTURED"], "one payment, captured once");
        assert_eq!(stock_of(&h, &lamp).await, 4);
        assert_eq!(ledger_adds_up(&h, &lamp).await["committed"], 1);
        h.stop().await;
    })
    .await;
}

/// With few connections for many buyers, checkouts wait in line for a connection
/// instead of failing, and the process never opens more than it was given.
#[tokio::test]
async fn checkouts_queue_for_database_connections_within_the_configured_total() {
    let dbs = shop_kit::testing::databases("e2e_checkout_pool").await;
    let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") else {
        shop_kit::testing::cleanup(&dbs).await;
        return;
    };
    let shop_kit::testing::TestDb::Mysql { database, .. } = mysql else {
        unreachable!()
    };
    // Two per subgraph: the least a pool is given.
    let total = 2 * shop::subgraphs::SUBGRAPHS.len() as u32;
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = common::Harness::start_with(dir, Some(mysql), true, |o| {
        o.db_max_connections = total;
    })
    .await;
    let buyers = 24;
    let lamp = product(&h, 990, buyers).await;
    let mut carts = Vec::new();
    for i in 0..buyers {
        carts.push(cart_of(&h, &format!("queued-{i}"), &[(&lamp, 1)]).await);
    }
    let watcher = mysql.connect().await;
    let count_sql =
        format!("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = '{database}'");
    let busiest = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (busiest, done) = (busiest.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let row = watcher
                    .query_one_raw(sea_orm::Statement::from_string(
                        watcher.get_database_backend(),
                        count_sql.clone(),
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                // Less the watcher's own connection.
                let n = row.try_get::<i64>("", "n").unwrap() - 1;
                busiest.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let answers = futures::future::join_all(carts.iter().enumerate().map(|(i, (token, cart))| {
        let h = &h;
        async move { checkout(h, token, cart, "4242424242424242", &format!("q-{i}")).await }
    }))
    .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let failed: Vec<&Value> = answers
        .iter()
        .filter(|r| r.body.get("errors").is_some())
        .map(|r| &r.body)
        .collect();
    assert!(
        failed.is_empty(),
        "every checkout waits its turn: {failed:?}"
    );
    let busiest = busiest.load(std::sync::atomic::Ordering::Relaxed);
    // One over at most: a connection a pool has just closed can still be listed by the
    // server for a moment while its replacement opens (without the shared total this
    // process would open up to 7 x 64).
    assert!(
        (1..=i64::from(total) + 1).contains(&busiest),
        "{busiest} connections open, {total} allowed"
    );
    assert_eq!(stock_of(&h, &lamp).await, 0);
    h.stop().await;
    shop_kit::testing::cleanup(&dbs).await;
}

/// What a crash leaves behind, and what the recovery task makes of it: a checkout that
/// had taken the stock but not the money is undone; one that was paid is finished.
#[tokio::test]
async fn a_crashed_checkout_is_undone_before_payment_and_finished_after_it() {
    use sea_orm::{ActiveModelTrait, Set};
    use shop_kit::internal::SubgraphClient;
    use shop_orders::entity::checkout as row;
    let h = start(None).await;
    let lamp = product(&h, 1_000, 5).await;
    let client = |name: &str, scopes: &[&'static str]| {
        SubgraphClient::new(
            name,
            h.platform.subgraph_url(name).unwrap(),
            h.platform.internal.clone(),
            "orders",
            scopes,
        )
    };
    let ctx = shop_orders::OrdersCtx::new(
        h.platform.db("orders"),
        shop_orders::Services {
            catalog: Some(client("catalog", &[])),
            carts: Some(client("carts", &["carts:checkout"])),
            inventory: Some(client("inventory", &["inventory:hold"])),
            payments: Some(client("payments", &["payments:charge"])),
            users: Some(client("users", &["users:contact"])),
            shipping: Some(client("shipping", &["shipping:quote"])),
        },
    );
    let stale = chrono::Utc::now() - chrono::Duration::minutes(5);
    let address = json!({ "name": "Ann", "line1": "Main 1", "line2": "", "city": "Oslo", "postalCode": "0150", "region": "", "country": "NO", "phone": null });
    let insert =
        async |id: &str, user: &str, cart: &str, key: &str, step: &str, payment: Option<String>| {
            row::ActiveModel {
                id: Set(id.to_string()),
                user_id: Set(user.to_string()),
                idempotency_key: Set(key.to_string()),
                cart_id: Set(cart.to_string()),
                shipping_address: Set(address.to_string()),
                step: Set(step.to_string()),
                payment_id: Set(payment),
                error_code: Set(None),
                error: Set(None),
                created_at: Set(stale),
                updated_at: Set(stale),
                active_cart_id: Set(Some(cart.to_string())),
                attempt: Set(0),
                shipping_choices: Set(None),
            }
            .insert(&ctx.db)
            .await
            .unwrap();
        };

    // Crashed after taking the stock: the recovery gives it back.
    let (token_a, cart_a) = cart_of(&h, "crash-a", &[(&lamp, 2)]).await;
    let order_a = shop_kit::ids::new_id();
    ctx.services
        .commit_stock(
            &cart_a,
            &order_a,
            &ctx.services
                .cart(&cart_a, "crash-a", "NO")
                .await
                .unwrap()
                .lines,
        )
        .await
        .unwrap();
    insert(&order_a, "crash-a", &cart_a, "ka", "STOCK_COMMITTED", None).await;
    assert_eq!(ledger_adds_up(&h, &lamp).await["committed"], 2);

    // Crashed after the capture: the recovery makes the order.
    let (token_b, cart_b) = cart_of(&h, "crash-b", &[(&lamp, 1)]).await;
    let order_b = shop_kit::ids::new_id();
    let cart = ctx.services.cart(&cart_b, "crash-b", "NO").await.unwrap();
    ctx.services
        .commit_stock(&cart_b, &order_b, &cart.lines)
        .await
        .unwrap();
    let card = shop_orders::service::ports::CardFields {
        number: "4242424242424242".into(),
        exp_month: 12,
        exp_year: 2031,
        cvc: "123".into(),
        holder: "Bob".into(),
    };
    let payment = ctx
        .services
        .charge(
            &order_b,
            "crash-b",
            cart.total,
            &cart.currency,
            &card,
            "checkout:crash-b:kb",
        )
        .await
        .unwrap();
    insert(
        &order_b,
        "crash-b",
        &cart_b,
        "kb",
        "PAYMENT_CAPTURED",
        Some(payment.id),
    )
    .await;

    // Crashed after the charge, before its record: the checkout's record says nothing
    // was paid, the provider says otherwise, and the provider wins: the order is made.
    let (token_c, cart_c) = cart_of(&h, "crash-c", &[(&lamp, 1)]).await;
    let order_c = shop_kit::ids::new_id();
    let cart = ctx.services.cart(&cart_c, "crash-c", "NO").await.unwrap();
    ctx.services
        .commit_stock(&cart_c, &order_c, &cart.lines)
        .await
        .unwrap();
    ctx.services
        .charge(
            &order_c,
            "crash-c",
            cart.total,
            &cart.currency,
            &card,
            &format!("checkout:{order_c}"),
        )
        .await
        .unwrap();
    insert(&order_c, "crash-c", &cart_c, "kc", "STARTED", None).await;

    assert_eq!(
        shop_orders::service::checkout::recover(&ctx).await.unwrap(),
        3,
        "one undone, two completed"
    );
    let e = ledger_adds_up(&h, &lamp).await;
    assert_eq!(e["committed"], 2, "a's units back, b's and c's sold: {e}");
    let r = checkout(&h, &token_c, &cart_c, "4242424242424242", "kc").await;
    assert_eq!(r.data()["checkout"]["id"], order_c.as_str());
    assert_eq!(r.data()["checkout"]["status"], "PAID");

    // Asking again with the same keys: a's refusal, b's order.
    let r = checkout(&h, &token_a, &cart_a, "4242424242424242", "ka").await;
    assert_eq!(r.code(), "CART_EXPIRED");
    let r = checkout(&h, &token_b, &cart_b, "4242424242424242", "kb").await;
    let o = r.data()["checkout"].clone();
    assert_eq!(o["id"], order_b.as_str());
    assert_eq!(o["status"], "PAID");
    assert_eq!(
        o["shippingAddress"],
        json!({ "city": "Oslo", "country": "NO" })
    );
    let r = h
        .gql(
            Some(&token_b),
            "query($c: ID!) { cart(id: $c) { itemCount } }",
            json!({ "c": cart_b }),
        )
        .await;
    assert_eq!(
        r.data()["cart"]["itemCount"],
        0,
        "the paid cart was emptied"
    );
    h.stop().await;
}

#[tokio::test]
async fn admins_list_move_refund_and_remove_orders() {
    let h = start(None).await;
    let lamp = product(&h, 1_000, 10).await;
    let (buyer, cart) = cart_of(&h, "buyer-9", &[(&lamp, 1)]).await;
    let first = checkout(&h, &buyer, &cart, "4242424242424242", "a-1").await;
    let first = first.data()["checkout"]["id"].as_str().unwrap().to_string();
    let (_, cart2) = cart_of(&h, "buyer-9", &[(&lamp, 2)]).await;
    let second = checkout(&h, &buyer, &cart2, "4242424242424242", "a-2").await;
    let second = second.data()["checkout"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);

    let list = "query($s: OrderStatus, $u: ID) { orders(status: $s, userId: $u, first: 10) { totalCount edges { node { id status } } } }";
    let r = h.gql(Some(&admin), list, json!({ "u": "buyer-9" })).await;
    assert_eq!(r.data()["orders"]["totalCount"], 2);
    assert_eq!(
        r.data()["orders"]["edges"][0]["node"]["id"],
        second.as_str(),
        "newest first"
    );
    assert_eq!(
        h.gql(Some(&buyer), list, json!({})).await.code(),
        "FORBIDDEN"
    );

    // Along the valid path only, each step recorded.
    let set = "mutation($id: ID!, $s: OrderStatus!, $n: String) { setOrderStatus(id: $id, status: $s, note: $n) { status statusHistory { status actor note } } }";
    let r = h
        .gql(Some(&admin), set, json!({ "id": first, "s": "SHIPPED" }))
        .await;
    assert_eq!(r.code(), "CONFLICT", "PAID cannot jump to SHIPPED");
    h.gql(
        Some(&admin),
        set,
        json!({ "id": first, "s": "FULFILLED", "n": "packed" }),
    )
    .await
    .data();
    let r = h
        .gql(
            Some(&admin),
            set,
            json!({ "id": first, "s": "SHIPPED", "n": "DHL 123" }),
        )
        .await;
    let hist = r.data()["setOrderStatus"]["statusHistory"].clone();
    assert_eq!(
        hist[3],
        json!({ "status": "SHIPPED", "actor": shop::seed::DEMO_ADMIN, "note": "DHL 123" })
    );
    assert_eq!(
        h.gql(Some(&buyer), set, json!({ "id": first, "s": "DELIVERED" }))
            .await
            .code(),
        "FORBIDDEN"
    );
    let r = h
        .gql(
            Some(&buyer),
            "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(r.code(), "CONFLICT", "shipped orders cannot be cancelled");

    // A partial refund keeps the status; the rest makes it REFUNDED.
    let refund = "mutation($id: ID!, $a: Int) { refundOrder(id: $id, amount: $a, reason: \"damaged\") { status payment { status refundedAmount { amount } } } }";
    let r = h
        .gql(Some(&admin), refund, json!({ "id": first, "a": 300 }))
        .await;
    assert_eq!(r.data()["refundOrder"]["status"], "SHIPPED");
    assert_eq!(
        r.data()["refundOrder"]["payment"]["status"],
        "PARTIALLY_REFUNDED"
    );
    let r = h.gql(Some(&admin), refund, json!({ "id": first })).await;
    assert_eq!(r.data()["refundOrder"]["status"], "REFUNDED");
    assert_eq!(r.data()["refundOrder"]["payment"]["status"], "REFUNDED");

    // Removed: gone from every list and lookup.
    let r = h
        .gql(
            Some(&admin),
            "mutation($id: ID!) { removeOrder(id: $id, reason: \"test order\") }",
            json!({ "id": second }),
        )
        .await;
    assert_eq!(r.data()["removeOrder"], second.as_str());
    let r = h.gql(Some(&admin), list, json!({ "u": "buyer-9" })).await;
    assert_eq!(r.data()["orders"]["totalCount"], 1);
    let r = h
        .gql(
            Some(&buyer),
            "query($id: ID!) { order(id: $id) { id } }",
            json!({ "id": second }),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    h.stop().await;
}

#[tokio::test]
async fn promo_codes_discount_within_their_rules_and_are_counted_at_checkout() {
    let h = start(None).await;
    let lamp = product(&h, 1_000, 20).await;
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    let create = "mutation($i: PromoCodeInput!) { createPromoCode(input: $i) { code uses } }";
    for input in [
        json!({ "code": "save10", "percentOff": 10, "minSubtotal": { "amount": 2000, "currency": "EUR" } }),
        json!({ "code": "FIVER", "amountOff": { "amount": 500, "currency": "EUR" }, "maxUses": 1 }),
        json!({ "code": "OLD", "percentOff": 50, "endsAt": "2020-01-01T00:00:00Z" }),
    ] {
        h.gql(Some(&admin), create, json!({ "i": input }))
            .await
            .data();
    }
    let customer = h.token("promo-buyer", Role::Customer);
    let r = h
        .gql(
            Some(&customer),
            create,
            json!({ "i": { "code": "MINE", "percentOff": 90 } }),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");

    let apply = "mutation($c: ID!, $k: String!) { applyPromoCode(cartId: $c, code: $k) { promoCode promoMessage subtotal { amount } discount { amount } tax { amount } total { amount } } }";
    let (token, cart) = cart_of(&h, "promo-buyer", &[(&lamp, 1)]).await;
    let r = h
        .gql(Some(&token), apply, json!({ "c": cart, "k": "SAVE10" }))
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("from a subtotal of 20.00 EUR")
    );
    let r = h
        .gql(Some(&token), apply, json!({ "c": cart, "k": "old" }))
        .await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let r = h
        .gql(Some(&token), apply, json!({ "c": cart, "k": "NOPE" }))
        .await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a promo code")
    );

    h.gql(
        Some(&token),
        "mutation($c: ID!, $p: ID!) { addToCart(cartId: $c, productId: $p, quantity: 2) { id } }",
        json!({ "c": cart, "p": lamp }),
    )
    .await
    .data();
    let r = h
        .gql(Some(&token), apply, json!({ "c": cart, "k": "save10" }))
        .await;
    let c = r.data()["applyPromoCode"].clone();
    // 3 000 subtotal, 300 off, 19 % tax on 2 700.
    assert_eq!(c["promoCode"], "SAVE10");
    assert_eq!(c["discount"]["amount"], 300);
    assert_eq!(c["tax"]["amount"], 513);
    assert_eq!(c["total"]["amount"], 3_213);
    let r = checkout(&h, &token, &cart, "4242424242424242", "promo-1").await;
    // Plus standard shipping to Germany (4.90, the part is under the 50.00 threshold)
    // and its 19 % tax.
    assert_eq!(r.data()["checkout"]["total"]["amount"], 3_213 + 490 + 93);

    // A code for one use: two carts may carry it, the first checkout uses it up.
    let (a, cart_a) = cart_of(&h, "fiver-a", &[(&lamp, 1)]).await;
    let (b, cart_b) = cart_of(&h, "fiver-b", &[(&lamp, 1)]).await;
    h.gql(Some(&a), apply, json!({ "c": cart_a, "k": "FIVER" }))
        .await
        .data();
    h.gql(Some(&b), apply, json!({ "c": cart_b, "k": "FIVER" }))
        .await
        .data();
    // A declined card gives the use back.
    let r = checkout(&h, &a, &cart_a, "4000000000000002", "f-0").await;
    assert_eq!(r.code(), "PAYMENT_DECLINED");
    let r = checkout(&h, &a, &cart_a, "4242424242424242", "f-1").await;
    assert_eq!(
        r.data()["checkout"]["total"]["amount"],
        1_000 - 500 + 95 + 490 + 93,
        "with standard shipping and its tax"
    );
    let r = checkout(&h, &b, &cart_b, "4242424242424242", "f-2").await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("used up")
    );
    let r = h
        .gql(
            Some(&b),
            "query($c: ID!) { cart(id: $c) { promoMessage discount { amount } } }",
            json!({ "c": cart_b }),
        )
        .await;
    assert_eq!(
        r.data()["cart"],
        json!({ "promoMessage": "FIVER has been used up", "discount": { "amount": 0 } })
    );
    let r = h
        .gql(
            Some(&admin),
            "{ promoCodes(search: \"fiv\") { edges { node { code uses maxUses status } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["promoCodes"]["edges"],
        json!([{ "node": { "code": "FIVER", "uses": 1, "maxUses": 1, "status": "USED_UP" } }])
    );
    h.stop().await;
}

/// A leaked code can be stopped at once, edited, listed by state, and removed when
/// nobody used it; a used one stays (orders refer to it).
#[tokio::test]
async fn admins_edit_disable_list_and_delete_promo_codes() {
    each_db("e2e_promo_admin", async |db| {
        let h = start(db).await;
        let lamp = product(&h, 1_000, 20).await;
        let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
        let create = "mutation($i: PromoCodeInput!) { createPromoCode(input: $i) { code } }";
        for input in [
            json!({ "code": "LEAKED", "percentOff": 50, "description": "staff only" }),
            json!({ "code": "SPRING", "percentOff": 10, "startsAt": "2037-03-01T00:00:00Z" }),
            json!({ "code": "WINTER", "percentOff": 10, "endsAt": "2021-03-01T00:00:00Z" }),
            json!({ "code": "ONCE", "amountOff": { "amount": 100, "currency": "EUR" }, "maxUses": 1 }),
            json!({ "code": "UNUSED", "percentOff": 5 }),
        ] {
            h.gql(Some(&admin), create, json!({ "i": input })).await.data();
        }
        let (token, cart) = cart_of(&h, "leak-buyer", &[(&lamp, 2)]).await;
        let apply = "mutation($c: ID!, $k: String!) { applyPromoCode(cartId: $c, code: $k) { discount { amount } } }";
        let r = h.gql(Some(&token), apply, json!({ "c": cart, "k": "leaked" })).await;
        assert_eq!(r.data()["applyPromoCode"]["discount"]["amount"], 1_000);

        // Disabled: the cart says so and gives nothing; checkout is refused and charges nothing.
        let disable = "mutation($k: String!) { disablePromoCode(code: $k) { code status disabledAt } }";
        let r = h.gql(Some(&admin), disable, json!({ "k": "Leaked" })).await;
        assert_eq!(r.data()["disablePromoCode"]["status"], "DISABLED");
        assert!(r.data()["disablePromoCode"]["disabledAt"].is_string());
        let read = "query($c: ID!) { cart(id: $c) { promoCode promoMessage discount { amount } } }";
        let r = h.gql(Some(&token), read, json!({ "c": cart })).await;
        assert_eq!(
            r.data()["cart"],
            json!({ "promoCode": "LEAKED", "promoMessage": "LEAKED is no longer valid", "discount": { "amount": 0 } })
        );
        let r = checkout(&h, &token, &cart, "4242424242424242", "leak-1").await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
        assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("no longer valid"));
        assert_eq!(ledger_adds_up(&h, &lamp).await["committed"], 0, "nothing was sold");
        let (other, other_cart) = cart_of(&h, "leak-other", &[(&lamp, 1)]).await;
        let r = h.gql(Some(&other), apply, json!({ "c": other_cart, "k": "LEAKED" })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");

        // On again, and edited: an end date, then cleared; a use limit.
        let r = h
            .gql(Some(&admin), "mutation { enablePromoCode(code: \"LEAKED\") { status disabledAt } }", json!({}))
            .await;
        assert_eq!(r.data()["enablePromoCode"], json!({ "status": "ACTIVE", "disabledAt": null }));
        let update = "mutation($k: String!, $i: PromoCodeChange!) { updatePromoCode(code: $k, input: $i) { description endsAt maxUses status percentOff } }";
        let r = h
            .gql(Some(&admin), update, json!({ "k": "LEAKED", "i": { "endsAt": "2020-01-01T00:00:00Z", "maxUses": 3 } }))
            .await;
        let mut changed = r.data()["updatePromoCode"].clone();
        let ends = changed["endsAt"].take();
        assert!(ends.as_str().unwrap().starts_with("2020-01-01T00:00:00"), "{ends}");
        assert_eq!(
            changed,
            json!({ "description": "staff only", "endsAt": null, "maxUses": 3, "status": "EXPIRED", "percentOff": 50 })
        );
        let r = h.gql(Some(&token), read, json!({ "c": cart })).await;
        assert!(r.data()["cart"]["promoMessage"].as_str().unwrap().contains("expired"));
        let r = h
            .gql(Some(&admin), update, json!({ "k": "LEAKED", "i": { "endsAt": null, "description": "for staff" } }))
            .await;
        assert_eq!(
            r.data()["updatePromoCode"],
            json!({ "description": "for staff", "endsAt": null, "maxUses": 3, "status": "ACTIVE", "percentOff": 50 })
        );
        let r = h.gql(Some(&admin), update, json!({ "k": "LEAKED", "i": { "maxUses": 0 } })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        let r = h
            .gql(Some(&admin), update, json!({ "k": "LEAKED", "i": { "startsAt": "2030-01-01T00:00:00Z", "endsAt": "2029-01-01T00:00:00Z" } }))
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        // Past what every store can keep (MariaDB's TIMESTAMP ends in January 2038).
        let r = h.gql(Some(&admin), update, json!({ "k": "LEAKED", "i": { "endsAt": "2099-01-01T00:00:00Z" } })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        let r = h.gql(Some(&admin), update, json!({ "k": "NOSUCH", "i": {} })).await;
        assert_eq!(r.code(), "NOT_FOUND");

        // ONCE used up by a checkout.
        let (b, cart_b) = cart_of(&h, "once-buyer", &[(&lamp, 1)]).await;
        h.gql(Some(&b), apply, json!({ "c": cart_b, "k": "ONCE" })).await.data();
        checkout(&h, &b, &cart_b, "4242424242424242", "once-1").await.data();

        // Lists: by state, by text, a page at a time.
        let list = "query($s: PromoCodeStatus, $q: String, $f: Int, $a: String) { promoCodes(status: $s, search: $q, first: $f, after: $a) { totalCount pageInfo { hasNextPage endCursor } edges { node { code } } } }";
        let codes = |v: &Value| -> Vec<String> {
            v["promoCodes"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["code"].as_str().unwrap().to_string()).collect()
        };
        for (status, want) in [
            ("ACTIVE", vec!["LEAKED", "UNUSED"]),
            ("SCHEDULED", vec!["SPRING"]),
            ("EXPIRED", vec!["WINTER"]),
            ("USED_UP", vec!["ONCE"]),
            ("DISABLED", vec![]),
        ] {
            let r = h.gql(Some(&admin), list, json!({ "s": status })).await;
            assert_eq!(codes(r.data()), want, "{status}");
        }
        let r = h.gql(Some(&admin), list, json!({ "q": "staff" })).await;
        assert_eq!(codes(r.data()), vec!["LEAKED"], "found by description");
        let r = h.gql(Some(&admin), list, json!({ "q": "%" })).await;
        assert_eq!(codes(r.data()), Vec::<String>::new(), "wildcards are literal");
        let r = h.gql(Some(&admin), list, json!({ "f": 2 })).await;
        assert_eq!(r.data()["promoCodes"]["totalCount"], 5);
        assert_eq!(codes(r.data()), vec!["LEAKED", "ONCE"]);
        let after = r.data()["promoCodes"]["pageInfo"]["endCursor"].clone();
        let r = h.gql(Some(&admin), list, json!({ "f": 2, "a": after })).await;
        assert_eq!(codes(r.data()), vec!["SPRING", "UNUSED"]);
        let r = h.gql(Some(&admin), list, json!({ "f": 1000 })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");

        // Removing: an unused code goes; a used one is refused and stays.
        let delete = "mutation($k: String!) { deletePromoCode(code: $k) }";
        let r = h.gql(Some(&admin), delete, json!({ "k": "unused" })).await;
        assert_eq!(r.data()["deletePromoCode"], "UNUSED");
        let r = h.gql(Some(&admin), delete, json!({ "k": "UNUSED" })).await;
        assert_eq!(r.code(), "NOT_FOUND");
        let r = h.gql(Some(&admin), delete, json!({ "k": "ONCE" })).await;
        assert_eq!(r.code(), "CONFLICT");
        assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("disable it instead"));
        let r = h.gql(Some(&admin), list, json!({})).await;
        assert_eq!(r.data()["promoCodes"]["totalCount"], 4);

        // Only admins.
        let customer = h.token("leak-buyer", Role::Customer);
        for (q, v) in [
            (disable, json!({ "k": "ONCE" })),
            (delete, json!({ "k": "ONCE" })),
            (list, json!({})),
        ] {
            let r = h.gql(Some(&customer), q, v).await;
            assert_eq!(r.code(), "FORBIDDEN", "{q}");
        }
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn suppliers_see_their_order_lines_and_users_their_orders() {
    let h = start(None).await;
    let lamp = product(&h, 1_000, 10).await;
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    h.gql(
        Some(&admin),
        "mutation { createPromoCode(input: { code: \"ONCE\", percentOff: 10, maxUsesPerUser: 1 }) { code } }",
        json!({}),
    )
    .await
    .data();
    let buyer = shop::seed::DEMO_CUSTOMER;
    let (token, cart) = cart_of(&h, buyer, &[(&lamp, 3)]).await;
    let apply =
        "mutation($c: ID!) { applyPromoCode(cartId: $c, code: \"ONCE\") { discount { amount } } }";
    assert_eq!(
        h.gql(Some(&token), apply, json!({ "c": cart }))
            .await
            .data()["applyPromoCode"]["discount"]["amount"],
        300
    );
    let order = checkout(&h, &token, &cart, "4242424242424242", "s-1").await;
    let order = order.data()["checkout"]["id"].as_str().unwrap().to_string();
    // The code was for one use per person.
    let (_, cart2) = cart_of(&h, buyer, &[(&lamp, 1)]).await;
    let r = h.gql(Some(&token), apply, json!({ "c": cart2 })).await;
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{}",
        r.body
    );

    let lines = "query($s: ID) { supplierOrderLines(supplierId: $s, first: 10) { totalCount edges { node { orderId orderStatus productId quantity lineTotal { amount } } } } }";
    let seller = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    let r = h.gql(Some(&seller), lines, json!({})).await;
    assert_eq!(
        r.data()["supplierOrderLines"]["edges"][0]["node"],
        json!({ "orderId": order, "orderStatus": "PAID", "productId": lamp, "quantity": 3, "lineTotal": { "amount": 3000 } })
    );
    let other = h.token(shop::seed::DEMO_SUPPLIERS[1].0, Role::Supplier);
    let r = h.gql(Some(&other), lines, json!({})).await;
    assert_eq!(r.data()["supplierOrderLines"]["totalCount"], 0);
    let r = h
        .gql(
            Some(&other),
            lines,
            json!({ "s": shop::seed::DEMO_SUPPLIERS[0].0 }),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    assert_eq!(
        h.gql(Some(&token), lines, json!({})).await.code(),
        "FORBIDDEN"
    );
    let r = h
        .gql(
            Some(&admin),
            lines,
            json!({ "s": shop::seed::DEMO_SUPPLIERS[0].0 }),
        )
        .await;
    assert_eq!(r.data()["supplierOrderLines"]["totalCount"], 1);

    // The buyer's orders through the user entity.
    let r = h
        .gql(
            Some(&token),
            "{ me { name orders(first: 5) { totalCount edges { node { id status } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["me"]["orders"]["edges"][0]["node"],
        json!({ "id": order, "status": "PAID" })
    );
    h.stop().await;
}

#[tokio::test]
async fn placing_and_every_status_change_are_announced() {
    let h = start(None).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    h.platform.bus.spawn_consumer(
        "test-order-events",
        &["orders.order_placed", "orders.order_status_changed"],
        shop_kit::events::handler(
            seen.clone(),
            |seen, event: shop_kit::events::Event| async move {
                let mut e = event.payload;
                e["topic"] = json!(event.topic);
                seen.lock().unwrap().push(e);
                Ok(())
            },
        ),
    );
    let lamp = product(&h, 1_000, 5).await;
    let (token, cart) = cart_of(&h, "announced", &[(&lamp, 1)]).await;
    let r = checkout(&h, &token, &cart, "4242424242424242", "e-1").await;
    let id = r.data()["checkout"]["id"].as_str().unwrap().to_string();
    h.gql(
        Some(&token),
        "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await
    .data();
    let events = shop_kit::testing::eventually(std::time::Duration::from_secs(10), || async {
        let got: Vec<Value> = seen.lock().unwrap().clone();
        (got.len() >= 3).then_some(got)
    })
    .await
    .expect("three events");
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["topic"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        summary.contains(&("orders.order_placed".into(), String::new())),
        "{summary:?}"
    );
    assert!(summary.contains(&("orders.order_status_changed".into(), "PAID".into())));
    assert!(summary.contains(&("orders.order_status_changed".into(), "CANCELLED".into())));
    assert!(
        events
            .iter()
            .all(|e| e["orderId"] == id.as_str() && e["userId"] == "announced")
    );
    h.stop().await;
}

/// What a storefront and a supplier's back office need: the supplier's name on a
/// catalog, the buyer's contact on an order (for admins and the lines' suppliers),
/// checkout to a saved address, and a stock list with what to restock first.
#[tokio::test]
async fn storefront_and_back_office_fields() {
    each_db("e2e_frontend_fields", async |db| {
        let h = start(db).await;
        let (supplier_id, supplier_name) = shop::seed::DEMO_SUPPLIERS[0];
        let lamp = product(&h, 1_000, 3).await;
        let bulb = product(&h, 200, 50).await;

        // Anyone sees who sells a product.
        let r = h
            .gql(None, "query($p: ID!) { product(id: $p) { catalog { supplier { id name } } } }", json!({ "p": lamp }))
            .await;
        assert_eq!(
            r.data()["product"]["catalog"]["supplier"],
            json!({ "id": supplier_id, "name": supplier_name })
        );

        // A real account checks out to one of its saved addresses.
        let (_, email, name, _) = shop::seed::DEMO_ACCOUNTS
            .iter()
            .find(|a| a.0 == shop::seed::DEMO_CUSTOMER)
            .copied()
            .unwrap();
        let (token, cart) = cart_of(&h, shop::seed::DEMO_CUSTOMER, &[(&lamp, 1)]).await;
        let r = h
            .gql(
                Some(&token),
                "mutation($i: AddressInput!) { addAddress(input: $i) { id } }",
                json!({ "i": { "kind": "SHIPPING", "name": "Cara Home", "line1": "Drottninggatan 2", "city": "Stockholm", "postalCode": "111 51", "country": "SE" } }),
            )
            .await;
        let address_id = r.data()["addAddress"]["id"].as_str().unwrap().to_string();
        let by_id = "mutation($c: ID!, $a: ID, $s: ShippingAddressInput, $p: PaymentCardInput!, $k: String!) { checkout(cartId: $c, shippingAddressId: $a, shippingAddress: $s, payment: $p, idempotencyKey: $k) { id shippingAddress { name city country } buyer { id name email } } }";
        let card = json!({ "number": "4242424242424242", "expMonth": 12, "expYear": 2031, "cvc": "737", "holder": "Cara" });
        for (vars, code) in [
            (json!({ "c": cart, "p": card, "k": "none" }), "BAD_USER_INPUT"),
            (json!({ "c": cart, "a": address_id, "s": address(), "p": card, "k": "both" }), "BAD_USER_INPUT"),
            (json!({ "c": cart, "a": shop_kit::ids::new_id(), "p": card, "k": "unknown" }), "NOT_FOUND"),
        ] {
            let r = h.gql(Some(&token), by_id, vars).await;
            assert_eq!(r.code(), code, "{}", r.body);
        }
        // Someone else's saved address is not theirs to ship to.
        let stranger = h.token("stranger-1", Role::Customer);
        let (_, other_cart) = cart_of(&h, "stranger-1", &[(&bulb, 1)]).await;
        let r = h
            .gql(Some(&stranger), by_id, json!({ "c": other_cart, "a": address_id, "p": card, "k": "theirs" }))
            .await;
        assert_eq!(r.code(), "NOT_FOUND", "{}", r.body);

        let r = h
            .gql(Some(&token), by_id, json!({ "c": cart, "a": address_id, "p": card, "k": "saved" }))
            .await;
        let order = r.data()["checkout"].clone();
        assert_eq!(order["shippingAddress"], json!({ "name": "Cara Home", "city": "Stockholm", "country": "SE" }));
        assert_eq!(
            order["buyer"],
            json!({ "id": shop::seed::DEMO_CUSTOMER, "name": name, "email": email })
        );
        let order_id = order["id"].as_str().unwrap().to_string();

        // The admin and the line's supplier see whom to contact.
        let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
        let r = h
            .gql(Some(&admin), "query($o: ID!) { order(id: $o) { buyer { name email } } }", json!({ "o": order_id }))
            .await;
        assert_eq!(r.data()["order"]["buyer"], json!({ "name": name, "email": email }));
        let supplier = h.token(supplier_id, Role::Supplier);
        let r = h
            .gql(Some(&supplier), "{ supplierOrderLines(first: 20) { edges { node { orderId buyer { name email } } } } }", json!({}))
            .await;
        let line = r.data()["supplierOrderLines"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["orderId"] == order_id.as_str())
            .cloned()
            .expect("the supplier sees the line");
        assert_eq!(line["node"]["buyer"], json!({ "name": name, "email": email }));

        // The supplier's stock list: the furthest below their threshold first (the lamp,
        // 2 left of a threshold of 5, on the first page); only low ones on request; their
        // own only.
        h.gql(
            Some(&supplier),
            "mutation($p: ID!) { setLowStockThreshold(productId: $p, threshold: 5) { productId } }",
            json!({ "p": lamp }),
        )
        .await
        .data();
        h.gql(
            Some(&supplier),
            "mutation($p: ID!) { setLowStockThreshold(productId: $p, threshold: 5) { productId } }",
            json!({ "p": bulb }),
        )
        .await
        .data();
        let list = "query($s: ID, $low: Boolean) { stockLevels(supplierId: $s, lowStockOnly: $low, first: 100) { totalCount edges { node { productId available lowStockThreshold lowStock } } } }";
        let r = h.gql(Some(&supplier), list, json!({})).await;
        let total = r.data()["stockLevels"]["totalCount"].clone();
        let nodes: Vec<Value> = r.data()["stockLevels"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect();
        let below = |n: &Value| n["available"].as_i64().unwrap() - n["lowStockThreshold"].as_i64().unwrap();
        assert!(
            nodes.windows(2).all(|w| below(&w[0]) <= below(&w[1])),
            "furthest below the threshold first: {nodes:?}"
        );
        let lamp_level = nodes.iter().find(|n| n["productId"] == lamp.as_str()).expect("the lamp is on the first page");
        assert_eq!(lamp_level, &json!({ "productId": lamp, "available": 2, "lowStockThreshold": 5, "lowStock": true }));
        let r = h.gql(Some(&supplier), list, json!({ "low": true })).await;
        let low = r.data()["stockLevels"]["edges"].as_array().unwrap().clone();
        assert!(low.iter().all(|e| e["node"]["lowStock"] == true), "{low:?}");
        assert!(low.iter().any(|e| e["node"]["productId"] == lamp.as_str()));
        assert!(!low.iter().any(|e| e["node"]["productId"] == bulb.as_str()));
        let r = h.gql(Some(&supplier), list, json!({ "s": shop::seed::DEMO_SUPPLIERS[1].0 })).await;
        assert_eq!(r.code(), "FORBIDDEN");
        let r = h.gql(Some(&stranger), list, json!({})).await;
        assert_eq!(r.code(), "FORBIDDEN");
        let r = h.gql(Some(&admin), list, json!({ "s": supplier_id })).await;
        assert_eq!(r.data()["stockLevels"]["totalCount"], total);
        h.stop().await;
    })
    .await;
}

/// After a recount leaves fewer units than a cart holds, the refusal at checkout tells
/// the truth: what was asked for and what is there now, never "requested 1, available 1".
#[tokio::test]
async fn out_of_stock_after_a_recount_names_what_is_really_there() {
    each_db("e2e_recount_refusal", async |db| {
        let h = start(db).await;
        let lamp = product(&h, 1_000, 3).await;
        let (token, cart) = cart_of(&h, "recount-buyer", &[(&lamp, 3)]).await;
        set_stock(&h, &lamp, 1).await;
        let r = checkout(&h, &token, &cart, "4242424242424242", "recount-1").await;
        assert_eq!(r.code(), "OUT_OF_STOCK", "{}", r.body);
        let lines = &r.body["errors"][0]["extensions"]["lines"];
        assert_eq!(
            lines,
            &json!([{ "productId": lamp, "requested": 3, "available": 1 }])
        );
        // The cart says the same before checkout.
        let read = h
            .gql(
                Some(&token),
                "query($c: ID!) { cart(id: $c) { lines { quantity status statusReason } } }",
                json!({ "c": cart }),
            )
            .await;
        let line = &read.data()["cart"]["lines"][0];
        assert_eq!(line["quantity"], 3);
        assert_eq!(line["status"], "EXPIRED", "{line}");
        assert_eq!(
            line["statusReason"],
            "only 1 of 3 could stay held: the supplier has fewer in stock now"
        );
        // All gone: zero available, not the cart's own hold counted as available.
        set_stock(&h, &lamp, 0).await;
        let r = checkout(&h, &token, &cart, "4242424242424242", "recount-2").await;
        assert_eq!(r.code(), "OUT_OF_STOCK", "{}", r.body);
        assert_eq!(
            r.body["errors"][0]["extensions"]["lines"],
            json!([{ "productId": lamp, "requested": 3, "available": 0 }])
        );
        assert_eq!(ledger_adds_up(&h, &lamp).await["committed"], 0);
        h.stop().await;
    })
    .await;
}

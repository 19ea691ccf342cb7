//! Notifications end to end: account and order events become in-app notifications
//! (listed, counted, marked read, `User.notifications` through the supergraph, live over
//! WebSocket) and mail delivered to a real SMTP server, with preferences, a delivery log,
//! retries with back-off and permanent failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::live::WsClient;
use common::smtp::SmtpServer;
use common::store::{cart_of, checkout, product};
use common::{Harness, each_db, eventually};
use serde_json::{Value, json};
use shop_kit::auth::Role;

const PASSWORD: &str = "correct horse battery";

async fn start_with_smtp(db: Option<&shop_kit::testing::TestDb>, smtp: &SmtpServer) -> Harness {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let url = smtp.url();
    Harness::start_with(dir, db, true, move |o| {
        o.tax_rates = [("DE".to_string(), 1900)].into_iter().collect();
        o.mail = Some(shop_notifications::MailTransport::Smtp(url));
        o.mail_retry = shop_notifications::RetryPolicy {
            max_attempts: 4,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        };
    })
    .await
}

/// Registers, verifies through the mailed link and signs in: the user's id and token.
async fn member(h: &Harness, smtp: &SmtpServer, email: &str, name: &str) -> (String, String) {
    let r = h
        .gql(
            None,
            "mutation($i: RegisterInput!) { register(input: $i) { email } }",
            json!({ "i": { "email": email, "password": PASSWORD, "name": name } }),
        )
        .await;
    r.data();
    let mail = smtp.wait_for(email, "verify-email?token=").await;
    assert!(
        mail.contains("Subject: Confirm your e-mail address"),
        "{mail}"
    );
    assert!(
        mail.contains("Content-Type: text/plain"),
        "a plain-text part"
    );
    assert!(mail.contains("Content-Type: text/html"), "an HTML part");
    assert!(mail.contains(&format!("Hello {name},")));
    let start = mail.find("verify-email?token=").unwrap() + "verify-email?token=".len();
    let token: String = mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    h.gql(
        None,
        "mutation($t: String!) { verifyEmail(token: $t) { emailVerified } }",
        json!({ "t": token }),
    )
    .await
    .data();
    let r = h
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken user { id } } }",
            json!({ "e": email, "p": PASSWORD }),
        )
        .await;
    (
        r.data()["login"]["user"]["id"]
            .as_str()
            .unwrap()
            .to_string(),
        r.data()["login"]["accessToken"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

async fn set_status(h: &Harness, order: &str, status: &str) {
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    h.gql(
        Some(&admin),
        "mutation($o: ID!, $s: OrderStatus!) { setOrderStatus(id: $o, status: $s) { status } }",
        json!({ "o": order, "s": status }),
    )
    .await
    .data();
}

async fn my_notifications(h: &Harness, token: &str) -> Value {
    h.gql(
        Some(token),
        "{ me { notifications(first: 20) { totalCount edges { node { id kind title body orderId read } } } unreadNotificationCount } }",
        json!({}),
    )
    .await
    .data()["me"]
        .clone()
}

#[tokio::test]
async fn orders_become_notifications_live_in_app_and_by_mail() {
    let Some(smtp) = SmtpServer::start("notifications_orders").await else {
        return;
    };
    each_db("notifications_orders", async |db| {
        let h = start_with_smtp(db, &smtp).await;
        let email = format!("ann-{}@example.com", &shop_kit::ids::new_id()[28..]);
        let (user, token) = member(&h, &smtp, &email, "Ann Lee").await;

        let mut ws = WsClient::connect(&h.platform.gateway_url, Some(&token)).await;
        ws.subscribe("n", "subscription { notifications { kind title orderId read } }", json!({}))
            .await;
        eventually("the live listener", || async {
            (h.platform.bus.listeners() >= 1).then_some(())
        })
        .await;

        // A new name reaches notifications: the mails greet the person as they are now.
        h.gql(
            Some(&token),
            "mutation { updateProfile(input: { name: \"Ann Smith\" }) { name } }",
            json!({}),
        )
        .await
        .data();

        let lamp = product(&h, 2500, 5).await;
        let (_, cart) = cart_of(&h, "unused", &[]).await;
        let _ = cart;
        // The member's own cart.
        let cart = common::store::own_cart(&h, &token).await;
        h.gql(
            Some(&token),
            "mutation($c: ID!, $p: ID!) { addToCart(cartId: $c, productId: $p, quantity: 2) { id } }",
            json!({ "c": cart, "p": lamp }),
        )
        .await
        .data();
        h.gql(
            Some(&token),
            "mutation($c: ID!) { setCartCountry(cartId: $c, country: \"DE\") { id } }",
            json!({ "c": cart }),
        )
        .await
        .data();
        let r = checkout(&h, &token, &cart, "4242424242424242", "n-1").await;
        let order = r.data()["checkout"]["id"].as_str().unwrap().to_string();
        // Mails and notifications call the order by its number, not by its id.
        let r = h
            .gql(Some(&token), "query($o: ID!) { order(id: $o) { number } }", json!({ "o": order }))
            .await;
        let short = r.data()["order"]["number"].as_str().unwrap().to_string();
        assert_eq!(short.len(), 11, "{short}");
        assert!(
            short.chars().enumerate().all(|(i, c)| if i == 5 { c == '-' } else { "23456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c) }),
            "{short}"
        );
        assert!(!order.to_uppercase().starts_with(&short[..5]), "not the id's prefix");

        // Live, in the app, and by mail with lines and totals (2 × 25.00 + 19 % tax).
        let live = ws.next_for("n").await;
        let n = &live["data"]["notifications"];
        assert_eq!(n["kind"], "ORDER_PLACED", "{live}");
        assert_eq!(n["title"], format!("Order {short} placed"));
        assert_eq!(n["orderId"], order.as_str());
        assert_eq!(n["read"], false);
        let mail = smtp.wait_for(&email, &format!("Your order {short} is confirmed")).await;
        assert!(mail.contains("2 × Test Lamp"), "{mail}");
        assert!(mail.contains("Hello Ann Smith,"), "the new name: {mail}");
        assert!(mail.contains("50.00 EUR"), "line total: {mail}");
        assert!(mail.contains("Tax: 9.50 EUR"), "{mail}");
        assert!(mail.contains("Total: 59.50 EUR"), "{mail}");
        assert!(mail.contains(&format!("/orders/{order}")), "a link to the order");

        let me = my_notifications(&h, &token).await;
        assert_eq!(me["unreadNotificationCount"], 1);
        let first = me["notifications"]["edges"][0]["node"].clone();
        assert_eq!(first["kind"], "ORDER_PLACED");
        let r = h
            .gql(
                Some(&token),
                "mutation($id: ID!) { markNotificationRead(id: $id) { read readAt } }",
                json!({ "id": first["id"] }),
            )
            .await;
        assert_eq!(r.data()["markNotificationRead"]["read"], true);
        assert_eq!(my_notifications(&h, &token).await["unreadNotificationCount"], 0);
        // Nobody else may mark it.
        let other = h.token("someone-else", Role::Customer);
        let r = h
            .gql(
                Some(&other),
                "mutation($id: ID!) { markNotificationRead(id: $id) { read } }",
                json!({ "id": first["id"] }),
            )
            .await;
        assert_eq!(r.code(), "NOT_FOUND");
        // Nor read them through the supergraph.
        let r = h
            .gql(
                Some(&other),
                "query($id: ID!) { user(id: $id) { notifications { totalCount } } }",
                json!({ "id": user }),
            )
            .await;
        assert!(r.body["errors"].is_array(), "{}", r.body);

        // Shipping is news by mail and in the app; fulfilment is not.
        set_status(&h, &order, "FULFILLED").await;
        set_status(&h, &order, "SHIPPED").await;
        let live = ws.next_for("n").await;
        assert_eq!(live["data"]["notifications"]["kind"], "ORDER_STATUS");
        assert_eq!(
            live["data"]["notifications"]["title"],
            format!("Order {short} has shipped")
        );
        smtp.wait_for(&email, &format!("Your order {short} has shipped")).await;

        // Order mail off: delivery shows in the app only.
        let r = h
            .gql(
                Some(&token),
                "mutation { setNotificationPreferences(emailOrders: false) { emailOrders emailStock } }",
                json!({}),
            )
            .await;
        assert_eq!(
            r.data()["setNotificationPreferences"],
            json!({ "emailOrders": false, "emailStock": true })
        );
        set_status(&h, &order, "DELIVERED").await;
        let live = ws.next_for("n").await;
        assert_eq!(
            live["data"]["notifications"]["title"],
            format!("Order {short} was delivered")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !smtp
                .messages_to(&email)
                .iter()
                .any(|m| common::smtp::decoded(m).contains("was delivered")),
            "no mail once order mail is off"
        );

        // The member's delivery log: verification, confirmation, shipped; all sent once.
        let r = h
            .gql(
                Some(&token),
                "{ myMailDeliveries { totalCount edges { node { subject status attempts to sentAt } } } }",
                json!({}),
            )
            .await;
        let log = r.data()["myMailDeliveries"].clone();
        assert_eq!(log["totalCount"], 3, "{log}");
        for e in log["edges"].as_array().unwrap() {
            assert_eq!(e["node"]["status"], "SENT", "{log}");
            assert_eq!(e["node"]["attempts"], 1);
            assert_eq!(e["node"]["to"], email.as_str());
        }
        assert_eq!(log["edges"][0]["node"]["subject"], format!("Your order {short} has shipped"));
        ws.close().await;
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn refused_mail_is_retried_with_back_off_and_bounces_are_recorded() {
    let Some(smtp) = SmtpServer::start("notifications_retries").await else {
        return;
    };
    let h = start_with_smtp(None, &smtp).await;
    for email in ["busy-1@example.com", "bounce-1@example.com"] {
        h.gql(
            None,
            "mutation($i: RegisterInput!) { register(input: $i) { email } }",
            json!({ "i": { "email": email, "password": PASSWORD, "name": "Bo" } }),
        )
        .await
        .data();
    }
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    let delivery = |to: &'static str| {
        let h = &h;
        let admin = admin.clone();
        async move {
            let r = h
                .gql(
                    Some(&admin),
                    "query($t: String) { mailDeliveries(to: $t) { edges { node { status attempts lastError nextAttemptAt sentAt } } } }",
                    json!({ "t": to }),
                )
                .await;
            r.data()["mailDeliveries"]["edges"][0]["node"].clone()
        }
    };
    // Refused twice with 451, then accepted: three attempts.
    let busy = eventually("the busy mailbox's delivery", || async {
        let d = delivery("busy-1@example.com").await;
        (d["status"] == "SENT").then_some(d)
    })
    .await;
    assert_eq!(busy["attempts"], 3, "{busy}");
    assert!(busy["lastError"].is_null(), "{busy}");
    assert_eq!(smtp.messages_to("busy-1@example.com").len(), 1);
    // Refused with 550: failed for good after one attempt, with the server's reason.
    let bounced = eventually("the bounce", || async {
        let d = delivery("bounce-1@example.com").await;
        (d["status"] == "FAILED").then_some(d)
    })
    .await;
    assert_eq!(bounced["attempts"], 1, "{bounced}");
    assert!(
        bounced["lastError"].as_str().unwrap().contains("550"),
        "{bounced}"
    );
    assert!(bounced["nextAttemptAt"].is_null());
    let r = h
        .gql(
            Some(&admin),
            "{ mailDeliveries(status: FAILED) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r.data()["mailDeliveries"]["totalCount"], 1);
    // Only admins see everyone's mail.
    let customer = h.token("c-1", Role::Customer);
    let r = h
        .gql(
            Some(&customer),
            "{ mailDeliveries { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    h.stop().await;
}

#[tokio::test]
async fn the_embedded_default_writes_mail_files_and_low_stock_reaches_the_supplier() {
    let h = Harness::start(None, true).await;
    // The seeded demo supplier's account is known to notifications (its address came
    // with the registration event).
    let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    // The demo seed gives many products fewer units than their alert: that is their
    // first stock, not stock running low, and nobody is mailed for it.
    let low_alerts = || async {
        let r = h
            .gql(
                Some(&supplier),
                "{ notifications(first: 100) { edges { node { kind productId title body } } } }",
                json!({}),
            )
            .await;
        r.data()["notifications"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e["node"].clone())
            .filter(|n| n["kind"] == "STOCK_LOW")
            .collect::<Vec<Value>>()
    };
    assert_eq!(
        low_alerts().await,
        Vec::<Value>::new(),
        "the seed alerts nobody"
    );

    let lamp = product(&h, 1000, 10).await;
    // Renamed after it was made: the alert uses the name it has now.
    let r = h
        .gql(
            Some(&supplier),
            "mutation($p: ID!) { updateProduct(id: $p, input: { name: \"Brass Desk Lamp\" }) { name } }",
            json!({ "p": lamp }),
        )
        .await;
    assert!(r.body.get("errors").is_none(), "{}", r.body);
    let r = h
        .gql(
            Some(&supplier),
            "mutation($p: ID!) { setLowStockThreshold(productId: $p, threshold: 5) { lowStockThreshold } }",
            json!({ "p": lamp }),
        )
        .await;
    assert!(r.body.get("errors").is_none(), "{}", r.body);
    // The rename reaches inventory by event; wait for it before the stock runs low.
    let (token, cart) = cart_of(&h, "buyer-low", &[(&lamp, 9)]).await;
    let inventory = h.platform.db("inventory");
    eventually("inventory knows the new name", || async {
        use sea_orm::{ConnectionTrait, Statement};
        let row = inventory
            .query_one_raw(Statement::from_sql_and_values(
                inventory.get_database_backend(),
                "SELECT name FROM inventory_items WHERE product_id = ?",
                [lamp.clone().into()],
            ))
            .await
            .ok()??;
        (row.try_get::<Option<String>>("", "name").ok()?? == "Brass Desk Lamp").then_some(())
    })
    .await;
    checkout(&h, &token, &cart, "4242424242424242", "low-1")
        .await
        .data();
    let n = eventually("the supplier's low-stock notification", || async {
        low_alerts()
            .await
            .into_iter()
            .find(|n| n["productId"] == lamp.as_str())
    })
    .await;
    assert_eq!(n["title"], "Stock is running low: Brass Desk Lamp", "{n}");
    assert!(
        n["body"].as_str().unwrap().starts_with("1 unit left"),
        "{n}"
    );
    assert_eq!(low_alerts().await.len(), 1, "one alert, for the lamp");
    let dir = h.dir().join("mail");
    let file = eventually("a mail file", || async {
        std::fs::read_dir(&dir).ok()?.flatten().find_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            common::smtp::decoded(&text)
                .contains("Stock is running low: Brass Desk Lamp")
                .then_some(text)
        })
    })
    .await;
    assert!(file.contains("To: "), "{file}");
    assert!(
        common::smtp::decoded(&file)
            .contains("Brass Desk Lamp has 1 unit left (your alert is at 5 units)"),
        "{file}"
    );
    h.stop().await;
}

/// Runs a whole platform on its own runtime thread until `kill` fires, then drops the
/// runtime without a graceful shutdown: every task of it dies mid-flight, as in a crash.
fn platform_until_killed(
    mysql_url: String,
    redis: String,
    prefix: String,
    kill: tokio::sync::oneshot::Receiver<()>,
) -> (
    std::thread::JoinHandle<()>,
    std::sync::mpsc::Receiver<String>,
) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
            let mut opts = shop::platform::PlatformOptions::for_tests(&dir);
            opts.database_url = Some(mysql_url);
            opts.redis_url = Some(redis);
            opts.bus_prefix = prefix;
            let platform = shop::platform::Platform::start(opts).await.unwrap();
            ready_tx.send(platform.gateway_url.clone()).unwrap();
            let _ = kill.await;
        });
        rt.shutdown_background();
    });
    (thread, ready_rx)
}

#[tokio::test]
async fn events_outlive_a_killed_platform_and_take_effect_once() {
    let Some(redis) = shop_kit::testing::redis_url("notifications_restart") else {
        return;
    };
    let dbs = shop_kit::testing::databases("notifications_restart").await;
    let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") else {
        shop_kit::testing::cleanup(&dbs).await;
        return;
    };
    let prefix = format!("restart-{}", shop_kit::ids::new_id());
    let (kill, killed) = tokio::sync::oneshot::channel();
    let (thread, ready) = platform_until_killed(mysql.url(), redis.clone(), prefix.clone(), killed);
    tokio::task::spawn_blocking(move || ready.recv().unwrap())
        .await
        .unwrap();
    kill.send(()).unwrap();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();

    // While everything is down: the orders subgraph had committed a change whose event
    // its relay never published, and another replica published one (twice: a retry)
    // that no notifications process was there to take.
    let buyer = "buyer-restart";
    let db = mysql.connect().await;
    let txn = shop_kit::db::begin_write(&db).await.unwrap();
    shop_kit::events::Outbox::new("orders_outbox")
        .write(
            &txn,
            "orders.order_status_changed",
            "order-r1",
            json!({ "orderId": "order-r1", "userId": buyer, "from": "FULFILLED", "to": "SHIPPED", "note": "" }),
        )
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let bus = shop_kit::events::EventBus::redis(&redis, &prefix)
        .await
        .unwrap();
    let event = shop_kit::events::Event {
        id: shop_kit::ids::new_id(),
        topic: "orders.order_status_changed".into(),
        payload: json!({ "orderId": "order-r2", "userId": buyer, "from": "SHIPPED", "to": "DELIVERED", "note": "" }),
        occurred_at: chrono::Utc::now().to_rfc3339(),
        aggregate: "order-r2".into(),
        sequence: 1,
        traceparent: None,
    };
    bus.publish(&event).await.unwrap();
    bus.publish(&event).await.unwrap();

    // Restarted: both arrive, each once.
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, Some(mysql), false, |o| {
        o.redis_url = Some(redis.clone());
        o.bus_prefix = prefix.clone();
    })
    .await;
    let token = h.token(buyer, Role::Customer);
    let titles = eventually("both notifications", || async {
        let r = h
            .gql(
                Some(&token),
                "{ notifications { edges { node { orderId title } } } }",
                json!({}),
            )
            .await;
        let edges = r.data()["notifications"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (edges.len() >= 2).then(|| {
            let mut t: Vec<String> = edges
                .iter()
                .map(|e| e["node"]["orderId"].as_str().unwrap().to_string())
                .collect();
            t.sort();
            t
        })
    })
    .await;
    assert_eq!(titles, ["order-r1", "order-r2"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = h
        .gql(Some(&token), "{ unreadNotificationCount }", json!({}))
        .await;
    assert_eq!(
        r.data()["unreadNotificationCount"],
        2,
        "the repeated event took effect once"
    );
    h.stop().await;
    shop_kit::testing::cleanup(&dbs).await;
}

//! The `shop` binary as users run it: the all-in-one process, and the tool commands.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::process::{Child, free_port, shop, shop_in, wait_ready};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_all_in_one_process_serves_the_demo_shop_and_stops_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("shop-bin-{}", std::process::id()));
    let mut child = shop_in(&dir, "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shop");
    let stdout = child.stdout.take().unwrap();
    let mut url = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(u) = line.split("GraphQL API and console: ").nth(1) {
            url = Some(u.trim().to_string());
            break;
        }
    }
    let url = url.expect("the process prints where the API and its console are");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = rt.block_on(async {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"query":"{ catalogs { totalCount } products { totalCount } }"}"#)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["catalogs"]["totalCount"], 3, "{body}");
    assert_eq!(v["data"]["products"]["totalCount"], 330, "{body}");
    assert!(dir.join("catalog.sqlite").exists() && dir.join("inventory.sqlite").exists());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "shop did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_prints_the_plan_and_compose_check_finds_no_drift() {
    let out = shop()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "explain",
            "{ products(first: 2) { edges { node { name stock } } } }",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Fetch(service: \"catalog\")")
            && text.contains("Flatten(path: \"products.edges.@.node\")"),
        "{text}"
    );
    let out = shop()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["compose", "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = shop().args(["explain", "{ nope }"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nope"));
}

#[test]
fn token_mints_a_development_token_and_unknown_config_is_refused() {
    let dir = std::env::temp_dir().join(format!("shop-tok-{}", std::process::id()));
    let out = shop()
        .env("SHOP_DATA_DIR", &dir)
        .args(["token", "--role", "ADMIN"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let bad = shop()
        .env("SHOP_DATA_DIR", &dir)
        .args(["token", "--role", "KING"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let typo = shop()
        .env("SHOP_LISTNE", "x")
        .args(["token"])
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("SHOP_LISTNE"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_closed_stdout_does_not_stop_the_all_in_one_process() {
    let dir = std::env::temp_dir().join(format!("shop-bin-closed-{}", std::process::id()));
    let port = free_port();
    let mut child = shop_in(&dir, &format!("127.0.0.1:{port}"))
        .env("SHOP_SEED", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shop");
    // Nobody reads the banner: the pipe is closed before the process writes it.
    drop(child.stdout.take());
    wait_ready(&reqwest::Client::new(), &format!("http://127.0.0.1:{port}")).await;
    assert!(child.try_wait().unwrap().is_none(), "shop exited");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "shop did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn scaled_out_one_role_per_process_on_mysql_with_events_over_redis() {
    let dbs = shop_kit::testing::databases("scaled_out").await;
    let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") else {
        shop_kit::testing::cleanup(&dbs).await;
        return;
    };
    let Some(redis) = shop_kit::testing::redis_url("scaled_out") else {
        shop_kit::testing::cleanup(&dbs).await;
        return;
    };
    let dir = std::env::temp_dir().join(format!("shop-scaled-{}", shop_kit::ids::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = shop_kit::auth::SigningKey::generate().unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, serde_json::to_string(&key.jwks()).unwrap()).unwrap();
    let service_key = shop_kit::auth::SigningKey::generate()
        .unwrap()
        .to_secret_string();
    let env = |c: &mut Command| {
        c.env("DATABASE_URL", mysql.url())
            .env("SHOP_SERVICE_KEY", &service_key)
            .env("REDIS_URL", &redis)
            .env(
                "SHOP_BUS_PREFIX",
                format!("shop-scaled-{}", std::process::id()),
            )
            .env("SHOP_DATA_DIR", &dir)
            .env("SHOP_JWT_ISSUER", "https://issuer.test")
            .env("SHOP_JWKS_FILE", &jwks)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    let mut migrate = shop();
    env(&mut migrate);
    assert!(migrate.arg("migrate").status().unwrap().success());

    let (uport, cport, iport, gport) = (free_port(), free_port(), free_port(), free_port());
    let (kport, pport, oport, nport) = (free_port(), free_port(), free_port(), free_port());
    let (sport, rport, mport) = (free_port(), free_port(), free_port());
    let urls = vec![
        (
            "SHOP_SUBGRAPH_URL_USERS".to_string(),
            format!("http://127.0.0.1:{uport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_CATALOG".to_string(),
            format!("http://127.0.0.1:{cport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_INVENTORY".to_string(),
            format!("http://127.0.0.1:{iport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_CARTS".to_string(),
            format!("http://127.0.0.1:{kport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_PAYMENTS".to_string(),
            format!("http://127.0.0.1:{pport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_ORDERS".to_string(),
            format!("http://127.0.0.1:{oport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_NOTIFICATIONS".to_string(),
            format!("http://127.0.0.1:{nport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_SHIPPING".to_string(),
            format!("http://127.0.0.1:{sport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_REVIEWS".to_string(),
            format!("http://127.0.0.1:{rport}/graphql"),
        ),
        (
            "SHOP_SUBGRAPH_URL_RECOMMENDATIONS".to_string(),
            format!("http://127.0.0.1:{mport}/graphql"),
        ),
    ];
    let spawn = |args: Vec<String>, extra: Vec<(String, String)>| {
        let mut c = shop();
        env(&mut c);
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .env("SHOP_USERS_URL", format!("http://127.0.0.1:{uport}"))
            .env("SHOP_PUBLIC_URL", format!("http://127.0.0.1:{gport}"))
            .envs(extra);
        Child(c.spawn().unwrap())
    };
    let _users = spawn(
        vec![
            "subgraph".into(),
            "users".into(),
            "--listen".into(),
            format!("127.0.0.1:{uport}"),
        ],
        vec![],
    );
    let _catalog = spawn(
        vec![
            "subgraph".into(),
            "catalog".into(),
            "--listen".into(),
            format!("127.0.0.1:{cport}"),
        ],
        vec![],
    );
    let _inventory = spawn(
        vec![
            "subgraph".into(),
            "inventory".into(),
            "--listen".into(),
            format!("127.0.0.1:{iport}"),
        ],
        vec![],
    );
    // Carts calls catalog and inventory directly, signed with the shared service key.
    let _carts = spawn(
        vec![
            "subgraph".into(),
            "carts".into(),
            "--listen".into(),
            format!("127.0.0.1:{kport}"),
        ],
        urls.clone(),
    );
    let _payments = spawn(
        vec![
            "subgraph".into(),
            "payments".into(),
            "--listen".into(),
            format!("127.0.0.1:{pport}"),
        ],
        urls.clone(),
    );
    let _orders = spawn(
        vec![
            "subgraph".into(),
            "orders".into(),
            "--listen".into(),
            format!("127.0.0.1:{oport}"),
        ],
        urls.clone(),
    );
    let _notifications = spawn(
        vec![
            "subgraph".into(),
            "notifications".into(),
            "--listen".into(),
            format!("127.0.0.1:{nport}"),
        ],
        urls.clone(),
    );
    let _shipping = spawn(
        vec![
            "subgraph".into(),
            "shipping".into(),
            "--listen".into(),
            format!("127.0.0.1:{sport}"),
        ],
        {
            let mut extra = urls.clone();
            extra.push((
                "SHOP_CARRIER_WEBHOOK_SECRET".into(),
                "scaled-webhook-secret".into(),
            ));
            // Scans come from the webhook alone here.
            extra.push(("SHOP_SIMULATED_CARRIER_STEP_SECONDS".into(), "0".into()));
            extra
        },
    );
    let _reviews = spawn(
        vec![
            "subgraph".into(),
            "reviews".into(),
            "--listen".into(),
            format!("127.0.0.1:{rport}"),
        ],
        urls.clone(),
    );
    let _recommendations = spawn(
        vec![
            "subgraph".into(),
            "recommendations".into(),
            "--listen".into(),
            format!("127.0.0.1:{mport}"),
        ],
        urls.clone(),
    );
    let _gateway = spawn(
        vec![
            "gateway".into(),
            "--supergraph".into(),
            "schema/supergraph.graphql".into(),
            "--listen".into(),
            format!("127.0.0.1:{gport}"),
        ],
        urls.clone(),
    );
    let client = reqwest::Client::new();
    let gateway = format!("http://127.0.0.1:{gport}");
    wait_ready(&client, &gateway).await;

    let token = key
        .mint(
            "https://issuer.test",
            "shop",
            "supplier-1",
            &[shop_kit::auth::Role::Supplier],
            Duration::from_secs(300),
        )
        .unwrap();
    let gql = |query: String| {
        let (client, url, token) = (client.clone(), format!("{gateway}/graphql"), token.clone());
        async move {
            let body = client
                .post(url)
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .body(serde_json::json!({ "query": query }).to_string())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            serde_json::from_str::<serde_json::Value>(&body).unwrap()
        }
    };
    let cat = gql("mutation { createCatalog(input: {name: \"Scaled\"}) { id } }".into()).await;
    let cat = cat["data"]["createCatalog"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createCatalog: {cat}"))
        .to_string();
    let p = gql(format!(
        "mutation {{ createProduct(input: {{catalogId: \"{cat}\", sku: \"S-1\", name: \"Scaled Lamp\", price: {{amount: 500, currency: \"EUR\"}}}}) {{ id }} }}"
    ))
    .await;
    let p = p["data"]["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The inventory process learns about the product over Redis, then stock can be set.
    let set = format!(
        "mutation {{ setStock(productId: \"{p}\", quantity: 4, reason: \"delivery\") {{ quantity }} }}"
    );
    let done = shop_kit::testing::eventually(Duration::from_secs(15), || async {
        let r = gql(set.clone()).await;
        (r["data"]["setStock"]["quantity"] == 4).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "the product never reached inventory through Redis"
    );
    // And the catalog process learns the stock back, for the in-stock filter.
    let listed = shop_kit::testing::eventually(Duration::from_secs(15), || async {
        let r =
            gql("{ products(filter: {inStock: true}) { edges { node { name stock } } } }".into())
                .await;
        (r["data"]["products"]["edges"].as_array().map(Vec::len) == Some(1)).then_some(r)
    })
    .await
    .expect("stock reached the catalog through Redis");
    assert_eq!(
        listed["data"]["products"]["edges"][0]["node"],
        serde_json::json!({ "name": "Scaled Lamp", "stock": 4 })
    );

    // A cart in its own process holds stock in the inventory process.
    let created = gql("mutation { createCart { cart { id } } }".into()).await;
    let cart = created["data"]["createCart"]["cart"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    let added = gql(format!(
        "mutation {{ addToCart(cartId: \"{cart}\", productId: \"{p}\", quantity: 3) {{ lines {{ quantity status }} total {{ amount currency }} }} }}"
    ))
    .await;
    assert_eq!(
        added["data"]["addToCart"],
        serde_json::json!({
            "lines": [{ "quantity": 3, "status": "HELD" }],
            "total": { "amount": 1500, "currency": "EUR" }
        }),
        "{added}"
    );
    let r = gql("{ products(first: 1) { edges { node { stock } } } }".into()).await;
    assert_eq!(r["data"]["products"]["edges"][0]["node"]["stock"], 1);

    // Shipping in its own process: the cart's lines reach it through the gateway
    // (`@requires`), the product's supplier from the catalog process over HTTP.
    let zone = gql("mutation { createShippingZone(input: { name: \"Nordics\", countries: [\"NO\", \"SE\"] }) { id } }".into()).await;
    let zone = zone["data"]["createShippingZone"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createShippingZone: {zone}"))
        .to_string();
    let method = gql(format!(
        "mutation {{ createShippingMethod(input: {{ zoneId: \"{zone}\", kind: STANDARD, name: \"Fjord post\", minDays: 2, maxDays: 5, currency: \"EUR\" }}) {{ id }} }}"
    ))
    .await;
    let method = method["data"]["createShippingMethod"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createShippingMethod: {method}"))
        .to_string();
    let rates = gql(format!(
        "mutation {{ setShippingRates(methodId: \"{method}\", rates: [{{ minWeightGrams: 0, maxWeightGrams: 10000, price: 650 }}]) {{ id }} }}"
    ))
    .await;
    assert!(rates.get("errors").is_none(), "{rates}");
    let options = gql(format!(
        "{{ cart(id: \"{cart}\") {{ shippingOptions(address: {{ country: \"NO\" }}) {{ supplierId options {{ name price {{ amount currency }} }} }} }} }}"
    ))
    .await;
    assert_eq!(
        options["data"]["cart"]["shippingOptions"],
        serde_json::json!([{ "supplierId": "supplier-1", "options": [{ "name": "Fjord post", "price": { "amount": 650, "currency": "EUR" } }] }]),
        "{options}"
    );

    // Checkout: orders drives carts, inventory and payments, each its own process.
    let order = gql(format!(
        "mutation {{ checkout(cartId: \"{cart}\", shippingAddress: {{ name: \"Ann\", line1: \"Main 1\", city: \"Oslo\", postalCode: \"0150\", country: \"NO\" }}, payment: {{ number: \"4242424242424242\", expMonth: 12, expYear: 2031, cvc: \"123\", holder: \"Ann\" }}, idempotencyKey: \"scaled-1\") {{ id status total {{ amount }} shipping {{ amount }} shippingMethods {{ name }} payment {{ status }} }} }}"
    ))
    .await;
    let order_id = order["data"]["checkout"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{order}"))
        .to_string();
    let mut placed = order["data"]["checkout"].clone();
    placed.as_object_mut().unwrap().remove("id");
    assert_eq!(
        placed,
        serde_json::json!({ "status": "PAID", "total": { "amount": 1500 + 650 }, "shipping": { "amount": 650 }, "shippingMethods": [{ "name": "Fjord post" }], "payment": { "status": "CAPTURED" } }),
        "{order}"
    );

    // The shipping process makes the shipment from the orders process's event (Redis),
    // a carrier's signed webhook reaches it through the gateway, and the orders
    // process follows the shipment to DELIVERED (Redis again).
    let shipment = shop_kit::testing::eventually(Duration::from_secs(15), || async {
        let r = gql(format!(
            "{{ order(id: \"{order_id}\") {{ shipments {{ id }} }} }}"
        ))
        .await;
        r["data"]["order"]["shipments"][0]["id"]
            .as_str()
            .map(str::to_string)
    })
    .await
    .expect("the shipment reached the shipping process through Redis");
    let r = gql("mutation { setShipFromAddress(input: { name: \"Scaled\", line1: \"Kai 1\", postalCode: \"5003\", city: \"Bergen\", country: \"NO\" }) { country } }".into()).await;
    assert!(r.get("errors").is_none(), "{r}");
    let r = gql(format!("mutation {{ packShipment(shipmentId: \"{shipment}\", items: [{{ productId: \"{p}\", quantity: 3 }}], weightGrams: 900) {{ parcel {{ id }} }} }}")).await;
    let parcel = r["data"]["packShipment"]["parcel"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    let r = gql(format!(
        "mutation {{ buyShippingLabel(parcelId: \"{parcel}\") {{ trackingNumber }} }}"
    ))
    .await;
    let tracking = r["data"]["buyShippingLabel"]["trackingNumber"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    for (n, status) in ["IN_TRANSIT", "DELIVERED"].into_iter().enumerate() {
        let body = serde_json::json!({ "eventId": format!("scaled-{n}"), "trackingNumber": tracking, "status": status, "location": "Bergen", "occurredAt": chrono::Utc::now().to_rfc3339() }).to_string();
        let t = chrono::Utc::now().timestamp();
        let resp = client
            .post(format!("{gateway}/webhooks/shipping/carriers/simulated"))
            .header("content-type", "application/json")
            .header(
                "shop-signature",
                format!(
                    "t={t},v1={}",
                    shop_kit::secrets::hmac_hex(
                        b"scaled-webhook-secret",
                        &[t.to_string().as_bytes(), b".", body.as_bytes()]
                    )
                ),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{status}");
    }
    let delivered = shop_kit::testing::eventually(Duration::from_secs(15), || async {
        let r = gql(format!("{{ order(id: \"{order_id}\") {{ status shipments {{ status trackingNumber events {{ status }} }} }} }}")).await;
        (r["data"]["order"]["status"] == "DELIVERED").then_some(r)
    })
    .await
    .expect("the orders process followed the shipment through Redis");
    assert_eq!(
        delivered["data"]["order"]["shipments"],
        serde_json::json!([{ "status": "DELIVERED", "trackingNumber": tracking, "events": [{ "status": "IN_TRANSIT" }, { "status": "DELIVERED" }] }])
    );
    // The reviews process heard of the purchase and the delivery over Redis.
    let reviewed = shop_kit::testing::eventually(Duration::from_secs(15), || async {
        let r = gql(format!("mutation {{ createReview(input: {{ productId: \"{p}\", rating: 5, body: \"Bright\" }}) {{ rating }} }}")).await;
        (r["data"]["createReview"]["rating"] == 5).then_some(())
    })
    .await;
    assert!(
        reviewed.is_some(),
        "the delivery never reached the reviews process"
    );
    let r = gql(format!(
        "{{ product(id: \"{p}\") {{ name rating {{ count average }} }} }}"
    ))
    .await;
    assert_eq!(
        r["data"]["product"],
        serde_json::json!({ "name": "Scaled Lamp", "rating": { "count": 1, "average": 5.0 } }),
        "{r}"
    );

    // Our own tokens across processes: the users process signs, the gateway and the
    // users process verify with the JWKS it publishes (served at the gateway's origin too).
    let anonymous = |query: &str, auth: Option<&str>| {
        let mut req = client
            .post(format!("{gateway}/graphql"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "query": query }).to_string());
        if let Some(t) = auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        async move {
            serde_json::from_str::<serde_json::Value>(
                &req.send().await.unwrap().text().await.unwrap(),
            )
            .unwrap()
        }
    };
    let r = anonymous(
        "mutation { register(input: {email: \"pat@example.com\", password: \"correct horse battery\", name: \"Pat\"}) { email } }",
        None,
    )
    .await;
    assert_eq!(r["data"]["register"]["email"], "pat@example.com", "{r}");
    let r = anonymous(
        "mutation { login(email: \"pat@example.com\", password: \"correct horse battery\") { accessToken } }",
        None,
    )
    .await;
    let access = r["data"]["login"]["accessToken"]
        .as_str()
        .expect("token")
        .to_string();
    let me = anonymous("{ me { email } }", Some(&access)).await;
    assert_eq!(
        me["data"]["me"],
        serde_json::json!({ "email": "pat@example.com" }),
        "{me}"
    );
    let jwks: serde_json::Value = serde_json::from_str(
        &client
            .get(format!("{gateway}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let kid = jsonwebtoken::decode_header(&access).unwrap().kid.unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str())
    );
    let _ = std::fs::remove_dir_all(&dir);
    shop_kit::testing::cleanup(&dbs).await;
}

/// Passwords, tokens and their hashes stay out of the logs, even at the most verbose
/// level an operator can choose.
#[tokio::test]
async fn secrets_never_reach_the_logs_even_at_trace_level() {
    let dir = std::env::temp_dir().join(format!("shop-bin-secrets-{}", std::process::id()));
    let log_path = dir.with_extension("log");
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let child = Child(
        shop_in(&dir, &format!("127.0.0.1:{port}"))
            .env("SHOP_SEED", "false")
            .env("RUST_LOG", "trace")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start shop"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let gql = async |query: &str, variables: serde_json::Value, token: Option<&str>| {
        let mut req = client
            .post(format!("{base}/graphql"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "query": query, "variables": variables }).to_string());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = req.send().await.unwrap().bytes().await.unwrap();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    let password = "Zebra-Quartz-Marmalade-71";
    let wrong = "Wrong-Guess-Kettle-93";
    let new_password = "Orchid-Lantern-Basalt-58";
    let r = gql(
        "mutation($i: RegisterInput!) { register(input: $i) { email } }",
        serde_json::json!({ "i": { "email": "quiet@example.com", "password": password, "name": "Quiet" } }),
        None,
    )
    .await;
    assert!(r["data"]["register"]["email"].is_string(), "{r}");
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }";
    let r = gql(
        login,
        serde_json::json!({ "e": "quiet@example.com", "p": wrong }),
        None,
    )
    .await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let r = gql(
        login,
        serde_json::json!({ "e": "quiet@example.com", "p": password }),
        None,
    )
    .await;
    let access = r["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = r["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = gql(
        "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }",
        serde_json::json!({ "t": refresh }),
        None,
    )
    .await;
    let access2 = r["data"]["refreshSession"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = gql(
        "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
        serde_json::json!({ "c": password, "n": new_password }),
        Some(&access2),
    )
    .await;
    assert_eq!(r["data"]["changePassword"], true, "{r}");
    // A forged token is refused, and not echoed either.
    let forged = format!("{}x", &access[..access.len() - 1]);
    gql("{ me { id } }", serde_json::json!({}), Some(&forged)).await;
    drop(child);

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.len() > 1000,
        "trace logging produced output: {} bytes",
        logs.len()
    );
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_string();
    for (what, secret) in [
        ("password", password.to_string()),
        ("wrong password", wrong.to_string()),
        ("new password", new_password.to_string()),
        ("refresh token", refresh.clone()),
        ("refresh token hash", sha256_hex(&refresh)),
        ("access token signature", signature(&access)),
        ("refreshed access token signature", signature(&access2)),
        ("forged token signature", signature(&forged)),
        ("a password hash", "$argon2id$".to_string()),
    ] {
        assert!(!logs.contains(&secret), "the logs contain the {what}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&log_path);
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn ready_waits_until_the_demo_shop_is_seeded() {
    let dir = std::env::temp_dir().join(format!("shop-bin-ready-{}", shop_kit::ids::new_id()));
    let port = free_port();
    let _child = Child(
        shop_in(&dir, &format!("127.0.0.1:{port}"))
            .spawn()
            .expect("start shop"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    // The first moment /ready says yes, the whole demo shop is there.
    wait_ready(&client, &base).await;
    let reply = client
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(r#"{"query":"{ products { totalCount } }"}"#)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    assert_eq!(body["data"]["products"]["totalCount"], 330, "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn migrate_on_a_fresh_machine_creates_the_data_directory() {
    let dir = std::env::temp_dir()
        .join(format!("shop-bin-migrate-{}", shop_kit::ids::new_id()))
        .join("nested");
    let out = shop()
        .env("SHOP_DATA_DIR", &dir)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("orders.sqlite").exists());
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// `shop admin create` without a password invites the admin by mail: worded as an
/// invitation (not a reset nobody asked for), with a link on the address the shop
/// listens on, which sets the password once.
#[tokio::test]
async fn an_admin_created_from_the_command_line_is_invited_on_the_shops_address() {
    let dir = std::env::temp_dir().join(format!("shop-bin-invite-{}", shop_kit::ids::new_id()));
    let port = free_port();
    let email = "chief@example.com";
    let out = shop()
        .env("SHOP_DATA_DIR", &dir)
        .env("SHOP_LISTEN", format!("127.0.0.1:{port}"))
        .args(["admin", "create", "--email", email, "--name", "Chief"])
        .env_remove("SHOP_ADMIN_PASSWORD")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("invitation"), "{said}");

    let _child = Child(
        shop_in(&dir, &format!("127.0.0.1:{port}"))
            .env("SHOP_SEED", "false")
            .spawn()
            .expect("start shop"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let mail = shop_kit::testing::eventually(std::time::Duration::from_secs(30), || async {
        std::fs::read_dir(dir.join("mail"))
            .ok()?
            .flatten()
            .find_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                let text = common::smtp::decoded(&text);
                text.contains("To: chief@example.com").then_some(text)
            })
    })
    .await
    .expect("the invitation is written");
    assert!(
        mail.contains("Subject: You are invited to run the shop"),
        "{mail}"
    );
    assert!(
        mail.contains("an administrator account of the shop was created for you"),
        "{mail}"
    );
    assert!(!mail.to_lowercase().contains("asked to reset"), "{mail}");
    let prefix = format!("{base}/reset-password?token=");
    let start = mail
        .find(&prefix)
        .expect("a link on the shop's own address");
    let token: String = mail[start + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let gql = |query: &'static str, variables: serde_json::Value| {
        let client = client.clone();
        let url = format!("{base}/graphql");
        async move {
            let reply = client
                .post(url)
                .header("content-type", "application/json")
                .body(serde_json::json!({ "query": query, "variables": variables }).to_string())
                .send()
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&reply.bytes().await.unwrap()).unwrap()
        }
    };
    let set = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    let r = gql(
        set,
        serde_json::json!({ "t": token, "p": "tall ships sail at dawn 7" }),
    )
    .await;
    assert_eq!(r["data"]["resetPassword"], true, "{r}");
    let r = gql(
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { user { roles } } }",
        serde_json::json!({ "e": email, "p": "tall ships sail at dawn 7" }),
    )
    .await;
    assert_eq!(
        r["data"]["login"]["user"]["roles"],
        serde_json::json!(["ADMIN"]),
        "{r}"
    );
    let r = gql(
        set,
        serde_json::json!({ "t": token, "p": "another long passphrase" }),
    )
    .await;
    assert_eq!(
        r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "used once: {r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

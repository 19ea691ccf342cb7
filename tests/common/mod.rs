//! A small harness: the whole platform on free loopback ports, driven over real HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod live;
pub mod process;
pub mod smtp;
pub mod store;
pub mod web;

use std::time::Duration;

use serde_json::{Value, json};
use shop::platform::{Platform, PlatformOptions};
use shop_kit::auth::{JwksSource, Role, SigningKey, TrustedIssuer};
use shop_kit::testing::TestDb;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "shop";

pub struct Harness {
    pub platform: Platform,
    pub key: SigningKey,
    pub client: reqwest::Client,
    pub dir: std::path::PathBuf,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The status and body of a response (JSON, else the text as a string).
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        Reply {
            status,
            body: serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
        }
    }

    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }
    pub fn code(&self) -> &str {
        self.body
            .pointer("/errors/0/extensions/code")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no error code: {}", self.body))
    }
}

impl Harness {
    pub async fn start(db: Option<&TestDb>, seed: bool) -> Harness {
        let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
        Self::start_in(dir, db, seed).await
    }

    pub async fn start_in(dir: std::path::PathBuf, db: Option<&TestDb>, seed: bool) -> Harness {
        Self::start_with(dir, db, seed, |_| {}).await
    }

    /// As `start_in`, with `customize` changing the options last.
    pub async fn start_with(
        dir: std::path::PathBuf,
        db: Option<&TestDb>,
        seed: bool,
        customize: impl FnOnce(&mut PlatformOptions),
    ) -> Harness {
        let key = SigningKey::generate().expect("key");
        let mut opts = PlatformOptions::for_tests(&dir);
        opts.seed = seed;
        opts.database_url = db.map(|d| d.url());
        opts.issuers = vec![TrustedIssuer::new(
            ISSUER,
            AUDIENCE,
            JwksSource::Inline(key.jwks()),
        )];
        customize(&mut opts);
        let platform = Platform::start(opts).await.expect("platform starts");
        Harness {
            platform,
            key,
            client: reqwest::Client::new(),
            dir,
        }
    }

    pub fn token(&self, user: &str, role: Role) -> String {
        self.key
            .mint(ISSUER, AUDIENCE, user, &[role], Duration::from_secs(600))
            .expect("token")
    }

    pub async fn post_raw(&self, body: &str, headers: &[(&str, &str)]) -> Reply {
        self.post_to(&self.platform.gateway_url, body, headers)
            .await
    }

    /// Posts `body` to `url` (the gateway, or a subgraph directly).
    pub async fn post_to(&self, url: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::read(req.send().await.expect("request")).await
    }

    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.post_raw(
            &json!({ "query": query, "variables": variables }).to_string(),
            &headers,
        )
        .await
    }

    pub async fn stop(self) {
        self.platform.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    shop_kit::testing::eventually(Duration::from_secs(10), check)
        .await
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

pub fn supplier_id(n: u8) -> String {
    format!("00000000-0000-7000-8000-0000000000{n:02}")
}

pub fn role(r: &str) -> Role {
    Role::parse(r).expect("role")
}

/// Runs `f` on the embedded SQLite files (`None`), then on a fresh MySQL database when
/// one is configured.
pub async fn each_db(test: &str, f: impl AsyncFn(Option<&TestDb>)) {
    let dbs = shop_kit::testing::databases(test).await;
    f(None).await;
    if let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") {
        f(Some(mysql)).await;
    }
    shop_kit::testing::cleanup(&dbs).await;
}

/// What is available of a product (as an admin sees it: shoppers do not see numbers).
pub async fn stock_of(h: &Harness, product: &str) -> i64 {
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    let r = h
        .gql(
            Some(&admin),
            "query($id: ID!) { product(id: $id) { stock } }",
            json!({ "id": product }),
        )
        .await;
    r.data()["product"]["stock"].as_i64().unwrap()
}

/// Places an order of one unit of the cheapest product in stock for the buyer whose
/// token this is (paid with the test card, shipped to Berlin); returns its id.
pub async fn place_demo_order(h: &Harness, buyer: &str) -> String {
    let found = h
        .gql(
            None,
            "{ products(filter: { inStock: true }, sort: PRICE_ASC, first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let product = found.data()["products"]["nodes"][0]["id"]
        .as_str()
        .expect("a product in stock")
        .to_string();
    let cart = h
        .gql(
            Some(buyer),
            "mutation { createCart { cart { id } } }",
            json!({}),
        )
        .await;
    let cart = cart.data()["createCart"]["cart"]["id"]
        .as_str()
        .expect("a cart")
        .to_string();
    h.gql(
        Some(buyer),
        "mutation($c: ID!, $p: ID!) { addToCart(cartId: $c, productId: $p, quantity: 1) { itemCount } }",
        json!({ "c": cart, "p": product }),
    )
    .await
    .data();
    let order = h
        .gql(
            Some(buyer),
            "mutation($c: ID!, $k: String!) { checkout(cartId: $c, idempotencyKey: $k, shippingAddress: { name: \"Ann Lee\", line1: \"Hauptstr. 1\", city: \"Berlin\", postalCode: \"10115\", country: \"DE\" }, payment: { number: \"4242424242424242\", expMonth: 12, expYear: 2030, cvc: \"123\", holder: \"Ann Lee\" }) { id status } }",
            json!({ "c": cart, "k": shop_kit::ids::new_id() }),
        )
        .await;
    order.data()["checkout"]["id"]
        .as_str()
        .expect("an order")
        .to_string()
}

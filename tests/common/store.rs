//! Shop set-ups shared by the end-to-end tests: products with stock, carts, checkout.

use serde_json::{Value, json};
use shop_kit::auth::Role;

use super::Harness;

pub const CHECKOUT: &str = "mutation($c: ID!, $a: ShippingAddressInput!, $p: PaymentCardInput!, $k: String!) { checkout(cartId: $c, shippingAddress: $a, payment: $p, idempotencyKey: $k) { id createdAt status canCancel currency total { amount currency } subtotal { amount } tax { amount } lines { productId quantity unitPrice { amount } lineTotal { amount } } statusHistory { status actor } shippingAddress { city country } } }";

pub fn address() -> Value {
    json!({ "name": "Ann Lee", "line1": "Hauptstr. 1", "city": "Berlin", "postalCode": "10115", "country": "DE" })
}

pub fn card(number: &str) -> Value {
    json!({ "number": number, "expMonth": 12, "expYear": 2031, "cvc": "737", "holder": "Ann Lee" })
}

/// The platform with the demo shop seeded and 19 % tax in Germany.
pub async fn start(db: Option<&shop_kit::testing::TestDb>) -> Harness {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    Harness::start_with(dir, db, true, |o| {
        o.tax_rates = [("DE".to_string(), 1900)].into_iter().collect();
    })
    .await
}

/// The first demo supplier's first catalog.
pub async fn demo_catalog(h: &Harness) -> String {
    let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    let r = h
        .gql(
            Some(&supplier),
            "query($s: ID) { catalogs(supplierId: $s, first: 1) { edges { node { id } } } }",
            json!({ "s": shop::seed::DEMO_SUPPLIERS[0].0 }),
        )
        .await;
    r.data()["catalogs"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A fresh product of the first demo supplier with `stock` units: its id.
pub async fn product(h: &Harness, price: i64, stock: i64) -> String {
    let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    let catalog = demo_catalog(h).await;
    let sku = format!("T-{}", &shop_kit::ids::new_id()[24..]);
    let r = h
        .gql(
            Some(&supplier),
            "mutation($c: ID!, $s: String!, $p: Int!) { createProduct(input: { catalogId: $c, sku: $s, name: \"Test Lamp\", price: { amount: $p, currency: \"EUR\" } }) { id } }",
            json!({ "c": catalog, "s": sku, "p": price }),
        )
        .await;
    let id = r.data()["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    set_stock(h, &id, stock).await;
    id
}

pub async fn set_stock(h: &Harness, product: &str, stock: i64) {
    let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    let done = shop_kit::testing::eventually(std::time::Duration::from_secs(10), || async {
        let r = h
            .gql(
                Some(&supplier),
                "mutation($p: ID!, $q: Int!) { setStock(productId: $p, quantity: $q, reason: \"count\") { quantity } }",
                json!({ "p": product, "q": stock }),
            )
            .await;
        r.body.get("errors").is_none().then_some(())
    })
    .await;
    assert!(done.is_some(), "stock set");
}

/// The signed-in caller's cart (made when they have none): its id.
pub async fn own_cart(h: &Harness, token: &str) -> String {
    let r = h
        .gql(
            Some(token),
            "mutation { createCart { cart { id } } }",
            json!({}),
        )
        .await;
    r.data()["createCart"]["cart"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A signed-in buyer's cart with `lines`: the buyer's token and the cart id.
pub async fn cart_of(h: &Harness, buyer: &str, lines: &[(&str, i64)]) -> (String, String) {
    let token = h.token(buyer, Role::Customer);
    let cart = own_cart(h, &token).await;
    for (p, q) in lines {
        let r = h
            .gql(
                Some(&token),
                "mutation($c: ID!, $p: ID!, $q: Int!) { addToCart(cartId: $c, productId: $p, quantity: $q) { id } }",
                json!({ "c": cart, "p": p, "q": q }),
            )
            .await;
        assert!(r.body.get("errors").is_none(), "{}", r.body);
    }
    h.gql(
        Some(&token),
        "mutation($c: ID!) { setCartCountry(cartId: $c, country: \"DE\") { id } }",
        json!({ "c": cart }),
    )
    .await
    .data();
    (token, cart)
}

pub async fn checkout(
    h: &Harness,
    token: &str,
    cart: &str,
    card_number: &str,
    key: &str,
) -> super::Reply {
    h.gql(
        Some(token),
        CHECKOUT,
        json!({ "c": cart, "a": address(), "p": card(card_number), "k": key }),
    )
    .await
}

/// An import job once it has stopped running (done, ready for review, failed,
/// cancelled or rolled back); panics after 1,500 looks 20 ms apart.
pub async fn settle_import(h: &Harness, token: &str, id: &str) -> Value {
    for _ in 0..1500 {
        let r = h
            .gql(
                Some(token),
                "query($i: ID!) { catalogImport(id: $i) { id status failure counts { rows toCreate toUpdate unchanged failed applied } } }",
                json!({ "i": id }),
            )
            .await;
        let job = r.data()["catalogImport"].clone();
        if !["QUEUED", "VALIDATING", "APPLYING", "ROLLING_BACK"]
            .contains(&job["status"].as_str().unwrap())
        {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("import {id} did not settle");
}

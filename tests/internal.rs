//! Calls between our services: internal fields are absent from the public API, refuse
//! people's tokens at the subgraph, and work with a service token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use serde_json::{Value, json};

async fn post(h: &Harness, url: &str, token: &str, query: &str, variables: Value) -> Value {
    let auth = format!("Bearer {token}");
    h.post_to(
        url,
        &json!({ "query": query, "variables": variables }).to_string(),
        &[("authorization", &auth)],
    )
    .await
    .body
}

#[tokio::test]
async fn stock_holds_are_for_our_services_only() {
    let h = Harness::start(None, true).await;
    let admin = h.token(shop::seed::DEMO_ADMIN, shop_kit::auth::Role::Admin);
    let r = h
        .gql(
            Some(&admin),
            "{ products(first: 50) { edges { node { id stock } } } }",
            json!({}),
        )
        .await;
    let node = r.data()["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["stock"].as_i64().unwrap() >= 3)
        .expect("a product with 3 or more in stock")
        .clone();
    let product = node["id"].as_str().unwrap().to_string();
    let stock = node["stock"].as_i64().unwrap();
    let hold = "mutation($p: ID!) { holdStock(owner: \"cart-1\", productId: $p, quantity: 2) { productId quantity expiresAt } }";

    // Not part of the public API at all.
    let customer = h.token(shop::seed::DEMO_CUSTOMER, shop_kit::auth::Role::Customer);
    let r = h.gql(Some(&customer), hold, json!({ "p": product })).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED");

    // At the subgraph itself, a person's token (even an admin's) is refused.
    let inventory = h.platform.subgraph_url("inventory").unwrap().to_string();
    let admin = h.token(shop::seed::DEMO_ADMIN, shop_kit::auth::Role::Admin);
    let r = post(&h, &inventory, &admin, hold, json!({ "p": product })).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");

    // A service token holds the units, and shoppers see them gone.
    let service = h
        .platform
        .internal
        .token("carts", &["inventory:hold"])
        .unwrap();
    let r = post(&h, &inventory, &service, hold, json!({ "p": product })).await;
    assert_eq!(r["data"]["holdStock"][0]["quantity"], 2, "{r}");
    assert_eq!(common::stock_of(&h, &product).await, stock - 2);

    // A service token without the scope is refused too.
    let other = h
        .platform
        .internal
        .token("reviews", &["reviews:write"])
        .unwrap();
    let r = post(&h, &inventory, &other, hold, json!({ "p": product })).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN");
    h.stop().await;
}

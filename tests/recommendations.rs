//! Recommendations through the gateway, on SQLite and MariaDB: "also bought" from paid
//! orders, normalised so a best-seller in every basket does not come first, updated
//! by each new order, without what is out of stock; trending products.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::store::{cart_of, checkout, product, set_stock, start};
use common::{Harness, each_db};
use serde_json::{Value, json};

const ALSO: &str =
    "query($p: ID!, $n: Int!) { product(id: $p) { alsoBought(first: $n) { id name } } }";

async fn order(h: &Harness, n: usize, products: &[&str]) {
    let lines: Vec<(&str, i64)> = products.iter().map(|p| (*p, 1)).collect();
    let (token, cart) = cart_of(h, &format!("recs-buyer-{n}"), &lines).await;
    let r = checkout(h, &token, &cart, "4242424242424242", &format!("recs-{n}")).await;
    assert_eq!(r.data()["checkout"]["status"], "PAID", "{}", r.body);
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

async fn also_bought(h: &Harness, product: &str) -> Vec<String> {
    let d = h.gql(None, ALSO, json!({ "p": product, "n": 10 })).await;
    ids(&d.data()["product"]["alsoBought"])
}

/// Waits until `also_bought(product)` is `want` (the orders reach recommendations as
/// events).
async fn settles(h: &Harness, what: &str, product: &str, want: &[&String]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    common::eventually(what, || async {
        (also_bought(h, product).await == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn also_bought_is_normalised_incremental_and_in_stock_and_trending_ranks_recent_sales() {
    each_db("e2e_recommendations", async |db| {
        let h = start(db).await;
        let mut p = Vec::new();
        for _ in 0..6 {
            p.push(product(&h, 1_000, 50).await);
        }
        let (a, b, c, x) = (&p[0], &p[1], &p[2], &p[3]);
        // X, a best-seller, is in every basket; B goes with A twice, C once.
        order(&h, 1, &[a, b, x]).await;
        order(&h, 2, &[a, b, x]).await;
        order(&h, 3, &[a, c, x]).await;
        order(&h, 4, &[x, &p[4]]).await;
        order(&h, 5, &[x, &p[5]]).await;
        order(&h, 6, &[x]).await;
        // Counted raw, X would come first (3 orders with A); relative to how often each
        // sells, B (2 of its 2) beats X (3 of its 6): 2/sqrt(3*2) > 3/sqrt(3*6) > 1/sqrt(3).
        settles(&h, "also bought with A", a, &[b, x, c]).await;
        let d = h.gql(None, ALSO, json!({ "p": a, "n": 1 })).await;
        assert_eq!(ids(&d.data()["product"]["alsoBought"]), vec![b.clone()]);
        assert_eq!(d.data()["product"]["alsoBought"][0]["name"], "Test Lamp");
        // Nothing bought with it yet; a product never ordered.
        assert_eq!(also_bought(&h, &p[5]).await, vec![x.clone()]);
        let lonely = product(&h, 1_000, 5).await;
        assert!(also_bought(&h, &lonely).await.is_empty());
        for n in [0, 51] {
            let r = h.gql(None, ALSO, json!({ "p": a, "n": n })).await;
            assert_eq!(r.code(), "BAD_USER_INPUT");
        }

        // Each new order updates the tables: two more baskets with A and C put C first.
        order(&h, 7, &[a, c]).await;
        order(&h, 8, &[a, c]).await;
        settles(&h, "C overtakes B", a, &[c, b, x]).await;

        // Out of stock (its three units on hand are all sold): left out until more come.
        set_stock(&h, c, 3).await;
        settles(&h, "C sold out", a, &[b, x]).await;
        set_stock(&h, c, 12).await;
        settles(&h, "C back", a, &[c, b, x]).await;

        // Trending: recent sales, X first; sold-out products not shown.
        let d = h
            .gql(None, "{ trendingProducts(first: 3) { id } }", json!({}))
            .await;
        assert_eq!(
            ids(&d.data()["trendingProducts"]),
            vec![x.clone(), a.clone(), c.clone()]
        );

        // For a shopper: bought with what they bought, never what they own.
        const MINE: &str = "{ recommendedProducts(first: 3) { id } }";
        let first_buyer = h.token("recs-buyer-1", shop_kit::auth::Role::Customer);
        let d = h.gql(Some(&first_buyer), MINE, json!({})).await;
        let mine = ids(&d.data()["recommendedProducts"]);
        assert_eq!(mine[0], *c, "{mine:?}");
        assert!(!mine.iter().any(|p| p == a || p == b || p == x), "{mine:?}");
        // Anonymous shoppers get what is trending.
        let d = h.gql(None, MINE, json!({})).await;
        assert_eq!(
            ids(&d.data()["recommendedProducts"]),
            vec![x.clone(), a.clone(), c.clone()]
        );
        // Views count too: someone who looked at B is shown what goes with B.
        const VIEW: &str = "mutation($p: ID!) { recordProductView(productId: $p) }";
        let r = h.gql(None, VIEW, json!({ "p": b })).await;
        assert_eq!(r.code(), "UNAUTHENTICATED");
        let viewer = h.token("recs-viewer", shop_kit::auth::Role::Customer);
        let d = h.gql(Some(&viewer), VIEW, json!({ "p": b })).await;
        assert_eq!(d.data()["recordProductView"], true);
        let d = h.gql(Some(&viewer), MINE, json!({})).await;
        assert_eq!(
            ids(&d.data()["recommendedProducts"])[..2],
            [a.clone(), x.clone()]
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_cart_is_suggested_what_goes_with_it_and_counts_for_the_shoppers_recommendations() {
    each_db("e2e_recommendations_cart", async |db| {
        let h = start(db).await;
        let mut p = Vec::new();
        for _ in 0..5 {
            p.push(product(&h, 1_000, 50).await);
        }
        let (a, b, c, d, e) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
        order(&h, 1, &[a, b]).await;
        order(&h, 2, &[a, b, c]).await;
        order(&h, 3, &[d, e]).await;
        settles(&h, "also bought with A", a, &[b, c]).await;

        // An anonymous cart: suggestions from its lines, never what is in it.
        let r = h
            .gql(None, "mutation { createCart { cart { id } cartToken } }", json!({}))
            .await;
        let cart = r.data()["createCart"]["cart"]["id"].as_str().unwrap().to_string();
        let token = r.data()["createCart"]["cartToken"].as_str().unwrap().to_string();
        const SUGGEST: &str = "query($c: ID!, $t: String, $n: Int!) { cart(id: $c, cartToken: $t) { suggestions(first: $n) { id name } } }";
        let suggest = |n: i64| {
            let (cart, token) = (cart.clone(), token.clone());
            let h = &h;
            async move {
                h.gql(None, SUGGEST, json!({ "c": cart, "t": token, "n": n }))
                    .await
            }
        };
        // Empty for an empty cart.
        assert_eq!(ids(&suggest(10).await.data()["cart"]["suggestions"]), Vec::<String>::new());
        const ADD: &str = "mutation($c: ID!, $t: String, $p: ID!) { addToCart(cartId: $c, cartToken: $t, productId: $p, quantity: 1) { id } }";
        for item in [a, b] {
            h.gql(None, ADD, json!({ "c": cart, "t": token, "p": item })).await.data();
        }
        let s = suggest(10).await;
        assert_eq!(ids(&s.data()["cart"]["suggestions"]), vec![c.clone()], "{}", s.body);
        assert_eq!(s.data()["cart"]["suggestions"][0]["name"], "Test Lamp");
        h.gql(None, ADD, json!({ "c": cart, "t": token, "p": d })).await.data();
        let s = suggest(10).await;
        let got = ids(&s.data()["cart"]["suggestions"]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains(c) && got.contains(e), "{got:?}");
        assert_eq!(suggest(0).await.code(), "BAD_USER_INPUT");
        // Someone else's cart stays closed: carts refuses before any suggestion.
        let r = h.gql(None, SUGGEST, json!({ "c": cart, "t": null, "n": 5 })).await;
        assert!(r.body.get("errors").is_some(), "{}", r.body);

        // The signed-in shopper's cart seeds their recommendations: with A and B in the
        // cart, C (bought with both) comes first, and neither A nor B (each bought
        // with the other) is recommended; before, trending put A and B first.
        let me = h.token(shop::seed::DEMO_CUSTOMER, shop_kit::auth::Role::Customer);
        const MINE: &str = "{ me { recommendedProducts(first: 3) { id } } }";
        let before = h.gql(Some(&me), MINE, json!({})).await;
        let before = ids(&before.data()["me"]["recommendedProducts"]);
        assert_eq!(before[..2], [a.clone(), b.clone()], "{before:?}");
        let mine = common::store::own_cart(&h, &me).await;
        for item in [a, b] {
            h.gql(Some(&me), ADD, json!({ "c": mine, "t": null, "p": item })).await.data();
        }
        let after = h.gql(Some(&me), MINE, json!({})).await;
        let after = ids(&after.data()["me"]["recommendedProducts"]);
        assert_eq!(after.first(), Some(c), "{after:?}");
        assert!(!after.contains(a) && !after.contains(b), "{after:?}");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_demo_seed_plants_a_history_whose_tastes_also_bought_finds() {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, true, |o| o.seed_history = true).await;
    let d = h
        .gql(None, "{ trendingProducts(first: 10) { id } }", json!({}))
        .await;
    assert_eq!(ids(&d.data()["trendingProducts"]).len(), 10, "{}", d.body);
    // For products of the demo catalogs, what was bought with them is mostly of their
    // own leaf category: the planted tastes.
    let d = h
        .gql(None, "{ products(first: 30) { edges { node { id category { id } alsoBought(first: 5) { category { id } } } } } }", json!({}))
        .await;
    let (mut same, mut all) = (0, 0);
    for edge in d.data()["products"]["edges"].as_array().unwrap() {
        let n = &edge["node"];
        for other in n["alsoBought"].as_array().unwrap() {
            all += 1;
            same += usize::from(other["category"]["id"] == n["category"]["id"]);
        }
    }
    assert!(all >= 100, "{all} also-bought answers: {}", d.body);
    assert!(
        same * 10 >= all * 6,
        "{same} of {all} in the product's own category"
    );
    h.stop().await;
}

/// A product of the first demo supplier in `category` with `attributes` and `stock`
/// units (no stock ever set for `None`).
async fn described(
    h: &Harness,
    category: &str,
    price: i64,
    attributes: Value,
    stock: Option<i64>,
) -> String {
    let supplier = h.token(
        shop::seed::DEMO_SUPPLIERS[0].0,
        shop_kit::auth::Role::Supplier,
    );
    let catalog = common::store::demo_catalog(h).await;
    let sku = format!("S-{}", &shop_kit::ids::new_id()[24..]);
    let r = h
        .gql(
            Some(&supplier),
            "mutation($c: ID!, $k: ID, $s: String!, $p: Int!, $a: JSON) { createProduct(input: { catalogId: $c, categoryId: $k, sku: $s, name: \"Chair\", price: { amount: $p, currency: \"EUR\" }, attributes: $a }) { id } }",
            json!({ "c": catalog, "k": category, "s": sku, "p": price, "a": attributes }),
        )
        .await;
    let id = r.data()["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    if let Some(units) = stock {
        set_stock(h, &id, units).await;
    }
    id
}

async fn similar(h: &Harness, product: &str) -> Vec<String> {
    let d = h
        .gql(
            None,
            "query($p: ID!) { product(id: $p) { similar(first: 10) { id } } }",
            json!({ "p": product }),
        )
        .await;
    ids(&d.data()["product"]["similar"])
}

#[tokio::test]
async fn similar_products_share_the_category_and_are_ranked_by_attributes_and_price() {
    each_db("e2e_recommendations_similar", async |db| {
        let h = start(db).await;
        let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, shop_kit::auth::Role::Supplier);
        let catalog = common::store::demo_catalog(&h).await;
        let mut categories = Vec::new();
        for name in ["Chairs", "Tables"] {
            let r = h
                .gql(
                    Some(&supplier),
                    "mutation($c: ID!, $n: String!) { createCategory(input: { catalogId: $c, name: $n }) { id } }",
                    json!({ "c": catalog, "n": name }),
                )
                .await;
            categories.push(r.data()["createCategory"]["id"].as_str().unwrap().to_string());
        }
        let (chairs, tables) = (&categories[0], &categories[1]);
        let oak_red = json!({ "color": "Red", "material": "oak" });
        let base = described(&h, chairs, 10_000, oak_red.clone(), Some(20)).await;
        let twin = described(&h, chairs, 10_500, oak_red.clone(), Some(20)).await;
        let cousin = described(&h, chairs, 10_000, json!({ "color": "blue", "material": "oak" }), Some(20)).await;
        let far = described(&h, chairs, 90_000, json!({ "color": "green" }), Some(20)).await;
        let sold_out = described(&h, chairs, 10_000, oak_red.clone(), Some(0)).await;
        let never_stocked = described(&h, chairs, 10_000, oak_red.clone(), None).await;
        let elsewhere = described(&h, tables, 10_000, oak_red.clone(), Some(20)).await;
        // Same traits and a 5% dearer price beat one shared trait at the same price;
        // nothing sold out or never stocked, nothing of another category.
        common::eventually("similar chairs", || async {
            (similar(&h, &base).await == [twin.clone(), cousin.clone(), far.clone()]).then_some(())
        })
        .await;
        assert_eq!(similar(&h, &elsewhere).await, Vec::<String>::new());
        let _ = (sold_out, never_stocked);

        // The supplier edits: the cousin becomes red at 4% more, closer than the twin;
        // the far one moves to tables and leaves the chairs' lists.
        const EDIT: &str = "mutation($p: ID!, $i: UpdateProductInput!) { updateProduct(id: $p, input: $i) { id } }";
        h.gql(Some(&supplier), EDIT, json!({ "p": cousin, "i": { "price": { "amount": 10_400, "currency": "EUR" }, "attributes": oak_red } }))
            .await
            .data();
        h.gql(Some(&supplier), EDIT, json!({ "p": far, "i": { "categoryId": tables } }))
            .await
            .data();
        common::eventually("similar chairs after edits", || async {
            (similar(&h, &base).await == [cousin.clone(), twin.clone()]).then_some(())
        })
        .await;
        common::eventually("the far one among tables", || async {
            (similar(&h, &elsewhere).await == [far.clone()]).then_some(())
        })
        .await;
        let r = h
            .gql(None, "query($p: ID!) { product(id: $p) { similar(first: 51) { id } } }", json!({ "p": base }))
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        h.stop().await;
    })
    .await;
}

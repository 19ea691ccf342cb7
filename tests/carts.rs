//! Carts end to end through the gateway: anonymous and signed-in carts, holds in
//! inventory, totals with tax, merging at sign-in, expired holds, on SQLite and MariaDB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Harness, each_db, stock_of};
use serde_json::{Value, json};
use shop_kit::auth::Role;

const CART: &str = "id currency country itemCount subtotal { amount currency } tax { amount } taxRateBasisPoints total { amount currency } lines { productId name quantity unitPrice { amount } lineTotal { amount } status statusReason holdExpiresAt }";

async fn start(db: Option<&shop_kit::testing::TestDb>) -> Harness {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    Harness::start_with(dir, db, true, |o| {
        o.tax_rates = [("DE".to_string(), 1900)].into_iter().collect();
    })
    .await
}

/// Demo products with at least `min` in stock: (id, price, stock).
async fn products(h: &Harness, min: i64) -> Vec<(String, i64, i64)> {
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    let r = h
        .gql(
            Some(&admin),
            "{ products(first: 100) { edges { node { id stock price { amount currency } } } } }",
            json!({}),
        )
        .await;
    r.data()["products"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["stock"].as_i64().unwrap() >= min && n["price"]["currency"] == "EUR")
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["price"]["amount"].as_i64().unwrap(),
                n["stock"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A new anonymous cart: its id and token.
async fn anonymous_cart(h: &Harness) -> (String, String) {
    let r = h
        .gql(
            None,
            "mutation { createCart { cart { id } cartToken } }",
            json!({}),
        )
        .await;
    let c = &r.data()["createCart"];
    (
        c["cart"]["id"].as_str().unwrap().to_string(),
        c["cartToken"].as_str().unwrap().to_string(),
    )
}

async fn add(
    h: &Harness,
    token: Option<&str>,
    cart: &str,
    cart_token: Option<&str>,
    product: &str,
    q: i64,
) -> common::Reply {
    h.gql(
        token,
        &format!("mutation($c: ID!, $t: String, $p: ID!, $q: Int!) {{ addToCart(cartId: $c, cartToken: $t, productId: $p, quantity: $q) {{ {CART} }} }}"),
        json!({ "c": cart, "t": cart_token, "p": product, "q": q }),
    )
    .await
}

#[tokio::test]
async fn an_anonymous_cart_holds_stock_and_totals_in_minor_units() {
    each_db("e2e_carts_anonymous", async |db| {
        let h = start(db).await;
        let list = products(&h, 3).await;
        let (p1, price1, stock1) = list[0].clone();
        let (p2, price2, _) = list[1].clone();

        let r = h
            .gql(None, "mutation { createCart { cart { id itemCount currency total { amount currency } } cartToken } }", json!({}))
            .await;
        let created = r.data()["createCart"].clone();
        assert_eq!(created["cart"]["itemCount"], 0);
        assert_eq!(created["cart"]["currency"], Value::Null);
        assert_eq!(created["cart"]["total"], json!({ "amount": 0, "currency": "XXX" }));
        let cart = created["cart"]["id"].as_str().unwrap().to_string();
        let token = created["cartToken"].as_str().unwrap().to_string();
        assert!(token.len() >= 43);

        // Without its token nobody else can touch it.
        let r = add(&h, None, &cart, None, &p1, 1).await;
        assert_eq!(r.code(), "FORBIDDEN");
        let r = add(&h, None, &cart, Some("guess"), &p1, 1).await;
        assert_eq!(r.code(), "FORBIDDEN");

        let r = add(&h, None, &cart, Some(&token), &p1, 2).await;
        let c = r.data()["addToCart"].clone();
        assert_eq!(c["lines"][0]["quantity"], 2);
        assert_eq!(c["lines"][0]["status"], "HELD");
        assert_eq!(c["lines"][0]["statusReason"], Value::Null);
        assert_eq!(c["lines"][0]["lineTotal"]["amount"], price1 * 2);
        assert_eq!(stock_of(&h, &p1).await, stock1 - 2, "held units are not available to others");

        let r = add(&h, None, &cart, Some(&token), &p2, 1).await;
        let c = r.data()["addToCart"].clone();
        assert_eq!(c["itemCount"], 3);
        assert_eq!(c["subtotal"], json!({ "amount": price1 * 2 + price2, "currency": "EUR" }));
        assert_eq!(c["tax"]["amount"], 0, "no country, no tax");

        // Tax for Germany at 19 %, rounded to the cent.
        let r = h
            .gql(
                None,
                &format!("mutation($c: ID!, $t: String) {{ setCartCountry(cartId: $c, cartToken: $t, country: \"de\") {{ {CART} }} }}"),
                json!({ "c": cart, "t": token }),
            )
            .await;
        let c = r.data()["setCartCountry"].clone();
        let subtotal = price1 * 2 + price2;
        let tax = (subtotal * 1900 + 5000) / 10_000;
        assert_eq!(c["country"], "DE");
        assert_eq!(c["taxRateBasisPoints"], 1900);
        assert_eq!(c["tax"]["amount"], tax);
        assert_eq!(c["total"], json!({ "amount": subtotal + tax, "currency": "EUR" }));

        // More than there is: refused with the line, nothing changes.
        let r = add(&h, None, &cart, Some(&token), &p1, stock1).await;
        assert_eq!(r.code(), "OUT_OF_STOCK");
        assert_eq!(r.body["errors"][0]["extensions"]["lines"][0]["productId"], p1.as_str());
        assert_eq!(r.body["errors"][0]["extensions"]["lines"][0]["available"], stock1);
        assert_eq!(stock_of(&h, &p1).await, stock1 - 2);

        // Fewer, then none.
        let set = format!("mutation($c: ID!, $t: String, $p: ID!, $q: Int!) {{ setCartLineQuantity(cartId: $c, cartToken: $t, productId: $p, quantity: $q) {{ {CART} }} }}");
        let r = h.gql(None, &set, json!({ "c": cart, "t": token, "p": p1, "q": 1 })).await;
        assert_eq!(r.data()["setCartLineQuantity"]["lines"][0]["quantity"], 1);
        assert_eq!(stock_of(&h, &p1).await, stock1 - 1);
        let r = h.gql(None, &set, json!({ "c": cart, "t": token, "p": p1, "q": -1 })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        let r = h
            .gql(
                None,
                "mutation($c: ID!, $t: String, $p: ID!) { removeFromCart(cartId: $c, cartToken: $t, productId: $p) { itemCount } }",
                json!({ "c": cart, "t": token, "p": p1 }),
            )
            .await;
        assert_eq!(r.data()["removeFromCart"]["itemCount"], 1);
        assert_eq!(stock_of(&h, &p1).await, stock1);

        // An unknown product is not found.
        let r = add(&h, None, &cart, Some(&token), "01a20000-0000-7000-8000-00000000dead", 1).await;
        assert_eq!(r.code(), "NOT_FOUND");

        let r = h
            .gql(
                None,
                "mutation($c: ID!, $t: String) { emptyCart(cartId: $c, cartToken: $t) { itemCount currency } }",
                json!({ "c": cart, "t": token }),
            )
            .await;
        assert_eq!(r.data()["emptyCart"], json!({ "itemCount": 0, "currency": null }));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn one_cart_holds_one_currency() {
    let h = start(None).await;
    let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    let catalog = common::store::demo_catalog(&h).await;
    let r = h
        .gql(
            Some(&supplier),
            "mutation($c: ID!) { createProduct(input: { catalogId: $c, sku: \"USD-1\", name: \"Imported Lamp\", price: { amount: 2500, currency: \"USD\" } }) { id } }",
            json!({ "c": catalog }),
        )
        .await;
    let usd = r.data()["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Inventory learns of the product through an event; then its stock can be set.
    let stocked = shop_kit::testing::eventually(std::time::Duration::from_secs(10), || async {
        let r = h
            .gql(
                Some(&supplier),
                "mutation($p: ID!) { setStock(productId: $p, quantity: 5, reason: \"delivery\") { quantity } }",
                json!({ "p": usd }),
            )
            .await;
        r.body.get("errors").is_none().then_some(())
    })
    .await;
    assert!(stocked.is_some(), "the product reached inventory");
    let customer = h.token(shop::seed::DEMO_CUSTOMER, Role::Customer);
    let r = h
        .gql(
            Some(&customer),
            "mutation { createCart { cart { id } cartToken } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["createCart"]["cartToken"],
        Value::Null,
        "a user's cart needs no token"
    );
    let cart = r.data()["createCart"]["cart"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let eur = products(&h, 1).await[0].0.clone();
    add(&h, Some(&customer), &cart, None, &eur, 1).await.data();
    let r = add(&h, Some(&customer), &cart, None, &usd, 1).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("one currency")
    );
    // Another user cannot use it; anonymous callers must sign in.
    let other = h.token("someone-else", Role::Customer);
    assert_eq!(
        add(&h, Some(&other), &cart, None, &eur, 1).await.code(),
        "FORBIDDEN"
    );
    assert_eq!(
        add(&h, None, &cart, None, &eur, 1).await.code(),
        "UNAUTHENTICATED"
    );
    h.stop().await;
}

#[tokio::test]
async fn signing_in_merges_the_anonymous_cart_and_me_shows_it() {
    let h = start(None).await;
    let list = products(&h, 4).await;
    let (a, _, stock_a) = list[0].clone();
    let (b, _, _) = list[1].clone();
    let (anon, anon_token) = anonymous_cart(&h).await;
    add(&h, None, &anon, Some(&anon_token), &a, 2).await.data();
    add(&h, None, &anon, Some(&anon_token), &b, 1).await.data();

    let login = h
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            json!({ "e": "customer@demo.shop", "p": shop::seed::DEMO_PASSWORD }),
        )
        .await;
    let token = login.data()["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = h
        .gql(
            Some(&token),
            "mutation { createCart { cart { id } } }",
            json!({}),
        )
        .await;
    let mine = r.data()["createCart"]["cart"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    add(&h, Some(&token), &mine, None, &a, 1).await.data();

    let r = h
        .gql(
            Some(&token),
            &format!("mutation($c: ID!, $t: String!) {{ mergeCart(cartId: $c, cartToken: $t) {{ {CART} }} }}"),
            json!({ "c": anon, "t": anon_token }),
        )
        .await;
    let merged = r.data()["mergeCart"].clone();
    assert_eq!(merged["id"], mine.as_str());
    let qty = |p: &str| {
        merged["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["productId"] == p)
            .map(|l| {
                (
                    l["quantity"].as_i64().unwrap(),
                    l["status"].as_str().unwrap().to_string(),
                )
            })
    };
    assert_eq!(qty(&a), Some((3, "HELD".to_string())));
    assert_eq!(qty(&b), Some((1, "HELD".to_string())));
    assert_eq!(
        stock_of(&h, &a).await,
        stock_a - 3,
        "holds moved, none taken twice"
    );
    // The anonymous cart is gone.
    let r = h
        .gql(
            None,
            "query($c: ID!, $t: String) { cart(id: $c, cartToken: $t) { id } }",
            json!({ "c": anon, "t": anon_token }),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    // The cart through the user entity, resolved by the carts subgraph.
    let r = h
        .gql(
            Some(&token),
            "{ me { name cart { id itemCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["me"]["cart"],
        json!({ "id": mine, "itemCount": 4 })
    );
    // Merging needs a signed-in caller.
    let r = h
        .gql(
            None,
            "mutation { mergeCart(cartId: \"x\", cartToken: \"y\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "UNAUTHENTICATED");
    h.stop().await;
}

#[tokio::test]
async fn an_expired_hold_is_marked_and_can_be_held_again_if_stock_allows() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let h = start(None).await;
    let list = products(&h, 2).await;
    let (p, _, stock) = list[0].clone();
    let (cart, token) = anonymous_cart(&h).await;
    add(&h, None, &cart, Some(&token), &p, 2).await.data();

    // Ten minutes pass: the hold ends (as the sweeper would find it).
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    shop_inventory::entity::hold::Entity::update_many()
        .col_expr(
            shop_inventory::entity::hold::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(past),
        )
        .filter(shop_inventory::entity::hold::Column::Owner.eq(cart.as_str()))
        .exec(&h.platform.inventory.db)
        .await
        .unwrap();
    shop_carts::entity::line::Entity::update_many()
        .col_expr(
            shop_carts::entity::line::Column::HoldExpiresAt,
            sea_orm::sea_query::Expr::value(past),
        )
        .filter(shop_carts::entity::line::Column::CartId.eq(cart.as_str()))
        .exec(&h.platform.db("carts"))
        .await
        .unwrap();
    assert_eq!(
        stock_of(&h, &p).await,
        stock,
        "an expired hold holds nothing"
    );
    let r = h
        .gql(
            None,
            &format!("query($c: ID!, $t: String) {{ cart(id: $c, cartToken: $t) {{ {CART} }} }}"),
            json!({ "c": cart, "t": token }),
        )
        .await;
    let line = r.data()["cart"]["lines"][0].clone();
    assert_eq!(line["status"], "EXPIRED");
    assert!(line["statusReason"].as_str().unwrap().contains("ran out"));
    assert_eq!(line["quantity"], 2, "the line stays");

    // Someone else takes all but one unit; holding again gets what is left reported.
    let (other, other_token) = anonymous_cart(&h).await;
    add(&h, None, &other, Some(&other_token), &p, stock - 1)
        .await
        .data();
    let rehold = format!(
        "mutation($c: ID!, $t: String) {{ reholdCart(cartId: $c, cartToken: $t) {{ cart {{ {CART} }} shortfalls {{ productId requested available }} }} }}"
    );
    let r = h.gql(None, &rehold, json!({ "c": cart, "t": token })).await;
    assert_eq!(
        r.data()["reholdCart"]["shortfalls"],
        json!([{ "productId": p, "requested": 2, "available": 1 }])
    );
    assert_eq!(
        r.data()["reholdCart"]["cart"]["lines"][0]["status"],
        "EXPIRED"
    );
    // Once the other cart lets go, holding again works.
    h.gql(
        None,
        "mutation($c: ID!, $t: String) { emptyCart(cartId: $c, cartToken: $t) { id } }",
        json!({ "c": other, "t": other_token }),
    )
    .await
    .data();
    let r = h.gql(None, &rehold, json!({ "c": cart, "t": token })).await;
    assert_eq!(r.data()["reholdCart"]["shortfalls"], json!([]));
    assert_eq!(r.data()["reholdCart"]["cart"]["lines"][0]["status"], "HELD");
    assert_eq!(stock_of(&h, &p).await, stock - 2);
    h.stop().await;
}

/// Adds to one line at the same moment (a double click, two tabs, a script) all land:
/// none fails, none is lost, and the hold is what the line shows.
#[tokio::test]
async fn adds_to_one_line_at_once_all_count_and_fail_none() {
    each_db("e2e_cart_burst", async |db| {
        let h = start(db).await;
        let (p, _, stock) = products(&h, 12).await[0].clone();
        let (cart, token) = anonymous_cart(&h).await;
        // Two first adds race to create the line; then eight race to grow it.
        let (a, b) = tokio::join!(
            add(&h, None, &cart, Some(&token), &p, 1),
            add(&h, None, &cart, Some(&token), &p, 1)
        );
        a.data();
        b.data();
        let burst = (0..8).map(|_| add(&h, None, &cart, Some(&token), &p, 1));
        for r in futures::future::join_all(burst).await {
            r.data();
        }
        let r = h
            .gql(
                None,
                "query($c: ID!, $t: String) { cart(id: $c, cartToken: $t) { lines { quantity status } } }",
                json!({ "c": cart, "t": token }),
            )
            .await;
        let lines = r.data()["cart"]["lines"].clone();
        assert_eq!(lines.as_array().unwrap().len(), 1, "one line: {lines}");
        assert_eq!(lines[0]["quantity"], 10, "{lines}");
        assert_eq!(lines[0]["status"], "HELD");
        assert_eq!(
            stock_of(&h, &p).await,
            stock - 10,
            "held exactly what the line shows"
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn anonymous_carts_left_for_the_retention_period_are_removed_and_others_stay() {
    use sea_orm::ConnectionTrait;
    each_db("cart_purge", async |db| {
        let h = start(db).await;
        let p = products(&h, 5).await[0].0.clone();
        let (old, old_token) = anonymous_cart(&h).await;
        add(&h, None, &old, Some(&old_token), &p, 1).await.data();
        let (fresh, fresh_token) = anonymous_cart(&h).await;
        add(&h, None, &fresh, Some(&fresh_token), &p, 1)
            .await
            .data();
        let customer = h.token("purge-customer", Role::Customer);
        let mine = common::store::own_cart(&h, &customer).await;
        add(&h, Some(&customer), &mine, None, &p, 1).await.data();

        // The old anonymous cart and the customer's cart were last touched 40 days ago.
        let carts = h.platform.db("carts");
        let long_ago = chrono::Utc::now() - chrono::TimeDelta::days(40);
        for id in [&old, &mine] {
            carts
                .execute_raw(sea_orm::Statement::from_sql_and_values(
                    carts.get_database_backend(),
                    "UPDATE carts_carts SET updated_at = ? WHERE id = ?",
                    [long_ago.into(), id.as_str().into()],
                ))
                .await
                .unwrap();
        }
        let before = chrono::Utc::now() - chrono::TimeDelta::days(30);
        let purged = shop_carts::service::carts::purge_abandoned(&carts, before)
            .await
            .unwrap();
        assert_eq!(purged, 1, "[{}]", db.map_or("sqlite", |d| d.label()));

        let open = "query($c: ID!, $t: String) { cart(id: $c, cartToken: $t) { itemCount } }";
        let r = h.gql(None, open, json!({ "c": old, "t": old_token })).await;
        assert_eq!(r.code(), "NOT_FOUND");
        let lines = carts
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                carts.get_database_backend(),
                "SELECT COUNT(*) AS n FROM carts_lines WHERE cart_id = ?",
                [old.as_str().into()],
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap();
        assert_eq!(lines, 0, "its lines went with it");
        let r = h
            .gql(None, open, json!({ "c": fresh, "t": fresh_token }))
            .await;
        assert_eq!(r.data()["cart"]["itemCount"], 1, "a recent one stays");
        let r = h.gql(Some(&customer), open, json!({ "c": mine })).await;
        assert_eq!(r.data()["cart"]["itemCount"], 1, "signed-in carts stay");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_cart_shows_a_changed_price_before_checkout_and_checkout_tells_once() {
    each_db("e2e_cart_reprice", async |db| {
        let h = start(db).await;
        let list = products(&h, 3).await;
        let (p, price, _) = list[0].clone();
        let buyer = h.token("repriced", Role::Customer);
        let cart = common::store::own_cart(&h, &buyer).await;
        add(&h, Some(&buyer), &cart, None, &p, 2).await.data();
        let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
        let r = h
            .gql(
                Some(&admin),
                "mutation($p: ID!, $a: Int!) { updateProduct(id: $p, input: { price: { amount: $a, currency: \"EUR\" } }) { id } }",
                json!({ "p": p, "a": price + 250 }),
            )
            .await;
        assert!(r.body.get("errors").is_none(), "{}", r.body);

        // Reading the cart shows the new price, the old one beside it, and new totals.
        let read = "query($c: ID!) { cart(id: $c) { subtotal { amount } lines { unitPrice { amount } priceChange { was { amount } now { amount } } } } }";
        let r = h.gql(Some(&buyer), read, json!({ "c": cart })).await;
        let c = &r.data()["cart"];
        assert_eq!(c["lines"][0]["unitPrice"]["amount"], price + 250);
        assert_eq!(
            c["lines"][0]["priceChange"],
            json!({ "was": { "amount": price }, "now": { "amount": price + 250 } })
        );
        assert_eq!(c["subtotal"]["amount"], (price + 250) * 2);

        // Checkout names the change once; the next attempt pays the new price.
        let checkout = "mutation($c: ID!, $k: String!) { checkout(cartId: $c, shippingAddress: { name: \"A\", line1: \"B 1\", city: \"C\", postalCode: \"1\", country: \"DE\" }, payment: { number: \"4242424242424242\", expMonth: 12, expYear: 2031, cvc: \"123\", holder: \"A\" }, idempotencyKey: $k) { subtotal { amount } } }";
        let r = h.gql(Some(&buyer), checkout, json!({ "c": cart, "k": "r-1" })).await;
        assert_eq!(r.code(), "PRICE_CHANGED", "{}", r.body);
        assert_eq!(
            r.body["errors"][0]["extensions"]["lines"],
            json!([{ "productId": p, "was": price, "now": price + 250 }])
        );
        let r = h.gql(Some(&buyer), read, json!({ "c": cart })).await;
        assert_eq!(r.data()["cart"]["lines"][0]["priceChange"], Value::Null);
        let r = h.gql(Some(&buyer), checkout, json!({ "c": cart, "k": "r-2" })).await;
        assert_eq!(r.data()["checkout"]["subtotal"]["amount"], (price + 250) * 2);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn merging_carts_carries_the_promo_code_over_or_says_why_not() {
    let h = start(None).await;
    let list = products(&h, 3).await;
    let (p, _, _) = list[0].clone();
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    for input in [
        json!({ "code": "WELCOME10", "percentOff": 10 }),
        json!({ "code": "SMALL1", "amountOff": { "amount": 1, "currency": "EUR" } }),
    ] {
        h.gql(
            Some(&admin),
            "mutation($i: PromoCodeInput!) { createPromoCode(input: $i) { code } }",
            json!({ "i": input }),
        )
        .await
        .data();
    }
    let apply = "mutation($c: ID!, $t: String, $k: String!) { applyPromoCode(cartId: $c, cartToken: $t, code: $k) { promoCode } }";
    let merge = "mutation($c: ID!, $t: String!) { mergeCart(cartId: $c, cartToken: $t) { promoCode promoMessage discount { amount } } }";

    // A code alone is carried over.
    let (anon, anon_token) = anonymous_cart(&h).await;
    add(&h, None, &anon, Some(&anon_token), &p, 1).await.data();
    h.gql(
        None,
        apply,
        json!({ "c": anon, "t": anon_token, "k": "WELCOME10" }),
    )
    .await
    .data();
    let buyer = h.token("merger", Role::Customer);
    let r = h
        .gql(Some(&buyer), merge, json!({ "c": anon, "t": anon_token }))
        .await;
    let m = &r.data()["mergeCart"];
    assert_eq!(m["promoCode"], "WELCOME10");
    assert_eq!(m["promoMessage"], Value::Null);
    assert!(m["discount"]["amount"].as_i64().unwrap() > 0);

    // Of two codes the one that saves more stays, and the cart says what became of the other.
    let mine = common::store::own_cart(&h, &buyer).await;
    h.gql(
        Some(&buyer),
        apply,
        json!({ "c": mine, "t": null, "k": "SMALL1" }),
    )
    .await
    .data();
    let (anon, anon_token) = anonymous_cart(&h).await;
    add(&h, None, &anon, Some(&anon_token), &p, 1).await.data();
    h.gql(
        None,
        apply,
        json!({ "c": anon, "t": anon_token, "k": "WELCOME10" }),
    )
    .await
    .data();
    let r = h
        .gql(Some(&buyer), merge, json!({ "c": anon, "t": anon_token }))
        .await;
    let m = &r.data()["mergeCart"];
    assert_eq!(m["promoCode"], "WELCOME10", "{m}");
    let message = m["promoMessage"].as_str().unwrap();
    assert!(
        message.contains("SMALL1") && message.contains("saves more"),
        "{message}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_recount_below_what_carts_hold_cuts_the_newest_holds_and_the_cart_says_so() {
    each_db("e2e_cart_recount", async |db| {
        let h = start(db).await;
        let lamp = common::store::product(&h, 1_000, 5).await;
        let (first, first_cart) = common::store::cart_of(&h, "early", &[(&lamp, 3)]).await;
        let (late, late_cart) = common::store::cart_of(&h, "late", &[(&lamp, 2)]).await;
        let supplier = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
        let set = "mutation($p: ID!, $q: Int!) { setStock(productId: $p, quantity: $q, reason: \"recount\") { quantity reserved committed available } }";
        let r = h.gql(Some(&supplier), set, json!({ "p": lamp, "q": 4 })).await;
        assert_eq!(
            r.data()["setStock"],
            json!({ "quantity": 4, "reserved": 4, "committed": 0, "available": 0 }),
            "never more held than on hand"
        );
        let line = async |token: &str, cart: &str| {
            h.gql(
                Some(token),
                "query($c: ID!) { cart(id: $c) { lines { status statusReason } } }",
                json!({ "c": cart }),
            )
            .await
            .data()["cart"]["lines"][0]
                .clone()
        };
        assert_eq!(line(&first, &first_cart).await["status"], "HELD", "the first to hold keeps it");
        let cut = line(&late, &late_cart).await;
        assert_eq!(cut["status"], "EXPIRED", "{cut}");
        assert!(
            cut["statusReason"].as_str().unwrap().starts_with("only 1 of 2"),
            "{cut}"
        );

        // More units are a receipt; the ledger adds up throughout.
        h.gql(Some(&supplier), set, json!({ "p": lamp, "q": 6 })).await.data();
        let r = h
            .gql(
                Some(&supplier),
                "query($p: ID!) { stockLedger(productId: $p, first: 3) { edges { node { kind delta } } } stockExplanation(productId: $p) { consistent } }",
                json!({ "p": lamp }),
            )
            .await;
        assert_eq!(
            r.data()["stockLedger"]["edges"][0]["node"],
            json!({ "kind": "RECEIVE", "delta": 2 })
        );
        assert_eq!(r.data()["stockExplanation"]["consistent"], true);
        h.stop().await;
    })
    .await;
}

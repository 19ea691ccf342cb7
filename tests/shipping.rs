//! Shipping through the gateway: zones, methods and rate tables as admins and
//! suppliers manage them, products' weights, and `Cart.shippingOptions` pricing each
//! supplier's part of a mixed cart to different zones, on SQLite and MariaDB.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::store::{cart_of, set_stock, start};
use common::{Harness, each_db};
use serde_json::{Value, json};
use shop::seed::{DEMO_ADMIN, DEMO_SUPPLIERS};
use shop_kit::auth::Role;

const OPTIONS: &str = "query($c: ID!, $a: ShippingDestinationInput!) { cart(id: $c) { id shippingOptions(address: $a) { supplierId weightGrams value { amount currency } productIds options { methodId name kind carrier price { amount currency } minDays maxDays } } } }";

fn supplier(n: usize) -> &'static str {
    DEMO_SUPPLIERS[n].0
}

/// A product of demo supplier `n` (in its catalog's currency, EUR for 0 and 2) weighing
/// `grams` (unknown when `None`), with stock.
async fn product(h: &Harness, n: usize, price: i64, grams: Option<i64>) -> String {
    let token = h.token(supplier(n), Role::Supplier);
    let r = h
        .gql(
            Some(&token),
            "query($s: ID) { catalogs(supplierId: $s, first: 1) { edges { node { id } } } }",
            json!({ "s": supplier(n) }),
        )
        .await;
    let catalog = r.data()["catalogs"]["edges"][0]["node"]["id"].clone();
    let sku = format!("S-{}", &shop_kit::ids::new_id()[24..]);
    let r = h
        .gql(
            Some(&token),
            "mutation($c: ID!, $s: String!, $p: Int!, $w: Int) { createProduct(input: { catalogId: $c, sku: $s, name: \"Parcel test\", price: { amount: $p, currency: \"EUR\" }, weightGrams: $w, dimensions: { lengthMm: 300, widthMm: 200, heightMm: 100 } }) { id weightGrams dimensions { lengthMm widthMm heightMm } } }",
            json!({ "c": catalog, "s": sku, "p": price, "w": grams }),
        )
        .await;
    let p = r.data()["createProduct"].clone();
    assert_eq!(p["weightGrams"], json!(grams));
    assert_eq!(
        p["dimensions"],
        json!({ "lengthMm": 300, "widthMm": 200, "heightMm": 100 })
    );
    let id = p["id"].as_str().unwrap().to_string();
    set_stock_of(h, n, &id).await;
    id
}

async fn set_stock_of(h: &Harness, n: usize, product: &str) {
    if n == 0 {
        set_stock(h, product, 50).await;
        return;
    }
    let token = h.token(supplier(n), Role::Supplier);
    common::eventually("stock set", || async {
        let r = h
            .gql(
                Some(&token),
                "mutation($p: ID!) { setStock(productId: $p, quantity: 50, reason: \"count\") { quantity } }",
                json!({ "p": product }),
            )
            .await;
        r.body.get("errors").is_none().then_some(())
    })
    .await;
}

async fn gql_ok(h: &Harness, token: &str, query: &str, vars: Value) -> Value {
    h.gql(Some(token), query, vars).await.data().clone()
}

/// A zone of the caller's (a supplier) or of the platform (an admin): its id.
async fn zone(h: &Harness, token: &str, name: &str, countries: &[&str]) -> String {
    let d = gql_ok(
        h,
        token,
        "mutation($n: String!, $c: [String!]!) { createShippingZone(input: { name: $n, countries: $c }) { id countries supplierId } }",
        json!({ "n": name, "c": countries }),
    )
    .await;
    d["createShippingZone"]["id"].as_str().unwrap().to_string()
}

/// A method in `zone` with `rates` as (min g, max g, min order, price): its id.
async fn method(
    h: &Harness,
    token: &str,
    zone: &str,
    name: &str,
    free_over: Option<i64>,
    rates: &[(i64, i64, i64, i64)],
) -> String {
    let free = free_over.map(|a| json!({ "amount": a, "currency": "EUR" }));
    let d = gql_ok(
        h,
        token,
        "mutation($z: ID!, $n: String!, $f: MoneyInput) { createShippingMethod(input: { zoneId: $z, kind: STANDARD, name: $n, minDays: 2, maxDays: 4, currency: \"EUR\", freeOver: $f }) { id } }",
        json!({ "z": zone, "n": name, "f": free }),
    )
    .await;
    let id = d["createShippingMethod"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rows: Vec<Value> = rates
        .iter()
        .map(|(a, b, o, p)| json!({ "minWeightGrams": a, "maxWeightGrams": b, "minOrder": o, "price": p }))
        .collect();
    let d = gql_ok(
        h,
        token,
        "mutation($m: ID!, $r: [ShippingRateInput!]!) { setShippingRates(methodId: $m, rates: $r) { id rates { minWeightGrams maxWeightGrams minOrder { amount } price { amount currency } } } }",
        json!({ "m": id, "r": rows }),
    )
    .await;
    assert_eq!(
        d["setShippingRates"]["rates"].as_array().unwrap().len(),
        rates.len()
    );
    id
}

fn part<'a>(options: &'a Value, supplier_id: &str) -> &'a Value {
    options
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["supplierId"] == supplier_id)
        .unwrap_or_else(|| panic!("no part for {supplier_id} in {options}"))
}

fn prices(part: &Value) -> Vec<(String, i64)> {
    part["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["price"]["amount"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A paid order of `lines` by `buyer` shipped to Berlin, and its first shipment once
/// shipping made it: the buyer's token, the order id, the shipment id.
async fn paid_shipment(
    h: &Harness,
    buyer: &str,
    lines: &[(&str, i64)],
) -> (String, String, String) {
    let (token, cart) = cart_of(h, buyer, lines).await;
    let r = common::store::checkout(h, &token, &cart, "4242424242424242", buyer).await;
    let order = r.data()["checkout"]["id"].as_str().unwrap().to_string();
    let shipment = common::eventually("the shipment", || async {
        let r = h
            .gql(
                Some(&token),
                "query($o: ID!) { order(id: $o) { shipments { id } } }",
                json!({ "o": order }),
            )
            .await;
        r.data()["order"]["shipments"][0]["id"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    (token, order, shipment)
}

/// Gives the supplier behind `token` a ship-from address (labels need one).
async fn ship_from_hamburg(h: &Harness, token: &str) {
    gql_ok(h, token, "mutation { setShipFromAddress(input: { name: \"Northwind Outfitters\", line1: \"Lagerweg 5\", postalCode: \"20095\", city: \"Hamburg\", country: \"de\" }) { country } }", json!({})).await;
}

/// A buyer's paid order of one 500 g product of supplier 0, packed in one parcel whose
/// label is bought: the buyer's token, the shipment id, the tracking number.
async fn labelled_parcel(h: &Harness, buyer: &str) -> (String, String, String) {
    let nw = h.token(supplier(0), Role::Supplier);
    ship_from_hamburg(h, &nw).await;
    let lamp = product(h, 0, 2_000, Some(500)).await;
    let (token, _order, shipment) = paid_shipment(h, buyer, &[(&lamp, 1)]).await;
    let d = gql_ok(h, &nw, "mutation($s: ID!, $p: ID!) { packShipment(shipmentId: $s, items: [{ productId: $p, quantity: 1 }]) { parcel { id } } }", json!({ "s": shipment, "p": lamp })).await;
    let parcel = d["packShipment"]["parcel"]["id"].clone();
    let d = gql_ok(
        h,
        &nw,
        "mutation($p: ID!) { buyShippingLabel(parcelId: $p) { trackingNumber } }",
        json!({ "p": parcel }),
    )
    .await;
    let tracking = d["buyShippingLabel"]["trackingNumber"]
        .as_str()
        .unwrap()
        .to_string();
    (token, shipment, tracking)
}

#[tokio::test]
async fn a_mixed_cart_is_priced_per_supplier_and_zone() {
    each_db("e2e_shipping_rates", async |db| {
        let h = start(db).await;
        let admin = h.token(DEMO_ADMIN, Role::Admin);
        // The demo's platform zones are there; a second zone with Germany in it is not.
        let d = gql_ok(&h, &admin, "{ shippingZones { name countries methods { name currency rates { price { amount } } } } }", json!({})).await;
        let names: Vec<&str> = d["shippingZones"].as_array().unwrap().iter().map(|z| z["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["European Union", "Germany", "United States"]);
        let r = h
            .gql(Some(&admin), "mutation { createShippingZone(input: { name: \"Again\", countries: [\"fr\", \"DE\"] }) { id } }", json!({}))
            .await;
        assert_eq!(r.code(), "CONFLICT", "{}", r.body);
        assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("DE"));

        // Supplier 1 ships Germany itself, by weight and order value; supplier 3 keeps
        // the platform's rates.
        let lumen = h.token(supplier(1), Role::Supplier);
        let own = zone(&h, &lumen, "Home", &["de"]).await;
        method(&h, &lumen, &own, "Own courier", Some(20_000), &[(0, 2_000, 0, 300), (0, 2_000, 10_000, 150), (2_000, 10_000, 0, 800)]).await;

        let jacket = product(&h, 0, 2_000, Some(400)).await; // supplier 0
        let manual = product(&h, 0, 500, None).await; // supplier 0, weight unknown
        let lamp = product(&h, 1, 6_000, Some(1_500)).await; // supplier 1
        let (token, cart) = cart_of(&h, "ship-buyer", &[(&jacket, 2), (&manual, 1), (&lamp, 2)]).await;

        // To Germany: supplier 0 on the platform's methods (800 g, worth 45.00, under
        // the 50.00 threshold), supplier 1 on its own (3 kg, 120.00).
        let d = gql_ok(&h, &token, OPTIONS, json!({ "c": cart, "a": { "country": "DE" } })).await;
        let options = &d["cart"]["shippingOptions"];
        assert_eq!(options.as_array().unwrap().len(), 2, "{options}");
        let p0 = part(options, supplier(0));
        assert_eq!(p0["weightGrams"], 800);
        assert_eq!(p0["value"], json!({ "amount": 4_500, "currency": "EUR" }));
        let mut ids: Vec<&str> = p0["productIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        ids.sort();
        let mut want = vec![jacket.as_str(), manual.as_str()];
        want.sort();
        assert_eq!(ids, want);
        assert_eq!(prices(p0), [("Standard (EUR)".to_string(), 490), ("Express (EUR)".to_string(), 1_490)]);
        assert_eq!(p0["options"][0]["kind"], "STANDARD");
        assert_eq!(p0["options"][0]["carrier"], "simulated");
        assert_eq!((p0["options"][0]["minDays"].as_i64(), p0["options"][0]["maxDays"].as_i64()), (Some(1), Some(3)));
        let p1 = part(options, supplier(1));
        assert_eq!(p1["weightGrams"], 3_000);
        assert_eq!(prices(p1), [("Own courier".to_string(), 800)], "the supplier's own methods replace the platform's");

        // To France: supplier 1 has no zone there, so the platform's EU rates apply.
        let d = gql_ok(&h, &token, OPTIONS, json!({ "c": cart, "a": { "country": "fr" } })).await;
        let options = &d["cart"]["shippingOptions"];
        assert_eq!(prices(part(options, supplier(0))), [("Standard (EUR)".to_string(), 990), ("Express (EUR)".to_string(), 1_990)]);
        assert_eq!(prices(part(options, supplier(1))), [("Standard (EUR)".to_string(), 0), ("Express (EUR)".to_string(), 2_290)], "120.00 ships free by standard");

        // Fewer lamps: under 2 kg and over 100.00 the cheaper value row applies; a
        // change to the rates shows at once.
        gql_ok(&h, &token, "mutation($c: ID!, $p: ID!) { setCartLineQuantity(cartId: $c, productId: $p, quantity: 1) { id } }", json!({ "c": cart, "p": lamp })).await;
        let d = gql_ok(&h, &token, OPTIONS, json!({ "c": cart, "a": { "country": "DE" } })).await;
        assert_eq!(prices(part(&d["cart"]["shippingOptions"], supplier(1))), [("Own courier".to_string(), 300)], "60.00 is under the 100.00 row");

        // Nowhere to ship: a coded error naming the country.
        let r = h.gql(Some(&token), OPTIONS, json!({ "c": cart, "a": { "country": "JP" } })).await;
        assert_eq!(r.code(), "NOT_SHIPPABLE", "{}", r.body);
        assert_eq!(r.body["errors"][0]["extensions"]["country"], "JP");
        assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("JP"));
        let r = h.gql(Some(&token), OPTIONS, json!({ "c": cart, "a": { "country": "Atlantis" } })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");

        // Heavier than any band: refused with the weight.
        let anvil = product(&h, 0, 9_000, Some(40_000)).await;
        let (heavy_token, heavy_cart) = cart_of(&h, "anvil-buyer", &[(&anvil, 1)]).await;
        let r = h.gql(Some(&heavy_token), OPTIONS, json!({ "c": heavy_cart, "a": { "country": "DE" } })).await;
        assert_eq!(r.code(), "NOT_SHIPPABLE", "{}", r.body);
        assert_eq!(r.body["errors"][0]["extensions"]["weightGrams"], 40_000);
        assert_eq!(r.body["errors"][0]["extensions"]["supplierId"], supplier(0));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn suppliers_manage_only_their_own_shipping_and_bad_tables_are_refused() {
    each_db("e2e_shipping_manage", async |db| {
        let h = start(db).await;
        let northwind = h.token(supplier(0), Role::Supplier);
        let lumen = h.token(supplier(1), Role::Supplier);
        let shopper = h.token("shopper", Role::Customer);

        let z = zone(&h, &northwind, "Alps", &["AT", "CH"]).await;
        let m = method(&h, &northwind, &z, "Mountain post", None, &[(0, 5_000, 0, 700)]).await;
        let d = gql_ok(&h, &northwind, "query($s: ID) { shippingZones(supplierId: $s) { id name supplierId countries methods { id name rates { price { amount } } } } }", json!({ "s": supplier(0) })).await;
        assert_eq!(
            d["shippingZones"],
            json!([{ "id": z, "name": "Alps", "supplierId": supplier(0), "countries": ["AT", "CH"], "methods": [{ "id": m, "name": "Mountain post", "rates": [{ "price": { "amount": 700 } }] }] }])
        );

        // Another supplier can neither see it as theirs nor change it.
        for (q, v) in [
            ("mutation($i: ID!) { updateShippingZone(id: $i, input: { name: \"Mine\" }) { id } }", json!({ "i": z })),
            ("mutation($i: ID!) { deleteShippingZone(id: $i) }", json!({ "i": z })),
            ("mutation($i: ID!) { setShippingRates(methodId: $i, rates: []) { id } }", json!({ "i": m })),
            ("mutation($i: ID!) { updateShippingMethod(id: $i, input: { active: false }) { id } }", json!({ "i": m })),
        ] {
            let r = h.gql(Some(&lumen), q, v).await;
            assert_eq!(r.code(), "NOT_FOUND", "{q}: {}", r.body);
        }
        let r = h
            .gql(Some(&lumen), "mutation($z: ID!) { createShippingMethod(input: { zoneId: $z, kind: EXPRESS, name: \"x\", minDays: 1, maxDays: 1, currency: \"EUR\" }) { id } }", json!({ "z": z }))
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "another supplier's zone: {}", r.body);
        let r = h
            .gql(Some(&lumen), "mutation($s: ID) { createShippingZone(input: { name: \"x\", countries: [\"IT\"], supplierId: $s }) { id } }", json!({ "s": supplier(0) }))
            .await;
        assert_eq!(r.code(), "FORBIDDEN");
        // Shoppers and anonymous callers manage nothing.
        let r = h.gql(Some(&shopper), "mutation { createShippingZone(input: { name: \"x\", countries: [\"IT\"] }) { id } }", json!({})).await;
        assert_eq!(r.code(), "FORBIDDEN", "{}", r.body);
        let r = h.gql(None, "mutation { createShippingZone(input: { name: \"x\", countries: [\"IT\"] }) { id } }", json!({})).await;
        assert_eq!(r.code(), "UNAUTHENTICATED", "{}", r.body);

        // Bad tables and bad input change nothing.
        for rows in [
            json!([{ "minWeightGrams": 0, "maxWeightGrams": 1000, "price": 100 }, { "minWeightGrams": 500, "maxWeightGrams": 2000, "price": 200 }]),
            json!([{ "minWeightGrams": 1000, "maxWeightGrams": 1000, "price": 100 }]),
            json!([{ "minWeightGrams": 0, "maxWeightGrams": 1000, "price": -1 }]),
            json!([{ "minWeightGrams": -5, "maxWeightGrams": 1000, "price": 1 }]),
        ] {
            let r = h
                .gql(Some(&northwind), "mutation($m: ID!, $r: [ShippingRateInput!]!) { setShippingRates(methodId: $m, rates: $r) { id } }", json!({ "m": m, "r": rows }))
                .await;
            assert_eq!(r.code(), "BAD_USER_INPUT", "{rows}: {}", r.body);
        }
        let r = h
            .gql(Some(&northwind), "mutation($z: ID!) { createShippingMethod(input: { zoneId: $z, kind: EXPRESS, name: \"x\", minDays: 5, maxDays: 2, currency: \"EUR\" }) { id } }", json!({ "z": z }))
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        let r = h.gql(Some(&northwind), "mutation { createShippingZone(input: { name: \"x\", countries: [\"XX\"] }) { id } }", json!({})).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        let d = gql_ok(&h, &northwind, "query($s: ID) { shippingZones(supplierId: $s) { methods { rates { price { amount } } } } }", json!({ "s": supplier(0) })).await;
        assert_eq!(d["shippingZones"][0]["methods"][0]["rates"], json!([{ "price": { "amount": 700 } }]));

        // A zone in use cannot go; once its method is gone it can.
        let r = h.gql(Some(&northwind), "mutation($i: ID!) { deleteShippingZone(id: $i) }", json!({ "i": z })).await;
        assert_eq!(r.code(), "CONFLICT");
        gql_ok(&h, &northwind, "mutation($i: ID!) { deleteShippingMethod(id: $i) }", json!({ "i": m })).await;
        gql_ok(&h, &northwind, "mutation($i: ID!) { deleteShippingZone(id: $i) }", json!({ "i": z })).await;
        let d = gql_ok(&h, &northwind, "query($s: ID) { shippingZones(supplierId: $s) { id } }", json!({ "s": supplier(0) })).await;
        assert_eq!(d["shippingZones"], json!([]));

        // Weights are edited and cleared like any product field.
        let p = product(&h, 0, 1_000, Some(250)).await;
        let d = gql_ok(&h, &northwind, "mutation($p: ID!) { updateProduct(id: $p, input: { weightGrams: 1250 }) { weightGrams dimensions { lengthMm } } }", json!({ "p": p })).await;
        assert_eq!(d["updateProduct"], json!({ "weightGrams": 1250, "dimensions": { "lengthMm": 300 } }));
        let d = gql_ok(&h, &northwind, "mutation($p: ID!) { updateProduct(id: $p, input: { weightGrams: null, dimensions: null }) { weightGrams dimensions { lengthMm } } }", json!({ "p": p })).await;
        assert_eq!(d["updateProduct"], json!({ "weightGrams": null, "dimensions": null }));
        let r = h.gql(Some(&northwind), "mutation($p: ID!) { updateProduct(id: $p, input: { weightGrams: -1 }) { id } }", json!({ "p": p })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn checkout_charges_the_chosen_shipping_and_the_order_keeps_its_price() {
    each_db("e2e_shipping_checkout", async |db| {
        let h = start(db).await;
        let admin = h.token(DEMO_ADMIN, Role::Admin);
        let coat = product(&h, 0, 3_000, Some(2_500)).await; // supplier 0
        let spice = product(&h, 2, 800, Some(200)).await; // supplier 2
        let (token, cart) = cart_of(&h, "ship-checkout", &[(&coat, 1), (&spice, 2)]).await;
        let d = gql_ok(&h, &token, OPTIONS, json!({ "c": cart, "a": { "country": "DE" } })).await;
        let options = d["cart"]["shippingOptions"].clone();
        let express = part(&options, supplier(0))["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "EXPRESS")
            .unwrap()
            .clone();
        assert_eq!(express["price"]["amount"], 1_790, "2.5 kg express in Germany");
        assert_eq!(prices(part(&options, supplier(2)))[0], ("Standard (EUR)".to_string(), 490));

        const CHECKOUT: &str = "mutation($c: ID!, $a: ShippingAddressInput!, $s: [ShippingChoiceInput!], $p: PaymentCardInput!, $k: String!) { checkout(cartId: $c, shippingAddress: $a, shipping: $s, payment: $p, idempotencyKey: $k) { id subtotal { amount } shipping { amount } tax { amount } total { amount } payment { amount { amount } } shippingMethods { supplierId methodId name kind carrier price { amount currency } minDays maxDays weightGrams } } }";
        let address = common::store::address();
        let card = common::store::card("4242424242424242");

        // A method that does not take that part (there) is refused, and nothing is taken.
        let d = gql_ok(&h, &admin, "{ shippingZones { name methods { id currency } } }", json!({})).await;
        let us_method = d["shippingZones"].as_array().unwrap().iter().find(|z| z["name"] == "United States").unwrap()["methods"][0]["id"].clone();
        let wrong = json!([{ "supplierId": supplier(2), "methodId": us_method }]);
        let r = h.gql(Some(&token), CHECKOUT, json!({ "c": cart, "a": address, "s": wrong, "p": card, "k": "wrong" })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
        assert_eq!(common::stock_of(&h, &coat).await, 49, "the cart's hold, nothing sold");
        // An address nothing ships to: refused with the country, also when asked again.
        let mut japan = address.clone();
        japan["country"] = json!("JP");
        for _ in 0..2 {
            let r = h.gql(Some(&token), CHECKOUT, json!({ "c": cart, "a": japan, "p": card, "k": "japan" })).await;
            assert_eq!(r.code(), "NOT_SHIPPABLE", "{}", r.body);
            assert_eq!(r.body["errors"][0]["extensions"]["country"], "JP");
        }

        // Express for supplier 0 as chosen, the cheapest for supplier 2.
        let chosen = json!([{ "supplierId": supplier(0), "methodId": express["methodId"] }]);
        let r = h.gql(Some(&token), CHECKOUT, json!({ "c": cart, "a": address, "s": chosen, "p": card, "k": "ok" })).await;
        let order = r.data()["checkout"].clone();
        let subtotal = 3_000 + 2 * 800;
        let shipping = 1_790 + 490;
        let tax = (subtotal * 1_900 + 5_000) / 10_000 + (shipping * 1_900 + 5_000) / 10_000;
        assert_eq!(order["subtotal"]["amount"], subtotal);
        assert_eq!(order["shipping"]["amount"], shipping);
        assert_eq!(order["tax"]["amount"], tax, "goods and shipping taxed at 19 %");
        assert_eq!(order["total"]["amount"], subtotal + shipping + tax);
        assert_eq!(order["payment"]["amount"]["amount"], subtotal + shipping + tax, "what was charged");
        let methods = order["shippingMethods"].as_array().unwrap();
        assert_eq!(methods.len(), 2);
        let m0 = methods.iter().find(|m| m["supplierId"] == supplier(0)).unwrap();
        assert_eq!(m0["methodId"], express["methodId"]);
        assert_eq!(m0["kind"], "EXPRESS");
        assert_eq!(m0["price"], json!({ "amount": 1_790, "currency": "EUR" }));
        assert_eq!(m0["weightGrams"], 2_500);
        let m2 = methods.iter().find(|m| m["supplierId"] == supplier(2)).unwrap();
        assert_eq!((m2["name"].as_str(), m2["weightGrams"].as_i64()), (Some("Standard (EUR)"), Some(400)));

        // Rates change later; the order keeps what was paid.
        gql_ok(&h, &admin, "mutation($m: ID!) { setShippingRates(methodId: $m, rates: [{ minWeightGrams: 0, maxWeightGrams: 31500, price: 9999 }]) { id } }", json!({ "m": express["methodId"] })).await;
        let id = order["id"].clone();
        let d = gql_ok(&h, &token, "query($o: ID!) { order(id: $o) { shipping { amount } total { amount } shippingMethods { price { amount } } } }", json!({ "o": id })).await;
        assert_eq!(d["order"]["shipping"]["amount"], shipping);
        assert_eq!(d["order"]["total"]["amount"], subtotal + shipping + tax);
        // The same key answers the same order, charged once.
        let r = h.gql(Some(&token), CHECKOUT, json!({ "c": cart, "a": address, "s": chosen, "p": card, "k": "ok" })).await;
        assert_eq!(r.data()["checkout"]["id"], id);
        assert_eq!(r.data()["checkout"]["total"]["amount"], subtotal + shipping + tax);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_order_from_three_suppliers_becomes_three_shipments_packed_in_parcels() {
    each_db("e2e_shipping_shipments", async |db| {
        let h = start(db).await;
        let admin = h.token(DEMO_ADMIN, Role::Admin);
        let boots = product(&h, 0, 4_000, Some(1_200)).await;
        let socks = product(&h, 0, 500, Some(50)).await;
        let lamp = product(&h, 1, 2_500, Some(900)).await;
        let tea = product(&h, 2, 700, Some(100)).await;
        let (token, cart) = cart_of(&h, "three-sellers", &[(&boots, 1), (&socks, 3), (&lamp, 1), (&tea, 2)]).await;
        let r = common::store::checkout(&h, &token, &cart, "4242424242424242", "three").await;
        let order = r.data()["checkout"]["id"].as_str().unwrap().to_string();

        const SHIPMENTS: &str = "query($o: ID!) { order(id: $o) { id shipments { id supplierId orderNumber status methodName carrier price { amount } address lines { productId quantity packed weightGrams } parcels { id } } } }";
        let shipments = common::eventually("three shipments", || async {
            let r = h.gql(Some(&token), SHIPMENTS, json!({ "o": order })).await;
            let list = r.data()["order"]["shipments"].as_array().cloned().unwrap_or_default();
            (list.len() == 3).then_some(list)
        })
        .await;
        let mut suppliers: Vec<&str> = shipments.iter().map(|s| s["supplierId"].as_str().unwrap()).collect();
        suppliers.sort();
        assert_eq!(suppliers, [supplier(0), supplier(1), supplier(2)]);
        let of = |n: usize| shipments.iter().find(|s| s["supplierId"] == supplier(n)).unwrap().clone();
        let northwind = of(0);
        assert_eq!(northwind["status"], "PENDING");
        assert_eq!(northwind["methodName"], "Standard (EUR)");
        assert_eq!(northwind["carrier"], "simulated");
        assert_eq!(northwind["address"]["city"], "Berlin");
        let mut lines: Vec<(String, i64, i64)> = northwind["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["productId"].as_str().unwrap().to_string(), l["quantity"].as_i64().unwrap(), l["weightGrams"].as_i64().unwrap()))
            .collect();
        lines.sort();
        let mut want = vec![(boots.clone(), 1, 1_200), (socks.clone(), 3, 50)];
        want.sort();
        assert_eq!(lines, want);

        // Each supplier sees its own shipment only; shoppers see none of the list.
        let nw = h.token(supplier(0), Role::Supplier);
        let lumen = h.token(supplier(1), Role::Supplier);
        let d = gql_ok(&h, &nw, "{ shipments(status: [PENDING, PARTIALLY_PACKED]) { id supplierId orderId } }", json!({})).await;
        let list = d["shipments"].as_array().unwrap();
        assert!(list.iter().all(|s| s["supplierId"] == supplier(0)), "{list:?}");
        let of_order: Vec<&Value> = list.iter().filter(|s| s["orderId"] == order.as_str()).collect();
        assert_eq!(of_order.len(), 1);
        assert_eq!(of_order[0]["id"], northwind["id"]);
        let r = h.gql(Some(&lumen), "query($i: ID!) { shipment(id: $i) { id } }", json!({ "i": northwind["id"] })).await;
        assert_eq!(r.code(), "NOT_FOUND");
        let r = h.gql(Some(&lumen), "query($s: ID) { shipments(supplierId: $s) { id } }", json!({ "s": supplier(0) })).await;
        assert_eq!(r.code(), "FORBIDDEN");
        let r = h.gql(Some(&token), "{ shipments { id } }", json!({})).await;
        assert_eq!(r.code(), "FORBIDDEN");
        let d = gql_ok(&h, &admin, "query($s: ID) { shipments(supplierId: $s) { id } }", json!({ "s": supplier(1) })).await;
        assert_eq!(d["shipments"].as_array().unwrap().len(), 1);

        // Packed in two parcels: the boots and one pair of socks first, the rest later.
        const PACK: &str = "mutation($s: ID!, $i: [ParcelItemInput!]!, $w: Int) { packShipment(shipmentId: $s, items: $i, weightGrams: $w) { shipment { status lines { productId packed } } parcel { id status weightGrams items { productId quantity } } } }";
        let d = gql_ok(&h, &nw, PACK, json!({ "s": northwind["id"], "i": [{ "productId": boots, "quantity": 1 }, { "productId": socks, "quantity": 1 }] })).await;
        let first = &d["packShipment"];
        assert_eq!(first["shipment"]["status"], "PARTIALLY_PACKED");
        assert_eq!(first["parcel"]["weightGrams"], 1_250, "the units' weights");
        assert_eq!(first["parcel"]["status"], "PACKED");
        // Another supplier cannot pack it; more socks than are left is refused.
        let r = h.gql(Some(&lumen), PACK, json!({ "s": northwind["id"], "i": [{ "productId": socks, "quantity": 1 }] })).await;
        assert_eq!(r.code(), "NOT_FOUND");
        let r = h.gql(Some(&nw), PACK, json!({ "s": northwind["id"], "i": [{ "productId": socks, "quantity": 3 }] })).await;
        assert_eq!(r.code(), "CONFLICT", "{}", r.body);
        let r = h.gql(Some(&nw), PACK, json!({ "s": northwind["id"], "i": [{ "productId": tea, "quantity": 1 }] })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "not in this shipment");
        let d = gql_ok(&h, &nw, PACK, json!({ "s": northwind["id"], "i": [{ "productId": socks, "quantity": 2 }], "w": 180 })).await;
        assert_eq!(d["packShipment"]["shipment"]["status"], "PACKED");
        assert_eq!(d["packShipment"]["parcel"]["weightGrams"], 180, "as weighed");
        let d = gql_ok(&h, &token, SHIPMENTS, json!({ "o": order })).await;
        let mine = d["order"]["shipments"].as_array().unwrap().iter().find(|s| s["supplierId"] == supplier(0)).unwrap().clone();
        assert_eq!(mine["parcels"].as_array().unwrap().len(), 2);
        assert!(mine["lines"].as_array().unwrap().iter().all(|l| l["packed"] == l["quantity"]));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn two_packers_of_the_last_units_cannot_both_pack_them() {
    each_db("e2e_shipping_pack_race", async |db| {
        let h = start(db).await;
        let mug = product(&h, 0, 1_000, Some(300)).await;
        let (_token, _order, shipment) = paid_shipment(&h, "race-buyer", &[(&mug, 4)]).await;
        let nw = h.token(supplier(0), Role::Supplier);
        let pack = "mutation($s: ID!, $p: ID!) { packShipment(shipmentId: $s, items: [{ productId: $p, quantity: 3 }]) { parcel { id } } }";
        let answers = futures::future::join_all((0..6).map(|_| h.gql(Some(&nw), pack, json!({ "s": shipment, "p": mug })))).await;
        let packed = answers.iter().filter(|r| r.body.get("errors").is_none()).count();
        assert_eq!(packed, 1, "3 of 4 units fit once: {:?}", answers.iter().map(|r| &r.body).collect::<Vec<_>>());
        for r in answers.iter().filter(|r| r.body.get("errors").is_some()) {
            assert_eq!(r.code(), "CONFLICT", "{}", r.body);
        }
        let d = gql_ok(&h, &nw, "query($s: ID!) { shipment(id: $s) { status lines { packed } parcels { id } } }", json!({ "s": shipment })).await;
        assert_eq!(d["shipment"]["status"], "PARTIALLY_PACKED");
        assert_eq!(d["shipment"]["lines"][0]["packed"], 3);
        assert_eq!(d["shipment"]["parcels"].as_array().unwrap().len(), 1);
        h.stop().await;
    })
    .await;
}

/// The bars of a PDF page's barcode as modules (1 dark, 0 light), read back from the
/// filled rectangles of its content stream.
fn barcode_modules(doc: &lopdf::Document) -> Vec<u8> {
    let page = *doc.get_pages().values().next().expect("a page");
    let content =
        lopdf::content::Content::decode(&doc.get_page_content(page)).expect("content decodes");
    let num = |o: &lopdf::Object| o.as_float().expect("a number");
    let bars: Vec<(f32, f32)> = content
        .operations
        .iter()
        .filter(|op| op.operator == "re")
        .map(|op| (num(&op.operands[0]), num(&op.operands[2])))
        .collect();
    let module = bars.iter().map(|b| b.1).fold(f32::MAX, f32::min);
    let start = bars[0].0;
    let mut modules = Vec::new();
    for (x, w) in bars {
        let at = ((x - start) / module).round() as usize;
        modules.resize(at, 0);
        modules.extend(std::iter::repeat_n(1, (w / module).round() as usize));
    }
    modules
}

#[tokio::test]
async fn labels_are_bought_once_and_their_pdf_carries_the_address_and_barcode() {
    each_db("e2e_shipping_labels", async |db| {
    let h = start(db).await;
    let nw = h.token(supplier(0), Role::Supplier);
    let lumen = h.token(supplier(1), Role::Supplier);
    let kettle = product(&h, 0, 3_500, Some(1_100)).await;
    let (token, order, shipment) = paid_shipment(&h, "label-buyer", &[(&kettle, 2)]).await;
    let d = gql_ok(&h, &nw, "mutation($s: ID!, $p: ID!) { packShipment(shipmentId: $s, items: [{ productId: $p, quantity: 1 }]) { parcel { id } } }", json!({ "s": shipment, "p": kettle })).await;
    let parcel = d["packShipment"]["parcel"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    const BUY: &str = "mutation($p: ID!) { buyShippingLabel(parcelId: $p) { trackingNumber labelUrl parcel { id status trackingNumber } } }";
    let r = h.gql(Some(&nw), BUY, json!({ "p": parcel })).await;
    assert_eq!(
        r.code(),
        "BAD_USER_INPUT",
        "no ship-from address yet: {}",
        r.body
    );
    ship_from_hamburg(&h, &nw).await;
    let r = h.gql(Some(&lumen), BUY, json!({ "p": parcel })).await;
    assert_eq!(r.code(), "NOT_FOUND", "another supplier's parcel");
    // Bought four times at once: one label.
    let answers =
        futures::future::join_all((0..4).map(|_| h.gql(Some(&nw), BUY, json!({ "p": parcel }))))
            .await;
    let numbers: Vec<&Value> = answers
        .iter()
        .map(|r| &r.data()["buyShippingLabel"]["trackingNumber"])
        .collect();
    assert!(numbers.iter().all(|n| *n == numbers[0]), "{numbers:?}");
    let bought = answers[0].data()["buyShippingLabel"].clone();
    let tracking = bought["trackingNumber"].as_str().unwrap().to_string();
    assert!(
        tracking.starts_with("SIM") && tracking.len() == 15,
        "{tracking}"
    );
    assert_eq!(bought["parcel"]["status"], "LABELLED");
    let again = gql_ok(&h, &nw, BUY, json!({ "p": parcel })).await["buyShippingLabel"].clone();
    assert_eq!(again["trackingNumber"], tracking.as_str(), "bought once");

    // The buyer sees the tracking number, not the label.
    let d = gql_ok(
        &h,
        &token,
        "query($o: ID!) { order(id: $o) { shipments { parcels { trackingNumber labelUrl } } } }",
        json!({ "o": order }),
    )
    .await;
    assert_eq!(
        d["order"]["shipments"][0]["parcels"],
        json!([{ "trackingNumber": tracking, "labelUrl": null }])
    );

    // The PDF, through the gateway's origin.
    let origin = h
        .platform
        .gateway_url
        .trim_end_matches("/graphql")
        .to_string();
    let url = format!("{origin}{}", bought["labelUrl"].as_str().unwrap());
    let resp = h.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let bytes = resp.bytes().await.unwrap();
    let doc = lopdf::Document::load_mem(&bytes).expect("the label parses as PDF");
    let text = doc.extract_text(&[1]).expect("text");
    for needle in [
        "SHIP TO",
        "Ann Lee",
        "Hauptstr. 1",
        "10115 Berlin",
        "DE",
        "Northwind Outfitters",
        "20095 Hamburg",
        "SIMULATED",
        "Standard (EUR)",
        "1.10 kg",
        tracking.as_str(),
    ] {
        assert!(text.contains(needle), "{needle:?} on the label: {text}");
    }
    let modules = barcode_modules(&doc);
    let expected = barcoders::sym::code128::Code128::new(format!("\u{0181}{tracking}"))
        .unwrap()
        .encode();
    assert_eq!(
        modules, expected,
        "the bars are the tracking number in Code 128"
    );
    assert!(
        modules.starts_with(&[1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0]),
        "start B"
    );
    assert!(
        modules.ends_with(&[1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1]),
        "stop"
    );
    assert_eq!(
        modules.len(),
        11 * (tracking.len() + 2) + 13,
        "start, data, check, stop"
    );

    // A forged or expired link gets nothing.
    let forged = url.replace("signature=", "signature=00");
    assert_eq!(h.client.get(&forged).send().await.unwrap().status(), 403);
    let secret = h.platform.internal.derive_secret("shipping label links");
    let expired = shop_shipping::service::labels::link_until(
        &secret,
        &parcel,
        chrono::Utc::now().timestamp() - 1,
    );
    assert_eq!(
        h.client
            .get(format!("{origin}{expired}"))
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    let other = shop_shipping::service::labels::link_until(
        &secret,
        &shop_kit::ids::new_id(),
        chrono::Utc::now().timestamp() + 60,
    );
    assert_eq!(
        h.client
            .get(format!("{origin}{other}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    h.stop().await;
    })
    .await;
}

/// The platform with the demo shop and a simulated carrier that scans every 150 ms.
async fn start_with_fast_carrier(db: Option<&shop_kit::testing::TestDb>) -> Harness {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    Harness::start_with(dir, db, true, |o| {
        o.tax_rates = [("DE".to_string(), 1900)].into_iter().collect();
        o.carrier_step = Some(std::time::Duration::from_millis(150));
    })
    .await
}

/// The simulated carrier's route for a tracking number.
fn route(number: &str) -> &'static [shop_shipping::service::tracking::ParcelStatus] {
    use shop_shipping::service::carriers::{Carrier, Simulated};
    let sim = Simulated {
        public_url: String::new(),
    };
    sim.simulated_route(number).unwrap()
}

const FOLLOW: &str = "subscription($o: ID!) { orderStatusChanged(orderId: $o) { previousStatus status note tracking { shipmentId carrier trackingNumber trackingUrl status location shipmentStatus } order { id status } } }";

#[tokio::test]
async fn the_simulated_carrier_delivers_and_the_order_its_buyer_and_the_mails_follow() {
    each_db("e2e_shipping_carrier", async |db| {
    use futures::StreamExt;
    use shop::seed::DEMO_CUSTOMER;
    use shop_shipping::service::tracking::ParcelStatus;
    let h = start_with_fast_carrier(db).await;
    let mut updates = h.platform.bus.subscribe(&["shipping.shipment_updated"]);
    let nw = h.token(supplier(0), Role::Supplier);
    ship_from_hamburg(&h, &nw).await;
    let tent = product(&h, 0, 9_000, Some(4_000)).await;
    let (token, order, shipment) = paid_shipment(&h, DEMO_CUSTOMER, &[(&tent, 2)]).await;
    let number = gql_ok(
        &h,
        &token,
        "query($o: ID!) { order(id: $o) { number } }",
        json!({ "o": order }),
    )
    .await["order"]["number"]
        .as_str()
        .unwrap()
        .to_string();
    // The buyer follows the order through the gateway over a WebSocket.
    let mut ws = common::live::WsClient::connect(&h.platform.gateway_url, Some(&token)).await;
    ws.subscribe("order", FOLLOW, json!({ "o": order })).await;
    let first = ws.next_for("order").await;
    assert_eq!(
        first["data"]["orderStatusChanged"]["status"], "PAID",
        "{first}"
    );
    const PACK: &str = "mutation($s: ID!, $p: ID!) { packShipment(shipmentId: $s, items: [{ productId: $p, quantity: 1 }]) { parcel { id } } }";
    const BUY: &str = "mutation($p: ID!) { buyShippingLabel(parcelId: $p) { trackingNumber parcel { trackingUrl } } }";
    const STATUS: &str = "query($s: ID!) { shipment(id: $s) { status parcels { trackingNumber status events { status location at } } } }";

    // One tent leaves first: the shipment is partly shipped while the other waits.
    let first =
        gql_ok(&h, &nw, PACK, json!({ "s": shipment, "p": tent })).await["packShipment"]["parcel"]
            ["id"]
            .clone();
    let bought = gql_ok(&h, &nw, BUY, json!({ "p": first })).await;
    let first_tracking = bought["buyShippingLabel"]["trackingNumber"]
        .as_str()
        .unwrap()
        .to_string();
    let tracking_url = bought["buyShippingLabel"]["parcel"]["trackingUrl"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        tracking_url.ends_with(&format!("/files/shipping/tracking/{first_tracking}")),
        "{tracking_url}"
    );
    common::eventually("partly shipped", || async {
        let d = gql_ok(&h, &nw, STATUS, json!({ "s": shipment })).await;
        (d["shipment"]["status"] == "PARTIALLY_SHIPPED").then_some(())
    })
    .await;
    // The order follows; the buyer can no longer cancel it.
    let d = common::eventually("the order partly shipped", || async {
        let d = gql_ok(
            &h,
            &token,
            "query($o: ID!) { order(id: $o) { status canCancel } }",
            json!({ "o": order }),
        )
        .await;
        (d["order"]["status"] != "PAID").then_some(d)
    })
    .await;
    assert_eq!(d["order"]["status"], "PARTIALLY_SHIPPED");
    assert_eq!(d["order"]["canCancel"], false);
    let r = h
        .gql(
            Some(&token),
            "mutation($o: ID!) { cancelOrder(id: $o) { status } }",
            json!({ "o": order }),
        )
        .await;
    assert_eq!(r.code(), "CONFLICT", "{}", r.body);
    let second =
        gql_ok(&h, &nw, PACK, json!({ "s": shipment, "p": tent })).await["packShipment"]["parcel"]
            ["id"]
            .clone();
    let second_tracking =
        gql_ok(&h, &nw, BUY, json!({ "p": second })).await["buyShippingLabel"]["trackingNumber"]
            .as_str()
            .unwrap()
            .to_string();

    // Each parcel goes its whole route; the shipment ends delivered unless one went back.
    let routes = [route(&first_tracking), route(&second_tracking)];
    let returned = routes
        .iter()
        .any(|r| r.last() == Some(&ParcelStatus::Returned));
    let expected_final = if returned { "SHIPPED" } else { "DELIVERED" };
    let d = common::eventually("every parcel at the end of its route", || async {
        let d = gql_ok(&h, &token, STATUS, json!({ "s": shipment })).await;
        let done = d["shipment"]["parcels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| {
                p["status"]
                    == route(p["trackingNumber"].as_str().unwrap())
                        .last()
                        .unwrap()
                        .as_str()
            });
        (done && d["shipment"]["status"] == expected_final).then_some(d)
    })
    .await;
    for p in d["shipment"]["parcels"].as_array().unwrap() {
        let seen: Vec<&str> = p["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = route(p["trackingNumber"].as_str().unwrap())
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(seen, want, "each step once, in order");
        assert!(
            p["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["location"].as_str().unwrap().contains("Berlin"))
        );
    }
    // Every step was announced, the last with the order's tally.
    let mut last = Value::Null;
    let steps: usize = routes.iter().map(|r| r.len()).sum();
    for _ in 0..steps {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), updates.next())
            .await
            .expect("an update")
            .expect("open");
        assert_eq!(e.payload["orderId"], order.as_str());
        last = e.payload;
    }
    assert_eq!(last["status"], expected_final);
    assert_eq!(last["order"]["shipments"], 1);

    // The live subscription saw every scan and each of the order's moves, in order.
    let mut scans: Vec<(String, String)> = Vec::new();
    let mut moves: Vec<String> = Vec::new();
    while scans.len() < steps || moves.last().map(String::as_str) != Some(expected_final) {
        let m = ws.next_for("order").await;
        let u = &m["data"]["orderStatusChanged"];
        assert!(m.get("errors").is_none(), "{m}");
        if u["tracking"].is_null() {
            assert_eq!(
                u["previousStatus"],
                moves.last().map_or("PAID", String::as_str)
            );
            moves.push(u["status"].as_str().unwrap().to_string());
        } else {
            let t = &u["tracking"];
            assert_eq!(t["shipmentId"], shipment.as_str());
            assert_eq!(t["carrier"], "simulated");
            assert!(
                t["trackingUrl"]
                    .as_str()
                    .unwrap()
                    .ends_with(t["trackingNumber"].as_str().unwrap())
            );
            assert_eq!(u["status"], u["order"]["status"]);
            scans.push((
                t["trackingNumber"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            ));
        }
    }
    let mut want_moves = vec!["PARTIALLY_SHIPPED", "SHIPPED"];
    if !returned {
        want_moves.push("DELIVERED");
    }
    assert_eq!(moves, want_moves);
    for number in [&first_tracking, &second_tracking] {
        let mine: Vec<&str> = scans
            .iter()
            .filter(|(n, _)| n == number)
            .map(|(_, s)| s.as_str())
            .collect();
        let want: Vec<&str> = route(number).iter().map(|s| s.as_str()).collect();
        assert_eq!(mine, want, "every scan of {number} reached the buyer");
    }
    ws.close().await;

    // The buyer follows the shipment as a whole: its first number, every scan in time.
    let d = gql_ok(&h, &token, "query($o: ID!) { order(id: $o) { status canCancel shipments { carrier carrierName trackingNumber trackingUrl events { trackingNumber status at } } } }", json!({ "o": order })).await;
    assert_eq!(d["order"]["status"], expected_final);
    assert_eq!(d["order"]["canCancel"], false);
    let s = &d["order"]["shipments"][0];
    assert_eq!(s["carrier"], "simulated");
    assert_eq!(s["carrierName"], "Simulated Parcel Service");
    assert_eq!(s["trackingNumber"], first_tracking.as_str());
    assert_eq!(s["trackingUrl"], tracking_url.as_str());
    let events = s["events"].as_array().unwrap();
    assert_eq!(events.len(), steps);
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = events
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "oldest first");

    // The buyer was mailed once when the shipment left and once at delivery, each with
    // the tracking link; the order's own moves sent no second mail.
    const MAILS: &str = "{ myMailDeliveries(first: 50) { edges { node { subject textBody } } } }";
    let want_mails = if returned { 1 } else { 2 };
    let mails = common::eventually("the shipment mails", || async {
        let d = gql_ok(&h, &token, MAILS, json!({})).await;
        let mails: Vec<(String, String)> = d["myMailDeliveries"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["node"]["subject"].as_str().unwrap().to_string(),
                    e["node"]["textBody"].as_str().unwrap().to_string(),
                )
            })
            .filter(|(subject, _)| subject.contains("shipped") || subject.contains("delivered"))
            .collect();
        (mails.len() >= want_mails).then_some(mails)
    })
    .await;
    let shipped: Vec<_> = mails
        .iter()
        .filter(|(s, _)| *s == format!("Your order {number} has shipped"))
        .collect();
    assert_eq!(shipped.len(), 1, "{mails:?}");
    assert!(shipped[0].1.contains(&tracking_url), "{}", shipped[0].1);
    assert!(shipped[0].1.contains("Simulated Parcel Service"));
    if !returned {
        let delivered: Vec<_> = mails
            .iter()
            .filter(|(s, _)| *s == format!("Your order {number} was delivered"))
            .collect();
        assert_eq!(delivered.len(), 1, "{mails:?}");
    }
    assert_eq!(mails.len(), want_mails, "no mail twice: {mails:?}");

    // The carrier's public page shows the scans, not the recipient.
    let page = h.client.get(&tracking_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&first_tracking));
    assert!(
        html.contains("sorting centre") || html.contains("Sorting centre"),
        "{html}"
    );
    assert!(
        !html.contains("Hauptstr") && !html.contains("Ann Lee"),
        "{html}"
    );
    let missing = h
        .client
        .get(format!(
            "{}/files/shipping/tracking/SIM000000000000",
            h.platform.gateway_url.trim_end_matches("/graphql")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn scans_are_recorded_once_in_order_and_only_for_our_parcels() {
    each_db("e2e_shipping_scans", async |db| {
        use shop_shipping::service::tracking::{ParcelStatus, Recorded, Scan, record};
        let h = start(db).await;
        let (_token, shipment, tracking) = labelled_parcel(&h, "scan-buyer").await;
        let nw = h.token(supplier(0), Role::Supplier);

        let ctx = shop_shipping::ShippingCtx::new(h.platform.db("shipping"), Default::default());
        let now = chrono::Utc::now();
        let scan = |id: &str, status: ParcelStatus, minutes: i64| Scan {
            carrier: "simulated".into(),
            event_id: id.into(),
            tracking_number: tracking.clone(),
            status,
            location: "Hub".into(),
            occurred_at: now + chrono::Duration::minutes(minutes),
        };
        assert_eq!(
            record(&ctx, &scan("e1", ParcelStatus::OutForDelivery, 10))
                .await
                .unwrap(),
            Recorded::Applied
        );
        assert_eq!(
            record(&ctx, &scan("e1", ParcelStatus::OutForDelivery, 10))
                .await
                .unwrap(),
            Recorded::Duplicate
        );
        // An older scan arriving late is kept but does not move the parcel back.
        assert_eq!(
            record(&ctx, &scan("e0", ParcelStatus::InTransit, 5))
                .await
                .unwrap(),
            Recorded::Applied
        );
        const STATUS: &str =
            "query($s: ID!) { shipment(id: $s) { status parcels { status events { status } } } }";
        let d = gql_ok(&h, &nw, STATUS, json!({ "s": shipment })).await;
        assert_eq!(d["shipment"]["status"], "SHIPPED");
        assert_eq!(d["shipment"]["parcels"][0]["status"], "OUT_FOR_DELIVERY");
        assert_eq!(
            d["shipment"]["parcels"][0]["events"],
            json!([{ "status": "IN_TRANSIT" }, { "status": "OUT_FOR_DELIVERY" }])
        );
        record(&ctx, &scan("e2", ParcelStatus::Delivered, 20))
            .await
            .unwrap();
        // Nothing moves a delivered parcel.
        record(&ctx, &scan("e3", ParcelStatus::FailedAttempt, 30))
            .await
            .unwrap();
        let d = gql_ok(&h, &nw, STATUS, json!({ "s": shipment })).await;
        assert_eq!(d["shipment"]["status"], "DELIVERED");
        assert_eq!(d["shipment"]["parcels"][0]["status"], "DELIVERED");
        // A number we never gave.
        let mut unknown = scan("e4", ParcelStatus::Delivered, 40);
        unknown.tracking_number = "SIM999999999999".into();
        assert!(matches!(
            record(&ctx, &unknown).await,
            Err(shop_kit::ApiError::NotFound(_))
        ));
        // Our number, reported by a carrier that does not carry it.
        let mut other = scan("e5", ParcelStatus::Returned, 50);
        other.carrier = "acme".into();
        assert!(matches!(
            record(&ctx, &other).await,
            Err(shop_kit::ApiError::NotFound(_))
        ));
        h.stop().await;
    })
    .await;
}

/// `Shop-Signature` for `body` signed at `t` with `secret`.
fn carrier_signature(secret: &str, t: i64, body: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

#[tokio::test]
async fn carrier_webhooks_are_signed_fresh_and_applied_once() {
    each_db("e2e_shipping_webhooks", async |db| {
    const SECRET: &str = "whsec-test-secret";
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, db, true, |o| {
        o.carrier_webhook_secret = Some(SECRET.into());
    })
    .await;
    let (token, shipment, tracking) = labelled_parcel(&h, "hook-buyer").await;

    // Carriers post to the gateway's origin, which passes body and headers through.
    let origin = h
        .platform
        .gateway_url
        .trim_end_matches("/graphql")
        .to_string();
    let url = format!("{origin}/webhooks/shipping/carriers/simulated");
    let post = |body: String, signature: Option<String>| {
        let (client, url) = (h.client.clone(), url.clone());
        async move {
            let mut req = client
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(s) = signature {
                req = req.header("shop-signature", s);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let event = |id: &str, number: &str, status: &str| {
        json!({ "eventId": id, "trackingNumber": number, "status": status, "location": "Hub Kassel", "occurredAt": chrono::Utc::now().to_rfc3339() }).to_string()
    };
    let now = chrono::Utc::now().timestamp();
    const STATUS: &str = "query($s: ID!) { shipment(id: $s) { status parcels { status events { status location } } } }";
    let unchanged = || async {
        let d = gql_ok(&h, &token, STATUS, json!({ "s": shipment })).await;
        assert_eq!(
            d["shipment"]["parcels"][0]["status"], "LABELLED",
            "nothing changed: {d}"
        );
        assert_eq!(d["shipment"]["parcels"][0]["events"], json!([]));
    };

    // Forged, unsigned, signed with another secret, stale, or from the future: 401.
    let body = event("evt-1", &tracking, "IN_TRANSIT");
    let forged = carrier_signature(SECRET, now, &body.replace("IN_TRANSIT", "DELIVERED"));
    for signature in [
        None,
        Some("t=1,v1=zz".to_string()),
        Some(forged),
        Some(carrier_signature("another-secret", now, &body)),
        // A minute past the five-minute window either way: the request may reach the
        // server seconds after `now` was read, and must not slip back inside.
        Some(carrier_signature(SECRET, now - 360, &body)),
        Some(carrier_signature(SECRET, now + 360, &body)),
    ] {
        let (status, answer) = post(body.clone(), signature).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    unchanged().await;

    // Signed and fresh: applied once; the same event again changes nothing.
    let (status, answer) = post(body.clone(), Some(carrier_signature(SECRET, now, &body))).await;
    assert_eq!((status, answer), (200, json!({ "duplicate": false })));
    let (status, answer) = post(body.clone(), Some(carrier_signature(SECRET, now, &body))).await;
    assert_eq!((status, answer), (200, json!({ "duplicate": true })));
    let d = gql_ok(&h, &token, STATUS, json!({ "s": shipment })).await;
    assert_eq!(d["shipment"]["status"], "SHIPPED");
    assert_eq!(
        d["shipment"]["parcels"][0]["events"],
        json!([{ "status": "IN_TRANSIT", "location": "Hub Kassel" }])
    );

    // A number we never gave, and bodies that are not events.
    let unknown = event("evt-2", "ACME000000", "DELIVERED");
    let (status, answer) = post(
        unknown.clone(),
        Some(carrier_signature(SECRET, now, &unknown)),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(answer["errors"][0]["extensions"]["code"], "NOT_FOUND");
    for bad in [
        "{",
        &event("evt-3", &tracking, "TELEPORTED"),
        &event("evt-4", &tracking, "LABELLED"),
    ] {
        let (status, answer) =
            post(bad.to_string(), Some(carrier_signature(SECRET, now, bad))).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    let delivered = event("evt-5", &tracking, "DELIVERED");
    let (status, _) = post(
        delivered.clone(),
        Some(carrier_signature(SECRET, now, &delivered)),
    )
    .await;
    assert_eq!(status, 200);
    let d = gql_ok(&h, &token, STATUS, json!({ "s": shipment })).await;
    assert_eq!(d["shipment"]["status"], "DELIVERED");
    // The order follows the webhook's news too.
    common::eventually("the order delivered", || async {
        let d = gql_ok(
            &h,
            &token,
            "query($s: ID!) { shipment(id: $s) { orderId } }",
            json!({ "s": shipment }),
        )
        .await;
        let o = gql_ok(
            &h,
            &token,
            "query($o: ID!) { order(id: $o) { status } }",
            json!({ "o": d["shipment"]["orderId"] }),
        )
        .await;
        (o["order"]["status"] == "DELIVERED").then_some(())
    })
    .await;

    // A carrier we do not ship with, signed or not: 404, nothing recorded.
    let late = event("evt-6", &tracking, "RETURNED");
    let (status, answer) = post_to(
        &h,
        &format!("{origin}/webhooks/shipping/carriers/acme"),
        late.clone(),
        carrier_signature(SECRET, now, &late),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    let d = gql_ok(&h, &token, STATUS, json!({ "s": shipment })).await;
    assert_eq!(d["shipment"]["parcels"][0]["status"], "DELIVERED");
    h.stop().await;
    })
    .await;
}

/// Posts a signed webhook body to `url`: the status and the JSON answer.
async fn post_to(h: &Harness, url: &str, body: String, signature: String) -> (u16, Value) {
    let resp = h
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("shop-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_cancelled_order_stops_its_shipments_that_have_not_left() {
    each_db("e2e_shipping_cancel", async |db| {
        let h = start(db).await;
        let nw = h.token(supplier(0), Role::Supplier);
        ship_from_hamburg(&h, &nw).await;
        let lamp = product(&h, 0, 2_000, Some(500)).await;
        let (token, order, shipment) = paid_shipment(&h, "cancel-buyer", &[(&lamp, 2)]).await;
        // One unit packed and labelled, then the buyer changes their mind.
        let d = gql_ok(&h, &nw, "mutation($s: ID!, $p: ID!) { packShipment(shipmentId: $s, items: [{ productId: $p, quantity: 1 }]) { parcel { id } } }", json!({ "s": shipment, "p": lamp })).await;
        let parcel = d["packShipment"]["parcel"]["id"].clone();
        gql_ok(&h, &nw, "mutation($p: ID!) { buyShippingLabel(parcelId: $p) { trackingNumber } }", json!({ "p": parcel })).await;
        let d = gql_ok(
            &h,
            &token,
            "mutation($o: ID!) { cancelOrder(id: $o) { status } }",
            json!({ "o": order }),
        )
        .await;
        assert_eq!(d["cancelOrder"]["status"], "CANCELLED");
        common::eventually("the shipment cancelled", || async {
            let d = gql_ok(&h, &nw, "query($s: ID!) { shipment(id: $s) { status } }", json!({ "s": shipment })).await;
            (d["shipment"]["status"] == "CANCELLED").then_some(())
        })
        .await;
        // Nothing more is packed or labelled for it.
        let r = h
            .gql(
                Some(&nw),
                "mutation($s: ID!, $p: ID!) { packShipment(shipmentId: $s, items: [{ productId: $p, quantity: 1 }]) { parcel { id } } }",
                json!({ "s": shipment, "p": lamp }),
            )
            .await;
        assert_eq!(r.code(), "CONFLICT", "{}", r.body);
        let d = gql_ok(
            &h,
            &nw,
            "query { shipments(status: [CANCELLED]) { id } }",
            json!({}),
        )
        .await;
        assert!(
            d["shipments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == shipment.as_str())
        );
        h.stop().await;
    })
    .await;
}

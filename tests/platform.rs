//! End to end: the platform on free ports, driven through the gateway over HTTP.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_arguments)]

mod common;

use common::{Harness, eventually, role, supplier_id};
use serde_json::{Value, json};
use shop_kit::testing::{cleanup, databases};

const CREATE_CATALOG: &str =
    "mutation($n: String!) { createCatalog(input: {name: $n}) { id supplierId } }";
const CREATE_CATEGORY: &str = "mutation($c: ID!, $p: ID, $n: String!) { createCategory(input: {catalogId: $c, parentId: $p, name: $n}) { id } }";
const CREATE_PRODUCT: &str =
    "mutation($i: CreateProductInput!) { createProduct(input: $i) { id sku } }";
const SET_STOCK: &str = "mutation($p: ID!, $q: Int!) { setStock(productId: $p, quantity: $q, reason: \"count\") { quantity product { name inStock } } }";

async fn create_catalog(h: &Harness, token: &str, name: &str) -> String {
    let r = h
        .gql(Some(token), CREATE_CATALOG, json!({ "n": name }))
        .await;
    r.data()["createCatalog"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn product(
    h: &Harness,
    token: &str,
    catalog: &str,
    category: Option<&str>,
    sku: &str,
    name: &str,
    price: i64,
) -> String {
    let r = h
        .gql(
            Some(token),
            CREATE_PRODUCT,
            json!({ "i": {
            "catalogId": catalog, "categoryId": category, "sku": sku, "name": name,
            "price": { "amount": price, "currency": "EUR" }, "attributes": { "color": "red" }
        } }),
        )
        .await;
    r.data()["createProduct"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// Stock records are created from the catalog's events; setting stock waits for that.
async fn set_stock(h: &Harness, token: &str, product: &str, qty: i64) -> Value {
    eventually("the stock record to exist", || async {
        let r = h
            .gql(Some(token), SET_STOCK, json!({ "p": product, "q": qty }))
            .await;
        r.body
            .get("errors")
            .is_none()
            .then(|| r.body["data"]["setStock"].clone())
    })
    .await
}

#[tokio::test]
async fn a_supplier_sells_and_shoppers_see_stock_across_subgraphs() {
    let dbs = databases("e2e_flow").await;
    for db in [None]
        .into_iter()
        .chain(dbs.iter().filter(|d| d.label() == "mysql").map(Some))
    {
        let h = Harness::start(db, false).await;
        let label = db.map(|d| d.label()).unwrap_or("sqlite");
        let tok = h.token(&supplier_id(1), role("SUPPLIER"));
        let cat = create_catalog(&h, &tok, "Bikes").await;
        let parts = h
            .gql(
                Some(&tok),
                CREATE_CATEGORY,
                json!({ "c": cat, "n": "Parts" }),
            )
            .await
            .data()["createCategory"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let chains = h
            .gql(
                Some(&tok),
                CREATE_CATEGORY,
                json!({ "c": cat, "p": parts, "n": "Chains" }),
            )
            .await
            .data()["createCategory"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let chain = product(&h, &tok, &cat, Some(&chains), "CH-1", "Road Chain", 2999).await;
        let bell = product(&h, &tok, &cat, Some(&parts), "BL-1", "Brass Bell", 999).await;

        let level = set_stock(&h, &tok, &chain, 5).await;
        assert_eq!(
            level,
            json!({ "quantity": 5, "product": { "name": "Road Chain", "inStock": true } }),
            "[{label}]"
        );
        set_stock(&h, &tok, &bell, 0).await;

        // One query, two subgraphs: the gateway plans the entity fetch for stock.
        let page = h
            .gql(Some(&tok), "query($id: ID!) { product(id: $id) { sku name price { amount currency } stock inStock category { name path { name } } catalog { name } } }", json!({ "id": chain }))
            .await;
        assert_eq!(
            page.data()["product"],
            json!({ "sku": "CH-1", "name": "Road Chain", "price": { "amount": 2999, "currency": "EUR" }, "stock": 5, "inStock": true,
                    "category": { "name": "Chains", "path": [{ "name": "Parts" }, { "name": "Chains" }] }, "catalog": { "name": "Bikes" } }),
            "[{label}]"
        );
        // The in-stock filter follows inventory through events.
        let in_stock = eventually("the catalog to learn the stock", || async {
            let r = h
                .gql(
                    Some(&tok),
                    "{ products(filter: {inStock: true}) { edges { node { sku stock } } } }",
                    json!({}),
                )
                .await;
            let edges = r.data()["products"]["edges"].clone();
            (edges.as_array().map(Vec::len) == Some(1)).then_some(edges)
        })
        .await;
        assert_eq!(
            in_stock,
            json!([{ "node": { "sku": "CH-1", "stock": 5 } }]),
            "[{label}]"
        );
        // A category's listing includes its subcategories', with stock batched from inventory.
        let listing = h
            .gql(Some(&tok), "query($c: ID!) { category(id: $c) { products(sort: PRICE_ASC) { totalCount edges { node { sku stock } } } } }", json!({ "c": parts }))
            .await;
        assert_eq!(
            listing.data()["category"]["products"]["edges"],
            json!([{ "node": { "sku": "BL-1", "stock": 0 } }, { "node": { "sku": "CH-1", "stock": 5 } }])
        );

        // Deleting the catalog removes its products now and their stock records once inventory hears of it.
        h.gql(
            Some(&tok),
            "mutation($id: ID!) { deleteCatalog(id: $id) }",
            json!({ "id": cat }),
        )
        .await
        .data();
        assert_eq!(
            h.gql(
                None,
                "query($id: ID!) { product(id: $id) { id } }",
                json!({ "id": chain })
            )
            .await
            .data()["product"],
            Value::Null
        );
        eventually("inventory to drop the stock record", || async {
            let r = h
                .gql(
                    Some(&tok),
                    "query($p: ID!) { stockLevel(productId: $p) { quantity } }",
                    json!({ "p": chain }),
                )
                .await;
            (r.body
                .pointer("/errors/0/extensions/code")
                .and_then(Value::as_str)
                == Some("NOT_FOUND"))
            .then_some(())
        })
        .await;
        h.stop().await;
    }
    cleanup(&dbs).await;
}

#[tokio::test]
async fn suppliers_cannot_touch_each_others_catalogs_and_writes_need_a_valid_token() {
    let h = Harness::start(None, false).await;
    let a = h.token(&supplier_id(1), role("SUPPLIER"));
    let b = h.token(&supplier_id(2), role("SUPPLIER"));
    let cat = create_catalog(&h, &a, "A's").await;
    let r = h
        .gql(
            Some(&b),
            "mutation($id: ID!) { updateCatalog(id: $id, input: {name: \"mine now\"}) { name } }",
            json!({ "id": cat }),
        )
        .await;
    assert_eq!((r.status, r.code()), (200, "FORBIDDEN"));
    assert_eq!(r.body["errors"][0]["path"], json!(["updateCatalog"]));
    let r = h.gql(None, CREATE_CATALOG, json!({ "n": "anon" })).await;
    assert_eq!(r.code(), "UNAUTHENTICATED");
    // A token signed by a key the issuer never published is refused before anything runs.
    let forger = shop_kit::auth::SigningKey::generate().unwrap();
    let forged = forger
        .mint(
            common::ISSUER,
            common::AUDIENCE,
            &supplier_id(1),
            &[role("ADMIN")],
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let r = h
        .gql(Some(&forged), CREATE_CATALOG, json!({ "n": "forged" }))
        .await;
    assert_eq!((r.status, r.code()), (401, "UNAUTHENTICATED"));
    let r = h
        .gql(Some("garbage"), "{ catalogs { totalCount } }", json!({}))
        .await;
    assert_eq!(r.status, 401);
    let d = h
        .gql(
            None,
            "{ catalogs { totalCount edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        d.data()["catalogs"],
        json!({ "totalCount": 1, "edges": [{ "node": { "name": "A's" } }] })
    );
    h.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_statuses() {
    let h = Harness::start(None, false).await;
    let r = h.post_raw("{not json", &[]).await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"));
    let r = h.post_raw("{\"variables\": {}}", &[]).await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST"));
    let r = h.gql(None, "{ catalogs { totalCount ", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "GRAPHQL_PARSE_FAILED"));
    let r = h.gql(None, "{ catalogs { nope } }", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "GRAPHQL_VALIDATION_FAILED"));
    let nope = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message"].as_str().unwrap().contains("`nope`"))
        .expect("names the field");
    assert_eq!(nope["locations"], json!([{ "line": 1, "column": 14 }]));
    assert!(
        r.body.get("data").is_none(),
        "request errors have no data key"
    );
    let r = h
        .gql(
            None,
            "query($n: Int) { products(first: $n) { totalCount } }",
            json!({ "n": "ten" }),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "BAD_USER_INPUT"));
    let r = h
        .gql(None, "{ products(first: 1000) { totalCount } }", json!({}))
        .await;
    assert_eq!((r.status, r.code()), (200, "BAD_USER_INPUT"));
    assert_eq!(r.body["errors"][0]["extensions"]["service"], "catalog");
    let r = h
        .gql(
            None,
            "query A { catalogs { totalCount } } query B { catalogs { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = h
        .gql(None, "{ products @defer { totalCount } }", json!({}))
        .await;
    assert_eq!((r.status, r.code()), (400, "GRAPHQL_VALIDATION_FAILED"));

    // GET: queries run (with the header CSRF prevention asks of a GET), mutations are
    // refused, browsers get the console.
    let url = &h.platform.gateway_url;
    let get = |q: &str| {
        h.client
            .get(reqwest::Url::parse_with_params(url, &[("query", q)]).unwrap())
            .header("apollo-require-preflight", "true")
            .send()
    };
    let r = get("{ catalogs { totalCount } }").await.unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .client
        .get(
            reqwest::Url::parse_with_params(url, &[("query", "{ catalogs { totalCount } }")])
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a plain link cannot run an operation");
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "CSRF_ERROR");
    let r = get("mutation { deleteCatalog(id: \"x\") }").await.unwrap();
    assert_eq!(r.status(), 405);
    // Heads larger than the gateway reads get coded errors, not hyper's empty answers.
    let long = format!(
        "{{ catalogs {{ totalCount }} }}#{}",
        "x".repeat(shop_kit::server::MAX_URI_BYTES)
    );
    let r = get(&long).await.unwrap();
    assert_eq!(r.status(), 414);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "URI_TOO_LONG");
    let r = h
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("cookie", "c".repeat(shop_kit::server::MAX_HEADER_BYTES))
        .body(r#"{"query":"{ catalogs { totalCount } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "REQUEST_HEADERS_TOO_LARGE"
    );
    let html = h
        .client
        .get(url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("console/console.js"), "{html}");

    for path in ["/health", "/ready"] {
        let gw = url.replace("/graphql", path);
        assert_eq!(
            h.client.get(&gw).send().await.unwrap().status(),
            200,
            "{path}"
        );
        for (_, sub) in &h.platform.subgraph_urls {
            assert_eq!(
                h.client
                    .get(sub.replace("/graphql", path))
                    .send()
                    .await
                    .unwrap()
                    .status(),
                200,
                "{sub}{path}"
            );
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn the_demo_shop_is_seeded_once_and_reused_on_restart() {
    let dir = std::env::temp_dir().join(format!("shop-e2e-seed-{}", shop_kit::ids::new_id()));
    let h = Harness::start_in(dir.clone(), None, true).await;
    let counts = "{ catalogs { totalCount edges { node { categories { children { id } } } } } products { totalCount } }";
    let first = h.gql(None, counts, json!({})).await.data().clone();
    assert!(first["catalogs"]["totalCount"].as_u64().unwrap() >= 3);
    assert!(first["products"]["totalCount"].as_u64().unwrap() >= 300);
    let categories: usize = first["catalogs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let roots = e["node"]["categories"].as_array().unwrap();
            roots.len()
                + roots
                    .iter()
                    .map(|r| r["children"].as_array().unwrap().len())
                    .sum::<usize>()
        })
        .sum();
    assert!(categories >= 8, "{categories} categories");
    // Stock varies: the catalog learns it from inventory's events, so wait for them all.
    let zero_in_pattern = 2;
    let expected_out_of_stock =
        (shop::seed::PRODUCTS_PER_CATALOG / 11 * zero_in_pattern * 3) as u64;
    eventually("every seeded stock level to reach the catalog", || async {
        let r = h
            .gql(
                None,
                "{ products(filter: {inStock: false}) { totalCount } }",
                json!({}),
            )
            .await;
        (r.data()["products"]["totalCount"].as_u64() == Some(expected_out_of_stock)).then_some(())
    })
    .await;
    h.platform.shutdown().await;

    let again = Harness::start_in(dir.clone(), None, true).await;
    let second = again.gql(None, counts, json!({})).await.data().clone();
    assert_eq!(first, second, "a second start seeds nothing");
    again.stop().await;
}

#[tokio::test]
async fn the_gateway_answers_introspection_and_caches_plans() {
    let h = Harness::start(None, false).await;
    let r = h.gql(None, "{ __schema { queryType { name } types { name } } __type(name: \"Product\") { fields { name } } }", json!({})).await;
    let d = r.data();
    assert_eq!(d["__schema"]["queryType"]["name"], "Query");
    let types: Vec<&str> = d["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"Product")
            && !types
                .iter()
                .any(|t| t.starts_with("join__") || t.starts_with("link__") || *t == "_Any")
    );
    let fields: Vec<&str> = d["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"name") && fields.contains(&"stock") && fields.contains(&"inStock"));
    let before = h.platform.gateway.cached_operations();
    for _ in 0..3 {
        h.gql(None, "{ catalogs { totalCount } }", json!({}))
            .await
            .data();
    }
    assert_eq!(h.platform.gateway.cached_operations(), before + 1);
    h.stop().await;
}

#[tokio::test]
async fn one_failing_subgraph_leaves_the_rest_of_the_answer() {
    let h = Harness::start(None, false).await;
    let tok = h.token(&supplier_id(1), role("SUPPLIER"));
    let cat = create_catalog(&h, &tok, "Shop").await;
    let p = product(&h, &tok, &cat, None, "P-1", "Lamp", 100).await;
    // A second gateway over the same subgraphs, but with inventory pointing at a closed port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut sg = shop_federation::Supergraph::parse(&h.platform.gateway.supergraph.sdl).unwrap();
    assert!(sg.set_url("inventory", &format!("http://{dead}/graphql")));
    let gw = shop_gateway::Gateway::new(sg, shop_gateway::GatewayOptions::default());
    let req = shop_gateway::GraphQLRequest {
        query: Some(
            "query($id: ID!) { a: product(id: $id) { name } b: product(id: $id) { name inStock } }"
                .into(),
        ),
        variables: Some(json!({ "id": p }).as_object().unwrap().clone()),
        ..Default::default()
    };
    let resp = gw.execute(req, &Default::default()).await;
    let body = serde_json::to_value(&resp).unwrap();
    // `inStock` is non-null, so its null bubbles to `b`; `a` is untouched.
    assert_eq!(
        body["data"],
        json!({ "a": { "name": "Lamp" }, "b": null }),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"],
        json!({ "code": "SUBREQUEST_HTTP_ERROR", "service": "inventory" })
    );
    assert_eq!(body["errors"][0]["path"], json!(["b"]));
    h.stop().await;
}

#[tokio::test]
async fn representations_are_deduplicated_and_results_land_at_every_position() {
    let h = Harness::start(None, false).await;
    let tok = h.token(&supplier_id(1), role("SUPPLIER"));
    let cat = create_catalog(&h, &tok, "Shop").await;
    let mut ids = Vec::new();
    for (i, qty) in [3, 0, 7].iter().enumerate() {
        let id = product(
            &h,
            &tok,
            &cat,
            None,
            &format!("S-{i}"),
            &format!("Item {i}"),
            100 + i as i64,
        )
        .await;
        set_stock(&h, &tok, &id, *qty).await;
        ids.push(id);
    }
    let q = "query($a: ID!, $b: ID!) { x: product(id: $a) { stock } y: product(id: $a) { s: stock } z: product(id: $b) { stock inStock } all: products(sort: PRICE_ASC) { edges { node { sku stock } } } }";
    let d = h
        .gql(Some(&tok), q, json!({ "a": ids[0], "b": ids[1] }))
        .await;
    assert_eq!(
        d.data(),
        &json!({
            "x": { "stock": 3 }, "y": { "s": 3 }, "z": { "stock": 0, "inStock": false },
            "all": { "edges": [{ "node": { "sku": "S-0", "stock": 3 } }, { "node": { "sku": "S-1", "stock": 0 } }, { "node": { "sku": "S-2", "stock": 7 } }] }
        })
    );
    // Shoppers and other suppliers see availability, never the supplier's numbers:
    // a hint when few are left.
    let shopper = h.token("window-shopper", role("CUSTOMER"));
    let rival = h.token("rival-supplier", role("SUPPLIER"));
    let q = "{ products(sort: PRICE_ASC) { edges { node { sku stock onlyLeft inStock } } } }";
    for token in [None, Some(shopper.as_str()), Some(rival.as_str())] {
        let d = h.gql(token, q, json!({})).await;
        assert_eq!(
            d.data()["products"]["edges"],
            json!([
                { "node": { "sku": "S-0", "stock": null, "onlyLeft": 3, "inStock": true } },
                { "node": { "sku": "S-1", "stock": null, "onlyLeft": null, "inStock": false } },
                { "node": { "sku": "S-2", "stock": null, "onlyLeft": null, "inStock": true } }
            ])
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn input_only_a_subgraph_can_judge_gets_bad_user_input_and_changes_nothing() {
    let h = Harness::start(None, false).await;
    let admin = h.token("admin-bad-input", role("ADMIN"));
    let create = "mutation($i: PromoCodeInput!) { createPromoCode(input: $i) { code } }";
    // A DateTime the gateway cannot check (custom scalars are the subgraph's to read),
    // as a variable and inline.
    let r = h
        .gql(
            Some(&admin),
            create,
            json!({ "i": { "code": "WHEN", "percentOff": 10, "startsAt": "next tuesday" } }),
        )
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
    assert_eq!(r.body["errors"][0]["extensions"]["service"], "carts");
    let r = h
        .gql(
            Some(&admin),
            "mutation { createPromoCode(input: { code: \"WHEN\", percentOff: 10, endsAt: \"13/13/2030\" }) { code } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
    let r = h
        .gql(Some(&admin), "{ promoCodes { totalCount } }", json!({}))
        .await;
    assert_eq!(
        r.data()["promoCodes"]["totalCount"],
        0,
        "nothing was created"
    );

    // Straight to a subgraph: its own parse and validation errors carry codes too.
    let carts = &h
        .platform
        .subgraph_urls
        .iter()
        .find(|(n, _)| n == "carts")
        .expect("carts")
        .1;
    for (query, code) in [
        ("{ promoCodes { totalCount ", "GRAPHQL_PARSE_FAILED"),
        ("{ promoCodes { nope } }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let body = h
            .post_to(carts, &json!({ "query": query }).to_string(), &[])
            .await
            .body;
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_filter_with_seventy_thousand_values_is_refused_with_the_limit() {
    let h = Harness::start(None, false).await;
    let filter = |values: Value| {
        h.gql(
            None,
            "query($v: [String!]!) { products(filter: { attributes: [{ name: \"color\", values: $v }] }) { totalCount } }",
            json!({ "v": values }),
        )
    };
    let many = |n: usize| json!((0..n).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let r = filter(many(70_000)).await;
    // The gateway's bound on variables refuses it before it is coerced or sent on.
    assert_eq!(r.code(), "MAX_VARIABLE_VALUES_EXCEEDED", "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["extensions"]["limit"],
        "max_variable_values"
    );
    // Within that bound, the catalog's own limit on a filter's values answers.
    let r = filter(many(5_000)).await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
    let message = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("at most 100"), "{message}");
    // Within the limit the same filter runs.
    let r = filter(json!(["red", "blue"])).await;
    assert_eq!(r.data()["products"]["totalCount"], 0);
    h.stop().await;
}

/// The pages mail links open answer on the gateway's origin, load nothing from
/// elsewhere, keep tokens out of referrers, and every operation they send fits the
/// schema (so a renamed field breaks this test, not a customer's link).
#[tokio::test]
async fn the_pages_behind_mail_links_answer_and_their_operations_fit_the_schema() {
    let h = Harness::start(None, false).await;
    let base = h
        .platform
        .gateway_url
        .trim_end_matches("/graphql")
        .to_string();
    let client = reqwest::Client::new();
    let mut operations = Vec::new();
    for path in shop::pages::PATHS {
        let path = path.replace("{id}", &shop_kit::ids::new_id());
        let reply = client
            .get(format!("{base}{path}?token=abc"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        assert_eq!(reply.headers()["referrer-policy"], "no-referrer", "{path}");
        assert!(
            reply.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = reply.text().await.unwrap();
        for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(!html.contains(attr), "{path} loads from elsewhere: {attr}");
        }
        let mut rest = html.as_str();
        while let Some(start) = rest.find("gql(\"") {
            let after = &rest[start + 5..];
            let end = after.find('"').unwrap();
            operations.push((path.clone(), after[..end].to_string()));
            rest = &after[end..];
        }
    }
    assert!(operations.len() >= 5, "{operations:?}");
    for (path, op) in operations {
        let r = h.gql(None, &op, json!({})).await;
        let code = r.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("");
        assert!(
            !matches!(code, "GRAPHQL_VALIDATION_FAILED" | "GRAPHQL_PARSE_FAILED"),
            "{path}: {op}: {}",
            r.body
        );
    }
    h.stop().await;
}

/// The browser console at `/graphql` comes whole from the gateway: a strict content
/// security policy, every script and style it names served here (so it works with no
/// network beyond the gateway), and its example operations and schema query valid
/// against the supergraph, run as a newcomer would run them.
#[tokio::test]
async fn the_console_is_served_whole_by_the_gateway_and_its_examples_work() {
    let h = Harness::start(None, true).await;
    let url = reqwest::Url::parse(&h.platform.gateway_url).unwrap();
    let page = h
        .client
        .get(url.clone())
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(
        policy.contains("script-src 'self';") && policy.contains("style-src 'self';"),
        "{policy}"
    );
    assert!(!policy.contains("http"), "{policy}");
    let html = page.text().await.unwrap();
    // Inline code would be blocked by the policy: every script names its file.
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script defer src=").count()
    );
    assert!(
        !html.contains("<style"),
        "inline styles are blocked by the policy"
    );

    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html.as_str();
        while let Some(at) = rest.find(attr) {
            let after = &rest[at + attr.len()..];
            let end = after.find('"').unwrap();
            assets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    assert_eq!(assets.len(), 2, "{assets:?}");
    let mut script = String::new();
    for asset in &assets {
        assert!(
            !asset.contains("//") && !asset.starts_with('/'),
            "{asset} is not relative to the page"
        );
        let reply = h.client.get(url.join(asset).unwrap()).send().await.unwrap();
        assert_eq!(reply.status(), 200, "{asset}");
        let kind = reply.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body = reply.text().await.unwrap();
        assert!(body.len() > 1000, "{asset} is served empty");
        if asset.ends_with(".js") {
            assert!(kind.starts_with("text/javascript"), "{kind}");
            script = body;
        } else {
            assert!(kind.starts_with("text/css"), "{kind}");
        }
    }
    // Nothing the script fetches lives elsewhere.
    assert!(!script.contains("http://") && !script.contains("https://"));
    assert!(script.contains("graphql-transport-ws"));

    let between = |from: &str| {
        let start = script.find(from).unwrap() + from.len();
        let end = start + script[start..].find("`;").unwrap();
        script[start..end].to_string()
    };
    let schema = h
        .gql(None, &between("const INTROSPECTION = `"), json!({}))
        .await;
    let types = schema.data()["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Product"));

    // The example, one operation at a time: the products query answers, the login
    // signs the demo customer in, and the subscription is accepted with that token.
    let example = between("const EXAMPLE = `");
    let operations: Vec<&str> = example
        .split("\n\n")
        .filter(|b| {
            b.starts_with("query") || b.starts_with("mutation") || b.starts_with("subscription")
        })
        .collect();
    assert_eq!(operations.len(), 3, "{example}");
    let products = h.gql(None, operations[0], json!({})).await;
    assert!(products.data()["products"]["totalCount"].as_i64().unwrap() > 0);
    let login = h.gql(None, operations[1], json!({})).await;
    let token = login.data()["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        common::live::SseClient::start(
            &h.platform.gateway_url,
            Some(&token),
            operations[2],
            json!({})
        )
        .await
        .is_ok(),
        "the example subscription is refused"
    );

    // The same in a browser whose network stops at the gateway.
    common::browser::run(
        "the_console_is_served_whole_by_the_gateway_and_its_examples_work",
        "console.mjs",
        &[&h.platform.gateway_url],
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn every_process_serves_metrics_that_promtool_accepts() {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, false, |o| {
        o.rate_limits.per_client =
            shop_gateway::ratelimit::RateLimits::parse_clients("greedy=1/1m").unwrap();
    })
    .await;
    // A refused query and a rate-limited one, so that their series exist too.
    h.gql(None, "{ nope }", json!({})).await;
    for _ in 0..2 {
        h.client
            .post(&h.platform.gateway_url)
            .header("content-type", "application/json")
            .header("graphql-client-name", "greedy")
            .body(json!({ "query": "{ __typename }" }).to_string())
            .send()
            .await
            .unwrap();
    }
    let tok = h.token(&supplier_id(1), role("SUPPLIER"));
    let cat = create_catalog(&h, &tok, "Metered").await;
    product(&h, &tok, &cat, None, "M-1", "Meter", 100).await;
    let scrape = |url: String| async move {
        let resp = reqwest::get(url).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    };
    let base = h
        .platform
        .gateway_url
        .trim_end_matches("/graphql")
        .to_string();
    let gateway = scrape(format!("{base}/metrics")).await;
    let catalog_base = h
        .platform
        .subgraph_url("catalog")
        .unwrap()
        .trim_end_matches("/graphql");
    let catalog = scrape(format!("{catalog_base}/metrics")).await;
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    // The gateway asked the catalog; the catalog counted being asked.
    let asked = "shop_gateway_subgraph_request_duration_seconds_count{outcome=\"answered\",subgraph=\"catalog\"}";
    assert!(value(&gateway, asked) >= 1.0);
    let served =
        "shop_subgraph_request_duration_seconds_count{outcome=\"ok\",subgraph=\"catalog\"}";
    assert!(value(&catalog, served) >= 1.0);
    assert!(
        value(&gateway, served) >= 1.0,
        "one process: the gateway shows it too"
    );
    // SQLite pools: this platform's, read at scrape.
    assert!(
        value(
            &catalog,
            "shop_db_pool_max_connections{subgraph=\"catalog\"}"
        ) >= 1.0
    );
    let open = value(
        &catalog,
        "shop_db_pool_connections{state=\"idle\",subgraph=\"catalog\"}",
    ) + value(
        &catalog,
        "shop_db_pool_connections{state=\"in_use\",subgraph=\"catalog\"}",
    );
    assert!(open >= 1.0, "the catalog's pool has a connection open");
    // The bus: events published and handled (once the relay and a consumer have had
    // the product's event), outboxes and consumer groups read.
    let families = [
        "shop_events_published_total{topic=\"",
        "shop_events_handled_total{group=\"",
        "shop_events_outbox_backlog{outbox=\"",
        "shop_events_consumer_lag{group=\"",
    ];
    let gateway = eventually("event metrics", || {
        let url = format!("{base}/metrics");
        async move {
            let text = scrape(url).await;
            let all = families
                .iter()
                .all(|f| text.lines().any(|l| l.starts_with(f)));
            all.then_some(text)
        }
    })
    .await;
    shop_kit::testing::promtool_check(&gateway);
    shop_kit::testing::promtool_check(&catalog);
    // The Grafana dashboard charts only series the processes export.
    let families: Vec<&str> = gateway
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("shop_"));
            for name in names {
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|base| families.contains(base))
                    .unwrap_or(name);
                assert!(
                    families.contains(&family),
                    "the dashboard's {:?} charts {name}, which no process exports",
                    panel["title"]
                );
            }
        }
    }
    h.stop().await;
}

/// Eight subgraphs, two connections each at the least: a smaller total for the
/// all-in-one process on a shared server is refused before anything connects.
#[tokio::test]
async fn a_connection_total_below_two_per_subgraph_is_refused() {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let mut opts = shop::platform::PlatformOptions::for_tests(&dir);
    // Never reached: the check comes first.
    opts.database_url = Some("mysql://nobody@127.0.0.1:1/none".into());
    let least = 2 * shop::subgraphs::SUBGRAPHS.len() as u32;
    opts.db_max_connections = least - 1;
    let err = shop::platform::Platform::start(opts)
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("SHOP_DB_MAX_CONNECTIONS") && message.contains(&least.to_string()),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

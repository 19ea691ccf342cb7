//! Execution against scripted subgraphs served over real HTTP: what the gateway sends
//! and how it assembles what comes back.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use shop_federation::{SubgraphSource, Supergraph, compose};
use shop_gateway::{Gateway, GatewayOptions, GraphQLRequest};

type Script = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

/// A subgraph that answers with `script(request)` and records every request.
async fn mock(script: Script) -> (String, Arc<Mutex<Vec<Value>>>) {
    mock_slow(script, std::time::Duration::ZERO).await
}

/// As [`mock`], answering each request after `delay` (recorded on arrival).
async fn mock_slow(script: Script, delay: std::time::Duration) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/graphql",
        post(move |Json(body): Json<Value>| {
            let (script, log) = (script.clone(), log.clone());
            async move {
                let reply = script(&body);
                log.lock().unwrap().push(body);
                tokio::time::sleep(delay).await;
                Json(reply)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

const LINK: &str =
    "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\"])\n";

async fn gateway(
    products: Script,
    inventory: Script,
) -> (Arc<Gateway>, Arc<Mutex<Vec<Value>>>, Arc<Mutex<Vec<Value>>>) {
    gateway_with(products, inventory, GatewayOptions::default()).await
}

async fn gateway_with(
    products: Script,
    inventory: Script,
    options: GatewayOptions,
) -> (Arc<Gateway>, Arc<Mutex<Vec<Value>>>, Arc<Mutex<Vec<Value>>>) {
    let (purl, plog) = mock(products).await;
    let (iurl, ilog) = mock(inventory).await;
    let sdl = compose(&[
        SubgraphSource {
            name: "products".into(),
            url: purl,
            sdl: format!("{LINK} type Query {{ topProducts: [Product!]! }} type Product @key(fields: \"upc\") {{ upc: String! name: String! }}"),
        },
        SubgraphSource {
            name: "inventory".into(),
            url: iurl,
            sdl: format!("{LINK} type Product @key(fields: \"upc\") {{ upc: String! inStock: Boolean count: Int! }}"),
        },
    ])
    .unwrap();
    (
        Gateway::new(Supergraph::parse(&sdl).unwrap(), options),
        plog,
        ilog,
    )
}

async fn run(gw: &Arc<Gateway>, query: &str) -> Value {
    let req = GraphQLRequest {
        query: Some(query.into()),
        ..Default::default()
    };
    serde_json::to_value(gw.execute(req, &Default::default()).await).unwrap()
}

fn three_products() -> Script {
    Arc::new(|_| {
        json!({ "data": { "topProducts": [
            { "name": "A", "__typename": "Product", "upc": "1" },
            { "name": "B", "__typename": "Product", "upc": "2" },
            { "name": "A again", "__typename": "Product", "upc": "1" }
        ] } })
    })
}

#[tokio::test]
async fn one_entities_call_with_unique_representations_fills_every_position() {
    let inventory: Script = Arc::new(|req| {
        let reps = req["variables"]["representations"]
            .as_array()
            .unwrap()
            .clone();
        let entities: Vec<Value> = reps
            .iter()
            .map(|r| json!({ "inStock": r["upc"] == "1" }))
            .collect();
        json!({ "data": { "_entities": entities } })
    });
    let (gw, _, ilog) = gateway(three_products(), inventory).await;
    let body = run(&gw, "{ topProducts { name inStock } }").await;
    assert_eq!(
        body,
        json!({ "data": { "topProducts": [
            { "name": "A", "inStock": true }, { "name": "B", "inStock": false }, { "name": "A again", "inStock": true }
        ] } })
    );
    let calls = ilog.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "one _entities call for the whole list");
    assert_eq!(
        calls[0]["variables"]["representations"],
        json!([{ "upc": "1", "__typename": "Product" }, { "upc": "2", "__typename": "Product" }])
    );
}

#[tokio::test]
async fn entity_errors_are_repathed_to_the_clients_positions_with_their_service() {
    let inventory: Script = Arc::new(|_| {
        json!({
            "data": { "_entities": [{ "inStock": true }, { "inStock": null }] },
            "errors": [{ "message": "sensor offline", "path": ["_entities", 1, "inStock"], "locations": [{ "line": 1, "column": 99 }] }]
        })
    });
    let (gw, _, _) = gateway(three_products(), inventory).await;
    let body = run(&gw, "{ topProducts { name inStock } }").await;
    assert_eq!(
        body["data"]["topProducts"][1],
        json!({ "name": "B", "inStock": null })
    );
    assert_eq!(
        body["errors"],
        json!([{ "message": "sensor offline", "path": ["topProducts", 1, "inStock"], "extensions": { "service": "inventory" } }])
    );
}

#[tokio::test]
async fn a_null_in_a_non_null_field_bubbles_to_the_nearest_nullable_parent() {
    // `count: Int!` comes back null for the second product; `topProducts: [Product!]!`
    // cannot hold a null item nor be null itself, so `data` becomes null (spec 6.4.4).
    let inventory: Script =
        Arc::new(|_| json!({ "data": { "_entities": [{ "count": 1 }, { "count": null }] } }));
    let (gw, _, _) = gateway(three_products(), inventory).await;
    let body = run(&gw, "{ topProducts { name count } }").await;
    assert_eq!(body["data"], Value::Null);
    assert_eq!(
        body["errors"][0]["path"],
        json!(["topProducts", 1, "count"])
    );
}

#[tokio::test]
async fn fields_come_back_in_requested_order_under_their_aliases_without_helper_fields() {
    let inventory: Script = Arc::new(|req| {
        let n = req["variables"]["representations"]
            .as_array()
            .unwrap()
            .len();
        // Aliases travel to the subgraph, which answers under them.
        assert!(
            req["query"]
                .as_str()
                .unwrap()
                .contains("available: inStock")
        );
        json!({ "data": { "_entities": vec![json!({ "available": true }); n] } })
    });
    let products: Script = Arc::new(
        |_| json!({ "data": { "topProducts": [{ "title": "A", "__typename": "Product", "upc": "1" }] } }),
    );
    let (gw, plog, _) = gateway(products, inventory).await;
    let body = run(&gw, "{ topProducts { available: inStock title: name } }").await;
    // The subgraph got the key and __typename it needed; the client does not see them.
    let sent = plog.lock().unwrap()[0]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sent.contains("__typename") && sent.contains("upc"),
        "{sent}"
    );
    let first = serde_json::to_string(&body["data"]["topProducts"][0]).unwrap();
    assert_eq!(first, r#"{"available":true,"title":"A"}"#);
}

/// The gateway's router on a free port; its URL.
async fn serve(gw: Arc<Gateway>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, shop_gateway::router(gw)).await });
    url
}

/// Posts `body` with `content_type` to `url`: the status and the JSON answer.
async fn post_body(url: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap(),
    )
}

fn code(body: &Value) -> &str {
    body.pointer("/errors/0/extensions/code")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no error code: {body}"))
}

/// `fragment F1 on Query { ...F2 ...F2 }` and so on: 2^levels fields once inlined.
fn doubling_fragments(levels: usize, spread_directive: &str) -> String {
    let mut q = String::from("{ ...F1 }\n");
    for i in 1..levels {
        let next = i + 1;
        q.push_str(&format!(
            "fragment F{i} on Query {{ ...F{next} {spread_directive} ...F{next} {spread_directive} }}\n"
        ));
    }
    q.push_str(&format!(
        "fragment F{levels} on Query {{ topProducts {{ name }} }}\n"
    ));
    q
}

#[tokio::test]
async fn fragments_that_double_at_each_level_are_refused_before_any_subgraph_call() {
    let (gw, plog, ilog) = gateway(three_products(), three_products()).await;
    // Without a bound this is 2^26 fields to inline; run it under a timeout so a
    // regression fails instead of hanging the suite.
    for directive in ["", "@include(if: true)"] {
        let query = doubling_fragments(26, directive);
        assert!(query.len() < 2_000, "the attack is small: {}", query.len());
        let body = tokio::time::timeout(std::time::Duration::from_secs(60), run(&gw, &query))
            .await
            .expect("answered, not stuck inlining");
        assert_eq!(code(&body), "MAX_FIELDS_EXCEEDED", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["limit"], "max_fields");
        assert!(body.get("data").is_none(), "{body}");
    }
    assert!(plog.lock().unwrap().is_empty() && ilog.lock().unwrap().is_empty());
    // The same shape within the limit still runs, merged into one field.
    let body = run(&gw, &doubling_fragments(5, "")).await;
    assert_eq!(body["data"]["topProducts"][1]["name"], "B", "{body}");
}

#[tokio::test]
async fn long_chains_of_fragments_are_answered_or_refused_never_crash() {
    let (gw, _, _) = gateway(three_products(), three_products()).await;
    let chain = |n: usize| {
        let mut q = String::from("{ ...F0 }\n");
        for i in 0..n {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        q.push_str(&format!(
            "fragment F{n} on Query {{ topProducts {{ name }} }}\n"
        ));
        q
    };
    let body = run(&gw, &chain(30)).await;
    assert_eq!(body["data"]["topProducts"][0]["name"], "A", "{body}");
    // Validation has its own nesting bound; past it the answer is a coded refusal.
    let body = run(&gw, &chain(900)).await;
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
}

#[tokio::test]
async fn aliases_depth_and_root_fields_over_their_limits_are_refused_with_the_limit_named() {
    let (gw, plog, _) = gateway(three_products(), three_products()).await;
    // The 10,000-alias attack is refused by its size already; within the size and
    // token limits, the alias count is what stops it.
    let aliases: String = (0..10_000).map(|i| format!("a{i}: name ")).collect();
    let body = run(&gw, &format!("{{ topProducts {{ {aliases} }} }}")).await;
    assert_eq!(code(&body), "MAX_DOCUMENT_BYTES_EXCEEDED", "{body}");
    let aliases: String = (0..1_000).map(|i| format!("a{i}: name ")).collect();
    let body = run(&gw, &format!("{{ topProducts {{ {aliases} }} }}")).await;
    assert_eq!(code(&body), "MAX_ALIASES_EXCEEDED", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "max_aliases");

    let roots: String = (0..40)
        .map(|i| format!("r{i}: topProducts {{ name }} "))
        .collect();
    let body = run(&gw, &format!("{{ {roots} }}")).await;
    assert_eq!(code(&body), "MAX_ROOT_FIELDS_EXCEEDED", "{body}");

    let options = GatewayOptions {
        limits: shop_gateway::pipeline::limits::OperationLimits {
            max_depth: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let (shallow, _, _) = gateway_with(three_products(), three_products(), options).await;
    let body = run(&shallow, "{ topProducts { name } }").await;
    assert_eq!(code(&body), "MAX_DEPTH_EXCEEDED", "{body}");
    assert!(
        plog.lock().unwrap().is_empty(),
        "nothing reached a subgraph"
    );
}

#[tokio::test]
async fn a_document_over_the_size_limit_is_refused_unparsed_with_413() {
    let (gw, _, _) = gateway(three_products(), three_products()).await;
    let url = serve(gw).await;
    let padding = "#".repeat(70 * 1024);
    let query = json!({ "query": format!("{padding}\n{{ topProducts {{ name }} }}") });
    let (status, body) = post_body(&url, "application/json", query.to_string()).await;
    assert_eq!(status, 413);
    assert_eq!(code(&body), "MAX_DOCUMENT_BYTES_EXCEEDED", "{body}");
}

#[tokio::test]
async fn forty_kilobytes_of_braces_get_a_short_parse_error() {
    let (gw, _, _) = gateway(three_products(), three_products()).await;
    let body = run(&gw, &"{".repeat(40 * 1024)).await;
    assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED", "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert!(errors.len() <= 101, "{} errors", errors.len());
    assert!(
        body.to_string().len() < 64 * 1024,
        "{} bytes",
        body.to_string().len()
    );
}

#[tokio::test]
async fn a_response_past_its_size_limit_is_refused_as_a_whole() {
    let big: Script = Arc::new(|_| {
        let products: Vec<Value> = (0..2_000)
            .map(|i| json!({ "name": format!("product {i} {}", "x".repeat(200)), "__typename": "Product", "upc": i.to_string() }))
            .collect();
        json!({ "data": { "topProducts": products } })
    });
    let options = GatewayOptions {
        limits: shop_gateway::pipeline::limits::OperationLimits {
            max_response_bytes: 100 * 1024,
            ..Default::default()
        },
        ..Default::default()
    };
    let (gw, _, ilog) = gateway_with(big, three_products(), options).await;
    let body = run(&gw, "{ topProducts { name inStock } }").await;
    assert_eq!(
        code(&body),
        "RESPONSE_TOO_LARGE",
        "{}",
        &body.to_string()[..300.min(body.to_string().len())]
    );
    assert!(body.get("data").is_none());
    assert!(
        ilog.lock().unwrap().is_empty(),
        "no fetch after the limit was passed"
    );
}

#[tokio::test]
async fn batches_and_multipart_bodies_are_told_what_is_supported() {
    let (gw, _, _) = gateway(three_products(), three_products()).await;
    let url = serve(gw).await;
    let (status, body) = post_body(
        &url,
        "application/json",
        r#"[{"query":"{ topProducts { name } }"}]"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(code(&body), "BATCHING_NOT_SUPPORTED", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("one operation per request"), "{message}");

    // A multipart body is what a cross-site form can send: refused without a header
    // such a form cannot set, and told how an upload is laid out when malformed.
    let form = "--x\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{}\r\n--x--\r\n";
    let (status, body) = post_body(&url, "multipart/form-data; boundary=x", form).await;
    assert_eq!(status, 400);
    assert_eq!(code(&body), "CSRF_ERROR", "{body}");
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=x")
        .header("apollo-require-preflight", "true")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`map`"),
        "{body}"
    );

    let (status, body) = post_body(&url, "application/json", vec![b' '; 3 * 1024 * 1024]).await;
    assert_eq!(status, 413);
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE", "{body}");

    let (status, body) = post_body(&url, "application/json", "{\"query\": 12}").await;
    assert_eq!(status, 400);
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("a `query` string")
    );
}

#[tokio::test]
async fn the_plan_cache_stays_within_its_byte_budget() {
    let options = GatewayOptions {
        plan_cache_bytes: 4 * 1024 * 1024,
        ..Default::default()
    };
    let (gw, _, _) = gateway_with(three_products(), three_products(), options).await;
    // Distinct ~40 KB documents: each pins about 2 MB by the estimate.
    for i in 0..12 {
        let padding = format!("# {i}\n{}", "#".repeat(40 * 1024));
        let body = run(&gw, &format!("{padding}\n{{ topProducts {{ name }} }}")).await;
        assert_eq!(body["data"]["topProducts"][0]["name"], "A");
    }
    assert!(
        gw.cached_bytes() <= 4 * 1024 * 1024,
        "{}",
        gw.cached_bytes()
    );
    assert!(
        (1..12).contains(&gw.cached_operations()),
        "{}",
        gw.cached_operations()
    );
}

#[tokio::test]
async fn live_connections_past_the_process_cap_are_refused_with_503() {
    let options = GatewayOptions {
        live: shop_gateway::live::LiveOptions {
            max_connections: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let (gw, _, _) = gateway_with(three_products(), three_products(), options).await;
    let url = serve(gw.clone()).await;
    let held = [
        gw.open_connection("198.51.100.1").unwrap(),
        gw.open_connection("198.51.100.2").unwrap(),
    ];
    let sse = || {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(r#"{"query":"{ topProducts { name } }"}"#)
            .send()
    };
    let resp = sse().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(code(&body), "SERVICE_UNAVAILABLE", "{body}");
    // Plain requests are not live connections and still run.
    assert_eq!(
        run(&gw, "{ topProducts { name } }").await["data"]["topProducts"][0]["name"],
        "A"
    );
    drop(held);
    let resp = sse().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap();
    assert!(text.contains("\"name\":\"A\""), "{text}");
    assert_eq!(gw.open_connections(), 0, "every slot freed");
}

// Entity fetches of one subgraph at one level of the plan go out as one request (the
// `batch` pass): one aliased `_entities` field per fetch, answers and errors back at
// the client's positions.

/// Two products, each related to the other; `p1` is listed twice.
fn related_products() -> Script {
    Arc::new(|_| {
        json!({ "data": { "topProducts": [
            { "__typename": "Product", "upc": "p1", "name": "Lamp", "related": { "__typename": "Product", "upc": "p2", "name": "Rug" } },
            { "__typename": "Product", "upc": "p2", "name": "Rug", "related": { "__typename": "Product", "upc": "p1", "name": "Lamp" } },
            { "__typename": "Product", "upc": "p1", "name": "Lamp", "related": { "__typename": "Product", "upc": "p2", "name": "Rug" } }
        ] } })
    })
}

/// Answers each aliased `_entities` field of the request from its own variable:
/// `inStock` for `p1` only, `count` as the upc's digit times ten; `count` of the first
/// representation of the `count` field fails.
fn inventory_by_alias() -> Script {
    Arc::new(|req| {
        let query = req["query"].as_str().unwrap_or_default().to_string();
        let mut data = serde_json::Map::new();
        let mut errors = Vec::new();
        for (alias, variable) in [("_0", "representations0"), ("_1", "representations1")] {
            let Some(reps) = req["variables"][variable].as_array() else {
                continue;
            };
            // Which fields this alias asks for: the text after `alias:` up to the next
            // alias (the gateway writes one `_entities` field per fetch).
            let start = query.find(&format!("{alias}: _entities")).unwrap();
            let rest = &query[start..];
            let end = rest.find("} _").map_or(rest.len(), |i| i + 1);
            let fields = &rest[..end];
            let entities: Vec<Value> = reps
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let upc = r["upc"].as_str().unwrap_or_default();
                    let mut e = serde_json::Map::new();
                    if fields.contains("inStock") {
                        e.insert("inStock".into(), json!(upc == "p1"));
                    }
                    if fields.contains("count") {
                        if i == 0 {
                            e.insert("count".into(), Value::Null);
                            errors.push(
                                json!({ "message": "count unknown", "path": [alias, 0, "count"] }),
                            );
                        } else {
                            let n: i64 = upc.trim_start_matches('p').parse().unwrap_or(0);
                            e.insert("count".into(), json!(n * 10));
                        }
                    }
                    Value::Object(e)
                })
                .collect();
            data.insert(alias.into(), Value::Array(entities));
        }
        json!({ "data": data, "errors": errors })
    })
}

async fn batch_gateway(
    inventory: Script,
) -> (
    Arc<Gateway>,
    shop_federation::plan::QueryPlan,
    Arc<Mutex<Vec<Value>>>,
) {
    let (purl, _) = mock(related_products()).await;
    let (iurl, ilog) = mock(inventory).await;
    let sdl = compose(&[
        SubgraphSource {
            name: "products".into(),
            url: purl,
            sdl: format!("{LINK} type Query {{ topProducts: [Product!]! }} type Product @key(fields: \"upc\") {{ upc: String! name: String! related: Product }}"),
        },
        SubgraphSource {
            name: "inventory".into(),
            url: iurl,
            sdl: format!("{LINK} type Product @key(fields: \"upc\") {{ upc: String! inStock: Boolean count: Int }}"),
        },
    ])
    .unwrap();
    let sg = Supergraph::parse(&sdl).unwrap();
    let doc =
        apollo_compiler::ExecutableDocument::parse_and_validate(&sg.api, BATCHED, "q.graphql")
            .unwrap();
    let op = shop_federation::normalize(&sg.api, &doc, None).unwrap();
    let plan = shop_federation::plan(&sg, &op).unwrap();
    (Gateway::new(sg, GatewayOptions::default()), plan, ilog)
}

const BATCHED: &str = "{ topProducts { name inStock related { name count } } }";

async fn run_batched(gw: &Arc<Gateway>) -> Value {
    let req = GraphQLRequest {
        query: Some(BATCHED.into()),
        ..Default::default()
    };
    serde_json::to_value(gw.execute(req, &Default::default()).await).unwrap()
}

#[tokio::test]
async fn two_fetches_of_one_subgraph_at_one_level_are_one_request() {
    let (gw, plan, ilog) = batch_gateway(inventory_by_alias()).await;
    // The root fetch, then one request to inventory (not one per path).
    assert_eq!(plan.fetch_count(), 2, "{plan}");
    let body = run_batched(&gw).await;
    assert_eq!(
        body["data"],
        json!({ "topProducts": [
            { "name": "Lamp", "inStock": true, "related": { "name": "Rug", "count": null } },
            { "name": "Rug", "inStock": false, "related": { "name": "Lamp", "count": 10 } },
            { "name": "Lamp", "inStock": true, "related": { "name": "Rug", "count": null } }
        ] })
    );
    let calls = ilog.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "one request to inventory: {calls:?}");
    // Each fetch sends each entity once, in order of first appearance.
    let vars = &calls[0]["variables"];
    let reps = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["upc"].as_str().unwrap().to_string())
            .collect()
    };
    let mut sent = [
        reps(&vars["representations0"]),
        reps(&vars["representations1"]),
    ];
    sent.sort();
    assert_eq!(sent, [vec!["p1", "p2"], vec!["p2", "p1"]]);
    // The error of the first `count` representation (p2, a related product) is at the
    // first client position that sent it, with the subgraph named.
    assert_eq!(
        body["errors"],
        json!([{ "message": "count unknown", "path": ["topProducts", 0, "related", "count"], "extensions": { "service": "inventory" } }])
    );
}

#[tokio::test]
async fn a_failed_batch_request_nulls_its_fields_and_says_so_once() {
    let down: Script = Arc::new(|_| json!("not a GraphQL answer"));
    let (gw, _, ilog) = batch_gateway(down).await;
    let body = run_batched(&gw).await;
    assert_eq!(ilog.lock().unwrap().len(), 1);
    assert_eq!(body["data"]["topProducts"][1]["name"], "Rug");
    assert_eq!(body["data"]["topProducts"][1]["inStock"], Value::Null);
    assert_eq!(
        body["data"]["topProducts"][1]["related"]["count"],
        Value::Null
    );
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["extensions"]["code"], "SUBREQUEST_HTTP_ERROR");
    assert_eq!(errors[0]["extensions"]["service"], "inventory");
}

// Identical work in flight is done once: client queries (the same operation,
// variables and caller) and subgraph reads (the same body and headers). Mutations are
// never shared. The subgraphs answer slowly, so the requests overlap.

const SLOW: std::time::Duration = std::time::Duration::from_millis(300);

async fn dedupe_gateway(
    options: GatewayOptions,
) -> (String, Arc<Mutex<Vec<Value>>>, Arc<Mutex<Vec<Value>>>) {
    let products: Script = Arc::new(|req| {
        if req["query"]
            .as_str()
            .unwrap_or_default()
            .starts_with("mutation")
        {
            return json!({ "data": { "restock": 1 } });
        }
        json!({ "data": { "topProducts": [
            { "__typename": "Product", "upc": "1", "name": "Lamp" },
            { "__typename": "Product", "upc": "2", "name": "Rug" }
        ] } })
    });
    let inventory: Script = Arc::new(|req| {
        let n = req["variables"]["representations"]
            .as_array()
            .map_or(0, Vec::len);
        let entities: Vec<Value> = (0..n)
            .map(|i| json!({ "inStock": i == 0, "count": i }))
            .collect();
        json!({ "data": { "_entities": entities } })
    });
    let (purl, plog) = mock_slow(products, SLOW).await;
    let (iurl, ilog) = mock_slow(inventory, SLOW).await;
    let sdl = compose(&[
        SubgraphSource {
            name: "products".into(),
            url: purl,
            sdl: format!("{LINK} type Query {{ topProducts: [Product!]! }} type Mutation {{ restock: Int }} type Product @key(fields: \"upc\") {{ upc: String! name: String! }}"),
        },
        SubgraphSource {
            name: "inventory".into(),
            url: iurl,
            sdl: format!("{LINK} type Product @key(fields: \"upc\") {{ upc: String! inStock: Boolean count: Int! }}"),
        },
    ])
    .unwrap();
    let gw = Gateway::new(Supergraph::parse(&sdl).unwrap(), options);
    (serve(gw).await, plog, ilog)
}

/// Posts `queries` all at once, each with its `Authorization` header if any; the
/// answers in order.
async fn post_together(url: &str, queries: &[(&str, Option<&str>)]) -> Vec<Value> {
    let client = reqwest::Client::new();
    futures::future::join_all(
        queries.iter().map(|(query, auth)| {
            let mut req = client
                .post(url)
                .header("content-type", "application/json")
                .body(json!({ "query": query }).to_string());
            if let Some(a) = auth {
                req = req.header("authorization", *a);
            }
            async move {
                serde_json::from_slice(&req.send().await.unwrap().bytes().await.unwrap()).unwrap()
            }
        }),
    )
    .await
}

#[tokio::test]
async fn identical_queries_arriving_together_share_one_execution() {
    let (url, plog, ilog) = dedupe_gateway(GatewayOptions::default()).await;
    let query = "{ topProducts { name inStock } }";
    let answers = post_together(&url, &[(query, None); 8]).await;
    let expected = json!({ "data": { "topProducts": [
        { "name": "Lamp", "inStock": true }, { "name": "Rug", "inStock": false }
    ] } });
    assert!(answers.iter().all(|a| *a == expected), "{answers:?}");
    assert_eq!(
        plog.lock().unwrap().len(),
        1,
        "one products request for eight clients"
    );
    assert_eq!(
        ilog.lock().unwrap().len(),
        1,
        "one inventory request for eight clients"
    );
    // Nothing is kept once answered: the same query later runs again.
    post_together(&url, &[(query, None)]).await;
    assert_eq!(plog.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn queries_of_different_callers_or_with_dedupe_off_run_each() {
    let (url, plog, _) = dedupe_gateway(GatewayOptions::default()).await;
    let query = "{ topProducts { name } }";
    post_together(
        &url,
        &[(query, Some("Bearer a")), (query, Some("Bearer b"))],
    )
    .await;
    let seen = plog.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one request per caller");

    let off = GatewayOptions {
        dedupe_requests: false,
        dedupe_subgraph_requests: false,
        ..Default::default()
    };
    let (url, plog, _) = dedupe_gateway(off).await;
    post_together(&url, &[(query, None); 4]).await;
    assert_eq!(plog.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn mutations_arriving_together_each_run() {
    let (url, plog, _) = dedupe_gateway(GatewayOptions::default()).await;
    let answers = post_together(&url, &[("mutation { restock }", None); 3]).await;
    assert!(
        answers.iter().all(|a| a["data"]["restock"] == 1),
        "{answers:?}"
    );
    assert_eq!(
        plog.lock().unwrap().len(),
        3,
        "every mutation reaches the subgraph"
    );
}

#[tokio::test]
async fn different_queries_share_a_subgraph_read_they_have_in_common() {
    let (url, plog, ilog) = dedupe_gateway(GatewayOptions::default()).await;
    // Different operations (so not shared as a whole) whose products fetch is the same.
    let answers = post_together(
        &url,
        &[
            ("{ topProducts { name inStock } }", None),
            ("{ topProducts { name count } }", None),
        ],
    )
    .await;
    assert_eq!(
        answers[0]["data"]["topProducts"][1],
        json!({ "name": "Rug", "inStock": false })
    );
    assert_eq!(
        answers[1]["data"]["topProducts"][1],
        json!({ "name": "Rug", "count": 1 })
    );
    assert_eq!(
        plog.lock().unwrap().len(),
        1,
        "the common products read is made once"
    );
    assert_eq!(ilog.lock().unwrap().len(), 2, "the inventory reads differ");
}

/// Sends `req` and reads the status and, when it is JSON, the answer.
async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn requests_a_cross_site_form_or_link_could_send_are_refused_before_any_subgraph_call() {
    let (gw, plog, _) = gateway(three_products(), three_products()).await;
    let url = serve(gw).await;
    let client = reqwest::Client::new();
    let body = json!({ "query": "{ topProducts { name } }" }).to_string();
    let get_url =
        reqwest::Url::parse_with_params(&url, &[("query", "{ topProducts { name } }")]).unwrap();
    let simple = [
        client
            .post(&url)
            .header("content-type", "text/plain")
            .body(body.clone()),
        client
            .post(&url)
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body.clone()),
        client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone()),
        client
            .post(&url)
            .header("content-type", "multipart/form-data; boundary=x")
            .body("--x--\r\n"),
        client.post(&url).body(body.clone()),
        client.get(get_url.clone()),
        client
            .get(get_url.clone())
            .header("accept", "text/event-stream"),
    ];
    for req in simple {
        let (status, answer) = send(req).await;
        assert_eq!((status, code(&answer)), (400, "CSRF_ERROR"), "{answer}");
    }
    assert!(
        plog.lock().unwrap().is_empty(),
        "nothing reached a subgraph"
    );

    // A content type no form can send, or a header only a preflighted request carries.
    let sent_on_purpose = [
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone()),
        client
            .post(&url)
            .header("content-type", "text/plain")
            .header("apollo-require-preflight", "true")
            .body(body.clone()),
        client
            .get(get_url.clone())
            .header("x-apollo-operation-name", "Top"),
        client
            .get(get_url.clone())
            .header("content-type", "application/json"),
    ];
    for req in sent_on_purpose {
        let (status, answer) = send(req).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["data"]["topProducts"][1]["name"], "B", "{answer}");
    }

    // An operator who fronts the gateway with a check of their own can switch it off.
    let off = GatewayOptions {
        protections: shop_gateway::Protections {
            csrf_required_headers: Vec::new(),
            ..Default::default()
        },
        ..Default::default()
    };
    let (gw, _, _) = gateway_with(three_products(), three_products(), off).await;
    let url = serve(gw).await;
    let (status, answer) = send(
        client
            .post(&url)
            .header("content-type", "text/plain")
            .body(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["topProducts"][0]["name"], "A", "{answer}");
}

#[tokio::test]
async fn introspection_and_the_console_can_be_switched_off() {
    let client = reqwest::Client::new();
    let page = |url: &str| {
        client
            .get(url)
            .header("accept", "text/html,application/xhtml+xml")
            .send()
    };
    // On by default.
    let (gw, _, _) = gateway(three_products(), three_products()).await;
    let url = serve(gw.clone()).await;
    let resp = page(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("<html"), "the console");
    let body = run(&gw, "{ __schema { queryType { name } } }").await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );

    let closed = GatewayOptions {
        protections: shop_gateway::Protections {
            introspection: false,
            console: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let (gw, plog, _) = gateway_with(three_products(), three_products(), closed).await;
    let url = serve(gw.clone()).await;
    for query in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"Product\") { fields { name } } }",
        "{ topProducts { name } ... on Query { __schema { types { name } } } }",
    ] {
        let body = run(&gw, query).await;
        assert_eq!(code(&body), "INTROSPECTION_DISABLED", "{query}: {body}");
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    }
    assert!(
        plog.lock().unwrap().is_empty(),
        "nothing reached a subgraph"
    );
    // `__typename` is not introspection of the schema.
    let body = run(&gw, "{ __typename topProducts { name } }").await;
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    assert_eq!(body["data"]["topProducts"][2]["name"], "A again", "{body}");

    let resp = page(&url).await.unwrap();
    let status = resp.status().as_u16();
    assert!(
        !resp.text().await.unwrap().contains("<html"),
        "no console ({status})"
    );
    let asset = url.replace("/graphql", "/console/console.js");
    assert_eq!(client.get(&asset).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn variables_too_deep_or_too_many_are_refused_with_the_limit_named_before_any_subgraph_call()
{
    let (gw, plog, _) = gateway(three_products(), three_products()).await;
    let url = serve(gw).await;
    // Variables the operation does not declare count too: they are read all the same.
    let query = "{ topProducts { name } }";
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let body = json!({ "query": query, "variables": { "x": deep } });
    let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(code(&answer), "MAX_VARIABLES_DEPTH_EXCEEDED", "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["limit"],
        "max_variables_depth"
    );

    let many = json!({ "query": query, "variables": { "x": [vec![7; 30_000]] } });
    let (status, answer) = post_body(&url, "application/json", many.to_string()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(code(&answer), "MAX_VARIABLE_VALUES_EXCEEDED", "{answer}");
    assert!(
        plog.lock().unwrap().is_empty(),
        "nothing reached a subgraph"
    );

    // Within the bounds, the query runs.
    let fine = json!({ "query": query, "variables": { "x": [[1, 2], [3]] } });
    let (status, answer) = post_body(&url, "application/json", fine.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["topProducts"][0]["name"], "A", "{answer}");
}

#[tokio::test]
async fn a_body_over_the_configured_request_limit_gets_413_before_it_is_read_whole() {
    let options = GatewayOptions {
        limits: shop_gateway::pipeline::limits::OperationLimits {
            max_request_bytes: 4096,
            ..Default::default()
        },
        ..Default::default()
    };
    let (gw, plog, _) = gateway_with(three_products(), three_products(), options).await;
    let url = serve(gw).await;
    let padding = "x".repeat(5000);
    let body = json!({ "query": "{ topProducts { name } }", "variables": { "pad": padding } });
    let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(code(&answer), "PAYLOAD_TOO_LARGE", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("4096")
    );
    assert!(
        plog.lock().unwrap().is_empty(),
        "nothing reached a subgraph"
    );
    let body = json!({ "query": "{ topProducts { name } }", "variables": { "pad": "x" } });
    let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
}

use shop_kit::secrets::hash_token as sha256_hex;

#[tokio::test]
async fn a_persisted_query_is_sent_once_with_its_text_then_by_its_hash_alone() {
    let options = GatewayOptions {
        persisted_queries: shop_gateway::persisted::PersistedOptions {
            enabled: true,
            // Room for two of the texts below, not three.
            cache_bytes: 2 * (64 + 40),
        },
        ..Default::default()
    };
    let (gw, plog, _) = gateway_with(three_products(), three_products(), options).await;
    let url = serve(gw).await;
    let query = "{ topProducts { name } }";
    let hash = sha256_hex(query);
    let ext = |h: &str| json!({ "persistedQuery": { "version": 1, "sha256Hash": h } });

    // Unknown hash: the standard answer that makes a client send the text.
    let body = json!({ "extensions": ext(&hash) });
    let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
    assert_eq!(answer["errors"][0]["message"], "PersistedQueryNotFound");
    assert!(
        plog.lock().unwrap().is_empty(),
        "nothing reached a subgraph"
    );

    // A text whose hash is not the one given is refused and not kept.
    let body = json!({ "query": "{ topProducts { upc } }", "extensions": ext(&hash) });
    let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
    assert_eq!(
        (status, code(&answer)),
        (400, "PERSISTED_QUERY_HASH_MISMATCH"),
        "{answer}"
    );

    // The text with its hash runs and is kept; then the hash alone runs it, by POST
    // and by GET (hash in the query string, as a CDN would cache it).
    let body = json!({ "query": query, "extensions": ext(&hash) });
    let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["topProducts"][0]["name"], "A", "{answer}");
    let body = json!({ "extensions": ext(&hash.to_uppercase()) });
    let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["topProducts"][1]["name"], "B", "{answer}");
    let get =
        reqwest::Url::parse_with_params(&url, &[("extensions", ext(&hash).to_string())]).unwrap();
    let (status, answer) = send(
        reqwest::Client::new()
            .get(get)
            .header("apollo-require-preflight", "true"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["data"]["topProducts"][2]["name"], "A again",
        "{answer}"
    );

    // Kept text is bounded: two newer texts push the first out.
    for other in ["{ topProducts { upc } }", "{ topProducts { name upc } }"] {
        let body = json!({ "query": other, "extensions": ext(&sha256_hex(other)) });
        let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
        assert_eq!(status, 200, "{answer}");
    }
    let body = json!({ "extensions": ext(&hash) });
    let (_, answer) = post_body(&url, "application/json", body.to_string()).await;
    assert_eq!(code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");

    // Malformed extensions are plain request errors.
    for bad in [
        json!({ "persistedQuery": { "version": 2, "sha256Hash": hash } }),
        json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
    ] {
        let body = json!({ "extensions": bad });
        let (status, answer) = post_body(&url, "application/json", body.to_string()).await;
        assert_eq!((status, code(&answer)), (400, "BAD_REQUEST"), "{answer}");
    }
}

#[tokio::test]
async fn persisted_queries_switched_off_say_so() {
    let options = GatewayOptions {
        persisted_queries: shop_gateway::persisted::PersistedOptions {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    };
    let (gw, _, _) = gateway_with(three_products(), three_products(), options).await;
    let query = "{ topProducts { name } }";
    let req = GraphQLRequest {
        query: Some(query.into()),
        extensions: json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(query) } })
            .as_object()
            .cloned(),
        ..Default::default()
    };
    let body = serde_json::to_value(gw.execute(req, &Default::default()).await).unwrap();
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_SUPPORTED", "{body}");
}

#[tokio::test]
async fn a_persisted_query_sent_to_one_gateway_is_found_by_another_through_redis() {
    let Some(redis) = shop_kit::testing::redis_url("apq_shared") else {
        return;
    };
    let prefix = format!("apq-test-{}", shop_kit::ids::new_id());
    let (a, _, _) = gateway(three_products(), three_products()).await;
    let (b, blog, _) = gateway(three_products(), three_products()).await;
    for gw in [&a, &b] {
        gw.share_through_redis(&redis, &prefix).await.unwrap();
    }
    let (a_url, b_url) = (serve(a).await, serve(b).await);
    let query = "{ topProducts { name } }";
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(query) } });

    let hash_only = json!({ "extensions": ext }).to_string();
    let (_, answer) = post_body(&b_url, "application/json", hash_only.clone()).await;
    assert_eq!(code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
    assert!(blog.lock().unwrap().is_empty());

    let with_text = json!({ "query": query, "extensions": ext }).to_string();
    let (status, _) = post_body(&a_url, "application/json", with_text).await;
    assert_eq!(status, 200);
    let (status, answer) = post_body(&b_url, "application/json", hash_only).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["topProducts"][0]["name"], "A", "{answer}");

    // A text planted in Redis under a hash it does not have is not believed.
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let other = "{ topProducts { upc } }";
    let lie = sha256_hex("{ topProducts { name upc } }");
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}:apq:{lie}"))
        .arg(other)
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    let body = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": lie } } });
    let (_, answer) = post_body(&b_url, "application/json", body.to_string()).await;
    assert_eq!(code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
}

#[tokio::test]
async fn listed_operations_run_by_id_and_named_clients_may_run_nothing_else() {
    let listed = "query Top { topProducts { name } }";
    let manifest = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            { "id": sha256_hex(listed), "name": "Top", "type": "query", "body": listed },
            { "id": "upcs", "name": "Upcs", "type": "query", "body": "{ topProducts { upc } }" }
        ]
    });
    let trusted = shop_gateway::trusted::TrustedDocuments::from_manifest(
        &manifest.to_string(),
        shop_gateway::trusted::OnlyListed::parse("storefront"),
    )
    .unwrap();
    let options = GatewayOptions {
        trusted_documents: Some(Arc::new(trusted)),
        ..Default::default()
    };
    let (gw, plog, _) = gateway_with(three_products(), three_products(), options).await;
    let url = serve(gw).await;
    let client = reqwest::Client::new();
    let post = |body: Value, name: Option<&str>| {
        let mut req = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(n) = name {
            req = req.header("apollographql-client-name", n);
        }
        send(req)
    };

    // By id: documentId, Relay's doc_id, Apollo's hash; and over GET.
    let (status, answer) = post(json!({ "documentId": "upcs" }), Some("storefront")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["topProducts"][1]["upc"], "2", "{answer}");
    let (_, answer) = post(json!({ "doc_id": "upcs" }), None).await;
    assert_eq!(answer["data"]["topProducts"][0]["upc"], "1", "{answer}");
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(listed) } });
    let (_, answer) = post(json!({ "extensions": ext }), Some("storefront")).await;
    assert_eq!(answer["data"]["topProducts"][0]["name"], "A", "{answer}");
    let get = reqwest::Url::parse_with_params(&url, &[("documentId", "upcs")]).unwrap();
    let (status, answer) = send(
        client
            .get(get)
            .header("apollo-require-preflight", "true")
            .header("graphql-client-name", "storefront"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["topProducts"][2]["upc"], "1", "{answer}");
    let (status, answer) = post(json!({ "documentId": "nope" }), None).await;
    assert_eq!(
        (status, code(&answer)),
        (400, "PERSISTED_DOCUMENT_NOT_FOUND"),
        "{answer}"
    );

    // The storefront may send a listed text as it is, but nothing else, not even by
    // registering it as a persisted query; other clients may.
    let (status, _) = post(json!({ "query": listed }), Some("storefront")).await;
    assert_eq!(status, 200);
    let before = plog.lock().unwrap().len();
    let other = "{ topProducts { name upc } }";
    let other_ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(other) } });
    for body in [
        json!({ "query": other }),
        json!({ "query": other, "extensions": other_ext }),
        json!({ "extensions": other_ext }),
    ] {
        let (status, answer) = post(body, Some("storefront")).await;
        assert_eq!(
            (status, code(&answer)),
            (400, "PERSISTED_QUERY_NOT_IN_LIST"),
            "{answer}"
        );
    }
    assert_eq!(
        plog.lock().unwrap().len(),
        before,
        "nothing unlisted reached a subgraph"
    );
    let (status, answer) = post(json!({ "query": other }), Some("partner-app")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["topProducts"][1]["upc"], "2", "{answer}");
}

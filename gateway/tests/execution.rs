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
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/graphql",
        post(move |Json(body): Json<Value>| {
            let (script, log) = (script.clone(), log.clone());
            async move {
                let reply = script(&body);
                log.lock().unwrap().push(body);
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
        Gateway::new(Supergraph::parse(&sdl).unwrap(), GatewayOptions::default()),
        plog,
        ilog,
    )
}

async fn run(gw: &Gateway, query: &str) -> Value {
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

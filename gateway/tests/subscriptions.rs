//! Subscriptions through the gateway against a real subgraph over WebSocket
//! (`graphql-transport-ws`, served by async-graphql): what the planner does to a
//! subscription's fetch must be undone on each event as it is on a query's answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_graphql::{Object, Schema, SimpleObject, Subscription, Union};
use futures::StreamExt;
use serde_json::{Value, json};
use shop_federation::Supergraph;
use shop_federation::compose::{SubgraphSource, compose};
use shop_gateway::pipeline::RequestMeta;
use shop_gateway::{Gateway, GatewayOptions, GraphQLRequest};

#[derive(SimpleObject)]
struct Sensor {
    reading: i32,
}

#[derive(SimpleObject)]
struct Gauge {
    reading: Option<i32>,
}

#[derive(Union)]
enum Instrument {
    Sensor(Sensor),
    Gauge(Gauge),
}

struct Query;

#[Object]
impl Query {
    async fn ping(&self) -> i32 {
        1
    }
}

struct Feed;

#[Subscription]
impl Feed {
    async fn instruments(&self) -> impl futures::Stream<Item = Instrument> {
        futures::stream::iter([
            Instrument::Sensor(Sensor { reading: 7 }),
            Instrument::Gauge(Gauge { reading: Some(3) }),
        ])
    }
}

/// The subgraph's SDL as composition sees it: `Sensor.reading` is `Int!` here and `Int`
/// in the other subgraph, so the supergraph has `Int` for both members, and one client
/// selection of `reading` on both is valid for the client but not for this subgraph.
const LIVE: &str = "type Query { ping: Int! }
type Subscription { instruments: Instrument! }
union Instrument = Sensor | Gauge
type Sensor @shareable { reading: Int! }
type Gauge { reading: Int }";
const OTHER: &str = "type Query { sensor: Sensor }
type Sensor @shareable { reading: Int }";

async fn serve_live() -> String {
    let schema = Schema::build(Query, async_graphql::EmptyMutation, Feed).finish();
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::get_service(async_graphql_axum::GraphQLSubscription::new(schema)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/graphql")
}

#[tokio::test]
async fn a_subscription_field_aliased_for_its_subgraph_arrives_under_its_own_name() {
    let live = serve_live().await;
    let supergraph = compose(&[
        SubgraphSource {
            name: "live".into(),
            url: live,
            sdl: LIVE.into(),
        },
        SubgraphSource {
            name: "other".into(),
            // Never called: the subscription is live's alone.
            url: "http://127.0.0.1:9/graphql".into(),
            sdl: OTHER.into(),
        },
    ])
    .unwrap();
    let supergraph = Supergraph::parse(&supergraph).unwrap();
    let query = "subscription { instruments { __typename ... on Sensor { reading } ... on Gauge { reading } } }";
    // The plan aliases the field: this subgraph would refuse the selection as written.
    let doc = apollo_compiler::ExecutableDocument::parse_and_validate(&supergraph.api, query, "q")
        .unwrap();
    let op = shop_federation::normalize(&supergraph.api, &doc, None).unwrap();
    let plan = shop_federation::plan(&supergraph, &op).unwrap().to_string();
    assert!(plan.contains("# renames"), "{plan}");
    let gateway = Gateway::new(supergraph, GatewayOptions::default());
    let events = gateway
        .subscribe(
            GraphQLRequest {
                query: Some(query.into()),
                operation_name: None,
                variables: None,
                extensions: None,
                document_id: None,
            },
            RequestMeta::default(),
        )
        .await
        .map_err(|e| serde_json::to_string(&e).unwrap())
        .unwrap();
    let events: Vec<Value> = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        events
            .map(|e| serde_json::to_value(&e).unwrap())
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![
            json!({ "data": { "instruments": { "__typename": "Sensor", "reading": 7 } } }),
            json!({ "data": { "instruments": { "__typename": "Gauge", "reading": 3 } } }),
        ]
    );
}

//! OpenTelemetry end to end: the platform exports its spans over OTLP (HTTP,
//! protobuf) to a receiver in this test, which decodes them with the protocol's own
//! message types. One client request that writes stock (inventory), reads the product
//! back (catalog) and emits an event the catalog consumes must arrive as one trace:
//! the gateway's request, its plan nodes and fetches, both subgraphs' requests, and
//! the event consumer's handling, carried across the bus (Redis when configured).
//!
//! Its own test binary: it installs the process's global subscriber.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Harness, eventually, role, supplier_id};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

/// Spans the receiver got, with their resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn otlp_receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("an OTLP export");
                let mut sink = sink.lock().unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            AnyValue::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            sink.push((service.clone(), span));
                        }
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

const RESTOCK: &str = "mutation Restock($p: ID!, $q: Int!) { setStock(productId: $p, quantity: $q, reason: \"count\") { quantity product { name } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_one_trace_across_gateway_subgraphs_and_an_event_consumer() {
    let (receiver, got) = otlp_receiver().await;
    let options = shop_kit::telemetry::TelemetryOptions {
        service: "shop-test".into(),
        json_logs: false,
        otlp_endpoint: Some(receiver),
        otlp_protocol: "http/protobuf".into(),
        sample_ratio: 1.0,
    };
    let telemetry = shop_kit::telemetry::init(&options, "warn,shop=info").unwrap();
    let redis = shop_kit::testing::redis_url("tracing_over_redis");
    let dir = std::env::temp_dir().join(format!("shop-trace-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, false, |o| {
        if let Some(url) = &redis {
            o.redis_url = Some(url.clone());
            o.bus_prefix = format!("trace-test-{}", shop_kit::ids::new_id());
        }
    })
    .await;
    let tok = h.token(&supplier_id(1), role("SUPPLIER"));
    let cat = h
        .gql(
            Some(&tok),
            "mutation { createCatalog(input: {name: \"Traced\"}) { id } }",
            json!({}),
        )
        .await;
    let cat = cat.data()["createCatalog"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let product = h
        .gql(
            Some(&tok),
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }",
            json!({ "i": { "catalogId": cat, "sku": "T-1", "name": "Traced lamp",
                "price": { "amount": 100, "currency": "EUR" } } }),
        )
        .await;
    let product = product.data()["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The stock record comes from the catalog's event; then the request we follow.
    eventually("the stock record to exist", || async {
        let r = h
            .gql(Some(&tok), RESTOCK, json!({ "p": product, "q": 5 }))
            .await;
        r.body.get("errors").is_none().then_some(())
    })
    .await;

    // Every span of the Restock trace has arrived once the catalog handled its event.
    let spans = eventually("the Restock trace with its event consumer", || async {
        telemetry.flush();
        let got = got.lock().unwrap().clone();
        let request = got.iter().rev().find(|(_, s)| {
            s.name == "graphql.request"
                && attribute(s, "graphql.operation.name").as_deref() == Some("Restock")
        })?;
        let trace = request.1.trace_id.clone();
        let spans: Vec<Span> = got
            .into_iter()
            .filter(|(_, s)| s.trace_id == trace)
            .map(|(_, s)| s)
            .collect();
        let handled = spans.iter().any(|s| {
            s.name == "event.handle"
                && attribute(s, "messaging.consumer.group.name").as_deref() == Some("catalog")
        });
        handled.then_some(spans)
    })
    .await;

    let named = |name: &str, key: &str, value: &str| {
        spans
            .iter()
            .find(|s| s.name == name && attribute(s, key).as_deref() == Some(value))
            .unwrap_or_else(|| {
                let seen: Vec<(String, Option<String>)> = spans
                    .iter()
                    .map(|s| (s.name.clone(), attribute(s, "subgraph")))
                    .collect();
                panic!("no {name} with {key}={value} in the trace; it has {seen:?}")
            })
            .clone()
    };
    let request = named("graphql.request", "graphql.operation.name", "Restock");
    assert!(
        request.parent_span_id.is_empty(),
        "the request starts the trace"
    );
    assert_eq!(
        attribute(&request, "graphql.operation.type").as_deref(),
        Some("mutation")
    );
    // The gateway's plan: the mutation at inventory, the product's name from catalog.
    let fetch = named("plan.fetch", "subgraph", "inventory");
    let flatten = named("plan.flatten", "subgraph", "catalog");
    let inventory = named("subgraph.request", "subgraph", "inventory");
    let catalog = named("subgraph.request", "subgraph", "catalog");
    let consumer = named("event.handle", "messaging.consumer.group.name", "catalog");
    let by_id = |id: &[u8]| spans.iter().find(|s| s.span_id == id).cloned();
    // Each subgraph's request hangs under one of the gateway's fetches, which hangs
    // under a plan node of the request.
    for (served, node) in [(&inventory, &fetch), (&catalog, &flatten)] {
        let client = by_id(&served.parent_span_id).expect("the subgraph's parent span");
        assert_eq!(client.name, "subgraph.fetch");
        assert_eq!(
            client.parent_span_id, node.span_id,
            "{} under its plan node",
            served.name
        );
        assert_eq!(node.parent_span_id, request.span_id);
    }
    let descends = |span: &Span, from: &Span| {
        let mut ancestor = by_id(&span.parent_span_id);
        while let Some(s) = ancestor {
            if s.span_id == from.span_id {
                return true;
            }
            ancestor = by_id(&s.parent_span_id);
        }
        false
    };
    // The consumer continues the span that wrote the event: inventory's request.
    assert!(
        descends(&consumer, &inventory),
        "the event handling descends from inventory's request"
    );
    // Inside inventory: the mutation's resolver, and under it the statements it ran,
    // as client spans with the SQL text (placeholders, not values).
    let resolver = named("graphql.resolve", "graphql.field.name", "setStock");
    assert_eq!(resolver.parent_span_id, inventory.span_id);
    assert_eq!(
        attribute(&resolver, "graphql.field.path").as_deref(),
        Some("setStock")
    );
    let statements: Vec<&Span> = spans
        .iter()
        .filter(|s| attribute(s, "db.system.name").is_some() && descends(s, &resolver))
        .collect();
    assert!(
        statements.iter().any(|s| {
            let text = attribute(s, "db.query.text").unwrap_or_default();
            ["UPDATE", "INSERT"].contains(&s.name.as_str())
                && text.contains('?')
                && !text.contains("'count'")
        }),
        "a write with placeholders as a statement span under setStock: {:?}",
        statements
            .iter()
            .map(|s| (&s.name, attribute(s, "db.query.text")))
            .collect::<Vec<_>>()
    );
    for s in &statements {
        assert_eq!(s.kind, 3, "a statement is a client span");
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
    }
    // The catalog's reading of the product's name in its resolver is a statement too.
    assert!(
        spans
            .iter()
            .any(|s| s.name == "SELECT" && descends(s, &catalog)),
        "the catalog's read of the product under its request"
    );
    // Leaves (scalars, enums) get no span of their own.
    assert!(
        !spans.iter().any(|s| s.name == "graphql.resolve"
            && attribute(s, "graphql.field.name").as_deref() == Some("quantity")),
        "no span for a leaf"
    );

    // A caller that decided not to record its trace: the gateway passes the decision
    // on with every fetch, so the subgraphs, which record every new trace here, record
    // nothing of this request either.
    telemetry.flush();
    let from_requests = |spans: &[(String, Span)]| {
        spans
            .iter()
            .filter(|(_, s)| {
                s.name.starts_with("graphql.")
                    || s.name.starts_with("subgraph.")
                    || s.name.starts_with("plan.")
            })
            .count()
    };
    let before = from_requests(&got.lock().unwrap());
    let auth = format!("Bearer {tok}");
    let r = h
        .post_raw(
            &json!({ "query": RESTOCK, "variables": { "p": product, "q": 6 } }).to_string(),
            &[
                ("authorization", auth.as_str()),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                ),
            ],
        )
        .await;
    assert_eq!(r.data()["setStock"]["product"]["name"], "Traced lamp");
    telemetry.flush();
    assert_eq!(
        from_requests(&got.lock().unwrap()),
        before,
        "an unrecorded request leaves no spans, in the gateway or the subgraphs"
    );
    h.stop().await;
}

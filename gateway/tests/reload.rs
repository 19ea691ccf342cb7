//! Replacing the supergraph while serving, against real subgraphs over HTTP and
//! WebSocket: under load with no failed request, through the admin endpoint (admins
//! only) and the watched file; a bad supergraph is refused and the old one serves on;
//! subscriptions on a field that went away end with `SCHEMA_CHANGED`, others go on.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::{Object, Schema, Subscription};
use futures::StreamExt;
use serde_json::{Value, json};
use shop_federation::{SubgraphSource, Supergraph, compose};
use shop_gateway::reload::{GatewayHandle, Replaced};
use shop_gateway::{Gateway, GatewayOptions, GraphQLRequest};
use shop_kit::auth::{JwksSource, Role, SigningKey, TrustedIssuer, Verifier};

const LINK: &str =
    "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\"])\n";

/// A subgraph answering `hello` and `extra`.
async fn subgraph() -> String {
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(|body: String| async move {
            let mut data = serde_json::Map::new();
            if body.contains("hello") {
                data.insert("hello".into(), json!("world"));
            }
            if body.contains("extra") {
                data.insert("extra".into(), json!(42));
            }
            axum::Json(json!({ "data": data }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The supergraph with `hello` only, or with `extra` too.
fn supergraph(url: &str, with_extra: bool) -> String {
    let extra = if with_extra { "extra: Int" } else { "" };
    compose(&[SubgraphSource {
        name: "main".into(),
        url: url.into(),
        sdl: format!("{LINK} type Query {{ hello: String {extra} }}"),
    }])
    .unwrap()
}

struct Admin {
    key: SigningKey,
}

impl Admin {
    fn new() -> Admin {
        Admin {
            key: SigningKey::generate().unwrap(),
        }
    }

    fn verifier(&self) -> Verifier {
        Verifier::new(vec![TrustedIssuer::new(
            "https://issuer.test",
            "shop",
            JwksSource::Inline(self.key.jwks()),
        )])
    }

    fn token(&self, role: Role) -> String {
        let t = self
            .key
            .mint(
                "https://issuer.test",
                "shop",
                "u1",
                &[role],
                Duration::from_secs(600),
            )
            .unwrap();
        format!("Bearer {t}")
    }
}

async fn serve(handle: Arc<GatewayHandle>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = shop_gateway::router_for(handle).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn query(client: &reqwest::Client, base: &str, q: &str) -> (u16, Value) {
    let resp = client
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(json!({ "query": q }).to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap(),
    )
}

async fn post_supergraph(base: &str, token: Option<&str>, sdl: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/admin/supergraph"))
        .body(sdl.to_string());
    if let Some(t) = token {
        req = req.header("authorization", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn supergraphs_replaced_under_load_fail_no_request() {
    let url = subgraph().await;
    let admin = Admin::new();
    let gw = Gateway::new(
        Supergraph::parse(&supergraph(&url, false)).unwrap(),
        GatewayOptions {
            verifier: Some(admin.verifier()),
            ..Default::default()
        },
    );
    let base = serve(GatewayHandle::new(gw)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (base, stop, ok, failed) = (base.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = query(&client, &base, "{ hello }").await;
                    if status == 200 && body == json!({ "data": { "hello": "world" } }) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        eprintln!("failed: {status} {body}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let token = admin.token(Role::Admin);
    for round in 0..10 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let with_extra = round % 2 == 0;
        let (status, body) =
            post_supergraph(&base, Some(&token), &supergraph(&url, with_extra)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({ "replaced": true, "subgraphs": ["main"] }));
        // The field comes and goes with the supergraph that serves.
        let client = reqwest::Client::new();
        let (_, body) = query(&client, &base, "{ extra }").await;
        if with_extra {
            assert_eq!(body, json!({ "data": { "extra": 42 } }));
        } else {
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                "GRAPHQL_VALIDATION_FAILED"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "{} requests",
        ok.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn only_admins_replace_the_supergraph_and_a_bad_one_leaves_the_old_serving() {
    let url = subgraph().await;
    let admin = Admin::new();
    let original = supergraph(&url, false);
    let gw = Gateway::new(
        Supergraph::parse(&original).unwrap(),
        GatewayOptions {
            verifier: Some(admin.verifier()),
            ..Default::default()
        },
    );
    let base = serve(GatewayHandle::new(gw)).await;
    let better = supergraph(&url, true);
    let (status, body) = post_supergraph(&base, None, &better).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (401, &json!("UNAUTHENTICATED"))
    );
    let (status, body) = post_supergraph(&base, Some(&admin.token(Role::Customer)), &better).await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (403, &json!("FORBIDDEN"))
    );
    let token = admin.token(Role::Admin);
    for bad in [
        "type Query { nope: Int }".to_string(),
        "this is not GraphQL {".to_string(),
        original.replace("type Query", "type Quer"),
    ] {
        let (status, body) = post_supergraph(&base, Some(&token), &bad).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "INVALID_SUPERGRAPH"
        );
        let (_, answer) = query(&reqwest::Client::new(), &base, "{ hello }").await;
        assert_eq!(answer, json!({ "data": { "hello": "world" } }));
    }
    let (status, body) = post_supergraph(&base, Some(&token), &original).await;
    assert_eq!((status, body), (200, json!({ "replaced": false })));
}

#[tokio::test]
async fn a_changed_supergraph_file_is_served_and_a_broken_one_is_not() {
    let url = subgraph().await;
    let dir = std::env::temp_dir().join(format!("reload-{}", shop_kit::ids::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("supergraph.graphql");
    std::fs::write(&path, supergraph(&url, false)).unwrap();
    let gw = Gateway::new(
        Supergraph::parse(&supergraph(&url, false)).unwrap(),
        GatewayOptions::default(),
    );
    let handle = GatewayHandle::new(gw);
    handle.watch_file(path.clone(), Duration::from_millis(20));
    let extra_works = |handle: Arc<GatewayHandle>| async move {
        let req = GraphQLRequest {
            query: Some("{ extra }".into()),
            ..Default::default()
        };
        let answer = handle.current().execute(req, &Default::default()).await;
        serde_json::to_value(answer).unwrap() == json!({ "data": { "extra": 42 } })
    };
    assert!(!extra_works(handle.clone()).await);
    std::fs::write(&path, supergraph(&url, true)).unwrap();
    let served = shop_kit::testing::eventually(Duration::from_secs(5), || {
        let handle = handle.clone();
        async move { extra_works(handle).await.then_some(()) }
    })
    .await;
    assert!(served.is_some(), "the new file was not served");
    std::fs::write(&path, "garbage {").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        extra_works(handle.clone()).await,
        "a broken file replaced a good one"
    );
    std::fs::remove_dir_all(&dir).unwrap();
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
    async fn ticks(&self) -> impl futures::Stream<Item = i32> {
        ticking()
    }

    async fn tocks(&self) -> impl futures::Stream<Item = i32> {
        ticking()
    }
}

fn ticking() -> impl futures::Stream<Item = i32> {
    futures::stream::unfold(0, |n| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((n, n + 1))
    })
}

fn live_supergraph(url: &str, with_tocks: bool) -> String {
    let tocks = if with_tocks { "tocks: Int!" } else { "" };
    compose(&[SubgraphSource {
        name: "live".into(),
        url: url.into(),
        sdl: format!("type Query {{ ping: Int! }} type Subscription {{ ticks: Int! {tocks} }}"),
    }])
    .unwrap()
}

/// The next event within 5 s (`None`: the stream ended).
async fn next(s: &mut futures::stream::BoxStream<'static, Value>) -> Option<Value> {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("an event or the end within 5 s")
}

#[tokio::test]
async fn subscriptions_on_a_field_that_went_away_end_with_schema_changed_and_others_go_on() {
    let schema = Schema::build(Query, async_graphql::EmptyMutation, Feed).finish();
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::get_service(async_graphql_axum::GraphQLSubscription::new(schema)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let gw = Gateway::new(
        Supergraph::parse(&live_supergraph(&url, true)).unwrap(),
        GatewayOptions::default(),
    );
    let handle = GatewayHandle::new(gw);
    let subscribe = |q: &str| {
        let (handle, q) = (handle.clone(), q.to_string());
        async move {
            let req = GraphQLRequest {
                query: Some(q),
                ..Default::default()
            };
            handle
                .current()
                .subscribe(req, Default::default())
                .await
                .map_err(|e| serde_json::to_string(&e).unwrap())
                .unwrap()
                .map(|e| serde_json::to_value(e).unwrap())
                .boxed()
        }
    };
    let mut ticks = subscribe("subscription { ticks }").await;
    let mut tocks = subscribe("subscription { tocks }").await;
    assert!(next(&mut ticks).await.unwrap()["data"]["ticks"].is_i64());
    assert!(next(&mut tocks).await.unwrap()["data"]["tocks"].is_i64());

    let replaced = handle.replace(&live_supergraph(&url, false)).await.unwrap();
    assert_eq!(replaced, Replaced::Now(vec!["live".into()]));
    // `tocks` is gone: its subscription says so, once, and ends.
    let last = loop {
        let event = next(&mut tocks)
            .await
            .expect("an explanation before the end");
        if event.get("errors").is_some() {
            break event;
        }
    };
    assert_eq!(
        last["errors"][0]["extensions"]["code"], "SCHEMA_CHANGED",
        "{last}"
    );
    assert!(
        next(&mut tocks).await.is_none(),
        "ended after the explanation"
    );
    // `ticks` still fits, and keeps ticking.
    for _ in 0..3 {
        assert!(next(&mut ticks).await.unwrap()["data"]["ticks"].is_i64());
    }
}

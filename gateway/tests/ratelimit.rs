//! Request rate limits through real HTTP: per client address, per signed-in user, per
//! client name, and shared by two gateways through Redis. A refused request gets 429
//! `TOO_MANY_REQUESTS` with `Retry-After` and never reaches a subgraph.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};
use shop_federation::{SubgraphSource, Supergraph, compose};
use shop_gateway::ratelimit::{Rate, RateLimits};
use shop_gateway::{Gateway, GatewayOptions};
use shop_kit::auth::{JwksSource, Role, SigningKey, TrustedIssuer, Verifier};

const LINK: &str =
    "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\"])\n";

/// A subgraph answering `hello`, counting requests.
async fn subgraph() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = Router::new().route(
        "/graphql",
        post(move || {
            c.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(json!({ "data": { "hello": "world" } })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

fn gateway(url: &str, rate_limits: RateLimits, verifier: Option<Verifier>) -> Arc<Gateway> {
    let sdl = compose(&[SubgraphSource {
        name: "hello".into(),
        url: url.into(),
        sdl: format!("{LINK} type Query {{ hello: String }}"),
    }])
    .unwrap();
    Gateway::new(
        Supergraph::parse(&sdl).unwrap(),
        GatewayOptions {
            rate_limits,
            verifier,
            dedupe_requests: false,
            dedupe_subgraph_requests: false,
            ..Default::default()
        },
    )
}

/// Serves the gateway with peer addresses, as the binaries do.
async fn serve(gw: Arc<Gateway>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let app = shop_gateway::router(gw).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Posts `{ hello }` with extra headers: status, `Retry-After`, body.
async fn ask(url: &str, headers: &[(&str, &str)]) -> (u16, Option<u64>, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(json!({ "query": "{ hello }" }).to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (
        status,
        retry,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap(),
    )
}

fn rate(text: &str) -> Option<Rate> {
    Some(Rate::parse(text).unwrap())
}

#[tokio::test]
async fn an_address_over_its_rate_gets_429_with_retry_after_and_no_subgraph_call() {
    let (sub, calls) = subgraph().await;
    let limits = RateLimits {
        per_address: rate("3/1m"),
        ..Default::default()
    };
    let url = serve(gateway(&sub, limits, None)).await;
    for _ in 0..3 {
        let (status, _, body) = ask(&url, &[]).await;
        assert_eq!(
            (status, &body),
            (200, &json!({ "data": { "hello": "world" } }))
        );
    }
    let (status, retry, body) = ask(&url, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "TOO_MANY_REQUESTS");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "address");
    // One token comes back every 20 s.
    let retry = retry.expect("a Retry-After header");
    assert!((19..=20).contains(&retry), "Retry-After {retry}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], retry);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn client_names_have_their_own_rates() {
    let (sub, calls) = subgraph().await;
    let limits = RateLimits {
        per_client: RateLimits::parse_clients("storefront=4/1m,*=1/1m").unwrap(),
        ..Default::default()
    };
    let url = serve(gateway(&sub, limits, None)).await;
    let storefront = [("apollographql-client-name", "storefront")];
    for _ in 0..4 {
        assert_eq!(ask(&url, &storefront).await.0, 200);
    }
    let (status, _, body) = ask(&url, &storefront).await;
    assert_eq!(status, 429);
    assert_eq!(body["errors"][0]["extensions"]["limit"], "client");
    // A partner's app is held to the default, in a bucket of its own.
    let partner = [("graphql-client-name", "partner-app")];
    assert_eq!(ask(&url, &partner).await.0, 200);
    assert_eq!(ask(&url, &partner).await.0, 429);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn each_signed_in_user_has_a_rate_of_their_own() {
    let (sub, calls) = subgraph().await;
    let key = SigningKey::generate().unwrap();
    let verifier = Verifier::new(vec![TrustedIssuer::new(
        "https://issuer.test",
        "shop",
        JwksSource::Inline(key.jwks()),
    )]);
    let limits = RateLimits {
        per_user: rate("2/1m"),
        ..Default::default()
    };
    let url = serve(gateway(&sub, limits, Some(verifier))).await;
    let token = |user: &str| {
        let t = key
            .mint(
                "https://issuer.test",
                "shop",
                user,
                &[Role::Customer],
                std::time::Duration::from_secs(600),
            )
            .unwrap();
        format!("Bearer {t}")
    };
    let (ann, bob) = (token("ann"), token("bob"));
    for _ in 0..2 {
        assert_eq!(ask(&url, &[("authorization", &ann)]).await.0, 200);
    }
    let (status, retry, body) = ask(&url, &[("authorization", &ann)]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "user");
    assert!(retry.is_some_and(|r| (29..=30).contains(&r)), "{retry:?}");
    // Another account, and anonymous requests, are not held by ann's rate.
    assert_eq!(ask(&url, &[("authorization", &bob)]).await.0, 200);
    assert_eq!(ask(&url, &[]).await.0, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn two_gateways_sharing_redis_count_against_one_bucket() {
    let Some(redis) = shop_kit::testing::redis_url("rate_limits_shared") else {
        return;
    };
    let prefix = format!("rate-test-{}", shop_kit::ids::new_id());
    let (sub, calls) = subgraph().await;
    let limits = RateLimits {
        per_address: rate("4/1m"),
        ..Default::default()
    };
    let (a, b) = (
        gateway(&sub, limits.clone(), None),
        gateway(&sub, limits, None),
    );
    for gw in [&a, &b] {
        gw.share_through_redis(&redis, &prefix).await.unwrap();
    }
    let (a, b) = (serve(a).await, serve(b).await);
    for url in [&a, &b, &a, &b] {
        assert_eq!(ask(url, &[]).await.0, 200);
    }
    for url in [&a, &b] {
        let (status, retry, body) = ask(url, &[]).await;
        assert_eq!(status, 429, "{body}");
        assert!(retry.is_some_and(|r| (14..=15).contains(&r)), "{retry:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

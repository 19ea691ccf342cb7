//! Internal calls answer the same whether they cross a socket or are handed to a router
//! this process serves itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use shop_kit::auth::SigningKey;
use shop_kit::internal::{InternalAuth, LocalRoutes, SubgraphClient};

/// A stand-in subgraph: refuses calls without a bearer token (as ours do, with a coded
/// error), else answers what it was sent and from where.
fn router(served_by: &'static str) -> axum::Router {
    axum::Router::new().route(
        "/graphql",
        post(
            move |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
                  headers: HeaderMap,
                  body: String| async move {
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let bearer = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("Bearer ey"));
                if !bearer {
                    return axum::Json(json!({
                        "errors": [{ "message": "no token", "extensions": { "code": "FORBIDDEN" } }]
                    }));
                }
                if body["variables"]["fail"] == true {
                    return axum::Json(json!({
                        "errors": [{ "message": "no such thing", "extensions": { "code": "NOT_FOUND" } }]
                    }));
                }
                axum::Json(json!({ "data": {
                    "servedBy": served_by,
                    "query": body["query"],
                    "variables": body["variables"],
                    "loopback": peer.ip().is_loopback(),
                } }))
            },
        ),
    )
}

#[tokio::test]
async fn a_call_answers_the_same_through_the_socket_and_through_the_local_router() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shop_kit::server::serve(listener, router("socket"), async {
        let _ = stopped.await;
    }));
    let auth = InternalAuth::new(SigningKey::generate().unwrap());
    let over_http = SubgraphClient::new("inventory", &url, auth.clone(), "carts", &["x"]);
    let routes = LocalRoutes::default();
    let local = SubgraphClient::new("inventory", &url, auth, "carts", &["x"]).with_local(&routes);

    let vars = json!({ "id": "p-1", "n": 3 });
    // Not yet served here: the client falls back to the socket.
    let before = local.call("query { a }", vars.clone()).await.unwrap();
    assert_eq!(before["servedBy"], "socket");

    routes.add("inventory", router("local"));
    let a = over_http.call("query { a }", vars.clone()).await.unwrap();
    let b = local.call("query { a }", vars.clone()).await.unwrap();
    assert_eq!(a["servedBy"], "socket");
    assert_eq!(b["servedBy"], "local");
    for field in ["query", "variables", "loopback"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    assert_eq!(b["loopback"], true);
    assert_eq!(b["variables"], vars);

    // A coded error comes back as the same error either way.
    let fail = json!({ "fail": true });
    let a = over_http
        .call("query { a }", fail.clone())
        .await
        .unwrap_err();
    let b = local.call("query { a }", fail).await.unwrap_err();
    assert_eq!(a.code().as_str(), "NOT_FOUND");
    assert_eq!(b.code().as_str(), a.code().as_str());
    assert_eq!(b.public_message(), a.public_message());

    // The client holds the routes weakly (the routers hold clients): once their owner
    // lets go, calls cross the socket again and nothing keeps the routers alive.
    drop(routes);
    let after = local.call("query { a }", vars).await.unwrap();
    assert_eq!(after["servedBy"], "socket");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

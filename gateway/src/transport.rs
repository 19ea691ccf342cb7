//! HTTP transport to clients: `POST /graphql` (JSON, or Server-Sent Events when the
//! client accepts `text/event-stream`), `GET /graphql` (queries, a WebSocket upgrade for
//! `graphql-transport-ws`, or the GraphQL console for browsers), `/health`, `/ready`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Map, Value};

use crate::Gateway;
use crate::pipeline::RequestMeta;
use crate::pipeline::request::{GraphQLRequest, GraphQLResponse};
use crate::reload::GatewayHandle;

/// The gateway's router, serving `gateway` for good.
pub fn router(gateway: Arc<Gateway>) -> Router {
    router_for(GatewayHandle::new(gateway))
}

/// The gateway's router, serving whichever generation `handle` holds (see
/// [`crate::reload`]); `POST /admin/supergraph` replaces it.
pub fn router_for(handle: Arc<GatewayHandle>) -> Router {
    let gateway = handle.current();
    let max_request = gateway.options.limits.max_request_bytes;
    let mut router = Router::new()
        .route("/graphql", get(get_graphql).post(post_graphql))
        .route("/files/{subgraph}/{*path}", axum::routing::any(files))
        .route(
            "/webhooks/{subgraph}/{*path}",
            axum::routing::post(webhooks),
        )
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready));
    if gateway.options.protections.metrics {
        router = router.route("/metrics", get(metrics));
    }
    if gateway.options.protections.console {
        router = router
            .route("/console/console.js", get(console_script))
            .route("/console/console.css", get(console_style));
    }
    router
        .route("/.well-known/openid-configuration", get(well_known))
        .route("/.well-known/jwks.json", get(well_known))
        .route("/admin/supergraph", axum::routing::post(replace_supergraph))
        .with_state(handle)
        .layer(axum::extract::DefaultBodyLimit::max(max_request))
        .layer(tower_http::cors::CorsLayer::permissive())
}

pub(crate) fn respond(resp: GraphQLResponse) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        Json(resp),
    )
        .into_response()
}

/// Serializes an executed operation's response (see [`Gateway::serialize`]).
fn respond_limited(gw: &Gateway, resp: GraphQLResponse) -> Response {
    respond_serialized(gw.serialize(resp))
}

/// How one client request is traced: the span it runs in when its trace is recorded
/// (continuing the caller's, if it sent one), none when it is not.
fn request_trace(headers: &HeaderMap) -> shop_kit::telemetry::Decision {
    shop_kit::telemetry::decide(headers, || {
        tracing::info_span!(
            "graphql.request",
            otel.kind = "server",
            graphql.operation.name = tracing::field::Empty,
            graphql.operation.type = tracing::field::Empty,
            sampling.priority = tracing::field::Empty,
        )
    })
}

fn respond_serialized(s: crate::pipeline::Serialized) -> Response {
    let status = StatusCode::from_u16(s.status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, "application/json")], s.body).into_response()
}

/// Reads a POST body as one GraphQL request, saying what is wrong in GraphQL's error
/// shape when it is not one: too large, a batch, not JSON.
fn read_request(
    body: Result<Bytes, axum::Error>,
    max: usize,
) -> Result<GraphQLRequest, GraphQLResponse> {
    let body = match body {
        Ok(b) => b,
        Err(e) if is_length_limit(&e) => {
            return Err(GraphQLResponse::request_error(
                413,
                format!("the request body is larger than {max} bytes"),
                "PAYLOAD_TOO_LARGE",
            ));
        }
        Err(e) => {
            return Err(GraphQLResponse::request_error(
                400,
                format!("the request body could not be read: {e}"),
                "BAD_REQUEST",
            ));
        }
    };
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Err(GraphQLResponse::request_error(
            400,
            "batched requests (a JSON array of operations) are not supported; send one \
             operation per request, as a JSON object with `query`, and optionally \
             `operationName`, `variables` and `extensions`",
            "BATCHING_NOT_SUPPORTED",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        GraphQLResponse::request_error(
            400,
            format!(
                "the body is not a GraphQL request: send a JSON object with a `query` \
                 string, and optionally `operationName`, `variables` (an object) and \
                 `extensions` ({e})"
            ),
            "BAD_REQUEST",
        )
    })
}

/// Whether reading a body stopped at its length limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains("length limit") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The largest request body accepted by default (see
/// [`crate::pipeline::limits::OperationLimits::max_request_bytes`]).
pub const REQUEST_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The verified `Authorization` header (forwarded to subgraphs) and its principal.
type Authorized = (Option<String>, Option<shop_kit::auth::Principal>);

async fn authorize(gw: &Gateway, headers: &HeaderMap) -> Result<Authorized, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok((None, None));
    };
    let value = value.to_str().map_err(|_| {
        shop_kit::server::unauthenticated_response("the Authorization header is not text")
    })?;
    let principal = match &gw.options.verifier {
        Some(verifier) => Some(
            verifier
                .verify_header(value)
                .await
                .map_err(|e| shop_kit::server::auth_error_response(&e))?,
        ),
        None => None,
    };
    Ok((Some(value.to_string()), principal))
}

/// Proxies in front of the gateway (load balancers, CDNs) whose `X-Forwarded-For`
/// entries are believed: addresses or CIDR ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(std::net::IpAddr, u8)>);

impl TrustedProxies {
    /// Reads `10.0.0.0/8, 192.168.1.7, ::1`.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let mut out = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (entry, None),
            };
            let ip: std::net::IpAddr = addr
                .parse()
                .map_err(|_| format!("{entry:?} is not an IP address or CIDR range"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{entry:?} has an invalid prefix length"))?,
                None => max,
            };
            out.push((ip, bits));
        }
        Ok(TrustedProxies(out))
    }

    fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(i) & mask
            }
            _ => false,
        })
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// nearest `X-Forwarded-For` entry (from the right) that is not one. Entries left of
    /// an untrusted hop are the client's own claims and never used.
    pub fn client(&self, peer: std::net::IpAddr, forwarded: Option<&str>) -> std::net::IpAddr {
        let mut client = peer;
        if !self.contains(client) {
            return client;
        }
        let chain = forwarded
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .rev();
        for entry in chain.filter(|e| !e.is_empty()) {
            let Ok(ip) = entry.parse::<std::net::IpAddr>() else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// The `X-Forwarded-For` to send on: what came in, then the client's address as the
/// gateway derives it (see [`TrustedProxies::client`]); subgraphs take the last entry.
fn forwarded_for(
    gw: &Gateway,
    headers: &HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Option<String> {
    let claimed = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    // Without a peer (an in-memory router), pass nothing rather than the client's claim.
    let Extension(ConnectInfo(peer)) = peer?;
    let client = gw.options.trusted_proxies.client(peer.ip(), claimed);
    Some(match claimed {
        Some(c) => format!("{c}, {client}"),
        None => client.to_string(),
    })
}

/// Serves the identity service's discovery document and JWKS at the gateway's origin,
/// so token issuer and API share one public URL.
async fn well_known(State(handle): State<Arc<GatewayHandle>>, uri: axum::http::Uri) -> Response {
    let gw = handle.current();
    let Some(base) = gw.options.identity_url.as_deref() else {
        return (StatusCode::NOT_FOUND, "no identity service configured").into_response();
    };
    let url = format!("{}{}", base.trim_end_matches('/'), uri.path());
    match gw
        .client
        .get(&url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
    {
        Ok(resp) if resp.status().is_success() => {
            let cache = resp
                .headers()
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("public, max-age=300")
                .to_string();
            match resp.bytes().await {
                Ok(body) => (
                    [
                        (header::CONTENT_TYPE, "application/json".to_string()),
                        (header::CACHE_CONTROL, cache),
                    ],
                    body,
                )
                    .into_response(),
                Err(_) => (StatusCode::BAD_GATEWAY, "identity service failed").into_response(),
            }
        }
        _ => (StatusCode::BAD_GATEWAY, "identity service unavailable").into_response(),
    }
}

/// `/files/{subgraph}/…`: a subgraph's file routes (staged uploads, exports) at the
/// gateway's origin, streamed both ways: the request body (a `PUT` of a large file)
/// and the answer (an export) pass through without being held. Only subgraphs of the
/// supergraph are reachable, and only their `/files/` routes; the subgraph checks the
/// `Authorization` header (forwarded as it came) or the signed link itself.
async fn files(
    State(handle): State<Arc<GatewayHandle>>,
    axum::extract::Path((subgraph, path)): axum::extract::Path<(String, String)>,
    request: axum::extract::Request,
) -> Response {
    pass_through(&handle, Routes::Files, &subgraph, &path, request).await
}

/// `POST /webhooks/{subgraph}/…`: what other systems post to a subgraph (carriers'
/// tracking events to shipping), passed through with the body as it came and the
/// sender's headers, since the subgraph checks a signature over both.
async fn webhooks(
    State(handle): State<Arc<GatewayHandle>>,
    axum::extract::Path((subgraph, path)): axum::extract::Path<(String, String)>,
    request: axum::extract::Request,
) -> Response {
    pass_through(&handle, Routes::Webhooks, &subgraph, &path, request).await
}

/// Which of a subgraph's plain HTTP routes a request goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Routes {
    Files,
    Webhooks,
}

/// Headers never passed to a subgraph: this hop's own, and the browser's cookies.
fn hop_header(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "expect"
            | "proxy-authorization"
            | "proxy-connection"
            | "cookie"
    )
}

async fn pass_through(
    handle: &GatewayHandle,
    routes: Routes,
    subgraph: &str,
    path: &str,
    request: axum::extract::Request,
) -> Response {
    let gw = handle.current();
    let Some(graph) = gw
        .supergraph
        .graphs
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(subgraph))
    else {
        return (StatusCode::NOT_FOUND, "no such service").into_response();
    };
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return (StatusCode::BAD_REQUEST, "bad path").into_response();
    }
    let (parts, body) = request.into_parts();
    let prefix = match routes {
        Routes::Files => "files",
        Routes::Webhooks => "webhooks",
    };
    let mut url = format!("{}/{prefix}/{path}", shop_kit::server::base_url(&graph.url));
    if let Some(q) = parts.uri.query() {
        url.push('?');
        url.push_str(q);
    }
    let mut req = gw
        .client
        .request(parts.method.clone(), &url)
        // As long as a large file takes to pass; a webhook's sender waits briefly.
        .timeout(std::time::Duration::from_secs(match routes {
            Routes::Files => 60 * 60,
            Routes::Webhooks => 30,
        }))
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    match routes {
        Routes::Files => {
            for name in [
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_RANGE,
                header::RANGE,
            ] {
                if let Some(v) = parts.headers.get(&name) {
                    req = req.header(name, v);
                }
            }
        }
        Routes::Webhooks => {
            for (name, v) in &parts.headers {
                if !hop_header(name) {
                    req = req.header(name, v);
                }
            }
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(subgraph, error = %e, "a file request failed");
            return (StatusCode::BAD_GATEWAY, "the service is unavailable").into_response();
        }
    };
    let mut out = Response::builder().status(resp.status().as_u16());
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_DISPOSITION,
        header::CONTENT_RANGE,
        header::RANGE,
        header::CACHE_CONTROL,
    ] {
        if let Some(v) = resp.headers().get(name.as_str()) {
            out = out.header(name.as_str(), v.as_bytes());
        }
    }
    if let Some(v) = resp.headers().get("upload-offset") {
        out = out.header("upload-offset", v.as_bytes());
    }
    out.body(axum::body::Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// Whether the client asked for Server-Sent Events.
fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// The key streaming-connection limits count by: the client's address.
fn client_key(
    gw: &Gateway,
    headers: &HeaderMap,
    peer: &Option<Extension<ConnectInfo<SocketAddr>>>,
) -> String {
    let claimed = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    peer.as_ref()
        .map(|Extension(ConnectInfo(a))| {
            gw.options
                .trusted_proxies
                .client(a.ip(), claimed)
                .to_string()
        })
        .unwrap_or_else(|| "local".into())
}

/// The client's address as limits count it (see [`TrustedProxies::client`]); `None`
/// for an in-memory router without a peer.
fn client_address(
    gw: &Gateway,
    headers: &HeaderMap,
    peer: &Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Option<std::net::IpAddr> {
    let claimed = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    peer.as_ref()
        .map(|Extension(ConnectInfo(a))| gw.options.trusted_proxies.client(a.ip(), claimed))
}

/// 429 `TOO_MANY_REQUESTS` with `Retry-After`, naming the limit.
fn too_many(gw: &Gateway, limited: crate::ratelimit::Limited) -> Response {
    gw.metrics.rate_limited(limited.limit);
    let secs = limited.retry_after_secs();
    let who = match limited.limit {
        "user" => "this account",
        "client" => "this client application",
        _ => "this address",
    };
    let body = serde_json::json!({ "errors": [{
        "message": format!("too many requests from {who}; try again in {secs} s"),
        "extensions": {
            "code": "TOO_MANY_REQUESTS",
            "limit": limited.limit,
            "retryAfter": secs,
        }
    }]});
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::RETRY_AFTER, secs.to_string()),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Counts a request against its address's and client name's rates, before anything
/// else is read; refused over either.
async fn limit_caller(
    gw: &Gateway,
    headers: &HeaderMap,
    peer: &Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Result<(), Response> {
    if gw.rate_limiter.limits.is_empty() {
        return Ok(());
    }
    let name = client_name(headers);
    let caller = crate::ratelimit::Caller {
        address: client_address(gw, headers, peer),
        client_name: name.as_deref(),
    };
    gw.rate_limiter
        .check_caller(&caller)
        .await
        .map_err(|l| too_many(gw, l))
}

/// Counts a request against its signed-in user's rate.
async fn limit_user(
    gw: &Gateway,
    principal: &Option<shop_kit::auth::Principal>,
) -> Result<(), Response> {
    match principal {
        Some(p) if gw.rate_limiter.limits.per_user.is_some() => gw
            .rate_limiter
            .check_user(&p.user_id)
            .await
            .map_err(|l| too_many(gw, l)),
        _ => Ok(()),
    }
}

/// The name a client gives itself, as Apollo's (`apollographql-client-name`) and Hive's
/// (`graphql-client-name`) clients send it.
pub(crate) fn client_name(headers: &HeaderMap) -> Option<String> {
    ["apollographql-client-name", "graphql-client-name"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok())
        .map(str::to_string)
}

/// Runs a request as an event stream (SSE), counting it as a streaming connection.
async fn event_stream(
    gw: Arc<Gateway>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
    req: GraphQLRequest,
    is_get: bool,
) -> Response {
    let slot = match gw.open_connection(&client_key(&gw, headers, &peer)) {
        Ok(slot) => slot,
        Err(refused) => return refused.response(),
    };
    let (authorization, principal) = match authorize(&gw, headers).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Err(refused) = limit_user(&gw, &principal).await {
        return refused;
    }
    let meta = RequestMeta {
        authorization,
        principal,
        forwarded_for: forwarded_for(&gw, headers, peer),
        is_get,
        uploads: None,
        client_name: client_name(headers),
    };
    crate::live::sse(gw, req, meta, slot).await
}

/// Upgrades to a WebSocket speaking `graphql-transport-ws`.
async fn upgrade(
    handle: Arc<GatewayHandle>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    mut parts: axum::http::request::Parts,
) -> Response {
    use axum::extract::FromRequestParts;
    let gw = handle.current();
    let offered = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !offered
        .split(',')
        .any(|p| p.trim() == crate::pipeline::stream::PROTOCOL)
    {
        return (
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol must be graphql-transport-ws",
        )
            .into_response();
    }
    if let Err(refused) = limit_caller(&gw, &parts.headers, &peer).await {
        return refused;
    }
    let ws = match axum::extract::WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let slot = match gw.open_connection(&client_key(&gw, &parts.headers, &peer)) {
        Ok(slot) => slot,
        Err(refused) => return refused.response(),
    };
    let conn = crate::live::Connection {
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        forwarded_for: forwarded_for(&gw, &parts.headers, peer),
        client_name: client_name(&parts.headers),
        slot,
    };
    // A message may be as large as a POST body, no larger (the default would take 64 MiB).
    ws.protocols([crate::pipeline::stream::PROTOCOL])
        .max_message_size(gw.options.limits.max_request_bytes)
        .max_frame_size(gw.options.limits.max_request_bytes)
        .on_upgrade(move |socket| crate::live::serve_socket(handle, socket, conn))
}

async fn post_graphql(
    State(handle): State<Arc<GatewayHandle>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: axum::extract::Request,
) -> Response {
    let gw = handle.current();
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    if let Err(refused) =
        crate::csrf::check(&headers, &gw.options.protections.csrf_required_headers)
    {
        return respond(refused);
    }
    if let Err(refused) = limit_caller(&gw, &headers, &peer).await {
        return refused;
    }
    if crate::uploads::is_multipart(&headers) {
        return post_upload(gw, peer, headers, body).await;
    }
    let max = gw.options.limits.max_request_bytes;
    let body = axum::body::to_bytes(body, max).await;
    let req = match read_request(body, max) {
        Ok(r) => r,
        Err(resp) => return respond(resp),
    };
    if wants_event_stream(&headers) {
        return event_stream(gw, peer, &headers, req, false).await;
    }
    let (authorization, principal) = match authorize(&gw, &headers).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Err(refused) = limit_user(&gw, &principal).await {
        return refused;
    }
    let trace = request_trace(&headers);
    let answer = shop_kit::telemetry::serve(
        trace,
        gw.execute_serialized(
            req,
            &RequestMeta {
                authorization,
                principal,
                forwarded_for: forwarded_for(&gw, &headers, peer),
                is_get: false,
                uploads: None,
                client_name: client_name(&headers),
            },
        ),
    )
    .await;
    respond_serialized(answer)
}

/// A multipart request (a file upload): the operation runs while the files stream
/// through to the subgraph that takes them (see [`crate::uploads`]).
async fn post_upload(
    gw: Arc<Gateway>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    // Who is asking is settled before a byte of the files is read.
    let (authorization, principal) = match authorize(&gw, &headers).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Err(refused) = limit_user(&gw, &principal).await {
        return refused;
    }
    let (req, uploads) =
        match crate::uploads::begin(&headers, body, gw.options.limits.max_upload_bytes).await {
            Ok(r) => r,
            Err(resp) => return respond(resp),
        };
    let resp = gw
        .execute(
            req,
            &RequestMeta {
                authorization,
                principal,
                forwarded_for: forwarded_for(&gw, &headers, peer),
                is_get: false,
                uploads: Some(uploads.clone()),
                client_name: client_name(&headers),
            },
        )
        .await;
    if let Some(failed) = uploads.failure_response() {
        return respond(failed);
    }
    respond_limited(&gw, resp)
}

async fn get_graphql(
    State(handle): State<Arc<GatewayHandle>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: axum::extract::Request,
) -> Response {
    let gw = handle.current();
    let (parts, _) = request.into_parts();
    let is_upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if is_upgrade {
        return upgrade(handle, peer, parts).await;
    }
    let headers = parts.headers.clone();
    let Query(params) = match Query::<Map<String, Value>>::try_from_uri(&parts.uri) {
        Ok(q) => q,
        Err(e) => {
            return respond(GraphQLResponse::request_error(
                400,
                format!("the query string is not valid: {e}"),
                "BAD_REQUEST",
            ));
        }
    };
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !params.contains_key("query") && gw.options.protections.console {
        return console_page();
    }
    if let Err(refused) =
        crate::csrf::check(&headers, &gw.options.protections.csrf_required_headers)
    {
        return respond(refused);
    }
    if let Err(refused) = limit_caller(&gw, &headers, &peer).await {
        return refused;
    }
    let text = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_string);
    // Objects travel in the query string as JSON text.
    let object = |k: &str| match text(k).map(|v| serde_json::from_str::<Map<String, Value>>(&v)) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(GraphQLResponse::request_error(
            400,
            format!("{k} is not a JSON object: {e}"),
            "BAD_REQUEST",
        )),
    };
    let (variables, extensions) = match (object("variables"), object("extensions")) {
        (Ok(v), Ok(e)) => (v, e),
        (Err(refused), _) | (_, Err(refused)) => return respond(refused),
    };
    let req = GraphQLRequest {
        query: text("query"),
        operation_name: text("operationName"),
        variables,
        extensions,
        document_id: text("documentId").or_else(|| text("doc_id")),
    };
    if wants_event_stream(&headers) {
        return event_stream(gw, peer, &headers, req, true).await;
    }
    let (authorization, principal) = match authorize(&gw, &headers).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    if let Err(refused) = limit_user(&gw, &principal).await {
        return refused;
    }
    let trace = request_trace(&headers);
    let answer = shop_kit::telemetry::serve(
        trace,
        gw.execute_serialized(
            req,
            &RequestMeta {
                authorization,
                principal,
                forwarded_for: forwarded_for(&gw, &headers, peer),
                is_get: true,
                uploads: None,
                client_name: client_name(&headers),
            },
        ),
    )
    .await;
    respond_serialized(answer)
}

/// `POST /admin/supergraph`: an admin (a token with the admin role) hands the gateway
/// a new supergraph (the body, as SDL). 200 with the subgraphs it serves; 400 with the
/// reason when it does not pass (the current one keeps serving).
async fn replace_supergraph(
    State(handle): State<Arc<GatewayHandle>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let gw = handle.current();
    let refuse = |status: StatusCode, message: &str, code: &str| {
        let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
        (status, Json(body)).into_response()
    };
    let principal = match authorize(&gw, &headers).await {
        Ok((_, principal)) => principal,
        Err(resp) => return resp,
    };
    match principal {
        None => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "replacing the supergraph needs an admin's token",
                "UNAUTHENTICATED",
            );
        }
        Some(p) if !p.is_admin() => {
            return refuse(
                StatusCode::FORBIDDEN,
                "only an admin may replace the supergraph",
                "FORBIDDEN",
            );
        }
        Some(_) => {}
    }
    let Ok(sdl) = std::str::from_utf8(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the supergraph is not UTF-8 text",
            "BAD_USER_INPUT",
        );
    };
    match handle.replace(sdl).await {
        Ok(crate::reload::Replaced::Now(subgraphs)) => {
            Json(serde_json::json!({ "replaced": true, "subgraphs": subgraphs })).into_response()
        }
        Ok(crate::reload::Replaced::Unchanged) => {
            Json(serde_json::json!({ "replaced": false })).into_response()
        }
        Err(reason) => {
            tracing::error!(%reason, "a supergraph sent to /admin/supergraph was refused");
            refuse(
                StatusCode::BAD_REQUEST,
                &format!("the supergraph was refused; the current one keeps serving: {reason}"),
                "INVALID_SUPERGRAPH",
            )
        }
    }
}

/// `/metrics` in the Prometheus text format (see [`crate::metrics`]).
async fn metrics(State(handle): State<Arc<GatewayHandle>>) -> Response {
    let gw = handle.current();
    shop_kit::metrics::response(gw.render_metrics().await)
}

/// Ready when the process has loaded what it serves and every subgraph answers its
/// `/health`.
async fn ready(State(handle): State<Arc<GatewayHandle>>) -> Response {
    let gw = handle.current();
    if gw.is_starting() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: still starting (loading the demo shop)",
        )
            .into_response();
    }
    let checks = gw.supergraph.graphs.iter().map(|g| {
        let url = format!("{}/health", shop_kit::server::base_url(&g.url));
        let client = gw.client.clone();
        async move {
            let ok = client
                .get(&url)
                .timeout(std::time::Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (g.name.clone(), ok)
        }
    });
    let results = futures::future::join_all(checks).await;
    let down: Vec<String> = results
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| n)
        .collect();
    if down.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {} unreachable", down.join(", ")),
        )
            .into_response()
    }
}

/// The browser console at `/graphql`: the gateway's own page, script and style, so it
/// works offline and under the strict policy below (no inline code, nothing from
/// another origin). `connect-src` names `ws:`/`wss:` because browsers without CSP 3
/// do not count a same-origin WebSocket as `'self'`.
const CONSOLE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn console_page() -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONSOLE_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Html(include_str!("console/index.html")),
    )
        .into_response()
}

async fn console_script() -> Response {
    console_asset(
        "text/javascript; charset=utf-8",
        include_str!("console/console.js"),
    )
}

async fn console_style() -> Response {
    console_asset(
        "text/css; charset=utf-8",
        include_str!("console/console.css"),
    )
}

fn console_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Revalidated on each load: the assets change with the gateway's version.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::TrustedProxies;

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.0.0.5"), Some("1.2.3.4")), ip("10.0.0.5"));
        let lb = TrustedProxies::parse("10.0.0.0/8, ::1").unwrap();
        // Behind the balancer: the address it saw; claims left of it are ignored.
        assert_eq!(
            lb.client(ip("10.0.0.5"), Some("6.6.6.6, 1.2.3.4")),
            ip("1.2.3.4")
        );
        // Two trusted hops.
        assert_eq!(
            lb.client(ip("10.0.0.5"), Some("1.2.3.4, 10.9.9.9")),
            ip("1.2.3.4")
        );
        // Straight from the internet: the peer, whatever it claims.
        assert_eq!(lb.client(ip("8.8.8.8"), Some("1.2.3.4")), ip("8.8.8.8"));
        assert_eq!(lb.client(ip("::1"), None), ip("::1"));
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
    }
}

//! Serving a subgraph: `/graphql` with the caller's verified identity, `/health`,
//! `/ready`, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Executor;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::extract::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::future::BoxFuture;
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::auth::{Caller, Verifier};

/// A subgraph's schema builder with what every subgraph has: federation, coded
/// errors, a span per resolver, and bounds on depth and complexity (the gateway checks
/// its own limits first; these guard a subgraph called directly).
pub fn subgraph_schema<Q, M, S>(
    query: Q,
    mutation: M,
    subscription: S,
) -> async_graphql::SchemaBuilder<Q, M, S>
where
    Q: async_graphql::ObjectType + 'static,
    M: async_graphql::ObjectType + 'static,
    S: async_graphql::SubscriptionType + 'static,
{
    async_graphql::Schema::build(query, mutation, subscription)
        .enable_federation()
        .extension(crate::error::ErrorCodes)
        .extension(crate::telemetry::ResolverSpans)
        .limit_depth(32)
        .limit_complexity(20_000)
}

/// Answers whether a process can serve: its database and required services reachable.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

#[derive(Clone)]
struct SubgraphState<E> {
    executor: E,
    verifier: Verifier,
    /// The largest file a multipart request may carry; 0 refuses files.
    max_upload_bytes: u64,
}

/// The largest request body that is not a multipart upload.
pub const MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;
/// Files one multipart request may carry.
pub const MAX_UPLOAD_FILES: usize = 4;

/// Ready while `db` answers a trivial query.
pub fn database_ready(db: sea_orm::DatabaseConnection) -> ReadyCheck {
    Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { crate::db::ping(&db).await })
    })
}

/// The router every subgraph mounts: the same in the all-in-one binary, per-role
/// processes and tests.
pub fn subgraph_router<E: Executor + Clone>(
    executor: E,
    verifier: Verifier,
    ready: ReadyCheck,
) -> Router {
    subgraph_router_with_uploads(executor, verifier, ready, 0)
}

/// [`subgraph_router`] for a subgraph with `Upload` arguments: multipart requests
/// (the GraphQL multipart request specification) carry files of up to
/// `max_upload_bytes` each, spooled to temporary files, never held in memory.
pub fn subgraph_router_with_uploads<E: Executor + Clone>(
    executor: E,
    verifier: Verifier,
    ready: ReadyCheck,
    max_upload_bytes: u64,
) -> Router {
    let state = SubgraphState {
        executor,
        verifier,
        max_upload_bytes,
    };
    Router::new()
        .route(
            "/graphql",
            post(graphql_handler::<E>).get(subscription_handler::<E>),
        )
        .with_state(state)
        .merge(health_router(ready))
}

/// `/health` (the process is alive), `/ready` (it can serve) and `/metrics` (see
/// [`crate::metrics`]).
pub fn health_router(ready: ReadyCheck) -> Router {
    crate::metrics::router()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/ready",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready().await {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        )
}

async fn graphql_handler<E: Executor>(
    State(state): State<SubgraphState<E>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let caller = match caller_from_headers(&state.verifier, &headers).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let req = match read_request(&headers, body, state.max_upload_bytes).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let addr = client_addr(&headers, peer.map(|Extension(ConnectInfo(a))| a));
    let req = req.data(caller).data(addr);
    GraphQLResponse::from(state.executor.execute(req).await).into_response()
}

/// Reads a POST body: JSON up to [`MAX_BODY_BYTES`], or a multipart upload whose files
/// go to temporary files, each up to `max_upload_bytes`.
async fn read_request(
    headers: &HeaderMap,
    body: axum::body::Body,
    max_upload_bytes: u64,
) -> Result<async_graphql::Request, Response> {
    use async_graphql::ParseRequestError;
    use async_graphql::http::MultipartOptions;
    use futures::TryStreamExt;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let multipart = content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/"));
    let limit = if multipart {
        max_upload_bytes
            .saturating_mul(MAX_UPLOAD_FILES as u64)
            .saturating_add(MAX_BODY_BYTES)
    } else {
        MAX_BODY_BYTES
    };
    let mut seen = 0u64;
    let stream = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .and_then(move |chunk| {
            seen += chunk.len() as u64;
            let over = seen > limit;
            async move {
                if over {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::FileTooLarge,
                        "body too large",
                    ))
                } else {
                    Ok(chunk)
                }
            }
        });
    let options = MultipartOptions::default()
        .max_file_size(max_upload_bytes.min(usize::MAX as u64) as usize)
        .max_num_files(MAX_UPLOAD_FILES);
    let too_large = || {
        coded_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &if multipart {
                format!("a file is larger than the limit of {max_upload_bytes} bytes")
            } else {
                format!("the request body is larger than {MAX_BODY_BYTES} bytes")
            },
        )
    };
    match async_graphql::http::receive_body(content_type, stream.into_async_read(), options).await {
        Ok(req) => Ok(req),
        Err(ParseRequestError::PayloadTooLarge) => Err(too_large()),
        Err(ParseRequestError::Io(e)) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            Err(too_large())
        }
        Err(ParseRequestError::InvalidMultipart(e))
            if format!("{e:?}").contains("body too large") =>
        {
            Err(too_large())
        }
        Err(e) => Err(coded_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            &format!("the request could not be read: {e}"),
        )),
    }
}

/// Subscriptions over WebSocket (`graphql-transport-ws`, and the older `graphql-ws`):
/// the gateway's upstream leg. The bearer token comes in the upgrade request's
/// `Authorization` header or the `connection_init` payload, verified as for queries.
async fn subscription_handler<E: Executor>(
    State(state): State<SubgraphState<E>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let caller = match caller_from_headers(&state.verifier, &headers).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let addr = client_addr(&headers, peer.map(|Extension(ConnectInfo(a))| a));
    let executor = state.executor.clone();
    let verifier = state.verifier.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let mut data = async_graphql::Data::default();
            data.insert(addr);
            GraphQLWebSocket::new(socket, executor, protocol)
                .with_data(data)
                .on_connection_init(move |payload| async move {
                    let mut data = async_graphql::Data::default();
                    data.insert(init_caller(&verifier, caller, &payload).await?);
                    Ok(data)
                })
                .serve()
                .await
        })
}

/// The caller of a WebSocket connection: the token in `connection_init`
/// (`Authorization: Bearer …`) when there is one, else the upgrade request's.
async fn init_caller(
    verifier: &Verifier,
    from_headers: Caller,
    payload: &serde_json::Value,
) -> async_graphql::Result<Caller> {
    let value = payload
        .as_object()
        .and_then(|p| {
            p.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v)
        })
        .and_then(serde_json::Value::as_str);
    match value {
        None => Ok(from_headers),
        Some(v) => verifier
            .verify_header(v)
            .await
            .map(|p| Caller(Some(p)))
            .map_err(|e| async_graphql::Error::new(e.to_string())),
    }
}

/// Where a request came from, for per-address abuse limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAddr(pub Option<String>);

impl ClientAddr {
    pub fn key(&self) -> &str {
        self.0.as_deref().unwrap_or("unknown")
    }
}

/// The client's address: the last `X-Forwarded-For` entry (appended by the gateway, the
/// proxy subgraphs sit behind), else the connection's peer. Entries before the last are
/// whatever the client claimed and are not trusted.
pub fn client_addr(headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientAddr {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
        .map(str::to_string);
    ClientAddr(forwarded.or_else(|| peer.map(|p| p.ip().to_string())))
}

/// Verifies the `Authorization` header. No header is an anonymous caller; a header that
/// does not verify is refused with 401 and an `UNAUTHENTICATED` GraphQL error.
pub async fn caller_from_headers(
    verifier: &Verifier,
    headers: &HeaderMap,
) -> Result<Caller, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Caller(None));
    };
    let value = value.to_str().unwrap_or_default();
    match verifier.verify_header(value).await {
        Ok(p) => Ok(Caller(Some(p))),
        Err(e) => Err(auth_error_response(&e)),
    }
}

/// The 401 answer to a token that does not verify, coded by why (see
/// [`crate::auth::AuthError::code`]).
pub fn auth_error_response(e: &crate::auth::AuthError) -> Response {
    coded_unauthenticated(&e.to_string(), e.code())
}

/// A transport-level `UNAUTHENTICATED` answer.
pub fn unauthenticated_response(message: &str) -> Response {
    coded_unauthenticated(message, "UNAUTHENTICATED")
}

fn coded_unauthenticated(message: &str, code: &str) -> Response {
    let mut resp = coded_error(StatusCode::UNAUTHORIZED, code, message);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// A request refused before GraphQL ran: one error with its code, in GraphQL's shape.
pub fn coded_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    (status, Json(body)).into_response()
}

/// A service's base URL from its GraphQL endpoint (`http://h:4001/graphql` →
/// `http://h:4001`), where its `/health`, `/ready` and `/.well-known/` live.
pub fn base_url(url: &str) -> &str {
    url.trim_end_matches('/').trim_end_matches("/graphql")
}

/// Binds `addr`; port 0 picks a free port (tests).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Longest request target (path and query) answered normally; a longer one gets 414
/// with a GraphQL error. Long operations belong in a POST body.
pub const MAX_URI_BYTES: usize = 32 * 1024;
/// Most header bytes (names and values) a request may carry; more gets 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header fields a request may carry; more gets 431.
pub const MAX_HEADER_COUNT: usize = 200;
/// How long a client has to send a request's head: a client that trickles bytes
/// (slowloris) must not hold a connection forever. hyper starts this clock as soon as
/// a connection waits for a request, so it is also how long an idle keep-alive
/// connection stays open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long our own HTTP clients keep an idle connection to our servers: less than
/// [`HEADER_READ_TIMEOUT`], so a request is never sent on a connection the server is
/// closing.
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(20);
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How a listener serves connections; [`serve`] uses the defaults.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub header_read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting and lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, &ServeOptions::default()).await
}

/// [`serve`] with explicit options.
///
/// Our own accept loop rather than `axum::serve`, which sets no timer (so no header
/// read timeout) and leaves hyper's head limits in charge: hyper answers an over-long
/// head itself with an empty 414/431. Here hyper's limits sit above ours, so every
/// request up to them reaches [`limit_request_head`] and gets a coded GraphQL error;
/// only heads beyond hyper's hard limits (a URI over 64 KiB, over 400 KiB of header
/// bytes or 1,000 fields) still get hyper's bare status.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: &ServeOptions,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::ServiceExt;

    let router = router.layer(axum::middleware::from_fn(limit_request_head));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_headers(HARD_HEADER_COUNT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(HARD_HEADER_LIST_BYTES)
        // WebSockets over HTTP/2 (RFC 8441).
        .enable_connect_protocol();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or a client gone before the accept: neither may
                // stop the server. The pause lets connections close before the next try.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    Ok(())
}

/// hyper's own limits, above ours so that ours answer first.
const HARD_HEADER_COUNT: usize = 1000;
const HARD_HEADER_LIST_BYTES: u32 = 256 * 1024;

/// Refuses a request whose URI or headers are larger than this server reads, in
/// GraphQL's error shape with a stable code, before anything else looks at it.
async fn limit_request_head(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return coded_error(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            &format!(
                "the request URI is {uri} bytes, more than the {MAX_URI_BYTES} this server reads; \
                 send long operations in a POST body"
            ),
        );
    }
    let count = req.headers().len();
    let bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if count > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        return coded_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "REQUEST_HEADERS_TOO_LARGE",
            &format!(
                "the request has {count} header fields of {bytes} bytes; this server reads at \
                 most {MAX_HEADER_COUNT} fields and {MAX_HEADER_BYTES} bytes"
            ),
        );
    }
    next.run(req).await
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when the future is first polled: call it before starting anything, so a signal that
/// arrives during start-up is not lost (or fatal, as SIGTERM is without a handler).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut term, mut int) = signals;
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term.take()) => {},
                _ = wait(int.take()) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested: finishing requests in flight");
    }
}

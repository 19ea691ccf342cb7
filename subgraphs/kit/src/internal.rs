//! Calls between our own services: carts holding stock in inventory, the checkout saga
//! in orders driving inventory and payments.
//!
//! Such calls go straight to the other subgraph's `/graphql` (not through the gateway)
//! and use fields marked `@inaccessible`, which the public API does not expose. Where
//! the other subgraph is served by the same process (the all-in-one binary), the call
//! is handed to its router directly ([`LocalRoutes`]): the same request, token checks
//! and answer, without the loopback socket and two HTTP codecs in between. They
//! carry a short-lived token of the internal issuer, signed with the service key that
//! every process of a deployment shares (`SHOP_SERVICE_KEY`; the all-in-one process
//! makes one at start). A field meant for services checks [`Principal::is_service`], so
//! neither a shopper's token nor another issuer's scope can reach it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::auth::{Claims, JwksSource, Principal, SigningKey, TrustedIssuer};
use crate::{ApiError, ApiResult, StockShortfall};

pub const INTERNAL_ISSUER: &str = "urn:shop:internal";
pub const INTERNAL_AUDIENCE: &str = "shop-internal";
/// Internal tokens live this long; each is reused for most of that.
const TOKEN_TTL: Duration = Duration::from_secs(300);
const TOKEN_REUSE: Duration = Duration::from_secs(240);

impl Principal {
    /// Whether this is one of our services holding `scope` (never a person's token,
    /// whatever scopes another issuer put in it).
    pub fn is_service(&self, scope: &str) -> bool {
        self.issuer == INTERNAL_ISSUER && self.has_scope(scope)
    }
}

/// Refuses anything but one of our services with `scope`.
pub fn require_service(caller: &crate::auth::Caller, scope: &str) -> ApiResult<()> {
    match &caller.0 {
        Some(p) if p.is_service(scope) => Ok(()),
        Some(_) => Err(ApiError::forbidden("this field is for our own services")),
        None => Err(ApiError::unauthenticated(
            "this field is for our own services",
        )),
    }
}

/// The shared service key and the tokens made with it.
#[derive(Clone)]
pub struct InternalAuth {
    key: Arc<SigningKey>,
    tokens: Arc<Mutex<HashMap<String, (Instant, String)>>>,
}

impl InternalAuth {
    pub fn new(key: SigningKey) -> Self {
        InternalAuth {
            key: Arc::new(key),
            tokens: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Trust in internal tokens, for every verifier of the deployment.
    pub fn trusted_issuer(&self) -> TrustedIssuer {
        TrustedIssuer::new(
            INTERNAL_ISSUER,
            INTERNAL_AUDIENCE,
            JwksSource::Inline(self.key.jwks()),
        )
    }

    /// A secret for `purpose` that every process holding the service key derives alike
    /// (for links one process signs and another checks).
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(purpose.as_bytes());
        h.update([0u8]);
        h.update(self.key.to_secret_string().as_bytes());
        h.finalize().into()
    }

    /// A token for `service` with `scopes`.
    pub fn token(&self, service: &str, scopes: &[&str]) -> ApiResult<String> {
        let cache_key = format!("{service} {}", scopes.join(" "));
        if let Ok(cache) = self.tokens.lock()
            && let Some((at, token)) = cache.get(&cache_key)
            && at.elapsed() < TOKEN_REUSE
        {
            return Ok(token.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let token = self.key.sign(&Claims {
            sub: format!("service:{service}"),
            iss: INTERNAL_ISSUER.into(),
            aud: INTERNAL_AUDIENCE.into(),
            iat: now,
            exp: now + TOKEN_TTL.as_secs() as i64,
            jti: crate::ids::new_id(),
            scope: scopes.join(" "),
            roles: Vec::new(),
        })?;
        if let Ok(mut cache) = self.tokens.lock() {
            cache.insert(cache_key, (Instant::now(), token.clone()));
        }
        Ok(token)
    }
}

/// The routers of the subgraphs this process serves, by subgraph name, filled as they
/// start; cheap to clone. Its owner (the process's platform) keeps it; clients hold it
/// weakly, since the routers hold the clients: a strong hold would keep every router,
/// and its database pool, alive after the platform has stopped.
#[derive(Clone, Default)]
pub struct LocalRoutes(Arc<RouteMap>);

type RouteMap = std::sync::RwLock<HashMap<String, axum::Router>>;

impl LocalRoutes {
    pub fn add(&self, subgraph: &str, router: axum::Router) {
        if let Ok(mut routes) = self.0.write() {
            routes.insert(subgraph.to_string(), router);
        }
    }

    /// Forgets every router: calls go over HTTP again.
    pub fn clear(&self) {
        if let Ok(mut routes) = self.0.write() {
            routes.clear();
        }
    }
}

/// The most an internal answer may hold; far above any real one.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// How long an internal call may take, over HTTP or in-process.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A GraphQL client for another subgraph's internal fields, as one service with fixed
/// scopes.
#[derive(Clone)]
pub struct SubgraphClient {
    /// The subgraph's name, for errors and logs.
    pub subgraph: String,
    url: String,
    http: reqwest::Client,
    auth: InternalAuth,
    service: String,
    scopes: Vec<&'static str>,
    /// The routes of this process, and the subgraph's path on its router.
    local: Option<(std::sync::Weak<RouteMap>, String)>,
}

impl SubgraphClient {
    pub fn new(
        subgraph: &str,
        url: &str,
        auth: InternalAuth,
        service: &str,
        scopes: &[&'static str],
    ) -> Self {
        SubgraphClient {
            subgraph: subgraph.to_string(),
            url: url.to_string(),
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .pool_idle_timeout(crate::server::CLIENT_POOL_IDLE)
                .build()
                .unwrap_or_default(),
            auth,
            service: service.to_string(),
            scopes: scopes.to_vec(),
            local: None,
        }
    }

    /// Calls the subgraph through its router when `routes` has it (it runs in this
    /// process), over HTTP otherwise.
    pub fn with_local(mut self, routes: &LocalRoutes) -> Self {
        let path = reqwest::Url::parse(&self.url)
            .map(|u| u.path().to_string())
            .unwrap_or_else(|_| "/graphql".into());
        self.local = Some((Arc::downgrade(&routes.0), path));
        self
    }

    /// The subgraph's router and path, when this process serves it.
    fn local_router(&self) -> Option<(axum::Router, &str)> {
        let (routes, path) = self.local.as_ref()?;
        let routes = routes.upgrade()?;
        let routes = routes.read().ok()?;
        Some((routes.get(&self.subgraph)?.clone(), path))
    }

    /// Runs `query`; the `data`, or the first error as the [`ApiError`] the other
    /// subgraph raised (codes and out-of-stock lines survive the trip).
    pub async fn call(&self, query: &str, variables: Value) -> ApiResult<Value> {
        let token = self.auth.token(&self.service, &self.scopes)?;
        let body = serde_json::json!({ "query": query, "variables": variables }).to_string();
        let unavailable = |e: String| {
            tracing::warn!(subgraph = %self.subgraph, error = %e, "internal call failed");
            ApiError::Unavailable(format!("the {} service is unavailable", self.subgraph))
        };
        let bytes = match self.local_router() {
            Some((router, path)) => call_local(router, path, &token, body)
                .await
                .map_err(unavailable)?,
            None => {
                let mut trace = axum::http::HeaderMap::new();
                crate::telemetry::inject(&mut trace);
                let resp = self
                    .http
                    .post(&self.url)
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {token}"))
                    .headers(trace)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                resp.bytes().await.map_err(|e| unavailable(e.to_string()))?
            }
        };
        let mut value: Value =
            serde_json::from_slice(&bytes).map_err(|e| unavailable(e.to_string()))?;
        if let Some(first) = value.get("errors").and_then(|e| e.get(0)) {
            return Err(remote_error(first));
        }
        Ok(value
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }
}

/// One request through a subgraph's router, as its server would hand it over (the
/// peer address set, for handlers that read it), within the HTTP timeout.
async fn call_local(
    router: axum::Router,
    path: &str,
    token: &str,
    body: String,
) -> Result<axum::body::Bytes, String> {
    use tower::ServiceExt;
    let mut req = axum::http::Request::post(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::from(body))
        .map_err(|e| e.to_string())?;
    crate::telemetry::inject(req.headers_mut());
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))));
    let answer = async {
        let resp = router.oneshot(req).await.map_err(|e| e.to_string())?;
        axum::body::to_bytes(resp.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(CALL_TIMEOUT, answer)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// The error another subgraph answered, as ours.
fn remote_error(e: &Value) -> ApiError {
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("internal error")
        .to_string();
    let ext = e.get("extensions");
    let code = ext
        .and_then(|x| x.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match code {
        "BAD_USER_INPUT" => ApiError::BadUserInput(message),
        "NOT_FOUND" => ApiError::NotFound(message),
        "CONFLICT" => ApiError::Conflict(message),
        "FORBIDDEN" => ApiError::Forbidden(message),
        "UNAUTHENTICATED" => ApiError::Unauthenticated(message),
        "TOO_MANY_REQUESTS" => ApiError::TooManyRequests(message),
        "SERVICE_UNAVAILABLE" => ApiError::Unavailable(message),
        "PAYMENT_DECLINED" => ApiError::PaymentDeclined {
            decline_code: ext
                .and_then(|x| x.get("declineCode"))
                .and_then(Value::as_str)
                .unwrap_or("card_declined")
                .to_string(),
            reason: message,
        },
        "CART_EXPIRED" => ApiError::CartExpired(message),
        "NOT_SHIPPABLE" => {
            let text = |k: &str| {
                ext.and_then(|x| x.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            ApiError::NotShippable(crate::Unshippable {
                country: text("country").unwrap_or_default(),
                supplier_id: text("supplierId"),
                weight_grams: ext
                    .and_then(|x| x.get("weightGrams"))
                    .and_then(Value::as_i64),
                message,
            })
        }
        "PRICE_CHANGED" => ApiError::PriceChanged(
            ext.and_then(|x| x.get("lines"))
                .and_then(|l| serde_json::from_value(l.clone()).ok())
                .unwrap_or_default(),
        ),
        "OUT_OF_STOCK" => ApiError::OutOfStock(
            ext.and_then(|x| x.get("lines"))
                .and_then(|l| serde_json::from_value::<Vec<StockShortfall>>(l.clone()).ok())
                .unwrap_or_default(),
        ),
        _ => ApiError::Internal(format!("{code}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, Verifier};

    #[tokio::test]
    async fn internal_tokens_are_services_and_people_are_not() {
        let auth = InternalAuth::new(SigningKey::generate().expect("key"));
        let verifier = Verifier::new(vec![auth.trusted_issuer()]);
        let token = auth.token("carts", &["inventory:hold"]).expect("token");
        assert_eq!(
            auth.token("carts", &["inventory:hold"]).expect("again"),
            token
        );
        let p = verifier.verify(&token).await.expect("verifies");
        assert_eq!(p.user_id, "service:carts");
        assert!(p.is_service("inventory:hold"));
        assert!(!p.is_service("payments:charge"));
        let person = Principal {
            scopes: vec!["inventory:hold".into()],
            ..Principal::with_roles("u1", &[Role::Admin], "https://id.example")
        };
        assert!(
            !person.is_service("inventory:hold"),
            "another issuer's scope"
        );
        assert!(matches!(
            require_service(&crate::auth::Caller(Some(person)), "inventory:hold"),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            require_service(&crate::auth::Caller(None), "inventory:hold"),
            Err(ApiError::Unauthenticated(_))
        ));
    }

    #[test]
    fn remote_errors_keep_their_code_and_lines() {
        let e = remote_error(&serde_json::json!({
            "message": "not enough stock for some lines",
            "extensions": { "code": "OUT_OF_STOCK", "lines": [
                { "productId": "p", "requested": 2, "available": 1 }
            ] }
        }));
        assert!(matches!(e, ApiError::OutOfStock(ref l) if l.len() == 1 && l[0].available == 1));
        let e = remote_error(&serde_json::json!({
            "message": "x", "extensions": { "code": "BAD_USER_INPUT" }
        }));
        assert!(matches!(e, ApiError::BadUserInput(ref m) if m == "x"));
    }
}

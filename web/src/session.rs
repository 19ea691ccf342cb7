//! The visitor's session: one encrypted, HTTP-only, `SameSite=Lax` cookie holding the
//! CSRF token, the anonymous cart's id and token, and once signed in the user's access
//! and refresh tokens. Nothing is kept on the server, so any replica of the web app
//! serves any visitor (they share `SHOP_WEB_SESSION_KEY`).
//!
//! Access tokens are short-lived: a visit whose token is about to expire exchanges the
//! refresh token first. The API treats a refresh token used twice as stolen and ends
//! the sign-in, and a browser sends several requests with the same cookie at once (a
//! page and its event stream), so exchanges are shared: the requests that arrive with
//! the same refresh token get the one new pair (kept for a minute).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::OnceCell;

use crate::Web;
use crate::api::ApiError;

pub const COOKIE: &str = "shop_session";
/// How long a session cookie lives without a visit (the API's refresh tokens last as
/// long or less; an expired one just signs the visitor out).
const COOKIE_DAYS: i64 = 30;
/// Tokens this close to expiry are exchanged before use.
const REFRESH_MARGIN_SECS: i64 = 30;
/// How long a finished exchange answers requests that bring the old refresh token.
const SHARED_FOR: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize, Default, Clone, Debug)]
pub struct Session {
    /// Sent back with every form.
    pub csrf: String,
    #[serde(default)]
    pub user: Option<SignedIn>,
    /// An anonymous cart; a signed-in user's cart is found through the API.
    #[serde(default)]
    pub cart: Option<CartRef>,
    /// One message for the next page (after a form's redirect).
    #[serde(default)]
    pub notice: Option<Notice>,
    /// Where to go once an OpenID Connect provider sends the visitor back.
    #[serde(default)]
    pub after_sign_in: Option<String>,
    /// The `state` of the provider sign-in this browser started: a callback carrying
    /// another (a link someone else got from the provider) signs nobody in.
    #[serde(default)]
    pub oidc_state: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SignedIn {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub access: String,
    /// Unix seconds.
    pub access_expires: i64,
    pub refresh: String,
}

impl SignedIn {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CartRef {
    pub id: String,
    pub token: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Notice {
    pub text: String,
    /// An error (shown as an alert) rather than a confirmation.
    pub error: bool,
}

/// What the API's sign-in and refresh answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub user: TokenUser,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct TokenUser {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
}

/// The fields of `AuthPayload` a session keeps.
pub const TOKEN_FIELDS: &str = "accessToken expiresIn refreshToken user { id name roles }";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A new session key: 48 random bytes as text.
pub fn random_key() -> String {
    let bytes: [u8; 48] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SignedIn {
    pub fn from_pair(pair: TokenPair) -> SignedIn {
        SignedIn {
            id: pair.user.id,
            name: pair.user.name,
            roles: pair.user.roles,
            access: pair.access_token,
            access_expires: now() + pair.expires_in,
            refresh: pair.refresh_token,
        }
    }
}

type Exchange = Arc<OnceCell<Result<Arc<SignedIn>, ()>>>;

/// Refresh exchanges in flight or just done, by the refresh token they spent.
#[derive(Default)]
pub struct Exchanges {
    by_token: Mutex<HashMap<String, (Instant, Exchange)>>,
}

impl Exchanges {
    fn slot(&self, refresh: &str) -> Exchange {
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (at, _)| at.elapsed() < SHARED_FOR);
        map.entry(refresh.to_string())
            .or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new())))
            .1
            .clone()
    }
}

impl Exchanges {
    /// Forgets the exchanges that led to `refresh` (signed out): an old copy of the
    /// cookie must not be handed the new tokens.
    pub fn forget(&self, refresh: &str) {
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let mut target = refresh.to_string();
        // The chain of exchanges back from `refresh`, one a minute at most.
        for _ in 0..64 {
            let spent = map.iter().find_map(|(old, (_, cell))| match cell.get() {
                Some(Ok(fresh)) if fresh.refresh == target => Some(old.clone()),
                _ => None,
            });
            let Some(old) = spent else {
                break;
            };
            map.remove(&old);
            target = old;
        }
    }
}

/// One request's view of the session; `finish` writes it back when it changed.
pub struct Visit {
    pub session: Session,
    jar: PrivateCookieJar,
    changed: bool,
    secure: bool,
}

impl Visit {
    /// Reads the session (a new one when there is none or it cannot be read) and makes
    /// sure a signed-in visitor's access token is fresh.
    pub async fn start(web: &Web, jar: PrivateCookieJar) -> Visit {
        let read = jar
            .get(COOKIE)
            .and_then(|c| serde_json::from_str::<Session>(c.value()).ok());
        let changed = read.is_none();
        let mut session = read.unwrap_or_default();
        if session.csrf.is_empty() {
            session.csrf = random_token();
        }
        let mut visit = Visit {
            session,
            jar,
            changed,
            secure: web.secure_cookies,
        };
        visit.keep_fresh(web).await;
        visit
    }

    async fn keep_fresh(&mut self, web: &Web) {
        let Some(user) = &self.session.user else {
            return;
        };
        if user.access_expires - REFRESH_MARGIN_SECS > now() {
            return;
        }
        let refresh = user.refresh.clone();
        let slot = web.exchanges.slot(&refresh);
        let result = slot
            .get_or_init(|| async {
                let query = format!(
                    "mutation Refresh($t: String!) {{ refreshSession(refreshToken: $t) {{ {TOKEN_FIELDS} }} }}"
                );
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Data {
                    refresh_session: TokenPair,
                }
                match web
                    .api
                    .run::<Data>(&query, json!({ "t": refresh }), None)
                    .await
                {
                    Ok(d) => Ok(Arc::new(SignedIn::from_pair(d.refresh_session))),
                    Err(e) => {
                        tracing::info!(error = %e, "a session could not be refreshed");
                        Err(())
                    }
                }
            })
            .await
            .clone();
        match result {
            Ok(fresh) => self.session.user = Some((*fresh).clone()),
            // Revoked, expired or the account disabled: signed out.
            Err(()) => {
                self.session.user = None;
                self.notify_error("Your session ended. Please sign in again.");
            }
        }
        self.changed = true;
    }

    pub fn user(&self) -> Option<&SignedIn> {
        self.session.user.as_ref()
    }

    pub fn token(&self) -> Option<&str> {
        self.session.user.as_ref().map(|u| u.access.as_str())
    }

    /// Whether a form's CSRF token is this session's.
    pub fn csrf_ok(&self, sent: &str) -> bool {
        !self.session.csrf.is_empty()
            && constant_time_eq(self.session.csrf.as_bytes(), sent.as_bytes())
    }

    pub fn session_mut(&mut self) -> &mut Session {
        self.changed = true;
        &mut self.session
    }

    pub fn notify(&mut self, text: impl Into<String>) {
        self.session_mut().notice = Some(Notice {
            text: text.into(),
            error: false,
        });
    }

    pub fn notify_error(&mut self, text: impl Into<String>) {
        self.session_mut().notice = Some(Notice {
            text: text.into(),
            error: true,
        });
    }

    /// After a form: says how it went (the API's refusal in words) and goes to `to`.
    pub fn outcome(mut self, result: Result<String, crate::ApiError>, to: &str) -> Response {
        match result {
            Ok(done) => self.notify(done),
            Err(e) => self.notify_error(say(&e)),
        }
        self.finish(axum::response::Redirect::to(to))
    }

    /// The notice to show on this page, shown once.
    pub fn take_notice(&mut self) -> Option<Notice> {
        if self.session.notice.is_some() {
            self.changed = true;
        }
        self.session.notice.take()
    }

    /// Signs in: a new CSRF token too, so one learnt before signing in is worthless.
    pub fn sign_in(&mut self, user: SignedIn) {
        let s = self.session_mut();
        s.user = Some(user);
        s.csrf = random_token();
    }

    pub fn sign_out(&mut self) {
        let s = self.session_mut();
        s.user = None;
        s.cart = None;
        s.csrf = random_token();
    }

    /// The response with the session written back when it changed.
    pub fn finish(self, response: impl IntoResponse) -> Response {
        if !self.changed {
            return response.into_response();
        }
        let value = serde_json::to_string(&self.session).unwrap_or_default();
        let cookie = Cookie::build((COOKIE, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(time::Duration::days(COOKIE_DAYS))
            .build();
        (self.jar.add(cookie), response).into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An API refusal a shopper can read: the API's own message for input it refused
/// (they are written for people), a sentence of ours for everything else.
pub fn say(e: &ApiError) -> String {
    match e {
        ApiError::Unreachable(_) => {
            "The shop cannot be reached right now. Please try again in a moment.".into()
        }
        ApiError::Refused { code, message } => match code.as_str() {
            "UNAUTHENTICATED" => "Please sign in to do that.".into(),
            "FORBIDDEN" => "You are not allowed to do that.".into(),
            "TOO_MANY_REQUESTS" => "Too many attempts. Please wait a little and try again.".into(),
            "INTERNAL_SERVER_ERROR" => "Something went wrong on our side. Please try again.".into(),
            _ => sentence(message),
        },
    }
}

/// The API's message as a sentence: capitalised, ending with a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return "That did not work. Please try again.".into(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

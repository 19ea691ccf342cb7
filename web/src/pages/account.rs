//! Accounts: the account page (details, saved addresses, password, signing out
//! everywhere), sign up, e-mail verification (the link in the mail opens
//! `/verify-email`), sign in with a password or an OpenID Connect provider, sign out,
//! forgotten password (`/forgot-password`, then the mail's `/reset-password` link).
//! Signing in moves the anonymous cart's items into the user's cart.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum_extra::extract::Query;
use serde::Deserialize;
use serde_json::json;

use super::orders::AddressView;
use super::{Chrome, NoFields, Posted, Visited, local_path, render};
use crate::Web;
use crate::session::{SignedIn, TOKEN_FIELDS, TokenPair, Visit, say};

#[derive(Deserialize, Default)]
pub struct NextParam {
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    pub name: String,
    pub display_name: String,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    next: String,
    email: String,
    error: Option<String>,
    providers: Vec<Provider>,
}

async fn providers(web: &Web) -> Vec<Provider> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        oidc_providers: Vec<Provider>,
    }
    web.api
        .run::<Data>(
            "query Providers { oidcProviders { name displayName } }",
            json!({}),
            None,
        )
        .await
        .map(|d| d.oidc_providers)
        .unwrap_or_default()
}

async fn sign_in_form(
    web: &Web,
    mut visit: Visit,
    status: StatusCode,
    next: String,
    email: String,
    error: Option<String>,
) -> Response {
    let providers = providers(web).await;
    let count = super::frame_counts(web, &visit).await;
    let chrome = Chrome::of(&mut visit, count);
    let page = render(
        status,
        SignInPage {
            chrome,
            next,
            email,
            error,
            providers,
        },
    );
    visit.finish(page)
}

/// `GET /sign-in`.
pub async fn sign_in_page(Visited { web, visit }: Visited, Query(p): Query<NextParam>) -> Response {
    let web = &*web;
    let next = local_path(p.next.as_deref(), "/");
    if visit.user().is_some() {
        return visit.finish(Redirect::to(&next));
    }
    sign_in_form(web, visit, StatusCode::OK, next, String::new(), None).await
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /sign-in`.
pub async fn sign_in(
    Posted {
        web,
        visit,
        form: f,
        ..
    }: Posted<SignInForm>,
) -> Response {
    let web = &*web;
    let next = local_path(f.next.as_deref(), "/");
    #[derive(Deserialize)]
    struct Data {
        login: TokenPair,
    }
    let q = format!(
        "mutation SignIn($email: String!, $password: String!) {{ login(email: $email, password: $password) {{ {TOKEN_FIELDS} }} }}"
    );
    match web
        .api
        .run::<Data>(
            &q,
            json!({ "email": f.email.trim(), "password": f.password }),
            None,
        )
        .await
    {
        Ok(d) => signed_in(web, visit, d.login, &next).await,
        Err(e) => {
            let message = match &e {
                crate::ApiError::Refused { code, message } if code == "UNAUTHENTICATED" => {
                    if message.contains("verif") {
                        "Please verify your e-mail address first: follow the link in the mail we sent you.".to_string()
                    } else {
                        "That e-mail address and password do not match an account.".to_string()
                    }
                }
                _ => say(&e),
            };
            sign_in_form(
                web,
                visit,
                StatusCode::UNPROCESSABLE_ENTITY,
                next,
                f.email,
                Some(message),
            )
            .await
        }
    }
}

/// Finishes a sign-in: keeps the tokens, moves the anonymous cart over, goes on.
async fn signed_in(web: &Web, mut visit: Visit, pair: TokenPair, next: &str) -> Response {
    let user = SignedIn::from_pair(pair);
    let name = user.name.clone();
    let token = user.access.clone();
    let anonymous = visit.session.cart.take();
    visit.sign_in(user);
    if let Some(cart) = anonymous.filter(|c| c.token.is_some()) {
        let merged = web
            .api
            .run::<serde_json::Value>(
                "mutation Merge($id: ID!, $token: String!) { mergeCart(cartId: $id, cartToken: $token) { itemCount } }",
                json!({ "id": cart.id, "token": cart.token }),
                Some(&token),
            )
            .await;
        match merged {
            Ok(_) => {
                visit.notify(format!(
                    "Welcome back, {name}. The items you picked are in your cart."
                ));
                return visit.finish(Redirect::to(next));
            }
            Err(e) => {
                tracing::info!(error = %e, "an anonymous cart could not be merged");
            }
        }
    }
    visit.notify(format!("Welcome, {name}."));
    visit.finish(Redirect::to(next))
}

/// `POST /sign-out`: ends the sign-in at the API (its refresh token can no longer be
/// used, here or anywhere it was copied) and forgets it here.
pub async fn sign_out(Posted { web, mut visit, .. }: Posted<NoFields>) -> Response {
    let web = &*web;
    if let Some(user) = visit.user() {
        let result = web
            .api
            .run::<serde_json::Value>(
                "mutation SignOut($t: String!) { logout(refreshToken: $t) }",
                json!({ "t": user.refresh }),
                None,
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "signing out at the API failed");
        }
        web.exchanges.forget(&user.refresh);
    }
    visit.sign_out();
    visit.notify("You are signed out.");
    visit.finish(Redirect::to("/"))
}

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage {
    chrome: Chrome,
    name: String,
    email: String,
    error: Option<String>,
}

/// `GET /sign-up`.
pub async fn sign_up_page(Visited { web, mut visit }: Visited) -> Response {
    let web = &*web;
    let count = super::frame_counts(web, &visit).await;
    let chrome = Chrome::of(&mut visit, count);
    let page = render(
        StatusCode::OK,
        SignUpPage {
            chrome,
            name: String::new(),
            email: String::new(),
            error: None,
        },
    );
    visit.finish(page)
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Chrome,
    title: String,
    message: String,
    link: Option<(String, String)>,
}

fn message(
    mut visit: Visit,
    status: StatusCode,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> Response {
    let chrome = Chrome::of(&mut visit, 0);
    let page = render(
        status,
        MessagePage {
            chrome,
            title: title.into(),
            message: text.into(),
            link: link.map(|(h, l)| (h.to_string(), l.to_string())),
        },
    );
    visit.finish(page)
}

/// `POST /sign-up`.
pub async fn sign_up(
    Posted {
        web,
        mut visit,
        form: f,
        ..
    }: Posted<SignUpForm>,
) -> Response {
    let web = &*web;
    let result = web
        .api
        .run::<serde_json::Value>(
            "mutation SignUp($input: RegisterInput!) { register(input: $input) { email message } }",
            json!({ "input": { "name": f.name.trim(), "email": f.email.trim(), "password": f.password } }),
            None,
        )
        .await;
    match result {
        Ok(_) => message(
            visit,
            StatusCode::OK,
            "Check your e-mail",
            &format!(
                "We sent a link to {} to confirm the address. Follow it, then sign in.",
                f.email.trim()
            ),
            Some(("/sign-in", "Go to sign in")),
        ),
        Err(e) => {
            let chrome = Chrome::of(&mut visit, 0);
            let page = render(
                StatusCode::UNPROCESSABLE_ENTITY,
                SignUpPage {
                    chrome,
                    name: f.name,
                    email: f.email,
                    error: Some(say(&e)),
                },
            );
            visit.finish(page)
        }
    }
}

#[derive(Deserialize, Default)]
pub struct TokenParam {
    #[serde(default)]
    token: String,
}

/// `/verify-email?token=…`: the link in the verification mail.
pub async fn verify_email(
    Visited { web, visit }: Visited,
    Query(p): Query<TokenParam>,
) -> Response {
    let web = &*web;
    let result = web
        .api
        .run::<serde_json::Value>(
            "mutation Verify($token: String!) { verifyEmail(token: $token) { emailVerified } }",
            json!({ "token": p.token }),
            None,
        )
        .await;
    match result {
        Ok(_) => message(
            visit,
            StatusCode::OK,
            "E-mail address confirmed",
            "Thank you: your address is confirmed. You can sign in now.",
            Some(("/sign-in", "Sign in")),
        ),
        Err(e) => message(
            visit,
            StatusCode::BAD_REQUEST,
            "This link does not work",
            &format!(
                "{} Links work once and for a limited time; signing in lets you ask for a new one.",
                say(&e)
            ),
            Some(("/sign-in", "Sign in")),
        ),
    }
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    chrome: Chrome,
}

/// `GET /forgot-password`.
pub async fn forgot_page(Visited { mut visit, .. }: Visited) -> Response {
    let chrome = Chrome::of(&mut visit, 0);
    let page = render(StatusCode::OK, ForgotPage { chrome });
    visit.finish(page)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /forgot-password`: the same answer whether or not the address has an account.
pub async fn forgot(
    Posted {
        web,
        visit,
        form: f,
        ..
    }: Posted<ForgotForm>,
) -> Response {
    let web = &*web;
    let result = web
        .api
        .run::<serde_json::Value>(
            "mutation Forgot($email: String!) { requestPasswordReset(email: $email) }",
            json!({ "email": f.email.trim() }),
            None,
        )
        .await;
    match result {
        Ok(_) => message(
            visit,
            StatusCode::OK,
            "Check your e-mail",
            "If an account uses that address, we sent it a link to choose a new password.",
            None,
        ),
        Err(e) => message(
            visit,
            StatusCode::BAD_REQUEST,
            "That did not work",
            &say(&e),
            Some(("/forgot-password", "Try again")),
        ),
    }
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    chrome: Chrome,
    token: String,
    error: Option<String>,
}

/// `GET /reset-password?token=…`: the link in the reset mail.
pub async fn reset_page(
    Visited { mut visit, .. }: Visited,
    Query(p): Query<TokenParam>,
) -> Response {
    let chrome = Chrome::of(&mut visit, 0);
    let page = render(
        StatusCode::OK,
        ResetPage {
            chrome,
            token: p.token,
            error: None,
        },
    );
    visit.finish(page)
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /reset-password`.
pub async fn reset(
    Posted {
        web,
        mut visit,
        form: f,
        ..
    }: Posted<ResetForm>,
) -> Response {
    let web = &*web;
    let result = web
        .api
        .run::<serde_json::Value>(
            "mutation Reset($token: String!, $password: String!) { resetPassword(token: $token, newPassword: $password) }",
            json!({ "token": f.token, "password": f.password }),
            None,
        )
        .await;
    match result {
        Ok(_) => {
            // Every session was ended by the reset: this one too.
            visit.sign_out();
            message(
                visit,
                StatusCode::OK,
                "Password changed",
                "Your new password is set, and every other sign-in was ended. Sign in with it now.",
                Some(("/sign-in", "Sign in")),
            )
        }
        Err(e) => {
            let chrome = Chrome::of(&mut visit, 0);
            let page = render(
                StatusCode::UNPROCESSABLE_ENTITY,
                ResetPage {
                    chrome,
                    token: f.token,
                    error: Some(say(&e)),
                },
            );
            visit.finish(page)
        }
    }
}

/// `/sign-in/with/{provider}`: off to the provider, who sends the visitor back to
/// `/sign-in/callback`.
pub async fn oidc_start(
    Visited { web, mut visit }: Visited,
    headers: axum::http::HeaderMap,
    Path(provider): Path<String>,
    Query(p): Query<NextParam>,
) -> Response {
    let web = &*web;
    let callback = format!("{}/sign-in/callback", origin(web, &headers));
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Auth {
        authorization_url: String,
        state: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        start_oidc_login: Auth,
    }
    match web
        .api
        .run::<Data>(
            "mutation StartOidc($provider: String!, $redirect: String!) { startOidcLogin(provider: $provider, redirectUri: $redirect) { authorizationUrl state } }",
            json!({ "provider": provider, "redirect": callback }),
            None,
        )
        .await
    {
        Ok(d) => {
            let session = visit.session_mut();
            session.after_sign_in = Some(local_path(p.next.as_deref(), "/"));
            session.oidc_state = Some(d.start_oidc_login.state);
            visit.finish(Redirect::to(&d.start_oidc_login.authorization_url))
        }
        Err(e) => {
            visit.notify_error(say(&e));
            visit.finish(Redirect::to("/sign-in"))
        }
    }
}

#[derive(Deserialize, Default)]
pub struct CallbackParams {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    error: Option<String>,
}

/// `/sign-in/callback`: the provider sent the visitor back.
pub async fn oidc_callback(
    Visited { web, mut visit }: Visited,
    Query(p): Query<CallbackParams>,
) -> Response {
    let web = &*web;
    let next = visit
        .session_mut()
        .after_sign_in
        .take()
        .unwrap_or_else(|| "/".into());
    let started = visit.session_mut().oidc_state.take();
    if p.error.is_some() {
        visit.notify_error("Signing in with that provider was cancelled or refused.");
        return visit.finish(Redirect::to("/sign-in"));
    }
    // Only the sign-in this browser started: otherwise a link with someone else's
    // code would sign the visitor into that person's account.
    if started.is_none_or(|s| s.is_empty() || s != p.state) {
        visit.notify_error("That sign-in link was not started here. Please sign in again.");
        return visit.finish(Redirect::to("/sign-in"));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        complete_oidc_login: TokenPair,
    }
    let q = format!(
        "mutation CompleteOidc($code: String!, $state: String!) {{ completeOidcLogin(code: $code, state: $state) {{ {TOKEN_FIELDS} }} }}"
    );
    match web
        .api
        .run::<Data>(&q, json!({ "code": p.code, "state": p.state }), None)
        .await
    {
        Ok(d) => signed_in(web, visit, d.complete_oidc_login, &next).await,
        Err(e) => {
            visit.notify_error(say(&e));
            visit.finish(Redirect::to("/sign-in"))
        }
    }
}

/// This app's origin as the browser reached it: the configured public URL, else the
/// request's `Host`.
fn origin(web: &Web, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = &web.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = if web.secure_cookies { "https" } else { "http" };
    format!("{scheme}://{host}")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub email_verified: bool,
    pub has_password: bool,
    pub active_sessions: i64,
    pub addresses: Vec<AddressView>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    me: Profile,
}

/// `GET /account`: profile, saved addresses, password, sign-ins.
pub async fn account(Visited { web, mut visit }: Visited) -> Response {
    if visit.user().is_none() {
        return visit.finish(Redirect::to("/sign-in?next=/account"));
    }
    #[derive(Deserialize)]
    struct Data {
        me: Option<Profile>,
    }
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(
            "query Account { me { name email phone emailVerified hasPassword activeSessions addresses { id name line1 line2 city postalCode region country isDefault } } }",
            json!({}),
            visit.token(),
        ),
        super::frame_counts(&web, &visit)
    );
    let me = match data {
        Ok(Data { me: Some(me) }) => me,
        Ok(Data { me: None }) => return visit.finish(Redirect::to("/sign-in?next=/account")),
        Err(e) => return super::failed(visit, e),
    };
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(StatusCode::OK, AccountPage { chrome, me });
    visit.finish(page)
}

/// Runs an account mutation for the signed-in user and goes back to `/account` with
/// `done` or the refusal in words.
async fn account_change(
    web: &Web,
    visit: Visit,
    query: &str,
    vars: serde_json::Value,
    done: &str,
) -> Response {
    if visit.user().is_none() {
        return visit.finish(Redirect::to("/sign-in?next=/account"));
    }
    let result = web
        .api
        .run::<serde_json::Value>(query, vars, visit.token())
        .await;
    visit.outcome(result.map(|_| done.to_string()), "/account")
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ProfileForm {
    name: String,
    phone: String,
}

/// `POST /account/profile`.
pub async fn save_profile(
    Posted {
        web, visit, form, ..
    }: Posted<ProfileForm>,
) -> Response {
    let phone = form.phone.trim();
    let name = form.name.trim();
    let mut visit = visit;
    // The frame shows the name from the session: keep it in step.
    if let Some(user) = visit.session_mut().user.as_mut()
        && !name.is_empty()
    {
        user.name = name.chars().take(100).collect();
    }
    account_change(
        &web,
        visit,
        "mutation Profile($input: ProfileInput!) { updateProfile(input: $input) { name } }",
        json!({ "input": { "name": name, "phone": if phone.is_empty() { serde_json::Value::Null } else { json!(phone) } } }),
        "Your details are saved.",
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AddressForm {
    name: String,
    line1: String,
    line2: String,
    city: String,
    postal_code: String,
    region: String,
    country: String,
    /// `1`: ship here unless told otherwise.
    default: String,
}

/// `POST /account/addresses`: a new saved address.
pub async fn add_address(
    Posted {
        web, visit, form, ..
    }: Posted<AddressForm>,
) -> Response {
    account_change(
        &web,
        visit,
        "mutation AddAddress($input: AddressInput!) { addAddress(input: $input) { id } }",
        json!({ "input": {
            "kind": "SHIPPING", "name": form.name.trim(), "line1": form.line1.trim(), "line2": form.line2.trim(),
            "city": form.city.trim(), "postalCode": form.postal_code.trim(), "region": form.region.trim(),
            "country": form.country.trim().to_uppercase(), "isDefault": form.default == "1",
        } }),
        "The address is saved; checkout offers it.",
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RemoveAddressForm {
    id: String,
}

/// `POST /account/addresses/remove`.
pub async fn remove_address(
    Posted {
        web, visit, form, ..
    }: Posted<RemoveAddressForm>,
) -> Response {
    account_change(
        &web,
        visit,
        "mutation RemoveAddress($id: ID!) { removeAddress(id: $id) }",
        json!({ "id": form.id }),
        "The address is removed.",
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    current: String,
    new_password: String,
}

/// `POST /account/password`.
pub async fn change_password(
    Posted {
        web, visit, form, ..
    }: Posted<PasswordForm>,
) -> Response {
    account_change(
        &web,
        visit,
        "mutation ChangePassword($current: String!, $new: String!) { changePassword(currentPassword: $current, newPassword: $new) }",
        json!({ "current": form.current, "new": form.new_password }),
        "Your password is changed.",
    )
    .await
}

/// `POST /account/sign-out-everywhere`: ends every sign-in of the account, this one
/// too.
pub async fn sign_out_everywhere(Posted { web, mut visit, .. }: Posted<NoFields>) -> Response {
    if visit.user().is_none() {
        return visit.finish(Redirect::to("/sign-in"));
    }
    let result = web
        .api
        .run::<serde_json::Value>(
            "mutation Everywhere { logoutEverywhere }",
            json!({}),
            visit.token(),
        )
        .await;
    match result {
        Ok(_) => {
            if let Some(u) = visit.user() {
                web.exchanges.forget(&u.refresh);
            }
            visit.sign_out();
            visit.notify("You are signed out on every device.");
            visit.finish(Redirect::to("/"))
        }
        Err(e) => {
            visit.notify_error(say(&e));
            visit.finish(Redirect::to("/account"))
        }
    }
}

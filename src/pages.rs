//! The pages e-mail links open, until the web app serves them: verify an address, set a
//! password (reset or invitation), sign in, an order, a supplier's product. Each is a
//! small static page that talks to `/graphql` on the same origin; tokens and ids are
//! read from the address by the page's script, never written into the HTML, and the
//! pages send no referrer, so a token in the address goes nowhere else.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

/// The paths mail links use (documented in the README for frontend teams).
pub const PATHS: [&str; 5] = [
    "/verify-email",
    "/reset-password",
    "/sign-in",
    "/orders/{id}",
    "/supplier/products/{id}",
];

pub fn router() -> Router {
    Router::new()
        .route(PATHS[0], get(|| page(VERIFY)))
        .route(PATHS[1], get(|| page(RESET)))
        .route(PATHS[2], get(|| page(SIGN_IN)))
        .route(PATHS[3], get(|| page(ORDER)))
        .route(PATHS[4], get(|| page(PRODUCT)))
}

async fn page(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'",
            ),
        ],
        Html(format!("{HEAD}{body}{FOOT}")),
    )
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
input,button{font:inherit;padding:.4rem .6rem;margin:.2rem 0}#out{margin-top:1rem;white-space:pre-wrap}</style>
</head><body>
<script>
const param = (n) => new URLSearchParams(location.search).get(n) || "";
const last = () => decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const show = (t) => { document.getElementById("out").textContent = t; };
async function gql(query, variables, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = "Bearer " + token;
  const r = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return r.json();
}
const failed = (r) => r.errors ? r.errors.map((e) => e.message).join("; ") : "";
</script>
"#;

const FOOT: &str = r#"<p id="out" role="status"></p>
<p><small>The shop's web app will take over these pages; until then they use the API at <a href="/graphql">/graphql</a>.</small></p>
</body></html>
"#;

const VERIFY: &str = r#"<h1>Confirm your e-mail address</h1>
<button id="go">Confirm</button>
<script>
document.getElementById("go").onclick = async () => {
  const r = await gql("mutation($t: String!) { verifyEmail(token: $t) { email } }", { t: param("token") });
  show(failed(r) || "Thank you: " + r.data.verifyEmail.email + " is confirmed.");
};
</script>
"#;

const RESET: &str = r#"<h1>Choose your password</h1>
<p>At least 10 characters; not a common password, not your e-mail address or name.</p>
<input id="pw" type="password" autocomplete="new-password" aria-label="New password">
<button id="go">Save password</button>
<script>
document.getElementById("go").onclick = async () => {
  const r = await gql("mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
    { t: param("token"), p: document.getElementById("pw").value });
  show(failed(r) || "Your password is set. You can sign in now.");
};
</script>
"#;

const SIGN_IN: &str = r#"<h1>Sign in</h1>
<input id="email" type="email" autocomplete="username" aria-label="E-mail">
<input id="pw" type="password" autocomplete="current-password" aria-label="Password">
<button id="go">Sign in</button>
<script>
document.getElementById("go").onclick = async () => {
  const r = await gql("mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken user { name } } }",
    { e: document.getElementById("email").value, p: document.getElementById("pw").value });
  if (failed(r)) { show(failed(r)); return; }
  sessionStorage.setItem("shop.token", r.data.login.accessToken);
  show("Welcome, " + r.data.login.user.name + ".");
};
</script>
"#;

const ORDER: &str = r#"<h1>Your order</h1>
<p id="hint">Sign in on <a href="/sign-in">/sign-in</a> in this tab to see it.</p>
<script>
(async () => {
  const token = sessionStorage.getItem("shop.token");
  if (!token) return;
  const r = await gql("query($id: ID!) { order(id: $id) { number status total { amount currency } lines { name quantity } } }", { id: last() }, token);
  if (failed(r)) { show(failed(r)); return; }
  const o = r.data.order;
  show("Order " + o.number + ": " + o.status + "\n" + o.lines.map((l) => l.quantity + " × " + l.name).join("\n"));
})();
</script>
"#;

const PRODUCT: &str = r#"<h1>Your product's stock</h1>
<p id="hint">Sign in on <a href="/sign-in">/sign-in</a> in this tab as the product's supplier to see it.</p>
<script>
(async () => {
  const token = sessionStorage.getItem("shop.token");
  if (!token) return;
  const r = await gql("query($id: ID!) { stockLevel(productId: $id) { quantity available lowStockThreshold product { name } } }", { id: last() }, token);
  if (failed(r)) { show(failed(r)); return; }
  const s = r.data.stockLevel;
  show((s.product ? s.product.name : last()) + ": " + s.available + " available of " + s.quantity + " on hand (alert at " + s.lowStockThreshold + ").");
})();
</script>
"#;

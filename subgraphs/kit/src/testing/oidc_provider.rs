//! A real OpenID Connect provider for tests: `tests/oidc-provider/server.mjs` (the npm
//! `oidc-provider` package) on a free loopback port, and a stand-in for the person's
//! browser that walks its redirects.
//!
//! Needs Node and `npm ci --prefix tests/oidc-provider`. Without them the tests that use
//! it are skipped, unless `SHOP_REQUIRE_OIDC=1` (set by CI) makes that a failure.

// Test support: a provider that misbehaves fails the test, by panicking like a test does.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The storefront callback the tests register; nothing listens there, the browser
/// stand-in stops when the provider redirects to it.
pub const TEST_REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// The running provider; stopped when dropped.
pub struct OidcTestProvider {
    issuer: String,
    /// The redirect URIs registered for the `shop` client.
    redirects: Vec<String>,
    http: reqwest::Client,
    _child: Child,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc-provider")
}

impl OidcTestProvider {
    /// Starts one, or `None` (with a note) when Node or the package is missing.
    pub async fn start(test: &str) -> Option<OidcTestProvider> {
        Self::start_with_redirects(test, &[TEST_REDIRECT_URI]).await
    }

    /// One whose `shop` client may also send people back to `redirects` (a web app's
    /// callback page, say), besides [`TEST_REDIRECT_URI`].
    pub async fn start_with_redirects(test: &str, redirects: &[&str]) -> Option<OidcTestProvider> {
        // The test redirect stays registered: the company app's client uses it too.
        let mut redirects: Vec<String> = redirects.iter().map(|r| r.to_string()).collect();
        if !redirects.iter().any(|r| r == TEST_REDIRECT_URI) {
            redirects.push(TEST_REDIRECT_URI.to_string());
        }
        let dir = provider_dir();
        let installed = dir.join("node_modules/oidc-provider/package.json").exists();
        let required = std::env::var("SHOP_REQUIRE_OIDC").is_ok_and(|v| v == "1");
        if !installed {
            assert!(
                !required,
                "SHOP_REQUIRE_OIDC is set but {} has no node_modules: run `npm ci --prefix tests/oidc-provider`",
                dir.display()
            );
            eprintln!(
                "{test}: OpenID Connect provider skipped (run `npm ci --prefix tests/oidc-provider`)"
            );
            return None;
        }
        let mut child = match Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("REDIRECT_URIS", redirects.join(","))
            // The provider exits when its stdin closes: a crashed test leaves nothing.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    !required,
                    "SHOP_REQUIRE_OIDC is set but node cannot start: {e}"
                );
                eprintln!("{test}: OpenID Connect provider skipped (node: {e})");
                return None;
            }
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    return Some(issuer.trim().to_string());
                }
            }
            None
        })
        .await;
        let issuer = match ready {
            Ok(Some(issuer)) => issuer,
            _ => panic!("the OpenID Connect test provider did not start"),
        };
        // The provider writes notices later; a closed pipe would end it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(OidcTestProvider {
            issuer,
            redirects,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            _child: child,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `SHOP_OIDC_PROVIDERS`-style configuration of our users subgraph as the `shop`
    /// client of this provider.
    pub fn shop_client_json(&self, name: &str) -> serde_json::Value {
        serde_json::json!({
            "name": name,
            "display_name": "Test ID",
            "issuer": self.issuer,
            "client_id": "shop",
            "client_secret": "shop-test-secret",
            "redirect_uris": self.redirects,
        })
    }

    /// Plays the person at the provider: opens `authorization_url` as `account` (one of
    /// server.mjs's accounts), approves, and returns the query of the redirect back to
    /// us (`code` and `state`, or `error`).
    pub async fn authorize(
        &self,
        authorization_url: &str,
        account: &str,
    ) -> BTreeMap<String, String> {
        let mut url = reqwest::Url::parse(authorization_url).expect("authorization URL");
        url.query_pairs_mut().append_pair("login_hint", account);
        let mut cookies: BTreeMap<String, String> = BTreeMap::new();
        for _ in 0..10 {
            if self
                .redirects
                .iter()
                .any(|r| url.as_str().starts_with(r.as_str()))
            {
                return url.query_pairs().into_owned().collect();
            }
            let cookie = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let resp = self
                .http
                .get(url.clone())
                .header("cookie", cookie)
                .send()
                .await
                .expect("provider answers");
            for value in resp.headers().get_all("set-cookie") {
                let text = value.to_str().unwrap_or_default();
                let pair = text.split(';').next().unwrap_or_default();
                if let Some((k, v)) = pair.split_once('=') {
                    cookies.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
            let status = resp.status();
            let Some(location) = resp.headers().get("location").cloned() else {
                let body = resp.text().await.unwrap_or_default();
                panic!("the provider stopped the sign-in ({status}): {body}");
            };
            url = url
                .join(location.to_str().expect("location"))
                .expect("redirect URL");
        }
        panic!("too many redirects at the provider");
    }

    /// An access token the provider issues to `store-app`, a company's own application,
    /// for our API: a JWT (RS256) for audience `shop-api` with `realm_access.roles`.
    pub async fn app_access_token(&self, account: &str) -> String {
        let verifier = "store-app-pkce-verifier-0123456789-abcdefghijklmnop";
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let mut url = reqwest::Url::parse(&format!("{}/auth", self.issuer)).expect("url");
        url.query_pairs_mut()
            .append_pair("client_id", "store-app")
            .append_pair("response_type", "code")
            .append_pair("scope", "openid catalog:write inventory:write")
            .append_pair("redirect_uri", TEST_REDIRECT_URI)
            .append_pair("state", "app-state-1")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let back = self.authorize(url.as_str(), account).await;
        let code = back
            .get("code")
            .unwrap_or_else(|| panic!("no code: {back:?}"));
        let resp: serde_json::Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth("store-app", Some("store-app-secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", TEST_REDIRECT_URI),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .expect("token endpoint")
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .expect("token JSON");
        resp["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {resp}"))
            .to_string()
    }
}

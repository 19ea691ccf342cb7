//! A browser as far as the web app's forms need one: keeps the session cookie, does not
//! follow redirects (tests look at them), and reads what pages say.

use std::time::Duration;

pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub html: String,
    pub location: Option<String>,
}

impl Page {
    /// The CSRF token the page's forms carry.
    pub fn csrf(&self) -> String {
        between(&self.html, "name=\"csrf\" value=\"", "\"")
            .unwrap_or_else(|| panic!("no form on the page: {}", self.html))
    }

    /// Every distinct `/product/{id}` link on the page, in order.
    pub fn product_links(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for part in self.html.split("href=\"/product/").skip(1) {
            let id: String = part.chars().take_while(|c| *c != '"').collect();
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }
}

/// The text between the first `start` and the following `end`.
pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].to_string())
}

impl Browser {
    /// `base` is the web app's address, ending with `/`.
    pub fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: base.trim_end_matches('/').to_string(),
            cookie: None,
        }
    }

    async fn read(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().expect("cookie");
            let pair = v.split(';').next().unwrap_or_default();
            assert!(v.contains("HttpOnly") && v.contains("SameSite=Lax"), "{v}");
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair.to_string())
            };
        }
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().expect("location").to_string());
        Page {
            status,
            html: resp.text().await.expect("body"),
            location,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.expect("the web app answers");
        self.read(resp).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.expect("the web app answers");
        self.read(resp).await
    }

    /// Posts, expects a redirect, and opens where it leads.
    pub async fn submit(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let sent = self.post(path, form).await;
        assert_eq!(sent.status, 303, "{path}: {}", sent.html);
        let to = sent.location.expect("a redirect");
        self.get(&to).await
    }
}

impl Browser {
    /// Opens an event stream page (`EventSource` style: a GET with the cookie) and
    /// returns the `data` of `event` events as they come, until `until` holds for one
    /// or `wait` passes.
    pub async fn events_until(
        &self,
        path: &str,
        event: &str,
        wait: Duration,
        until: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        use futures::StreamExt;
        let mut req = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("accept", "text/event-stream");
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.expect("the stream opens");
        assert_eq!(resp.status(), 200, "{path}");
        let mut body = resp.bytes_stream();
        let mut buffer = String::new();
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let name = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(str::trim);
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if name == Some(event) {
                    let v: serde_json::Value = serde_json::from_str(&data).expect("JSON data");
                    let done = until(&v);
                    seen.push(v);
                    if done {
                        return seen;
                    }
                }
            }
            match tokio::time::timeout_at(deadline, body.next()).await {
                Ok(Some(Ok(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return seen,
            }
        }
    }
}

impl Browser {
    /// A browser signed in through the sign-in form; the page it lands on.
    pub async fn signed_in(base: &str, email: &str, password: &str) -> (Browser, Page) {
        let mut b = Browser::new(base);
        let csrf = b.get("/sign-in").await.csrf();
        let page = b
            .submit(
                "/sign-in",
                &[("csrf", &csrf), ("email", email), ("password", password)],
            )
            .await;
        (b, page)
    }

    /// Signed in as one of the demo accounts (the sign-in must work).
    pub async fn demo_account(base: &str, email: &str) -> Browser {
        let (b, page) = Browser::signed_in(base, email, shop::seed::DEMO_PASSWORD).await;
        assert_eq!(page.status, 200, "{email}: {}", page.html);
        b
    }
}

impl Browser {
    /// Posts a form with a file (as a browser sends `enctype="multipart/form-data"`):
    /// `fields` in order, then the file as `file`.
    pub async fn upload(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Page {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str("text/csv")
            .expect("mime");
        form = form.part("file", part);
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .multipart(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.expect("the web app answers");
        self.read(resp).await
    }

    /// A download: status, headers and bytes.
    pub async fn download(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.expect("the web app answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.expect("body").to_vec())
    }
}

//! A browser stand-in for in-process page tests: keeps cookies, sends forms
//! with the session's CSRF token, follows no redirect by itself.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::app::{Answer, TestApp};

/// A browser stand-in: keeps cookies, follows nothing by itself.
pub struct Visitor<'a> {
    app: &'a TestApp,
    pub cookies: BTreeMap<String, String>,
}

impl<'a> Visitor<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Visitor {
            app,
            cookies: BTreeMap::new(),
        }
    }

    /// A visitor signed in as `user`.
    pub async fn signed_in(app: &'a TestApp, user: &str, password: &str) -> Self {
        let mut visitor = Visitor::new(app);
        let answer = visitor.login(user, password).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
        visitor
    }

    pub async fn login(&mut self, user: &str, password: &str) -> Answer {
        let page = self.get("/login").await;
        let csrf = csrf_of(&page);
        self.post(
            "/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
        .await
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let request = Request::get(path).header(header::COOKIE, self.cookie_header());
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request).await
    }

    /// Posts a form of the current session, with its CSRF token.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = csrf_of(&self.get("/").await);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    pub async fn send(&mut self, request: Request<Body>) -> Answer {
        let answer = self.app.send(request).await;
        for cookie in answer.set_cookies() {
            let (pair, attributes) = cookie.split_once(';').unwrap_or((&cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        answer
    }

    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join("; ")
    }
}

pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first CSRF token in a page's forms.
pub fn csrf_of(page: &Answer) -> String {
    let html = page.text();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a csrf field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The `.flash` message of a page, if any.
pub fn flash_of(page: &Answer) -> Option<String> {
    let html = page.text();
    let start = html.find("class=\"flash ")?;
    let rest = &html[start..];
    let text_start = rest.find('>')? + 1;
    Some(rest[text_start..].split('<').next()?.to_owned())
}

pub fn location(answer: &Answer) -> &str {
    answer.header("location")
}

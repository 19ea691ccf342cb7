//! The pages, one handler each; each names the operation it sends.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::{ApiError, Web};

/// Renders a template into a response (a template error is ours: a 500 page).
fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page that could not get its data: the reason in words, never a raw code.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    message: String,
}

fn failed(e: ApiError) -> Response {
    tracing::warn!(error = ?e, "a page's API call failed");
    let (status, message) = match &e {
        ApiError::Unreachable(_) => (
            StatusCode::BAD_GATEWAY,
            "The shop cannot be reached right now. Please try again in a moment.".to_string(),
        ),
        ApiError::Refused { message, .. } => (StatusCode::BAD_GATEWAY, message.clone()),
    };
    render(
        status,
        ErrorPage {
            title: "Something went wrong".into(),
            message,
        },
    )
}

pub async fn not_found() -> Response {
    render(
        StatusCode::NOT_FOUND,
        ErrorPage {
            title: "Page not found".into(),
            message: "There is no page at this address.".into(),
        },
    )
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../assets/site.css"),
    )
        .into_response()
}

const HOME: &str = "query Home { catalogs(first: 50) { edges { node { id name description supplier { name } categories { name children { name } } } } } }";

#[derive(Deserialize)]
struct HomeData {
    catalogs: Connection<CatalogCard>,
}

#[derive(Deserialize)]
pub(crate) struct Connection<T> {
    edges: Vec<Edge<T>>,
}

#[derive(Deserialize)]
struct Edge<T> {
    node: T,
}

#[derive(Deserialize)]
pub(crate) struct CatalogCard {
    pub id: String,
    pub name: String,
    pub description: String,
    pub supplier: Option<Named>,
    pub categories: Vec<CategoryLink>,
}

#[derive(Deserialize)]
pub(crate) struct Named {
    pub name: String,
}

#[derive(Deserialize)]
pub(crate) struct CategoryLink {
    pub name: String,
    #[serde(default)]
    pub children: Vec<CategoryLink>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    catalogs: Vec<CatalogCard>,
}

/// `/`: the catalogs and their categories.
pub async fn home(State(web): State<Arc<Web>>) -> Response {
    match web
        .api
        .run::<HomeData>(HOME, serde_json::json!({}), None)
        .await
    {
        Ok(d) => render(
            StatusCode::OK,
            HomePage {
                catalogs: d.catalogs.edges.into_iter().map(|e| e.node).collect(),
            },
        ),
        Err(e) => failed(e),
    }
}

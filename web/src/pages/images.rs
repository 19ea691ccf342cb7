//! The demo catalog's pictures: `/images/demo/{color}/{thing}.svg` draws a tile in the
//! product's colour with its name, so the demo shop looks like a shop without an image
//! host. Suppliers' own images are URLs and never come here.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Fill and outline per colour name the demo uses; others are grey.
fn paint(color: &str) -> (&'static str, &'static str) {
    match color {
        "red" => ("#d64545", "#a83232"),
        "blue" => ("#2f6fd6", "#2254a6"),
        "green" => ("#2e9e5b", "#217445"),
        "black" => ("#2b2b2b", "#000000"),
        "white" => ("#fbfbfb", "#b8bcc2"),
        "orange" => ("#e8892b", "#b8661a"),
        _ => ("#8a8f98", "#6a6f78"),
    }
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

pub async fn demo(Path((color, file)): Path<(String, String)>) -> Response {
    let Some(thing) = file.strip_suffix(".svg") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let label: String = thing.replace('-', " ").chars().take(40).collect();
    let label = escape(&label);
    let (fill, line) = paint(&color);
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 640 480\" role=\"img\">\
         <rect width=\"640\" height=\"480\" fill=\"#f3f1ec\"/>\
         <circle cx=\"320\" cy=\"200\" r=\"120\" fill=\"{fill}\" stroke=\"{line}\" stroke-width=\"6\"/>\
         <text x=\"320\" y=\"400\" font-family=\"system-ui, sans-serif\" font-size=\"40\" text-anchor=\"middle\" fill=\"#1b1f24\">{label}</text>\
         </svg>"
    );
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            // An image, never a document that runs anything.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        svg,
    )
        .into_response()
}

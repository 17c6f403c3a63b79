//! The embedded web page: chain status, a trace-code lookup and the consumer
//! trace page `/t/{code}`. One static HTML file compiled into the binary, no
//! CDN, works offline; it renders from the JSON API.

use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("../assets/index.html");

pub async fn index() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

pub async fn trace_page(Path(_code): Path<String>) -> impl IntoResponse {
    // The page reads the code from its own URL.
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

//! The embedded web UI: one HTML shell, a stylesheet and a script, compiled
//! into the binary (no CDN, no build step, works offline). The script picks
//! the page from the URL and renders it from the JSON API:
//! `/` home and look-up, `/t/{code}` consumer trace page, `/s/{uscc}` subject
//! page (主体码, 企业画像, credit report), `/dashboard` regulator dashboard,
//! `/explorer` chain explorer. `/verify`, the evidence verifier, is a page
//! of its own (verify.html, verify.js).

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

const PAGE: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
/// The evidence verifier (`/verify`): its own page and script, so the
/// verification code stays small enough to audit on its own.
const VERIFY_PAGE: &str = include_str!("../assets/verify.html");
const VERIFY_JS: &str = include_str!("../assets/verify.js");
/// Sign-in with a key file (RFC 9421 in WebCrypto), shared by both pages.
const SIGNIN_JS: &str = include_str!("../assets/signin.js");

/// Assets change only with the binary; `no-cache` makes a browser revalidate
/// after an upgrade instead of running an old script against a new API.
const CACHE: &str = "no-cache";

fn html() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        PAGE,
    )
        .into_response()
}

pub async fn index() -> Response {
    html()
}

pub async fn trace_page(Path(_code): Path<String>) -> Response {
    // The page reads the code from its own URL.
    html()
}

/// The in-browser evidence verifier; `?tx={id}` fetches that bundle.
pub async fn verify_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        VERIFY_PAGE,
    )
        .into_response()
}

/// Every other page: the script routes on the path.
pub async fn page() -> Response {
    html()
}

pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (body, kind) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "verify.js" => (VERIFY_JS, "text/javascript; charset=utf-8"),
        "signin.js" => (SIGNIN_JS, "text/javascript; charset=utf-8"),
        _ => return Err(ApiError::not_found("asset", &file)),
    };
    Ok((
        [(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, CACHE)],
        body,
    )
        .into_response())
}

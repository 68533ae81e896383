//! Static files, compiled into the binary so it runs from anywhere with nothing beside it.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const STYLE: &str = include_str!("../../../static/style.css");
const SCRIPT: &str = include_str!("../../../static/app.js");

/// Serves `/static/{file}`.
pub async fn serve(file: web::Path<String>) -> HttpResponse {
    let (body, ct) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => {
            return crate::web::error_page(actix_web::http::StatusCode::NOT_FOUND, "There is no such file here.");
        }
    };
    HttpResponse::Ok()
        .content_type(ct)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

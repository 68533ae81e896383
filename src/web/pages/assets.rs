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
            return HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("not found\n");
        }
    };
    HttpResponse::Ok()
        .content_type(ct)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

//! `GET /openapi.json` and `GET /docs` (Swagger UI, served from the binary: no CDN).

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::http::AppState;

/// Serves `api` as JSON and through Swagger UI.
pub fn router(api: OpenApi) -> Router<AppState> {
    Router::from(SwaggerUi::new("/docs").url("/openapi.json", api))
}

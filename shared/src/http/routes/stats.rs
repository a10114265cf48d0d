//! Stats area: what the dashboard's tiles show.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::stats::{DashboardStats, GraphStats};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard_stats)).routes(routes!(graph_stats))
}

/// The dashboard's statistics, the same object `stats_update` messages carry.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "stats",
    responses(
        (status = 200, description = "Current statistics", body = DashboardStats),
        (status = 503, description = "The store cannot answer", body = ErrorBody),
    )
)]
pub async fn dashboard_stats(State(state): State<AppState>) -> Result<Json<DashboardStats>, ApiError> {
    Ok(Json(state.stats.dashboard().await?))
}

/// The lineage graph's size by node and relationship type.
#[utoipa::path(
    get,
    path = "/api/v1/graph/stats",
    tag = "stats",
    responses(
        (status = 200, description = "Graph counts", body = GraphStats),
        (status = 503, description = "The store cannot answer", body = ErrorBody),
    )
)]
pub async fn graph_stats(State(state): State<AppState>) -> Result<Json<GraphStats>, ApiError> {
    Ok(Json(state.stats.graph().await?))
}

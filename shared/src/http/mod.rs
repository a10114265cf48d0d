//! HTTP: the routers, grouped by area, and the one function that turns them into an app.
//!
//! Each area ([`routes::activity`], [`routes::admin`], [`routes::chat`], [`routes::lineage`], [`routes::stats`]) is an
//! [`OpenApiRouter`] whose handlers carry their OpenAPI description, so the document cannot miss a
//! route. A host merges the areas it serves (the node: all of them plus its WebSocket routes; a
//! Lambda function: its own area) and calls [`into_app`], which adds the OpenAPI document, Swagger UI,
//! the 404 fallback and the middleware every host shares.

pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;

#[cfg(test)]
mod tests;

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::activity::ActivityRecorder;
use crate::chat::Models;
use crate::config::Settings;
use crate::realtime::Broadcaster;
use crate::restart::Restarter;
use crate::stats::{LiveGauges, StatsService, StatsTiming};
use crate::store::Stores;
use crate::work::CpuWork;

/// Everything a route may use; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

/// The contents of [`AppState`].
pub struct AppContext {
    pub settings: Settings,
    pub stores: Stores,
    pub activity: ActivityRecorder,
    pub stats: StatsService,
    pub broadcaster: Arc<dyn Broadcaster>,
    pub restarter: Arc<dyn Restarter>,
    /// The chat provider and the models of each mode.
    pub models: Models,
    /// CPU-heavy work of questions (chat's name matching, "did you mean" lists), off the async workers.
    pub cpu: CpuWork,
    /// Parsing and resolving uploads, off the async workers: a gate of its own, so a large
    /// ingestion never makes questions wait.
    pub ingest_cpu: CpuWork,
    pub started: Instant,
}

impl AppState {
    pub fn new(
        settings: Settings,
        stores: Stores,
        activity: ActivityRecorder,
        broadcaster: Arc<dyn Broadcaster>,
        restarter: Arc<dyn Restarter>,
    ) -> Self {
        let timing = StatsTiming {
            cache_for: Duration::from_millis(settings.stats_cache_ms),
            trend_window: Duration::from_secs(u64::from(settings.stats_trend_window_hours) * 3600),
            snapshot_every: Duration::from_secs(u64::from(settings.stats_snapshot_interval_minutes) * 60),
        };
        let stats = StatsService::new(stores.clone(), broadcaster.clone(), Arc::new(LiveGauges::default()), timing);
        let models = Models::from_settings(&settings.chat);
        AppState(Arc::new(AppContext {
            settings,
            stores,
            activity,
            stats,
            broadcaster,
            restarter,
            models,
            cpu: CpuWork::for_this_machine(),
            ingest_cpu: CpuWork::for_this_machine(),
            started: Instant::now(),
        }))
    }

    /// A state for tools that run the core without serving dashboards (the CLI writing a database
    /// file, benchmarks, in-process tests): the stores `settings` name, an inline activity recorder,
    /// nobody to broadcast to, and no restart.
    pub async fn standalone(settings: Settings) -> Result<Self, crate::store::StoreError> {
        let stores = Stores::open(&settings).await?;
        let activity = ActivityRecorder::inline(stores.activity.clone(), settings.spill_path());
        Ok(AppState::new(settings, stores, activity, Arc::new(crate::realtime::NoListeners), Arc::new(crate::restart::RestartUnsupported)))
    }

    /// Seconds since this process started serving.
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

impl Deref for AppState {
    type Target = AppContext;

    fn deref(&self) -> &AppContext {
        &self.0
    }
}

/// Every HTTP area the core defines (the node serves them all).
pub fn all_routes() -> OpenApiRouter<AppState> {
    routes::admin::router()
        .merge(routes::stats::router())
        .merge(routes::activity::router())
        .merge(routes::lineage::router())
        .merge(routes::chat::router())
}

/// The OpenAPI document describing exactly `routes` (what `/openapi.json` serves for them).
pub fn openapi_document(routes: OpenApiRouter<AppState>) -> utoipa::openapi::OpenApi {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(routes).into_openapi()
}

/// Finishes a host's routes into a servable app: adds `/openapi.json` and `/docs` describing exactly
/// these routes, the contract-shaped 404, and the shared middleware.
pub fn into_app(routes: OpenApiRouter<AppState>, state: AppState) -> Router {
    let (router, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(routes).split_for_parts();
    finish(router, api, state)
}

/// Like [`into_app`], but `/openapi.json` and `/docs` describe `documented` (for a function that
/// serves part of an API and documents the whole of it).
pub fn into_app_documenting(routes: OpenApiRouter<AppState>, documented: utoipa::openapi::OpenApi, state: AppState) -> Router {
    let (router, _) = routes.split_for_parts();
    finish(router, documented, state)
}

fn finish(router: Router<AppState>, api: utoipa::openapi::OpenApi, state: AppState) -> Router {
    let router = router.merge(routes::docs::router(api)).fallback(routes::fallback);
    middleware::apply(router, &state).with_state(state)
}

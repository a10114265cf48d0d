//! The routes, one module per area. Each area's `router()` lists its handlers with `routes!`, which
//! also registers them in the OpenAPI document.

pub mod activity;
pub mod admin;
pub mod chat;
pub mod docs;
pub mod lineage;
pub mod stats;

use axum::extract::Request;

use crate::error::ApiError;

/// Answers requests no route matches.
pub async fn fallback(request: Request) -> ApiError {
    ApiError::not_found(format!("no route matches {} {}", request.method(), request.uri().path()))
}

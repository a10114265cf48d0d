//! Restarting the service, as an admin action. Each host says what a restart means for it.
//!
//! On the node it is "answer, tell the clients, drain, flush, come back"; in the cloud it is "tell the
//! clients, then cycle the functions' execution environments". The admin route only calls
//! [`Restarter::restart`] and answers `{"status": "restarting"}`.

use async_trait::async_trait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// Work to run once the response has been sent (see [`crate::http::middleware::after_response`]).
pub type AfterResponse = Box<dyn FnOnce() + Send + Sync>;

/// What the host will do.
pub struct RestartPlan {
    /// How the host restarts: `exec`, `exit` or `redeploy`.
    pub mode: &'static str,
    /// Run after the answer is sent; the node starts its restart here so the caller hears first.
    pub after_response: Option<AfterResponse>,
}

impl std::fmt::Debug for RestartPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestartPlan").field("mode", &self.mode).field("after_response", &self.after_response.is_some()).finish()
    }
}

/// `POST /admin/restart`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RestartResponse {
    /// Always `restarting`.
    pub status: &'static str,
    /// How the host restarts: `exec`, `exit` or `redeploy`.
    pub mode: &'static str,
}

/// Restarts the service.
#[async_trait]
pub trait Restarter: Send + Sync + 'static {
    async fn restart(&self, requested_by: &str) -> Result<RestartPlan, ApiError>;
}

/// For hosts that cannot restart themselves: answers 501 with a hint.
pub struct RestartUnsupported;

#[async_trait]
impl Restarter for RestartUnsupported {
    async fn restart(&self, _requested_by: &str) -> Result<RestartPlan, ApiError> {
        Err(ApiError::new(http::StatusCode::NOT_IMPLEMENTED, "restart_unsupported", "this host cannot restart itself")
            .with_component("restart")
            .with_hint("restart the process with your supervisor"))
    }
}

//! Restart in the cloud: tell the connected clients, then cycle every function's execution
//! environments by bumping a configuration generation through the Lambda API. Lambda starts fresh
//! environments for the new configuration; invocations under way finish on the old ones.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::Environment;

use crate::error::ApiError;
use crate::realtime::{Broadcaster, ServerMessage};
use crate::restart::{RestartPlan, Restarter};

/// The environment variable bumped on every function to cycle its environments.
pub const GENERATION_VARIABLE: &str = "TRIBUTARY_CONFIG_GENERATION";

/// Cycles the stack's functions.
pub struct LambdaRestarter {
    client: Client,
    functions: Vec<String>,
    broadcaster: Arc<dyn Broadcaster>,
}

impl LambdaRestarter {
    /// A restarter for `functions`, with the Lambda endpoint from the standard AWS settings
    /// (`AWS_ENDPOINT_URL_LAMBDA` points it at a local stand-in).
    pub async fn new(functions: Vec<String>, broadcaster: Arc<dyn Broadcaster>) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        LambdaRestarter { client: Client::new(&config), functions, broadcaster }
    }

    async fn bump(&self, function: &str) -> Result<String, ApiError> {
        let failed = |action: &str, error: String| {
            ApiError::unavailable("lambda", "restart_failed", format!("could not {action} the configuration of {function}"))
                .with_source(anyhow::anyhow!(error))
        };
        let current = self
            .client
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|error| failed("read", aws_smithy_types::error::display::DisplayErrorContext(&error).to_string()))?;
        // The whole environment is replaced, so carry every other variable over unchanged.
        let mut variables = current.environment().and_then(|environment| environment.variables()).cloned().unwrap_or_default();
        let generation = variables.get(GENERATION_VARIABLE).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0) + 1;
        variables.insert(GENERATION_VARIABLE.to_owned(), generation.to_string());
        self.client
            .update_function_configuration()
            .function_name(function)
            .environment(Environment::builder().set_variables(Some(variables)).build())
            .send()
            .await
            .map_err(|error| failed("update", aws_smithy_types::error::display::DisplayErrorContext(&error).to_string()))?;
        Ok(generation.to_string())
    }
}

#[async_trait]
impl Restarter for LambdaRestarter {
    async fn restart(&self, requested_by: &str) -> Result<RestartPlan, ApiError> {
        if self.functions.is_empty() {
            return Err(ApiError::new(http::StatusCode::NOT_IMPLEMENTED, "restart_unsupported", "no functions are configured to restart")
                .with_hint("the stack sets TRIBUTARY_FUNCTIONS to the functions a restart cycles"));
        }
        // Clients first: they reconnect to fresh environments.
        if let Err(error) = self.broadcaster.broadcast(ServerMessage::restarting("redeploy requested by an administrator", 2000)).await {
            tracing::warn!(%error, "could not tell the clients about the restart");
        }
        for function in &self.functions {
            let generation = self.bump(function).await?;
            tracing::info!(function, generation, requested_by, "cycled a function's execution environments");
        }
        Ok(RestartPlan { mode: "redeploy", after_response: None })
    }
}

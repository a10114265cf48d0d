//! Restart in the cloud: tell the connected clients, then cycle every function's execution
//! environments by bumping a configuration generation through the Lambda API. Lambda starts fresh
//! environments for the new configuration; invocations under way finish on the old ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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

    /// A function's environment and revision, refusing configurations whose variables cannot be
    /// read (a KMS failure would otherwise make us write an empty environment over them).
    async fn read(&self, function: &str) -> Result<(HashMap<String, String>, Option<String>), ApiError> {
        let current = self
            .client
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|error| failed(function, "read", aws_smithy_types::error::display::DisplayErrorContext(&error).to_string()))?;
        if let Some(error) = current.environment().and_then(|environment| environment.error()) {
            return Err(failed(function, "read", format!("its environment cannot be read: {:?}", error.message())));
        }
        let variables = current.environment().and_then(|environment| environment.variables()).cloned().unwrap_or_default();
        Ok((variables, current.revision_id().map(str::to_owned)))
    }

    /// Bumps the generation, keeping every other variable, on the revision just read; retries a few
    /// times while another update of the function is under way.
    async fn bump(&self, function: &str) -> Result<u64, ApiError> {
        for attempt in 0..UPDATE_ATTEMPTS {
            let (mut variables, revision) = self.read(function).await?;
            let generation = variables.get(GENERATION_VARIABLE).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0) + 1;
            variables.insert(GENERATION_VARIABLE.to_owned(), generation.to_string());
            let updated = self
                .client
                .update_function_configuration()
                .function_name(function)
                .set_revision_id(revision)
                .environment(Environment::builder().set_variables(Some(variables)).build())
                .send()
                .await;
            match updated {
                Ok(_) => return Ok(generation),
                // Changed meanwhile (a deployment, another restart): read again and retry.
                Err(error)
                    if attempt + 1 < UPDATE_ATTEMPTS
                        && error
                            .as_service_error()
                            .is_some_and(|error| error.is_resource_conflict_exception() || error.is_precondition_failed_exception()) =>
                {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt + 1))).await;
                }
                Err(error) => {
                    return Err(failed(function, "update", aws_smithy_types::error::display::DisplayErrorContext(&error).to_string()));
                }
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// Attempts at one function's update while it conflicts with another.
const UPDATE_ATTEMPTS: u32 = 4;

fn failed(function: &str, action: &str, error: String) -> ApiError {
    ApiError::unavailable("lambda", "restart_failed", format!("could not {action} the configuration of {function}"))
        .with_hint("retry in a minute; a deployment may be under way")
        .with_source(anyhow::anyhow!(error))
}

#[async_trait]
impl Restarter for LambdaRestarter {
    async fn restart(&self, requested_by: &str) -> Result<RestartPlan, ApiError> {
        if self.functions.is_empty() {
            return Err(ApiError::new(http::StatusCode::NOT_IMPLEMENTED, "restart_unsupported", "no functions are configured to restart")
                .with_component("restart")
                .with_hint("the stack sets TRIBUTARY_FUNCTIONS to the functions a restart cycles"));
        }
        // Every configuration must be readable before anyone is told a restart is coming.
        for function in &self.functions {
            self.read(function).await?;
        }
        // Clients next: they reconnect to fresh environments.
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

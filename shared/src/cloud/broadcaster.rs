//! The cloud's [`Broadcaster`]: the API Gateway Management API (`@connections`), fed by the
//! connection registry in the store.
//!
//! A broadcast lists the connections page by page and posts to each page with bounded concurrency,
//! reading the next page while the current page's posts are in flight. A connection that answers Gone
//! (410) has left: exactly those are removed from the registry; any other failure is counted and
//! left for the next tick. The same client also talks to a socket node's `@connections` API,
//! which is how local cloud runs reach real WebSocket clients.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use futures::{StreamExt, stream};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::realtime::{BroadcastError, BroadcastReport, Broadcaster, ConnectionId, Frame, ServerMessage};
use crate::store::{ConnectionStore, ListedConnection, StoreError};

/// What one post did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    Delivered,
    /// The connection is gone (410); it has been removed from the registry.
    Gone,
    Failed(String),
}

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FanOut {
    pub delivered: u64,
    pub gone: u64,
    pub failed: u64,
    /// Connections sent their `connection_ack` on the way.
    pub acknowledged: u64,
    pub duration_ms: u64,
}

/// Adds the `@connections` credential to each request, after it is signed (it is not part of the
/// signature, and API Gateway's own API never gets it unless configured to).
struct PresentToken(SecretString);

impl std::fmt::Debug for PresentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresentToken(..)")
    }
}

impl Intercept for PresentToken {
    fn name(&self) -> &'static str {
        "PresentToken"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context.request_mut().headers_mut().insert("x-api-key", self.0.expose_secret().to_owned());
        Ok(())
    }
}

/// Posts to connections through `@connections`.
pub struct ApiGatewayBroadcaster {
    client: Option<Client>,
    connections: Arc<dyn ConnectionStore>,
    concurrency: usize,
    page_size: u32,
    stats_interval_seconds: u64,
    /// The live count, reused briefly: counting reads the whole registry.
    count: tokio::sync::Mutex<Option<(Instant, u64)>>,
}

/// How long a connection count is reused.
const COUNT_REUSE: std::time::Duration = std::time::Duration::from_millis(250);

impl ApiGatewayBroadcaster {
    /// A broadcaster posting to `callback_url` (`None`: not configured; every send fails clearly),
    /// presenting `token` with each call when there is one (a socket node's `@connections` API asks
    /// for it).
    pub async fn new(
        callback_url: Option<&str>,
        token: Option<&str>,
        connections: Arc<dyn ConnectionStore>,
        concurrency: usize,
        page_size: u32,
        stats_interval_seconds: u64,
    ) -> Self {
        let client = match callback_url {
            Some(url) => {
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
                let mut config = aws_sdk_apigatewaymanagement::config::Builder::from(&shared).endpoint_url(url);
                if let Some(token) = token {
                    config = config.interceptor(PresentToken(SecretString::from(token.to_owned())));
                }
                Some(Client::from_conf(config.build()))
            }
            None => None,
        };
        ApiGatewayBroadcaster {
            client,
            connections,
            concurrency: concurrency.max(1),
            page_size,
            stats_interval_seconds,
            count: tokio::sync::Mutex::new(None),
        }
    }

    fn client(&self) -> Result<&Client, BroadcastError> {
        self.client.as_ref().ok_or_else(|| {
            BroadcastError::Unavailable(anyhow::anyhow!("WEBSOCKET_CALLBACK_URL is not set: there is no @connections API to post to"))
        })
    }

    /// Posts `data` to one connection; a Gone connection is removed from the registry.
    pub async fn post(&self, id: &ConnectionId, data: &[u8]) -> PostOutcome {
        let client = match self.client() {
            Ok(client) => client,
            Err(error) => return PostOutcome::Failed(error.to_string()),
        };
        match client.post_to_connection().connection_id(id.as_str()).data(Blob::new(data)).send().await {
            Ok(_) => PostOutcome::Delivered,
            Err(error) if error.as_service_error().is_some_and(|error| error.is_gone_exception()) => {
                if let Err(error) = self.connections.remove_connection(id).await {
                    tracing::warn!(connection_id = %id, %error, "could not remove a gone connection; the next tick retries");
                }
                PostOutcome::Gone
            }
            Err(error) => PostOutcome::Failed(aws_smithy_types::error::display::DisplayErrorContext(&error).to_string()),
        }
    }

    /// Sends `frame` to every registered connection. With `acknowledge`, a connection that has not
    /// had its `connection_ack` gets it first (API Gateway cannot send during `$connect`).
    pub async fn fan_out(&self, frame: &Frame, acknowledge: bool) -> Result<FanOut, StoreError> {
        let started = Instant::now();
        let mut summary = FanOut::default();
        let mut page = self.connections.list_connections(None, self.page_size).await?;
        loop {
            let posts = stream::iter(page.connections)
                .map(|connection| self.deliver(connection, frame, acknowledge))
                .buffer_unordered(self.concurrency)
                .collect::<Vec<_>>();
            // The next page is read while this one's posts are in flight.
            let (outcomes, next) = match page.next {
                Some(cursor) => {
                    let (outcomes, next) = tokio::join!(posts, self.connections.list_connections(Some(cursor), self.page_size));
                    (outcomes, Some(next?))
                }
                None => (posts.await, None),
            };
            for (outcome, acknowledged) in outcomes {
                match outcome {
                    PostOutcome::Delivered => summary.delivered += 1,
                    PostOutcome::Gone => summary.gone += 1,
                    PostOutcome::Failed(_) => summary.failed += 1,
                }
                summary.acknowledged += u64::from(acknowledged);
            }
            match next {
                Some(next) => page = next,
                None => break,
            }
        }
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// Posts to one connection (its acknowledgement first, if due). Never fails the fan-out: what
    /// goes wrong for one connection is counted against it.
    async fn deliver(&self, connection: ListedConnection, frame: &Frame, acknowledge: bool) -> (PostOutcome, bool) {
        let mut acknowledged = false;
        if acknowledge && !connection.acknowledged {
            let ack = ServerMessage::connection_ack(connection.id.as_str(), self.stats_interval_seconds).to_frame();
            match self.post(&connection.id, ack.bytes()).await {
                PostOutcome::Delivered => {
                    acknowledged = true;
                    // Not marked: the next tick acknowledges it again, which clients tolerate.
                    if let Err(error) = self.connections.mark_acknowledged(&connection.id).await {
                        tracing::warn!(connection_id = %connection.id, %error, "could not note an acknowledgement");
                    }
                }
                other => return (other, false),
            }
        }
        let outcome = self.post(&connection.id, frame.bytes()).await;
        if let PostOutcome::Failed(error) = &outcome {
            tracing::debug!(connection_id = %connection.id, %error, "post to a connection failed");
        }
        (outcome, acknowledged)
    }
}

#[async_trait]
impl Broadcaster for ApiGatewayBroadcaster {
    async fn broadcast(&self, message: ServerMessage) -> Result<BroadcastReport, BroadcastError> {
        self.client()?;
        let summary = self.fan_out(&message.to_frame(), false).await.map_err(|error| BroadcastError::Unavailable(error.into()))?;
        Ok(BroadcastReport { delivered: summary.delivered, dropped: summary.gone + summary.failed, deferred: false })
    }

    async fn send_to(&self, connection: &ConnectionId, message: ServerMessage) -> Result<(), BroadcastError> {
        self.client()?;
        match self.post(connection, message.to_frame().bytes()).await {
            PostOutcome::Delivered => Ok(()),
            PostOutcome::Gone => Err(BroadcastError::UnknownConnection(connection.clone())),
            PostOutcome::Failed(error) => Err(BroadcastError::Unavailable(anyhow::anyhow!(error))),
        }
    }

    async fn connection_count(&self) -> Result<u64, BroadcastError> {
        let mut cached = self.count.lock().await;
        if let Some((counted, count)) = *cached
            && counted.elapsed() < COUNT_REUSE
        {
            return Ok(count);
        }
        let count = self.connections.count_connections().await.map_err(|error| BroadcastError::Unavailable(error.into()))?;
        *cached = Some((Instant::now(), count));
        Ok(count)
    }
}

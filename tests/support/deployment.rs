//! One HTTP suite, every host: the node on SQLite, the node on DynamoDB, and the Lambda functions
//! (under `cargo lambda watch`) on DynamoDB. A [`Deployment`] is one of them, started fresh.

use serde_json::Value;

use crate::{NodeOptions, TestFunctions, TestNode};

/// Which host serves the HTTP routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    NodeOnSqlite,
    NodeOnDynamodb,
    Functions,
}

/// A running host with a fresh store.
pub enum Deployment {
    Node(TestNode),
    Functions(TestFunctions),
}

impl Deployment {
    /// Starts `kind` with the extra environment in `options` (only `env` applies to functions).
    pub async fn start(kind: HostKind, options: NodeOptions) -> Deployment {
        match kind {
            HostKind::NodeOnSqlite => Deployment::Node(TestNode::start_with(options).await),
            HostKind::NodeOnDynamodb => Deployment::Node(TestNode::start_with(options.dynamodb(&crate::aws::fresh_table())).await),
            HostKind::Functions => {
                let mut env = crate::aws::dynamodb_env(&crate::aws::fresh_table());
                env.extend(options.env);
                Deployment::Functions(TestFunctions::start(env).await)
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        match self {
            Deployment::Node(node) => node.url(path),
            Deployment::Functions(functions) => functions.url(path),
        }
    }

    /// `host:port` clients address.
    pub fn authority(&self) -> String {
        match self {
            Deployment::Node(node) => node.addr.to_string(),
            Deployment::Functions(functions) => format!("127.0.0.1:{}", functions.port),
        }
    }

    /// The store backend `/health` should report.
    pub fn backend(&self) -> &'static str {
        match self {
            Deployment::Node(node) if !node.on_dynamodb() => "sqlite",
            _ => "dynamodb",
        }
    }

    /// The activity recorder's mode `/health` should report.
    pub fn recorder_mode(&self) -> &'static str {
        match self {
            Deployment::Node(_) => "background",
            Deployment::Functions(_) => "inline",
        }
    }

    pub async fn poll_json(&self, path: &str, done: impl FnMut(&Value) -> bool) -> Value {
        crate::poll_json(&self.url(path), done).await
    }
}

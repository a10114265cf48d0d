//! Black-box tests: each test starts the real binaries (the socket node, or the Lambda functions
//! under `cargo lambda watch`) on free ports with fresh stores, and talks to them as a client would.
//! The HTTP suite runs on every host: the node on SQLite, the node on DynamoDB, and the functions on
//! DynamoDB, with the same assertions.

/// Expands each `async fn name(kind: HostKind)` into one test per host.
macro_rules! on_every_host {
    ($($name:ident),* $(,)?) => {
        mod on_node_with_sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(support::HostKind::NodeOnSqlite).await
            })*
        }
        mod on_node_with_dynamodb {
            $(#[tokio::test]
            async fn $name() {
                super::$name(support::HostKind::NodeOnDynamodb).await
            })*
        }
        mod on_functions {
            $(#[tokio::test]
            async fn $name() {
                super::$name(support::HostKind::Functions).await
            })*
        }
    };
}

mod activity;
mod api_fuzz;
mod chat;
mod cloud;
mod docs;
mod faults;
mod hostile;
mod http_contract;
mod lineage;
mod outage;
mod restart;
mod web;
mod websocket;

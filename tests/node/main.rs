//! Black-box tests of the socket node: each test starts the real `tributary-node` binary on a free
//! port with a fresh SQLite file and talks to it as a client would.

mod activity;
mod docs;
mod http_contract;
mod restart;
mod websocket;

//! `tributary-chat-stream`: the chat routes through Lambda response streaming, behind a function URL
//! in `RESPONSE_STREAM` mode, so that `POST /api/chat/deep/stream` sends each SSE frame as the
//! provider produces it.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary_core::cloud::run_streaming_http_function(tributary_core::http::routes::chat::router()).await
}

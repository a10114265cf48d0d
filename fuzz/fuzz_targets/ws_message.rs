//! Fuzz target `ws_message`: arbitrary bytes as a dashboard's WebSocket text frame (decoded as UTF-8
//! lossily, as a text frame must be UTF-8), through `realtime::protocol::parse` and the reply path
//! both hosts share, `realtime::protocol::respond` (the node's socket task and the cloud's `$default`
//! route call it), against a real stats service over a SQLite store. No network is involved.
//!
//! Checked, besides "no panic": `parse` agrees with a plain reading of the frame (a JSON object
//! whose `type` is `ping` or `get_stats` is that message, anything else is refused), its refusal
//! echoes a bounded amount of the input, the reply has the matching type, and the reply's frame is
//! a JSON envelope `{type, data, timestamp}` within the size limit the server keeps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tributary_core::realtime::protocol::{self, ClientMessage};
use tributary_core::realtime::{MessageType, ServerMessage};

/// The largest message the server sends (`realtime::message::MAX_MESSAGE_BYTES`, a private module).
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = protocol::parse(&text);

    // The oracle: what the frame says it is, read without the protocol's types.
    let value: Option<Value> = serde_json::from_str(&text).ok();
    let kind = value.as_ref().and_then(|value| value.get("type")).and_then(Value::as_str);
    match (&parsed, kind) {
        (Ok(ClientMessage::Ping), Some("ping")) | (Ok(ClientMessage::GetStats), Some("get_stats")) => {}
        (Ok(message), _) => panic!("{message:?} parsed from a frame of type {kind:?}"),
        (Err(reason), Some("ping" | "get_stats")) => panic!("a {kind:?} frame was refused: {reason}"),
        (Err(reason), _) => {
            // The reason quotes at most 64 characters of the client's `type` (4 bytes each at most)
            // in a sentence of about 60 bytes.
            assert!(reason.len() <= 64 * 4 + 100, "a reason of {} bytes", reason.len());
        }
    }

    let reply: ServerMessage = tributary_fuzz::block_on(protocol::respond(&text, &tributary_fuzz::state().stats));
    let expected = match parsed {
        Ok(ClientMessage::Ping) => MessageType::Pong,
        Ok(ClientMessage::GetStats) => MessageType::StatsUpdate,
        Err(_) => MessageType::Error,
    };
    assert_eq!(reply.kind(), expected, "the reply to {text:?}");

    let frame = reply.to_frame();
    assert!(frame.bytes().len() <= MAX_MESSAGE_BYTES, "a reply frame of {} bytes", frame.bytes().len());
    let envelope: Value = serde_json::from_slice(frame.bytes()).expect("the reply frame is JSON");
    assert_eq!(envelope["type"], expected.as_str(), "{envelope}");
    assert!(envelope["data"].is_object(), "{envelope}");
    assert!(envelope["timestamp"].is_string(), "{envelope}");
});

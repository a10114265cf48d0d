//! A WebSocket spoken by hand over TCP, to do what a well-behaved client library refuses to:
//! send oversized or malformed frames, flood, or stop reading and answering pings.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens a WebSocket by hand to the dashboard endpoint.
pub async fn raw_websocket(addr: SocketAddr) -> TcpStream {
    handshake(TcpStream::connect(addr).await.unwrap(), addr).await
}

/// Opens a WebSocket whose socket can hold only a few KiB the client has not read: one that
/// stops reading then blocks the server's writes after a few messages, not megabytes.
pub async fn raw_websocket_with_small_buffer(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    handshake(socket.connect(addr).await.unwrap(), addr).await
}

async fn handshake(mut stream: TcpStream, addr: SocketAddr) -> TcpStream {
    let handshake = format!(
        "GET /api/v1/ws/dashboard HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        addr
    );
    stream.write_all(handshake.as_bytes()).await.unwrap();
    // Read the 101 response up to its blank line.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

/// A masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=65535 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(index, byte)| byte ^ mask[index % 4]));
    frame
}

/// Reads server frames until a close frame; returns its code.
pub async fn close_code(stream: &mut (impl AsyncRead + Unpin)) -> u16 {
    read_until_close(stream).await.expect("a close frame")
}

/// Reads server frames until a close frame (its code) or the end of the connection (the error:
/// a server that closes a socket with unread data in it resets the connection, and the reset
/// may overtake the close frame).
pub async fn read_until_close(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<u16> {
    loop {
        let mut header = [0u8; 2];
        tokio::time::timeout(crate::PATIENCE, stream.read_exact(&mut header)).await.expect("a frame in time")?;
        let opcode = header[0] & 0x0f;
        let length = match header[1] & 0x7f {
            126 => {
                let mut extended = [0u8; 2];
                stream.read_exact(&mut extended).await?;
                u16::from_be_bytes(extended) as usize
            }
            127 => {
                let mut extended = [0u8; 8];
                stream.read_exact(&mut extended).await?;
                u64::from_be_bytes(extended) as usize
            }
            short => short as usize,
        };
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).await?;
        if opcode == 0x8 {
            return Ok(u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

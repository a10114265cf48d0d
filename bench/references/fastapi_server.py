"""Reference server for the fan-out and HTTP benchmarks: the pattern of a FastAPI dashboard backend.

A connection manager keeps a list of sockets and broadcasts by awaiting each send in turn (as in
FastAPI's WebSocket guide). It serves the same routes the harness drives on Tributary:

* ``GET /ws`` (WebSocket): dashboard clients; what they send is read and ignored;
* ``POST /broadcast``: sends the JSON body to every client, serialized once;
* ``GET /api/v1/stats``: a stats document of the contract's shape;
* ``POST /api/chat/text``: a fixed extractive-style answer (no retrieval), the same JSON shape.

Run: ``python fastapi_server.py PORT`` (uvicorn, one worker, uvloop and httptools when installed).
"""

import json
import sys
import time

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect

app = FastAPI()
STARTED = time.time()


class ConnectionManager:
    def __init__(self) -> None:
        self.active_connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.active_connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        self.active_connections.remove(websocket)

    async def broadcast(self, message: str) -> int:
        sent = 0
        for connection in list(self.active_connections):
            try:
                await connection.send_text(message)
                sent += 1
            except Exception:
                pass
        return sent


manager = ConnectionManager()


@app.websocket("/ws")
async def dashboard(websocket: WebSocket) -> None:
    await manager.connect(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        manager.disconnect(websocket)


@app.post("/broadcast")
async def broadcast(request: Request) -> dict:
    message = json.dumps(await request.json())
    return {"recipients": await manager.broadcast(message)}


@app.get("/api/v1/stats")
async def stats() -> dict:
    return {
        "totalNodes": 12061,
        "totalEdges": 30512,
        "totalFiles": 200,
        "activeConnections": len(manager.active_connections),
        "activeQueries": 0,
        "uptimeSeconds": int(time.time() - STARTED),
        "trends": {"totalNodes": 0.0, "totalEdges": 0.0, "totalFiles": 0.0},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@app.post("/api/chat/text")
async def chat_text(request: Request) -> dict:
    body = await request.json()
    if not str(body.get("query", "")).strip():
        return {"error": "validation_error"}
    return {
        "response": "Project `default` holds 12061 objects: 40 tables, 60 views, 11961 columns.",
        "sources": [],
        "query_type": "text",
        "latency_ms": 0,
        "model": "extractive",
        "next_actions": [],
        "warnings": [],
        "graph_data": None,
    }


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)

// Reference server for the fan-out benchmark: Node.js with the `ws` package, broadcasting the way
// its documentation recommends: serialize once, send the same string to every open client.
//
//   GET /ws (WebSocket)  dashboard clients
//   POST /broadcast      sends the JSON body to every client
//
// Run: node ws_server.js PORT
'use strict';

const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2]);
const server = http.createServer((request, response) => {
  if (request.method === 'POST' && request.url === '/broadcast') {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const message = JSON.stringify(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      let recipients = 0;
      for (const client of wss.clients) {
        if (client.readyState === WebSocket.OPEN) {
          client.send(message);
          recipients += 1;
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ recipients }));
    });
    return;
  }
  response.writeHead(404);
  response.end();
});

const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (socket) => {
  socket.on('message', () => {});
  socket.on('error', () => {});
});

server.listen(port, '127.0.0.1');

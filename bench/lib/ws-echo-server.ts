// A WebSocket echo server for benchmarks (the `ws` package, no compression).
// Usage: node bench/lib/ws-echo-server.ts <port>
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 0);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false, maxPayload: 1 << 20 });
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  socket.on('error', () => socket.terminate());
});
wss.on('listening', () => {
  const a = wss.address();
  console.log(`listening ${typeof a === 'object' && a ? a.port : port}`);
});
process.on('SIGTERM', () => process.exit(0));

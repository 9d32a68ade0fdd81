// A minimal HTTP/1.1 upstream for benchmarks: answers every request with a small fixed body.
// Usage: node bench/lib/http-hello-server.ts <port> [host]
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const host = process.argv[3] ?? '127.0.0.1';
const body = Buffer.from('hello from the upstream\n');

const server = createServer((req, res) => {
  // Drain any request body before answering so the connection stays reusable.
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(port, host, () => {
  const a = server.address();
  console.log(`listening ${typeof a === 'object' && a ? a.port : port}`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});

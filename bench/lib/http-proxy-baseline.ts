// The bare baseline for an HTTP proxy in Node: http-proxy with a keep-alive agent, nothing else
// (no policy, no header rewriting beyond what http-proxy does itself).
// Usage: node bench/lib/http-proxy-baseline.ts <listen port> <upstream host:port>
import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const port = Number(process.argv[2] ?? 0);
const target = process.argv[3];
if (!target) {
  process.stderr.write('usage: http-proxy-baseline.ts <listen port> <upstream host:port>\n');
  process.exit(2);
}

const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: `http://${target}`, agent, xfwd: true });
proxy.on('error', (_err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});
const server = createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  const a = server.address();
  console.log(`listening ${typeof a === 'object' && a ? a.port : port}`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  agent.destroy();
  process.exit(0);
});

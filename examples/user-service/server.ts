// Runs the example UserService: node examples/user-service/server.ts [--port 50051] [--host 127.0.0.1]
// FAIL_CODE=14 starts it failing every call with UNAVAILABLE; DELAY_MS=300 makes it slow.
import { parseArgs } from 'node:util';
import { startUserService } from './user-service.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: process.env.PORT ?? '50051' }, host: { type: 'string', default: '127.0.0.1' } } });
const app = await startUserService({
  host: values.host,
  port: Number(values.port),
  behavior: { failCode: Number(process.env.FAIL_CODE ?? 0), delayMs: Number(process.env.DELAY_MS ?? 0) },
});
process.stderr.write(`${JSON.stringify({ msg: 'UserService listening', address: `${values.host}:${app.port}`, behavior: app.behavior })}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

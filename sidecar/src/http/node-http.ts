import { createRequire } from 'node:module';

/**
 * node:http, loaded with require. An ESM `import … from 'node:http'` builds the module's ESM
 * facade, and building it reads every export — including the lazy `WebSocket`, `CloseEvent` and
 * `MessageEvent` getters, which load Node's bundled undici, web streams and webidl: about 12 MiB of
 * RSS (6 MiB anonymous) in every sidecar, which never uses them. Type-only imports from
 * 'node:http' load nothing and stay as they are; a test keeps runtime imports coming through here.
 */
const http: typeof import('node:http') = createRequire(import.meta.url)('node:http');

export const { Agent, createServer, request, STATUS_CODES } = http;

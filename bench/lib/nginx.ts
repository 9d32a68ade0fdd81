import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect } from '../../lib/net.ts';
import { waitUntil, type Child, type ProcessGroup } from './processes.ts';

export const NGINX = process.env.BENCH_NGINX ?? '/usr/sbin/nginx';

export type NginxRole =
  /** Reverse proxy to `upstream` (host:port) over a keep-alive upstream pool. */
  | { proxyTo: string; keepalive?: number }
  /** Answers every request itself with `body` (200, text/plain). */
  | { staticBody: string }
  /** gRPC reverse proxy (`grpc_pass`, HTTP/2 cleartext both sides) to `upstream` (host:port), keep-alive pool. */
  | { grpcPassTo: string; keepalive?: number };

export interface NginxHandle {
  child: Child;
  port: number;
  /** The temp prefix (config, pid, logs); removed by `cleanup`. */
  dir: string;
  cleanup(): void;
}

/**
 * Runs nginx as an unprivileged foreground process with everything (config, pid, logs, temp
 * paths) in its own temp dir: one worker, no access log, so it is a fair single-core baseline.
 */
export async function startNginx(group: ProcessGroup, name: string, port: number, role: NginxRole): Promise<NginxHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'));
  const location = 'grpcPassTo' in role
    ? `grpc_pass grpc://app;`
    : 'proxyTo' in role
    ? `proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering on;`
    : `default_type text/plain;
            return 200 ${JSON.stringify(role.staticBody)};`;
  const target = 'proxyTo' in role ? role.proxyTo : 'grpcPassTo' in role ? role.grpcPassTo : undefined;
  const upstream = target !== undefined && !('staticBody' in role)
    ? `upstream app {
        server ${target};
        keepalive ${role.keepalive ?? 64};
        keepalive_requests 1000000;
    }`
    : '';
  const conf = `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events {
    worker_connections 16384;
}
http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    ${upstream}
    server {
        listen 127.0.0.1:${port}${'grpcPassTo' in role ? ' http2' : ''};
        location / {
            ${location}
        }
    }
}
`;
  const confPath = join(dir, 'nginx.conf');
  writeFileSync(confPath, conf);
  const child = group.start(name, NGINX, ['-p', dir, '-c', confPath, '-e', join(dir, 'error.log')], { nofile: 32_768 });
  await Promise.race([
    waitUntil(`${name} on port ${port}`, () => canConnect(port), 10_000),
    child.exited.then((code) => {
      throw new Error(`${name} exited (${code}): ${child.stderrTail()}`);
    }),
  ]);
  return { child, port, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

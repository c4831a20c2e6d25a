// A folder served on 127.0.0.1 (an ephemeral port) for browser tests of bundled pages: `/` is a page that loads `entry`.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, resolve, sep } from 'node:path';

const types: Readonly<Record<string, string>> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

export function serveStatic(root: string, entry: string): Promise<{ url: string; close: () => Promise<void> }> {
  const html = `<!doctype html><meta charset="utf-8"><title>normkit test</title><script type="module" src="/${entry}"></script>`;
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const file = resolve(root, path.slice(1));
    if (path === '/favicon.ico') {
      response.writeHead(204).end();
    } else if (path === '/') {
      response.writeHead(200, { 'Content-Type': types['.html'] }).end(html);
    } else if (file.startsWith(root + sep) && existsSync(file)) {
      response.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    } else {
      response.writeHead(404).end();
    }
  });
  return new Promise((done) => {
    server.listen(0, '127.0.0.1', () => {
      const close = () =>
        new Promise<void>((closed) => {
          server.close(() => {
            closed();
          });
        });
      done({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close });
    });
  });
}

// Serves the built page on localhost (Vite's preview server): used by `npm start` and the browser tests.
import { fileURLToPath } from 'node:url';
import type { PreviewServer } from 'vite';
import { preview } from 'vite';

export const configFile = fileURLToPath(new URL('./vite.config.ts', import.meta.url));

export async function servePage(port: number): Promise<{ server: PreviewServer; url: string }> {
  const server = await preview({ configFile, preview: { port, strictPort: port !== 0, host: '127.0.0.1', open: false } });
  const address = server.httpServer.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  return { server, url: `http://127.0.0.1:${actual}/` };
}

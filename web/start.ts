// `npm start`: build the page, serve it on localhost and print the URL. Port: --port N, or PORT, or 5173.
// The start script execs this process, so the SIGINT or SIGTERM npm passes on reaches it: it closes the server and exits.
import { parseArgs } from 'node:util';
import { build } from 'vite';
import { configFile, servePage } from './server.ts';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const port = Number(values.port ?? process.env.PORT ?? 5173);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`normkit: --port/PORT must be an integer from 0 to 65535, got '${values.port ?? process.env.PORT ?? ''}'`);
  process.exit(2);
}
await build({ configFile });
const { server, url } = await servePage(port);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`normkit explainer page: ${signal}, server closed`);
    void server.close().finally(() => process.exit(0));
  });
}
console.log(`normkit explainer page: ${url}`);

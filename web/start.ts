// `npm start`: build the page, serve it on localhost and print the URL. Port: --port N, or PORT, or 5173.
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
const { url } = await servePage(port);
console.log(`normkit explainer page: ${url}`);

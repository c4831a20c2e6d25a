// Node 20 runs no --import preloads in worker threads (Node 22 does), so workers started from source (the
// webgpu backend's GPU worker is a .ts file there) get tsx's loader here: `node --import tsx --require
// ./scripts/tsx-workers.cjs`. Its module-hooks thread runs --require preloads too, and has no parentPort.
const { isMainThread, parentPort } = require('node:worker_threads');

if (!isMainThread && parentPort !== null) require(require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).register();

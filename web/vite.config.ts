// Builds the explainer page; `normkit` resolves to the library's own source (its public API only).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// cross-origin isolation gives the page SharedArrayBuffer: shared wasm memory and Web Worker threads
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  resolve: { alias: { normkit: fileURLToPath(new URL('../src/index.ts', import.meta.url)) } },
  build: { outDir: 'dist', emptyOutDir: true, assetsInlineLimit: 0, chunkSizeWarningLimit: 1000 },
  server: { headers: isolation },
  preview: { headers: isolation },
  logLevel: 'warn',
});

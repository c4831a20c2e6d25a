// Builds the explainer page and the tfjs GPU demo; `normkit` resolves to the library's own source (its public API only).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { mnistAsset } from './mnist-asset.ts';

// cross-origin isolation gives the page SharedArrayBuffer: shared wasm memory and Web Worker threads
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  resolve: {
    alias: [
      { find: /^normkit\/tfjs$/, replacement: fileURLToPath(new URL('../src/tfjs/index.ts', import.meta.url)) },
      { find: /^normkit$/, replacement: fileURLToPath(new URL('../src/index.ts', import.meta.url)) },
    ],
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2000,
    // the explainer, and the tfjs GPU demo (tfjs.html: a conv net on MNIST with and without normkit)
    rolldownOptions: { input: { main: fileURLToPath(new URL('index.html', import.meta.url)), tfjs: fileURLToPath(new URL('tfjs.html', import.meta.url)) } },
  },
  plugins: [mnistAsset()],
  server: { headers: isolation },
  preview: { headers: isolation },
  logLevel: 'warn',
});

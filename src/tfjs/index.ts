/** normkit/tfjs: `await useNormkit(tf)` runs TensorFlow.js's BatchNorm on normkit's kernels (cpu and wasm backends). */
export { useNormkit } from './install.js';
export type { NormkitTfjs, UseNormkitOptions } from './install.js';
export type { BatchNormTrainingOptions, BatchNormTrainingResult } from './op.js';
export type { FallbackListener } from './fallback.js';
export type { Tf, TfBackendName } from './types.js';

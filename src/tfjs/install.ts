/**
 * useNormkit(tf): normkit's kernels inside TensorFlow.js for its cpu, wasm and webgpu backends. tfjs looks a
 * kernel up by (name, backend) on every call, so replacing FusedBatchNorm and registering the fused
 * training kernel and its gradient is enough; tf.layers.batchNormalization's training path is patched
 * to use them. Backends registered later are served when tfjs switches to them (the training kernel's
 * setupFunc runs on setBackend) or at the next training call. The webgl backend keeps tfjs's own kernels,
 * said once (docs/tfjs-gpu.md).
 */
import { NormkitError } from '../errors.js';
import { readOptions } from '../nn/options.js';
import { describeValue } from '../tensor.js';
import { backends } from '../kernels/index.js';
import { wasmReady } from '../kernels/wasm/backend.js';
import type { FallbackListener } from './fallback.js';
import { FallbackNotices } from './fallback.js';
import { FUSED_BATCH_NORM, inferenceKernel } from './inference.js';
import { patchBatchNormalization } from './layer.js';
import type { BatchNormTrainingOptions, BatchNormTrainingResult } from './op.js';
import { batchNormTraining } from './op.js';
import { BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD, trainingGradient, trainingKernels } from './training.js';
import type { KernelConfig, ServedBackendName, Tensor, Tf } from './types.js';
import { isServedBackendName, servedBackendNames } from './types.js';
import { webgpuInferenceKernel, webgpuTrainingKernels } from './webgpu-kernels.js';

export interface UseNormkitOptions {
  /** normkit's kernels: 'wasm' (WebAssembly SIMD; the default where it runs) or 'js'. */
  readonly kernels?: 'wasm' | 'js';
  /** Where the notices of calls left to tfjs go (each distinct case once); default console.warn. */
  readonly onFallback?: FallbackListener;
}

export interface NormkitTfjs {
  /** normkit's kernels in use. */
  readonly kernels: 'wasm' | 'js';
  /** The tfjs backends whose FusedBatchNorm normkit serves now. */
  servedBackends(): ServedBackendName[];
  /** Training-mode batch normalization as one fused, differentiable op (tf.moments + tf.batchNorm in one). */
  batchNormTraining(x: Tensor, options?: BatchNormTrainingOptions): BatchNormTrainingResult;
  /** The fallback notices said so far. */
  readonly fallbacks: readonly string[];
  /** Puts tfjs's own kernels, gradient and layer back; normkit no longer runs in this tf. */
  restore(): void;
}

/** Said once where tfjs's webgl backend is in use. */
export const WEBGL_NOTICE =
  "tfjs's webgl backend keeps tfjs's own BatchNorm kernels: normkit has no WebGL2 programs (docs/tfjs-gpu.md has the measurement and why); normkit serves cpu, wasm and webgpu";

/** One installation per tfjs engine. */
const installed = new WeakMap<object, NormkitTfjs>();

/** The kernel registered for (name, backend), if any (tfjs's getKernel returns undefined where none is). */
function registered(tf: Tf, name: string, backend: string): KernelConfig | undefined {
  return tf.getKernel(name, backend);
}

function replaceKernel(tf: Tf, config: KernelConfig): void {
  if (registered(tf, config.kernelName, config.backendName) !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

/**
 * Installs normkit in `tf` (call after `await tf.ready()`; a second call on the same tf returns the first
 * handle). Training through tf.layers.batchNormalization or handle.batchNormTraining and inference through
 * tf.batchNorm then run normkit's kernels on the cpu and wasm backends.
 */
export async function useNormkit(tf: Tf, options: UseNormkitOptions = {}): Promise<NormkitTfjs> {
  const engine = tf.engine();
  const existing = installed.get(engine);
  if (existing !== undefined) return existing;
  // a JavaScript caller can pass anything: every key and value checked before anything is installed
  const given = readOptions('useNormkit', options, ['kernels', 'onFallback']);
  const { kernels: kernelsGiven, onFallback } = given;
  if (kernelsGiven !== undefined && kernelsGiven !== 'wasm' && kernelsGiven !== 'js') {
    throw new NormkitError('option', `useNormkit: kernels must be 'wasm' or 'js', got ${describeValue(kernelsGiven)}`);
  }
  if (onFallback !== undefined && typeof onFallback !== 'function') {
    throw new NormkitError('option', `useNormkit: onFallback must be a function (message) => void, got ${describeValue(onFallback)}`);
  }
  const listener: FallbackListener | undefined = onFallback === undefined ? undefined : (message) => { Reflect.apply(onFallback, undefined, [message]); };
  const wasm = await wasmReady();
  const kernelsName = kernelsGiven ?? (wasm ? 'wasm' : 'js');
  if (kernelsName === 'wasm' && !wasm) throw new NormkitError('backend', "useNormkit: normkit's wasm kernels do not run here (WebAssembly SIMD); pass { kernels: 'js' }");
  const kernels = backends[kernelsName];
  const notices = new FallbackNotices(listener ?? ((message) => { console.warn(message); }));
  const originals = new Map<ServedBackendName, KernelConfig>();
  const ours = new Map<ServedBackendName, KernelConfig>();
  let active = true;

  /** Serves `backend`'s FusedBatchNorm unless it already is, or tfjs has none registered (not loaded). */
  const serve = (backend: ServedBackendName): void => {
    const current = registered(tf, FUSED_BATCH_NORM, backend);
    if (!active || current === undefined || current === ours.get(backend)) return;
    const mine = backend === 'webgpu' ? webgpuInferenceKernel(current, notices) : inferenceKernel(backend, current, kernels, notices);
    originals.set(backend, current);
    ours.set(backend, mine);
    replaceKernel(tf, mine);
  };
  for (const backend of servedBackendNames) {
    serve(backend);
    const setup = () => { serve(backend); };
    for (const config of backend === 'webgpu' ? webgpuTrainingKernels(setup) : trainingKernels(backend, kernels, setup)) replaceKernel(tf, config);
  }
  // tfjs's webgl backend, where in use: normkit leaves it to tfjs (no WebGL2 programs; docs/tfjs-gpu.md)
  const webglNotice = () => {
    notices.say(WEBGL_NOTICE);
  };
  if (tf.getBackend() === 'webgl') webglNotice();
  tf.registerGradient(trainingGradient(tf));

  const fused = (): boolean => {
    const backend = tf.getBackend();
    if (backend === 'webgl' && active) webglNotice();
    if (!active || !isServedBackendName(backend)) return false;
    serve(backend);
    return true;
  };
  const train = (x: Tensor, opts: BatchNormTrainingOptions = {}) => batchNormTraining(tf, fused, notices, x, opts);
  const unpatch = patchBatchNormalization(tf, train, fused, notices);

  const handle: NormkitTfjs = {
    kernels: kernelsName,
    servedBackends: () => servedBackendNames.filter((b) => active && ours.has(b) && registered(tf, FUSED_BATCH_NORM, b) === ours.get(b)),
    batchNormTraining: train,
    get fallbacks() {
      return notices.said;
    },
    restore: () => {
      if (!active) return;
      active = false;
      for (const [backend, mine] of ours) {
        const original = originals.get(backend);
        if (original !== undefined && registered(tf, FUSED_BATCH_NORM, backend) === mine) replaceKernel(tf, original);
      }
      for (const backend of servedBackendNames) {
        for (const name of [BATCH_NORM_TRAIN, BATCH_NORM_TRAIN_GRAD]) if (registered(tf, name, backend) !== undefined) tf.unregisterKernel(name, backend);
      }
      tf.unregisterGradient(BATCH_NORM_TRAIN);
      unpatch?.();
      installed.delete(engine);
    },
  };
  installed.set(engine, handle);
  return handle;
}

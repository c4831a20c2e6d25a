// One suite over every backend (tfjs-core's describeWithFlags(name, ALL_ENVS, fn)): a suite about numbers is
// declared once with describeBackends and runs on reference, js, wasm and webgpu. A backend that cannot run
// here, or lacks what a test needs (webgpu computes in float32 only), skips each test with the reason, so the
// counts show it; nothing is filtered silently. With NORMKIT_REQUIRE_WEBGPU set (CI), a missing webgpu
// adapter fails every webgpu test instead.
import type { TestContext } from 'node:test';
import { describe, it } from 'node:test';
import { backendNames, backends } from '../src/kernels/index.ts';
import type { BackendName, NormKernels } from '../src/kernels/contract.ts';
import { wasmReady } from '../src/kernels/wasm/backend.ts';
import type { DType } from '../src/tensor.ts';
import { useWebGpu } from './webgpu-setup.ts';

/** What a test needs beyond the backend running: dtypes it computes in, or a gap stated by the suite. */
export interface Needs {
  /** every dtype the test computes in */
  readonly dtype?: DType | readonly DType[];
  /** why the dtype is needed, appended to the skip reason (e.g. 'gradcheck differences in float64') */
  readonly why?: string;
  /** a gap of this backend the suite names itself: the reason, or false */
  readonly skip?: string | false;
}

export type Body = (t: TestContext) => void | Promise<void>;

/** node:test's `it`, skipped with the reason where the backend cannot run here or lacks what the test needs. */
export interface BackendIt {
  (name: string, body: Body): void;
  (name: string, needs: Needs, body: Body): void;
}

export interface BackendEnv {
  readonly name: BackendName;
  readonly kernels: NormKernels;
  /** false where this backend can run a test that needs `needs`, else why not (node:test's skip takes either) */
  readonly lacks: (needs: Needs) => string | false;
  readonly it: BackendIt;
}

/** Why each backend cannot run in this process (null: it runs), settled once per test file. */
async function availability(name: BackendName): Promise<{ reason: string | null; error: Error | null }> {
  if (name === 'wasm') return { reason: (await wasmReady()) ? null : 'the wasm backend does not load here (WebAssembly SIMD missing)', error: null };
  if (name === 'webgpu') {
    try {
      const gpu = await useWebGpu();
      return { reason: gpu.ok ? null : gpu.reason, error: null };
    } catch (error) {
      // NORMKIT_REQUIRE_WEBGPU: no adapter is a failure, reported by every webgpu test
      return { reason: null, error: error instanceof Error ? error : new Error(String(error)) };
    }
  }
  return { reason: null, error: null };
}

const settled = new Map<BackendName, { reason: string | null; error: Error | null }>();
for (const name of backendNames) settled.set(name, await availability(name));

function dtypeGap(kernels: NormKernels, needs: Needs): string | false {
  const wanted = needs.dtype === undefined ? [] : typeof needs.dtype === 'string' ? [needs.dtype] : needs.dtype;
  const missing = wanted.filter((d) => !kernels.dtypes.includes(d));
  if (missing.length === 0) return false;
  const why = needs.why === undefined ? '' : ` (${needs.why})`;
  return `the ${kernels.name} backend computes in ${kernels.dtypes.join(', ')} only, not ${missing.join(', ')}${why}`;
}

export function backendEnv(name: BackendName): BackendEnv {
  const kernels = backends[name];
  const { reason, error } = settled.get(name) ?? { reason: 'not settled', error: null };
  const lacks = (needs: Needs): string | false => reason ?? (dtypeGap(kernels, needs) || needs.skip || false);
  function envIt(testName: string, needsOrBody: Needs | Body, maybeBody?: Body): void {
    const needs = typeof needsOrBody === 'function' ? {} : needsOrBody;
    const body = typeof needsOrBody === 'function' ? needsOrBody : maybeBody;
    if (body === undefined) throw new TypeError(`${testName}: no test body`);
    it(testName, { skip: lacks(needs) }, (t) => {
      if (error !== null) throw error;
      return body(t);
    });
  }
  return { name, kernels, lacks, it: envIt };
}

/** Declares `fn`'s tests once per backend, in a describe named `${name} [backend]`. */
export function describeBackends(name: string, fn: (env: BackendEnv) => void): void {
  for (const backend of backendNames) {
    describe(`${name} [${backend}]`, () => {
      fn(backendEnv(backend));
    });
  }
}

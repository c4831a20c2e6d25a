// NormkitError everywhere in the public API (issue 27): each of these was a TypeError, a RangeError, a
// silently accepted option or a misleading text. Each is now a NormkitError saying what was expected
// and what came, and nothing changed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { NormkitError } from '../src/errors.ts';
import { loadSafetensors, saveSafetensors } from '../src/io/safetensors.ts';
import { freeWasmTensor } from '../src/kernels/wasm/backend.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { foldBatchNorm, fuseForInference } from '../src/nn/fold.ts';
import { Linear } from '../src/nn/linear.ts';
import { Parameter } from '../src/nn/parameter.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { SGD } from '../src/nn/sgd.ts';
import { useNormkit } from '../src/tfjs/install.ts';
import { snapshot } from './helpers.ts';

function construct(Class: new (...args: never[]) => unknown, ...args: unknown[]): unknown {
  const made: unknown = Reflect.construct(Class, args);
  return made;
}

function apply(fn: (...args: never[]) => unknown, ...args: unknown[]): unknown {
  const result: unknown = Reflect.apply(fn, undefined, args);
  return result;
}

function throwsNormkit(action: () => unknown, message: RegExp): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof NormkitError, `not a NormkitError: ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

describe('NormkitError everywhere in the public API', () => {
  it('SGD: params and options checked; unknown options refused', () => {
    throwsNormkit(() => construct(SGD, null, { lr: 0.1 }), /SGD: expected params as an array of Parameter \(model.parameters\(\)\), got null/);
    throwsNormkit(() => construct(SGD, [null], { lr: 0.1 }), /got null at index 0/);
    throwsNormkit(() => construct(SGD, [], null), /SGD: expected options as an object, got null/);
    throwsNormkit(() => construct(SGD, [], { lr: 0.1, momentun: 0.9 }), /unexpected option 'momentun' \(did you mean 'momentum'\?\)/);
    throwsNormkit(() => construct(SGD, [], { lr: 0.1, momentum: -1 }), /momentum must be a finite number >= 0, got -1/);
    throwsNormkit(() => construct(SGD, [], { lr: 0.1, nesterov: true }), /Nesterov momentum requires a momentum > 0/);
  });

  it("SGD's momentum, dampening, weight decay and Nesterov match torch.optim.SGD", (t) => {
    const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
    if (torch.status !== 0) {
      t.skip('PyTorch is not installed here (/usr/bin/python3 -c "import torch")');
      return;
    }
    const grads = [[0.5, -1, 2], [1.5, 0.25, -0.5], [-2, 1, 0.75]];
    const cases = [{ lr: 0.1, momentum: 0.9 }, { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.01 }, { lr: 0.1, momentum: 0.9, nesterov: true }];
    // one python process for every case: torch's result per case, in order
    const script = `import torch, json
out = []
for o in json.loads(${JSON.stringify(JSON.stringify(cases))}):
    p = torch.nn.Parameter(torch.tensor([1., -2., 3.], dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=o['lr'], momentum=o['momentum'], dampening=o.get('dampening', 0), weight_decay=o.get('weightDecay', 0), nesterov=o.get('nesterov', False))
    for g in ${JSON.stringify(grads)}:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    out.append(p.detach().tolist())
print(json.dumps(out))`;
    const run = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const expected = JSON.parse(run.stdout) as number[][];
    cases.forEach((options, k) => {
      const p = new Parameter('weight', 'float64', [3], 0);
      p.data.set([1, -2, 3]);
      const sgd = new SGD([p], options);
      for (const g of grads) {
        p.grad.set(g);
        sgd.step();
      }
      Array.from(p.data).forEach((v, i) => {
        assert.ok(Math.abs(v - expected[k][i]) < 1e-12, `${JSON.stringify(options)}: p[${i}] = ${v}, torch ${expected[k][i]}`);
      });
    });
  });

  it('Sequential: modules checked; a stray key refused under strict, nothing written', () => {
    throwsNormkit(() => construct(Sequential, null), /Sequential: expected modules .* got null at position 0/);
    const model = new Sequential(new Linear(2, 2), new BatchNorm1d(2));
    const before = snapshot(model);
    const state = { ...model.stateDict(), '0.weight': new Float32Array([9, 9, 9, 9]), '2.weight': new Float32Array(2) };
    throwsNormkit(() => {
      model.loadStateDict(state);
    }, /Unexpected key\(s\) in state_dict: "2.weight"/);
    assert.equal(snapshot(model), before);
    model.loadStateDict(state, { strict: false });
    assert.deepEqual(Array.from(model.stateDict()['0.weight'] as Float32Array), [9, 9, 9, 9]);
  });

  it('foldBatchNorm with its arguments swapped, fuseForInference of a layer', () => {
    const linear = new Linear(2, 2);
    const bn = new BatchNorm1d(2);
    throwsNormkit(() => apply(foldBatchNorm, bn, linear), /foldBatchNorm\(linear, bn\): expected a Linear then the BatchNorm1d after it, got a BatchNorm1d and a Linear/);
    throwsNormkit(() => apply(fuseForInference, bn), /fuseForInference: expected a Sequential, got a BatchNorm1d/);
  });

  it('freeWasmTensor(null), Linear float16, virtualBatchSize NaN, a Proxy over a Float32Array', () => {
    throwsNormkit(() => apply(freeWasmTensor, null), /freeWasmTensor: expected a tensor made by wasmTensor, got null/);
    throwsNormkit(() => construct(Linear, 3, 2, { dtype: 'float16' }), /Linear: dtype must be 'float32' or 'float64', got 'float16'/);
    throwsNormkit(() => construct(Linear, 3, 2, { bias: 'no' }), /Linear: bias must be/);
    throwsNormkit(() => construct(BatchNorm1d, 2, { virtualBatchSize: Number.NaN }), /virtualBatchSize must be a positive integer or null, got NaN/);
    const proxy = new Proxy(new Float32Array(8), {});
    throwsNormkit(() => new BatchNorm1d(2).forward({ data: proxy, shape: [4, 2] }), /got an object posing as a Float32Array \(a Proxy or a look-alike, not a real typed array/);
  });

  it('safetensors: bad values, a 10,000-deep header, names __proto__ and constructor kept', () => {
    throwsNormkit(() => saveSafetensors({ a: Int32Array.of(1) } as never), /"a": expected a Float32Array, a Float64Array or an integer, got Int32Array/);
    throwsNormkit(() => apply(saveSafetensors, null), /expected a module or a state dict object, got null/);
    const json = `{"a":${'['.repeat(10000)}${']'.repeat(10000)}}`;
    const head = new TextEncoder().encode(json);
    const file = new Uint8Array(8 + head.length);
    new DataView(file.buffer).setBigUint64(0, BigInt(head.length), true);
    file.set(head, 8);
    throwsNormkit(() => loadSafetensors(file), /tensor "a": expected \{dtype/);
    const state = JSON.parse('{"__proto__": 1, "constructor": 2, "w": 3}') as Record<string, number>;
    state.w = 3;
    const saved = saveSafetensors({ ...state, x: new Float32Array([1, 2]) });
    const loaded = loadSafetensors(saved);
    assert.equal(Object.getPrototypeOf(loaded), null);
    assert.deepEqual(Object.keys(loaded).sort(), ['__proto__', 'constructor', 'w', 'x']);
    assert.equal(loaded.__proto__, 1);
    assert.equal(loaded.constructor, 2);
  });

  it("tfjs: useNormkit's and batchNormTraining's options", async () => {
    await assert.rejects(useNormkit(tf, { kernels: 'gpu' } as never), (error: unknown) => error instanceof NormkitError && /kernels must be 'wasm' or 'js', got 'gpu'/.test(error.message));
    await assert.rejects(useNormkit(tf, { kernel: 'js' } as never), (error: unknown) => error instanceof NormkitError && /unexpected option 'kernel' \(did you mean 'kernels'\?\)/.test(error.message));
    const normkit = await useNormkit(tf, { kernels: 'js', onFallback: () => undefined });
    try {
      const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
      for (const epsilon of [-1, Infinity, Number.NaN, 0]) {
        throwsNormkit(() => normkit.batchNormTraining(x, { epsilon }), /epsilon must be a finite number > 0/);
      }
      throwsNormkit(() => normkit.batchNormTraining(x, { epsilom: 1e-3 } as never), /unexpected option 'epsilom'/);
      throwsNormkit(() => normkit.batchNormTraining(x, { axis: 0.5 }), /axis must be an integer, got 0.5/);
    } finally {
      normkit.restore();
    }
  });
});

// Sequential and Sigmoid load state dicts through nn/state.ts, strict by default, as every other module does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NormkitError } from '../src/errors.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { Linear } from '../src/nn/linear.ts';
import { Sequential } from '../src/nn/sequential.ts';
import { Sigmoid } from '../src/nn/sigmoid.ts';

function model(): Sequential {
  return new Sequential(new Linear(2, 3), new BatchNorm1d(3), new Sigmoid(), new Sequential(new Linear(3, 1)));
}

function isStateDictError(pattern: RegExp): (error: unknown) => boolean {
  return (error) => error instanceof NormkitError && error.code === 'state-dict' && pattern.test(error.message);
}

describe('Sequential.loadStateDict', () => {
  it('refuses keys that belong to no module, with the error every module gives, and writes nothing', () => {
    const m = model();
    const state = { ...model().stateDict(), '4.weight': [1], extra: 2 };
    const before = m.stateDict();
    assert.throws(() => {
      m.loadStateDict(state);
    }, isStateDictError(/^Error\(s\) in loading state_dict for Sequential: Unexpected key\(s\) in state_dict: "4\.weight", "extra"\.$/));
    assert.deepEqual(m.stateDict(), before);
  });

  it('passes strict: false to its modules, which then skip unknown and missing keys', () => {
    const source = model();
    const m = model();
    const { '1.running_mean': runningMean } = source.stateDict();
    m.loadStateDict({ '1.running_mean': runningMean, '2.nothing': 1, '9.weight': [1] }, { strict: false });
    assert.deepEqual(m.stateDict()['1.running_mean'], runningMean);
  });

  it('loads every module of a full state dict, nested ones too', () => {
    const source = model();
    const m = model();
    m.loadStateDict(source.stateDict());
    assert.deepEqual(m.stateDict(), source.stateDict());
  });

  it('refuses a non-object and a bad strict option', () => {
    const m = model();
    // a JavaScript caller can pass anything
    const load: unknown = Reflect.get(m, 'loadStateDict');
    if (typeof load !== 'function') throw new Error('no loadStateDict');
    assert.throws(() => {
      Reflect.apply(load, m, [null]);
    }, isStateDictError(/for Sequential: expected a state dict object/));
    assert.throws(() => {
      Reflect.apply(load, m, [{}, { strict: 'yes' }]);
    }, (e: unknown) => e instanceof NormkitError && e.code === 'option');
  });
});

describe('Sigmoid.loadStateDict', () => {
  it('refuses any key unless strict is false', () => {
    assert.throws(() => {
      new Sigmoid().loadStateDict({ weight: [1] });
    }, isStateDictError(/^Error\(s\) in loading state_dict for Sigmoid: Unexpected key\(s\) in state_dict: "weight"\.$/));
    new Sigmoid().loadStateDict({ weight: [1] }, { strict: false });
    new Sigmoid().loadStateDict({});
  });
});

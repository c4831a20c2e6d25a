// Every number on the page, from normkit's public API: the reference (chain rule through the graph),
// the js kernel's closed form through a BatchNorm1d layer, and gradcheck's central differences.
import type { ReferenceResult } from 'normkit';
import { BatchNorm1d, gradcheck, normView, referenceNorm, tensor } from 'normkit';
import type { Params } from './params.ts';

export interface Model {
  readonly params: Params;
  readonly n: number;
  readonly ref: ReferenceResult;
  /** L = sum dy_i*y_i, the loss whose gradient dL/dy is the given dy. */
  readonly loss: number;
  readonly closedDx: Float64Array;
  readonly numericDx: Float64Array;
  readonly numericDgamma: number;
  readonly numericDbeta: number;
  readonly gradcheckOk: boolean;
}

export function computeModel(params: Params): Model {
  const n = params.x.length;
  const shape = [n, 1];
  const view = normView({ kind: 'batch' }, shape, 'channels-first');
  const ref = referenceNorm({ x: params.x, dy: params.dy, view, gamma: [params.gamma], beta: [params.beta], eps: params.eps });
  const bn = new BatchNorm1d(1, { dtype: 'float64', eps: params.eps, backend: 'js' });
  bn.loadStateDict({ weight: [params.gamma], bias: [params.beta] }, { strict: false });
  const x = tensor(params.x, shape, 'float64');
  bn.forward(x);
  const closedDx = Float64Array.from(bn.backward(tensor(params.dy, shape, 'float64')).data);
  const check = gradcheck(bn, x, { dy: params.dy });
  const [dxEntry, dgammaEntry, dbetaEntry] = check.entries;
  const loss = ref.y.reduce((sum, y, i) => sum + y * params.dy[i], 0);
  return {
    params,
    n,
    ref,
    loss,
    closedDx,
    numericDx: dxEntry.numerical,
    numericDgamma: dgammaEntry.numerical[0],
    numericDbeta: dbetaEntry.numerical[0],
    gradcheckOk: check.ok,
  };
}

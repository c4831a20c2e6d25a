// The training view: a BatchNorm1d(1) takes a few training steps on random batches of its one channel,
// its running statistics moving by momentum (or the cumulative average); then one new batch goes through
// it in eval mode (running statistics) and in train mode (batch statistics). All by normkit's public API.
import { BatchNorm1d, Random, normView, referenceNorm, tensor } from 'normkit';
import { html } from './dom.ts';
import { short } from './format.ts';
import { rich, t } from './i18n/index.ts';
import { stackingTable } from './panels.ts';
import type { Params } from './params.ts';

export const BATCH = 4;
/** The batches' distribution: far enough from running_mean = 0, running_var = 1 for the update to show. */
export const DATA_MEAN = 2;
export const DATA_STD = 1.5;

export interface TrainingStep {
  readonly x: readonly number[];
  /** The batch's mean and biased variance (what train mode normalizes with). */
  readonly mean: number;
  readonly var: number;
  /** The unbiased variance n/(n-1)·var (what updates running_var). */
  readonly varUnbiased: number;
  readonly runningMean: number;
  readonly runningVar: number;
  readonly tracked: number;
}

export interface Training {
  readonly steps: readonly TrainingStep[];
  readonly evalX: readonly number[];
  readonly trainY: readonly number[];
  readonly evalY: readonly number[];
  readonly evalMean: number;
  readonly evalVar: number;
}

/** The batches for a seed: `steps` training batches, then the batch shown in train and eval mode. */
export function batchesOf(seed: number, steps: number): number[][] {
  const random = new Random(seed);
  return Array.from({ length: steps + 1 }, () => Array.from(random.normals(BATCH, DATA_MEAN, DATA_STD)));
}

export function computeTraining(p: Params): Training {
  const layer = new BatchNorm1d(1, { momentum: p.momentum, eps: p.eps, dtype: 'float64', backend: 'js' });
  layer.loadStateDict({ weight: [p.gamma], bias: [p.beta] }, { strict: false });
  const batches = batchesOf(p.seed, p.steps);
  const evalX = batches[p.steps];
  const view = normView({ kind: 'batch' }, [BATCH, 1], 'channels-first');
  const steps = batches.slice(0, p.steps).map((x) => {
    const stats = referenceNorm({ x, dy: x.map(() => 0), view, gamma: [p.gamma], beta: [p.beta], eps: p.eps });
    layer.forward(tensor(x, [BATCH, 1], 'float64'));
    return {
      x,
      mean: stats.mu[0],
      var: stats.var[0],
      varUnbiased: (stats.var[0] * BATCH) / (BATCH - 1),
      runningMean: layer.runningMean?.[0] ?? Number.NaN,
      runningVar: layer.runningVar?.[0] ?? Number.NaN,
      tracked: layer.numBatchesTracked,
    };
  });
  // the same layer's train mode, on a copy so that this batch does not move the statistics shown
  const trainCopy = new BatchNorm1d(1, { momentum: p.momentum, eps: p.eps, dtype: 'float64', backend: 'js' });
  trainCopy.loadStateDict(layer.stateDict());
  const trainY = Array.from(trainCopy.forward(tensor(evalX, [BATCH, 1], 'float64')).data);
  layer.eval();
  const evalY = Array.from(layer.forward(tensor(evalX, [BATCH, 1], 'float64')).data);
  const evalStats = referenceNorm({ x: evalX, dy: evalX.map(() => 0), view, gamma: [p.gamma], beta: [p.beta], eps: p.eps });
  return { steps, evalX, trainY, evalY, evalMean: evalStats.mu[0], evalVar: evalStats.var[0] };
}

const list = (values: readonly number[]) => values.map(short).join(', ');

/** The panel's results: the rule, the steps table, num_batches_tracked, and train beside eval. */
export function renderTraining(p: Params, training: Training): HTMLElement {
  const last = training.steps[training.steps.length - 1];
  const rule = p.momentum === null ? rich('training.ruleCumulative') : rich('training.ruleMomentum', { momentum: String(p.momentum) });
  const stepTable = stackingTable(
    ['step', 'batch', 'batchMean', 'batchVar', 'batchVarUnbiased', 'runningMean', 'runningVar', 'tracked'].map((key) => rich(`training.${key}`)),
    [
      {
        attrs: { 'data-train-step': '0', 'data-running-mean': '0', 'data-running-var': '1', 'data-tracked': '0' },
        cells: [{ text: t('training.start'), heading: true }, { text: '—' }, { text: '—' }, { text: '—' }, { text: '—' }, { text: '0' }, { text: '1' }, { text: '0' }],
      },
      ...training.steps.map((s, k) => ({
        attrs: {
          'data-train-step': String(k + 1),
          'data-x': s.x.join(','),
          'data-batch-mean': String(s.mean),
          'data-batch-var': String(s.var),
          'data-batch-var-unbiased': String(s.varUnbiased),
          'data-running-mean': String(s.runningMean),
          'data-running-var': String(s.runningVar),
          'data-tracked': String(s.tracked),
        },
        cells: [
          { text: String(k + 1), heading: true },
          { text: list(s.x) },
          { text: short(s.mean) },
          { text: short(s.var) },
          { text: short(s.varUnbiased) },
          { text: short(s.runningMean) },
          { text: short(s.runningVar) },
          { text: String(s.tracked) },
        ],
      })),
    ],
    { class: 'training-steps' },
  );
  const evalTable = stackingTable(
    ['x', 'trainY', 'evalY'].map((key) => rich(`training.${key}`)),
    training.evalX.map((x, j) => ({
      attrs: { 'data-eval-row': String(j + 1), 'data-x': String(x), 'data-train-y': String(training.trainY[j]), 'data-eval-y': String(training.evalY[j]) },
      cells: [{ text: short(x), heading: true }, { text: short(training.trainY[j]) }, { text: short(training.evalY[j]) }],
    })),
    { class: 'training-eval' },
  );
  const evalIntro = rich('training.evalIntro', {
    mean: short(training.evalMean),
    var: short(training.evalVar),
    runningMean: short(last.runningMean),
    runningVar: short(last.runningVar),
  });
  return html('div', { 'data-momentum': p.momentum === null ? '' : String(p.momentum), 'data-steps': String(p.steps), 'data-seed': String(p.seed) }, [
    html('p', {}, rule),
    stepTable,
    html('p', { 'data-tracked-note': String(last.tracked) }, rich('training.trackedNote', { count: last.tracked })),
    html('h3', {}, rich('training.evalTitle')),
    html('p', { 'data-eval-mean': String(training.evalMean), 'data-eval-var': String(training.evalVar) }, evalIntro),
    evalTable,
  ]);
}

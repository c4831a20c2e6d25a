/** The demo's charts (Fig. 1 a, b, c of the paper) as Vega-Lite specs, drawn by src/io/chart.ts. */
import type { TopLevelSpec } from 'vega-lite';
import { chartConfig } from '../io/chart.js';
import type { RunResult } from './experiment.js';

const LABELS = { baseline: 'without BN', batchnorm: 'with BN' } as const;
const COLORS = { baseline: '#8c96a8', batchnorm: '#2f6fdb' } as const;
const SIZE = { width: 560, height: 300 } as const;
const step = { field: 'step', type: 'quantitative', title: 'training step', axis: { tickMinStep: 1 } } as const;

/** Fig. 1(a): test accuracy against training step, both networks. */
export function accuracyChart(runs: readonly RunResult[]): TopLevelSpec {
  const values = runs.flatMap((r) => r.checkpoints.map((c) => ({ step: c.step, accuracy: c.accuracy, network: LABELS[r.network] })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'MNIST test accuracy (Ioffe & Szegedy 2015, Fig. 1a)',
    ...SIZE,
    config: chartConfig,
    data: { values },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: step,
      y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', scale: { domain: [0, 1] } },
      color: {
        field: 'network',
        type: 'nominal',
        title: null,
        scale: { domain: runs.map((r) => LABELS[r.network]), range: runs.map((r) => COLORS[r.network]) },
        legend: { orient: 'bottom-right' },
      },
    },
  };
}

/** Fig. 1(b, c): 15th, 50th and 85th percentiles of one last-hidden-layer sigmoid input; the band spans 15th to 85th. */
function percentileChart(run: RunResult, domain: readonly [number, number]): TopLevelSpec {
  // the first checkpoint is step 0, before any training
  const points = run.checkpoints.slice(1);
  const lines = points.flatMap((c) => (['15th', '50th', '85th'] as const).map((percentile, k) => ({ step: c.step, value: c.percentiles[k], percentile })));
  const band = points.map((c) => ({ step: c.step, low: c.percentiles[0], high: c.percentiles[2] }));
  const y = { type: 'quantitative' as const, title: 'sigmoid input', scale: { domain: [domain[0], domain[1]], nice: true, zero: false } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Sigmoid input, last hidden layer, ${LABELS[run.network]}`, subtitle: '15th, 50th and 85th percentiles over the test set' },
    ...SIZE,
    config: chartConfig,
    layer: [
      {
        data: { values: band },
        mark: { type: 'area', opacity: 0.18, color: COLORS[run.network] },
        encoding: { x: step, y: { field: 'low', ...y }, y2: { field: 'high' } },
      },
      {
        data: { values: lines },
        mark: { type: 'line', color: COLORS[run.network] },
        encoding: {
          x: step,
          y: { field: 'value', ...y },
          strokeDash: { field: 'percentile', type: 'nominal', title: 'percentile', scale: { domain: ['15th', '50th', '85th'], range: [[5, 3], [1, 0], [1, 2]] } },
          strokeWidth: { condition: { test: "datum.percentile === '50th'", value: 2.5 }, value: 1.2 },
        },
      },
    ],
  };
}

/** Both percentile panels on one y range, so their drift compares at a glance. */
export function percentileCharts(runs: readonly RunResult[]): TopLevelSpec[] {
  const values = runs.flatMap((r) => r.checkpoints.slice(1).flatMap((c) => [...c.percentiles]));
  const domain = [Math.min(...values), Math.max(...values)] as const;
  return runs.map((r) => percentileChart(r, domain));
}

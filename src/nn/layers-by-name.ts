/** Builds a normalization layer from a PyTorch module name and its options (fixtures, CLI). */
import type { Layout } from '../core/layout.js';
import { NormkitError } from '../errors.js';
import type { BackendName } from '../kernels/contract.js';
import type { DType } from '../core/float.js';
import { describeValue } from '../tensor.js';
import { BatchNorm1d, BatchNorm2d, BatchNorm3d } from './batchnorm.js';
import { GroupNorm } from './groupnorm.js';
import { InstanceNorm1d, InstanceNorm2d, InstanceNorm3d } from './instancenorm.js';
import { LayerNorm } from './layernorm.js';
import type { Normalization } from './normalization.js';
import { checkGhostSplit } from './ghost.js';
import { checkRenorm } from './renorm.js';

export const moduleNames = [
  'BatchNorm1d',
  'BatchNorm2d',
  'BatchNorm3d',
  'InstanceNorm1d',
  'InstanceNorm2d',
  'InstanceNorm3d',
  'GroupNorm',
  'LayerNorm',
] as const;
export type ModuleName = (typeof moduleNames)[number];

export interface BuildOptions {
  readonly dtype: DType;
  readonly backend: BackendName;
  readonly layout: Layout;
}

function isModuleName(name: string): name is ModuleName {
  return (moduleNames as readonly string[]).includes(name);
}

/** Whether the module takes a layout option (LayerNorm normalizes trailing dims whatever the layout). */
export function hasLayout(module: string): boolean {
  return isModuleName(module) && module !== 'LayerNorm';
}

function num(options: Readonly<Record<string, unknown>>, key: string, fallback?: number): number {
  const value = options[key] ?? fallback;
  if (typeof value !== 'number') throw new NormkitError('option', `option ${key} must be a number, got ${describeValue(value)}`);
  return value;
}

function bool(options: Readonly<Record<string, unknown>>, key: string, fallback: boolean): boolean {
  const value = options[key] ?? fallback;
  if (typeof value !== 'boolean') throw new NormkitError('option', `option ${key} must be true or false, got ${describeValue(value)}`);
  return value;
}

/** A layer of `module` configured with PyTorch-named options (numFeatures, eps, momentum, ...). */
export function buildLayer(module: string, options: Readonly<Record<string, unknown>>, build: BuildOptions): Normalization {
  if (!isModuleName(module)) {
    throw new NormkitError('option', `unknown module '${module}': expected one of ${moduleNames.join(', ')}`);
  }
  const { dtype, backend, layout } = build;
  const eps = num(options, 'eps', 1e-5);
  switch (module) {
    case 'BatchNorm1d':
    case 'BatchNorm2d':
    case 'BatchNorm3d': {
      const Layer = { BatchNorm1d, BatchNorm2d, BatchNorm3d }[module];
      const momentum = options.momentum === null ? null : num(options, 'momentum', 0.1);
      const affine = bool(options, 'affine', true);
      const trackRunningStats = bool(options, 'trackRunningStats', true);
      // Ghost BatchNorm and Batch Renormalization (fixtures/variants.json); the layer checks their values
      const virtualBatchSize = options.virtualBatchSize === undefined ? null : num(options, 'virtualBatchSize');
      const ghostSplit = checkGhostSplit(module, options.ghostSplit);
      const renorm = checkRenorm(module, options.renorm);
      return new Layer(num(options, 'numFeatures'), { eps, momentum, affine, trackRunningStats, dtype, backend, layout, virtualBatchSize, ghostSplit, renorm });
    }
    case 'InstanceNorm1d':
    case 'InstanceNorm2d':
    case 'InstanceNorm3d': {
      const Layer = { InstanceNorm1d, InstanceNorm2d, InstanceNorm3d }[module];
      const momentum = num(options, 'momentum', 0.1);
      const affine = bool(options, 'affine', false);
      const trackRunningStats = bool(options, 'trackRunningStats', false);
      return new Layer(num(options, 'numFeatures'), { eps, momentum, affine, trackRunningStats, dtype, backend, layout });
    }
    case 'GroupNorm':
      return new GroupNorm(num(options, 'numGroups'), num(options, 'numChannels'), {
        eps,
        affine: bool(options, 'affine', true),
        dtype,
        backend,
        layout,
      });
    case 'LayerNorm': {
      const shape = options.normalizedShape;
      const dims = typeof shape === 'number' ? [shape] : shape;
      if (!Array.isArray(dims) || !dims.every((d): d is number => typeof d === 'number')) {
        throw new NormkitError('option', `option normalizedShape must be a number or an array of numbers`);
      }
      return new LayerNorm(dims, { eps, elementwiseAffine: bool(options, 'elementwiseAffine', true), dtype, backend });
    }
  }
}

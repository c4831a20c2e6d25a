/** The backend record: every backend behind one contract, so layers and the conformance suite run on any. */
import { NormkitError } from '../errors.js';
import { jsKernels } from './js/norm.js';
import { referenceKernels } from './reference.js';
import type { BackendName, NormKernels } from './types.js';

export const backends: Readonly<Record<BackendName, NormKernels>> = {
  reference: referenceKernels,
  js: jsKernels,
};

export const backendNames: readonly BackendName[] = ['js', 'reference'];

/** The fastest backend available here. */
export const defaultBackend: BackendName = 'js';

export function isBackendName(name: string): name is BackendName {
  return (backendNames as readonly string[]).includes(name);
}

export function getBackend(name: string): NormKernels {
  if (!isBackendName(name)) {
    throw new NormkitError('backend', `unknown backend '${name}': expected one of ${backendNames.join(', ')}`);
  }
  return backends[name];
}

/**
 * Which peers can run here: each peer's systems when its packages resolve (they are imported lazily,
 * inside `prepare`), else the one command that installs what it lacks.
 */
import type { System } from '../types.js';
import { onnxSystem } from './onnx.js';
import { findTorchPython, pytorchSystems } from './pytorch.js';
import { tfjsSystem } from './tfjs.js';
import { tfjsNormkitSystem } from './tfjs-normkit.js';

export interface PeerStatus {
  readonly name: string;
  readonly systems: readonly System[];
  /** Why the peer's rows are absent, with the command that adds them. */
  readonly missing?: string;
}

/** Whether a package resolves from here (as the lazy import will resolve it). */
export function resolves(name: string): boolean {
  try {
    import.meta.resolve(name);
    return true;
  } catch {
    return false;
  }
}

export function npmPeer(name: string, packages: readonly string[], systems: () => System[]): PeerStatus {
  const absent = packages.filter((p) => !resolves(p));
  if (absent.length === 0) return { name, systems: systems() };
  return { name, systems: [], missing: `${absent.join(', ')} not installed: npm install ${absent.join(' ')}` };
}

/** Every peer: tfjs cpu and wasm (stock, and with normkit installed), onnxruntime-node, PyTorch (at 1 thread and at `threads`). */
export async function peerStatus(threads: number): Promise<PeerStatus[]> {
  const tfjs = '@tensorflow/tfjs';
  const torch = await findTorchPython();
  return [
    npmPeer('tfjs', [tfjs], () => [tfjsSystem('cpu'), tfjsSystem('cpu', true), tfjsNormkitSystem('cpu')]),
    npmPeer('tfjs-backend-wasm', [tfjs, '@tensorflow/tfjs-backend-wasm'], () => [tfjsSystem('wasm'), tfjsNormkitSystem('wasm')]),
    npmPeer('onnxruntime-node', ['onnxruntime-node', 'onnx-proto'], () => [onnxSystem(threads)]),
    'reason' in torch
      ? { name: 'pytorch', systems: [], missing: `${torch.reason}: pip install torch (then NORMKIT_TORCH_PYTHON=that python where it is not python3)` }
      : { name: `pytorch (torch ${torch.version}, ${torch.python})`, systems: pytorchSystems({ python: [torch.python], threads: [1, threads] }) },
  ];
}

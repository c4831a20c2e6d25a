/**
 * Which peers can run here: each peer's systems when its packages resolve (they are imported lazily,
 * inside `prepare`), else the one command that installs what it lacks.
 */
import type { System } from '../types.js';
import { onnxSystem } from './onnx.js';
import type { TorchPython } from './pytorch.js';
import { pytorchSystems } from './pytorch.js';
import { standaloneName } from './pytorch-standalone.js';
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

/**
 * Every peer that runs interleaved with normkit: tfjs cpu and wasm (stock, and with normkit installed),
 * onnxruntime-node, and PyTorch only where `pytorchInterleaved` asks (its figure is the standalone one:
 * pytorch-standalone.ts; docs/bench-method.md says why the interleaved rows are slower). `torch`: what
 * findTorchPython found; where it found none, PyTorch is named missing with the install command.
 */
export function peerStatus(threads: number, torch: TorchPython, pytorchInterleaved: boolean): PeerStatus[] {
  const tfjs = '@tensorflow/tfjs';
  const peers = [
    npmPeer('tfjs', [tfjs], () => [tfjsSystem('cpu'), tfjsSystem('cpu', true), tfjsNormkitSystem('cpu')]),
    npmPeer('tfjs-backend-wasm', [tfjs, '@tensorflow/tfjs-backend-wasm'], () => [tfjsSystem('wasm'), tfjsNormkitSystem('wasm')]),
    npmPeer('onnxruntime-node', ['onnxruntime-node', 'onnx-proto'], () => [onnxSystem(threads)]),
  ];
  if ('reason' in torch) return [...peers, { name: 'pytorch', systems: [], missing: `${torch.reason}: pip install torch (then NORMKIT_TORCH_PYTHON=that python where it is not python3)` }];
  if (!pytorchInterleaved) return peers;
  const name = `${standaloneName(torch.version)}-interleaved`;
  return [...peers, { name: `pytorch (torch ${torch.version}, ${torch.python}, interleaved)`, systems: pytorchSystems({ python: [torch.python], threads: [1, threads], name }) }];
}

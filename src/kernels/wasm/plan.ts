/**
 * How the wasm backend runs one view: group mode or row mode, float32 lanes or widened to float64, the
 * threads' shares, and the scratch it needs in wasm memory (statistics, the threads' partial sums,
 * per-column parameters), allocated once per (view, dtype, threads) and kept for the next call.
 */
import type { NormView } from '../../core/layout.js';
import { affineSize, statsCount } from '../../core/layout.js';
import type { DType } from '../../core/float.js';
import type { Block } from './arena.js';
import type { Ptr } from './compiled.js';
import { splitRange } from './pool.js';
import type { State } from './state.js';

/** Runs shorter than this go to row mode, where SIMD runs across columns. */
const GROUP_MODE_MIN_RUN = 8;
/**
 * Float32 statistics groups of at least this many values run in float32 lanes (sums flushed into
 * float64, the mean split hi/lo); smaller ones widen every value to float64: with few values dy can
 * be almost affine in xhat and dx cancels to almost nothing (two values: dx ~ eps), which float32
 * lanes would lose.
 */
const F32_LANES_MIN = 64;
/** Plans kept (their scratch stays allocated); the oldest is dropped beyond this. */
const CACHED_PLANS = 16;

export interface Plan {
  readonly view: NormView;
  readonly f32: boolean;
  /** float32 lanes (large float32 groups) */
  readonly fast: boolean;
  readonly groupMode: boolean;
  /** Threads asked for (ranges may be fewer when there is less work). */
  readonly parts: number;
  /** Each thread's share: statistics groups [q0, q1) in group mode, rows [r0, r1) in row mode. */
  readonly ranges: readonly (readonly [number, number])[];
  /** Group mode with given statistics (eval): each thread's rows [r0, r1) of G*B values, or null when there are fewer rows than threads. */
  readonly rowRanges: readonly (readonly [number, number])[] | null;
  /** A*G statistics, float64 each */
  readonly mean: Ptr;
  readonly variance: Ptr;
  readonly rstd: Ptr;
  /** Row mode, widened: the mean's lost digits (mean + meanLo = hi + lo exactly), A*G float64 */
  readonly meanLo: Ptr;
  /** Per-thread partial sums: three arrays (the third: row mode widened backward only) of `partialLength` float64 per thread, `stride` bytes apart. */
  readonly partials1: Ptr;
  readonly partials2: Ptr;
  readonly partials3: Ptr;
  readonly partialLength: number;
  readonly stride: number;
  /** Row mode: per-column parameters (A*G*B values of 4 bytes in float32 lanes, else 8; room for 8). */
  readonly columns: readonly [Ptr, Ptr, Ptr, Ptr, Ptr, Ptr];
  /** Row mode, float32 lanes: each thread's float32 column sums of one block (2*cols values), `laneStride` bytes apart. */
  readonly lanes: Ptr;
  readonly laneStride: number;
  /** Row mode: dweight and dbias sums, float64 per affine entry. */
  readonly dweight: Ptr;
  readonly dbias: Ptr;
  readonly block: Block;
}

const plans = new Map<string, Plan>();

function build(s: State, view: NormView, dtype: DType, parts: number): Plan {
  const f32 = dtype === 'float32';
  const count = statsCount(view);
  const k = affineSize(view);
  const groupMode = view.inner >= GROUP_MODE_MIN_RUN && count >= parts;
  const fast = f32 && view.span * view.inner >= F32_LANES_MIN;
  const rows = view.outer * view.span;
  const ranges = splitRange(groupMode ? count : rows, parts);
  const rowRanges = groupMode && rows >= parts ? splitRange(rows, parts) : null;
  const colCount = groupMode ? 0 : view.outer * view.groups * view.inner;
  const partialLength = groupMode ? k : colCount;
  const stride = Math.ceil((partialLength * 8) / 16) * 16;
  // 8 bytes a column: float32 lanes use 4, and fall back to the widened path where float32 cannot hold the squares
  const colBytes = Math.ceil((colCount * 8) / 16) * 16;
  const statBytes = Math.ceil((count * 8) / 16) * 16;
  const affineBytes = Math.ceil((k * 8) / 16) * 16;
  // a thread's float32 column sums: two arrays of cols = G*B values
  const laneStride = groupMode ? 0 : Math.ceil((view.groups * view.inner * 8) / 16) * 16;
  const sizes = [statBytes, statBytes, statBytes, statBytes, stride * ranges.length, stride * ranges.length, stride * ranges.length, colBytes, colBytes, colBytes, colBytes, colBytes, colBytes, affineBytes, affineBytes, laneStride * ranges.length];
  const block = s.arena.alloc(sizes.reduce((a, b) => a + b, 0));
  const at: number[] = [];
  let offset = block.offset;
  for (const size of sizes) {
    at.push(offset);
    offset += size;
  }
  return {
    view,
    f32,
    fast,
    groupMode,
    parts,
    ranges,
    rowRanges,
    mean: at[0],
    variance: at[1],
    rstd: at[2],
    meanLo: at[3],
    partials1: at[4],
    partials2: at[5],
    partials3: at[6],
    partialLength,
    stride,
    columns: [at[7], at[8], at[9], at[10], at[11], at[12]],
    dweight: at[13],
    dbias: at[14],
    lanes: at[15],
    laneStride,
    block,
  };
}

let last: Plan | null = null;

function sameView(a: NormView, b: NormView): boolean {
  return a.outer === b.outer && a.span === b.span && a.groups === b.groups && a.inner === b.inner && a.affinePerGroup === b.affinePerGroup;
}

/** The plan for a view and dtype on `parts` threads, built on first use and cached. */
export function planFor(s: State, view: NormView, dtype: DType, parts: number): Plan {
  // a loop calls with one shape: no key to build
  if (last !== null && last.block.live && last.f32 === (dtype === 'float32') && last.parts === parts && sameView(last.view, view)) return last;
  last = planForKey(s, view, dtype, parts);
  return last;
}

function planForKey(s: State, view: NormView, dtype: DType, parts: number): Plan {
  const key = `${view.outer},${view.span},${view.groups},${view.inner},${view.affinePerGroup},${dtype},${parts}`;
  const cached = plans.get(key);
  if (cached !== undefined) {
    // most recently used last
    plans.delete(key);
    plans.set(key, cached);
    return cached;
  }
  const plan = build(s, view, dtype, parts);
  plans.set(key, plan);
  if (plans.size > CACHED_PLANS) {
    const [oldest, old] = plans.entries().next().value ?? [];
    if (oldest !== undefined && old !== undefined) {
      plans.delete(oldest);
      s.arena.free(old.block);
    }
  }
  return plan;
}

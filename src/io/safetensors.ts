/**
 * safetensors (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the data,
 * which the offsets (relative to the data's start) must cover exactly, without holes or overlaps.
 * No maintained npm package parses it (checked), so this reads it by hand: every length and offset is
 * checked against the bytes before any is read, and the whole file before anything is returned.
 */
import { NormkitError } from '../errors.js';
import type { Module, ModuleState } from '../nn/module.js';
import type { DType, FloatArray } from '../core/float.js';
import { allocate, checkDType, describeValue, dtypeOf, formatShape } from '../tensor.js';
import { checkUsable } from '../core/memory.js';
import { plainView } from '../core/typed.js';
import { readOptions } from '../nn/options.js';
import { bfloat16ToNumber, float16ToNumber } from './half.js';
import { numel } from '../core/float.js';

/** Element sizes of the dtypes the format defines; F16, BF16, F32, F64 and I64 load. */
const dtypeSizes: Readonly<Partial<Record<string, number>>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};
const loadable = ['F16', 'BF16', 'F32', 'F64', 'I64'];
/** The reference implementation refuses headers over 100 MB. */
const MAX_HEADER = 100_000_000;

interface Entry {
  readonly key: string;
  readonly dtype: string;
  /** bytes per element */
  readonly size: number;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

function fail(why: string): never {
  throw new NormkitError('state-dict', `safetensors: ${why}`);
}

/** At most 200 characters of a header value's JSON (a deep or huge one is cut, never a stack overflow). */
function shortJson(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    return 'a value too deep to print';
  }
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIndexList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => Number.isSafeInteger(v) && typeof v === 'number' && v >= 0);
}

/** The header's entries, each checked against the data's length; sorted by offset, contiguous from 0 to the end. */
function parseHeader(bytes: Uint8Array): { entries: Entry[]; dataStart: number } {
  if (bytes.length < 8) fail(`file of ${bytes.length} bytes is shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.length - 8)) fail(`header length ${declared} runs past the end of the file (${bytes.length - 8} bytes after the length)`);
  const n = Number(declared);
  if (n > MAX_HEADER) fail(`header length ${n} is over the 100 MB limit`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (error) {
    fail(`header is not UTF-8 JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!isRecord(json)) fail('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const entries: Entry[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (key === '__metadata__') {
      if (!isRecord(value) || !Object.values(value).every((v) => typeof v === 'string')) fail('__metadata__ must map strings to strings');
      continue;
    }
    if (!isRecord(value) || typeof value.dtype !== 'string' || !isIndexList(value.shape) || !isIndexList(value.data_offsets) || value.data_offsets.length !== 2) {
      fail(`tensor "${key}": expected {dtype: string, shape: [non-negative integers], data_offsets: [begin, end]}, got ${shortJson(value)}`);
    }
    const { dtype, shape } = value;
    const size = dtypeSizes[dtype];
    if (size === undefined) fail(`tensor "${key}": unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(dtypeSizes).join(', ')})`);
    const [begin, end] = value.data_offsets;
    if (begin > end || end > dataLength) fail(`tensor "${key}": data_offsets [${begin}, ${end}] out of range (the data has ${dataLength} bytes)`);
    // the count can only match if it fits the data: no overflow past 2^53 is possible below
    const count = numel(shape);
    if (count * size !== end - begin) fail(`tensor "${key}": shape ${formatShape(shape)} of ${dtype} needs ${count * size} bytes, data_offsets give ${end - begin}`);
    entries.push({ key, dtype, size, shape, begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  sorted.forEach((e, k) => {
    const before = k > 0 ? sorted[k - 1] : null;
    if (before !== null && e.begin < before.end) fail(`tensors "${before.key}" and "${e.key}" overlap: data_offsets [${before.begin}, ${before.end}] and [${e.begin}, ${e.end}]`);
  });
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) fail(`bytes ${at} to ${e.begin} of the data belong to no tensor`);
    at = e.end;
  }
  if (at !== dataLength) fail(`the data has ${dataLength} bytes, the tensors cover ${at}`);
  return { entries, dataStart };
}

function readValues(view: DataView, e: Entry, dataStart: number, dtype: DType, key: string): FloatArray | number {
  const count = (e.end - e.begin) / e.size;
  const at = (i: number) => dataStart + e.begin + i * e.size;
  if (e.dtype === 'I64') {
    const values = Array.from({ length: count }, (_, i) => view.getBigInt64(at(i), true));
    if (values.some((v) => v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))) fail(`tensor "${key}": an I64 value beyond 2^53 has no exact number`);
    // a scalar integer is a counter (num_batches_tracked); integer arrays load as floats
    if (e.shape.length === 0) return Number(values[0]);
    return allocate(dtype, count).map((_, i) => Number(values[i]));
  }
  if (!loadable.includes(e.dtype)) fail(`tensor "${key}": dtype ${e.dtype} is valid safetensors but not loadable here (${loadable.join(', ')} are)`);
  const out = allocate(dtype, count);
  for (let i = 0; i < count; i++) {
    const p = at(i);
    out[i] = e.dtype === 'F32' ? view.getFloat32(p, true) : e.dtype === 'F64' ? view.getFloat64(p, true) : e.dtype === 'F16' ? float16ToNumber(view.getUint16(p, true)) : bfloat16ToNumber(view.getUint16(p, true));
  }
  return out;
}

/**
 * A state dict from safetensors bytes: float tensors as arrays of `dtype` (default float64, which holds F16,
 * BF16 and F32 exactly; a layer's loadStateDict then converts to its own dtype), scalar I64 as numbers.
 * Throws a NormkitError on any malformed file, having returned nothing.
 */
export function loadSafetensors(bytes: Uint8Array, options?: { dtype?: DType }): ModuleState {
  if (!(bytes instanceof Uint8Array)) fail(`expected the file as a Uint8Array, got ${describeValue(bytes)}`);
  const given = readOptions('loadSafetensors', options, ['dtype']);
  const dtype = checkDType('loadSafetensors', given.dtype ?? 'float64');
  const { entries, dataStart } = parseHeader(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // a null-prototype map: tensors named __proto__ or constructor are data like any other name
  const state: ModuleState = Object.create(null) as ModuleState;
  for (const e of entries) state[e.key] = readValues(view, e, dataStart, dtype, e.key);
  return state;
}

/** Key to shape for a module's state: parameters keep theirs (Linear's weight is [out, in]), buffers are 1-D. */
export function stateShapes(module: Module): Record<string, readonly number[]> {
  if ('modules' in module && Array.isArray(module.modules)) {
    const children: readonly Module[] = module.modules;
    return Object.fromEntries(children.flatMap((m, i) => Object.entries(stateShapes(m)).map(([k, s]) => [`${i}.${k}`, s])));
  }
  const params = new Map(module.parameters().map((p) => [p.name, p.shape]));
  return Object.fromEntries(Object.entries(module.stateDict()).map(([k, v]) => [k, typeof v === 'number' ? [] : (params.get(k) ?? [v.length])]));
}

function isModule(source: unknown): source is Module {
  return typeof source === 'object' && source !== null && typeof Reflect.get(source, 'stateDict') === 'function' && typeof Reflect.get(source, 'parameters') === 'function';
}

/** A state value as saved: a safe integer (I64), or a plain view of a Float32Array/Float64Array (F32/F64). */
function savedValue(key: string, value: unknown): FloatArray | number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) fail(`"${key}" is ${value}: only integers are stored as numbers (I64)`);
    return value;
  }
  const data = plainView(value);
  if (data === null) fail(`"${key}": expected a Float32Array, a Float64Array or an integer, got ${describeValue(value)}`);
  checkUsable(data, `saveSafetensors: "${key}"`);
  return data;
}

/**
 * safetensors bytes of a module's state (shapes from the module) or of a state dict (arrays 1-D): Float32Array
 * as F32, Float64Array as F64, numbers (num_batches_tracked) as I64 scalars. The header is padded to 8 bytes.
 */
export function saveSafetensors(source: Module | ModuleState): Uint8Array {
  // a JavaScript caller can pass anything: a module, or a state dict of float arrays and integers
  const given: unknown = source;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) fail(`saveSafetensors: expected a module or a state dict object, got ${describeValue(given)}`);
  const state = isModule(given) ? given.stateDict() : given;
  const shapes = isModule(given) ? stateShapes(given) : {};
  // null prototypes: a tensor named __proto__ or constructor is a name like any other
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  header.__metadata__ = { format: 'pt' };
  let offset = 0;
  const parts: { at: number; value: FloatArray | number }[] = [];
  for (const [key, raw] of Object.entries(state)) {
    if (key === '__metadata__') fail('"__metadata__" is the format\'s own key, not a tensor name');
    const value = savedValue(key, raw);
    const dtype = typeof value === 'number' ? 'I64' : dtypeOf(value) === 'float32' ? 'F32' : 'F64';
    const bytes = typeof value === 'number' ? 8 : value.byteLength;
    const shape = (Object.hasOwn(shapes, key) ? shapes[key] : undefined) ?? (typeof value === 'number' ? [] : [value.length]);
    header[key] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    parts.push({ at: offset, value });
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  json += ' '.repeat((8 - (encoder.encode(json).length % 8)) % 8);
  const head = encoder.encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  const start = 8 + head.length;
  for (const { at, value } of parts) {
    if (typeof value === 'number') view.setBigInt64(start + at, BigInt(value), true);
    else if (value instanceof Float32Array) value.forEach((v, i) => { view.setFloat32(start + at + 4 * i, v, true); });
    else value.forEach((v, i) => { view.setFloat64(start + at + 8 * i, v, true); });
  }
  return out;
}

/**
 * The binary frames of the WebSocket group: a 24-byte little-endian header, then the payload (float64
 * values, or UTF-8 text for hello and error frames). Every frame is checked before use: magic, version,
 * kind, the declared length against the bytes that came and the group's limit, world and rank.
 *
 *   0 u32 magic 'NKWS'  4 u16 version  6 u8 kind  7 u8 0  8 u32 step  12 u32 layer  16 u16 world  18 u16 rank  20 u32 payload bytes
 */
import { NormkitError } from '../../errors.js';

export const MAGIC = 0x53574b4e;
export const VERSION = 1;
export const HEADER_BYTES = 24;
/** The layer field of a collective no layer makes (a parameter-gradient all-reduce). */
export const NO_LAYER = 0xffffffff;

export const Kind = {
  /** rank → coordinator: join, with the token as payload */
  hello: 1,
  /** coordinator → ranks: every rank joined */
  ready: 2,
  /** rank → coordinator: values to add up over ranks */
  reduce: 3,
  /** rank → coordinator: values every rank gets from every rank */
  gather: 4,
  /** coordinator → ranks: the step's result */
  result: 5,
  heartbeat: 6,
  /** either way: the group failed (text says which rank and what happened) */
  error: 7,
  /** rank → coordinator: this rank is done and leaves */
  bye: 8,
} as const;
export type FrameKind = (typeof Kind)[keyof typeof Kind];

const kindNames = new Map<number, string>(Object.entries(Kind).map(([name, kind]) => [kind, name]));

export function kindName(kind: number): string {
  return kindNames.get(kind) ?? `unknown kind ${kind}`;
}

export interface FrameHeader {
  readonly kind: FrameKind;
  readonly step: number;
  readonly layer: number;
  readonly world: number;
  readonly rank: number;
}

export interface Frame extends FrameHeader {
  /** the payload bytes (a view into the frame) */
  readonly payload: Uint8Array;
}

export function encodeFrame(header: FrameHeader, payload: Uint8Array = new Uint8Array(0)): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, VERSION, true);
  view.setUint8(6, header.kind);
  view.setUint32(8, header.step, true);
  view.setUint32(12, header.layer, true);
  view.setUint16(16, header.world, true);
  view.setUint16(18, header.rank, true);
  view.setUint32(20, payload.length, true);
  bytes.set(payload, HEADER_BYTES);
  return bytes;
}

/** A frame of float64 values (little-endian, as every platform normkit runs on stores them). */
export function encodeValues(header: FrameHeader, values: Float64Array): Uint8Array<ArrayBuffer> {
  return encodeFrame(header, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

export function encodeText(header: FrameHeader, text: string): Uint8Array<ArrayBuffer> {
  return encodeFrame(header, new TextEncoder().encode(text.slice(0, 4096)));
}

/** The header and payload of `bytes`, or a NormkitError saying what is wrong with it; `maxPayload` bounds the length. */
export function decodeFrame(bytes: Uint8Array, maxPayload: number): Frame {
  if (bytes.length < HEADER_BYTES) throw new NormkitError('backend', `malformed frame: ${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  if (magic !== MAGIC) throw new NormkitError('backend', `malformed frame: magic 0x${magic.toString(16)}, expected 0x${MAGIC.toString(16)}`);
  const version = view.getUint16(4, true);
  if (version !== VERSION) throw new NormkitError('backend', `malformed frame: protocol version ${version}, expected ${VERSION}`);
  const kind = view.getUint8(6);
  if (!kindNames.has(kind)) throw new NormkitError('backend', `malformed frame: unknown kind ${kind}`);
  const length = view.getUint32(20, true);
  if (length > maxPayload) throw new NormkitError('backend', `malformed frame: payload of ${length} bytes, more than the limit of ${maxPayload}`);
  if (length !== bytes.length - HEADER_BYTES) throw new NormkitError('backend', `malformed frame: header says ${length} payload bytes, ${bytes.length - HEADER_BYTES} came`);
  return {
    kind: kind as FrameKind,
    step: view.getUint32(8, true),
    layer: view.getUint32(12, true),
    world: view.getUint16(16, true),
    rank: view.getUint16(18, true),
    payload: bytes.subarray(HEADER_BYTES),
  };
}

/** A frame's payload as float64 values (copied: aligned, and the frame's buffer may be reused). */
export function payloadValues(frame: Frame): Float64Array {
  if (frame.payload.length % 8 !== 0) throw new NormkitError('backend', `malformed frame: ${kindName(frame.kind)} payload of ${frame.payload.length} bytes is not whole float64 values`);
  const values = new Float64Array(frame.payload.length / 8);
  new Uint8Array(values.buffer).set(frame.payload);
  return values;
}

export function payloadText(frame: Frame): string {
  return new TextDecoder().decode(frame.payload);
}

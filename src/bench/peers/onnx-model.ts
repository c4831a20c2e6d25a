/**
 * A one-node ONNX model (BatchNormalization, opset 15) written as protobuf bytes by hand, so the
 * benchmark needs no ONNX tooling. ONNX names the convention: running = momentum*running + (1 - momentum)*batch.
 */
const encoder = new TextEncoder();

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** A length-delimited field (wire type 2). */
function bytesField(field: number, payload: readonly number[] | Uint8Array): number[] {
  return [...varint((field << 3) | 2), ...varint(payload.length), ...payload];
}

function stringField(field: number, text: string): number[] {
  return bytesField(field, encoder.encode(text));
}

function varintField(field: number, value: number): number[] {
  return [...varint(field << 3), ...varint(value)];
}

function floatField(field: number, value: number): number[] {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setFloat32(0, value, true);
  return [...varint((field << 3) | 5), ...bytes];
}

/** ValueInfoProto: a float tensor of the given shape. */
function valueInfo(name: string, shape: readonly number[]): number[] {
  const dims = shape.flatMap((d) => bytesField(1, varintField(1, d)));
  const tensorType = [...varintField(1, 1), ...bytesField(2, dims)];
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}

export interface BatchNormModel {
  readonly bytes: Uint8Array;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

/** BatchNormalization over NCHW input `shape`; training mode also outputs the running statistics. */
export function batchNormModel(shape: readonly number[], eps: number, training: boolean): BatchNormModel {
  const c = shape[1];
  const inputs = ['X', 'scale', 'B', 'input_mean', 'input_var'];
  const outputs = training ? ['Y', 'running_mean', 'running_var'] : ['Y'];
  const attribute = (name: string, body: number[]) => bytesField(5, [...stringField(1, name), ...body]);
  const node = [
    ...inputs.flatMap((n) => stringField(1, n)),
    ...outputs.flatMap((n) => stringField(2, n)),
    ...stringField(3, 'bn'),
    ...stringField(4, 'BatchNormalization'),
    ...attribute('epsilon', [...floatField(2, eps), ...varintField(20, 1)]),
    ...attribute('momentum', [...floatField(2, 0.9), ...varintField(20, 1)]),
    ...attribute('training_mode', [...varintField(3, training ? 1 : 0), ...varintField(20, 2)]),
  ];
  const graph = [
    ...bytesField(1, node),
    ...stringField(2, 'batchnorm'),
    ...bytesField(11, valueInfo('X', shape)),
    ...['scale', 'B', 'input_mean', 'input_var'].flatMap((n) => bytesField(11, valueInfo(n, [c]))),
    ...bytesField(12, valueInfo('Y', shape)),
    ...(training ? ['running_mean', 'running_var'].flatMap((n) => bytesField(12, valueInfo(n, [c]))) : []),
  ];
  const model = [...varintField(1, 8), ...stringField(2, 'normkit-bench'), ...bytesField(7, graph), ...bytesField(8, [...stringField(1, ''), ...varintField(2, 15)])];
  return { bytes: Uint8Array.from(model), inputs, outputs };
}

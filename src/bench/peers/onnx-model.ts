/**
 * A one-node ONNX model (BatchNormalization, opset 15), encoded by onnx-proto's protobufjs classes.
 * ONNX names the convention: running = momentum*running + (1 - momentum)*batch.
 */
import type { onnx as Onnx } from 'onnx-proto';

export interface BatchNormModel {
  readonly bytes: Uint8Array;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

/** BatchNormalization over NCHW input `shape`; training mode also outputs the running statistics. */
export async function batchNormModel(shape: readonly number[], eps: number, training: boolean): Promise<BatchNormModel> {
  // onnx-proto is CommonJS: its namespace is the default export; loaded here so the CLI starts without it
  const { onnx } = (await import('onnx-proto')).default;
  const c = shape[1];
  const inputs = ['X', 'scale', 'B', 'input_mean', 'input_var'];
  const outputs = training ? ['Y', 'running_mean', 'running_var'] : ['Y'];
  const { FLOAT, INT } = onnx.AttributeProto.AttributeType;
  const valueInfo = (name: string, dims: readonly number[]): Onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'normkit-bench',
    opsetImport: [{ domain: '', version: 15 }],
    graph: {
      name: 'batchnorm',
      node: [
        {
          name: 'bn',
          opType: 'BatchNormalization',
          input: inputs,
          output: outputs,
          attribute: [
            { name: 'epsilon', type: FLOAT, f: eps },
            { name: 'momentum', type: FLOAT, f: 0.9 },
            { name: 'training_mode', type: INT, i: training ? 1 : 0 },
          ],
        },
      ],
      input: [valueInfo('X', shape), ...['scale', 'B', 'input_mean', 'input_var'].map((name) => valueInfo(name, [c]))],
      output: [valueInfo('Y', shape), ...(training ? ['running_mean', 'running_var'].map((name) => valueInfo(name, [c])) : [])],
    },
  });
  return { bytes: onnx.ModelProto.encode(model).finish(), inputs, outputs };
}

/**
 * The small conv net the tfjs GPU demo, its browser test and `bench --browser` train with tf.layers:
 * conv2d → batchNormalization → relu → maxPooling2d → conv2d → batchNormalization → relu → flatten → dense,
 * seeded so that two builds start from the same weights (with and without normkit).
 */
import { Random } from '../random.js';

type Tf = typeof import('@tensorflow/tfjs');
type LayersModel = import('@tensorflow/tfjs').Sequential;

export interface ConvNetOptions {
  /** Image side (square, one channel). */
  readonly size: number;
  /** Filters of the two conv layers. */
  readonly filters: readonly [number, number];
  /** SGD learning rate. */
  readonly learningRate: number;
  readonly seed: number;
  /** Without the batchNormalization layers (to measure what they cost in a step); default true. */
  readonly batchNorm?: boolean;
}

export const smallConvNet: ConvNetOptions = { size: 8, filters: [2, 4], learningRate: 0.05, seed: 1 };

/** The MNIST page's net: 28x28 digits. */
export const mnistConvNet: ConvNetOptions = { size: 28, filters: [8, 16], learningRate: 0.1, seed: 1 };

/** The model, compiled with SGD and categorical cross-entropy over 10 classes. */
export function convNet(tf: Tf, options: ConvNetOptions = smallConvNet): LayersModel {
  const { size, filters, learningRate, seed } = options;
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 10 + k });
  const norm = () => (options.batchNorm === false ? [] : [tf.layers.batchNormalization()]);
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [size, size, 1], filters: filters[0], kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(1) }),
      ...norm(),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: filters[1], kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(2) }),
      ...norm(),
      tf.layers.activation({ activation: 'relu' }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: init(3) }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(learningRate), loss: 'categoricalCrossentropy' });
  return model;
}

/**
 * `count` synthetic digit-like images (size x size, values in [0, 1]) with labels 0-9: a bar per label at
 * its own place and angle, plus noise. Deterministic in `seed`; for tests and benchmarks without MNIST.
 */
export function syntheticDigits(count: number, seed: number, size = smallConvNet.size): { images: Float32Array; labels: Int32Array } {
  const random = new Random(seed);
  const images = new Float32Array(count * size * size);
  const labels = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const label = n % 10;
    labels[n] = label;
    const angle = (label * Math.PI) / 10;
    const [cx, cy] = [size / 2 + ((label % 3) - 1) * 2, size / 2 + ((label % 4) - 1.5) * 1.5];
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        // distance of pixel (i, j) from the label's line through (cx, cy)
        const distance = Math.abs((i - cy) * Math.cos(angle) - (j - cx) * Math.sin(angle));
        images[(n * size + i) * size + j] = Math.min(1, Math.max(0, 1 - distance / 1.5 + 0.2 * random.normal()));
      }
    }
  }
  return { images, labels };
}

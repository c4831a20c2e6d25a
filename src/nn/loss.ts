/** Softmax cross-entropy over logits (N, C) and integer labels, averaged over the batch (PyTorch's CrossEntropyLoss). */
import { NormkitError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { allocate, checkTensor, dtypeOf, formatShape } from '../tensor.js';

export class SoftmaxCrossEntropy {
  #probs: Tensor | null = null;
  #labels: ArrayLike<number> | null = null;

  /** loss = mean_n (logsumexp(z_n) - z_n[label_n]), with the max subtracted for stability. */
  forward(logits: Tensor, labels: ArrayLike<number>): number {
    checkTensor(logits, 'SoftmaxCrossEntropy: logits');
    if (logits.shape.length !== 2) throw new NormkitError('shape', `SoftmaxCrossEntropy: expected logits of shape [N, C], got ${formatShape(logits.shape)}`);
    const [n, c] = logits.shape;
    if (labels.length !== n) throw new NormkitError('shape', `SoftmaxCrossEntropy: ${labels.length} labels for ${n} rows`);
    const probs = allocate(dtypeOf(logits.data), n * c);
    let loss = 0;
    for (let r = 0; r < n; r++) {
      const label = labels[r];
      if (!Number.isInteger(label) || label < 0 || label >= c) throw new NormkitError('option', `SoftmaxCrossEntropy: label ${label} outside [0, ${c})`);
      let max = -Infinity;
      for (let k = 0; k < c; k++) max = Math.max(max, logits.data[r * c + k]);
      let sum = 0;
      for (let k = 0; k < c; k++) sum += Math.exp(logits.data[r * c + k] - max);
      for (let k = 0; k < c; k++) probs[r * c + k] = Math.exp(logits.data[r * c + k] - max) / sum;
      loss += Math.log(sum) + max - logits.data[r * c + label];
    }
    this.#probs = { data: probs, shape: [n, c] };
    this.#labels = labels;
    return loss / n;
  }

  /** dL/dlogits = (softmax - onehot)/N */
  backward(): Tensor {
    const probs = this.#probs;
    const labels = this.#labels;
    if (probs === null || labels === null) throw new NormkitError('no-forward', 'SoftmaxCrossEntropy: backward called before forward');
    const [n, c] = probs.shape;
    const grad = allocate(dtypeOf(probs.data), n * c);
    for (let r = 0; r < n; r++) {
      for (let k = 0; k < c; k++) grad[r * c + k] = (probs.data[r * c + k] - (k === labels[r] ? 1 : 0)) / n;
    }
    return { data: grad, shape: [n, c] };
  }
}

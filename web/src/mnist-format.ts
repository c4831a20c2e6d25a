/** mnist.bin (web/mnist-asset.ts): this many 28x28 digits per class, one byte per pixel, class 0 first. */
export const PER_DIGIT = 300;
export const SIDE = 28;

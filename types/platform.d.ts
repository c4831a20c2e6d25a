/**
 * The platform types normkit's declarations name, declared as the interfaces they merge into: where the
 * consumer's lib has them (DOM: WebAssembly, and WebGPU from TypeScript 6; or @webgpu/types) they are the
 * full types, and with a Node-only lib (no DOM) they are opaque handles, so the declarations compile everywhere.
 * Disposable likewise: with lib esnext.disposable (for `using`) it carries [Symbol.dispose](), elsewhere nothing.
 */
/* eslint-disable @typescript-eslint/no-empty-object-type -- empty on purpose: merge targets for the full types */
interface GPU {
  requestAdapter(options?: GPURequestAdapterOptions): Promise<GPUAdapter | null>;
}
interface GPURequestAdapterOptions {}
interface GPUAdapter {}
interface GPUDevice {}
interface GPUBuffer {}
interface Disposable {}
declare namespace WebAssembly {
  interface Module {}
  interface Memory {}
}

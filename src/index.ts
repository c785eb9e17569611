// actlab: the public API.
import './backends/index.js';

export * from './ops/index.js';
export * from './backends/index.js';
export { Tensor, type TensorData } from './tensor/tensor.js';
export { DTYPES, type DType } from './tensor/dtype.js';
export { ShapeError, DTypeError, DisposedError } from './tensor/errors.js';
export {
  initBackend, getBackend, setDefaultBackend, defaultBackendName, registerBackend, registeredBackends,
  disposeBackends, tidy, keep,
} from './tensor/engine.js';

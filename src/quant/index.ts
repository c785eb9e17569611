// actlab's quantizers as a library (`actlab/quant`): the weight formats and their packed layout,
// LLM-FP4's search, mixed precision, folds, fake quantization of weights and activations, QAT,
// and the packed checkpoint writer. docs/quantization.md describes each with its paper.
export { BOOKS, NF4_VALUES, fpBook, intBook, nearestCode, type Codebook } from './codebook.js';
export { layoutBlock, encodeGroups, decodeGroups, type GroupLayout, type Clip } from './group.js';
export {
  WEIGHT_FORMATS, ACTLAB_QUANT_TYPES, bitsPerWeight, quantizeWeights, dequantizeWeights, fakeQuantizeWeights, weightFormat,
  type ActlabQuantType, type WeightFormat,
} from './formats.js';
export { quantizeLlmFp4, type LlmFp4Choice } from './llm-fp4.js';
export { MIXED_LADDER, measureSensitivity, allocateBits, uniformAt, type Allocation, type MatrixSensitivity } from './mixed.js';
export { foldGroups, applyFold, expBiasFactors, searchScaleFold, type FoldGroup } from './fold.js';
export { fakeQuantizeModel, type FakeQuantResult } from './fake.js';
export { calibrateActivations, calibrateRows, actQuantHooks, actReport, fakeQuantRows, ACT_FORMATS, type ActQuantOptions, type ActCalibration } from './acts.js';
export { linearInputHook, collectInputs } from './calibrate.js';
export { qatTrain, qatPass } from './qat.js';
export { packRole, packTensors, readAllF32, writePackedCheckpoint, type PackReport } from './write.js';
export { PackedWeights, packedManifest, PACKED_METADATA_KEY } from './packed-weights.js';

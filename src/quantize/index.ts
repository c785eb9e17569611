// actlab's quantizers as a library (`actlab/quant`): the weight formats and their packed layout
// (src/quant: depends on the tensor layer only, so backends and the checkpoint reader use it),
// and what quantizes models (src/quantize: LLM-FP4's search on calibration inputs, mixed
// precision, folds, fake quantization of weights and activations, QAT, the packed checkpoint
// writer). docs/quantization.md describes each with its paper.
export { BOOKS, NF4_VALUES, fpBook, intBook, nearestCode, type Codebook } from '../quant/codebook.js';
export { layoutBlock, encodeGroups, decodeGroups, type GroupLayout, type Clip } from '../quant/group.js';
export {
  WEIGHT_FORMATS, ACTLAB_QUANT_TYPES, bitsPerWeight, quantizeWeights, dequantizeWeights, fakeQuantizeWeights, weightFormat,
  type ActlabQuantType, type WeightFormat,
} from '../quant/formats.js';
export { quantizeLlmFp4, type LlmFp4Choice } from '../quant/llm-fp4.js';
export { MIXED_LADDER, measureSensitivity, allocateBits, uniformAt, type Allocation, type MatrixSensitivity } from './mixed.js';
export { foldGroups, applyFold, expBiasFactors, searchScaleFold, type FoldGroup } from '../quant/fold.js';
export { fakeQuantizeModel, type FakeQuantResult } from './fake.js';
export { calibrateActivations, calibrateRows, actQuantHooks, actReport, fakeQuantRows, ACT_FORMATS, type ActQuantOptions, type ActCalibration } from './acts.js';
export { linearInputHook, collectInputs } from './calibrate.js';
export { qatTrain, qatPass } from './qat.js';
export { packRole, packTensors, readAllF32, writePackedCheckpoint, type PackReport } from './write.js';
export { PackedWeights, packedManifest, PACKED_METADATA_KEY } from '../quant/packed-weights.js';

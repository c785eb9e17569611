// actlab: the public API.
import './backends/index.js';

export * from './ops/index.js';
export * from './backends/index.js';
export { Tensor, type TensorData } from './tensor/tensor.js';
export { DTYPES, type DType } from './tensor/dtype.js';
export { ShapeError, DTypeError, DisposedError, OutOfMemoryError } from './tensor/errors.js';
export { liveTensors, type LiveTensors, type LiveOrigin } from './tensor/live.js';
export {
  initBackend, getBackend, setDefaultBackend, defaultBackendName, registerBackend, registeredBackends,
  disposeBackends, tidy, keep,
} from './tensor/engine.js';

// Reverse-mode autodiff.
export {
  backward, clearTape, grad, isRecording, noGrad, NoGradientError, tapeMark, tapeStats, valueAndGrad, variable, zeroGrad,
  type GradOptions,
} from './autograd/index.js';

// Checkpoints, formats, tokenizers, the hub, platform adapters.
export { openCheckpoint, checkMemory, MemoryBudgetError, type Checkpoint, type CheckpointFormat, type OpenCheckpointOptions } from './models/checkpoint.js';
export { estimateLoadBytes, tensorWeights, type WeightSource, type WeightInfo, type LoadOptions } from './formats/weight-source.js';
export { SafetensorsFile, SafetensorsError, writeSafetensors } from './formats/safetensors.js';
export { GgufFile } from './formats/gguf.js';
export { GgufWeights } from './formats/gguf-weights.js';
export { writeGguf } from './formats/gguf-write.js';
export { convertToGguf } from './formats/gguf-convert.js';
export { Llama2cCheckpoint } from './formats/llama2c.js';
export type { Tokenizer, ChatMessage } from './tokenizer/tokenizer.js';
export { HfTokenizer } from './tokenizer/hf.js';
export { Llama2cTokenizer, parseLlama2cTokenizer } from './tokenizer/llama2c.js';
export { resolveModel, type ResolveOptions, type ResolvedModel } from './hub/resolve.js';
export { HubError, HubFileNotFoundError, HubOfflineError, HubIntegrityError, HubInterruptedError } from './hub/errors.js';
export { getPlatform, setPlatform, createBrowserPlatform, type Platform } from './io/platform.js';
export { BytesSource, BlobSource, type ByteSource } from './io/byte-source.js';
export { HttpSource } from './io/http.js';
export { MemoryStore } from './io/memory-store.js';
export { writeAtomic, type FileStore } from './io/file-store.js';

// Models, hooks, generation.
export { loadModel, type LoadModelOptions, type LoadedModel } from './models/load.js';
export { buildModel, ARCHITECTURES, architectureOf } from './models/registry.js';
export { randomModel } from './models/random.js';
export { CausalLM, type ForwardOptions, type ModelDims, type HookPointInfo } from './models/model.js';
export { KVCache } from './models/layers/kv-cache.js';
export { KVCacheQuant, type KVMemory } from './models/kvquant/cache.js';
export { calibrateKV, collectKV, fitKV, minCalibrationTokens, type KVCalibration, type KVStats } from './kvquant/calibrate.js';
export { parseKVCacheType, resolveKVSpec, kvSpecLabel, KV_CACHE_TYPES, type KVCacheSpec } from './models/kvquant/spec.js';
export { generate, generateAsync, greedyToken, greedyTokenSync, type GenerateOptions, type GenerateResult } from './models/generate.js';
export { Hooks, HookRecorder, blockHook, hookLayer, SHAPE, type HookFn, type HookFilter, type HookPoint, type HookShape, type BackwardHookFn, type HookOptions } from './models/hook-point.js';
export { gradAt, type GradAtResult } from './hooks/grad.js';

// Training.
export * from './train/index.js';
export { runWithCache, runWithHooks, type RunWithCacheOptions } from './hooks/run.js';
export { ActivationCache } from './hooks/cache.js';

// Interventions (steering, ablation, ...): one serialisable model, compiled into hooks.
export * from './interventions/index.js';

// The papers' methods that find what to change.
export { activationPatching, attributionPatching, correlation, type PatchingResult, type PatchSite } from './interventions/patching.js';
export { relevancePatching, lrpHooks, lrpGradAt, LRP_RULES, type LrpRule } from './interventions/relp.js';
export { withSkippedLayers, lacMaskHooks, layerSkipReport, flopsPerToken, type LayerSkipReport } from './interventions/layer-skip.js';
export { ftri, expertActivationRates, deactivateExperts, forceExperts, type ExpertRef, type FtriResult } from './interventions/experts.js';
export { CamaTable, camaHooks, abpHooks, allForOneHooks, type AbpMode } from './interventions/cama.js';
export { softPagHooks, perturbedGuidance, headHunter, type HeadRef } from './interventions/head-perturb.js';
export { gact, gactHooks, kMeans, trainProbe, conceptDirections, conceptIntervention, type GactLayer, type LinearProbe } from './interventions/gact.js';
export { activationMomenta, selectAtomicUnits, auSteerInterventions, type AtomicUnit } from './interventions/austeer.js';

// Sparse autoencoders and transcoders (SAELens-compatible).
export * from './sae/index.js';
// Neuron methods: concept neurons (Neural FOXP2) and co-activation bricks.
export { conceptNeurons, conceptShift, labelMassAndLoss, interventionWindow, type ConceptOptions, type ConceptResult, type ConceptUnit, type ConceptLayer, type ShiftOptions } from './probes/concept-neurons.js';
export { coactivationBricks, brickAblation, brickTokens, hookRows, firing, coactivation, type Brick, type BrickPartition, type BrickOptions, type BrickEffects, type AblationEffect } from './probes/bricks.js';
export { UnitMoments, selectivity, labelTokens, differenceSpectrum, type UnitSelectivity, type LabelTokens, type DifferenceSpectrum } from './probes/unit-stats.js';

// Activation sparsity as a runtime mode (top-k, thresholds, CHESS), delta inference, fault injection.
export { parseSparsity, formatSpec, type SparsitySpec, type SparsityMethod, type TealSite } from './sparsity/spec.js';
export { planSparsity, type SparsityPlan, type LayerPlan } from './sparsity/calibrate.js';
export { allocateTeal, type TealAllocation } from './sparsity/teal-allocate.js';
export { applySparsity, type AppliedSparsity, type ApplyOptions } from './sparsity/apply.js';
export { topkSparsify, thresholdSparsify, topkHook, thresholdHook } from './sparsity/rules.js';
export { applyDelta, deltaSweep, type AppliedDelta, type DeltaRow } from './sparsity/delta.js';
export { flipF32Bit, flipBitsInPlace, injectWeightFaults, activationFaultHook, type FaultSpec, type WeightFaults } from './faults/bitflip.js';
export { calibrateClipBounds, clipHooks, type ClipBounds, type BoundGranularity } from './faults/proact.js';
export { faultReport, type FaultTask, type FaultReport, type FaultOptions } from './faults/evaluate.js';

// The analyses of activations: each a function of a model and inputs (or an activation store),
// following its paper's definition and default thresholds (cited in its file).
export { collect, HostActs, tokenLabel, type HostTensor } from './acts.js';
export { massiveActivations, massiveFromActs, massiveAcrossCheckpoints, type MassiveResult, type MassiveEntry, type MassiveOptions, type CheckpointMassive } from './massive.js';
export { attentionSinks, sinksFromActs, type SinkResult, type SinkOptions, type SecondarySink } from './sinks.js';
export { activationSparsity, sparsityFromActs, type SparsityResult, type SparsityOptions } from './sparsity.js';
export { layerVoids, lacVoids, type VoidResult, type VoidPhase, type VoidOptions } from './voids.js';
export { logitLens, logitLensFromActs, type LogitLensResult, type LogitLensOptions } from './logit-lens.js';
export { inductionScores, repeatedRandomTokens, type InductionResult, type InductionHead, type InductionOptions } from './induction.js';
export { topActivatingExamples, type NeuronResult, type NeuronExample, type NeuronOptions } from './neurons.js';
export {
  linearCka, rsa, svcca, rdm, similarity, compareRepresentations, layerRepresentations, similarityGrid, SIMILARITY_METHODS,
  type Matrix, type SimilarityMethod, type SubsampleOptions,
} from './similarity.js';
export { parseNpy, parseCsv, parseSafetensorsMatrix, parseMatrixFile } from './matrix-file.js';
export { expertRouting, expertsFromActs, type ExpertResult, type ExpertLayer } from './experts.js';
export { ANALYSIS_LIST, analysisNames, getAnalysis, runAnalysis, type Analysis, type AnalysisEnv, type AnalysisOption, type PromptInput } from './registry.js';

// Interventions on activations (the `actlab/interventions` entry point): one composable,
// serialisable description of every change to activations (steering, ablation, clamping,
// resampling) compiled against a model into hooks; activation and attribution patching.
export {
  activationPatching, attributionPatching, correlation, type PatchSite, type PatchingResult,
} from './patching.js';
export { logitDiff } from './metrics.js';
export {
  parseIntervention, parseInterventions, interventionsToJSON, InterventionError, INTERVENTION_OPS,
  type Intervention, type InterventionFile, type Operation, type InterventionOp, type PositionSpec, type UnitSpec, type ValueRef, type VectorRef,
} from './intervention.js';
export { compileInterventions, withInterventions, addInterventions, CompiledInterventions } from './apply.js';
export { loadInterventions, saveInterventions, resolveVectors, readSafetensorsVector, denseOf, type DenseVector } from './vector-ref.js';
export { resampleIndex } from './operations.js';
export { parseContrastJsonl, checkContrastSet, encodeText, type ContrastSet, type ContrastItem } from './contrastive.js';
export {
  steeringVectors, steeringVectorsAsync, steeringIntervention, actAdd, collectActivations, firstPrincipalComponent, hookFor, STEERING_METHODS, DEFAULT_STEERING_HOOK,
  type SteeringMethod, type SteeringVectors, type SteeringVectorOptions, type LayerSeparation, type ReadPosition,
} from './steering-vectors.js';
export {
  readControlVector, writeControlVector, controlVectorFromSteering, controlVectorInterventions, ControlVectorError, type ControlVector,
} from './control-vector.js';
export {
  ablationSweep, registerAblationMethod, ablationMethods, evaluateMetric, datasetStats, parseAblationData, siteHooks, ABLATION_SITES, ABLATION_METRICS,
  type AblationSite, type AblationMetric, type AblationItem, type AblationMethod, type AblationUnit, type AblationStats, type AblationResult, type AblationOptions,
} from './ablation.js';

// Interventions: one composable, serialisable description of every change to activations
// (steering, ablation, clamping, resampling), compiled against a model into hooks.
export {
  parseIntervention, parseInterventions, interventionsToJSON, InterventionError, INTERVENTION_OPS,
  type Intervention, type InterventionFile, type Operation, type InterventionOp, type PositionSpec, type UnitSpec, type ValueRef, type VectorRef,
} from './intervention.js';
export { compileInterventions, withInterventions, addInterventions, CompiledInterventions } from './apply.js';
export { loadInterventions, saveInterventions, resolveVectors, readSafetensorsVector, denseOf, type DenseVector } from './vector-ref.js';
export { resampleIndex } from './operations.js';

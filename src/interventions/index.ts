// Interventions on activations (the `actlab/interventions` entry point): activation patching,
// attribution patching, and the metrics they measure.
export {
  activationPatching, attributionPatching, correlation, type PatchSite, type PatchingResult,
} from './patching.js';
export { logitDiff } from './metrics.js';

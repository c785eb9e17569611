// The activation store (the `actlab/store` entry point): harvest a corpus's activations into a
// crash-safe folder of safetensors shards, and read them back in batches.
export { ActivationStore, type BatchOptions, type Flatten } from './reader.js';
export { harvest, hookEntries, type HarvestOptions, type HarvestProgress, type HarvestResult } from './writer.js';
export {
  StoreMismatchError, manifestDifferences, readManifest, MANIFEST, STORE_FORMAT, STORE_VERSION,
  type StoreManifest, type StoreDType, type ShardEntry, type HookEntry, type ModelIdentity, type TokenizerIdentity, type CorpusIdentity,
} from './manifest.js';
export { readDocuments, readContexts, type CorpusOptions, type ContextOptions, type CorpusStats, type CorpusFormat } from './corpus.js';

// Rotary position embedding parameters, read from a checkpoint's config in both the Hub's names
// (`rope_theta`, `rope_scaling`, `rotary_pct`, `rotary_emb_base`, `partial_rotary_factor`) and
// transformers 5's (`rope_parameters` with `rope_type`), and the inverse frequencies of each
// rope type transformers implements (default, linear, dynamic, llama3, yarn), following
// transformers' modeling_rope_utils.
import type { Backend } from '../../tensor/backend.js';
import { tensor } from '../../ops/creation.js';
import { keep } from '../../tensor/engine.js';
import type { Tensor } from '../../tensor/tensor.js';
import { ConfigError, num, opt } from '../config.js';
import type { RopeInputs } from './attention.js';

export interface RopeConfig {
  type: 'default' | 'linear' | 'dynamic' | 'llama3' | 'yarn';
  theta: number;
  /** Channels of each head that rotate. */
  rotaryDim: number;
  /** 'half' pairs (i, i + r/2) as transformers; 'interleaved' pairs (2i, 2i+1) as GPT-J. */
  mode: 'half' | 'interleaved';
  params: Record<string, unknown>;
  maxPositions: number;
}

export function readRopeConfig(cfg: Record<string, unknown>, headDim: number, where: string, defaults: { theta?: number; partial?: number; mode?: 'half' | 'interleaved' } = {}): RopeConfig {
  const rp = (cfg.rope_parameters ?? cfg.rope_scaling ?? {}) as Record<string, unknown>;
  const type = String(rp.rope_type ?? rp.type ?? 'default');
  if (!['default', 'linear', 'dynamic', 'llama3', 'yarn'].includes(type)) {
    throw new ConfigError(`${where}: rope type '${type}' is not supported (have default, linear, dynamic, llama3, yarn)`);
  }
  const theta = num(rp.rope_theta ?? cfg.rope_theta ?? cfg.rotary_emb_base ?? defaults.theta ?? 10000, `${where}.rope_theta`);
  const partial = num(rp.partial_rotary_factor ?? cfg.partial_rotary_factor ?? cfg.rotary_pct ?? defaults.partial ?? 1, `${where}.partial_rotary_factor`);
  const rotaryDim = Math.floor(headDim * partial);
  if (rotaryDim % 2 || rotaryDim <= 0) throw new ConfigError(`${where}: rotary dim ${rotaryDim} (head dim ${headDim} x ${partial}) must be even and > 0`);
  return {
    type: type as RopeConfig['type'], theta, rotaryDim, mode: defaults.mode ?? 'half', params: rp,
    maxPositions: num(opt(cfg.max_position_embeddings) ?? 2048, `${where}.max_position_embeddings`),
  };
}

/**
 * Inverse frequencies [rotaryDim / 2] and the factor that multiplies cos and sin (yarn's
 * attention factor; 1 otherwise). `seqLen` matters only for 'dynamic'.
 */
export function ropeFrequencies(r: RopeConfig, seqLen = 0): { invFreq: Float32Array; attentionFactor: number } {
  const f = typeFrequencies(r, seqLen);
  // llama.cpp's rope_freqs tensor (a GGUF's Llama 3 scaling, mapped here by gguf-weights.ts): each
  // inverse frequency divided by its factor.
  const ff = r.params.freq_factors;
  if (Array.isArray(ff)) {
    if (ff.length !== f.invFreq.length) throw new ConfigError(`rope: ${ff.length} freq_factors for ${f.invFreq.length} frequencies`);
    f.invFreq = f.invFreq.map((v, i) => v / Number(ff[i]));
  }
  return f;
}

function typeFrequencies(r: RopeConfig, seqLen: number): { invFreq: Float32Array; attentionFactor: number } {
  const dim = r.rotaryDim;
  const p = r.params;
  const base = (b: number) => Float64Array.from({ length: dim / 2 }, (_, i) => 1 / b ** ((2 * i) / dim));
  const factor = Number(p.factor ?? 1);
  switch (r.type) {
    case 'default':
      return { invFreq: Float32Array.from(base(r.theta)), attentionFactor: 1 };
    case 'linear':
      return { invFreq: Float32Array.from(base(r.theta), (f) => f / factor), attentionFactor: 1 };
    case 'dynamic': {
      const maxPos = r.maxPositions;
      const len = Math.max(seqLen, maxPos);
      const b = r.theta * ((factor * len) / maxPos - (factor - 1)) ** (dim / (dim - 2));
      return { invFreq: Float32Array.from(base(b)), attentionFactor: 1 };
    }
    case 'llama3': {
      const low = Number(p.low_freq_factor);
      const high = Number(p.high_freq_factor);
      const old = Number(p.original_max_position_embeddings);
      const lowWave = old / low;
      const highWave = old / high;
      const inv = base(r.theta).map((f) => {
        const wave = (2 * Math.PI) / f;
        if (wave < highWave) return f;
        if (wave > lowWave) return f / factor;
        const smooth = (old / wave - low) / (high - low);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
      return { invFreq: Float32Array.from(inv), attentionFactor: 1 };
    }
    case 'yarn': {
      const old = Number(p.original_max_position_embeddings ?? r.maxPositions);
      const mscale = (s: number, m = 1) => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
      let att = p.attention_factor as number | undefined;
      if (att === undefined) {
        att = p.mscale && p.mscale_all_dim ? mscale(factor, Number(p.mscale)) / mscale(factor, Number(p.mscale_all_dim)) : mscale(factor);
      }
      const betaFast = Number(p.beta_fast ?? 32);
      const betaSlow = Number(p.beta_slow ?? 1);
      const corr = (rot: number) => (dim * Math.log(old / (rot * 2 * Math.PI))) / (2 * Math.log(r.theta));
      const truncate = p.truncate !== false;
      let lo = corr(betaFast);
      let hi = corr(betaSlow);
      if (truncate) { lo = Math.floor(lo); hi = Math.ceil(hi); }
      lo = Math.max(lo, 0);
      hi = Math.min(hi, dim - 1);
      if (lo === hi) hi += 0.001;
      const inv = Float32Array.from({ length: dim / 2 }, (_, i) => {
        const posFreq = r.theta ** ((2 * i) / dim);
        const ramp = Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
        const extrap = 1 - ramp;
        return (1 / (factor * posFreq)) * (1 - extrap) + (1 / posFreq) * extrap;
      });
      return { invFreq: inv, attentionFactor: att };
    }
  }
}

/** The rotary frequencies of one model on its backend, remade only when a dynamic rope needs it. */
export class RopeTable {
  private current?: { key: string; invFreq: Tensor; factor: number };
  constructor(readonly config: RopeConfig, private readonly backend: Backend) {}

  /** The rope inputs for a call covering `len` positions at `positions` [batch, pos] (its host copy: `positionsHost`). */
  inputs(positions: Tensor, len: number, positionsHost?: Int32Array): RopeInputs {
    const r = this.config;
    const key = r.type === 'dynamic' && len > r.maxPositions ? `dynamic:${len}` : 'static';
    if (this.current?.key !== key) {
      this.current?.invFreq.dispose();
      const { invFreq, attentionFactor } = ropeFrequencies(r, len);
      this.current = { key, invFreq: keep(tensor(invFreq, [invFreq.length], 'f32', { backend: this.backend })), factor: attentionFactor };
    }
    return { positions, positionsHost, invFreq: this.current.invFreq, rotaryDim: r.rotaryDim, mode: r.mode, attentionFactor: this.current.factor };
  }

  dispose(): void {
    this.current?.invFreq.dispose();
    this.current = undefined;
  }
}

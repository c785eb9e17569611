// The hook points cache_all_ratio caches (bench/model.ts, bench/blocks.ts): every block's resid
// pre/mid/post, attention q/k/v/pattern/z, attn_out, MLP pre/post and mlp_out, the points PyTorch's peer
// (../shared/anchors/gpt2_torch.py) keeps in its cache.
export const CACHE_ALL_NAMES = new RegExp(String.raw`^blocks\.\d+\.(hook_resid_(pre|mid|post)|attn\.hook_(q|k|v|pattern|z)|hook_attn_out|mlp\.hook_(pre|post)|hook_mlp_out)$`);

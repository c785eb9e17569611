// cvec_logits: logits of a GGUF model through libllama (llama.cpp's C API, CPU) with a control
// vector applied, for comparing llama.cpp's steering with actlab's on the same prompt.
// The control vector is loaded as llama.cpp's common_control_vector_load does (direction.N, F32,
// 1-D, N >= 1, each scaled by STRENGTH; direction N goes to slot N - 1 of the buffer) and applied
// with llama_set_adapter_cvec over layers [LAYER_START, LAYER_END] (default 1 .. n_layer).
// Writes OUT.logits.bin (float32 [n_tokens, n_vocab], every prompt position) and prints one JSON
// line {"n_tokens", "n_vocab", "n_embd", "n_layer", "decode_ms" (the N_GEN - 1 one-token decodes),
// "directions": [...], "greedy": [...]}.
//
// usage: cvec_logits MODEL.gguf OUT_PREFIX IDS(comma separated) [--cvec FILE.gguf --strength S]
//                    [--layers START END] [--gen N] [--threads N]
// Built by scripts/llamacpp/build.sh (F32 KV cache, flash attention off, so llama.cpp rounds as
// little as its API allows).
#include "llama.h"
#include "gguf.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void quiet_log(enum ggml_log_level level, const char * text, void *) {
    if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}

static int argmax(const float * x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

// Returns n_embd (or -1 on a malformed file); fills data (layer 1 at offset 0) and the layer list.
static int load_cvec(const char * path, float strength, std::vector<float> & data, std::vector<int> & layers) {
    ggml_context * ctx = nullptr;
    gguf_init_params gp = { /*no_alloc*/ false, /*ctx*/ &ctx };
    gguf_context * g = gguf_init_from_file(path, gp);
    if (!g) { fprintf(stderr, "cvec_logits: cannot read control vector %s\n", path); return -1; }
    int n_embd = -1;
    const int n_tensors = (int) gguf_get_n_tensors(g);
    for (int i = 0; i < n_tensors; i++) {
        const std::string name = gguf_get_tensor_name(g, i);
        if (name.rfind("direction.", 0) != 0) { fprintf(stderr, "cvec_logits: tensor %s is not direction.N\n", name.c_str()); n_embd = -1; break; }
        const int il = atoi(name.c_str() + strlen("direction."));
        ggml_tensor * t = ggml_get_tensor(ctx, name.c_str());
        if (il <= 0 || t->type != GGML_TYPE_F32 || ggml_n_dims(t) != 1) { fprintf(stderr, "cvec_logits: bad tensor %s\n", name.c_str()); n_embd = -1; break; }
        if (n_embd < 0) n_embd = (int) ggml_nelements(t);
        if (ggml_nelements(t) != n_embd) { fprintf(stderr, "cvec_logits: %s has the wrong width\n", name.c_str()); n_embd = -1; break; }
        if (data.size() < (size_t) n_embd * il) data.resize((size_t) n_embd * il, 0.0f);
        const float * src = (const float *) t->data;
        float * dst = data.data() + (size_t) n_embd * (il - 1);
        for (int j = 0; j < n_embd; j++) dst[j] += src[j] * strength;
        layers.push_back(il);
    }
    gguf_free(g);
    ggml_free(ctx);
    return n_embd;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf OUT_PREFIX IDS [--cvec FILE --strength S] [--layers START END] [--gen N] [--threads N]\n", argv[0]);
        return 2;
    }
    const char * model_path = argv[1];
    const std::string out_prefix = argv[2];
    std::vector<llama_token> ids;
    for (const char * p = argv[3]; *p;) {
        ids.push_back((llama_token) strtol(p, (char **) &p, 10));
        if (*p == ',') p++;
    }
    const char * cvec = nullptr;
    float strength = 1.0f;
    int layer_start = -1, layer_end = -1, n_gen = 0, threads = 2;
    for (int i = 4; i < argc; i++) {
        const std::string a = argv[i];
        if (a == "--cvec" && i + 1 < argc) cvec = argv[++i];
        else if (a == "--strength" && i + 1 < argc) strength = (float) atof(argv[++i]);
        else if (a == "--layers" && i + 2 < argc) { layer_start = atoi(argv[++i]); layer_end = atoi(argv[++i]); }
        else if (a == "--gen" && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (a == "--threads" && i + 1 < argc) threads = atoi(argv[++i]);
        else { fprintf(stderr, "cvec_logits: unknown argument %s\n", a.c_str()); return 2; }
    }

    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(model_path, mp);
    if (!model) { fprintf(stderr, "cvec_logits: failed to load %s\n", model_path); return 1; }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    const int n_layer = llama_model_n_layer(model);
    const int n_embd = llama_model_n_embd(model);

    const int n_total = (int) ids.size() + n_gen;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) (n_total < 64 ? 64 : n_total);
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;
    cp.n_seq_max = 1;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = GGML_TYPE_F32;
    cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cvec_logits: failed to create context\n"); return 1; }

    std::vector<int> layers;
    if (cvec) {
        std::vector<float> data;
        const int w = load_cvec(cvec, strength, data, layers);
        if (w < 0) return 1;
        if (w != n_embd) { fprintf(stderr, "cvec_logits: control vector width %d, model n_embd %d\n", w, n_embd); return 1; }
        if (layer_start <= 0) layer_start = 1;
        if (layer_end <= 0) layer_end = n_layer;
        if (llama_set_adapter_cvec(ctx, data.data(), data.size(), w, layer_start, layer_end) != 0) {
            fprintf(stderr, "cvec_logits: llama_set_adapter_cvec failed\n");
            return 1;
        }
    }

    const int n = (int) ids.size();
    llama_batch batch = llama_batch_init(n, 0, 1);
    batch.n_tokens = n;
    for (int i = 0; i < n; i++) {
        batch.token[i] = ids[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "cvec_logits: decode failed\n"); return 1; }
    std::vector<float> all((size_t) n * n_vocab);
    for (int i = 0; i < n; i++) memcpy(&all[(size_t) i * n_vocab], llama_get_logits_ith(ctx, i), sizeof(float) * n_vocab);
    llama_batch_free(batch);
    {
        const std::string f = out_prefix + ".logits.bin";
        FILE * fp = fopen(f.c_str(), "wb");
        if (!fp) { perror(f.c_str()); return 1; }
        fwrite(all.data(), sizeof(float), all.size(), fp);
        fclose(fp);
    }

    std::vector<llama_token> seq = ids;
    int next = argmax(&all[(size_t) (n - 1) * n_vocab], n_vocab);
    const auto t0 = std::chrono::steady_clock::now();
    for (int g = 0; g < n_gen; g++) {
        seq.push_back(next);
        if (g + 1 == n_gen) break;
        llama_batch b1 = llama_batch_init(1, 0, 1);
        b1.n_tokens = 1;
        b1.token[0] = next;
        b1.pos[0] = (llama_pos) seq.size() - 1;
        b1.n_seq_id[0] = 1;
        b1.seq_id[0][0] = 0;
        b1.logits[0] = 1;
        if (llama_decode(ctx, b1) != 0) { fprintf(stderr, "cvec_logits: decode failed at step %d\n", g); return 1; }
        next = argmax(llama_get_logits_ith(ctx, 0), n_vocab);
        llama_batch_free(b1);
    }

    const double decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    printf("{\"n_tokens\": %d, \"n_vocab\": %d, \"n_embd\": %d, \"n_layer\": %d, \"decode_ms\": %.3f, \"directions\": [", n, n_vocab, n_embd, n_layer, decode_ms);
    for (size_t i = 0; i < layers.size(); i++) printf("%s%d", i ? ", " : "", layers[i]);
    printf("], \"greedy\": [");
    for (size_t i = 0; i < seq.size(); i++) printf("%s%d", i ? ", " : "", seq[i]);
    printf("]}\n");

    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

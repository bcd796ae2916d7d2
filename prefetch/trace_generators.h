// Synthetic workloads: the access patterns of a dense model's decode steps,
// of training steps, and of a mixture-of-experts model's tokens.
//
// Each generator is deterministic for a given spec (seeded PRNG) and returns
// a Trace whose ids are dense (id_limit set). A textual spec names a
// generator and its parameters, so tools take workloads on the command line:
//   dense:layers=80,steps=1000,bytes=64MiB,blocks=2,sizes=48MiB/96MiB
//   training:layers=24,steps=50,bytes=64MiB,act_bytes=16MiB
//   moe:layers=32,experts=64,topk=2,zipf=1.1,corr=0.7,tokens=2000
//   moe:preset=mixtral,tokens=585      (routing statistics like Mixtral-8x7B)
//   zipf:blocks=1000,zipf=0.9,requests=100000
//   scanmix:blocks=1000,hot=200,scan=100,random=0.5,requests=100000
// docs/traces.md lists every parameter and its default.
//
// Thread safety: pure functions.
#ifndef TIERCACHE_PREFETCH_TRACE_GENERATORS_H_
#define TIERCACHE_PREFETCH_TRACE_GENERATORS_H_

#include <string_view>
#include <vector>

#include "common/status.h"
#include "prefetch/trace.h"

namespace tiercache {

// Traces bigger than this many records are refused (kInvalidArgument).
constexpr uint64_t kMaxGeneratedRecords = 100'000'000;

// `layers` layers of `blocks` weight blocks each, read in order once per
// decode step. Block j of every layer has sizes[j] bytes (all `bytes` when
// sizes is empty). Block id = layer * blocks + j.
struct DenseSpec {
  uint32_t layers = 32;
  uint32_t blocks = 1;
  uint64_t steps = 100;
  uint64_t bytes = 64ull << 20;
  std::vector<uint64_t> sizes;
  uint64_t compute_ns = 200'000;  // time between consecutive accesses
};

// Forward reads layers 0..L-1 and writes one activation per layer; backward
// reads layers L-1..0, each time restoring (reading) that layer's activation
// and then freeing it. Activations are new blocks every step (ids from
// layers*blocks upwards).
struct TrainingSpec {
  uint32_t layers = 24;
  uint32_t blocks = 1;
  uint64_t steps = 50;
  uint64_t bytes = 64ull << 20;
  uint64_t act_bytes = 16ull << 20;
  uint64_t compute_ns = 200'000;
};

// Per token and layer: the layer's dense (attention) block when dense_bytes
// > 0, then its `topk` routed experts in ascending id order. Each routing
// slot keeps the previous token's expert with probability `corr` (temporal
// correlation), else draws from a Zipf(`zipf`) popularity over the layer's
// experts (a different popularity order per layer); with probability
// `affinity` a fresh draw instead follows a fixed per-layer mapping from the
// previous layer's expert in the same slot (which experts follow which).
// Ids: layer * (experts + 1) is the dense block, + 1 + e expert e.
struct MoeSpec {
  uint32_t layers = 32;
  uint32_t experts = 64;
  uint32_t topk = 2;
  double zipf = 1.1;
  double corr = 0.7;
  double affinity = 0.0;
  uint64_t tokens = 2000;
  uint64_t expert_bytes = 32ull << 20;
  uint64_t dense_bytes = 16ull << 20;
  uint64_t compute_ns = 100'000;
  uint64_t seed = 1;
};

// The Mixtral-8x7B-like routing preset (moe:preset=mixtral): 32 layers, top-2
// of 8 experts, expert blocks of 352 MB and attention blocks of 84 MB, with
// zipf, corr and affinity chosen so that the generated routing matches the
// figures recorded from the real model on decode tokens (the most popular
// expert of a layer takes ~17% of choices, an expert chosen at one token is
// chosen again at the next, same layer, ~38% of the time, the previous
// layer's pair predicts the next layer's experts ~42% of the time by
// transition counts). Parameters given after the preset override it.
MoeSpec MixtralMoeSpec();

// Independent picks: each request reads one of `blocks` blocks drawn from a
// Zipf(`zipf`) popularity (a random order of ids). Nothing to learn beyond
// popularity: the case where prediction must not hurt.
struct ZipfSpec {
  uint32_t blocks = 1000;
  double zipf = 0.9;
  uint64_t requests = 100'000;
  uint64_t bytes = 4ull << 20;
  uint64_t compute_ns = 100'000;
  uint64_t seed = 1;
};

// Scans mixed with random reads: with probability `random` a request reads
// one of the `hot` hottest blocks (Zipf `zipf` over them), otherwise it
// continues a sequential scan of `scan` blocks through the cold rest (a new
// scan starts at a random cold block when one ends). The classic case where
// LRU is flushed by scans and scan-resistant policies win.
struct ScanMixSpec {
  uint32_t blocks = 1000;
  uint32_t hot = 200;
  uint32_t scan = 100;
  double random = 0.5;
  double zipf = 0.8;
  uint64_t requests = 100'000;
  uint64_t bytes = 4ull << 20;
  uint64_t compute_ns = 100'000;
  uint64_t seed = 1;
};

Result<Trace> GenerateDense(const DenseSpec& spec);
Result<Trace> GenerateTraining(const TrainingSpec& spec);
Result<Trace> GenerateMoe(const MoeSpec& spec);
Result<Trace> GenerateZipf(const ZipfSpec& spec);
Result<Trace> GenerateScanMix(const ScanMixSpec& spec);

// "dense:...", "training:...", "moe:...", "zipf:..." or "scanmix:..."
// (parameters optional). Unknown
// kinds or parameters, malformed or out-of-range values: kInvalidArgument
// naming the parameter.
Result<Trace> GenerateTrace(std::string_view spec);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_TRACE_GENERATORS_H_

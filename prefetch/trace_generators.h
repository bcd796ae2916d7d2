// Synthetic workloads: the access patterns of a dense model's decode steps,
// of training steps, and of a mixture-of-experts model's tokens.
//
// Each generator is deterministic for a given spec (seeded PRNG) and returns
// a Trace whose ids are dense (id_limit set). A textual spec names a
// generator and its parameters, so tools take workloads on the command line:
//   dense:layers=80,steps=1000,bytes=64MiB,blocks=2,sizes=48MiB/96MiB
//   training:layers=24,steps=50,bytes=64MiB,act_bytes=16MiB
//   moe:layers=32,experts=64,topk=2,zipf=1.1,corr=0.7,tokens=2000
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

Result<Trace> GenerateDense(const DenseSpec& spec);
Result<Trace> GenerateTraining(const TrainingSpec& spec);
Result<Trace> GenerateMoe(const MoeSpec& spec);

// "dense:...", "training:..." or "moe:..." (parameters optional). Unknown
// kinds or parameters, malformed or out-of-range values: kInvalidArgument
// naming the parameter.
Result<Trace> GenerateTrace(std::string_view spec);

}  // namespace tiercache

#endif  // TIERCACHE_PREFETCH_TRACE_GENERATORS_H_

#include "prefetch/trace_generators.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <string>

#include "common/units.h"

namespace tiercache {

namespace {

Status Invalid(const std::string& what) { return Status::InvalidArgument(what); }

Status CheckSize(uint64_t records) {
  if (records > kMaxGeneratedRecords) {
    return Invalid("workload would have " + std::to_string(records) + " records (limit " +
                   std::to_string(kMaxGeneratedRecords) + ")");
  }
  return Status::Ok();
}

// Saturating product, so oversized specs fail the size check instead of wrapping.
uint64_t Mul(uint64_t a, uint64_t b) {
  return (b != 0 && a > UINT64_MAX / b) ? UINT64_MAX : a * b;
}

double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

class ZipfSampler {
 public:
  ZipfSampler(uint32_t n, double s) : cdf_(n) {
    double total = 0;
    for (uint32_t r = 0; r < n; ++r) cdf_[r] = total += 1.0 / std::pow(r + 1.0, s);
    for (double& c : cdf_) c /= total;
  }
  uint32_t Sample(std::mt19937_64& rng) const {
    const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), Uniform(rng));
    return static_cast<uint32_t>(std::min<size_t>(it - cdf_.begin(), cdf_.size() - 1));
  }

 private:
  std::vector<double> cdf_;
};

}  // namespace

Result<Trace> GenerateDense(const DenseSpec& spec) {
  if (spec.layers == 0 || spec.blocks == 0 || spec.steps == 0) {
    return Invalid("dense: layers, blocks and steps must be at least 1");
  }
  if (!spec.sizes.empty() && spec.sizes.size() != spec.blocks) {
    return Invalid("dense: sizes lists " + std::to_string(spec.sizes.size()) + " sizes for " +
                   std::to_string(spec.blocks) + " blocks per layer");
  }
  if (spec.bytes == 0 || std::count(spec.sizes.begin(), spec.sizes.end(), 0u) > 0) {
    return Invalid("dense: block sizes must be above 0");
  }
  TC_RETURN_IF_ERROR(CheckSize(Mul(Mul(spec.layers, spec.blocks), spec.steps)));
  Trace trace;
  trace.id_limit = uint64_t{spec.layers} * spec.blocks;
  trace.records.reserve(trace.id_limit * spec.steps);
  uint64_t now = 0;
  for (uint64_t step = 0; step < spec.steps; ++step) {
    for (uint64_t id = 0; id < trace.id_limit; ++id) {
      const uint64_t bytes = spec.sizes.empty() ? spec.bytes : spec.sizes[id % spec.blocks];
      trace.records.push_back({now, id, bytes, TraceOp::kRead, static_cast<uint32_t>(step + 1)});
      now += spec.compute_ns;
    }
  }
  return trace;
}

Result<Trace> GenerateTraining(const TrainingSpec& spec) {
  if (spec.layers == 0 || spec.blocks == 0 || spec.steps == 0) {
    return Invalid("training: layers, blocks and steps must be at least 1");
  }
  if (spec.bytes == 0 || spec.act_bytes == 0) return Invalid("training: sizes must be above 0");
  const uint64_t weights = uint64_t{spec.layers} * spec.blocks;
  TC_RETURN_IF_ERROR(CheckSize(Mul(Mul(weights, 2) + 3ull * spec.layers, spec.steps)));
  Trace trace;
  trace.id_limit = weights + Mul(spec.layers, spec.steps);
  uint64_t now = 0;
  auto add = [&](BlockId id, uint64_t bytes, TraceOp op, uint32_t phase) {
    trace.records.push_back({now, id, bytes, op, phase});
    now += spec.compute_ns;
  };
  for (uint64_t step = 0; step < spec.steps; ++step) {
    const BlockId first_activation = weights + step * spec.layers;
    const auto forward = static_cast<uint32_t>(2 * step + 1), backward = forward + 1;
    for (uint64_t layer = 0; layer < spec.layers; ++layer) {
      for (uint64_t j = 0; j < spec.blocks; ++j) add(layer * spec.blocks + j, spec.bytes, TraceOp::kRead, forward);
      add(first_activation + layer, spec.act_bytes, TraceOp::kWrite, forward);
    }
    for (uint64_t layer = spec.layers; layer-- > 0;) {
      for (uint64_t j = spec.blocks; j-- > 0;) add(layer * spec.blocks + j, spec.bytes, TraceOp::kRead, backward);
      add(first_activation + layer, spec.act_bytes, TraceOp::kRead, backward);
      add(first_activation + layer, 0, TraceOp::kFree, backward);
    }
  }
  return trace;
}

Result<Trace> GenerateMoe(const MoeSpec& spec) {
  if (spec.layers == 0 || spec.experts == 0 || spec.tokens == 0) {
    return Invalid("moe: layers, experts and tokens must be at least 1");
  }
  if (spec.topk == 0 || spec.topk > spec.experts) return Invalid("moe: topk must be in [1, experts]");
  if (!(spec.zipf >= 0 && spec.zipf <= 10)) return Invalid("moe: zipf must be in [0, 10]");
  if (!(spec.corr >= 0 && spec.corr <= 1)) return Invalid("moe: corr must be in [0, 1]");
  if (!(spec.affinity >= 0 && spec.affinity <= 1)) return Invalid("moe: affinity must be in [0, 1]");
  if (spec.expert_bytes == 0) return Invalid("moe: expert_bytes must be above 0");
  const uint64_t per_token = Mul(spec.layers, spec.topk + (spec.dense_bytes > 0 ? 1 : 0));
  TC_RETURN_IF_ERROR(CheckSize(Mul(per_token, spec.tokens)));

  std::mt19937_64 rng(spec.seed);
  const uint32_t L = spec.layers, E = spec.experts, K = spec.topk;
  // popularity[l][rank] = expert; follower[l][e] = the expert of layer l
  // that tends to follow expert e of layer l - 1.
  const ZipfSampler zipf(E, spec.zipf);
  std::vector<std::vector<uint32_t>> popularity(L, std::vector<uint32_t>(E)), follower(L, std::vector<uint32_t>(E));
  for (uint32_t l = 0; l < L; ++l) {
    std::iota(popularity[l].begin(), popularity[l].end(), 0u);
    std::shuffle(popularity[l].begin(), popularity[l].end(), rng);
    for (uint32_t e = 0; e < E; ++e) follower[l][e] = popularity[l][zipf.Sample(rng)];
  }
  std::vector<std::vector<uint32_t>> previous(L);  // last token's slots per layer
  Trace trace;
  trace.id_limit = uint64_t{L} * (E + 1);
  trace.records.reserve(per_token * spec.tokens);
  uint64_t now = 0;
  std::vector<uint32_t> chosen;
  for (uint64_t token = 0; token < spec.tokens; ++token) {
    const std::vector<uint32_t>* above = nullptr;
    std::vector<std::vector<uint32_t>> current(L);
    for (uint32_t l = 0; l < L; ++l) {
      chosen.clear();
      for (uint32_t slot = 0; slot < K; ++slot) {
        auto taken = [&](uint32_t e) { return std::find(chosen.begin(), chosen.end(), e) != chosen.end(); };
        uint32_t e = E;
        if (!previous[l].empty() && Uniform(rng) < spec.corr && !taken(previous[l][slot])) e = previous[l][slot];
        if (e == E && above != nullptr && Uniform(rng) < spec.affinity && !taken(follower[l][(*above)[slot]])) {
          e = follower[l][(*above)[slot]];
        }
        for (int attempt = 0; e == E || taken(e); ++attempt) {
          e = attempt < 32 ? popularity[l][zipf.Sample(rng)] : static_cast<uint32_t>(rng() % E);
        }
        chosen.push_back(e);
      }
      current[l] = chosen;  // slot order: the next token's correlation follows slots
      const uint64_t base = uint64_t{l} * (E + 1);
      if (spec.dense_bytes > 0) {
        trace.records.push_back({now, base, spec.dense_bytes, TraceOp::kRead, static_cast<uint32_t>(token + 1)});
        now += spec.compute_ns;
      }
      std::vector<uint32_t> order = chosen;
      std::sort(order.begin(), order.end());
      for (uint32_t e : order) {
        trace.records.push_back({now, base + 1 + e, spec.expert_bytes, TraceOp::kRead, static_cast<uint32_t>(token + 1)});
        now += spec.compute_ns;
      }
      above = &current[l];
    }
    previous = std::move(current);
  }
  return trace;
}

MoeSpec MixtralMoeSpec() {
  MoeSpec s;
  s.layers = 32;
  s.experts = 8;
  s.topk = 2;
  // Calibrated against the recorded figures (tests/prefetch/
  // trace_generators_test.cpp measures them on the generated trace).
  s.zipf = 0.1;
  s.corr = 0.17;
  s.affinity = 0.3;
  s.tokens = 585;
  s.expert_bytes = 352'000'000;
  s.dense_bytes = 84'000'000;
  return s;
}

Result<Trace> GenerateZipf(const ZipfSpec& spec) {
  if (spec.blocks == 0 || spec.requests == 0) return Invalid("zipf: blocks and requests must be at least 1");
  if (!(spec.zipf >= 0 && spec.zipf <= 10)) return Invalid("zipf: zipf must be in [0, 10]");
  if (spec.bytes == 0) return Invalid("zipf: bytes must be above 0");
  TC_RETURN_IF_ERROR(CheckSize(spec.requests));
  std::mt19937_64 rng(spec.seed);
  std::vector<uint32_t> by_rank(spec.blocks);
  std::iota(by_rank.begin(), by_rank.end(), 0u);
  std::shuffle(by_rank.begin(), by_rank.end(), rng);
  const ZipfSampler zipf(spec.blocks, spec.zipf);
  Trace trace;
  trace.id_limit = spec.blocks;
  trace.records.reserve(spec.requests);
  for (uint64_t i = 0; i < spec.requests; ++i) {
    trace.records.push_back({i * spec.compute_ns, by_rank[zipf.Sample(rng)], spec.bytes, TraceOp::kRead, 1});
  }
  return trace;
}

Result<Trace> GenerateScanMix(const ScanMixSpec& spec) {
  if (spec.blocks < 2 || spec.requests == 0) return Invalid("scanmix: blocks must be at least 2, requests at least 1");
  if (spec.hot == 0 || spec.hot >= spec.blocks) return Invalid("scanmix: hot must be in [1, blocks - 1]");
  if (spec.scan == 0) return Invalid("scanmix: scan must be at least 1");
  if (!(spec.random >= 0 && spec.random <= 1)) return Invalid("scanmix: random must be in [0, 1]");
  if (!(spec.zipf >= 0 && spec.zipf <= 10)) return Invalid("scanmix: zipf must be in [0, 10]");
  if (spec.bytes == 0) return Invalid("scanmix: bytes must be above 0");
  TC_RETURN_IF_ERROR(CheckSize(spec.requests));
  std::mt19937_64 rng(spec.seed);
  const ZipfSampler zipf(spec.hot, spec.zipf);
  const uint32_t cold = spec.blocks - spec.hot;  // ids hot .. blocks - 1
  Trace trace;
  trace.id_limit = spec.blocks;
  trace.records.reserve(spec.requests);
  uint32_t scan_left = 0, scan_at = 0;
  for (uint64_t i = 0; i < spec.requests; ++i) {
    BlockId id;
    if (Uniform(rng) < spec.random) {
      id = zipf.Sample(rng);
    } else {
      if (scan_left == 0) {
        scan_left = spec.scan;
        scan_at = static_cast<uint32_t>(rng() % cold);
      }
      id = spec.hot + scan_at;
      scan_at = (scan_at + 1) % cold;
      --scan_left;
    }
    trace.records.push_back({i * spec.compute_ns, id, spec.bytes, TraceOp::kRead, 1});
  }
  return trace;
}

// ---- specs ---------------------------------------------------------------

namespace {

// key=value parameters of one spec; every Get* consumes its key, Finish()
// rejects the ones nobody asked for.
class SpecParams {
 public:
  static Result<SpecParams> Parse(std::string_view kind, std::string_view text) {
    SpecParams params;
    params.kind_ = std::string(kind);
    while (!text.empty()) {
      const size_t comma = text.find(',');
      std::string_view item = text.substr(0, comma);
      text.remove_prefix(comma == std::string_view::npos ? text.size() : comma + 1);
      const size_t eq = item.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        return Invalid(params.kind_ + ": expected key=value, got '" + std::string(item.substr(0, 40)) + "'");
      }
      if (!params.values_.emplace(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))).second) {
        return Invalid(params.kind_ + ": parameter '" + std::string(item.substr(0, eq)) + "' given twice");
      }
    }
    return params;
  }

  template <typename T>
  Status Uint(const char* key, T* out, uint64_t min, uint64_t max) {
    known_ += std::string(known_.empty() ? "" : ", ") + key;
    auto it = values_.find(key);
    if (it == values_.end()) return Status::Ok();
    uint64_t v = 0;
    const std::string s = it->second;  // a copy: the entry is erased below
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    values_.erase(it);
    if (ec != std::errc() || end != s.data() + s.size() || v < min || v > max) {
      return Invalid(kind_ + ": parameter '" + key + "' = '" + s + "' must be an integer in [" +
                     std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    *out = static_cast<T>(v);
    return Status::Ok();
  }

  Status Bytes(const char* key, uint64_t* out, bool allow_zero = false) {
    known_ += std::string(known_.empty() ? "" : ", ") + key;
    auto it = values_.find(key);
    if (it == values_.end()) return Status::Ok();
    Result<uint64_t> v = ParseBytes(it->second);
    const std::string text = it->second;
    values_.erase(it);
    if (!v.ok() || (*v == 0 && !allow_zero)) {
      return Invalid(kind_ + ": parameter '" + key + "' = '" + text + "' is not a byte size" +
                     (allow_zero ? "" : " above 0"));
    }
    *out = *v;
    return Status::Ok();
  }

  Status Real(const char* key, double* out, double min, double max) {
    known_ += std::string(known_.empty() ? "" : ", ") + key;
    auto it = values_.find(key);
    if (it == values_.end()) return Status::Ok();
    const std::string s = it->second;
    values_.erase(it);
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || !(v >= min && v <= max)) {
      return Invalid(kind_ + ": parameter '" + key + "' = '" + s + "' must be a number in [" +
                     std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    *out = v;
    return Status::Ok();
  }

  Status SizeList(const char* key, std::vector<uint64_t>* out) {
    known_ += std::string(known_.empty() ? "" : ", ") + key;
    auto it = values_.find(key);
    if (it == values_.end()) return Status::Ok();
    std::string_view list = it->second;
    while (!list.empty()) {
      const size_t slash = list.find('/');
      Result<uint64_t> v = ParseBytes(list.substr(0, slash));
      if (!v.ok() || *v == 0) {
        return Invalid(kind_ + ": parameter '" + key + "': '" + std::string(list.substr(0, slash)) +
                       "' is not a byte size above 0");
      }
      out->push_back(*v);
      list.remove_prefix(slash == std::string_view::npos ? list.size() : slash + 1);
    }
    values_.erase(it);
    return Status::Ok();
  }

  Status Finish() const {
    if (values_.empty()) return Status::Ok();
    return Invalid(kind_ + ": unknown parameter '" + values_.begin()->first + "' (expected: " + known_ + ")");
  }

 private:
  std::string kind_;
  std::string known_;
  std::map<std::string, std::string> values_;
};

constexpr uint64_t kMaxCount = 100'000'000;

}  // namespace

Result<Trace> GenerateTrace(std::string_view spec) {
  const size_t colon = spec.find(':');
  const std::string_view kind = spec.substr(0, colon);
  const std::string_view rest = colon == std::string_view::npos ? std::string_view() : spec.substr(colon + 1);
  TC_ASSIGN_OR_RETURN(SpecParams p, SpecParams::Parse(kind, rest));
  if (kind == "dense") {
    DenseSpec s;
    TC_RETURN_IF_ERROR(p.Uint("layers", &s.layers, 1, 1'000'000));
    TC_RETURN_IF_ERROR(p.Uint("blocks", &s.blocks, 1, 1'000'000));
    TC_RETURN_IF_ERROR(p.Uint("steps", &s.steps, 1, kMaxCount));
    TC_RETURN_IF_ERROR(p.Bytes("bytes", &s.bytes));
    TC_RETURN_IF_ERROR(p.SizeList("sizes", &s.sizes));
    TC_RETURN_IF_ERROR(p.Uint("compute_ns", &s.compute_ns, 0, UINT32_MAX));
    TC_RETURN_IF_ERROR(p.Finish());
    return GenerateDense(s);
  }
  if (kind == "training") {
    TrainingSpec s;
    TC_RETURN_IF_ERROR(p.Uint("layers", &s.layers, 1, 1'000'000));
    TC_RETURN_IF_ERROR(p.Uint("blocks", &s.blocks, 1, 1'000'000));
    TC_RETURN_IF_ERROR(p.Uint("steps", &s.steps, 1, kMaxCount));
    TC_RETURN_IF_ERROR(p.Bytes("bytes", &s.bytes));
    TC_RETURN_IF_ERROR(p.Bytes("act_bytes", &s.act_bytes));
    TC_RETURN_IF_ERROR(p.Uint("compute_ns", &s.compute_ns, 0, UINT32_MAX));
    TC_RETURN_IF_ERROR(p.Finish());
    return GenerateTraining(s);
  }
  if (kind == "moe") {
    MoeSpec s;
    if (rest.rfind("preset=", 0) == 0) {
      // The preset first, so the parameters after it override it.
      const size_t comma = rest.find(',');
      const std::string_view preset = rest.substr(7, comma == std::string_view::npos ? rest.npos : comma - 7);
      if (preset != "mixtral") {
        return Invalid("moe: unknown preset '" + std::string(preset.substr(0, 40)) + "' (expected mixtral)");
      }
      s = MixtralMoeSpec();
      TC_ASSIGN_OR_RETURN(p, SpecParams::Parse(kind, comma == std::string_view::npos ? "" : rest.substr(comma + 1)));
    }
    TC_RETURN_IF_ERROR(p.Uint("layers", &s.layers, 1, 1'000'000));
    TC_RETURN_IF_ERROR(p.Uint("experts", &s.experts, 1, 1'000'000));
    TC_RETURN_IF_ERROR(p.Uint("topk", &s.topk, 1, 1'000'000));
    TC_RETURN_IF_ERROR(p.Real("zipf", &s.zipf, 0, 10));
    TC_RETURN_IF_ERROR(p.Real("corr", &s.corr, 0, 1));
    TC_RETURN_IF_ERROR(p.Real("affinity", &s.affinity, 0, 1));
    TC_RETURN_IF_ERROR(p.Uint("tokens", &s.tokens, 1, kMaxCount));
    TC_RETURN_IF_ERROR(p.Bytes("expert_bytes", &s.expert_bytes));
    TC_RETURN_IF_ERROR(p.Bytes("dense_bytes", &s.dense_bytes, /*allow_zero=*/true));
    TC_RETURN_IF_ERROR(p.Uint("compute_ns", &s.compute_ns, 0, UINT32_MAX));
    TC_RETURN_IF_ERROR(p.Uint("seed", &s.seed, 0, UINT64_MAX));
    TC_RETURN_IF_ERROR(p.Finish());
    return GenerateMoe(s);
  }
  if (kind == "zipf") {
    ZipfSpec s;
    TC_RETURN_IF_ERROR(p.Uint("blocks", &s.blocks, 1, 100'000'000));
    TC_RETURN_IF_ERROR(p.Real("zipf", &s.zipf, 0, 10));
    TC_RETURN_IF_ERROR(p.Uint("requests", &s.requests, 1, kMaxCount));
    TC_RETURN_IF_ERROR(p.Bytes("bytes", &s.bytes));
    TC_RETURN_IF_ERROR(p.Uint("compute_ns", &s.compute_ns, 0, UINT32_MAX));
    TC_RETURN_IF_ERROR(p.Uint("seed", &s.seed, 0, UINT64_MAX));
    TC_RETURN_IF_ERROR(p.Finish());
    return GenerateZipf(s);
  }
  if (kind == "scanmix") {
    ScanMixSpec s;
    TC_RETURN_IF_ERROR(p.Uint("blocks", &s.blocks, 2, 100'000'000));
    TC_RETURN_IF_ERROR(p.Uint("hot", &s.hot, 1, 100'000'000));
    TC_RETURN_IF_ERROR(p.Uint("scan", &s.scan, 1, 100'000'000));
    TC_RETURN_IF_ERROR(p.Real("random", &s.random, 0, 1));
    TC_RETURN_IF_ERROR(p.Real("zipf", &s.zipf, 0, 10));
    TC_RETURN_IF_ERROR(p.Uint("requests", &s.requests, 1, kMaxCount));
    TC_RETURN_IF_ERROR(p.Bytes("bytes", &s.bytes));
    TC_RETURN_IF_ERROR(p.Uint("compute_ns", &s.compute_ns, 0, UINT32_MAX));
    TC_RETURN_IF_ERROR(p.Uint("seed", &s.seed, 0, UINT64_MAX));
    TC_RETURN_IF_ERROR(p.Finish());
    return GenerateScanMix(s);
  }
  return Invalid("unknown workload '" + std::string(kind.substr(0, 40)) +
                 "' (expected dense, training, moe, zipf or scanmix)");
}

}  // namespace tiercache

#include "tools/bench/workload.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <unordered_map>

#include "common/units.h"

namespace tiercache::bench {
namespace {

// "kind:key=value,key=value" -> kind and a key map. Unknown keys are errors.
struct Spec {
  std::string kind;
  std::map<std::string, std::string> values;
};

Result<Spec> ParseSpec(const std::string& text, const std::map<std::string, std::vector<std::string>>& keys) {
  Spec spec;
  size_t colon = text.find(':');
  spec.kind = text.substr(0, colon);
  auto known = keys.find(spec.kind);
  if (known == keys.end()) {
    return Status::InvalidArgument("workload '" + text + "': unknown kind '" + spec.kind +
                                   "' (known: dense, moe)");
  }
  if (colon == std::string::npos) return spec;
  std::stringstream stream(text.substr(colon + 1));
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (item.empty()) continue;
    size_t equals = item.find('=');
    std::string key = item.substr(0, equals);
    if (equals == std::string::npos) {
      return Status::InvalidArgument("workload '" + text + "': '" + item + "' is not key=value");
    }
    if (std::find(known->second.begin(), known->second.end(), key) == known->second.end()) {
      std::string list;
      for (const std::string& k : known->second) list += (list.empty() ? "" : ", ") + k;
      return Status::InvalidArgument("workload '" + text + "': unknown key '" + key +
                                     "' for " + spec.kind + " (known: " + list + ")");
    }
    spec.values[key] = item.substr(equals + 1);
  }
  return spec;
}

Result<uint64_t> Count(const Spec& spec, const std::string& key, uint64_t fallback, uint64_t low,
                       uint64_t high) {
  auto it = spec.values.find(key);
  if (it == spec.values.end()) return fallback;
  char* end = nullptr;
  unsigned long long value = std::strtoull(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || it->second[0] == '-' || value < low || value > high) {
    return Status::InvalidArgument("workload: " + key + "=" + it->second + " must be an integer in [" +
                                   std::to_string(low) + ", " + std::to_string(high) + "]");
  }
  return static_cast<uint64_t>(value);
}

Result<double> Real(const Spec& spec, const std::string& key, double fallback, double low, double high) {
  auto it = spec.values.find(key);
  if (it == spec.values.end()) return fallback;
  char* end = nullptr;
  double value = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || !(value >= low && value <= high)) {
    return Status::InvalidArgument("workload: " + key + "=" + it->second + " must be a number in [" +
                                   std::to_string(low) + ", " + std::to_string(high) + "]");
  }
  return value;
}

Result<uint64_t> Size(const Spec& spec, const std::string& key, uint64_t fallback) {
  auto it = spec.values.find(key);
  if (it == spec.values.end()) return fallback;
  Result<uint64_t> bytes = ParseBytes(it->second);
  if (!bytes.ok() || *bytes == 0 || *bytes > 64 * kGiB) {
    return Status::InvalidArgument("workload: " + key + "=" + it->second +
                                   " must be a size between 1 B and 64 GiB");
  }
  return *bytes;
}

constexpr uint64_t kMaxRequests = 50'000'000;

Result<Workload> Dense(const Spec& spec, const std::string& text) {
  TC_ASSIGN_OR_RETURN(uint64_t layers, Count(spec, "layers", 16, 1, 1'000'000));
  TC_ASSIGN_OR_RETURN(uint64_t blocks, Count(spec, "blocks", 4, 1, 1'000'000));
  TC_ASSIGN_OR_RETURN(uint64_t steps, Count(spec, "steps", 8, 1, 1'000'000));
  TC_ASSIGN_OR_RETURN(uint64_t block, Size(spec, "block", 4 * kMiB));
  if (layers * blocks * steps > kMaxRequests) {
    return Status::InvalidArgument("workload '" + text + "': more than 50 million requests");
  }
  Workload workload;
  workload.description = text;
  workload.block_bytes.assign(layers * blocks, block);
  for (uint64_t step = 0; step < steps; ++step) {
    workload.step_starts.push_back(workload.requests.size());
    for (uint64_t id = 0; id < layers * blocks; ++id) workload.requests.push_back(id);
  }
  return workload;
}

Result<Workload> Moe(const Spec& spec, const std::string& text, uint64_t seed) {
  TC_ASSIGN_OR_RETURN(uint64_t layers, Count(spec, "layers", 8, 1, 100'000));
  TC_ASSIGN_OR_RETURN(uint64_t experts, Count(spec, "experts", 16, 1, 100'000));
  TC_ASSIGN_OR_RETURN(uint64_t topk, Count(spec, "topk", 2, 1, 100'000));
  TC_ASSIGN_OR_RETURN(uint64_t tokens, Count(spec, "tokens", 64, 1, 10'000'000));
  TC_ASSIGN_OR_RETURN(double zipf, Real(spec, "zipf", 1.1, 0.0, 10.0));
  TC_ASSIGN_OR_RETURN(double corr, Real(spec, "corr", 0.7, 0.0, 1.0));
  TC_ASSIGN_OR_RETURN(uint64_t block, Size(spec, "block", 2 * kMiB));
  if (topk > experts) return Status::InvalidArgument("workload '" + text + "': topk exceeds experts");
  if (layers * (topk + 1) * tokens > kMaxRequests) {
    return Status::InvalidArgument("workload '" + text + "': more than 50 million requests");
  }
  // Ids: layer l's attention block is l*(experts+1), its expert e is that + 1 + e.
  Workload workload;
  workload.description = text;
  workload.block_bytes.assign(layers * (experts + 1), block);
  std::vector<double> weights(experts);
  for (uint64_t e = 0; e < experts; ++e) weights[e] = 1.0 / std::pow(static_cast<double>(e + 1), zipf);
  std::mt19937_64 random(seed);
  std::discrete_distribution<uint64_t> popularity(weights.begin(), weights.end());
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<std::vector<uint64_t>> previous(layers);
  for (uint64_t token = 0; token < tokens; ++token) {
    workload.step_starts.push_back(workload.requests.size());
    for (uint64_t layer = 0; layer < layers; ++layer) {
      uint64_t base = layer * (experts + 1);
      workload.requests.push_back(base);
      std::vector<uint64_t> chosen;
      for (uint64_t k = 0; k < topk; ++k) {
        bool repeat = k < previous[layer].size() && coin(random) < corr;
        uint64_t expert = repeat ? previous[layer][k] : popularity(random);
        // Distinct experts per token: redraw, then walk, on a collision.
        for (int tries = 0; std::find(chosen.begin(), chosen.end(), expert) != chosen.end(); ++tries) {
          expert = tries < 32 ? popularity(random) : (expert + 1) % experts;
        }
        chosen.push_back(expert);
        workload.requests.push_back(base + 1 + expert);
      }
      previous[layer] = chosen;
    }
  }
  return workload;
}

// Renumbers arbitrary object ids densely, keeping each object's first size.
class Renumberer {
 public:
  explicit Renumberer(Workload* workload) : workload_(workload) {}
  void Add(uint64_t object, uint64_t bytes) {
    auto [it, inserted] = ids_.try_emplace(object, workload_->block_bytes.size());
    if (inserted) workload_->block_bytes.push_back(bytes);
    workload_->requests.push_back(it->second);
  }

 private:
  Workload* workload_;
  std::unordered_map<uint64_t, uint64_t> ids_;
};

Result<Workload> LoadCsv(const std::string& path) {
  std::ifstream file(path);
  if (!file) return Status::NotFound("trace " + path + ": cannot be opened");
  Workload workload;
  workload.description = path;
  Renumberer renumber(&workload);
  std::string line;
  uint64_t record = 0;
  while (std::getline(file, line)) {
    ++record;
    if (line.empty() || line[0] == '#' || (record == 1 && !std::isdigit(static_cast<unsigned char>(line[0])))) {
      continue;  // comments and a header line
    }
    unsigned long long timestamp = 0, object = 0, bytes = 0;
    char trailing = 0;
    if (std::sscanf(line.c_str(), "%llu,%llu,%llu%c", &timestamp, &object, &bytes, &trailing) != 3 ||
        bytes == 0) {
      return Status::Corruption("trace " + path + ": record " + std::to_string(record) +
                                " is not 'timestamp,obj_id,obj_size'");
    }
    renumber.Add(object, bytes);
  }
  if (workload.requests.empty()) return Status::Corruption("trace " + path + ": no records");
  workload.step_starts.push_back(0);
  return workload;
}

}  // namespace

uint64_t Workload::WorkingSetBytes() const {
  uint64_t total = 0;
  for (uint64_t bytes : block_bytes) total += bytes;
  return total;
}

uint64_t Workload::UniformBlockBytes() const {
  if (block_bytes.empty()) return 0;
  for (uint64_t bytes : block_bytes) {
    if (bytes != block_bytes.front()) return 0;
  }
  return block_bytes.front();
}

uint64_t Workload::StepOf(uint64_t request) const {
  auto it = std::upper_bound(step_starts.begin(), step_starts.end(), request);
  return it == step_starts.begin() ? 0 : static_cast<uint64_t>(it - step_starts.begin() - 1);
}

Result<Workload> GenerateWorkload(const std::string& text, uint64_t seed) {
  static const std::map<std::string, std::vector<std::string>> kKeys = {
      {"dense", {"layers", "blocks", "block", "steps"}},
      {"moe", {"layers", "experts", "topk", "zipf", "corr", "tokens", "block"}},
  };
  TC_ASSIGN_OR_RETURN(Spec spec, ParseSpec(text, kKeys));
  if (spec.kind == "dense") return Dense(spec, text);
  return Moe(spec, text, seed);
}

Result<Workload> LoadTrace(const std::string& path, const std::string& format) {
  if (format == "csv" || format == "auto") return LoadCsv(path);
  return Status::InvalidArgument("trace format '" + format + "' is not supported");
}

Status SaveTrace(const Workload& workload, const std::string& path, const std::string& format) {
  if (format != "csv") return Status::InvalidArgument("trace format '" + format + "' cannot be written");
  std::ofstream file(path, std::ios::trunc);
  if (!file) return Status::IoError("cannot write " + path);
  file << "timestamp,obj_id,obj_size\n";
  for (size_t i = 0; i < workload.requests.size(); ++i) {
    file << i << "," << workload.requests[i] << "," << workload.block_bytes[workload.requests[i]] << "\n";
  }
  file.close();
  if (!file) return Status::IoError("short write to " + path);
  return Status::Ok();
}

}  // namespace tiercache::bench

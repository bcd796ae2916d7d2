// Eviction policies against Belady's MIN on large synthetic traces.
//
// For each workload (a dense model's decode steps, an MoE model's tokens)
// and each cache size from 10% to 90% of the working set, every policy is
// replayed through the simulator once; the counters are its hit ratio and
// its ratio to MIN's hit ratio at the same size (plus prefetch accuracy and
// coverage for next-use+prefetch). A summary table is printed at the end.
// The figures are hit ratios, not times: any machine gives the same ones.
//
// Workloads can be replaced on the command line:
//   policy_bench --dense=dense:layers=80,steps=1000 --moe=moe:tokens=4000
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "prefetch/simulator.h"
#include "prefetch/trace_generators.h"

namespace tiercache {
namespace {

std::string g_specs[2] = {"dense:layers=80,steps=1000,blocks=2,sizes=96MiB/160MiB",
                          "moe:layers=32,experts=64,topk=2,zipf=1.1,corr=0.7,tokens=2000"};
const char* kWorkloadNames[2] = {"dense", "moe"};
const std::vector<std::string> kPolicies = {"lru", "arc", "s3fifo", "next-use", "next-use+prefetch", "min", "min-size"};
const double kFractions[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

const Trace& Workload(int w) {
  static Trace traces[2];
  static bool made[2] = {false, false};
  if (!made[w]) {
    Result<Trace> t = GenerateTrace(g_specs[w]);
    if (!t.ok()) {
      std::fprintf(stderr, "policy_bench: %s\n", t.status().ToString().c_str());
      std::exit(2);
    }
    traces[w] = std::move(t).value();
    made[w] = true;
  }
  return traces[w];
}

// (workload, fraction index, policy) -> result, for the ratios and the table.
std::map<std::tuple<int, int, std::string>, SimResult> g_results;

const SimResult& Run(int w, int f, const std::string& policy) {
  auto key = std::make_tuple(w, f, policy);
  auto it = g_results.find(key);
  if (it != g_results.end()) return it->second;
  SimOptions o;
  o.policy = policy;
  o.capacity_bytes = static_cast<uint64_t>(kFractions[f] * static_cast<double>(WorkingSetBytes(Workload(w))));
  Result<SimResult> r = Simulate(Workload(w), o);
  if (!r.ok()) {
    std::fprintf(stderr, "policy_bench: %s\n", r.status().ToString().c_str());
    std::exit(2);
  }
  return g_results.emplace(key, std::move(r).value()).first->second;
}

void BM_Policy(benchmark::State& state, int w, int f, std::string policy) {
  const SimResult* r = nullptr;
  for (auto _ : state) {
    g_results.erase(std::make_tuple(w, f, policy));
    r = &Run(w, f, policy);
  }
  const double min = Run(w, f, "min").hit_ratio();
  state.counters["hit_ratio"] = r->hit_ratio();
  state.counters["of_min"] = min > 0 ? r->hit_ratio() / min : 0;
  state.counters["reads"] = static_cast<double>(r->reads);
  if (r->prefetches > 0) {
    state.counters["pf_accuracy"] = r->prefetch_accuracy();
    state.counters["pf_coverage"] = r->prefetch_coverage();
  }
}

void PrintTable() {
  for (int w = 0; w < 2; ++w) {
    std::printf("\n%s (%s): hit ratio, and / MIN\n| cache | ", kWorkloadNames[w], g_specs[w].c_str());
    for (const auto& p : kPolicies) std::printf("%s | ", p.c_str());
    std::printf("next-use / MIN | prefetch accuracy | prefetch coverage |\n|---|");
    for (size_t i = 0; i < kPolicies.size() + 3; ++i) std::printf("---|");
    std::printf("\n");
    for (int f = 0; f < 9; ++f) {
      std::printf("| %d%% | ", static_cast<int>(kFractions[f] * 100 + 0.5));
      for (const auto& p : kPolicies) std::printf("%.4f | ", Run(w, f, p).hit_ratio());
      const SimResult& pf = Run(w, f, "next-use+prefetch");
      std::printf("%.4f | %.3f | %.3f |\n", Run(w, f, "next-use").hit_ratio() / Run(w, f, "min").hit_ratio(),
                  pf.prefetch_accuracy(), pf.prefetch_coverage());
    }
  }
}

}  // namespace
}  // namespace tiercache

int main(int argc, char** argv) {
  using namespace tiercache;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--dense=", 8) == 0) {
      g_specs[0] = argv[i] + 8;
    } else if (std::strncmp(argv[i], "--moe=", 6) == 0) {
      g_specs[1] = argv[i] + 6;
    } else {
      rest.push_back(argv[i]);
    }
  }
  for (int w = 0; w < 2; ++w) {
    for (int f = 0; f < 9; ++f) {
      for (const std::string& p : kPolicies) {
        const std::string name = std::string(kWorkloadNames[w]) + "/" + std::to_string(static_cast<int>(kFractions[f] * 100 + 0.5)) + "%/" + p;
        benchmark::RegisterBenchmark(name.c_str(), [w, f, p](benchmark::State& s) { BM_Policy(s, w, f, p); })
            ->Iterations(1)->Unit(benchmark::kMillisecond);
      }
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  PrintTable();
  benchmark::Shutdown();
  return 0;
}

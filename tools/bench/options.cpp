#include "tools/bench/options.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "common/units.h"
#include "tools/bench/config_file.h"

extern char** environ;

namespace tiercache::bench {
namespace {

// How a setting's text becomes a value. Each returns a message on failure.
using Setter = std::function<Status(const std::string& value, Options* options)>;

struct Setting {
  const char* name;     // config-file key; flag is --name with '_' -> '-'
  bool from_env;        // also read from TIERCACHE_<NAME>
  const char* value;    // placeholder shown in --help, "" for a switch
  const char* help;
  Setter set;
};

Status Bad(const std::string& what, const std::string& value, const std::string& why) {
  return Status::InvalidArgument(what + ": " + why + " (got '" + value + "')");
}

Setter Bytes(uint64_t Options::*field, bool allow_zero = true) {
  return [field, allow_zero](const std::string& value, Options* options) -> Status {
    Result<uint64_t> bytes = ParseBytes(value);
    if (!bytes.ok()) return Status::InvalidArgument(bytes.status().message());
    if (!allow_zero && *bytes == 0) return Status::InvalidArgument("must be more than 0 bytes");
    options->*field = *bytes;
    return Status::Ok();
  };
}

Setter Text(std::string Options::*field) {
  return [field](const std::string& value, Options* options) -> Status {
    if (value.empty()) return Status::InvalidArgument("needs a value");
    options->*field = value;
    return Status::Ok();
  };
}

Result<uint64_t> ParseCount(const std::string& value) {
  if (value.empty() || !std::isdigit(static_cast<unsigned char>(value[0]))) {
    return Status::InvalidArgument("not a non-negative integer: '" + value + "'");
  }
  errno = 0;
  char* end = nullptr;
  unsigned long long parsed = std::strtoull(value.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') {
    return Status::InvalidArgument("not a non-negative integer: '" + value + "'");
  }
  return static_cast<uint64_t>(parsed);
}

Result<bool> ParseSwitch(const std::string& value) {
  if (value == "1" || value == "true" || value == "on" || value == "yes") return true;
  if (value == "0" || value == "false" || value == "off" || value == "no") return false;
  return Status::InvalidArgument("expected on/off, true/false or 1/0: '" + value + "'");
}

std::vector<std::string> SplitList(const std::string& value) {
  std::vector<std::string> items;
  std::stringstream stream(value);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

Status SetPolicies(const std::string& value, Options* options) {
  static const char* kKnown[] = {"lru", "arc", "s3fifo", "next-use", "tiercache",
                                 "tiercache+prefetch", "min"};
  std::vector<std::string> policies = SplitList(value);
  if (policies.empty()) return Status::InvalidArgument("needs at least one policy");
  for (const std::string& policy : policies) {
    bool known = false;
    for (const char* name : kKnown) known = known || policy == name;
    if (!known) {
      return Status::InvalidArgument("unknown policy '" + policy +
                                     "' (known: lru, arc, s3fifo, next-use, tiercache, tiercache+prefetch, min)");
    }
  }
  options->policies = policies;
  return Status::Ok();
}

Status SetSizes(const std::string& value, Options* options) {
  std::vector<double> fractions;
  for (const std::string& item : SplitList(value)) {
    char* end = nullptr;
    double percent = std::strtod(item.c_str(), &end);
    if (end == item.c_str() || (*end != '\0' && std::string(end) != "%") || !(percent > 0) ||
        percent > 100) {
      return Bad("cache size", item, "expected a percentage of the working set in (0, 100]");
    }
    fractions.push_back(percent / 100.0);
  }
  if (fractions.empty()) return Status::InvalidArgument("needs at least one size");
  options->cache_fractions = fractions;
  return Status::Ok();
}

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> kSettings = {
      {"workload", false, "SPEC",
       "synthetic workload (docs/traces.md lists every parameter):\n"
       "  dense:layers=N,blocks=N,bytes=SIZE,steps=N\n"
       "  moe:layers=N,experts=N,topk=N,zipf=X,corr=X,tokens=N,expert_bytes=SIZE,dense_bytes=SIZE\n"
       "  training:layers=N,steps=N,bytes=SIZE,act_bytes=SIZE\n"
       "e.g. --workload=dense:layers=32,bytes=8MiB,steps=10",
       Text(&Options::workload)},
      {"trace", false, "FILE", "replay a trace file instead of a generator, e.g. --trace=run.trace",
       Text(&Options::trace_path)},
      {"trace_format", false, "FMT",
       "format of --trace: auto, tiercache, tiercache-csv, csv (timestamp,obj_id,obj_size),\n"
       "oracleGeneral (libCacheSim); e.g. --trace-format=csv",
       Text(&Options::trace_format)},
      {"gpu_budget_bytes", true, "SIZE",
       "GPU memory the runtime may use (must be > 0), e.g. --gpu-budget-bytes=8GiB;\n"
       "default: half the working set",
       Bytes(&Options::gpu_budget_bytes, /*allow_zero=*/false)},
      {"gpu_cache_bytes", true, "SIZE",
       "cap on cached blocks inside the GPU budget, e.g. --gpu-cache-bytes=6GiB",
       Bytes(&Options::gpu_cache_bytes, /*allow_zero=*/false)},
      {"gpu_policy", true, "NAME",
       "GPU eviction policy: lru, arc, s3fifo, next-use (default, fed by the prefetcher's\n"
       "predictions); e.g. --gpu-policy=lru",
       [](const std::string& value, Options* options) -> Status {
         if (value != "lru" && value != "arc" && value != "s3fifo" && value != "next-use") {
           return Bad("policy", value, "expected lru, arc, s3fifo or next-use");
         }
         options->gpu_policy = value;
         return Status::Ok();
       }},
      {"dram_bytes", true, "SIZE", "DRAM tier size, e.g. --dram-bytes=2GiB; default: a quarter of the working set",
       Bytes(&Options::dram_bytes)},
      {"pmem_bytes", true, "SIZE", "PMEM tier size (a file under --dir; 0 leaves it out), e.g. --pmem-bytes=4GiB;\n"
       "default: a quarter of the working set",
       Bytes(&Options::pmem_bytes)},
      {"nvme_bytes", true, "SIZE", "NVMe tier size (a file under --dir), e.g. --nvme-bytes=64GiB;\n"
       "default: the rest of the working set",
       Bytes(&Options::nvme_bytes)},
      {"dir", false, "PATH",
       "directory for the PMEM and NVMe tier files (removed afterwards), e.g. --dir=/mnt/nvme;\n"
       "default: $TMPDIR or /tmp",
       Text(&Options::dir)},
      {"prefetch", false, "on|off", "let the runtime's prefetcher run ahead of requests (default on), e.g. --prefetch=off",
       [](const std::string& value, Options* options) -> Status {
         Result<bool> on = ParseSwitch(value);
         if (!on.ok()) return on.status();
         options->prefetch = *on;
         return Status::Ok();
       }},
      {"engine", false, "NAME",
       "replay through the cache runtime (runtime, the default) or drive the tiers directly,\n"
       "one synchronous read-then-copy per miss (direct); e.g. --engine=direct",
       [](const std::string& value, Options* options) -> Status {
         if (value != "runtime" && value != "direct") return Bad("engine", value, "expected runtime or direct");
         options->engine = value;
         return Status::Ok();
       }},
      {"prefetch_lookahead", true, "N", "cap on how many blocks the runtime prefetches ahead (default 0: derived at run time\n"
       "      from the measured link, block sizes, compute time and GPU room), e.g. --prefetch-lookahead=4",
       [](const std::string& value, Options* options) -> Status {
         Result<uint64_t> blocks = ParseCount(value);
         if (!blocks.ok()) return blocks.status();
         options->prefetch_lookahead = static_cast<int64_t>(*blocks);
         return Status::Ok();
       }},
      {"chunk_bytes", true, "SIZE", "transfer chunk size, e.g. --chunk-bytes=16MiB",
       Bytes(&Options::chunk_bytes, /*allow_zero=*/false)},
      {"compute_us", false, "N",
       "simulated compute time per block use in microseconds (default 100), e.g. --compute-us=250",
       [](const std::string& value, Options* options) -> Status {
         Result<uint64_t> micros = ParseCount(value);
         if (!micros.ok()) return micros.status();
         if (*micros > 10'000'000) return Bad("compute time", value, "at most 10 s per use");
         options->compute_ns = *micros * 1000;
         return Status::Ok();
       }},
      {"policies", false, "LIST",
       "policies to simulate: lru, arc, s3fifo, tiercache (next-use eviction fed by the\n"
       "learning prefetcher; also 'next-use'), tiercache+prefetch (also fetching ahead; its\n"
       "prefetched reads count as hits), min (Belady's optimum on demand);\n"
       "e.g. --policies=lru,s3fifo,tiercache,min", SetPolicies},
      {"sizes", false, "LIST",
       "cache sizes to simulate, in % of the working set (default 10,20,..,90),\n"
       "e.g. --sizes=10,25,50,75", SetSizes},
      {"json", false, "FILE",
       "write the report as JSON, and the SVG plots next to it, e.g. --json=out/run.json",
       Text(&Options::json_path)},
      {"out", false, "FILE", "trace record/convert: the file to write, e.g. --out=decode.trace",
       Text(&Options::out_path)},
      {"format", false, "FMT",
       "trace record/convert: tiercache (default), tiercache-csv, csv or oracleGeneral;\n"
       "e.g. --format=csv",
       Text(&Options::out_format)},
      {"progress", false, "WHEN",
       "progress bar on stderr: auto (only on a terminal), always, never; e.g. --progress=never",
       [](const std::string& value, Options* options) -> Status {
         if (value == "auto") options->progress = ProgressMode::kAuto;
         else if (value == "always") options->progress = ProgressMode::kAlways;
         else if (value == "never") options->progress = ProgressMode::kNever;
         else return Bad("progress", value, "expected auto, always or never");
         return Status::Ok();
       }},
      {"seconds", false, "N", "stress: how long the load runs, e.g. --seconds=600",
       [](const std::string& value, Options* options) -> Status {
         Result<uint64_t> n = ParseCount(value);
         if (!n.ok() || *n == 0) return Bad("seconds", value, "expected a whole number above 0");
         options->seconds = static_cast<double>(*n);
         return Status::Ok();
       }},
      {"threads", false, "N", "stress: threads issuing calls (on 4 streams), e.g. --threads=8",
       [](const std::string& value, Options* options) -> Status {
         Result<uint64_t> n = ParseCount(value);
         if (!n.ok() || *n == 0 || *n > 256) return Bad("threads", value, "expected 1 to 256");
         options->threads = *n;
         return Status::Ok();
       }},
      {"quiet", false, "", "no table on stdout (use with --json), e.g. --quiet",
       [](const std::string& value, Options* options) -> Status {
         Result<bool> on = ParseSwitch(value);
         if (!on.ok()) return on.status();
         options->quiet = *on;
         return Status::Ok();
       }},
  };
  return kSettings;
}

std::string FlagName(const std::string& name) {
  std::string flag = name;
  for (char& c : flag) c = (c == '_') ? '-' : c;
  return "--" + flag;
}

std::string EnvironmentName(const std::string& name) {
  std::string variable = "TIERCACHE_";
  for (char c : name) variable += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return variable;
}

const Setting* FindSetting(const std::string& name) {
  for (const Setting& setting : Settings()) {
    if (name == setting.name) return &setting;
  }
  return nullptr;
}

// Applies one setting; errors are prefixed with where the value came from.
Status Apply(const Setting& setting, const std::string& value, const std::string& source,
             Options* options) {
  Status status = setting.set(value, options);
  if (!status.ok()) return Status::InvalidArgument(source + ": " + status.message());
  options->explicitly_set[setting.name] = value;
  return Status::Ok();
}

Result<Command> ParseCommand(const std::string& word, const std::string& next, int* consumed) {
  *consumed = 1;
  if (word == "run") return Command::kRun;
  if (word == "replay") return Command::kReplay;
  if (word == "simulate") return Command::kSimulate;
  if (word == "help") return Command::kHelp;
  if (word == "stress") return Command::kStress;
  if (word == "trace") {
    *consumed = 2;
    if (next == "record") return Command::kTraceRecord;
    if (next == "convert") return Command::kTraceConvert;
    return Status::InvalidArgument("trace: expected 'trace record' or 'trace convert' (got '" +
                                   next + "')");
  }
  return Status::InvalidArgument("unknown command '" + word +
                                 "' (commands: run, replay, simulate, trace record, trace convert, stress; "
                                 "see --help)");
}

Status ApplyConfigFile(const std::string& path, Options* options) {
  Result<std::vector<std::pair<std::string, std::string>>> entries = ReadConfigFile(path);
  if (!entries.ok()) return entries.status();
  for (const auto& [key, value] : *entries) {
    const Setting* setting = FindSetting(key);
    // Runtime keys this tool does not use are accepted and left alone, so one
    // file serves both; anything else is a typo worth reporting.
    if (setting == nullptr) {
      if (IsRuntimeConfigKey(key)) continue;
      return Status::InvalidArgument("config file " + path + ": unknown key '" + key + "'");
    }
    TC_RETURN_IF_ERROR(Apply(*setting, value, "config file " + path + ": " + key, options));
  }
  return Status::Ok();
}

Status Validate(Options* options) {
  if (options->command == Command::kTraceConvert && options->trace_path.empty()) {
    return Status::InvalidArgument("trace convert: needs --trace=FILE to convert");
  }
  if ((options->command == Command::kTraceRecord || options->command == Command::kTraceConvert) &&
      options->out_path.empty()) {
    return Status::InvalidArgument("trace: needs --out=FILE");
  }
  if (!options->workload.empty() && !options->trace_path.empty()) {
    return Status::InvalidArgument("--workload and --trace are exclusive: give one");
  }
  if (!options->json_path.empty()) {
    std::string parent = options->json_path.substr(0, options->json_path.find_last_of('/') + 1);
    if (!parent.empty() && access(parent.c_str(), W_OK) != 0) {
      return Status::InvalidArgument("--json: directory " + parent + " does not exist or is not writable");
    }
  }
  if (options->IsSet("gpu_cache_bytes") && options->IsSet("gpu_budget_bytes") &&
      options->gpu_cache_bytes > options->gpu_budget_bytes) {
    return Status::InvalidArgument("--gpu-cache-bytes is larger than --gpu-budget-bytes");
  }
  return Status::Ok();
}

}  // namespace

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> variables;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string text(*entry);
    size_t equals = text.find('=');
    if (equals == std::string::npos || text.rfind("TIERCACHE_", 0) != 0) continue;
    variables[text.substr(0, equals)] = text.substr(equals + 1);
  }
  return variables;
}

std::string DefaultWorkload(Command command) {
  // A dense decoder: 16 layers of 4 blocks of 4 MiB (256 MiB), 8 decode steps.
  if (command == Command::kSimulate) return "dense:layers=32,blocks=4,bytes=4MiB,steps=20";
  return "dense:layers=16,blocks=4,bytes=4MiB,steps=8";
}

Result<Options> ParseOptions(int argc, const char* const* argv,
                             const std::map<std::string, std::string>& environment) {
  Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  size_t index = 0;
  if (index < args.size() && !args[index].empty() && args[index][0] != '-') {
    int consumed = 1;
    std::string next = index + 1 < args.size() ? args[index + 1] : "";
    TC_ASSIGN_OR_RETURN(options.command, ParseCommand(args[index], next, &consumed));
    if (options.command == Command::kHelp) {
      options.help_topic = next;
      return options;
    }
    index += consumed;
  }

  // Flags are collected first so the config file (named by a flag or the
  // environment) can be applied underneath them.
  std::vector<std::pair<const Setting*, std::string>> flags;
  std::string config_path;
  if (auto it = environment.find("TIERCACHE_CONFIG"); it != environment.end()) config_path = it->second;
  for (; index < args.size(); ++index) {
    const std::string& arg = args[index];
    if (arg == "-h" || arg == "--help") {
      options.help_topic = options.command == Command::kRun ? "" : args.empty() ? "" : args[0];
      options.command = Command::kHelp;
      return options;
    }
    if (arg.rfind("--", 0) != 0) return Status::InvalidArgument("unexpected argument '" + arg + "'");
    size_t equals = arg.find('=');
    std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    for (char& c : name) c = (c == '-') ? '_' : c;
    std::string value;
    bool has_value = equals != std::string::npos;
    if (has_value) value = arg.substr(equals + 1);
    if (name == "config") {
      if (!has_value) {
        if (index + 1 >= args.size()) return Status::InvalidArgument("--config needs a FILE");
        value = args[++index];
      }
      config_path = value;
      continue;
    }
    const Setting* setting = FindSetting(name);
    if (setting == nullptr) return Status::InvalidArgument("unknown option '" + arg + "' (see --help)");
    if (!has_value) {
      if (setting->value[0] == '\0') {
        value = "on";  // a switch
      } else {
        if (index + 1 >= args.size()) {
          return Status::InvalidArgument(FlagName(name) + " needs a value " + setting->value);
        }
        value = args[++index];
      }
    }
    flags.emplace_back(setting, value);
  }

  options.config_path = config_path;
  options.environment = environment;
  if (!config_path.empty()) TC_RETURN_IF_ERROR(ApplyConfigFile(config_path, &options));
  for (const Setting& setting : Settings()) {
    if (!setting.from_env) continue;
    auto it = environment.find(EnvironmentName(setting.name));
    if (it == environment.end()) continue;
    TC_RETURN_IF_ERROR(Apply(setting, it->second, EnvironmentName(setting.name), &options));
  }
  for (const auto& [setting, value] : flags) {
    TC_RETURN_IF_ERROR(Apply(*setting, value, FlagName(setting->name), &options));
  }
  TC_RETURN_IF_ERROR(Validate(&options));
  return options;
}

std::string HelpText(const std::string& topic) {
  std::ostringstream out;
  out << "tiercache-bench: replays workloads through tiercache's tiers and reports cache hits,\n"
         "bytes moved, stalls and bandwidth per tier, and compares eviction policies with\n"
         "Belady's optimum.\n\n"
         "usage: tiercache-bench [COMMAND] [OPTIONS]\n\n"
         "commands:\n"
         "  run              (default) a dense model's decode steps, " +
             DefaultWorkload(Command::kRun) +
             ",\n"
             "                   through the runtime on this machine's GPU (or the emulated\n"
             "                   device), DRAM, PMEM and NVMe tiers.  e.g. tiercache-bench\n"
             "  replay           a workload or trace through the same tiers.\n"
             "                   e.g. tiercache-bench replay --workload=moe:layers=8,experts=16,tokens=64\n"
             "  simulate         every policy at many cache sizes, no data moved (fast), with\n"
             "                   Belady's MIN as the bound.\n"
             "                   e.g. tiercache-bench simulate --trace=run.csv --json=sim.json\n"
             "  trace record     write a generated workload as a trace file.\n"
             "                   e.g. tiercache-bench trace record --workload=dense:layers=8 --out=d.trace\n"
             "  trace convert    rewrite a trace in another format.\n"
             "                   e.g. tiercache-bench trace convert --trace=a.bin --trace-format=oracleGeneral\n"
             "                        --out=a.csv --format=csv\n"
             "  stress           8 threads on 4 streams acquire, release, prefetch, evict and\n"
             "                   save/restore activations for --seconds, every byte verified;\n"
             "                   reports resident memory.  e.g. tiercache-bench stress --seconds=600\n\n"
             "options (also --name VALUE; settings marked * may come from a config file or\n"
             "the TIERCACHE_<NAME> variable, with the runtime's names):\n";
  out << "  --config=FILE\n      JSON config file of settings (the runtime's keys), e.g. "
         "--config=tiercache.json;\n      also TIERCACHE_CONFIG\n";
  for (const Setting& setting : Settings()) {
    std::string flag = FlagName(setting.name);
    if (setting.value[0] != '\0') flag += std::string("=") + setting.value;
    out << "  " << flag << (setting.from_env ? "  *  (" + EnvironmentName(setting.name) + ")" : "")
        << "\n";
    std::stringstream help(setting.help);
    std::string line;
    while (std::getline(help, line)) out << "      " << line << "\n";
  }
  out << "  -h, --help\n      this text\n\n"
         "exit codes: 0 success, 1 a failure while running, 2 bad input (the message names it).\n"
         "See docs/bench.md for how to read the output.\n";
  (void)topic;
  return out.str();
}

}  // namespace tiercache::bench

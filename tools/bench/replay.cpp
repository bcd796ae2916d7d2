#include "tools/bench/replay.h"

namespace tiercache::bench {

Result<Report> ReplayCommand(const Options&, const Workload&) {
  return Status::Unavailable("replay: not built in yet");
}

}  // namespace tiercache::bench

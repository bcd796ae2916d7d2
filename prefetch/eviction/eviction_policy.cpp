#include "prefetch/eviction/eviction_policy.h"

#include <string>

#include "prefetch/eviction/adaptive_policy.h"
#include "prefetch/eviction/arc_policy.h"
#include "prefetch/eviction/lru_policy.h"
#include "prefetch/eviction/next_use_policy.h"
#include "prefetch/eviction/s3fifo_policy.h"

namespace tiercache {

Result<std::unique_ptr<EvictionPolicy>> MakeEvictionPolicy(std::string_view name,
                                                           uint64_t capacity_bytes) {
  if (name == "lru") return std::unique_ptr<EvictionPolicy>(new LruPolicy());
  if (name == "arc" || name == "s3fifo" || name == "next-use") {
    if (capacity_bytes == 0) {
      return Status::InvalidArgument("eviction policy '" + std::string(name) +
                                     "' needs a capacity above 0 bytes");
    }
    if (name == "next-use") return std::unique_ptr<EvictionPolicy>(new AdaptivePolicy(capacity_bytes));
    if (name == "arc") return std::unique_ptr<EvictionPolicy>(new ArcPolicy(capacity_bytes));
    return std::unique_ptr<EvictionPolicy>(new S3FifoPolicy(capacity_bytes));
  }
  return Status::InvalidArgument("unknown eviction policy '" + std::string(name) +
                                 "' (expected lru, arc, s3fifo or next-use)");
}

}  // namespace tiercache

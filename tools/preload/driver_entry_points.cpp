#include "tools/preload/driver_entry_points.h"

namespace tiercache::preload {

DriverFunction InterposedByVersion(std::string_view name, int version, uint64_t flags) {
  const bool per_thread = (flags & kPerThreadDefaultStreamFlag) != 0;
  if (name == "cuMemAlloc" && version >= 3020) return DriverFunction::kMemAlloc;
  if (name == "cuMemFree" && version >= 3020) return DriverFunction::kMemFree;
  if (name == "cuMemAllocAsync" && version >= 11020) {
    return per_thread ? DriverFunction::kMemAllocAsyncPerThread : DriverFunction::kMemAllocAsync;
  }
  if (name == "cuMemFreeAsync" && version >= 11020) {
    return per_thread ? DriverFunction::kMemFreeAsyncPerThread : DriverFunction::kMemFreeAsync;
  }
  if (name == "cuGetProcAddress") {
    if (version >= 12000) return DriverFunction::kGetProcAddressV2;
    if (version >= 11030) return DriverFunction::kGetProcAddress;
  }
  return DriverFunction::kNone;
}

uint64_t PerThreadLookupFlags(uint64_t flags) {
  if ((flags & (kLegacyStreamFlag | kPerThreadDefaultStreamFlag)) != 0) return flags;
  return flags | kPerThreadDefaultStreamFlag;
}

DriverFunction InterposedBySymbol(std::string_view symbol) {
  for (DriverFunction f : {DriverFunction::kMemAlloc, DriverFunction::kMemFree,
                           DriverFunction::kMemAllocAsync, DriverFunction::kMemFreeAsync,
                           DriverFunction::kMemAllocAsyncPerThread,
                           DriverFunction::kMemFreeAsyncPerThread, DriverFunction::kGetProcAddress,
                           DriverFunction::kGetProcAddressV2}) {
    if (symbol == SymbolName(f)) return f;
  }
  return DriverFunction::kNone;
}

const char* SymbolName(DriverFunction function) {
  switch (function) {
    case DriverFunction::kMemAlloc: return "cuMemAlloc_v2";
    case DriverFunction::kMemFree: return "cuMemFree_v2";
    case DriverFunction::kMemAllocAsync: return "cuMemAllocAsync";
    case DriverFunction::kMemFreeAsync: return "cuMemFreeAsync";
    case DriverFunction::kMemAllocAsyncPerThread: return "cuMemAllocAsync_ptsz";
    case DriverFunction::kMemFreeAsyncPerThread: return "cuMemFreeAsync_ptsz";
    case DriverFunction::kGetProcAddress: return "cuGetProcAddress";
    case DriverFunction::kGetProcAddressV2: return "cuGetProcAddress_v2";
    case DriverFunction::kNone: break;
  }
  return "";
}

}  // namespace tiercache::preload

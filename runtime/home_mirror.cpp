// BlockCache: copying a block's home into a persistent mirror tier on its
// first load (RegisterMirrored), so that a later process finds it there;
// with compression, the mirror holds the codec's encoding.
#include <algorithm>
#include <vector>

#include "codec/compression.h"
#include "common/log.h"
#include "runtime/block_cache.h"
#include "runtime/block_cache_internal.h"
#include "runtime/checksum.h"

namespace tiercache {

void BlockCache::MirrorHome(Block* b) {
  Tier* mirror = nullptr;
  uint64_t key = 0;
  codec::Compression mode = codec::Compression::kOff;
  HostLocation home;
  std::vector<uint32_t> verify;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // A DRAM copy serves this load: home is not read now. A staging read
    // still reading home must not see it change under it.
    if (b->mirror == nullptr || b->dram_valid || b->dram_staging) return;
    mirror = b->mirror;
    key = b->mirror_key;
    mode = b->mirror_compression;
    home = {b->home, b->home_extent};
    if (config_.verify_checksums) verify = b->checksums;
    b->mirroring = true;
  }
  auto give_up = [&](const Status& why) {
    TC_LOG_WARN("block %s: not kept in %s (%s); it stays homed on %s", b->name.c_str(),
                mirror->name().c_str(), why.ToString().c_str(), home.tier->name().c_str());
    std::lock_guard<std::mutex> lock(mutex_);
    b->mirror = nullptr;
    b->mirroring = false;
  };
  // With compression the encoder needs the whole block at hand: it is read
  // once into host memory and the mirror gets what the mode keeps (the
  // encoding, or these bytes). Without, home streams into the mirror a
  // chunk at a time.
  std::vector<unsigned char> whole;
  bool encoded = false;
  if (mode != codec::Compression::kOff) {
    whole.resize(b->bytes);
    uint64_t index = 0;
    for (uint64_t offset = 0; offset < b->bytes; offset += config_.chunk_bytes, ++index) {
      const uint64_t n = std::min<uint64_t>(config_.chunk_bytes, b->bytes - offset);
      const Status read = transfer_->ReadChunk(home, offset, whole.data() + offset, n, &verify, index);
      if (!read.ok()) return give_up(read);
    }
    Result<std::vector<uint8_t>> encoding = codec::EncodeFor(mode, whole.data(), whole.size());
    if (!encoding.ok()) return give_up(encoding.status());
    if (!encoding->empty()) {
      whole = std::move(encoding).value();
      encoded = true;
    }
  }
  const uint64_t stored = whole.empty() ? b->bytes : whole.size();
  Result<Extent> extent = mirror->Allocate(stored);
  // Short of room: blocks an earlier process left that nobody has asked for
  // (a replaced checkpoint's) give way, oldest first.
  int reclaimed = 0;
  while (!extent.ok() && extent.status().code() == ErrorCode::kOutOfSpace && mirror->ReclaimStale()) {
    ++reclaimed;
    extent = mirror->Allocate(stored);
  }
  if (reclaimed > 0) {
    TC_LOG_INFO("%s: %d stale block(s) of an earlier process reclaimed for %s", mirror->name().c_str(),
                reclaimed, b->name.c_str());
  }
  if (!extent.ok()) return give_up(extent.status());
  auto* mapped = static_cast<unsigned char*>(mirror->HostAddress(*extent));
  std::vector<unsigned char> bounce;
  if (mapped == nullptr && whole.empty()) bounce.resize(std::min<uint64_t>(config_.chunk_bytes, stored));
  std::vector<uint32_t> sums;
  Status status;
  uint64_t index = 0;
  for (uint64_t offset = 0; status.ok() && offset < stored; offset += config_.chunk_bytes, ++index) {
    const uint64_t n = std::min<uint64_t>(config_.chunk_bytes, stored - offset);
    const unsigned char* src = nullptr;
    if (!whole.empty()) {
      src = whole.data() + offset;
      status = mirror->Write(*extent, offset, src, n);
    } else {
      unsigned char* dst = mapped != nullptr ? mapped + offset : bounce.data();
      status = transfer_->ReadChunk(home, offset, dst, n, &verify, index);
      if (status.ok() && mapped == nullptr) status = mirror->Write(*extent, offset, dst, n);
      src = dst;
    }
    if (status.ok() && config_.verify_checksums) sums.push_back(ChecksumBytes(src, n));
  }
  if (status.ok()) status = mirror->Commit(key, *extent, encoded ? kCommitFlagBf16 : 0);
  if (!status.ok()) {
    (void)mirror->Free(*extent);
    return give_up(status);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  const AttachedTier* t = FindTierLocked(mirror);
  if (!b->home_direct) --slow_homed_blocks_;
  b->home = mirror;
  b->home_extent = *extent;
  b->owns_home = false;  // kept for the next process
  b->home_direct = t != nullptr && t->direct;
  if (!b->home_direct) ++slow_homed_blocks_;
  // The checksums are of the bytes the home holds: an encoding's own.
  if (encoded) {
    b->checksums = std::move(sums);
    MarkEncodedLocked(b, extent->length);
  } else if (b->checksums.empty()) {
    b->checksums = std::move(sums);
  }
  b->mirror = nullptr;
  b->mirroring = false;
}

}  // namespace tiercache

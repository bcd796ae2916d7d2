// Checkpoint: a safetensors checkpoint (one file, a directory, or a sharded
// one's model.safetensors.index.json) registered as blocks homed on the
// files themselves, read in place (FileTier): nothing is copied at
// registration.
//
// Contract
// - Open() reads every shard's header (runtime/safetensors.h: all checked),
//   groups tensors by name prefix and registers one block per group in the
//   cache: a tensor named "<head>.<N>.<rest>" with N the first all-digit
//   component (model.layers.12.mlp.up_proj.weight -> "model.layers.12") goes
//   to the group "<head>.<N>"; with a group_prefix, only names starting with
//   prefix + digits + "." are grouped. Every other tensor is a block of its
//   own, named after it (embeddings, norms, lm_head: what an engine puts on
//   the GPU once). Block names get block_prefix in front.
// - A block holds its tensors in file order; tensors adjacent in a file are
//   one range, and each range starts at a block offset congruent with its
//   file offset modulo the O_DIRECT alignment (zeros pad the gap, < 4 KiB
//   per range), so reads go straight from the file into the staging ring.
//   A block may span several ranges, and several shards. Empty tensors have
//   no block (kNoBlock).
// - With `persist` (an attached persistent tier: PMEM), each block is keyed
//   by the identity (device, inode, size, mtime) of its files and its
//   ranges: when the tier already holds that key (a previous process), the
//   block is homed there; otherwise its first load copies it there
//   (BlockCache::RegisterMirrored), encoded when `compression` says so
//   (docs/codec.md): loads from that copy then move fewer bytes.
// - Any failure leaves nothing registered (kInvalidArgument naming the file
//   and tensor for a malformed header or index, kNotFound for a missing
//   shard, kAlreadyExists for a block name taken).
// - Close() unregisters every block (kBusy, with the rest still registered,
//   while one is acquired) and detaches the file tier. A changed file makes
//   reads of its blocks fail with kCorruption (FileTier); others still work.
//
// Thread safety: the accessors are const and may be called from any thread;
// Close() must not race with them.
#ifndef TIERCACHE_RUNTIME_CHECKPOINT_H_
#define TIERCACHE_RUNTIME_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/block_cache.h"
#include "tiers/file_tier.h"

namespace tiercache {

constexpr BlockId kNoBlock = UINT64_MAX;

struct CheckpointOptions {
  std::string group_prefix;  // "" : group at the first all-digit name component
  std::string block_prefix;  // put in front of every block name
  Tier* persist = nullptr;   // a persistent tier for warm restarts (may be null)
  // How the persistent copies are stored (default: the cache config's
  // compression): bf16/auto keep the codec's encoding there. The files
  // themselves are always read as they are.
  std::optional<codec::Compression> compression;
  FileTierOptions files;     // read mode, queue depth, alignment
  // How the files' page cache is registered for DMA when every file is
  // wholly resident (FileTier::PinResidentFiles; the runtime passes the
  // device's RegisterHostReadOnly); empty: never, every read is staged.
  FileTier::PinFunction pin;
  FileTier::UnpinFunction unpin;
  // Pins only a checkpoint whose tensors take more than this many bytes (the
  // runtime passes the GPU budget): one that fits is read once, and pinning
  // would cost more than it saves; one that does not is streamed, read again
  // and again.
  uint64_t pin_above_bytes = 0;
};

struct CheckpointTensor {
  std::string name;
  std::string dtype;  // safetensors' name: "BF16", "F32", ...
  std::vector<uint64_t> shape;
  BlockId block = kNoBlock;
  uint64_t offset = 0;  // inside the block
  uint64_t bytes = 0;
  size_t shard = 0;          // index into files()
  uint64_t file_offset = 0;  // where its bytes start in that file
};

struct CheckpointBlock {
  BlockId id = kNoBlock;
  std::string name;
  uint64_t bytes = 0;
  bool persisted = false;  // found in the persistent tier at registration
};

class Checkpoint {
 public:
  static Result<std::unique_ptr<Checkpoint>> Open(BlockCache* cache, const std::string& path,
                                                  const CheckpointOptions& options);
  // Does not touch the cache (it may be gone): Close() first to unregister.
  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  Status Close();

  const std::vector<CheckpointTensor>& tensors() const { return tensors_; }
  const std::vector<CheckpointBlock>& blocks() const { return blocks_; }
  const std::vector<std::string>& files() const { return files_; }
  // Bytes of tensor data (what a loader must read at least).
  uint64_t tensor_bytes() const { return tensor_bytes_; }
  Result<size_t> FindTensor(const std::string& name) const;
  FileTier& file_tier() const { return *tier_; }
  // {"files", "tensor_bytes", "blocks": [{id, name, bytes, persisted}],
  //  "tensors": [{name, dtype, shape, block, offset, bytes}]}
  std::string Json() const;

 private:
  Checkpoint() = default;
  Status Build(const std::string& path, const CheckpointOptions& options);

  BlockCache* cache_ = nullptr;
  std::unique_ptr<FileTier> tier_;
  std::vector<std::string> files_;
  std::vector<CheckpointTensor> tensors_;
  std::vector<CheckpointBlock> blocks_;
  std::vector<Extent> extents_;  // mapped in tier_
  uint64_t tensor_bytes_ = 0;
  bool closed_ = false;
};

// The group a tensor name belongs to ("" for none), as Open() groups.
std::string CheckpointGroupOf(const std::string& tensor, const std::string& group_prefix);

}  // namespace tiercache

#endif  // TIERCACHE_RUNTIME_CHECKPOINT_H_

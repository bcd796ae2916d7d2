#include "runtime/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/log.h"
#include "runtime/json.h"
#include "runtime/safetensors.h"

namespace tiercache {
namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The shard files of `path` and, for a sharded checkpoint, its index.
Status ResolveShards(const std::string& path, std::vector<std::string>* shards,
                     std::optional<SafetensorsIndex>* index) {
  std::error_code ec;
  std::string index_path;
  if (std::filesystem::is_directory(path, ec)) {
    const std::filesystem::path dir(path);
    if (IsFile((dir / kIndexName).string())) {
      index_path = (dir / kIndexName).string();
    } else if (IsFile((dir / kSingleName).string())) {
      shards->push_back((dir / kSingleName).string());
      return Status::Ok();
    } else {
      for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (entry.is_regular_file() && EndsWith(entry.path().string(), ".safetensors")) {
          shards->push_back(entry.path().string());
        }
      }
      std::sort(shards->begin(), shards->end());
      if (shards->empty()) {
        return Status::NotFound("checkpoint: no " + std::string(kIndexName) +
                                " nor .safetensors file in " + path);
      }
      return Status::Ok();
    }
  } else if (EndsWith(path, ".json")) {
    index_path = path;
  } else {
    if (!IsFile(path)) return Status::NotFound("checkpoint: no file " + path);
    shards->push_back(path);
    return Status::Ok();
  }
  TC_ASSIGN_OR_RETURN(SafetensorsIndex parsed, ReadSafetensorsIndex(index_path));
  const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
  for (const std::string& shard : parsed.shards) shards->push_back((dir / shard).string());
  *index = std::move(parsed);
  return Status::Ok();
}

bool AllDigits(const std::string& s, size_t begin, size_t end) {
  if (begin >= end) return false;
  for (size_t i = begin; i < end; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// FNV-1a, 64 bits: the persistent key of a block's ranges.
class KeyHash {
 public:
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      hash_ ^= (v >> (8 * i)) & 0xff;
      hash_ *= 1099511628211ull;
    }
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 14695981039346656037ull;
};

struct Located {
  size_t shard;
  SafetensorsTensor tensor;
};

}  // namespace

std::string CheckpointGroupOf(const std::string& tensor, const std::string& group_prefix) {
  if (!group_prefix.empty()) {
    if (tensor.compare(0, group_prefix.size(), group_prefix) != 0) return "";
    const size_t dot = tensor.find('.', group_prefix.size());
    if (dot == std::string::npos || !AllDigits(tensor, group_prefix.size(), dot)) return "";
    return tensor.substr(0, dot);
  }
  // The first all-digit component that is not the last one.
  size_t begin = 0;
  while (true) {
    const size_t dot = tensor.find('.', begin);
    if (dot == std::string::npos) return "";
    if (AllDigits(tensor, begin, dot)) return tensor.substr(0, dot);
    begin = dot + 1;
  }
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(BlockCache* cache, const std::string& path,
                                                     const CheckpointOptions& options) {
  if (cache == nullptr) return Status::InvalidArgument("checkpoint: null cache");
  if (path.empty()) return Status::InvalidArgument("checkpoint: empty path");
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
  checkpoint->cache_ = cache;
  Status status = checkpoint->Build(path, options);
  if (!status.ok()) {
    (void)checkpoint->Close();  // nothing stays registered
    return status;
  }
  return checkpoint;
}

Checkpoint::~Checkpoint() = default;

Status Checkpoint::Build(const std::string& path, const CheckpointOptions& options) {
  std::optional<SafetensorsIndex> index;
  TC_RETURN_IF_ERROR(ResolveShards(path, &files_, &index));
  TC_ASSIGN_OR_RETURN(tier_, FileTier::Create(options.files));
  std::vector<Located> all;
  std::unordered_map<std::string, size_t> shard_of;
  for (size_t i = 0; i < files_.size(); ++i) {
    TC_ASSIGN_OR_RETURN(int handle, tier_->AddFile(files_[i]));
    (void)handle;  // == i
    TC_ASSIGN_OR_RETURN(SafetensorsHeader header, ReadSafetensorsHeader(files_[i]));
    if (tier_->file_identity(static_cast<int>(i)).size < header.data_offset) {
      return Status::Corruption("checkpoint: " + files_[i] + " changed while being opened");
    }
    for (SafetensorsTensor& t : header.tensors) {
      if (!shard_of.emplace(t.name, i).second) {
        return Status::InvalidArgument("checkpoint: tensor '" + t.name + "' is in both " +
                                       files_[shard_of[t.name]] + " and " + files_[i]);
      }
      all.push_back({i, std::move(t)});
    }
  }
  if (index.has_value()) {
    for (const auto& [name, shard] : index->weight_map) {
      auto it = shard_of.find(name);
      if (it == shard_of.end() || it->second != shard) {
        return Status::InvalidArgument("checkpoint: the index puts tensor '" + name + "' in " +
                                       files_[shard] + ", which does not hold it");
      }
    }
  }
  // Groups in order of first appearance; ungrouped tensors alone.
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  std::unordered_map<std::string, size_t> group_index;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].tensor.bytes() == 0) continue;
    const std::string key = CheckpointGroupOf(all[i].tensor.name, options.group_prefix);
    if (key.empty()) {
      groups.push_back({all[i].tensor.name, {i}});
      continue;
    }
    auto [it, added] = group_index.emplace(key, groups.size());
    if (added) groups.push_back({key, {}});
    groups[it->second].second.push_back(i);
  }
  tensors_.resize(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    CheckpointTensor& t = tensors_[i];
    t.name = all[i].tensor.name;
    t.dtype = all[i].tensor.dtype;
    t.shape = all[i].tensor.shape;
    t.bytes = all[i].tensor.bytes();
    t.shard = all[i].shard;
    t.file_offset = all[i].tensor.begin;
    tensor_bytes_ += t.bytes;
  }
  // Pinned, the files are a registered home: uploads DMA from them.
  const bool pinned = options.pin && tensor_bytes_ > options.pin_above_bytes &&
                      tier_->PinResidentFiles(options.pin, options.unpin);
  TC_RETURN_IF_ERROR(cache_->AttachTier(tier_.get(), pinned));
  const uint64_t align = tier_->alignment();
  for (const auto& [key, members] : groups) {
    // Ranges of adjacent tensors, each at a block offset congruent with its
    // file offset modulo the alignment.
    std::vector<FilePiece> pieces;
    uint64_t length = 0;
    KeyHash hash;
    for (size_t m = 0; m < members.size(); ++m) {
      const Located& l = all[members[m]];
      const bool extends = !pieces.empty() && pieces.back().file == static_cast<int>(l.shard) &&
                           pieces.back().offset + pieces.back().bytes == l.tensor.begin;
      if (extends) {
        pieces.back().bytes += l.tensor.bytes();
      } else {
        const uint64_t pad = (l.tensor.begin - length) & (align - 1);
        if (pad != 0) pieces.push_back({FilePiece::kZeros, 0, pad});
        length += pad;
        pieces.push_back({static_cast<int>(l.shard), l.tensor.begin, l.tensor.bytes()});
      }
      tensors_[members[m]].offset = length;  // the range continues where the last ended
      length += l.tensor.bytes();
    }
    for (const FilePiece& p : pieces) {
      if (p.file != FilePiece::kZeros) {
        const FileIdentity id = tier_->file_identity(p.file);
        hash.Add(id.device);
        hash.Add(id.inode);
        hash.Add(id.size);
        hash.Add(static_cast<uint64_t>(id.mtime_ns));
        hash.Add(p.offset);
      }
      hash.Add(p.bytes);
    }
    TC_ASSIGN_OR_RETURN(Extent extent, tier_->Map(pieces));
    extents_.push_back(extent);
    CheckpointBlock block;
    block.name = options.block_prefix + key;
    block.bytes = length;
    Result<BlockId> id = Status::Internal("unset");
    if (options.persist != nullptr) {
      // Kept by an earlier process: raw, or encoded (RegisterFromKey reads
      // which and the decoded size) under whatever compression it had.
      id = cache_->RegisterFromKey(block.name, options.persist, hash.value(), kNoGroup, length);
      block.persisted = id.ok();
      if (!block.persisted) {
        const ErrorCode why = id.status().code();
        if (why == ErrorCode::kAlreadyExists) return id.status();  // the name, not the key
        if (why != ErrorCode::kNotFound) {
          (void)options.persist->Forget(hash.value());  // stale or damaged: copied again
        }
        id = cache_->RegisterMirrored(block.name, tier_.get(), extent, options.persist,
                                      hash.value(), kNoGroup, options.compression);
      }
    } else {
      id = cache_->RegisterFromTier(block.name, tier_.get(), extent);
    }
    if (!id.ok()) return id.status();
    block.id = *id;
    for (size_t m : members) tensors_[m].block = block.id;
    blocks_.push_back(std::move(block));
  }
  return Status::Ok();
}

Status Checkpoint::Close() {
  if (closed_) return Status::Ok();
  while (!blocks_.empty()) {
    TC_RETURN_IF_ERROR(cache_->Unregister(blocks_.back().id));
    blocks_.pop_back();
  }
  if (tier_ != nullptr) {
    TC_RETURN_IF_ERROR(cache_->DetachTier(tier_.get()));
    for (const Extent& e : extents_) (void)tier_->Unmap(e);
    extents_.clear();
  }
  closed_ = true;
  return Status::Ok();
}

Result<size_t> Checkpoint::FindTensor(const std::string& name) const {
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (tensors_[i].name == name) return i;
  }
  return Status::NotFound("checkpoint: no tensor named '" + name + "'");
}

std::string Checkpoint::Json() const {
  JsonWriter w;
  w.BeginObject();
  w.Key("files").BeginArray();
  for (const std::string& f : files_) w.String(f);
  w.EndArray();
  w.Key("tensor_bytes").Uint(tensor_bytes_);
  w.Key("blocks").BeginArray();
  for (const CheckpointBlock& b : blocks_) {
    w.BeginObject()
        .Key("id").Uint(b.id)
        .Key("name").String(b.name)
        .Key("bytes").Uint(b.bytes)
        .Key("persisted").Bool(b.persisted)
        .EndObject();
  }
  w.EndArray();
  w.Key("tensors").BeginArray();
  for (const CheckpointTensor& t : tensors_) {
    w.BeginObject().Key("name").String(t.name).Key("dtype").String(t.dtype);
    w.Key("shape").BeginArray();
    for (uint64_t d : t.shape) w.Uint(d);
    w.EndArray();
    w.Key("block");
    if (t.block == kNoBlock) {
      w.Null();
    } else {
      w.Uint(t.block);
    }
    w.Key("offset").Uint(t.offset).Key("bytes").Uint(t.bytes).EndObject();
  }
  w.EndArray();
  w.EndObject();
  return w.text();
}

}  // namespace tiercache

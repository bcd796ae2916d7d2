// The C API (include/tiercache/tiercache.h) over tiercache::Runtime.
//
// Every entry point runs inside Guard(): arguments are checked first, then
// the C++ call; a Status becomes its (negative) code and the thread's last
// error, and every exception is caught and translated, so nothing unwinds
// into C.
#include "tiercache/tiercache.h"

#include <cstdio>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/check.h"
#include "runtime/c_api_handle.h"
#include "runtime/runtime.h"

struct tiercache_config {
  tiercache::RuntimeConfig config;
};

namespace {

using tiercache::ErrorCode;
using tiercache::Result;
using tiercache::Status;

thread_local std::string last_error;

int Fail(ErrorCode code, std::string message) {
  last_error = std::move(message);
  return static_cast<int>(code);
}

int Translate(const Status& status) {
  if (status.ok()) return TIERCACHE_OK;
  return Fail(status.code(), status.ToString());
}

// Runs `body` (returning Status), catching everything.
template <typename Body>
int Guard(const char* function, Body&& body) {
  try {
    last_error.clear();
    return Translate(body());
  } catch (const tiercache::LogicError& e) {
    return Fail(ErrorCode::kInternal, std::string(function) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return Fail(ErrorCode::kOutOfMemory, std::string(function) + ": out of host memory");
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal, std::string(function) + ": " + e.what());
  } catch (...) {
    return Fail(ErrorCode::kInternal, std::string(function) + ": unknown exception");
  }
}

Status Null(const char* what) { return Status::InvalidArgument(std::string(what) + " is NULL"); }

// Device memory a caller passes, checked before any work is enqueued on it:
// a range of the runtime's pool must lie inside one live allocation
// (tiercache_device_alloc, tiercache_restore, an acquired block) and, with
// `whole`, start it (memory the runtime is to free). Memory the pool does
// not own (the engine's own) is left to the device's checks unless `whole`.
Status CheckDeviceRange(const tiercache::Runtime& rt, const void* pointer, uint64_t bytes,
                        const char* what, bool whole) {
  using Range = tiercache::DeviceAllocator::Range;
  const Range range = rt.allocator().Classify(pointer, bytes);
  if (range == Range::kLiveStart || (range == Range::kLive && !whole) ||
      (range == Range::kForeign && !whole)) {
    return Status::Ok();
  }
  char range_text[64];
  std::snprintf(range_text, sizeof(range_text), " [%p, +%llu)", pointer,
                static_cast<unsigned long long>(bytes));
  const std::string where = what + std::string(range_text);
  if (range == Range::kLive) {
    return Status::InvalidArgument(where + " does not start an allocation of this runtime (the memory "
                                           "it is to free must come from tiercache_device_alloc)");
  }
  if (range == Range::kForeign) {
    return Status::InvalidArgument(where + " is not memory from this runtime (the memory it is to free "
                                           "must come from tiercache_device_alloc)");
  }
  return Status::InvalidArgument(where + " is not inside one live allocation of this runtime "
                                         "(freed memory, an overrun or a range across two allocations)");
}

// Copies `text` by the header's buffer rule.
Status CopyOut(const std::string& text, char* buffer, size_t size, size_t* needed) {
  if (needed != nullptr) *needed = text.size() + 1;
  if (buffer == nullptr || size == 0) {
    return buffer == nullptr && size == 0 && needed != nullptr
               ? Status::OutOfSpace("buffer of 0 bytes; *needed holds the size")
               : Status::InvalidArgument("buffer is NULL or of size 0");
  }
  const size_t n = std::min(size - 1, text.size());
  std::memcpy(buffer, text.data(), n);
  buffer[n] = '\0';
  if (n < text.size()) return Status::OutOfSpace("buffer too small; *needed holds the size");
  return Status::Ok();
}

Result<tiercache::Tier*> HomeTier(tiercache_runtime* rt, const char* name) {
  if (name == nullptr) return Null("home_tier");
  tiercache::Tier* tier = rt->runtime->tier(name);
  if (tier == nullptr) {
    return Status::NotFound(std::string("no tier named '") + name +
                            "' is configured (dram, pmem, nvme)");
  }
  return tier;
}

std::string NameOf(const char* name) { return name == nullptr ? std::string() : name; }

}  // namespace

extern "C" {

const char* tiercache_version(void) { return "0.1.0"; }

const char* tiercache_last_error(void) { return last_error.c_str(); }

const char* tiercache_status_name(int status) {
  if (status > 0 || status < static_cast<int>(ErrorCode::kInternal)) return "unknown status";
  return tiercache::ErrorCodeName(static_cast<ErrorCode>(status));
}

int tiercache_config_create(tiercache_config** out) {
  return Guard(__func__, [&] {
    if (out == nullptr) return Null("out");
    *out = new tiercache_config();
    return Status::Ok();
  });
}

int tiercache_config_from_env(tiercache_config** out) {
  return Guard(__func__, [&] {
    if (out == nullptr) return Null("out");
    *out = nullptr;
    auto config = std::make_unique<tiercache_config>();
    TC_RETURN_IF_ERROR(tiercache::ApplyConfigEnvironment(&config->config));
    *out = config.release();
    return Status::Ok();
  });
}

int tiercache_config_set(tiercache_config* config, const char* key, const char* value) {
  return Guard(__func__, [&] {
    if (config == nullptr) return Null("config");
    if (key == nullptr) return Null("key");
    if (value == nullptr) return Null("value");
    return tiercache::SetConfigField(key, value, &config->config);
  });
}

int tiercache_config_load_file(tiercache_config* config, const char* path) {
  return Guard(__func__, [&] {
    if (config == nullptr) return Null("config");
    if (path == nullptr) return Null("path");
    return tiercache::LoadConfigFile(path, &config->config);
  });
}

int tiercache_config_to_json(const tiercache_config* config, char* buffer, size_t size,
                             size_t* needed) {
  return Guard(__func__, [&] {
    if (config == nullptr) return Null("config");
    return CopyOut(tiercache::ConfigToJson(config->config), buffer, size, needed);
  });
}

void tiercache_config_destroy(tiercache_config* config) { delete config; }

int tiercache_open(const tiercache_config* config, tiercache_runtime** out) {
  return Guard(__func__, [&] {
    if (out == nullptr) return Null("out");
    *out = nullptr;
    tiercache::RuntimeConfig c;
    if (config != nullptr) {
      c = config->config;
    } else {
      TC_RETURN_IF_ERROR(tiercache::ApplyConfigEnvironment(&c));
    }
    TC_ASSIGN_OR_RETURN(std::unique_ptr<tiercache::Runtime> runtime, tiercache::Runtime::Create(c));
    *out = new tiercache_runtime{std::move(runtime)};
    return Status::Ok();
  });
}

int tiercache_close(tiercache_runtime* runtime) {
  return Guard(__func__, [&] {
    if (runtime != nullptr && runtime->borrowed) {
      return Status::InvalidArgument("tiercache_close: this runtime belongs to the preload library");
    }
    delete runtime;
    return Status::Ok();
  });
}

// The body of every call that takes a runtime: checks it, then runs.
#define TC_WITH_RUNTIME(body)                                 \
  return Guard(__func__, [&]() -> Status {                    \
    if (runtime == nullptr) return Null("runtime");           \
    tiercache::Runtime& rt = *runtime->runtime;               \
    (void)rt;                                                 \
    body                                                      \
  })

int tiercache_drain(tiercache_runtime* runtime) {
  TC_WITH_RUNTIME({ return rt.cache().Drain(); });
}

int tiercache_is_emulated(tiercache_runtime* runtime, int* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    *out = rt.device().info().kind == tiercache::DeviceKind::kEmulated ? 1 : 0;
    return Status::Ok();
  });
}

int tiercache_stats_json(tiercache_runtime* runtime, char* buffer, size_t size, size_t* needed) {
  TC_WITH_RUNTIME({ return CopyOut(rt.StatsJson(), buffer, size, needed); });
}

int tiercache_group_create(tiercache_runtime* runtime, const char* name, tiercache_group* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    TC_ASSIGN_OR_RETURN(*out, rt.cache().CreateGroup(NameOf(name)));
    return Status::Ok();
  });
}

int tiercache_register_buffer(tiercache_runtime* runtime, const char* name, const void* data,
                              uint64_t bytes, const char* home_tier, tiercache_group group,
                              tiercache_block* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    if (data == nullptr) return Null("data");
    TC_ASSIGN_OR_RETURN(tiercache::Tier * home, HomeTier(runtime, home_tier));
    TC_ASSIGN_OR_RETURN(*out, rt.cache().RegisterFromBuffer(NameOf(name), data, bytes, home, group));
    return Status::Ok();
  });
}

int tiercache_register_buffer_compressed(tiercache_runtime* runtime, const char* name,
                                         const void* data, uint64_t bytes, const char* home_tier,
                                         tiercache_group group, const char* compression,
                                         tiercache_block* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    if (data == nullptr) return Null("data");
    std::optional<tiercache::codec::Compression> mode;
    if (compression != nullptr) {
      tiercache::Result<tiercache::codec::Compression> parsed = tiercache::codec::ParseCompression(compression);
      if (!parsed.ok()) return parsed.status();
      mode = *parsed;
    }
    TC_ASSIGN_OR_RETURN(tiercache::Tier * home, HomeTier(runtime, home_tier));
    TC_ASSIGN_OR_RETURN(*out, rt.cache().RegisterFromBuffer(NameOf(name), data, bytes, home, group, mode));
    return Status::Ok();
  });
}

int tiercache_register_file(tiercache_runtime* runtime, const char* name, const char* path,
                            uint64_t offset, uint64_t bytes, const char* home_tier,
                            tiercache_group group, tiercache_block* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    if (path == nullptr) return Null("path");
    TC_ASSIGN_OR_RETURN(tiercache::Tier * home, HomeTier(runtime, home_tier));
    TC_ASSIGN_OR_RETURN(*out, rt.cache().RegisterFromFile(NameOf(name), path, offset, bytes,
                                                          home, group));
    return Status::Ok();
  });
}

int tiercache_register_safetensors(tiercache_runtime* runtime, const char* path,
                                   const char* group_prefix, const char* block_prefix,
                                   const char* persist_tier, tiercache_checkpoint* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    if (path == nullptr) return Null("path");
    tiercache::CheckpointOptions options;
    options.group_prefix = NameOf(group_prefix);
    options.block_prefix = NameOf(block_prefix);
    if (persist_tier != nullptr) {
      TC_ASSIGN_OR_RETURN(options.persist, HomeTier(runtime, persist_tier));
      if (!options.persist->persistent()) {
        return Status::InvalidArgument(std::string("persist_tier '") + persist_tier +
                                       "' is not a persistent tier (pmem)");
      }
    }
    TC_ASSIGN_OR_RETURN(*out, rt.RegisterCheckpoint(path, std::move(options)));
    return Status::Ok();
  });
}

int tiercache_checkpoint_close(tiercache_runtime* runtime, tiercache_checkpoint checkpoint) {
  TC_WITH_RUNTIME({ return rt.CloseCheckpoint(checkpoint); });
}

int tiercache_checkpoint_tensor_count(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                      size_t* count) {
  TC_WITH_RUNTIME({
    if (count == nullptr) return Null("count");
    TC_ASSIGN_OR_RETURN(const tiercache::Checkpoint* c, rt.checkpoint(checkpoint));
    *count = c->tensors().size();
    return Status::Ok();
  });
}

// The checkpoint's tensor `index`, checked.
#define TC_TENSOR(var)                                                                  \
  TC_ASSIGN_OR_RETURN(const tiercache::Checkpoint* tc_checkpoint, rt.checkpoint(checkpoint)); \
  if (index >= tc_checkpoint->tensors().size()) {                                       \
    return Status::NotFound("checkpoint " + std::to_string(checkpoint) + " has " +      \
                            std::to_string(tc_checkpoint->tensors().size()) +           \
                            " tensors; no index " + std::to_string(index));             \
  }                                                                                     \
  const tiercache::CheckpointTensor& var = tc_checkpoint->tensors()[index]

int tiercache_checkpoint_tensor(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                size_t index, tiercache_tensor_info* info) {
  TC_WITH_RUNTIME({
    if (info == nullptr) return Null("info");
    TC_TENSOR(t);
    *info = tiercache_tensor_info{};
    info->block = t.block;
    info->offset = t.offset;
    info->bytes = t.bytes;
    info->ndim = static_cast<uint32_t>(t.shape.size());
    std::strncpy(info->dtype, t.dtype.c_str(), sizeof(info->dtype) - 1);
    return Status::Ok();
  });
}

int tiercache_checkpoint_tensor_name(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                     size_t index, char* buffer, size_t size, size_t* needed) {
  TC_WITH_RUNTIME({
    TC_TENSOR(t);
    return CopyOut(t.name, buffer, size, needed);
  });
}

int tiercache_checkpoint_tensor_shape(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                      size_t index, uint64_t* dims, size_t capacity, size_t* ndim) {
  TC_WITH_RUNTIME({
    if (ndim == nullptr) return Null("ndim");
    if (dims == nullptr && capacity > 0) return Null("dims");
    TC_TENSOR(t);
    *ndim = t.shape.size();
    std::copy(t.shape.begin(), t.shape.begin() + std::min(capacity, t.shape.size()), dims);
    if (t.shape.size() > capacity) {
      return Status::OutOfSpace("tensor " + t.name + " has " + std::to_string(t.shape.size()) +
                                " dimensions, capacity is " + std::to_string(capacity));
    }
    return Status::Ok();
  });
}

int tiercache_checkpoint_find_tensor(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                                     const char* name, size_t* index) {
  TC_WITH_RUNTIME({
    if (name == nullptr) return Null("name");
    if (index == nullptr) return Null("index");
    TC_ASSIGN_OR_RETURN(const tiercache::Checkpoint* c, rt.checkpoint(checkpoint));
    TC_ASSIGN_OR_RETURN(*index, c->FindTensor(name));
    return Status::Ok();
  });
}

int tiercache_checkpoint_json(tiercache_runtime* runtime, tiercache_checkpoint checkpoint,
                              char* buffer, size_t size, size_t* needed) {
  TC_WITH_RUNTIME({
    TC_ASSIGN_OR_RETURN(const tiercache::Checkpoint* c, rt.checkpoint(checkpoint));
    return CopyOut(c->Json(), buffer, size, needed);
  });
}

int tiercache_unregister(tiercache_runtime* runtime, tiercache_block block) {
  TC_WITH_RUNTIME({ return rt.cache().Unregister(block); });
}

int tiercache_find_block(tiercache_runtime* runtime, const char* name, tiercache_block* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    if (name == nullptr) return Null("name");
    TC_ASSIGN_OR_RETURN(*out, rt.cache().FindBlock(name));
    return Status::Ok();
  });
}

int tiercache_block_size(tiercache_runtime* runtime, tiercache_block block, uint64_t* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    TC_ASSIGN_OR_RETURN(tiercache::BlockInfo info, rt.cache().Info(block));
    *out = info.bytes;
    return Status::Ok();
  });
}

int tiercache_acquire(tiercache_runtime* runtime, tiercache_block block, void* stream,
                      void** device_ptr) {
  TC_WITH_RUNTIME({
    if (device_ptr == nullptr) return Null("device_ptr");
    TC_ASSIGN_OR_RETURN(*device_ptr, rt.cache().Acquire(block, stream));
    return Status::Ok();
  });
}

int tiercache_try_acquire(tiercache_runtime* runtime, tiercache_block block, void* stream,
                          void** device_ptr) {
  TC_WITH_RUNTIME({
    if (device_ptr == nullptr) return Null("device_ptr");
    TC_ASSIGN_OR_RETURN(*device_ptr, rt.cache().TryAcquire(block, stream));
    return Status::Ok();
  });
}

int tiercache_release(tiercache_runtime* runtime, tiercache_block block, void* stream) {
  TC_WITH_RUNTIME({ return rt.cache().Release(block, stream); });
}

int tiercache_prefetch(tiercache_runtime* runtime, const tiercache_block* blocks, size_t count) {
  TC_WITH_RUNTIME({
    if (blocks == nullptr && count > 0) return Null("blocks");
    return rt.cache().Prefetch(std::vector<tiercache::BlockId>(blocks, blocks + count));
  });
}

int tiercache_acquire_group(tiercache_runtime* runtime, tiercache_group group, void* stream,
                            void** device_ptrs, size_t capacity, size_t* count) {
  TC_WITH_RUNTIME({
    if (count == nullptr) return Null("count");
    if (device_ptrs == nullptr && capacity > 0) return Null("device_ptrs");
    TC_ASSIGN_OR_RETURN(std::vector<tiercache::BlockId> members, rt.cache().GroupMembers(group));
    *count = members.size();
    if (members.size() > capacity) {
      return Status::OutOfSpace("group has " + std::to_string(members.size()) +
                                " blocks, capacity is " + std::to_string(capacity));
    }
    TC_ASSIGN_OR_RETURN(std::vector<void*> pointers, rt.cache().AcquireGroup(group, stream));
    *count = pointers.size();
    std::copy(pointers.begin(), pointers.end(), device_ptrs);
    return Status::Ok();
  });
}

int tiercache_release_group(tiercache_runtime* runtime, tiercache_group group, void* stream) {
  TC_WITH_RUNTIME({ return rt.cache().ReleaseGroup(group, stream); });
}

int tiercache_hint_next_use(tiercache_runtime* runtime, tiercache_block block,
                            uint64_t accesses_from_now) {
  TC_WITH_RUNTIME({ return rt.cache().HintNextUse(block, accesses_from_now); });
}

int tiercache_hint_order(tiercache_runtime* runtime, const tiercache_block* blocks,
                         size_t count) {
  TC_WITH_RUNTIME({
    if (blocks == nullptr && count > 0) return Null("blocks");
    return rt.cache().HintOrder(std::vector<tiercache::BlockId>(blocks, blocks + count));
  });
}

int tiercache_evict(tiercache_runtime* runtime, tiercache_block block) {
  TC_WITH_RUNTIME({ return rt.cache().Evict(block); });
}

int tiercache_device_alloc(tiercache_runtime* runtime, uint64_t bytes, void* stream, void** out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    TC_ASSIGN_OR_RETURN(*out, rt.allocator().Allocate(bytes, stream));
    return Status::Ok();
  });
}

int tiercache_device_free(tiercache_runtime* runtime, void* device_ptr, void* stream) {
  TC_WITH_RUNTIME({
    if (device_ptr == nullptr) return Null("device_ptr");
    return rt.allocator().Free(device_ptr, stream);
  });
}

// The activation store exists when a DRAM or NVMe tier is configured.
#define TC_ACTIVATIONS()                                                            \
  if (rt.activations() == nullptr)                                                  \
    return Status::Unavailable("no host tier for activations (dram_bytes = 0 and no NVMe)");

int tiercache_save(tiercache_runtime* runtime, void* device_ptr, uint64_t bytes, void* stream,
                   unsigned flags, tiercache_activation* out) {
  TC_WITH_RUNTIME({
    if (out == nullptr) return Null("out");
    if ((flags & ~TIERCACHE_SAVE_KEEP_DEVICE) != 0) return Status::InvalidArgument("unknown flags");
    TC_ACTIVATIONS();
    if (device_ptr == nullptr) return Null("device_ptr");
    TC_RETURN_IF_ERROR(CheckDeviceRange(rt, device_ptr, bytes, "device_ptr",
                                        (flags & TIERCACHE_SAVE_KEEP_DEVICE) == 0));
    TC_ASSIGN_OR_RETURN(*out, rt.activations()->Save(device_ptr, bytes, stream,
                                                    (flags & TIERCACHE_SAVE_KEEP_DEVICE) == 0));
    return Status::Ok();
  });
}

int tiercache_save_wait(tiercache_runtime* runtime, tiercache_activation handle, void* stream) {
  TC_WITH_RUNTIME({
    TC_ACTIVATIONS();
    return rt.activations()->WaitSaved(handle, stream);
  });
}

int tiercache_restore(tiercache_runtime* runtime, tiercache_activation handle, void* stream,
                      void** device_ptr) {
  TC_WITH_RUNTIME({
    if (device_ptr == nullptr) return Null("device_ptr");
    TC_ACTIVATIONS();
    TC_ASSIGN_OR_RETURN(*device_ptr, rt.activations()->Restore(handle, stream));
    return Status::Ok();
  });
}

int tiercache_prefetch_restore(tiercache_runtime* runtime, const tiercache_activation* handles,
                               size_t count) {
  TC_WITH_RUNTIME({
    if (handles == nullptr && count > 0) return Null("handles");
    TC_ACTIVATIONS();
    return rt.activations()->PrefetchRestore(
        std::vector<tiercache::ActivationHandle>(handles, handles + count));
  });
}

int tiercache_discard(tiercache_runtime* runtime, tiercache_activation handle) {
  TC_WITH_RUNTIME({
    TC_ACTIVATIONS();
    return rt.activations()->Discard(handle);
  });
}

int tiercache_stream_create(tiercache_runtime* runtime, void** stream) {
  TC_WITH_RUNTIME({
    if (stream == nullptr) return Null("stream");
    TC_ASSIGN_OR_RETURN(*stream, rt.device().CreateStream());
    return Status::Ok();
  });
}

int tiercache_stream_destroy(tiercache_runtime* runtime, void* stream) {
  TC_WITH_RUNTIME({
    if (stream == nullptr) return Status::InvalidArgument("the default stream cannot be destroyed");
    return rt.device().DestroyStream(stream);
  });
}

int tiercache_stream_synchronize(tiercache_runtime* runtime, void* stream) {
  TC_WITH_RUNTIME({ return rt.device().StreamSynchronize(stream); });
}

int tiercache_copy_to_host(tiercache_runtime* runtime, void* host_dst, const void* device_src,
                           uint64_t bytes, void* stream) {
  TC_WITH_RUNTIME({
    if (host_dst == nullptr) return Null("host_dst");
    if (device_src == nullptr) return Null("device_src");
    TC_RETURN_IF_ERROR(CheckDeviceRange(rt, device_src, bytes, "device_src", false));
    return rt.device().CopyAsync(host_dst, device_src, bytes, tiercache::CopyKind::kDeviceToHost,
                                 stream);
  });
}

int tiercache_copy_to_device(tiercache_runtime* runtime, void* device_dst, const void* host_src,
                             uint64_t bytes, void* stream) {
  TC_WITH_RUNTIME({
    if (device_dst == nullptr) return Null("device_dst");
    if (host_src == nullptr) return Null("host_src");
    TC_RETURN_IF_ERROR(CheckDeviceRange(rt, device_dst, bytes, "device_dst", false));
    return rt.device().CopyAsync(device_dst, host_src, bytes, tiercache::CopyKind::kHostToDevice,
                                 stream);
  });
}

}  // extern "C"

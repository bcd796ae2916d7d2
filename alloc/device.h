// Device: the seam between tiercache and a GPU runtime.
//
// Two implementations: CudaDevice (the CUDA runtime, linked as the shared
// cudart so the library loads on machines with the toolkit but no driver) and
// EmulatedDevice (host memory as "device memory", one worker thread per stream
// executing its work in order, events that complete when their stream reaches
// them). OpenDevice() picks CUDA when cudaGetDeviceCount finds a GPU, else the
// emulated device (recorded as the fallback "device"); TIERCACHE_DEVICE=
// emulated|cuda forces one.
//
// Stream-ordering contract (both implementations): work enqueued on a stream
// (CopyAsync, MemsetAsync, LaunchHostFunc, RecordEvent) runs in enqueue order;
// StreamWaitEvent(s, e) makes later work on s wait for everything recorded
// before e on e's stream, without blocking the host. Stream handle nullptr is
// the device's default stream, ordered like any other stream.
//
// Thread safety: every method may be called from any thread; a stream may be
// fed from several threads (their enqueues interleave in some order).
#ifndef TIERCACHE_ALLOC_DEVICE_H_
#define TIERCACHE_ALLOC_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "codec/bf16_layout.h"
#include "common/status.h"

namespace tiercache {

using Stream = void*;  // cudaStream_t for CUDA, an internal object when emulated
using Event = void*;   // cudaEvent_t for CUDA, an internal object when emulated

enum class DeviceKind { kCuda, kEmulated };
enum class CopyKind { kHostToDevice, kDeviceToHost, kDeviceToDevice, kHostToHost };

struct DeviceInfo {
  DeviceKind kind = DeviceKind::kEmulated;
  int ordinal = 0;
  std::string name;         // "NVIDIA H100 80GB HBM3" or "emulated"
  std::string pci_bus_id;   // "0000:00:06.0"; empty when emulated
  uint64_t total_memory = 0;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceInfo& info() const = 0;

  // Device memory straight from the runtime (cudaMalloc). The pooled
  // allocator sits on top of these; engines should use the pool.
  virtual Result<void*> AllocateMemory(size_t bytes) = 0;
  virtual Status FreeMemory(void* pointer) = 0;
  virtual Result<uint64_t> FreeMemoryBytes() = 0;  // what the device still has

  // Virtual memory (cuMem on CUDA), optional: a range of addresses is
  // reserved once and physical memory is mapped into it, and unmapped, in
  // multiples of MappingGranularity() bytes, so an allocator can grow one
  // contiguous range instead of stranding the tails of separate segments.
  // MappingGranularity() is 0 when the device cannot; the other calls then
  // return kUnavailable. Mapped memory is device memory like AllocateMemory's
  // (usable by copies, counted by FreeMemoryBytes); UnmapMemory waits for
  // the device's work first, as FreeMemory does. Offsets and sizes not
  // multiples of the granularity, or outside a reserved range, are
  // kInvalidArgument.
  virtual uint64_t MappingGranularity() const { return 0; }
  virtual Result<void*> ReserveAddressRange(size_t bytes) {
    return Status::Unavailable("this device has no virtual memory management");
  }
  virtual Status FreeAddressRange(void* base) {  // everything in it unmapped first
    return Status::Unavailable("this device has no virtual memory management");
  }
  virtual Status MapMemory(void* address, size_t bytes) {
    return Status::Unavailable("this device has no virtual memory management");
  }
  virtual Status UnmapMemory(void* address, size_t bytes) {
    return Status::Unavailable("this device has no virtual memory management");
  }

  // Page-locks existing host memory (cudaHostRegister). The emulated device
  // records the range so tests can check pinning happened.
  virtual Status RegisterHost(void* pointer, size_t bytes) = 0;
  // The same for memory the device only reads and the process may only read
  // (a PROT_READ file mapping: cudaHostRegisterReadOnly). Undone by
  // UnregisterHost.
  virtual Status RegisterHostReadOnly(const void* pointer, size_t bytes) {
    return RegisterHost(const_cast<void*>(pointer), bytes);
  }
  virtual Status UnregisterHost(void* pointer) = 0;

  virtual Result<Stream> CreateStream() = 0;
  // Waits for the stream's enqueued work, then destroys it. Using the handle
  // afterwards is an error (kInvalidArgument where the device can tell).
  virtual Status DestroyStream(Stream stream) = 0;
  // A stream whose work the device prefers when several are ready; lower
  // numbers mean higher priority, as in CUDA (e.g. -1 above 0). Devices
  // without priorities ignore it.
  virtual Result<Stream> CreateStreamWithPriority(int priority) { return CreateStream(); }
  // How many streams this Device has destroyed so far. Caches keyed by stream
  // (the pooled allocator's) revalidate only when this number moves.
  virtual uint64_t DestroyedStreamCount() const { return 0; }
  // False for a handle this Device destroyed; streams it did not create (an
  // engine's own cudaStream_t) and nullptr are reported live.
  virtual bool IsStreamLive(Stream stream) const { return true; }
  virtual Result<Event> CreateEvent() = 0;
  virtual Status DestroyEvent(Event event) = 0;

  virtual Status CopyAsync(void* dst, const void* src, size_t bytes, CopyKind kind,
                           Stream stream) = 0;
  virtual Status MemsetAsync(void* dst, int value, size_t bytes, Stream stream) = 0;
  // Runs fn(arg) on a runtime thread once all earlier work on `stream` is
  // done; later work waits for it. fn must not call into the device.
  virtual Status LaunchHostFunc(Stream stream, void (*fn)(void*), void* arg) = 0;

  // Decodes chunks of a block held in the bf16 codec's encoding
  // (codec/bf16_layout.h, docs/codec.md) as stream work: later work on
  // `stream` sees the decoded bytes, and the host never waits. Every pointer
  // in `job` is device memory (codec::MakeBf16DecodeJob builds the job). The
  // CUDA device launches the decode kernel; the emulated device runs the CPU
  // decoder on the stream's worker. The call reports a bad job
  // (kInvalidArgument) or launch failure; a malformed record found while
  // decoding sets *job.error (when set) nonzero and leaves its chunk
  // unspecified. Devices without a decoder return kUnsupported.
  virtual Status DecodeAsync(const codec::Bf16DecodeJob& job, Stream stream) {
    return Status::Unsupported("this device has no bf16 decoder");
  }

  virtual Status RecordEvent(Event event, Stream stream) = 0;
  virtual Status StreamWaitEvent(Stream stream, Event event) = 0;
  virtual Result<bool> EventQuery(Event event) = 0;  // true when complete
  virtual Status EventSynchronize(Event event) = 0;
  virtual Status StreamSynchronize(Stream stream) = 0;
};

// Opens device `ordinal` as described above. Shared: one Device per process
// and ordinal is enough.
Result<std::shared_ptr<Device>> OpenDevice(int ordinal = 0);

}  // namespace tiercache

#endif  // TIERCACHE_ALLOC_DEVICE_H_

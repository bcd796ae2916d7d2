#include "tools/preload/pageable_stager.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include "tiers/topology.h"

namespace tiercache::preload {
namespace {

constexpr uint64_t kMinPieceBytes = 256ull << 10;

// Binds every worker thread that joins the arena to the node's CPUs. The
// thread that calls execute() (the application's) is left as it is.
class BindingObserver : public oneapi::tbb::task_scheduler_observer {
 public:
  BindingObserver(oneapi::tbb::task_arena& arena, std::shared_ptr<const Topology> topology,
                  std::vector<int> cpus)
      : task_scheduler_observer(arena), topology_(std::move(topology)), cpus_(std::move(cpus)) {
    observe(true);
  }
  ~BindingObserver() override { observe(false); }

  void on_scheduler_entry(bool is_worker) override {
    if (!is_worker || topology_ == nullptr || cpus_.empty()) return;
    if (!topology_->BindThreadToCpus(cpus_).ok()) all_bound_.store(false);
  }
  bool all_bound() const { return all_bound_.load(); }

 private:
  std::shared_ptr<const Topology> topology_;
  std::vector<int> cpus_;
  std::atomic<bool> all_bound_{true};
};

}  // namespace

struct PageableStager::Impl {
  std::shared_ptr<Device> device;
  std::shared_ptr<const Topology> topology;
  StagerOptions options;
  NodeMemory node_memory;        // when placed through the topology
  void* ring = nullptr;          // buffers * chunk_bytes, pinned
  uint64_t ring_bytes = 0;
  bool ring_mmapped = false;
  std::vector<Event> events;     // one per buffer
  std::vector<bool> used;        // an event was recorded behind the buffer's last DMA
  size_t next = 0;
  std::unique_ptr<oneapi::tbb::task_arena> arena;
  std::unique_ptr<BindingObserver> observer;

  std::mutex mutex;  // one copy at a time
  std::atomic<uint64_t> copies{0}, bytes{0}, nanoseconds{0};

  ~Impl() {
    for (size_t i = 0; i < events.size(); ++i) {
      if (used[i]) (void)device->EventSynchronize(events[i]);
      (void)device->DestroyEvent(events[i]);
    }
    observer.reset();
    arena.reset();
    if (ring != nullptr) (void)device->UnregisterHost(ring);
    if (ring_mmapped) munmap(ring, ring_bytes);
  }

  char* Buffer(size_t i) const { return static_cast<char*>(ring) + i * options.chunk_bytes; }

  void HostCopy(char* to, const char* from, uint64_t n) {
    uint64_t pieces = std::max<uint64_t>(1, std::min<uint64_t>(options.threads, n / kMinPieceBytes));
    uint64_t piece = (n + pieces - 1) / pieces;
    arena->execute([&] {
      oneapi::tbb::parallel_for(
          oneapi::tbb::blocked_range<uint64_t>(0, pieces, 1),
          [&](const oneapi::tbb::blocked_range<uint64_t>& r) {
            for (uint64_t p = r.begin(); p != r.end(); ++p) {
              uint64_t begin = p * piece;
              if (begin >= n) continue;
              std::memcpy(to + begin, from + begin, std::min(piece, n - begin));
            }
          },
          oneapi::tbb::static_partitioner());
    });
  }

  Status Copy(char* dst, const char* src, uint64_t total, Stream stream, bool synchronous) {
    for (uint64_t offset = 0; offset < total;) {
      size_t slot = next;
      next = (next + 1) % events.size();
      if (used[slot]) TC_RETURN_IF_ERROR(device->EventSynchronize(events[slot]));
      uint64_t n = std::min(options.chunk_bytes, total - offset);
      HostCopy(Buffer(slot), src + offset, n);
      TC_RETURN_IF_ERROR(device->CopyAsync(dst + offset, Buffer(slot), n, CopyKind::kHostToDevice, stream));
      TC_RETURN_IF_ERROR(device->RecordEvent(events[slot], stream));
      used[slot] = true;
      offset += n;
    }
    if (synchronous) TC_RETURN_IF_ERROR(device->StreamSynchronize(stream));
    return Status::Ok();
  }
};

Result<std::unique_ptr<PageableStager>> PageableStager::Create(std::shared_ptr<Device> device,
                                                               std::shared_ptr<const Topology> topology,
                                                               const StagerOptions& options) {
  if (device == nullptr) return Status::InvalidArgument("stager: no device");
  if (options.chunk_bytes < 4096 || options.buffers < 2 || options.threads < 1) {
    return Status::InvalidArgument("stager: need chunk_bytes >= 4096, buffers >= 2, threads >= 1");
  }
  auto impl = std::make_unique<Impl>();
  impl->device = std::move(device);
  impl->topology = std::move(topology);
  impl->options = options;
  impl->ring_bytes = options.chunk_bytes * static_cast<uint64_t>(options.buffers);
  if (impl->topology != nullptr && options.numa_node >= 0) {
    Result<NodeMemory> memory = impl->topology->AllocateOnNode(options.numa_node, impl->ring_bytes);
    if (memory.ok()) {
      impl->node_memory = std::move(memory).value();
      impl->ring = impl->node_memory.data();
    }
  }
  if (impl->ring == nullptr) {
    void* p = mmap(nullptr, impl->ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Status::FromErrno(errno, "stager: mmap of the staging ring");
    impl->ring = p;
    impl->ring_mmapped = true;
  }
  Status pinned = impl->device->RegisterHost(impl->ring, impl->ring_bytes);
  if (!pinned.ok()) {
    if (impl->ring_mmapped) munmap(impl->ring, impl->ring_bytes);
    impl->ring = nullptr;
    impl->ring_mmapped = false;
    return pinned;
  }
  for (int i = 0; i < options.buffers; ++i) {
    Result<Event> e = impl->device->CreateEvent();
    if (!e.ok()) return e.status();
    impl->events.push_back(e.value());
    impl->used.push_back(false);
  }
  impl->arena = std::make_unique<oneapi::tbb::task_arena>(options.threads);
  impl->arena->initialize();
  impl->observer = std::make_unique<BindingObserver>(*impl->arena, impl->topology, options.cpus);
  return std::unique_ptr<PageableStager>(new PageableStager(std::move(impl)));
}

PageableStager::PageableStager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PageableStager::~PageableStager() = default;

Status PageableStager::TryCopyToDevice(void* dst, const void* src, uint64_t bytes, Stream stream,
                                       bool synchronous) {
  if (dst == nullptr || src == nullptr || bytes == 0) {
    return Status::InvalidArgument("stager: null pointer or 0 bytes");
  }
  std::unique_lock<std::mutex> lock(impl_->mutex, std::try_to_lock);
  if (!lock.owns_lock()) return Status::Busy("stager: another copy is being staged");
  auto start = std::chrono::steady_clock::now();
  Status s = impl_->Copy(static_cast<char*>(dst), static_cast<const char*>(src), bytes, stream,
                         synchronous);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
  if (s.ok()) {
    impl_->copies.fetch_add(1);
    impl_->bytes.fetch_add(bytes);
    impl_->nanoseconds.fetch_add(static_cast<uint64_t>(ns.count()));
  }
  return s;
}

StagerStats PageableStager::stats() const {
  StagerStats s;
  s.copies = impl_->copies.load();
  s.bytes = impl_->bytes.load();
  s.seconds = static_cast<double>(impl_->nanoseconds.load()) * 1e-9;
  s.threads = impl_->options.threads;
  s.numa_node = impl_->options.numa_node;
  s.threads_bound = !impl_->options.cpus.empty() && impl_->observer->all_bound();
  return s;
}

}  // namespace tiercache::preload

// The DRAM tier on a real GPU machine: the GPU's PCI bus id maps to a NUMA
// node of this machine's topology, the tier is pinned there with
// cudaHostRegister (through Device::RegisterHost), and bytes round-trip
// through the GPU. Prints the pinning cost and the copy rate it saw; the
// figures to compare are in docs/perf.md (38 ms per GiB pinned, 55 GB/s
// pinned host-to-device on the H100 host). Skips without a CUDA device.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "alloc/device.h"
#include "common/units.h"
#include "tiers/dram_tier.h"
#include "tiers/topology.h"

namespace tiercache {
namespace {

std::shared_ptr<Device> CudaDeviceOrNull() {
  Result<std::shared_ptr<Device>> device = OpenDevice(0);
  if (!device.ok() || (*device)->info().kind != DeviceKind::kCuda) return nullptr;
  return *device;
}

TEST(DramTierGpu, GpuBusIdMapsToANodeOfThisMachine) {
  std::shared_ptr<Device> device = CudaDeviceOrNull();
  if (!device) GTEST_SKIP() << "no CUDA device";
  auto topology = Topology::ThisMachine();
  ASSERT_TRUE(topology.ok()) << topology.status().ToString();
  const std::string& bus_id = device->info().pci_bus_id;
  Result<PciLocality> locality = (*topology)->LocatePci(bus_id);
  ASSERT_TRUE(locality.ok()) << bus_id << ": " << locality.status().ToString() << "\n"
                             << (*topology)->Describe();
  ASSERT_FALSE(locality->numa_nodes.empty());
  EXPECT_FALSE((*topology)->Node(locality->numa_nodes.front())->far_memory);
  EXPECT_FALSE(locality->cpus.empty());
  std::printf("GPU %s: nearest NUMA node %d, %zu cpus, %d cores\n", locality->bus_id.c_str(),
              locality->numa_nodes.front(), locality->cpus.size(), locality->core_count);
}

TEST(DramTierGpu, PinnedTierNearTheGpuRoundTripsThroughIt) {
  std::shared_ptr<Device> device = CudaDeviceOrNull();
  if (!device) GTEST_SKIP() << "no CUDA device";
  constexpr uint64_t kCapacity = 1 * kGiB;
  constexpr uint64_t kBytes = 256 * kMiB;
  DramTierOptions options;
  options.name = "staging";
  options.capacity = kCapacity;
  options.pci_bus_id = device->info().pci_bus_id;
  options.pin = [device](void* p, size_t n) { return device->RegisterHost(p, n); };
  options.unpin = [device](void* p, size_t) { return device->UnregisterHost(p); };
  auto tier = DramTier::Create(std::move(options));
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  const DramTierStats stats = (*tier)->dram_stats();
  EXPECT_EQ(1u, stats.slabs);
  EXPECT_EQ(kCapacity, stats.pinned_bytes);
  EXPECT_GT(stats.pin_nanoseconds, 0u);
  // Bound memory is faulted in before pinning; first-touch memory already was.
  EXPECT_EQ(stats.placement == Placement::kBound, stats.prefault_nanoseconds > 0);
  const double gib = static_cast<double>(stats.pinned_bytes) / kGiB;
  std::printf("pinned %s on node %d (%s): pre-fault %.1f ms, pin %.1f ms: %.1f + %.1f ms per GiB\n",
              FormatBytes(stats.pinned_bytes).c_str(), stats.numa_node,
              PlacementName(stats.placement), stats.prefault_nanoseconds / 1e6,
              stats.pin_nanoseconds / 1e6, stats.prefault_nanoseconds / 1e6 / gib,
              stats.pin_nanoseconds / 1e6 / gib);

  Result<Extent> source = (*tier)->Allocate(kBytes);
  Result<Extent> back = (*tier)->Allocate(kBytes);
  ASSERT_TRUE(source.ok() && back.ok());
  auto* src = static_cast<unsigned char*>((*tier)->HostAddress(*source));
  auto* dst = static_cast<unsigned char*>((*tier)->HostAddress(*back));
  for (uint64_t i = 0; i < kBytes; i += 4096) src[i] = static_cast<unsigned char>(i / 4096 + 1);
  src[kBytes - 1] = 0x7E;
  std::memset(dst, 0, kBytes);

  Result<void*> on_gpu = device->AllocateMemory(kBytes);
  ASSERT_TRUE(on_gpu.ok()) << on_gpu.status().ToString();
  Result<Stream> stream = device->CreateStream();
  ASSERT_TRUE(stream.ok());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(device->CopyAsync(*on_gpu, src, kBytes, CopyKind::kHostToDevice, *stream).ok());
  ASSERT_TRUE(device->StreamSynchronize(*stream).ok());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(device->CopyAsync(dst, *on_gpu, kBytes, CopyKind::kDeviceToHost, *stream).ok());
  ASSERT_TRUE(device->StreamSynchronize(*stream).ok());
  EXPECT_EQ(0, std::memcmp(src, dst, kBytes));
  std::printf("host-to-device from the pinned tier: %.1f GB/s (256 MiB, one copy)\n",
              kBytes / seconds / 1e9);
  EXPECT_TRUE(device->DestroyStream(*stream).ok());
  EXPECT_TRUE(device->FreeMemory(*on_gpu).ok());
}

}  // namespace
}  // namespace tiercache

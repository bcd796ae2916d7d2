#include "runtime/runtime.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc/emulated_device.h"
#include "runtime/json.h"
#include "tests/runtime/runtime_test_util.h"

namespace tiercache {
namespace {

using testing::Pattern;

TEST(RuntimeTest, AssemblesTheConfiguredTiersAndExportsStats) {
  const std::string dir = ::testing::TempDir() + "/runtime_test_" + std::to_string(getpid());
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  RuntimeConfig config;
  config.dram_bytes = 16 * kMiB;
  config.chunk_bytes = 256 * kKiB;
  config.nvme_path = dir;  // a directory: the tier makes its file inside
  config.nvme_bytes = 8 * kMiB;
  config.nvme_direct = false;
  auto device = std::make_shared<EmulatedDevice>();
  auto runtime = Runtime::Create(config, device);
  ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
  Runtime& rt = **runtime;
  ASSERT_NE(rt.tier("dram"), nullptr);
  ASSERT_NE(rt.tier("nvme"), nullptr);
  EXPECT_EQ(rt.tier("pmem"), nullptr);
  EXPECT_EQ(rt.tier("tape"), nullptr);
  ASSERT_NE(rt.activations(), nullptr);
  EXPECT_TRUE(device->IsHostRegistered(rt.tier("dram")->HostAddress(
                                           rt.tier("dram")->Allocate(4096).value()), 4096))
      << "the DRAM tier is pinned through the device";

  const auto data = Pattern(300 * kKiB, 5);
  BlockId id = rt.cache().RegisterFromBuffer("w", data.data(), data.size(), rt.tier("nvme")).value();
  Stream stream = device->CreateStream().value();
  auto ptr = rt.cache().Acquire(id, stream);
  ASSERT_TRUE(ptr.ok()) << ptr.status().ToString();
  std::vector<unsigned char> back(data.size());
  ASSERT_TRUE(device->CopyAsync(back.data(), *ptr, back.size(), CopyKind::kDeviceToHost, stream).ok());
  ASSERT_TRUE(device->StreamSynchronize(stream).ok());
  EXPECT_EQ(back, data);
  ASSERT_TRUE(rt.cache().Release(id, stream).ok());
  ASSERT_TRUE(rt.cache().Drain().ok());

  auto stats = ParseJson(rt.StatsJson());
  ASSERT_TRUE(stats.ok()) << rt.StatsJson();
  EXPECT_EQ(stats->Find("device")->Find("kind")->AsString().value(), "emulated");
  EXPECT_EQ(stats->Find("config")->Find("nvme_bytes")->AsUint64().value(), 8 * kMiB);
  EXPECT_NE(stats->Find("activations"), nullptr);
  const JsonValue* tiers = stats->Find("tiers");
  ASSERT_NE(tiers, nullptr);
  bool saw_nvme = false;
  for (const JsonValue& t : tiers->items()) {
    if (t.Find("name")->AsString().value() == "nvme") {
      saw_nvme = true;
      EXPECT_EQ(t.Find("bytes_out")->AsUint64().value(), data.size());
    }
  }
  EXPECT_TRUE(saw_nvme);
  ASSERT_TRUE(device->DestroyStream(stream).ok());
  runtime = Status::Ok();  // close before removing the files
  (void)std::remove((dir + "/tiercache.nvme").c_str());
  (void)::rmdir(dir.c_str());
}

TEST(RuntimeTest, BadConfigIsRejected) {
  RuntimeConfig config;
  config.gpu_policy = "random";
  EXPECT_EQ(Runtime::Create(config, std::make_shared<EmulatedDevice>()).status().code(),
            ErrorCode::kInvalidArgument);
  config = RuntimeConfig();
  config.pmem_path = "/nonexistent-dir/x/pool";
  config.pmem_bytes = kMiB;
  EXPECT_FALSE(Runtime::Create(config, std::make_shared<EmulatedDevice>()).ok());
}

}  // namespace
}  // namespace tiercache

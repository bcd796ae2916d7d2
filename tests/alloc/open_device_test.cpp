// OpenDevice's selection rules (device.h): TIERCACHE_DEVICE forces a kind,
// otherwise CUDA when a GPU is found, else the emulated device, recorded as
// the fallback "device".
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "alloc/device.h"
#include "common/log.h"

namespace tiercache {
namespace {

class ScopedDeviceEnv {
 public:
  explicit ScopedDeviceEnv(const char* value) {
    const char* old = std::getenv("TIERCACHE_DEVICE");
    if (old != nullptr) saved_ = old, had_ = true;
    if (value == nullptr) unsetenv("TIERCACHE_DEVICE");
    else setenv("TIERCACHE_DEVICE", value, 1);
  }
  ~ScopedDeviceEnv() {
    if (had_) setenv("TIERCACHE_DEVICE", saved_.c_str(), 1);
    else unsetenv("TIERCACHE_DEVICE");
  }
 private:
  std::string saved_;
  bool had_ = false;
};

TEST(OpenDeviceTest, EmulatedWhenForced) {
  ScopedDeviceEnv env("emulated");
  Result<std::shared_ptr<Device>> device = OpenDevice(0);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  EXPECT_EQ((*device)->info().kind, DeviceKind::kEmulated);
  EXPECT_GT((*device)->info().total_memory, 0u);
  Result<std::shared_ptr<Device>> again = OpenDevice(0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(device->get(), again->get());  // one per process and ordinal while alive
}

TEST(OpenDeviceTest, RejectsBadInput) {
  ScopedDeviceEnv env("quantum");
  EXPECT_EQ(OpenDevice(0).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenDevice(-1).status().code(), ErrorCode::kInvalidArgument);
}

TEST(OpenDeviceTest, AutoPicksCudaOrFallsBackVisibly) {
  ScopedDeviceEnv env(nullptr);
  Result<std::shared_ptr<Device>> device = OpenDevice(0);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  if ((*device)->info().kind == DeviceKind::kEmulated) {
    bool recorded = false;
    for (const FallbackEvent& event : Fallbacks()) recorded |= event.name == "device";
    EXPECT_TRUE(recorded) << "the emulated fallback must be recorded";
  } else {
    EXPECT_FALSE((*device)->info().pci_bus_id.empty());
  }
}

TEST(OpenDeviceTest, ForcedCudaFailsCleanlyWithoutAGpu) {
  ScopedDeviceEnv env("cuda");
  Result<std::shared_ptr<Device>> device = OpenDevice(0);
  if (device.ok()) {
    EXPECT_EQ((*device)->info().kind, DeviceKind::kCuda);
  } else {
    EXPECT_EQ(device.status().code(), ErrorCode::kUnavailable) << device.status().ToString();
  }
}

}  // namespace
}  // namespace tiercache

#include "core/memory_limit.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace crabcache::core {
namespace {

namespace fs = std::filesystem;

class MemoryLimitTest : public ::testing::Test {
 protected:
  MemoryLimitTest() {
    root_ =
        fs::temp_directory_path() /
        ("crabcache-memlimit-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  ~MemoryLimitTest() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }
  fs::path root_;
};

TEST_F(MemoryLimitTest, CgroupV2LimitWins) {
  Write("sys/fs/cgroup/memory.max", "1073741824\n");
  Write("proc/meminfo", "MemTotal:       24000000 kB\n");
  const MemoryLimit m = DetectMemoryLimit(root_.string());
  EXPECT_EQ(m.bytes, 1073741824u);
  EXPECT_EQ(m.source, "cgroup v2 memory.max");
  EXPECT_EQ(DefaultMaxMemory(0.8, root_.string()), 858993459u);
}

TEST_F(MemoryLimitTest, CgroupV2MaxFallsBackToPhysicalMemory) {
  Write("sys/fs/cgroup/memory.max", "max\n");
  Write("proc/meminfo", "MemTotal:       2048 kB\nMemFree: 1 kB\n");
  EXPECT_EQ(DetectMemoryLimit(root_.string()).bytes, 2048u * 1024);
}

TEST_F(MemoryLimitTest, CgroupV1UnlimitedIsIgnored) {
  Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  Write("proc/meminfo", "MemTotal: 4096 kB\n");
  EXPECT_EQ(DetectMemoryLimit(root_.string()).source, "/proc/meminfo MemTotal");
}

TEST_F(MemoryLimitTest, CgroupV1Limit) {
  Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n");
  EXPECT_EQ(DetectMemoryLimit(root_.string()).bytes, 536870912u);
}

TEST_F(MemoryLimitTest, NothingReadableMeansUnlimited) {
  fs::create_directories(root_);
  EXPECT_EQ(DetectMemoryLimit(root_.string()).source, "none");
  EXPECT_EQ(DefaultMaxMemory(0.8, root_.string()), 0u);
}

TEST(MemoryLimitRealTest, ThisMachineHasALimit) { EXPECT_GT(DetectMemoryLimit().bytes, 0u); }

}  // namespace
}  // namespace crabcache::core

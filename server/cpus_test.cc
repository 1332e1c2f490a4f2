#include "server/cpus.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace crabcache::server {
namespace {

class CpusTest : public ::testing::Test {
 protected:
  CpusTest() : root_(std::filesystem::path(::testing::TempDir()) / "cpus_root") {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "sys/fs/cgroup/cpu");
  }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel) << text;
  }
  const std::filesystem::path root_;
};

TEST_F(CpusTest, NoCgroupMeansTheAffinityMask) {
  const CpuBudget b = DetectCpus(8, root_.string());
  EXPECT_EQ(b.cpus, 8);
  EXPECT_EQ(b.source, "affinity");
  EXPECT_EQ(DetectCpus(0, root_.string()).cpus, 1);
}

TEST_F(CpusTest, CgroupV2QuotaRoundsUp) {
  Write("sys/fs/cgroup/cpu.max", "150000 100000\n");
  const CpuBudget b = DetectCpus(64, root_.string());
  EXPECT_EQ(b.cpus, 2);
  EXPECT_EQ(b.source, "cgroup v2 cpu.max");
  Write("sys/fs/cgroup/cpu.max", "max 100000\n");
  EXPECT_EQ(DetectCpus(64, root_.string()).cpus, 64);
  Write("sys/fs/cgroup/cpu.max", "50000 100000\n");
  EXPECT_EQ(DetectCpus(64, root_.string()).cpus, 1);
}

TEST_F(CpusTest, QuotaAboveTheMaskDoesNotRaiseIt) {
  Write("sys/fs/cgroup/cpu.max", "800000 100000\n");
  EXPECT_EQ(DetectCpus(4, root_.string()).cpus, 4);
}

TEST_F(CpusTest, CgroupV1Quota) {
  Write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "300000\n");
  Write("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(DetectCpus(16, root_.string()).cpus, 3);
  Write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
  EXPECT_EQ(DetectCpus(16, root_.string()).cpus, 16);
}

TEST_F(CpusTest, GarbageIsIgnored) {
  Write("sys/fs/cgroup/cpu.max", "lots of cpus\n");
  EXPECT_EQ(DetectCpus(6, root_.string()).cpus, 6);
}

TEST(DefaultEventLoopsTest, LeavesACoreWhenThereAreMoreThanTwo) {
  EXPECT_EQ(DefaultEventLoops(1), 1);
  EXPECT_EQ(DefaultEventLoops(2), 1);
  EXPECT_EQ(DefaultEventLoops(3), 2);
  EXPECT_EQ(DefaultEventLoops(16), 15);
}

}  // namespace
}  // namespace crabcache::server

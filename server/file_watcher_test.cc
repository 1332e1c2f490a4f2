#include "server/file_watcher.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace crabcache::server {
namespace {

class FileWatcherTest : public ::testing::Test {
 protected:
  FileWatcherTest() {
    char dir_template[] = "/tmp/file_watcher_test.XXXXXX";
    dir_ = mkdtemp(dir_template);
  }
  ~FileWatcherTest() override { (void)!system(("rm -rf " + dir_).c_str()); }

  void Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name) << content;
  }

  std::string dir_;
};

TEST_F(FileWatcherTest, StampsChangeWithContentAndReplacement) {
  const std::string path = dir_ + "/f";
  EXPECT_FALSE(StampOf(path).exists);
  Write("f", "one");
  const FileStamp first = StampOf(path);
  EXPECT_TRUE(first.exists);
  EXPECT_EQ(StampOf(path), first);
  Write("g", "one");  // Same size, same content: replacing the file still shows (inode).
  ASSERT_EQ(rename((dir_ + "/g").c_str(), path.c_str()), 0);
  EXPECT_NE(StampOf(path), first);
}

// Kubernetes' Secret update: `tokens` -> `..data/tokens`, and `..data` is swapped to a new
// directory by renaming a new symlink over it.
TEST_F(FileWatcherTest, SeesASymlinkSwapAndCallsBack) {
  ASSERT_EQ(mkdir((dir_ + "/v1").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((dir_ + "/v2").c_str(), 0700), 0);
  Write("v1/tokens", "same-size-content");
  Write("v2/tokens", "same-size-content");
  ASSERT_EQ(symlink("v1", (dir_ + "/..data").c_str()), 0);
  ASSERT_EQ(symlink("..data/tokens", (dir_ + "/tokens").c_str()), 0);
  std::atomic<int> changes{0};
  FileWatcher watcher({dir_ + "/tokens"}, absl::Milliseconds(10), [&] { changes++; });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(changes.load(), 0);  // Nothing changed yet.
  ASSERT_EQ(symlink("v2", (dir_ + "/..data_tmp").c_str()), 0);
  ASSERT_EQ(rename((dir_ + "/..data_tmp").c_str(), (dir_ + "/..data").c_str()), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (changes.load() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(changes.load(), 1);
  watcher.Stop();
  watcher.Stop();  // Idempotent.
}

}  // namespace
}  // namespace crabcache::server

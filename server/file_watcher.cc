#include "server/file_watcher.h"

#include <sys/stat.h>

#include <chrono>
#include <utility>

namespace crabcache::server {

FileStamp StampOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return FileStamp{};
  return FileStamp{
      .exists = true,
      .device = static_cast<uint64_t>(st.st_dev),
      .inode = static_cast<uint64_t>(st.st_ino),
      .size = static_cast<int64_t>(st.st_size),
      .mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
      .ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec,
  };
}

FileWatcher::FileWatcher(std::vector<std::string> paths, absl::Duration interval,
                         std::function<void()> on_change)
    : paths_(std::move(paths)), interval_(interval), on_change_(std::move(on_change)) {
  for (const std::string& p : paths_) stamps_.push_back(StampOf(p));
  thread_ = std::thread([this] { Run(); });
}

FileWatcher::~FileWatcher() { Stop(); }

void FileWatcher::Stop() {
  {
    core::MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void FileWatcher::Run() {
  const auto period = absl::ToChronoNanoseconds(interval_);
  for (;;) {
    {
      core::MutexLock lock(&mu_);
      const auto deadline = std::chrono::steady_clock::now() + period;
      while (!stop_ && std::chrono::steady_clock::now() < deadline) wake_.wait_until(mu_, deadline);
      if (stop_) return;
    }
    bool changed = false;
    for (size_t i = 0; i < paths_.size(); ++i) {
      const FileStamp now = StampOf(paths_[i]);
      if (!(now == stamps_[i])) {
        stamps_[i] = now;
        changed = true;
      }
    }
    if (changed) on_change_();
  }
}

}  // namespace crabcache::server

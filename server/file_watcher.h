// Notices that files changed on disk, by polling stat(2): Kubernetes updates mounted Secrets
// without any signal, by swapping a `..data` symlink to a new directory, so what a path resolves
// to (device, inode), its size and its times are compared on every poll.
#ifndef CRABCACHE_SERVER_FILE_WATCHER_H_
#define CRABCACHE_SERVER_FILE_WATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "core/mutex.h"

namespace crabcache::server {

// What stat(2) says about a path (following symlinks). Two stamps differ when the file was
// replaced, renamed over, rewritten or touched; a missing file has exists == false.
struct FileStamp {
  bool exists = false;
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp StampOf(const std::string& path);

// Polls `paths` every `interval` on its own thread and calls `on_change` (on that thread) once
// per poll in which any of them changed since the previous poll. The first stamps are taken by
// the constructor, so only changes after construction count.
//
// Thread-safety: Stop may be called from any thread; the callback runs on the watcher's thread
// only, never concurrently with itself. Destruction stops it.
class FileWatcher {
 public:
  FileWatcher(std::vector<std::string> paths, absl::Duration interval,
              std::function<void()> on_change);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  void Stop();

 private:
  void Run();

  // Immutable after construction.
  const std::vector<std::string> paths_;
  const absl::Duration interval_;
  const std::function<void()> on_change_;

  // Owned by the watcher thread after construction.
  std::vector<FileStamp> stamps_;

  core::Mutex mu_;
  std::condition_variable_any wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;  // Last: starts once everything above is initialised.
};

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_FILE_WATCHER_H_

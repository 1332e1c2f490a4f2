// A std::mutex wrapper that clang's -Wthread-safety analysis understands.
//
// Why not absl::Mutex: Debian's abseil is not built with ThreadSanitizer, so TSan cannot see the
// happens-before edges inside absl::Mutex and reports false races. std::mutex is intercepted by
// TSan; the ABSL_* annotations below let clang check every ABSL_GUARDED_BY member against it.
#ifndef CRABCACHE_CORE_MUTEX_H_
#define CRABCACHE_CORE_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace crabcache::core {

// Thread-safe by definition. Not copyable or movable.
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

  // For std::condition_variable_any and friends.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// RAII holder of a Mutex for one scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_MUTEX_H_

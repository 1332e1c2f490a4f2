// Per-address limiting of failed gRPC authentication: the gRPC counterpart of the fast path's
// "three wrong tokens close the connection", which a gRPC handler cannot do (it cannot close its
// HTTP/2 connection, and a client can open a new stream per guess).
#ifndef CRABCACHE_SERVICE_AUTH_LIMITER_H_
#define CRABCACHE_SERVICE_AUTH_LIMITER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "core/clock.h"
#include "core/mutex.h"

namespace crabcache::service {

struct AuthLimitOptions {
  // Failed token checks from one address within `window_ms` after which that address is
  // refused (without a token check) until `window_ms` after the last of them; 0 turns the
  // limit off.
  int max_failures = 10;
  core::Millis window_ms = 60'000;
  // Addresses remembered at once; beyond this the one whose last failure is oldest is
  // forgotten (so its count starts again). Bounds the table at about 100 bytes per address.
  size_t max_addresses = 4096;
  // Not owned; must outlive the limiter. Null: core::SystemClock().
  const core::Clock* clock = nullptr;
};

// Counts failed authentications per client address and says when an address must be refused.
//
// An address's failures are counted in a window that opens at its first failure and lasts
// window_ms; the max_failures-th failure within one window blocks the address for window_ms
// from that failure. Attempts refused while blocked do not extend the block, so a client with a
// valid token behind the same address (a NAT) is refused for at most window_ms after the last
// guess. An attacker gets at most max_failures guesses per window_ms per address.
//
// Thread-safety: all methods may be called concurrently. Blocked() takes no lock while no address
// has failed within the last window (one relaxed atomic load), so authenticated traffic pays
// nothing in normal operation.
class AuthLimiter {
 public:
  explicit AuthLimiter(const AuthLimitOptions& options);
  AuthLimiter(const AuthLimiter&) = delete;
  AuthLimiter& operator=(const AuthLimiter&) = delete;

  bool enabled() const { return options_.max_failures > 0; }
  // False when Blocked() is certainly false for every address (none failed within the last
  // window): lets callers skip working out the address. One relaxed atomic load.
  bool MayBlock() const { return enabled() && size_.load(std::memory_order_relaxed) != 0; }
  // True if `address` must be refused now.
  bool Blocked(std::string_view address);
  // Records one failed token check from `address`.
  void RecordFailure(std::string_view address);
  // Addresses remembered now (for tests).
  size_t tracked();

  // The address part of a gRPC peer string ("ipv4:10.0.0.1:5555" -> "10.0.0.1", "ipv6:[::1]:5555"
  // -> "::1", an IPv4-mapped IPv6 address -> its IPv4 form); anything else unchanged.
  static std::string_view PeerAddress(std::string_view peer);

 private:
  struct Entry {
    std::string address;
    core::Millis window_start = 0;
    core::Millis last_failure = 0;
    core::Millis blocked_until = 0;  // 0: not blocked.
    int failures = 0;
  };
  using Lru = std::list<Entry>;  // Most recent failure first.

  // Forgets the addresses whose last failure is at least a window old.
  void TrimLocked(core::Millis now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Immutable after construction.
  const AuthLimitOptions options_;
  const core::Clock* const clock_;

  core::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string_view, Lru::iterator> by_address_ ABSL_GUARDED_BY(mu_);
  // lru_.size(), readable without mu_: zero means nothing to look up.
  std::atomic<size_t> size_{0};
};

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_AUTH_LIMITER_H_

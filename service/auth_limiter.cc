#include "service/auth_limiter.h"

namespace crabcache::service {

AuthLimiter::AuthLimiter(const AuthLimitOptions& options)
    : options_(options), clock_(options.clock != nullptr ? options.clock : core::SystemClock()) {}

std::string_view AuthLimiter::PeerAddress(std::string_view peer) {
  constexpr std::string_view kIpv4 = "ipv4:";
  constexpr std::string_view kIpv6 = "ipv6:[";
  constexpr std::string_view kMapped = "::ffff:";
  if (peer.substr(0, kIpv4.size()) == kIpv4) {
    peer.remove_prefix(kIpv4.size());
    const size_t colon = peer.rfind(':');
    return colon == std::string_view::npos ? peer : peer.substr(0, colon);
  }
  if (peer.substr(0, kIpv6.size()) == kIpv6) {
    peer.remove_prefix(kIpv6.size());
    peer = peer.substr(0, peer.find(']'));
    // A dotted IPv4 address mapped into IPv6 (a dual-stack listener): the same client as IPv4.
    if (peer.size() > kMapped.size() && peer.substr(0, kMapped.size()) == kMapped &&
        peer.find('.') != std::string_view::npos) {
      peer.remove_prefix(kMapped.size());
    }
    return peer;
  }
  return peer;
}

bool AuthLimiter::Blocked(std::string_view address) {
  if (!enabled() || size_.load(std::memory_order_relaxed) == 0) return false;
  core::MutexLock lock(&mu_);
  const core::Millis now = clock_->NowMs();
  TrimLocked(now);
  const auto it = by_address_.find(address);
  return it != by_address_.end() && now < it->second->blocked_until;
}

void AuthLimiter::RecordFailure(std::string_view address) {
  if (!enabled()) return;
  core::MutexLock lock(&mu_);
  const core::Millis now = clock_->NowMs();
  TrimLocked(now);
  Lru::iterator entry;
  if (const auto it = by_address_.find(address); it != by_address_.end()) {
    entry = it->second;
    lru_.splice(lru_.begin(), lru_, entry);
  } else {
    if (lru_.size() >= options_.max_addresses) {  // Forget the least recently failing address.
      by_address_.erase(lru_.back().address);
      lru_.pop_back();
    }
    lru_.push_front(Entry{.address = std::string(address), .window_start = now});
    entry = lru_.begin();
    // The key views the entry's own string, which never moves (list nodes are stable).
    by_address_.emplace(entry->address, entry);
  }
  if (now - entry->window_start >= options_.window_ms) {  // A new window.
    entry->window_start = now;
    entry->failures = 0;
  }
  entry->last_failure = now;
  if (++entry->failures >= options_.max_failures) entry->blocked_until = now + options_.window_ms;
  size_.store(lru_.size(), std::memory_order_relaxed);
}

size_t AuthLimiter::tracked() {
  core::MutexLock lock(&mu_);
  return lru_.size();
}

void AuthLimiter::TrimLocked(core::Millis now) {
  // An address whose last failure is a window old is neither blocked (a block ends a window
  // after the failure that set it) nor inside a counting window: forget it. The list is ordered
  // by last failure, so the stale ones are at its end.
  while (!lru_.empty() && now - lru_.back().last_failure >= options_.window_ms) {
    by_address_.erase(lru_.back().address);
    lru_.pop_back();
  }
  size_.store(lru_.size(), std::memory_order_relaxed);
}

}  // namespace crabcache::service

// The sharded in-memory store.
//
// Shaped after leveldb's ShardedLRUCache: a power-of-two number of shards, each with one lock; the
// shard comes from the top bits of one 64-bit hash that the caller computes once per key (seeded
// per process against HashDoS) and passes down, and the shard's index uses the low bits. Each
// entry is a single allocation holding header, key and value. Keys and values are arbitrary bytes.
//
// Thread-safety: every public method is thread-safe. A shard's lock is held only for one
// operation, never across I/O; Get's callback runs under it (see Get).
//
// Time: every operation takes `now` from the store's Clock (the executor reads it once per
// batch). An entry whose expiry is <= now is invisible at once and is reclaimed lazily on access
// or by SweepExpired.
#ifndef CRABCACHE_CORE_STORE_H_
#define CRABCACHE_CORE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "core/clock.h"

namespace crabcache::core {

class Shard;

enum class EvictionPolicy : uint8_t { kS3Fifo, kLru, kNoEviction };
std::string_view EvictionPolicyName(EvictionPolicy policy);  // "s3fifo", "lru", "noeviction"
bool ParseEvictionPolicy(std::string_view name, EvictionPolicy* policy);

struct StoreOptions {
  // Rounded up to a power of two; 0 picks 4 x hardware threads.
  size_t num_shards = 0;
  // Upper bound on accounted memory (entry allocations plus index); 0 means unlimited.
  uint64_t max_memory_bytes = 0;
  EvictionPolicy eviction = EvictionPolicy::kS3Fifo;
  // Not owned; must outlive the store. Null means SystemClock().
  const Clock* clock = nullptr;
  // 0 draws a random per-process seed.
  uint64_t hash_seed = 0;
};

// A point-in-time view of the store; fields are summed over shards, each read under its lock.
struct StoreStats {
  uint64_t keys = 0;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_limit_bytes = 0;  // 0: unlimited.
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t expirations = 0;  // Expired entries reclaimed (lazily or by the sweep).
  uint64_t evictions = 0;
  uint64_t shards = 0;
  EvictionPolicy eviction = EvictionPolicy::kS3Fifo;

  // {"keys":..,"memory_used_bytes":..,...} with every field above.
  std::string ToJson() const;
};

// Expiry instants: 0 means "never"; otherwise an absolute Millis on the store's clock.
inline constexpr Millis kNoExpiry = 0;
// now + ttl_ms, saturating so that huge TTLs mean "practically never" rather than overflow.
Millis ExpiryAfter(Millis now, uint64_t ttl_ms);

class Store {
 public:
  explicit Store(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The per-process seeded hash every operation below expects.
  uint64_t Hash(std::string_view key) const;

  // All methods REQUIRE: hash == Hash(key).

  // On a live hit calls on_hit(value) with the shard lock held and returns true. `value` is valid
  // only inside the callback; on_hit must copy it and must not call into the store.
  bool Get(std::string_view key, uint64_t hash, Millis now,
           absl::FunctionRef<void(std::string_view value)> on_hit);
  // Inserts or replaces. expire_at is kNoExpiry or an absolute time (<= now: expires at once).
  // Fails with kResourceExhausted when the memory limit cannot be met; nothing stored is lost then.
  absl::Status Set(std::string_view key, uint64_t hash, std::string_view value, Millis expire_at,
                   Millis now);
  // True if a live key was removed.
  bool Delete(std::string_view key, uint64_t hash, Millis now);
  // True if a live key got the new expiry.
  bool Expire(std::string_view key, uint64_t hash, Millis expire_at, Millis now);
  // Remaining milliseconds, kTtlNoExpiry (-1) or kTtlMissing (-2).
  int64_t TtlMs(std::string_view key, uint64_t hash, Millis now);

  // Reclaims up to `budget` expired entries per shard, visiting a bounded number of slots; meant to
  // be called periodically by a background sweeper. Returns the number reclaimed.
  size_t SweepExpired(Millis now, size_t budget);

  StoreStats Stats() const;
  size_t num_shards() const { return num_shards_; }
  const Clock& clock() const { return *clock_; }
  Millis Now() const { return clock_->NowMs(); }

 private:
  // The top bits of the hash pick the shard; the shard's index uses the low bits.
  Shard& ShardFor(uint64_t hash) const;

  // Immutable after construction.
  const Clock* const clock_;
  const uint64_t seed_;
  const EvictionPolicy eviction_;
  const uint64_t max_memory_bytes_;
  size_t num_shards_ = 0;
  int shard_shift_ = 64;  // 64 - log2(num_shards_); 64 means a single shard.
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_STORE_H_

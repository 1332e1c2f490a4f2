// The sharded in-memory store.
//
// Shaped after leveldb's ShardedLRUCache: a power-of-two number of shards, each with one lock; the
// shard comes from the top bits of one 64-bit hash that the caller computes once per key (seeded
// per process against HashDoS) and passes down, and the shard's index uses the low bits. Keys and
// values are arbitrary bytes.
//
// Layout (core/shard.h): under `s3fifo` and `noeviction` entries are appended to log segments with
// a 3-byte header for short keys and values and found through an open-addressing index of 8-byte
// slots (about 40 bytes per key for 16-byte keys and 10-byte values); under `lru` each entry is
// its own heap block on an exact recency list.
//
// Memory: every allocation (segments, heap blocks, index, eviction metadata) is charged at what
// the allocator hands out, per shard; the limit is split evenly across shards and accounting never
// passes it. Eviction runs on the write path inside the shard, with bounded work per write.
//
// Thread-safety: every public method is thread-safe. A shard's lock is held only for one
// operation, never across I/O; Get's callback runs under it (see Get).
//
// Time: every operation takes `now` from the store's Clock (the executor reads it once per
// batch). An entry whose expiry is <= now is invisible at once and is reclaimed lazily on access,
// by eviction, or by SweepExpired.
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
#include "absl/status/statusor.h"
#include "core/clock.h"

namespace crabcache::core {

class Shard;

enum class EvictionPolicy : uint8_t { kS3Fifo, kLru, kNoEviction };
std::string_view EvictionPolicyName(EvictionPolicy policy);  // "s3fifo", "lru", "noeviction"
bool ParseEvictionPolicy(std::string_view name, EvictionPolicy* policy);

struct StoreOptions {
  // Rounded up to a power of two; 0 picks 4 x hardware threads.
  size_t num_shards = 0;
  // Upper bound on accounted memory (entries, index and eviction metadata, at the allocator's
  // charge); 0 means unlimited.
  uint64_t max_memory_bytes = 0;
  EvictionPolicy eviction = EvictionPolicy::kS3Fifo;
  // Not owned; must outlive the store. Null means SystemClock().
  const Clock* clock = nullptr;
  // 0 draws a random per-process seed.
  uint64_t hash_seed = 0;
};

// One shard's counters and memory, read under its lock. Every byte figure is an allocation
// charge (what the allocator hands out, header and rounding included), and
//   memory_used_bytes = segment_bytes + heap_bytes + index_bytes + metadata_bytes.
struct ShardStats {
  uint64_t keys = 0;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_limit_bytes = 0;  // This shard's share of the limit; 0: unlimited.
  uint64_t segment_bytes = 0;       // Log segments (s3fifo, noeviction).
  uint64_t heap_bytes = 0;          // Entries in their own blocks: large values; every lru entry.
  uint64_t index_bytes = 0;         // The key index's slots.
  uint64_t metadata_bytes = 0;      // Ghost table and segment table, or lru's node table.
  // Bytes of live entries inside segments (header, key, value or stub). segment_bytes minus this
  // is dead (deleted, replaced, expired, not yet recycled) or not yet written.
  uint64_t item_bytes = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t expirations = 0;  // Expired entries reclaimed (lazily, by eviction or by the sweep).
  uint64_t evictions = 0;
  uint64_t compactions = 0;  // Mostly-dead segments whose live entries were moved and freed.
};

// A point-in-time view of the store: totals over shards, and each shard.
struct StoreStats {
  uint64_t keys = 0;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_limit_bytes = 0;  // 0: unlimited.
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t expirations = 0;  // Expired entries reclaimed (lazily, by eviction or by the sweep).
  uint64_t evictions = 0;
  uint64_t shards = 0;
  EvictionPolicy eviction = EvictionPolicy::kS3Fifo;
  // The breakdown of memory_used_bytes, summed over shards (see ShardStats).
  uint64_t segment_bytes = 0;
  uint64_t heap_bytes = 0;
  uint64_t index_bytes = 0;
  uint64_t metadata_bytes = 0;
  uint64_t item_bytes = 0;
  uint64_t compactions = 0;
  std::vector<ShardStats> per_shard;

  // {"keys":..,"memory_used_bytes":..,...,"per_shard":[{"keys":..,...},...]} with every field
  // above.
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

  // A hint, without any lock, that the key with this hash is about to be used: the executor
  // calls it for every key of a batch before running the batch, so the index lookups' cache
  // misses overlap instead of coming one after the other.
  void Prefetch(uint64_t hash) const;

  // All methods REQUIRE: hash == Hash(key).

  // On a live hit calls on_hit(value) with the shard lock held and returns true. `value` is valid
  // only inside the callback; on_hit must copy it and must not call into the store.
  bool Get(std::string_view key, uint64_t hash, Millis now,
           absl::FunctionRef<void(std::string_view value)> on_hit);
  // Inserts or replaces. expire_at is kNoExpiry or an absolute time (<= now: the key is removed
  // at once and nothing is stored). Fails with kResourceExhausted ("OOM ...") when the memory
  // limit cannot be met; under noeviction nothing stored is lost then.
  absl::Status Set(std::string_view key, uint64_t hash, std::string_view value, Millis expire_at,
                   Millis now);
  // True if a live key was removed.
  bool Delete(std::string_view key, uint64_t hash, Millis now);
  // True if a live key got the new expiry. Setting the first expiry of a key grows its entry by
  // 6 bytes; if a noeviction shard cannot find them this answers false (TryExpire says why).
  bool Expire(std::string_view key, uint64_t hash, Millis expire_at, Millis now);
  // As Expire, but reports that out-of-memory case as kResourceExhausted.
  absl::StatusOr<bool> TryExpire(std::string_view key, uint64_t hash, Millis expire_at, Millis now);
  // Remaining milliseconds, kTtlNoExpiry (-1) or kTtlMissing (-2).
  int64_t TtlMs(std::string_view key, uint64_t hash, Millis now);

  // Reclaims up to `budget` expired entries per shard, looking at no more than 32 * budget + 64
  // entries per shard (a cursor resumes where the last call stopped); meant to be called
  // periodically by a background sweeper. Returns the number reclaimed.
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

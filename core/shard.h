// One shard of the Store: an index, the entries, eviction state and counters behind one lock
// (internal to core).
//
// Two implementations, picked by eviction policy:
//   LogShard (core/log_shard.h)  s3fifo and noeviction: entries appended to log segments, FIFO
//                                order is the append order, eviction metadata is 2 bits per entry.
//   LruShard (core/lru_shard.h)  lru: entries in individual heap blocks on an exact
//                                doubly-linked recency list.
// Both use KeyIndex (core/key_index.h) and the item layout of core/item.h, and charge every
// allocation at what the allocator really hands out (core/alloc.h).
//
// Thread-safety: every method is thread-safe; each takes the shard's lock for its duration (large
// values are allocated and copied before the lock is taken).
#ifndef CRABCACHE_CORE_SHARD_H_
#define CRABCACHE_CORE_SHARD_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/store.h"
#include "core/string_view.h"

namespace crabcache::core {

// The per-process seeded key hash (Store::Hash); shards use it to find an entry's index slot from
// its stored key when they evict, expire or move it.
// absl::string_view, not std::string_view: Debian's abseil hashes the latter through std::hash,
// at about twice the cost.
struct KeyHasher {
  uint64_t seed = 0;
  uint64_t operator()(std::string_view key) const {
    return absl::Hash<std::pair<uint64_t, absl::string_view>>{}(std::make_pair(seed, ToAbsl(key)));
  }
};

struct ShardOptions {
  EvictionPolicy policy = EvictionPolicy::kS3Fifo;
  uint64_t budget_bytes = 0;  // 0: unlimited.
  Millis epoch = 0;           // Expiry offsets are stored relative to this instant.
  KeyHasher hasher;
};

class Shard {
 public:
  virtual ~Shard() = default;

  // The Store's contract (core/store.h), for keys whose hash picked this shard.
  virtual bool Get(std::string_view key, uint64_t hash, Millis now,
                   absl::FunctionRef<void(std::string_view)> on_hit) = 0;
  virtual absl::Status Set(std::string_view key, uint64_t hash, std::string_view value,
                           Millis expire_at, Millis now) = 0;
  virtual bool Delete(std::string_view key, uint64_t hash, Millis now) = 0;
  virtual absl::StatusOr<bool> Expire(std::string_view key, uint64_t hash, Millis expire_at,
                                      Millis now) = 0;
  virtual int64_t TtlMs(std::string_view key, uint64_t hash, Millis now) = 0;
  // Reclaims at most max_reclaimed expired entries, looking at no more than max_visited entries.
  virtual size_t SweepExpired(Millis now, size_t max_reclaimed, size_t max_visited) = 0;
  virtual ShardStats Stats() const = 0;
  // A hint that `hash` will be looked up soon: warms its index slot without taking the lock.
  virtual void Prefetch(uint64_t hash) const = 0;
};

std::unique_ptr<Shard> NewShard(const ShardOptions& options);

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_SHARD_H_

// One shard of the Store: an index, eviction queues and counters behind one lock (internal).
//
// The index is a chained hash table (leveldb's HandleTable shape) over intrusive `chain` links,
// so it allocates nothing per entry; it uses the low bits of the key hash.
//
// Eviction, per policy, on the write path and with bounded work per write:
//   lru        one queue, hits move to the head, the tail is evicted.
//   s3fifo     a small FIFO (~10 % of the budget) where new keys land, a main FIFO with a 2-bit
//              access counter (reinsertion instead of promotion), and a ghost set of recently
//              evicted small-queue hashes whose return goes straight to main (Yang et al.,
//              "FIFO queues are all you need for cache eviction", SOSP'23).
//   noeviction writes that would exceed the budget fail; nothing stored is touched.
#ifndef CRABCACHE_CORE_SHARD_H_
#define CRABCACHE_CORE_SHARD_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "core/entry.h"
#include "core/mutex.h"
#include "core/store.h"

namespace crabcache::core {

struct ShardStats {
  uint64_t keys = 0;
  uint64_t memory_used_bytes = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t expirations = 0;
  uint64_t evictions = 0;
};

// Thread-safe: every public method takes the shard's lock for its duration.
class Shard {
 public:
  // budget_bytes == 0 means unlimited.
  Shard(EvictionPolicy policy, uint64_t budget_bytes);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  bool Get(std::string_view key, uint64_t hash, Millis now,
           absl::FunctionRef<void(std::string_view)> on_hit);
  // Takes ownership of `entry` (allocated by the caller outside the lock) on success and on
  // failure alike.
  absl::Status Insert(Entry* entry, Millis now);
  bool Delete(std::string_view key, uint64_t hash, Millis now);
  bool Expire(std::string_view key, uint64_t hash, Millis expire_at, Millis now);
  int64_t TtlMs(std::string_view key, uint64_t hash, Millis now);
  size_t SweepExpired(Millis now, size_t max_reclaimed, size_t max_buckets);
  ShardStats Stats() const;

 private:
  // An intrusive doubly-linked FIFO; head = newest.
  struct List {
    Entry* head = nullptr;
    Entry* tail = nullptr;
    uint64_t bytes = 0;
    size_t size = 0;
  };

  Entry** Slot(std::string_view key, uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live entry for key, reclaiming it first if it has expired.
  Entry* FindLive(std::string_view key, uint64_t hash, Millis now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(Entry** slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveEntry(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeGrowIndex() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t IndexBytes() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts until `needed` more bytes fit the budget; false if the queues ran dry first.
  bool MakeRoom(uint64_t needed, Millis now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entry* PickVictim() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RememberGhost(uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TakeGhost(uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  static void PushHead(List& list, Entry* e);
  static void Unlink(List& list, Entry* e);
  List& ListOf(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return e->queue == Queue::kSmall ? small_ : main_;
  }

  // Immutable after construction.
  const EvictionPolicy policy_;
  const uint64_t budget_bytes_;

  mutable Mutex mu_;
  // Guarded by mu_.
  Entry** buckets_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t num_buckets_ ABSL_GUARDED_BY(mu_) = 0;
  size_t sweep_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  List small_ ABSL_GUARDED_BY(mu_);  // s3fifo only.
  List main_ ABSL_GUARDED_BY(mu_);   // lru's only queue.
  // Ghost queue: hashes of entries evicted from small_, oldest first; the map counts duplicates.
  std::deque<uint64_t> ghost_fifo_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, uint32_t> ghost_ ABSL_GUARDED_BY(mu_);
  ShardStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_SHARD_H_

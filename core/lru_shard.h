// The shard behind `lru`: an exact least-recently-used order (internal to core).
//
// Every entry is its own malloc'd block in the layout of core/item.h (flags, varint lengths, key,
// value; no expiry in the block) and owns a 24-byte node in a dense node table: block pointer,
// the previous and next node ids of the recency list, and the absolute expiry. The KeyIndex maps
// a key to its node id. A hit or a write moves the node to the head of the list; eviction takes
// the tail, one entry at a time, until the write fits: the order is exactly LRU, and the work
// per write is proportional to the bytes it needs. This costs more per key than the log layout
// (a heap block and a node instead of 2 bits), which is the price of moving an entry on every hit
// without copying it: a log would have to copy the entry on every hit or compact scattered holes.
//
// Accounting: the blocks, the node table and the index at the allocator's charge; no allocation
// takes the total past the budget.
//
// Thread-safety: as Shard. The shard's lock guards everything below.
#ifndef CRABCACHE_CORE_LRU_SHARD_H_
#define CRABCACHE_CORE_LRU_SHARD_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/item.h"
#include "core/key_index.h"
#include "core/mutex.h"
#include "core/shard.h"

namespace crabcache::core {

class LruShard final : public Shard {
 public:
  explicit LruShard(const ShardOptions& options);
  ~LruShard() override;
  LruShard(const LruShard&) = delete;
  LruShard& operator=(const LruShard&) = delete;

  bool Get(std::string_view key, uint64_t hash, Millis now,
           absl::FunctionRef<void(std::string_view)> on_hit) override;
  absl::Status Set(std::string_view key, uint64_t hash, std::string_view value, Millis expire_at,
                   Millis now) override;
  bool Delete(std::string_view key, uint64_t hash, Millis now) override;
  absl::StatusOr<bool> Expire(std::string_view key, uint64_t hash, Millis expire_at,
                              Millis now) override;
  int64_t TtlMs(std::string_view key, uint64_t hash, Millis now) override;
  size_t SweepExpired(Millis now, size_t max_reclaimed, size_t max_visited) override;
  ShardStats Stats() const override;
  void Prefetch(uint64_t hash) const override ABSL_NO_THREAD_SAFETY_ANALYSIS {
    index_.PrefetchUnlocked(hash);  // Reads only the index's published atomics.
  }

 private:
  // Node 0 is the list's sentinel: its next is the most recent entry, its prev the least. A free
  // node has a null block and chains the free list through `next`.
  struct Node {
    char* block;
    uint32_t prev;
    uint32_t next;
    Millis expire_at;  // kNoExpiry or an absolute instant.
  };

  // The instant kept for `expire_at`: the same 48-bit horizon as the log layout (core/item.h), so
  // an expiry that far beyond the epoch means "never" (Millis max) on both layouts alike.
  Millis Horizon(Millis expire_at) const {
    return expire_at == kNoExpiry ? kNoExpiry : codec_.Decode(codec_.Encode(expire_at));
  }

  uint64_t Used() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return heap_bytes_ + index_.bytes() + nodes_bytes_;
  }
  bool Expired(const Node& n, Millis now) const {
    return n.expire_at != kNoExpiry && n.expire_at <= now;
  }
  // The index position of the live entry for key, or KeyIndex::kNotFound; an expired entry is
  // reclaimed on the way.
  size_t FindLive(std::string_view key, uint64_t hash, Millis now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remove(size_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unlink(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushFront(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t NextNodeCapacity() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return node_capacity_ + node_capacity_ / 2;
  }
  bool GrowNodes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether growing a table by `growth` bytes (freeing `freed` once done) lets the budget hold
  // more than `allowed_now` entries of the current average size (new_entry if empty).
  bool GrowthPays(uint64_t growth, uint64_t freed, uint64_t allowed_now, uint64_t new_entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Immutable after construction.
  const uint64_t budget_;
  const KeyHasher hasher_;
  const item::ExpiryCodec codec_;

  mutable Mutex mu_;
  KeyIndex index_ ABSL_GUARDED_BY(mu_);
  Node* nodes_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint32_t node_capacity_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t node_used_ ABSL_GUARDED_BY(mu_) = 1;  // Ids below this were handed out once.
  uint32_t free_ ABSL_GUARDED_BY(mu_) = 0;       // Head of the free list; 0 is none.
  uint64_t nodes_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t heap_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t sweep_cursor_ ABSL_GUARDED_BY(mu_) = 1;
  ShardStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_LRU_SHARD_H_

// A shard's key index: open addressing with 8-byte slots and Robin Hood linear probing
// (internal to core).
//
// A slot packs 24 bits of the key's hash (bits 8..31, so never the shard-selecting top bits) with
// a 40-bit reference the shard resolves to the stored item; 0 is the empty slot, so references
// are never 0. The home slot of a key is fastrange(hash bits, capacity), so the capacity need not
// be a power of two: the table grows by half when it is 4/5 full, which keeps the load between
// 53 % and 80 % (10-15 bytes per key) and lets the table be rebuilt from its own slots without
// reading a key. (7/8 saved a byte per key on average but made inserts and deletes walk long
// clusters when a full cache keeps the table at its limit.) Deletion shifts the following slots
// back (no tombstones); Robin Hood ordering ends unsuccessful probes early.
//
// The 24 stored bits act as a tag: a probe compares the key (an item read) only when they match,
// which happens for a different key with probability 2^-24 per slot visited. They are also the
// only input of the home slot, so a table has at most 2^24 distinct homes: past 2^24 slots
// (10-13M keys in one shard) homes repeat, clusters lengthen and probes read more items. Nothing
// enforces it: a deployment keeps each shard below it with enough shards (docs/architecture.md).
//
// Not thread-safe; the owning shard's lock guards it. Positions returned by Find are valid until
// the next Insert, Erase or Grow.
#ifndef CRABCACHE_CORE_KEY_INDEX_H_
#define CRABCACHE_CORE_KEY_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace crabcache::core {

class KeyIndex {
 public:
  static constexpr size_t kNotFound = ~size_t{0};
  static constexpr int kRefBits = 40;
  static constexpr uint64_t kRefMask = (uint64_t{1} << kRefBits) - 1;

  KeyIndex();
  ~KeyIndex();
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;

  static uint32_t TagOf(uint64_t hash) { return static_cast<uint32_t>(hash >> 8) & 0xffffff; }

  // The position of the first slot whose tag matches `hash` and whose reference satisfies
  // matches(ref), or kNotFound.
  template <typename Matches>
  size_t Find(uint64_t hash, Matches matches) const {
    const uint32_t tag = TagOf(hash);
    size_t pos = Home(tag);
    for (size_t dist = 0;; ++dist) {
      const uint64_t s = slots_[pos];
      if (s == 0 || Distance(pos, s) < dist) return kNotFound;
      if ((s >> kRefBits) == tag && matches(s & kRefMask)) return pos;
      if (++pos == capacity_) pos = 0;
    }
  }
  size_t FindRef(uint64_t hash, uint64_t ref) const {
    return Find(hash, [ref](uint64_t r) { return r == ref; });
  }

  // A hint that `hash` will be looked up soon. REQUIRES: the owner's lock.
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&slots_[Home(TagOf(hash))]); }
  // The same hint without the owner's lock, from any thread: it reads a published copy of the
  // table's address and size (atomics), which may be stale during a Grow. A stale address is
  // harmless: a prefetch never faults and never changes memory; at worst it warms a useless line.
  void PrefetchUnlocked(uint64_t hash) const {
    const uint64_t* slots = published_slots_.load(std::memory_order_relaxed);
    const size_t capacity = published_capacity_.load(std::memory_order_relaxed);
    __builtin_prefetch(&slots[(static_cast<uint64_t>(TagOf(hash)) * capacity) >> 24]);
  }

  uint64_t RefAt(size_t pos) const { return slots_[pos] & kRefMask; }
  void SetRefAt(size_t pos, uint64_t ref) { slots_[pos] = (slots_[pos] & ~kRefMask) | ref; }

  // Adds a slot. REQUIRES: 0 < ref <= kRefMask; size() < capacity().
  void Insert(uint64_t hash, uint64_t ref);
  void EraseAt(size_t pos);

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  // The table's allocation charge.
  size_t bytes() const { return bytes_; }

  // True when one more key would pass the 4/5 load limit.
  bool NeedsGrowth() const { return (size_ + 1) * 5 > capacity_ * 4; }
  // An upper bound on the charge of the table Grow would allocate.
  size_t GrowthCharge() const;
  // Rebuilds into a table half as large again. False (and unchanged) if the allocation failed.
  bool Grow();

 private:
  size_t Home(uint32_t tag) const {
    return static_cast<size_t>((static_cast<uint64_t>(tag) * capacity_) >> 24);
  }
  size_t Distance(size_t pos, uint64_t slot) const {
    const size_t home = Home(static_cast<uint32_t>(slot >> kRefBits));
    return pos >= home ? pos - home : pos + capacity_ - home;
  }
  size_t NextCapacity() const { return capacity_ + capacity_ / 2; }
  void Place(uint64_t slot);

  // Publishes slots_ and capacity_ for PrefetchUnlocked.
  void Publish() {
    published_slots_.store(slots_, std::memory_order_relaxed);
    published_capacity_.store(capacity_, std::memory_order_relaxed);
  }

  uint64_t* slots_ = nullptr;
  size_t capacity_ = 0;
  std::atomic<const uint64_t*> published_slots_{nullptr};
  std::atomic<size_t> published_capacity_{0};
  size_t size_ = 0;
  size_t bytes_ = 0;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_KEY_INDEX_H_

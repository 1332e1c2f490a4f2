// S3-FIFO's ghost queue: fingerprints of keys recently evicted from the small queue, 4 bytes each
// (internal to core).
//
// A bucketed table of 32-bit fingerprints, four per 16-byte bucket. Each bucket is a tiny FIFO:
// an insert shifts the bucket and drops its oldest fingerprint, so the table as a whole forgets
// in approximately FIFO order (exactly FIFO per bucket, with keys spread evenly over buckets),
// without storing an order. A lookup reads one bucket. Fingerprints are the hash's low 32 bits, so
// two keys of one shard share one with probability 2^-32. The table can be resized (rebuilt from
// its fingerprints) as the main queue's population changes; capacity 0 remembers nothing.
//
// Not thread-safe; the owning shard's lock guards it.
#ifndef CRABCACHE_CORE_GHOST_H_
#define CRABCACHE_CORE_GHOST_H_

#include <cstddef>
#include <cstdint>

namespace crabcache::core {

class GhostTable {
 public:
  static constexpr size_t kSlotsPerBucket = 4;

  GhostTable() = default;
  ~GhostTable();
  GhostTable(const GhostTable&) = delete;
  GhostTable& operator=(const GhostTable&) = delete;

  void Insert(uint64_t hash);
  // True (and forgets it) if the key's fingerprint is remembered.
  bool Take(uint64_t hash);

  // Entries the table holds (a multiple of kSlotsPerBucket).
  size_t capacity() const { return buckets_ * kSlotsPerBucket; }
  // The table's allocation charge.
  size_t bytes() const { return bytes_; }

  // The capacity Resize(target) would pick, so a caller can reserve budget for it first.
  static size_t CapacityFor(size_t target_entries);
  static size_t ChargeFor(size_t capacity);
  // Rebuilds with CapacityFor(target) entries, keeping what fits. False if allocation failed.
  bool Resize(size_t target_entries);

 private:
  static uint32_t Fingerprint(uint64_t hash) {
    const uint32_t fp = static_cast<uint32_t>(hash);
    return fp == 0 ? 1 : fp;  // 0 marks an empty slot.
  }
  size_t BucketOf(uint32_t fp) const {
    return static_cast<size_t>((static_cast<uint64_t>(fp) * buckets_) >> 32);
  }
  void Push(uint32_t fp);

  uint32_t* slots_ = nullptr;
  size_t buckets_ = 0;
  size_t bytes_ = 0;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_GHOST_H_

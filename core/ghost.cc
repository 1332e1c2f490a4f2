#include "core/ghost.h"

#include <cstdlib>
#include <utility>

#include "core/alloc.h"

namespace crabcache::core {

GhostTable::~GhostTable() { std::free(slots_); }

size_t GhostTable::CapacityFor(size_t target_entries) {
  return (target_entries + kSlotsPerBucket - 1) / kSlotsPerBucket * kSlotsPerBucket;
}

size_t GhostTable::ChargeFor(size_t capacity) {
  return capacity == 0 ? 0 : ChargeUpperBound(capacity * sizeof(uint32_t));
}

void GhostTable::Push(uint32_t fp) {
  uint32_t* b = &slots_[BucketOf(fp) * kSlotsPerBucket];
  for (size_t i = kSlotsPerBucket - 1; i > 0; --i) b[i] = b[i - 1];  // Drops the oldest.
  b[0] = fp;
}

void GhostTable::Insert(uint64_t hash) {
  if (buckets_ != 0) Push(Fingerprint(hash));
}

bool GhostTable::Take(uint64_t hash) {
  if (buckets_ == 0) return false;
  const uint32_t fp = Fingerprint(hash);
  uint32_t* b = &slots_[BucketOf(fp) * kSlotsPerBucket];
  for (size_t i = 0; i < kSlotsPerBucket; ++i) {
    if (b[i] != fp) continue;
    for (size_t j = i; j + 1 < kSlotsPerBucket; ++j) b[j] = b[j + 1];  // Keep the order.
    b[kSlotsPerBucket - 1] = 0;
    return true;
  }
  return false;
}

bool GhostTable::Resize(size_t target_entries) {
  const size_t capacity = CapacityFor(target_entries);
  if (capacity == this->capacity()) return true;
  uint32_t* fresh = nullptr;
  if (capacity != 0) {
    fresh = static_cast<uint32_t*>(std::calloc(capacity, sizeof(uint32_t)));
    if (fresh == nullptr) return false;
  }
  uint32_t* old = std::exchange(slots_, fresh);
  const size_t old_buckets = std::exchange(buckets_, capacity / kSlotsPerBucket);
  if (buckets_ != 0) {
    // Oldest first, so each new bucket keeps the relative age of what it receives.
    for (size_t i = kSlotsPerBucket; i-- > 0;) {
      for (size_t b = 0; b < old_buckets; ++b) {
        const uint32_t fp = old[b * kSlotsPerBucket + i];
        if (fp != 0) Push(fp);
      }
    }
  }
  std::free(old);
  bytes_ = slots_ == nullptr ? 0 : AllocCharge(slots_);
  return true;
}

}  // namespace crabcache::core

#include "core/key_index.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/alloc.h"

namespace crabcache::core {
namespace {

constexpr size_t kInitialCapacity = 16;

}  // namespace

KeyIndex::KeyIndex() {
  slots_ = static_cast<uint64_t*>(std::calloc(kInitialCapacity, sizeof(uint64_t)));
  if (slots_ == nullptr) std::abort();  // Start-up OOM: nothing sensible to do.
  capacity_ = kInitialCapacity;
  bytes_ = AllocCharge(slots_);
  Publish();
}

KeyIndex::~KeyIndex() { std::free(slots_); }

void KeyIndex::Place(uint64_t slot) {
  // Robin Hood order keeps every cluster sorted by home slot. Find where this slot belongs (an
  // empty slot, or the first one whose entry sits closer to its home than this one would), then
  // shift the rest of the cluster one step instead of swapping entry by entry.
  size_t pos = Home(static_cast<uint32_t>(slot >> kRefBits));
  for (size_t dist = 0;; ++dist) {
    const uint64_t s = slots_[pos];
    if (s == 0) {
      slots_[pos] = slot;
      return;
    }
    if (Distance(pos, s) < dist) break;
    if (++pos == capacity_) pos = 0;
  }
  size_t end = pos;
  do {
    if (++end == capacity_) end = 0;
  } while (slots_[end] != 0);
  if (end > pos) {
    std::memmove(&slots_[pos + 1], &slots_[pos], (end - pos) * sizeof(uint64_t));
  } else {  // The cluster wraps around the end of the table.
    std::memmove(&slots_[1], &slots_[0], end * sizeof(uint64_t));
    slots_[0] = slots_[capacity_ - 1];
    std::memmove(&slots_[pos + 1], &slots_[pos], (capacity_ - 1 - pos) * sizeof(uint64_t));
  }
  slots_[pos] = slot;
}

void KeyIndex::Insert(uint64_t hash, uint64_t ref) {
  Place((static_cast<uint64_t>(TagOf(hash)) << kRefBits) | ref);
  ++size_;
}

void KeyIndex::EraseAt(size_t pos) {
  // Backward shift: pull each following displaced slot one step towards its home.
  for (;;) {
    size_t next = pos + 1;
    if (next == capacity_) next = 0;
    const uint64_t s = slots_[next];
    if (s == 0 || Distance(next, s) == 0) break;
    slots_[pos] = s;
    pos = next;
  }
  slots_[pos] = 0;
  --size_;
}

size_t KeyIndex::GrowthCharge() const {
  return ChargeUpperBound(NextCapacity() * sizeof(uint64_t));
}

bool KeyIndex::Grow() {
  const size_t new_capacity = NextCapacity();
  auto* fresh = static_cast<uint64_t*>(std::calloc(new_capacity, sizeof(uint64_t)));
  if (fresh == nullptr) return false;
  uint64_t* old = std::exchange(slots_, fresh);
  const size_t old_capacity = std::exchange(capacity_, new_capacity);
  for (size_t i = 0; i < old_capacity; ++i) {
    if (old[i] != 0) Place(old[i]);
  }
  Publish();
  std::free(old);
  bytes_ = AllocCharge(slots_);
  return true;
}

}  // namespace crabcache::core

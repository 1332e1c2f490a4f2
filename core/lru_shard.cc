#include "core/lru_shard.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <limits>

#include "core/alloc.h"
#include "core/command.h"

namespace crabcache::core {
namespace {

constexpr uint32_t kInitialNodes = 16;
constexpr uint32_t kMaxNodes = std::numeric_limits<uint32_t>::max() - 1;

}  // namespace

LruShard::LruShard(const ShardOptions& options)
    : budget_(options.budget_bytes), hasher_(options.hasher), codec_{options.epoch} {
  MutexLock lock(&mu_);
  nodes_ = static_cast<Node*>(std::malloc(kInitialNodes * sizeof(Node)));
  if (nodes_ == nullptr) std::abort();  // Start-up OOM: nothing sensible to do.
  node_capacity_ = kInitialNodes;
  nodes_[0] = Node{nullptr, 0, 0, kNoExpiry};
  nodes_bytes_ = AllocCharge(nodes_);
}

LruShard::~LruShard() {
  MutexLock lock(&mu_);
  for (uint32_t id = 1; id < node_used_; ++id) std::free(nodes_[id].block);
  std::free(nodes_);
}

void LruShard::Unlink(uint32_t id) {
  Node& n = nodes_[id];
  nodes_[n.prev].next = n.next;
  nodes_[n.next].prev = n.prev;
}

void LruShard::PushFront(uint32_t id) {
  Node& n = nodes_[id];
  n.prev = 0;
  n.next = nodes_[0].next;
  nodes_[n.next].prev = id;
  nodes_[0].next = id;
}

bool LruShard::GrowthPays(uint64_t growth, uint64_t freed, uint64_t allowed_now,
                          uint64_t new_entry) const {
  if (budget_ == 0) return true;
  const uint64_t tables = index_.bytes() + nodes_bytes_;
  if (tables + growth > budget_) return false;  // Not even with every entry evicted.
  const uint64_t per_entry =
      std::max<uint64_t>(1, stats_.keys == 0 ? new_entry : heap_bytes_ / stats_.keys);
  return (budget_ - (tables + growth - freed)) / per_entry > allowed_now;
}

bool LruShard::GrowNodes() {
  if (node_capacity_ >= kMaxNodes) return false;
  const size_t capacity = std::min<size_t>(NextNodeCapacity(), kMaxNodes);
  void* fresh = std::realloc(nodes_, capacity * sizeof(Node));
  if (fresh == nullptr) return false;
  nodes_ = static_cast<Node*>(fresh);
  node_capacity_ = static_cast<uint32_t>(capacity);
  nodes_bytes_ = AllocCharge(nodes_);
  return true;
}

size_t LruShard::FindLive(std::string_view key, uint64_t hash, Millis now) {
  const size_t pos =
      index_.Find(hash, [&](uint64_t id) ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Runs under mu_.
        return item::Decode(nodes_[id].block).key == key;
      });
  if (pos == KeyIndex::kNotFound || !Expired(nodes_[index_.RefAt(pos)], now)) return pos;
  Remove(pos);
  ++stats_.expirations;
  return KeyIndex::kNotFound;
}

void LruShard::Remove(size_t pos) {
  const uint32_t id = static_cast<uint32_t>(index_.RefAt(pos));
  index_.EraseAt(pos);
  Unlink(id);
  Node& n = nodes_[id];
  heap_bytes_ -= AllocCharge(n.block);
  std::free(n.block);
  n.block = nullptr;
  n.next = free_;
  free_ = id;
  --stats_.keys;
}

bool LruShard::Get(std::string_view key, uint64_t hash, Millis now,
                   absl::FunctionRef<void(std::string_view)> on_hit) {
  MutexLock lock(&mu_);
  const size_t pos = FindLive(key, hash, now);
  if (pos == KeyIndex::kNotFound) {
    ++stats_.misses;
    return false;
  }
  ++stats_.hits;
  const uint32_t id = static_cast<uint32_t>(index_.RefAt(pos));
  Unlink(id);
  PushFront(id);
  on_hit(item::Decode(nodes_[id].block).value);
  return true;
}

absl::Status LruShard::Set(std::string_view key, uint64_t hash, std::string_view value,
                           Millis expire_at, Millis now) {
  if (expire_at != kNoExpiry && expire_at <= now) {  // Gone at once: nothing to store.
    MutexLock lock(&mu_);
    const size_t pos = FindLive(key, hash, now);
    if (pos != KeyIndex::kNotFound) {
      Remove(pos);
      ++stats_.expirations;
    }
    return absl::OkStatus();
  }
  const size_t size = item::BlockSize(key.size(), value.size());
  if (budget_ != 0 && ChargeUpperBound(size) > budget_) {
    return absl::ResourceExhaustedError("OOM value larger than the memory limit allows");
  }
  // Allocate and copy before the lock is taken.
  char* block = static_cast<char*>(std::malloc(size));
  if (block == nullptr) return absl::ResourceExhaustedError("OOM allocation failed");
  item::EncodeInline(block, 0, key, value, false, 0);
  const size_t charge = AllocCharge(block);

  MutexLock lock(&mu_);
  // The new value becomes the most recent entry; the old one goes first.
  if (const size_t pos = FindLive(key, hash, now); pos != KeyIndex::kNotFound) Remove(pos);
  // Table growth is decided before making room and done after: the evictions that pay for it
  // would otherwise take the need away, and the shard would stall at a table's limit with part
  // of its budget unused. A table grows only if the budget then holds more entries than the
  // table allows now; otherwise entries are evicted to stay within the table.
  const bool index_full = index_.NeedsGrowth();
  const bool nodes_full = free_ == 0 && node_used_ == node_capacity_;
  const uint64_t node_growth = ChargeUpperBound(NextNodeCapacity() * sizeof(Node));
  const bool grow_index =
      index_full && GrowthPays(index_.GrowthCharge(), index_.bytes(), index_.size(), charge);
  const bool grow_nodes =
      nodes_full && GrowthPays(node_growth, nodes_bytes_, node_capacity_ - 1, charge);
  auto must_evict = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Runs under mu_.
    uint64_t n = charge;
    if (grow_index) n += index_.GrowthCharge();
    if (grow_nodes) n += node_growth;
    return Used() + n > budget_ || (!grow_index && index_.NeedsGrowth()) ||
           (!grow_nodes && free_ == 0 && node_used_ == node_capacity_);
  };
  while (budget_ != 0 && must_evict()) {
    const uint32_t victim = nodes_[0].prev;
    if (victim == 0) {
      std::free(block);
      return absl::ResourceExhaustedError("OOM cannot make room under the memory limit");
    }
    const bool expired = Expired(nodes_[victim], now);
    Remove(index_.FindRef(hasher_(item::Decode(nodes_[victim].block).key), victim));
    ++(expired ? stats_.expirations : stats_.evictions);
  }
  if (grow_index || (budget_ == 0 && index_.NeedsGrowth())) index_.Grow();
  if (grow_nodes) GrowNodes();
  uint32_t id = free_;
  if (id != 0) {
    free_ = nodes_[id].next;
  } else if (node_used_ < node_capacity_ || GrowNodes()) {
    id = node_used_++;
  }
  if (id == 0 || index_.size() + 1 >= index_.capacity()) {
    if (id != 0) {
      nodes_[id] = Node{nullptr, 0, free_, kNoExpiry};
      free_ = id;
    }
    std::free(block);
    return absl::ResourceExhaustedError("OOM allocation failed");
  }
  nodes_[id] = Node{block, 0, 0, Horizon(expire_at)};
  PushFront(id);
  index_.Insert(hash, id);
  heap_bytes_ += charge;
  ++stats_.keys;
  return absl::OkStatus();
}

bool LruShard::Delete(std::string_view key, uint64_t hash, Millis now) {
  MutexLock lock(&mu_);
  const size_t pos = FindLive(key, hash, now);
  if (pos == KeyIndex::kNotFound) return false;
  Remove(pos);
  return true;
}

absl::StatusOr<bool> LruShard::Expire(std::string_view key, uint64_t hash, Millis expire_at,
                                      Millis now) {
  MutexLock lock(&mu_);
  const size_t pos = FindLive(key, hash, now);
  if (pos == KeyIndex::kNotFound) return false;
  if (expire_at <= now) {  // EXPIRE 0: gone at once, reclaimed now.
    Remove(pos);
    ++stats_.expirations;
    return true;
  }
  nodes_[index_.RefAt(pos)].expire_at = Horizon(expire_at);
  return true;
}

int64_t LruShard::TtlMs(std::string_view key, uint64_t hash, Millis now) {
  MutexLock lock(&mu_);
  const size_t pos = FindLive(key, hash, now);
  if (pos == KeyIndex::kNotFound) return kTtlMissing;
  const Millis at = nodes_[index_.RefAt(pos)].expire_at;
  if (at == kNoExpiry) return kTtlNoExpiry;
  const uint64_t left = at - now;
  return left > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(left);
}

size_t LruShard::SweepExpired(Millis now, size_t max_reclaimed, size_t max_visited) {
  MutexLock lock(&mu_);
  size_t reclaimed = 0;
  for (size_t visited = 0; visited < max_visited && reclaimed < max_reclaimed; ++visited) {
    if (sweep_cursor_ >= node_used_) sweep_cursor_ = 1;
    if (sweep_cursor_ >= node_used_) break;  // No node was ever used.
    const uint32_t id = sweep_cursor_++;
    const Node& n = nodes_[id];
    if (n.block == nullptr || !Expired(n, now)) continue;
    const size_t pos = index_.FindRef(hasher_(item::Decode(n.block).key), id);
    assert(pos != KeyIndex::kNotFound);
    Remove(pos);
    ++stats_.expirations;
    ++reclaimed;
  }
  return reclaimed;
}

ShardStats LruShard::Stats() const {
  MutexLock lock(&mu_);
  ShardStats s = stats_;
  s.memory_limit_bytes = budget_;
  s.memory_used_bytes = Used();
  s.heap_bytes = heap_bytes_;
  s.index_bytes = index_.bytes();
  s.metadata_bytes = nodes_bytes_;
  return s;
}

}  // namespace crabcache::core

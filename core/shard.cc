#include "core/shard.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/command.h"

namespace crabcache::core {
namespace {

constexpr size_t kInitialBuckets = 16;
// Approximate cost of one ghost hash: the FIFO slot plus the hash map slot and control byte.
constexpr uint64_t kGhostBytes = 32;
// Bounded work per write: main-queue reinsertions tried before the tail is evicted regardless.
constexpr int kMaxReinsertions = 64;

}  // namespace

Shard::Shard(EvictionPolicy policy, uint64_t budget_bytes)
    : policy_(policy), budget_bytes_(budget_bytes) {
  MutexLock lock(&mu_);
  num_buckets_ = kInitialBuckets;
  buckets_ = static_cast<Entry**>(std::calloc(num_buckets_, sizeof(Entry*)));
  if (buckets_ == nullptr) std::abort();  // Start-up OOM: nothing sensible to do.
  stats_.memory_used_bytes = IndexBytes();
}

Shard::~Shard() {
  MutexLock lock(&mu_);
  for (size_t i = 0; i < num_buckets_; ++i) {
    Entry* e = buckets_[i];
    while (e != nullptr) {
      Entry* next = e->chain;
      Entry::Destroy(e);
      e = next;
    }
  }
  std::free(buckets_);
}

Entry** Shard::Slot(std::string_view key, uint64_t hash) {
  Entry** slot = &buckets_[hash & (num_buckets_ - 1)];
  while (*slot != nullptr && ((*slot)->hash != hash || (*slot)->key() != key)) {
    slot = &(*slot)->chain;
  }
  return slot;
}

Entry* Shard::FindLive(std::string_view key, uint64_t hash, Millis now) {
  Entry** slot = Slot(key, hash);
  Entry* e = *slot;
  if (e != nullptr && e->ExpiredAt(now)) {
    Remove(slot);
    ++stats_.expirations;
    return nullptr;
  }
  return e;
}

void Shard::PushHead(List& list, Entry* e) {
  e->prev = nullptr;
  e->next = list.head;
  if (list.head != nullptr) list.head->prev = e;
  list.head = e;
  if (list.tail == nullptr) list.tail = e;
  list.bytes += e->charge;
  ++list.size;
}

void Shard::Unlink(List& list, Entry* e) {
  if (e->prev != nullptr) {
    e->prev->next = e->next;
  } else {
    list.head = e->next;
  }
  if (e->next != nullptr) {
    e->next->prev = e->prev;
  } else {
    list.tail = e->prev;
  }
  e->prev = e->next = nullptr;
  list.bytes -= e->charge;
  --list.size;
}

void Shard::Remove(Entry** slot) {
  Entry* e = *slot;
  *slot = e->chain;
  Unlink(ListOf(e), e);
  --stats_.keys;
  stats_.memory_used_bytes -= e->charge;
  Entry::Destroy(e);
}

void Shard::RemoveEntry(Entry* e) { Remove(Slot(e->key(), e->hash)); }

uint64_t Shard::IndexBytes() const { return num_buckets_ * sizeof(Entry*); }

void Shard::MaybeGrowIndex() {
  if (stats_.keys < num_buckets_) return;
  const size_t new_count = num_buckets_ * 2;
  auto* fresh = static_cast<Entry**>(std::calloc(new_count, sizeof(Entry*)));
  if (fresh == nullptr) return;  // Keep the longer chains rather than fail the write.
  for (size_t i = 0; i < num_buckets_; ++i) {
    Entry* e = buckets_[i];
    while (e != nullptr) {
      Entry* next = e->chain;
      Entry** slot = &fresh[e->hash & (new_count - 1)];
      e->chain = *slot;
      *slot = e;
      e = next;
    }
  }
  std::free(buckets_);
  stats_.memory_used_bytes += (new_count - num_buckets_) * sizeof(Entry*);
  buckets_ = fresh;
  num_buckets_ = new_count;
}

void Shard::RememberGhost(uint64_t hash) {
  // The ghost queue holds about as many hashes as the main queue holds entries.
  const size_t cap = main_.size < 64 ? 64 : main_.size;
  while (ghost_fifo_.size() >= cap) {
    const uint64_t old = ghost_fifo_.front();
    ghost_fifo_.pop_front();
    stats_.memory_used_bytes -= kGhostBytes;
    auto it = ghost_.find(old);
    if (it != ghost_.end() && --it->second == 0) ghost_.erase(it);
  }
  ghost_fifo_.push_back(hash);
  stats_.memory_used_bytes += kGhostBytes;
  ++ghost_[hash];
}

bool Shard::TakeGhost(uint64_t hash) {
  // The hash stays in the FIFO (it ages out there); only its membership is consumed.
  auto it = ghost_.find(hash);
  if (it == ghost_.end()) return false;
  ghost_.erase(it);
  return true;
}

Entry* Shard::PickVictim() {
  if (policy_ == EvictionPolicy::kLru) return main_.tail;
  // S3-FIFO: evict from the small queue while it holds >= 10 % of the budget (or main is empty).
  for (int step = 0; step < kMaxReinsertions; ++step) {
    const bool from_small =
        small_.tail != nullptr && (small_.bytes * 10 >= budget_bytes_ || main_.tail == nullptr);
    if (from_small) {
      Entry* t = small_.tail;
      if (t->freq == 0) return t;  // One-hit wonder: out quickly, remembered in the ghost.
      Unlink(small_, t);           // Accessed again while small: it earned a place in main.
      t->queue = Queue::kMain;
      t->freq = 0;
      PushHead(main_, t);
      continue;
    }
    Entry* t = main_.tail;
    if (t == nullptr) return nullptr;
    if (t->freq == 0) return t;
    Unlink(main_, t);  // Reinsert with one access spent.
    --t->freq;
    PushHead(main_, t);
  }
  return main_.tail != nullptr ? main_.tail : small_.tail;
}

bool Shard::MakeRoom(uint64_t needed, Millis now) {
  if (budget_bytes_ == 0) return true;
  while (stats_.memory_used_bytes + needed > budget_bytes_) {
    if (policy_ == EvictionPolicy::kNoEviction) return false;
    Entry* victim = PickVictim();
    if (victim == nullptr) return false;
    if (victim->ExpiredAt(now)) {
      ++stats_.expirations;
    } else {
      ++stats_.evictions;
      if (policy_ == EvictionPolicy::kS3Fifo && victim->queue == Queue::kSmall) {
        RememberGhost(victim->hash);
      }
    }
    RemoveEntry(victim);
  }
  return true;
}

bool Shard::Get(std::string_view key, uint64_t hash, Millis now,
                absl::FunctionRef<void(std::string_view)> on_hit) {
  MutexLock lock(&mu_);
  Entry* e = FindLive(key, hash, now);
  if (e == nullptr) {
    ++stats_.misses;
    return false;
  }
  ++stats_.hits;
  if (policy_ == EvictionPolicy::kLru) {
    Unlink(main_, e);
    PushHead(main_, e);
  } else if (e->freq < Entry::kMaxFreq) {
    ++e->freq;
  }
  on_hit(e->value());
  return true;
}

absl::Status Shard::Insert(Entry* entry, Millis now) {
  MutexLock lock(&mu_);
  Entry** slot = Slot(entry->key(), entry->hash);
  Entry* old = *slot;
  if (old != nullptr && old->ExpiredAt(now)) {
    Remove(slot);
    ++stats_.expirations;
    old = nullptr;
  }
  // Doubling the index (see MaybeGrowIndex) costs another IndexBytes().
  const uint64_t keys_after = stats_.keys + (old == nullptr ? 1 : 0);
  const uint64_t grow = keys_after > num_buckets_ ? IndexBytes() : 0;
  const uint64_t needed = entry->charge + grow;
  if (budget_bytes_ != 0) {
    if (needed > budget_bytes_) {
      Entry::Destroy(entry);
      return absl::ResourceExhaustedError("OOM value larger than the memory limit allows");
    }
    const uint64_t freed = old != nullptr ? old->charge : 0;
    if (policy_ == EvictionPolicy::kNoEviction &&
        stats_.memory_used_bytes - freed + needed > budget_bytes_) {
      Entry::Destroy(entry);
      return absl::ResourceExhaustedError(
          "OOM command not allowed when used memory > 'max_memory' (noeviction)");
    }
  }
  uint8_t inherited_freq = 0;
  if (old != nullptr) {
    inherited_freq = old->freq;
    Remove(slot);
  }
  if (!MakeRoom(needed, now)) {
    Entry::Destroy(entry);
    return absl::ResourceExhaustedError("OOM cannot make room under the memory limit");
  }
  MaybeGrowIndex();
  slot = Slot(entry->key(), entry->hash);  // Eviction or growth may have moved the chain.
  entry->chain = nullptr;
  *slot = entry;
  if (policy_ == EvictionPolicy::kS3Fifo && (inherited_freq > 0 || TakeGhost(entry->hash))) {
    entry->queue = Queue::kMain;
  } else {
    entry->queue = policy_ == EvictionPolicy::kS3Fifo ? Queue::kSmall : Queue::kMain;
  }
  entry->freq = 0;
  PushHead(ListOf(entry), entry);
  ++stats_.keys;
  stats_.memory_used_bytes += entry->charge;
  return absl::OkStatus();
}

bool Shard::Delete(std::string_view key, uint64_t hash, Millis now) {
  MutexLock lock(&mu_);
  if (FindLive(key, hash, now) == nullptr) return false;
  Remove(Slot(key, hash));
  return true;
}

bool Shard::Expire(std::string_view key, uint64_t hash, Millis expire_at, Millis now) {
  MutexLock lock(&mu_);
  Entry* e = FindLive(key, hash, now);
  if (e == nullptr) return false;
  e->expire_at = expire_at;
  if (e->ExpiredAt(now)) {  // EXPIRE 0: gone at once, reclaimed now.
    Remove(Slot(key, hash));
    ++stats_.expirations;
  }
  return true;
}

int64_t Shard::TtlMs(std::string_view key, uint64_t hash, Millis now) {
  MutexLock lock(&mu_);
  Entry* e = FindLive(key, hash, now);
  if (e == nullptr) return kTtlMissing;
  if (e->expire_at == kNoExpiry) return kTtlNoExpiry;
  const uint64_t left = e->expire_at - now;
  return left > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(left);
}

size_t Shard::SweepExpired(Millis now, size_t max_reclaimed, size_t max_buckets) {
  MutexLock lock(&mu_);
  size_t reclaimed = 0;
  for (size_t visited = 0; visited < max_buckets && visited < num_buckets_; ++visited) {
    sweep_cursor_ &= num_buckets_ - 1;  // The index may have grown since the last tick.
    Entry** slot = &buckets_[sweep_cursor_];
    while (*slot != nullptr) {
      if (!(*slot)->ExpiredAt(now)) {
        slot = &(*slot)->chain;
        continue;
      }
      // Budget spent mid-chain: the cursor stays on this bucket for the next tick.
      if (reclaimed == max_reclaimed) return reclaimed;
      Remove(slot);
      ++stats_.expirations;
      ++reclaimed;
    }
    ++sweep_cursor_;
  }
  return reclaimed;
}

ShardStats Shard::Stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

}  // namespace crabcache::core

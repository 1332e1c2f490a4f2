#include "core/log_shard.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/alloc.h"
#include "core/command.h"

namespace crabcache::core {
namespace {

constexpr size_t kMinSegment = 256;
constexpr size_t kMaxSegment = 16 * 1024;
constexpr uint32_t kMaxSegmentId = (uint32_t{1} << 24) - 1;  // 24 + 16 bits = a 40-bit ref.
constexpr int kMaxCompactionsPerWrite = 4;
constexpr size_t kInitialGhost = 64;

template <typename T>
uint64_t VectorCharge(const std::vector<T>& v) {
  return v.capacity() == 0 ? 0 : AllocCharge(v.data());
}

absl::Status NoRoom(bool evicting) {
  return absl::ResourceExhaustedError(
      evicting ? "OOM cannot make room under the memory limit"
               : "OOM command not allowed when used memory > 'max_memory' (noeviction)");
}

}  // namespace

size_t LogShard::SegmentSizeFor(uint64_t budget_bytes) {
  if (budget_bytes == 0) return kMaxSegment;
  const uint64_t want = std::bit_floor(std::max<uint64_t>(budget_bytes / 64, 1));
  return static_cast<size_t>(std::clamp<uint64_t>(want, kMinSegment, kMaxSegment));
}

LogShard::LogShard(const ShardOptions& options)
    : policy_(options.policy),
      budget_(options.budget_bytes),
      codec_{options.epoch},
      hasher_(options.hasher),
      segment_size_(SegmentSizeFor(budget_)),
      segment_charge_(ChargeUpperBound(segment_size_)),
      inline_max_(segment_size_ / 4),
      limit_(budget_ > segment_charge_ ? budget_ - segment_charge_ : 0),
      evicting_(budget_ != 0 && policy_ == EvictionPolicy::kS3Fifo) {
  assert(policy_ != EvictionPolicy::kLru);
  MutexLock lock(&mu_);
  segs_.resize(1);
  if (budget_ != 0) {
    // Sized once for the most segments the budget can hold, so the tables never grow.
    const size_t max_segments = budget_ / segment_charge_ + 2;
    segs_.reserve(max_segments + 1);
    free_ids_.reserve(max_segments);
    if (!evicting_) sparse_.reserve(max_segments + 16);
  }
  if (evicting_) ghost_.Resize(kInitialGhost);
  RefreshTableBytes();
}

LogShard::~LogShard() {
  MutexLock lock(&mu_);
  for (Segment& s : segs_) {
    if (s.mem == nullptr) continue;
    for (uint32_t off = 0; off < s.fill; off += item::SizeAt(s.mem + off)) {
      const uint8_t flags = static_cast<uint8_t>(s.mem[off]);
      if ((flags & item::kExternal) && !(flags & item::kDead)) {
        std::free(item::Decode(s.mem + off).block);
      }
    }
    std::free(s.mem);
  }
}

void LogShard::RefreshTableBytes() {
  table_bytes_ = VectorCharge(segs_) + VectorCharge(free_ids_) + VectorCharge(sparse_);
}

size_t LogShard::FindLive(std::string_view key, uint64_t hash, Millis now, item::View* out) {
  // The lambdas below run synchronously under mu_, which the analysis cannot see through.
  const size_t pos = index_.Find(hash, [&](uint64_t ref) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    item::DecodeInto(At(ref), out);
    return out->key == key;
  });
  if (pos == KeyIndex::kNotFound || !Expired(*out, now)) return pos;
  Forget(pos, *out);
  ++stats_.expirations;
  return KeyIndex::kNotFound;
}

void LogShard::AddHeap(uint32_t sid, int64_t bytes) {
  heap_bytes_ += bytes;
  queues_[segs_[sid].queue].heap_bytes += bytes;
}

void LogShard::FreeBlock(char* block, uint32_t sid) {
  AddHeap(sid, -static_cast<int64_t>(AllocCharge(block)));
  std::free(block);
}

void LogShard::Forget(size_t pos, const item::View& v) {
  const uint64_t ref = index_.RefAt(pos);
  index_.EraseAt(pos);
  --stats_.keys;
  if (v.external()) FreeBlock(v.block, SegmentOf(ref));
  MarkDead(ref, v.size);
}

void LogShard::MarkDead(uint64_t ref, size_t size) {
  char* at = At(ref);
  *at = static_cast<char>(*at | item::kDead);
  const uint32_t sid = SegmentOf(ref);
  Segment& s = segs_[sid];
  s.live -= static_cast<uint32_t>(size);
  item_bytes_ -= size;
  --queues_[s.queue].items;
  if (s.busy) return;
  const bool head = queues_[s.queue].head == sid;
  if (s.live == 0) {
    if (head) {  // Keep the head for the next appends rather than free and reallocate it.
      s.fill = 0;
      ++s.gen;
      s.sparse = false;
    } else {
      Unlink(sid);
      FreeSegment(sid);
    }
    return;
  }
  if (!evicting_ && !head && s.live * 2 < segment_size_) NoteSparse(sid);
}

void LogShard::NoteSparse(uint32_t sid) {
  Segment& s = segs_[sid];
  if (s.sparse || (budget_ != 0 && sparse_.size() == sparse_.capacity())) return;
  s.sparse = true;
  sparse_.emplace_back(sid, s.gen);
  if (budget_ == 0) RefreshTableBytes();
}

size_t LogShard::HeadRoom(Queue q) const {
  const uint32_t head = queues_[q].head;
  return head == 0 ? 0 : segment_size_ - segs_[head].fill;
}

bool LogShard::OpenSegment(Queue q, uint64_t limit) {
  if (budget_ != 0 && Used() + segment_charge_ > limit) return false;
  if (free_ids_.empty() &&
      (segs_.size() > kMaxSegmentId || (budget_ != 0 && segs_.size() == segs_.capacity()))) {
    return false;
  }
  char* mem = static_cast<char*>(std::malloc(segment_size_));
  if (mem == nullptr) return false;
  uint32_t sid;
  if (!free_ids_.empty()) {
    sid = free_ids_.back();
    free_ids_.pop_back();
  } else {
    sid = static_cast<uint32_t>(segs_.size());
    segs_.emplace_back();
    if (budget_ == 0) RefreshTableBytes();
  }
  QueueState& qs = queues_[q];
  const uint32_t sealed = qs.head;
  Segment& s = segs_[sid];
  s.mem = mem;
  s.fill = 0;
  s.live = 0;
  ++s.gen;
  s.queue = q;
  s.busy = false;
  s.sparse = false;
  s.older = sealed;
  s.newer = 0;
  if (sealed != 0) {
    segs_[sealed].newer = sid;
  } else {
    qs.tail = sid;
  }
  qs.head = sid;
  ++qs.segments;
  segment_bytes_ += AllocCharge(mem);
  if (sealed != 0 && !evicting_ && segs_[sealed].live * 2 < segment_size_) NoteSparse(sealed);
  return true;
}

void LogShard::Unlink(uint32_t sid) {
  Segment& s = segs_[sid];
  QueueState& qs = queues_[s.queue];
  if (s.older != 0) {
    segs_[s.older].newer = s.newer;
  } else {
    qs.tail = s.newer;
  }
  if (s.newer != 0) {
    segs_[s.newer].older = s.older;
  } else {
    qs.head = s.older;
  }
  s.older = s.newer = 0;
  --qs.segments;
}

void LogShard::FreeSegment(uint32_t sid) {
  Segment& s = segs_[sid];
  assert(s.live == 0);
  segment_bytes_ -= AllocCharge(s.mem);
  std::free(s.mem);
  s.mem = nullptr;
  s.fill = 0;
  ++s.gen;
  s.busy = false;
  s.sparse = false;
  free_ids_.push_back(sid);
  if (budget_ == 0) RefreshTableBytes();
}

char* LogShard::Append(Queue q, size_t size, uint64_t limit, uint64_t* ref) {
  if (HeadRoom(q) < size && !OpenSegment(q, limit)) return nullptr;
  QueueState& qs = queues_[q];
  Segment& s = segs_[qs.head];
  *ref = Ref(qs.head, s.fill);
  char* at = s.mem + s.fill;
  s.fill += static_cast<uint32_t>(size);
  s.live += static_cast<uint32_t>(size);
  item_bytes_ += size;
  ++qs.items;
  return at;
}

bool LogShard::Move(size_t pos, const item::View& v, Queue q, uint8_t freq) {
  uint64_t ref;
  char* dst = Append(q, v.size, budget_, &ref);
  if (dst == nullptr) return false;
  std::memcpy(dst, v.at, v.size);
  *dst = static_cast<char>((*dst & ~item::kFreqMask) | freq);
  const uint64_t old = index_.RefAt(pos);
  index_.SetRefAt(pos, ref);
  if (v.external()) {  // The block now belongs to the copy, and so to its queue.
    const int64_t charge = static_cast<int64_t>(AllocCharge(v.block));
    AddHeap(SegmentOf(old), -charge);
    AddHeap(SegmentOf(ref), charge);
  }
  MarkDead(old, v.size);
  return true;
}

LogShard::Queue LogShard::VictimQueue() const {
  const QueueState& small = queues_[kSmall];
  const QueueState& main = queues_[kMain];
  // Measured in bytes the queue really holds: segments plus its stubs' out-of-line blocks.
  const uint64_t small_bytes = uint64_t{small.segments} * segment_charge_ + small.heap_bytes;
  if (small.tail != 0 && (main.tail == 0 || small_bytes * 10 >= budget_)) return kSmall;
  return main.tail != 0 ? kMain : kSmall;
}

void LogShard::Drain(Queue q, bool force, Millis now) {
  ++segments_drained_;
  const uint32_t sid = queues_[q].tail;
  Unlink(sid);  // Survivors are appended elsewhere, never back into it.
  segs_[sid].busy = true;
  // Live entries are taken a batch at a time: hash every key and prefetch its index slot first,
  // so the index misses of a batch overlap instead of queueing one behind the other.
  constexpr int kBatch = 16;
  struct Pending {
    uint32_t offset;
    uint64_t hash;
  };
  Pending batch[kBatch];
  // segs_ is indexed afresh after every Move: a Move may open a segment.
  for (uint32_t off = 0; off < segs_[sid].fill;) {
    int n = 0;
    while (n < kBatch && off < segs_[sid].fill) {
      char* at = segs_[sid].mem + off;
      if (!(*at & item::kDead)) {
        const uint64_t hash = hasher_(item::Decode(at).key);
        index_.Prefetch(hash);
        batch[n++] = Pending{off, hash};
      }
      off += static_cast<uint32_t>(item::SizeAt(at));
    }
    for (int i = 0; i < n; ++i) {
      const item::View v = item::Decode(segs_[sid].mem + batch[i].offset);
      const size_t pos = index_.FindRef(batch[i].hash, Ref(sid, batch[i].offset));
      assert(pos != KeyIndex::kNotFound);
      if (Expired(v, now)) {
        Forget(pos, v);
        ++stats_.expirations;
        continue;
      }
      if (!force && v.freq() > 0) {
        // Small: used while there, promoted to main with its counter cleared. Main: reinserted
        // at the head with one use spent.
        const uint8_t freq = q == kSmall ? 0 : static_cast<uint8_t>(v.freq() - 1);
        if (Move(pos, v, kMain, freq)) continue;
      }
      if (q == kSmall) ghost_.Insert(batch[i].hash);
      Forget(pos, v);
      ++stats_.evictions;
    }
  }
  FreeSegment(sid);
}

// The safety valve on one write's work (the file comment in log_shard.h says why 256): once a
// write has made kMaxFruitlessDrainsPerWrite drains that freed nothing, every further drain of
// that write evicts its whole segment without reinserting, and such a drain always frees at
// least the segment. The count is per write, not per run of fruitless drains: reset after each
// productive drain, a write that needs many segments could do this many fruitless drains for
// each of them (a 1 MiB value: 64 x 257 drains).
template <typename Needed>
bool LogShard::MakeRoom(Needed needed, Millis now) {
  if (budget_ == 0) return true;
  int fruitless = 0;
  int compactions = 0;
  while (Used() + needed() > limit_) {
    if (!evicting_) {
      if (compactions++ == kMaxCompactionsPerWrite || !CompactOne()) return false;
      continue;
    }
    const Queue q = VictimQueue();
    if (queues_[q].tail == 0) return false;
    const uint64_t before = Used();
    Drain(q, fruitless >= kMaxFruitlessDrainsPerWrite, now);
    if (Used() >= before) ++fruitless;
  }
  return true;
}

bool LogShard::CompactOne() {
  while (!sparse_.empty()) {
    const auto [sid, gen] = sparse_.back();
    sparse_.pop_back();
    Segment& s = segs_[sid];
    if (s.mem == nullptr || s.gen != gen || !s.sparse) continue;  // Stale entry.
    s.sparse = false;
    const Queue q = s.queue;
    if (queues_[q].head == sid || s.live * 2 >= segment_size_) continue;
    // Its live bytes fit the head's free space plus one fresh segment.
    if (HeadRoom(q) < s.live && budget_ != 0 && Used() + segment_charge_ > budget_) return false;
    s.busy = true;
    for (uint32_t off = 0; off < segs_[sid].fill;) {
      char* at = segs_[sid].mem + off;
      const uint64_t ref = Ref(sid, off);
      off += static_cast<uint32_t>(item::SizeAt(at));
      if (*at & item::kDead) continue;
      const item::View v = item::Decode(at);
      const size_t pos = index_.FindRef(hasher_(v.key), ref);
      assert(pos != KeyIndex::kNotFound);
      if (!Move(pos, v, q, v.freq())) break;  // Allocator failure: keep the rest in place.
    }
    segs_[sid].busy = false;
    if (segs_[sid].live != 0) return false;
    Unlink(sid);
    FreeSegment(sid);
    ++stats_.compactions;
    return true;
  }
  return false;
}

bool LogShard::IndexGrowthPays(uint64_t new_entry) const {
  if (budget_ == 0) return true;
  const uint64_t tables = index_.bytes() + ghost_.bytes() + table_bytes_;
  const uint64_t growth = index_.GrowthCharge();
  if (tables + growth > limit_) return false;  // Not even with every entry evicted.
  const uint64_t per_entry = std::max<uint64_t>(
      1, stats_.keys == 0 ? new_entry : (segment_bytes_ + heap_bytes_) / stats_.keys);
  return (limit_ - (tables + growth - index_.bytes())) / per_entry > index_.size();
}

size_t LogShard::GhostTarget() const {
  const size_t capacity = ghost_.capacity();
  // Sized once the shard nears its budget, so it is ready when evictions start.
  if (!evicting_ || (stats_.evictions == 0 && Used() * 4 < limit_ * 3)) return capacity;
  // The paper's ghost queue remembers as many keys as the main queue can hold, which is about as
  // many as the shard holds (main is 90 % of it).
  const size_t target = std::max<size_t>(stats_.keys, kInitialGhost);
  if (capacity >= target && capacity <= 2 * target) return capacity;
  return GhostTable::CapacityFor(target + target / 4);
}

bool LogShard::Get(std::string_view key, uint64_t hash, Millis now,
                   absl::FunctionRef<void(std::string_view)> on_hit) {
  MutexLock lock(&mu_);
  item::View v;
  if (FindLive(key, hash, now, &v) == KeyIndex::kNotFound) {
    ++stats_.misses;
    return false;
  }
  ++stats_.hits;
  if (evicting_ && v.freq() < item::kMaxFreq) v.set_freq(static_cast<uint8_t>(v.freq() + 1));
  on_hit(v.value);
  return true;
}

absl::Status LogShard::Set(std::string_view key, uint64_t hash, std::string_view value,
                           Millis expire_at, Millis now) {
  const bool has_expiry = expire_at != kNoExpiry;
  if (has_expiry && expire_at <= now) {  // Gone at once: nothing to store.
    MutexLock lock(&mu_);
    item::View old;
    const size_t pos = FindLive(key, hash, now, &old);
    if (pos != KeyIndex::kNotFound) {
      Forget(pos, old);
      ++stats_.expirations;
    }
    return absl::OkStatus();
  }
  const size_t inline_size = item::InlineSize(key.size(), value.size(), has_expiry);
  const bool external = inline_size > inline_max_;
  const size_t block_size = external ? item::BlockSize(key.size(), value.size()) : 0;
  const uint64_t worst =
      external ? item::StubSize(has_expiry) + ChargeUpperBound(block_size) : inline_size;
  if (budget_ != 0 && worst > limit_) {
    return absl::ResourceExhaustedError("OOM value larger than the memory limit allows");
  }
  // A large value is copied into its own block before the lock is taken.
  char* block = nullptr;
  size_t block_charge = 0;
  if (external) {
    block = static_cast<char*>(std::malloc(block_size));
    if (block == nullptr) return absl::ResourceExhaustedError("OOM allocation failed");
    item::EncodeInline(block, 0, key, value, false, 0);
    block_charge = AllocCharge(block);
  }
  absl::Status status;
  {
    MutexLock lock(&mu_);
    status = SetLocked(key, hash, value, has_expiry, has_expiry ? codec_.Encode(expire_at) : 0,
                       block, block_charge, now);
  }
  if (!status.ok()) std::free(block);
  return status;
}

absl::Status LogShard::SetLocked(std::string_view key, uint64_t hash, std::string_view value,
                                 bool has_expiry, uint64_t expiry, char* block, size_t block_charge,
                                 Millis now) {
  const bool external = block != nullptr;
  const size_t size = external ? item::StubSize(has_expiry)
                               : item::InlineSize(key.size(), value.size(), has_expiry);
  const uint8_t expiry_flag = has_expiry ? item::kHasExpiry : 0;
  auto matches = [&](item::View* v) {
    return [this, key, v](uint64_t ref) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      item::DecodeInto(At(ref), v);
      return v->key == key;
    };
  };
  item::View old;
  size_t pos = FindLive(key, hash, now, &old);
  Queue q = evicting_ ? kSmall : kMain;
  uint8_t freq = 0;
  if (pos != KeyIndex::kNotFound) {
    // Writing a key again is a use of it, as a read is.
    freq = evicting_ && old.freq() < item::kMaxFreq ? old.freq() + 1 : old.freq();
    // Same footprint: rewrite in place (a larger out-of-line block must fit the budget, though).
    const bool block_fits =
        !external || budget_ == 0 || Used() + block_charge <= limit_ + AllocCharge(old.block);
    if (old.size == size && old.external() == external && block_fits) {
      const uint8_t flags = static_cast<uint8_t>(freq | expiry_flag);
      if (external) {
        const uint32_t sid = SegmentOf(index_.RefAt(pos));
        FreeBlock(old.block, sid);
        item::EncodeStub(old.at, flags, block, has_expiry, expiry);
        AddHeap(sid, static_cast<int64_t>(block_charge));
      } else {
        item::EncodeInline(old.at, flags, key, value, has_expiry, expiry);
      }
      return absl::OkStatus();
    }
    // A replaced key keeps its counter; one that was in main or used goes (back) to main.
    if (evicting_ && (segs_[SegmentOf(index_.RefAt(pos))].queue == kMain || freq > 0)) q = kMain;
  } else if (evicting_ && ghost_.Take(hash)) {
    q = kMain;
  }
  const bool new_key = pos == KeyIndex::kNotFound;
  // Index growth is decided before making room and done after: the evictions that pay for it
  // would otherwise take the need away, and the shard would stall at the index's load limit with
  // part of its budget unused. The index grows only if the budget then holds more entries than
  // it allows now; otherwise entries are evicted to stay within it.
  const bool index_full = new_key && index_.NeedsGrowth();
  const bool grow_index = index_full && IndexGrowthPays(size + block_charge);
  const size_t ghost_target = GhostTarget();
  const bool made_room = MakeRoom(
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        uint64_t n = block_charge;
        if (HeadRoom(q) < size) n += segment_charge_;
        if (grow_index) n += index_.GrowthCharge();
        if (index_full && !grow_index && index_.NeedsGrowth()) n += limit_;  // Evict one more.
        if (ghost_target != ghost_.capacity()) n += GhostTable::ChargeFor(ghost_target);
        return n;
      },
      now);
  if (!made_room) return NoRoom(evicting_);
  // Draining may have moved or evicted the old entry.
  if (!new_key) pos = index_.Find(hash, matches(&old));
  if (grow_index || (budget_ == 0 && pos == KeyIndex::kNotFound && index_.NeedsGrowth())) {
    if (budget_ == 0 || Used() + index_.GrowthCharge() <= limit_) index_.Grow();
  }
  if (pos == KeyIndex::kNotFound && index_.size() + 1 >= index_.capacity()) {
    return NoRoom(evicting_);
  }
  if (ghost_target != ghost_.capacity() && Used() + GhostTable::ChargeFor(ghost_target) <= limit_) {
    ghost_.Resize(ghost_target);
  }
  uint64_t ref;
  char* dst = Append(q, size, limit_, &ref);
  if (dst == nullptr) return NoRoom(evicting_);
  const uint8_t flags = static_cast<uint8_t>(freq | expiry_flag);
  if (external) {
    item::EncodeStub(dst, flags, block, has_expiry, expiry);
    AddHeap(SegmentOf(ref), static_cast<int64_t>(block_charge));
  } else {
    item::EncodeInline(dst, flags, key, value, has_expiry, expiry);
  }
  if (pos != KeyIndex::kNotFound) {
    const uint64_t old_ref = index_.RefAt(pos);
    index_.SetRefAt(pos, ref);
    if (old.external()) FreeBlock(old.block, SegmentOf(old_ref));
    MarkDead(old_ref, old.size);
  } else {
    index_.Insert(hash, ref);
    ++stats_.keys;
  }
  if (!evicting_) CompactOne();
  return absl::OkStatus();
}

bool LogShard::Delete(std::string_view key, uint64_t hash, Millis now) {
  MutexLock lock(&mu_);
  item::View v;
  const size_t pos = FindLive(key, hash, now, &v);
  if (pos == KeyIndex::kNotFound) return false;
  Forget(pos, v);
  if (!evicting_) CompactOne();
  return true;
}

absl::StatusOr<bool> LogShard::Expire(std::string_view key, uint64_t hash, Millis expire_at,
                                      Millis now) {
  MutexLock lock(&mu_);
  item::View v;
  size_t pos = FindLive(key, hash, now, &v);
  if (pos == KeyIndex::kNotFound) return false;
  if (expire_at <= now) {  // EXPIRE 0: gone at once, reclaimed now.
    Forget(pos, v);
    ++stats_.expirations;
    return true;
  }
  const uint64_t expiry = codec_.Encode(expire_at);
  if (v.has_expiry) {
    item::PutExpiry(item::ExpiryField(v), expiry);
    return true;
  }
  // The entry grows by the expiry field: rewrite it at the head of its queue.
  const Queue q = segs_[SegmentOf(index_.RefAt(pos))].queue;
  const size_t size = v.size + item::kExpiryBytes;
  if (!MakeRoom(
          [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return HeadRoom(q) < size ? segment_charge_ : 0; },
          now)) {
    return NoRoom(evicting_);
  }
  pos = index_.Find(hash, [&](uint64_t ref) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    item::DecodeInto(At(ref), &v);
    return v.key == key;
  });
  if (pos == KeyIndex::kNotFound) return false;  // Evicted while making room.
  uint64_t ref;
  char* dst = Append(q, size, limit_, &ref);
  if (dst == nullptr) return NoRoom(evicting_);
  const uint8_t flags = static_cast<uint8_t>(v.freq() | item::kHasExpiry);
  if (v.external()) {
    item::EncodeStub(dst, flags, v.block, true, expiry);
  } else {
    item::EncodeInline(dst, flags, v.key, v.value, true, expiry);
  }
  const uint64_t old_ref = index_.RefAt(pos);
  index_.SetRefAt(pos, ref);
  MarkDead(old_ref, v.size);
  if (!evicting_) CompactOne();
  return true;
}

int64_t LogShard::TtlMs(std::string_view key, uint64_t hash, Millis now) {
  MutexLock lock(&mu_);
  item::View v;
  if (FindLive(key, hash, now, &v) == KeyIndex::kNotFound) return kTtlMissing;
  if (!v.has_expiry) return kTtlNoExpiry;
  const uint64_t left = codec_.Decode(v.expiry) - now;
  return left > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(left);
}

size_t LogShard::SweepExpired(Millis now, size_t max_reclaimed, size_t max_visited) {
  MutexLock lock(&mu_);
  size_t reclaimed = 0;
  const uint32_t ids = static_cast<uint32_t>(segs_.size());
  if (ids <= 1) return 0;
  for (size_t visited = 0; visited < max_visited && reclaimed < max_reclaimed; ++visited) {
    if (sweep_sid_ == 0 || sweep_sid_ >= ids) {
      sweep_sid_ = 1;
      sweep_offset_ = 0;
      sweep_gen_ = segs_[1].gen;
    }
    const Segment& s = segs_[sweep_sid_];
    if (s.gen != sweep_gen_) {  // Freed or reused since the cursor was placed: start it over.
      sweep_offset_ = 0;
      sweep_gen_ = s.gen;
    }
    if (s.mem == nullptr || sweep_offset_ >= s.fill) {
      ++sweep_sid_;
      sweep_offset_ = 0;
      if (sweep_sid_ < ids) sweep_gen_ = segs_[sweep_sid_].gen;
      continue;
    }
    char* at = s.mem + sweep_offset_;
    const uint64_t ref = Ref(sweep_sid_, sweep_offset_);
    sweep_offset_ += static_cast<uint32_t>(item::SizeAt(at));
    const uint8_t flags = static_cast<uint8_t>(*at);
    if ((flags & item::kDead) || !(flags & item::kHasExpiry)) continue;
    const item::View v = item::Decode(at);
    if (!Expired(v, now)) continue;
    const size_t pos = index_.FindRef(hasher_(v.key), ref);
    assert(pos != KeyIndex::kNotFound);
    Forget(pos, v);
    ++stats_.expirations;
    ++reclaimed;
  }
  return reclaimed;
}

ShardStats LogShard::Stats() const {
  MutexLock lock(&mu_);
  ShardStats s = stats_;
  s.memory_limit_bytes = budget_;
  s.memory_used_bytes = Used();
  s.segment_bytes = segment_bytes_;
  s.heap_bytes = heap_bytes_;
  s.index_bytes = index_.bytes();
  s.metadata_bytes = ghost_.bytes() + table_bytes_;
  s.item_bytes = item_bytes_;
  return s;
}

}  // namespace crabcache::core

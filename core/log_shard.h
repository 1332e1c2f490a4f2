// The log-structured shard behind `s3fifo` and `noeviction` (internal to core).
//
// Entries are appended to fixed-size segments (16 KiB, smaller for small budgets) in the layout of
// core/item.h: 3 bytes of header for short keys and values, no allocator header, no padding. The
// KeyIndex maps a key to a 40-bit reference, (segment id << 16) | offset. A segment belongs to one
// queue for its whole life, and a queue is a list of segments oldest to newest, so FIFO order is
// the append order and an entry needs no queue links: its eviction metadata is the 2-bit access
// counter in its flags byte (the Segcache layout, NSDI'21, which suits S3-FIFO's FIFO queues).
//
// S3-FIFO (Yang et al., SOSP'23): new keys are appended to the small queue, keys remembered by the
// ghost table and replaced keys that were used go to the main queue. To make room the shard drains
// the oldest segment of the small queue while that queue holds >= 10 % of the budget, else of
// the main queue: in the small queue an entry read since its insertion moves to the main queue
// (copied, counter cleared) and the rest are evicted and their fingerprints remembered as ghosts;
// in the main queue an entry with a non-zero counter is reinserted (copied to the head, counter
// decremented) and the rest are evicted. A drained segment is freed. Expired entries met on the
// way are reclaimed.
//
// Work per write is bounded: usually one segment drain. A drain that reinserts everything frees
// nothing ("fruitless"); once one write has made 256 of them (kMaxFruitlessDrainsPerWrite), each
// further drain of that write evicts its whole segment without reinserting, which frees it. So a
// write makes at most 256 drains that free nothing (4 MiB of copying at 16 KiB segments) plus
// the drains that free what it needs (each frees a segment or an out-of-line block, so their
// number grows with the size of the write, not of the shard). Without the valve a shard whose main
// queue is all recently read (counter 3) is drained up to three times over before anything is
// evicted. 256, not less: the valve overrides the policy, and at 8 a hot set spanning more than 8
// segments in a row was evicted under cold churn (S3FifoRegressionTest.HotSetSurvivesColdChurn,
// soak); a hot run of 256 segments is a 4 MiB hot set in one shard.
//
// Dead bytes (entries deleted, replaced or expired) stay in their segment until it is drained,
// freed when its last entry dies, or compacted. With `noeviction` or no limit nothing is drained,
// so a segment that falls below half live is compacted: its live entries are copied to the head
// and it is freed (one segment per write, and up to four when a write needs room at the limit).
// A write whose bytes fit where the old entry is (same size) is done in place.
//
// Accounting: segments, out-of-line blocks, the index and the ghost and segment tables, each at
// the allocator's charge. One segment of the budget is held back so a drain or compaction always
// has a segment to copy survivors into; no allocation ever takes the total past the budget.
//
// Thread-safety: as Shard. The shard's lock guards everything below.
#ifndef CRABCACHE_CORE_LOG_SHARD_H_
#define CRABCACHE_CORE_LOG_SHARD_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ghost.h"
#include "core/item.h"
#include "core/key_index.h"
#include "core/mutex.h"
#include "core/shard.h"

namespace crabcache::core {

class LogShard final : public Shard {
 public:
  // REQUIRES: options.policy is kS3Fifo or kNoEviction.
  explicit LogShard(const ShardOptions& options);
  ~LogShard() override;
  LogShard(const LogShard&) = delete;
  LogShard& operator=(const LogShard&) = delete;

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

  // The segment size used for a shard budget: 1/64 of it as a power of two, within [256, 16 KiB];
  // 16 KiB when unlimited.
  static size_t SegmentSizeFor(uint64_t budget_bytes);

  // Drains that free nothing one write may make before its drains only evict (file comment).
  static constexpr int kMaxFruitlessDrainsPerWrite = 256;

  // Segments drained so far (s3fifo eviction work; tests and benchmarks).
  uint64_t SegmentsDrained() const {
    MutexLock lock(&mu_);
    return segments_drained_;
  }

 private:
  enum Queue : uint8_t { kSmall = 0, kMain = 1 };

  struct Segment {
    char* mem = nullptr;  // Null: the id is free.
    uint32_t fill = 0;    // Append offset.
    uint32_t live = 0;    // Bytes of live entries.
    uint32_t older = 0;   // Queue neighbours; 0 is none.
    uint32_t newer = 0;
    uint32_t gen = 0;  // Changes whenever the bytes are freed or reused (the sweep's cursor).
    Queue queue = kMain;
    bool busy = false;    // Being drained or compacted: its owner frees it.
    bool sparse = false;  // Listed as a compaction candidate in this generation.
  };
  struct QueueState {
    uint32_t head = 0;  // Newest segment, the one appended to.
    uint32_t tail = 0;  // Oldest.
    uint32_t segments = 0;
    uint64_t items = 0;
    // Out-of-line value blocks owned by this queue's stubs: the queue's real size is its
    // segments plus these, and the small queue's 10 % share is measured on that.
    uint64_t heap_bytes = 0;
  };

  static uint64_t Ref(uint32_t sid, uint32_t offset) { return (uint64_t{sid} << 16) | offset; }
  static uint32_t SegmentOf(uint64_t ref) { return static_cast<uint32_t>(ref >> 16); }
  char* At(uint64_t ref) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return segs_[SegmentOf(ref)].mem + (ref & 0xffff);
  }
  bool Expired(const item::View& v, Millis now) const {
    return v.has_expiry && codec_.Decode(v.expiry) <= now;
  }
  uint64_t Used() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return segment_bytes_ + heap_bytes_ + index_.bytes() + ghost_.bytes() + table_bytes_;
  }

  // The index position of the live entry for key (its view in *out), or KeyIndex::kNotFound; an
  // expired entry is reclaimed on the way.
  size_t FindLive(std::string_view key, uint64_t hash, Millis now, item::View* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the entry at index position `pos` (view v): slot, block and bytes.
  void Forget(size_t pos, const item::View& v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the entry at `ref` dead in its segment and recycles the segment if that was its last.
  void MarkDead(uint64_t ref, size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the out-of-line block of a stub in segment `sid`.
  void FreeBlock(char* block, uint32_t sid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Charges (or, negative, discharges) out-of-line bytes to the queue of segment `sid`.
  void AddHeap(uint32_t sid, int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Bytes still free in queue q's head segment.
  size_t HeadRoom(Queue q) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Space for `size` bytes at queue q's head, opening a segment if needed; null if that would take
  // Used() past `limit` (limit_ for writes, budget_ for drains and compactions) or the allocator
  // says no. *ref receives the new entry's reference.
  char* Append(Queue q, size_t size, uint64_t limit, uint64_t* ref)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool OpenSegment(Queue q, uint64_t limit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unlink(uint32_t sid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeSegment(uint32_t sid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteSparse(uint32_t sid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefreshTableBytes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies the entry at index position `pos` to queue q's head with counter freq; false if no
  // space could be had (the entry is untouched then).
  bool Move(size_t pos, const item::View& v, Queue q, uint8_t freq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Frees or reclaims until Used() + needed() <= limit_; false if it cannot.
  template <typename Needed>
  bool MakeRoom(Needed needed, Millis now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Queue VictimQueue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Processes every entry of queue q's oldest segment and frees it (see the file comment).
  void Drain(Queue q, bool force, Millis now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the live entries of one mostly-dead segment to the head and frees it; false if there
  // was no candidate or no space.
  bool CompactOne() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether growing the index lets the budget hold more entries (of the current average size,
  // new_entry if empty) than the index allows now.
  bool IndexGrowthPays(uint64_t new_entry) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ghost capacity wanted now (== ghost_.capacity() when no resize is due).
  size_t GhostTarget() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status SetLocked(std::string_view key, uint64_t hash, std::string_view value,
                         bool has_expiry, uint64_t expiry, char* block, size_t block_charge,
                         Millis now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Immutable after construction.
  const EvictionPolicy policy_;
  const uint64_t budget_;
  const item::ExpiryCodec codec_;
  const KeyHasher hasher_;
  const size_t segment_size_;
  const size_t segment_charge_;  // Upper bound of one segment's allocation charge.
  const size_t inline_max_;      // Larger entries live out of line.
  const uint64_t limit_;         // budget_ minus the segment held back for drains.
  const bool evicting_;          // s3fifo with a budget.

  mutable Mutex mu_;
  KeyIndex index_ ABSL_GUARDED_BY(mu_);
  GhostTable ghost_ ABSL_GUARDED_BY(mu_);
  std::vector<Segment> segs_ ABSL_GUARDED_BY(mu_);  // Id 0 is never used.
  std::vector<uint32_t> free_ids_ ABSL_GUARDED_BY(mu_);
  // Compaction candidates (id, generation), possibly stale; non-evicting modes only.
  std::vector<std::pair<uint32_t, uint32_t>> sparse_ ABSL_GUARDED_BY(mu_);
  QueueState queues_[2] ABSL_GUARDED_BY(mu_);
  uint64_t segment_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t heap_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t table_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // segs_, free_ids_ and sparse_.
  uint64_t item_bytes_ ABSL_GUARDED_BY(mu_) = 0;   // Live bytes inside segments.
  uint32_t sweep_sid_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t sweep_offset_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t sweep_gen_ ABSL_GUARDED_BY(mu_) = 0;
  ShardStats stats_ ABSL_GUARDED_BY(mu_);  // Counters; the byte fields are filled by Stats().
  uint64_t segments_drained_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_LOG_SHARD_H_

// The stored entry: one allocation holding header, key and value (internal to core).
#ifndef CRABCACHE_CORE_ENTRY_H_
#define CRABCACHE_CORE_ENTRY_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/clock.h"

namespace crabcache::core {

// Which eviction queue an entry is on.
enum class Queue : uint8_t { kSmall = 0, kMain = 1 };

// Layout: [Entry header][key bytes][value bytes], allocated with malloc so the accounted charge
// can be read back from the allocator (malloc_usable_size). Owned by exactly one Shard.
struct Entry {
  Entry* chain;  // Next entry in the same index bucket.
  Entry* prev;   // Eviction queue links (the queue's head is the newest entry).
  Entry* next;
  uint64_t hash;
  Millis expire_at;  // kNoExpiry (0) or an absolute instant.
  uint32_t key_len;
  uint32_t value_len;
  uint32_t charge;  // Bytes accounted for this entry (allocator's real size + its overhead).
  Queue queue;
  uint8_t freq;  // S3-FIFO access counter, saturating at kMaxFreq.

  static constexpr uint8_t kMaxFreq = 3;

  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  std::string_view key() const { return {data(), key_len}; }
  std::string_view value() const { return {data() + key_len, value_len}; }
  bool ExpiredAt(Millis now) const { return expire_at != 0 && expire_at <= now; }

  // Allocates and fills an entry; returns null if the allocator fails. REQUIRES: sizes fit u32.
  static Entry* Create(uint64_t hash, std::string_view key, std::string_view value,
                       Millis expire_at);
  static void Destroy(Entry* entry);
  // The charge an entry of these sizes would have, without allocating.
  static size_t ChargeFor(size_t key_len, size_t value_len);
};

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_ENTRY_H_

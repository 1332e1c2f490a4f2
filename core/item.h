// The byte layout of a stored entry (internal to core).
//
// An item is a flags byte, the key and value lengths as LEB128 varints, an optional expiry, then
// the key and the value bytes:
//
//   flags u8 | key_len varint | value_len varint | [expiry u48] | key | value
//
// For the 1,000,000 x (16-byte key, 10-byte value) load that is 29 bytes: 3 bytes of header. An
// item too large to sit inline in a log segment is stored out of line in its own malloc'd block
// (same layout, no expiry), and the segment holds a stub instead:
//
//   flags u8 (kExternal) | block pointer u64 | [expiry u48]
//
// Flags: bits 0-1 the S3-FIFO access counter, bit 2 "has expiry", bit 3 "external", bit 7 "dead"
// (removed, waiting for its segment to be recycled). The expiry is an offset in milliseconds from
// the shard's epoch, 48 bits (8,900 years); offsets beyond saturate to "practically never"
// (Millis max), as ExpiryAfter saturates, and lru keeps its absolute expiries to the same horizon
// (LruShard::Horizon) so both layouts agree. Every multi-byte field is unaligned
// little-endian and read with memcpy. Dead items keep their header so segments stay walkable.
#ifndef CRABCACHE_CORE_ITEM_H_
#define CRABCACHE_CORE_ITEM_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include "core/clock.h"

namespace crabcache::core::item {

inline constexpr uint8_t kFreqMask = 0x03;
inline constexpr uint8_t kMaxFreq = 3;
inline constexpr uint8_t kHasExpiry = 0x04;
inline constexpr uint8_t kExternal = 0x08;
inline constexpr uint8_t kDead = 0x80;

inline constexpr size_t kExpiryBytes = 6;
inline constexpr uint64_t kExpirySaturated = (uint64_t{1} << 48) - 1;
inline constexpr size_t kStubBytes = 1 + sizeof(char*);

// Expiry instants as 48-bit offsets from an epoch (the store's clock when it was built).
struct ExpiryCodec {
  Millis epoch = 0;
  uint64_t Encode(Millis at) const {
    if (at <= epoch) return 0;  // Only reachable with a `now` before the epoch: already expired.
    const uint64_t offset = at - epoch;
    return offset >= kExpirySaturated ? kExpirySaturated : offset;
  }
  Millis Decode(uint64_t offset) const {
    return offset == kExpirySaturated ? std::numeric_limits<Millis>::max() : epoch + offset;
  }
};

inline size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline char* PutVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline const char* GetVarint(const char* p, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(*p++);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) break;
  }
  *v = result;
  return p;
}

inline void PutExpiry(char* p, uint64_t offset) {
  for (size_t i = 0; i < kExpiryBytes; ++i) p[i] = static_cast<char>(offset >> (8 * i));
}

inline uint64_t GetExpiry(const char* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < kExpiryBytes; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

// Bytes of a whole inline item.
inline size_t InlineSize(size_t key_len, size_t value_len, bool has_expiry) {
  return 1 + VarintSize(key_len) + VarintSize(value_len) + (has_expiry ? kExpiryBytes : 0) +
         key_len + value_len;
}

// Bytes of an external block (an inline item without expiry).
inline size_t BlockSize(size_t key_len, size_t value_len) {
  return InlineSize(key_len, value_len, false);
}

inline size_t StubSize(bool has_expiry) { return kStubBytes + (has_expiry ? kExpiryBytes : 0); }

// Writes an inline item at `dst` (InlineSize bytes); flags' kHasExpiry must match has_expiry.
inline char* EncodeInline(char* dst, uint8_t flags, std::string_view key, std::string_view value,
                          bool has_expiry, uint64_t expiry) {
  *dst++ = static_cast<char>(flags);
  dst = PutVarint(dst, key.size());
  dst = PutVarint(dst, value.size());
  if (has_expiry) {
    PutExpiry(dst, expiry);
    dst += kExpiryBytes;
  }
  if (!key.empty()) std::memcpy(dst, key.data(), key.size());
  dst += key.size();
  if (!value.empty()) std::memcpy(dst, value.data(), value.size());
  return dst + value.size();
}

// Writes a stub pointing at `block` (StubSize bytes).
inline char* EncodeStub(char* dst, uint8_t flags, const char* block, bool has_expiry,
                        uint64_t expiry) {
  *dst++ = static_cast<char>(flags | kExternal);
  std::memcpy(dst, &block, sizeof(block));
  dst += sizeof(block);
  if (has_expiry) {
    PutExpiry(dst, expiry);
    dst += kExpiryBytes;
  }
  return dst;
}

// A decoded item: `at` is its flags byte where it is stored (segment or heap block).
struct View {
  char* at = nullptr;
  char* block = nullptr;  // External items: the out-of-line block; else null.
  size_t size = 0;        // Bytes at `at` (the stub's size for external items).
  bool has_expiry = false;
  uint64_t expiry = 0;  // Offset from the epoch when has_expiry.
  std::string_view key;
  std::string_view value;

  uint8_t flags() const { return static_cast<uint8_t>(*at); }
  uint8_t freq() const { return flags() & kFreqMask; }
  void set_freq(uint8_t f) { *at = static_cast<char>((flags() & ~kFreqMask) | f); }
  bool external() const { return block != nullptr; }
};

// Where the expiry field of a decoded item with has_expiry is stored (to update it in place).
inline char* ExpiryField(const View& v) {
  return v.external() ? v.at + kStubBytes : const_cast<char*>(v.key.data()) - kExpiryBytes;
}

// Decodes the item at `at` into *v, field by field (assigning a whole View from a temporary costs
// store-forwarding stalls on the lookup path). REQUIRES: not dead if external (a dead stub's block
// is freed).
inline void DecodeInto(char* at, View* v) {
  v->at = at;
  const uint8_t flags = static_cast<uint8_t>(*at);
  v->has_expiry = (flags & kHasExpiry) != 0;
  const char* body = at;
  v->block = nullptr;
  v->expiry = 0;
  if (flags & kExternal) {
    std::memcpy(&v->block, at + 1, sizeof(v->block));
    if (v->has_expiry) v->expiry = GetExpiry(at + kStubBytes);
    v->size = StubSize(v->has_expiry);
    body = v->block;
  }
  uint64_t key_len = 0, value_len = 0;
  const char* p = GetVarint(body + 1, &key_len);
  p = GetVarint(p, &value_len);
  if (!(flags & kExternal)) {
    if (v->has_expiry) {
      v->expiry = GetExpiry(p);
      p += kExpiryBytes;
    }
    v->size = static_cast<size_t>(p - at) + key_len + value_len;
  }
  v->key = {p, static_cast<size_t>(key_len)};
  v->value = {p + key_len, static_cast<size_t>(value_len)};
}

inline View Decode(char* at) {
  View v;
  DecodeInto(at, &v);
  return v;
}

// Bytes of the item at `at` without touching an external block (so it works on dead stubs).
inline size_t SizeAt(const char* at) {
  const uint8_t flags = static_cast<uint8_t>(*at);
  const bool has_expiry = (flags & kHasExpiry) != 0;
  if (flags & kExternal) return StubSize(has_expiry);
  uint64_t key_len = 0, value_len = 0;
  const char* p = GetVarint(at + 1, &key_len);
  p = GetVarint(p, &value_len);
  return static_cast<size_t>(p - at) + (has_expiry ? kExpiryBytes : 0) + key_len + value_len;
}

}  // namespace crabcache::core::item

#endif  // CRABCACHE_CORE_ITEM_H_

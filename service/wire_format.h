// Protocol buffers wire format primitives (https://protobuf.dev/programming-guides/encoding/),
// for the hand-written BatchRequest decoder and BatchResponse encoder (service/batch_decoder.h,
// service/response_encoder.h).
//
// The read side accepts exactly what the C++ protobuf parser this server links (3.21,
// google/protobuf/parse_context.h) accepts, so that the raw BatchExecute path and the generated
// code agree on every input:
//   - a varint has at most 10 bytes; bits beyond 64 are dropped (not an error);
//   - a tag has at most 5 bytes; bits beyond 32 are dropped;
//   - a length has at most 5 bytes, the fifth below 8, and is at most INT_MAX - 16.
// Every reader takes the end of its input and never reads at or past it.
#ifndef CRABCACHE_SERVICE_WIRE_FORMAT_H_
#define CRABCACHE_SERVICE_WIRE_FORMAT_H_

#include <climits>
#include <cstddef>
#include <cstdint>

namespace crabcache::service::wire {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

constexpr uint32_t MakeTag(uint32_t field, WireType type) { return field << 3 | type; }
constexpr uint32_t FieldOf(uint32_t tag) { return tag >> 3; }
constexpr uint32_t TypeOf(uint32_t tag) { return tag & 7; }

// protobuf's recursion limit (io::CodedInputStream::GetDefaultRecursionLimit()): a message
// nested deeper than this, counting unknown groups, fails to parse.
inline constexpr int kMaxDepth = 100;
// Largest length protobuf accepts (ParseContext::kSlopBytes = 16 below INT_MAX).
inline constexpr uint32_t kMaxLength = INT_MAX - 16;

// Reads a varint of at most `max_bytes` bytes starting at `p`, keeping the low bits that fit in
// 64. Returns the byte after it, or nullptr if it reaches `end` or runs longer.
inline const uint8_t* ReadVarint(const uint8_t* p, const uint8_t* end, int max_bytes,
                                 uint64_t* out) {
  if (p < end && *p < 0x80) {  // The common one-byte case.
    *out = *p;
    return p + 1;
  }
  uint64_t value = 0;
  for (int i = 0; i < max_bytes; ++i, ++p) {
    if (p == end) return nullptr;
    const uint64_t byte = *p;
    value |= (byte & 0x7f) << (7 * i);  // Byte 10 (i = 9) keeps one bit; the rest falls off.
    if (byte < 0x80) {
      *out = value;
      return p + 1;
    }
  }
  return nullptr;
}

inline const uint8_t* ReadVarint64(const uint8_t* p, const uint8_t* end, uint64_t* out) {
  return ReadVarint(p, end, 10, out);
}

inline const uint8_t* ReadTag(const uint8_t* p, const uint8_t* end, uint32_t* tag) {
  uint64_t value;
  p = ReadVarint(p, end, 5, &value);
  *tag = static_cast<uint32_t>(value);
  return p;
}

// A length prefix; also checks that that many bytes follow before `end`.
inline const uint8_t* ReadLength(const uint8_t* p, const uint8_t* end, size_t* length) {
  if (p < end && *p < 0x80) {  // The common one-byte case.
    if (*p > end - p - 1) return nullptr;
    *length = *p;
    return p + 1;
  }
  uint64_t value;
  const uint8_t* start = p;
  p = ReadVarint(p, end, 5, &value);
  if (p == nullptr) return nullptr;
  if (p - start == 5 && start[4] >= 8) return nullptr;  // 2 GiB or more.
  if (value > kMaxLength || value > static_cast<uint64_t>(end - p)) return nullptr;
  *length = static_cast<size_t>(value);
  return p;
}

// Bytes of the varint encoding of `value` (1 to 10).
constexpr size_t VarintSize(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

// Writes the varint encoding of `value` at `p`; returns the byte after it.
inline uint8_t* WriteVarint(uint8_t* p, uint64_t value) {
  while (value >= 0x80) {
    *p++ = static_cast<uint8_t>(value | 0x80);
    value >>= 7;
  }
  *p++ = static_cast<uint8_t>(value);
  return p;
}

}  // namespace crabcache::service::wire

#endif  // CRABCACHE_SERVICE_WIRE_FORMAT_H_

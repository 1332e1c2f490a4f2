// What the load engines send and how every reply is checked, independent of the wire format.
//
// A byte-stream Protocol (binary fast path, RESP) encodes GET/SET requests and parses one reply
// at a time; the gRPC engine maps its Result messages onto the same Reply so that CheckReply,
// the single place that decides whether a reply is right, serves every protocol.
#ifndef CRABCACHE_BENCH_PROTOCOL_H_
#define CRABCACHE_BENCH_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "bench/keyspace.h"
#include "fastpath/buffer.h"

namespace crabcache::bench {

enum class Op : uint8_t { kGet, kSet };

enum class ReplyKind : uint8_t {
  kOk,     // SET stored.
  kValue,  // GET hit; `value` holds the bytes.
  kNull,   // GET miss.
  kError,  // The server refused the command; `value` holds its message.
  kOther,  // Any other well-formed reply (PONG, an integer, a status other than OK, ...).
};

struct Reply {
  ReplyKind kind = ReplyKind::kOther;
  std::string_view value;  // Views into the engine's input buffer or message.
};

// The outcome of checking one reply against its request.
enum class Check : uint8_t {
  kOk,           // A SET answered OK.
  kHit,          // A GET answered the key's value.
  kMiss,         // A GET answered "not found" (an error unless misses are allowed).
  kWrongValue,   // A GET answered a value other than the key's.
  kWrongKind,    // A reply of the wrong type for the request.
  kServerError,  // The server answered an error.
};

// Checks `reply` to `op` on key index `key`. Pure; does not allocate.
Check CheckReply(const KeySpace& keys, Op op, uint64_t key, const Reply& reply);

// True when the run may go on after `check`. Misses are allowed only when the key space was not
// prefilled: after a prefill every key exists and a miss means the server lost it.
inline bool Acceptable(Check check, bool allow_misses) {
  return check == Check::kOk || check == Check::kHit || (check == Check::kMiss && allow_misses);
}

// A human-readable account of a failed check, for the error the run ends with.
std::string DescribeFailure(const KeySpace& keys, Op op, uint64_t key, const Reply& reply,
                            Check check);

// Stateless apart from configuration; one instance may serve every connection of every thread.
class Protocol {
 public:
  virtual ~Protocol() = default;
  virtual std::string_view name() const = 0;
  // Appends one request to `out`. Does not allocate once `out` has the capacity.
  virtual void AppendGet(std::string_view key, fastpath::Buffer* out) const = 0;
  virtual void AppendSet(std::string_view key, std::string_view value,
                         fastpath::Buffer* out) const = 0;
  // Parses the reply at the start of `in`: returns the bytes it spans (> 0), 0 when `in` holds
  // only part of a reply, or -1 when `in` does not start with a reply of this protocol.
  virtual long ParseReply(std::string_view in, Reply* reply) const = 0;
};

std::unique_ptr<Protocol> MakeRespProtocol();
// CrabCache's fast path, encoded and decoded by fastpath/codec.h. Replies longer than
// `max_reply_bytes` are malformed.
std::unique_ptr<Protocol> MakeBinaryProtocol(size_t max_reply_bytes = KeySpace::kMaxValueSize);

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_PROTOCOL_H_

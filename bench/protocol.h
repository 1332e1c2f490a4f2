// The byte-stream protocols the load generator speaks: CrabCache's binary fast path and RESP
// (for redis-server). Each encodes GET/SET requests and parses exactly one reply at a time.
#ifndef CRABCACHE_BENCH_PROTOCOL_H_
#define CRABCACHE_BENCH_PROTOCOL_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace crabcache::bench {

enum class ReplyKind { kOk, kValue, kNull, kError, kOther };

struct Reply {
  ReplyKind kind = ReplyKind::kOther;
  std::string_view value;  // kValue: the bytes; kError: the message. Views into the input.
};

// Stateless apart from configuration; one instance may serve every connection of a thread.
class Protocol {
 public:
  virtual ~Protocol() = default;
  virtual std::string_view name() const = 0;
  virtual void AppendGet(std::string_view key, std::string* out) const = 0;
  virtual void AppendSet(std::string_view key, std::string_view value, std::string* out) const = 0;
  // Parses one reply at the start of `in`: returns the bytes it used, 0 if `in` holds only part
  // of a reply, or -1 if the bytes are not a reply of this protocol.
  virtual long ParseReply(std::string_view in, Reply* reply) const = 0;
};

std::unique_ptr<Protocol> MakeRespProtocol();
std::unique_ptr<Protocol> MakeBinaryProtocol();

}  // namespace crabcache::bench

#endif  // CRABCACHE_BENCH_PROTOCOL_H_

// CrabCache's fast path protocol v1 (docs/protocol.md). Requests are encoded and replies parsed
// by the fast path's own codec (fastpath/codec.h), so the bench cannot drift from the server.
#include "bench/protocol.h"
#include "fastpath/codec.h"

namespace crabcache::bench {
namespace {

class BinaryProtocol final : public Protocol {
 public:
  explicit BinaryProtocol(size_t max_reply_bytes) : max_reply_bytes_(max_reply_bytes) {}

  std::string_view name() const override { return "binary"; }

  void AppendGet(std::string_view key, fastpath::Buffer* out) const override {
    fastpath::EncodeGet(out, key);
  }

  void AppendSet(std::string_view key, std::string_view value,
                 fastpath::Buffer* out) const override {
    fastpath::EncodePut(out, key, value);
  }

  long ParseReply(std::string_view in, Reply* reply) const override {
    const fastpath::ReplyParseResult r = fastpath::ParseReply(in, max_reply_bytes_);
    switch (r.status) {
      case fastpath::ReplyParseResult::Status::kNeedMore:
        return 0;
      case fastpath::ReplyParseResult::Status::kError:
        return -1;
      case fastpath::ReplyParseResult::Status::kReply:
        break;
    }
    switch (r.reply.type) {
      case fastpath::ReplyType::kOk:
        *reply = {ReplyKind::kOk, {}};
        break;
      case fastpath::ReplyType::kValue:
        *reply = {ReplyKind::kValue, r.reply.bytes};
        break;
      case fastpath::ReplyType::kNull:
        *reply = {ReplyKind::kNull, {}};
        break;
      case fastpath::ReplyType::kError:
        *reply = {ReplyKind::kError, r.reply.bytes};
        break;
      default:  // PONG, STATS, INT never answer GET or SET.
        *reply = {ReplyKind::kOther, r.reply.bytes};
        break;
    }
    return static_cast<long>(r.consumed);
  }

 private:
  const size_t max_reply_bytes_;
};

}  // namespace

std::unique_ptr<Protocol> MakeBinaryProtocol(size_t max_reply_bytes) {
  return std::make_unique<BinaryProtocol>(max_reply_bytes);
}

}  // namespace crabcache::bench

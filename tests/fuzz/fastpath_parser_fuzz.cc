// libFuzzer target for the fast path codec: the request parser and the reply parser.
//
// Invariants checked on every input (a violation aborts, which libFuzzer reports):
//   - Parse consumes 0 < consumed <= size for a frame, and needed > size for need-more;
//   - a parsed frame re-encodes to exactly the bytes it was parsed from;
//   - a complete frame is never reported as need-more: every strict prefix of a frame is
//     need-more (with needed <= the frame's size) and the frame's own bytes parse as that frame;
//   - the decoded command respects the limits and the TTL conversion saturates;
//   - an error is final: appending bytes after the input never turns it into a frame;
//   - the same invariants for replies (ParseReply / EncodeReply).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fastpath/buffer.h"
#include "fastpath/codec.h"

namespace crabcache::fastpath {
namespace {

// Small limits so the fuzzer reaches the limit checks with short inputs.
constexpr Limits kLimits{.max_key_bytes = 256, .max_value_bytes = 4096};
constexpr size_t kLargestFrame = 1 + 4 + 256 + 4 + 4096 + 1 + 8;
constexpr size_t kMaxReply = 4096;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fastpath_parser_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

bool SameRequest(const Request& a, const Request& b) {
  return a.op == b.op && a.command.id == b.command.id && a.command.key == b.command.key &&
         a.command.value == b.command.value && a.command.ttl_ms == b.command.ttl_ms &&
         a.command.has_ttl == b.command.has_ttl && a.token == b.token &&
         a.ttl_seconds == b.ttl_seconds;
}

void CheckFrame(std::string_view frame, const Request& req) {
  Buffer again;
  EncodeRequest(req, &again);
  Check(again.view() == frame, "a parsed frame re-encodes to the same bytes");
  const ParseResult alone = Parse(frame, kLimits);
  Check(alone.status == ParseResult::Status::kFrame && alone.consumed == frame.size() &&
            SameRequest(alone.request, req),
        "a frame's own bytes parse as that frame");
  // Prefixes: all of them for short frames, a sample for long ones.
  for (size_t k = 0; k < frame.size(); k = frame.size() <= 64 ? k + 1 : k * 2 + 1) {
    const ParseResult p = Parse(frame.substr(0, k), kLimits);
    Check(p.status == ParseResult::Status::kNeedMore, "a strict prefix of a frame needs more");
    Check(p.needed > k && p.needed <= frame.size(), "needed is a bound of the frame size");
  }
  const core::Command& c = req.command;
  Check(c.key.size() <= kLimits.max_key_bytes, "key within the limit");
  Check(c.value.size() <= kLimits.max_value_bytes, "value within the limit");
  Check(req.token.size() <= kMaxTokenBytes, "token within the limit");
  if (c.has_ttl) {
    Check(c.ttl_ms == SecondsToMillis(req.ttl_seconds), "ttl conversion");
    Check(c.ttl_ms >= req.ttl_seconds, "ttl conversion never wraps");
  }
}

void FuzzRequests(std::string_view in) {
  size_t pos = 0;
  while (pos < in.size()) {
    const std::string_view rest = in.substr(pos);
    const ParseResult r = Parse(rest, kLimits);
    if (r.status == ParseResult::Status::kFrame) {
      Check(r.consumed > 0 && r.consumed <= rest.size(), "0 < consumed <= size");
      CheckFrame(rest.substr(0, r.consumed), r.request);
      pos += r.consumed;
      continue;
    }
    if (r.status == ParseResult::Status::kNeedMore) {
      Check(r.needed > rest.size(), "need-more asks for more than it has");
      Check(r.needed <= kLargestFrame + 1 + 4 + kMaxTokenBytes, "need-more within the limits");
      return;
    }
    Check(!ParseErrorMessage(r, kLimits).empty(), "errors have a message");
    std::string longer(rest);
    longer.append(64, '\x01');
    const ParseResult again = Parse(longer, kLimits);
    Check(again.status == ParseResult::Status::kError && again.error == r.error,
          "an error stays an error when more bytes arrive");
    return;
  }
}

void FuzzReplies(std::string_view in) {
  size_t pos = 0;
  while (pos < in.size()) {
    const std::string_view rest = in.substr(pos);
    const ReplyParseResult r = ParseReply(rest, kMaxReply);
    if (r.status != ReplyParseResult::Status::kReply) {
      if (r.status == ReplyParseResult::Status::kNeedMore) {
        Check(r.needed > rest.size(), "reply need-more asks for more");
      }
      return;
    }
    Check(r.consumed > 0 && r.consumed <= rest.size(), "reply 0 < consumed <= size");
    Buffer again;
    EncodeReply(r.reply, &again);
    Check(again.view() == rest.substr(0, r.consumed), "a reply re-encodes to the same bytes");
    pos += r.consumed;
  }
}

}  // namespace
}  // namespace crabcache::fastpath

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  crabcache::fastpath::FuzzRequests(in);
  crabcache::fastpath::FuzzReplies(in);
  return 0;
}

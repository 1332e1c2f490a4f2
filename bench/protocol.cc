#include "bench/protocol.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace crabcache::bench {
namespace {

const char* KindName(ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kOk:
      return "OK";
    case ReplyKind::kValue:
      return "a value";
    case ReplyKind::kNull:
      return "not found";
    case ReplyKind::kError:
      return "an error";
    case ReplyKind::kOther:
      return "an unexpected reply";
  }
  return "?";
}

std::string Shorten(std::string_view bytes) {
  constexpr size_t kMax = 48;
  std::string out = absl::CHexEscape(absl::string_view(bytes.data(), std::min(bytes.size(), kMax)));
  if (bytes.size() > kMax) absl::StrAppend(&out, "... (", bytes.size(), " bytes)");
  return out;
}

}  // namespace

Check CheckReply(const KeySpace& keys, Op op, uint64_t key, const Reply& reply) {
  if (reply.kind == ReplyKind::kError) return Check::kServerError;
  if (op == Op::kSet) return reply.kind == ReplyKind::kOk ? Check::kOk : Check::kWrongKind;
  switch (reply.kind) {
    case ReplyKind::kValue:
      return keys.ValueMatches(key, reply.value) ? Check::kHit : Check::kWrongValue;
    case ReplyKind::kNull:
      return Check::kMiss;
    default:
      return Check::kWrongKind;
  }
}

std::string DescribeFailure(const KeySpace& keys, Op op, uint64_t key, const Reply& reply,
                            Check check) {
  const std::string request =
      absl::StrCat(op == Op::kGet ? "GET " : "SET ", "\"", Shorten(keys.Key(key)), "\"");
  switch (check) {
    case Check::kWrongValue:
      return absl::StrCat(request, " answered the wrong value \"", Shorten(reply.value),
                          "\", expected \"", Shorten(keys.Value(key)), "\"");
    case Check::kMiss:
      return absl::StrCat(request, " answered not found, but the key space was prefilled");
    case Check::kServerError:
      return absl::StrCat(request, " answered the error \"", Shorten(reply.value), "\"");
    case Check::kWrongKind:
      return absl::StrCat(request, " answered ", KindName(reply.kind),
                          op == Op::kGet ? ", expected a value" : ", expected OK");
    case Check::kOk:
    case Check::kHit:
      break;
  }
  return absl::StrCat(request, ": no failure");
}

}  // namespace crabcache::bench

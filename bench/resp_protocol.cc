// RESP2, the subset a GET/SET load against redis-server needs:
//   request = "*" argc CRLF 1*( "$" len CRLF bytes CRLF )
//   reply   = "+" line CRLF | "-" line CRLF | ":" integer CRLF
//           | "$" len CRLF bytes CRLF | "$-1" CRLF
// Arrays and RESP3 types never answer GET or SET, so they count as malformed here.
#include <charconv>
#include <cstring>

#include "bench/protocol.h"

namespace crabcache::bench {
namespace {

// The longest header line we wait for before calling the input malformed.
constexpr size_t kMaxLine = 64 * 1024;

void AppendBulk(std::string_view s, fastpath::Buffer* out) {
  char len[24];
  len[0] = '$';
  const auto [end, ec] = std::to_chars(len + 1, len + sizeof(len) - 2, s.size());
  end[0] = '\r';
  end[1] = '\n';
  out->Append(len, static_cast<size_t>(end + 2 - len));
  out->Append(s);
  out->Append("\r\n", 2);
}

class RespProtocol final : public Protocol {
 public:
  std::string_view name() const override { return "resp"; }

  void AppendGet(std::string_view key, fastpath::Buffer* out) const override {
    out->Append(std::string_view("*2\r\n$3\r\nGET\r\n"));
    AppendBulk(key, out);
  }

  void AppendSet(std::string_view key, std::string_view value,
                 fastpath::Buffer* out) const override {
    out->Append(std::string_view("*3\r\n$3\r\nSET\r\n"));
    AppendBulk(key, out);
    AppendBulk(value, out);
  }

  long ParseReply(std::string_view in, Reply* reply) const override {
    if (in.empty()) return 0;
    const size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return in.size() > kMaxLine ? -1 : 0;
    const std::string_view line = in.substr(1, eol - 1);
    const long header = static_cast<long>(eol + 2);
    switch (in[0]) {
      case '+':
        *reply = {line == "OK" ? ReplyKind::kOk : ReplyKind::kOther, line};
        return header;
      case '-':
        *reply = {ReplyKind::kError, line};
        return header;
      case ':':
        *reply = {ReplyKind::kOther, line};
        return header;
      case '$': {
        long len = 0;
        const auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), len);
        if (ec != std::errc() || ptr != line.data() + line.size() || len < -1) return -1;
        if (len == -1) {
          *reply = {ReplyKind::kNull, {}};
          return header;
        }
        const size_t end = static_cast<size_t>(header) + static_cast<size_t>(len);
        if (in.size() < end + 2) return 0;
        if (in[end] != '\r' || in[end + 1] != '\n') return -1;
        *reply = {ReplyKind::kValue, in.substr(static_cast<size_t>(header), len)};
        return static_cast<long>(end + 2);
      }
      default:
        return -1;
    }
  }
};

}  // namespace

std::unique_ptr<Protocol> MakeRespProtocol() { return std::make_unique<RespProtocol>(); }

}  // namespace crabcache::bench

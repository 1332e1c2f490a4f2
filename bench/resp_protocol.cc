// RESP2, the subset a GET/SET load needs:
//   request  = "*" argc CRLF 1*( "$" len CRLF bytes CRLF )
//   reply    = "+" line CRLF | "-" line CRLF | ":" int CRLF | "$" len CRLF bytes CRLF | "$-1" CRLF
#include <charconv>

#include "absl/strings/str_cat.h"
#include "bench/protocol.h"

namespace crabcache::bench {
namespace {

void AppendBulk(std::string_view s, std::string* out) {
  absl::StrAppend(out, "$", s.size(), "\r\n");
  out->append(s);
  out->append("\r\n");
}

class RespProtocol final : public Protocol {
 public:
  std::string_view name() const override { return "resp"; }

  void AppendGet(std::string_view key, std::string* out) const override {
    out->append("*2\r\n$3\r\nGET\r\n");
    AppendBulk(key, out);
  }
  void AppendSet(std::string_view key, std::string_view value, std::string* out) const override {
    out->append("*3\r\n$3\r\nSET\r\n");
    AppendBulk(key, out);
    AppendBulk(value, out);
  }

  long ParseReply(std::string_view in, Reply* reply) const override {
    const size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return in.size() > 64 * 1024 ? -1 : 0;
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
        if (in.size() < static_cast<size_t>(header + len + 2)) return 0;
        if (in.substr(header + len, 2) != "\r\n") return -1;
        *reply = {ReplyKind::kValue, in.substr(header, len)};
        return header + len + 2;
      }
      default:
        return -1;
    }
  }
};

}  // namespace

std::unique_ptr<Protocol> MakeRespProtocol() { return std::make_unique<RespProtocol>(); }

}  // namespace crabcache::bench

#include "server/byte_size.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/string_view.h"

namespace crabcache::server {

std::optional<uint64_t> ParseByteSize(std::string_view text) {
  std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(core::ToAbsl(text)));
  if (!s.empty() && s.back() == 'b') s.pop_back();
  if (!s.empty() && s.back() == 'i') s.pop_back();
  int shift = 0;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      default:
        break;
    }
    if (shift != 0) s.pop_back();
  }
  if (s.empty()) return std::nullopt;
  for (const char ch : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(ch))) return std::nullopt;
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(s, &n)) return std::nullopt;
  if (shift != 0 && n > (std::numeric_limits<uint64_t>::max() >> shift)) return std::nullopt;
  return n << shift;
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr struct {
    int shift;
    const char* suffix;
  } kUnits[] = {{40, "Ti"}, {30, "Gi"}, {20, "Mi"}, {10, "Ki"}};
  for (const auto& unit : kUnits) {
    const uint64_t mask = (uint64_t{1} << unit.shift) - 1;
    if (bytes != 0 && (bytes & mask) == 0) return absl::StrCat(bytes >> unit.shift, unit.suffix);
  }
  return absl::StrCat(bytes);
}

bool AbslParseFlag(absl::string_view text, ByteSize* size, std::string* error) {
  const std::optional<uint64_t> parsed = ParseByteSize(core::ToStd(text));
  if (!parsed.has_value()) {
    *error = "expected a byte count such as 1048576, 64Ki, 512Mi or 2Gi";
    return false;
  }
  size->bytes = *parsed;
  return true;
}

std::string AbslUnparseFlag(ByteSize size) { return FormatByteSize(size.bytes); }

}  // namespace crabcache::server

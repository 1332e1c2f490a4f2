#include "bench/keyspace.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace crabcache::bench {
namespace {

constexpr std::string_view kKeyPrefix = "key:";

// Writes i in decimal into buf (at least 20 bytes); returns the number of digits.
size_t FormatDecimal(uint64_t i, char* buf) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + i % 10);
    i /= 10;
  } while (i != 0);
  for (size_t k = 0; k < n; ++k) buf[k] = tmp[n - 1 - k];
  return n;
}

size_t Digits(uint64_t i) {
  char buf[20];
  return FormatDecimal(i, buf);
}

char FillChar(uint64_t i) { return static_cast<char>('a' + i % 26); }

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

absl::StatusOr<KeySpace> KeySpace::Create(uint64_t keys, size_t key_size, size_t value_size) {
  if (keys < 1) return absl::InvalidArgumentError("the key space needs at least one key");
  if (key_size > kMaxKeySize || value_size > kMaxValueSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("key size must be <= ", kMaxKeySize, " and value size <= ", kMaxValueSize));
  }
  const size_t needed = kKeyPrefix.size() + Digits(keys - 1);
  if (key_size < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("key size ", key_size, " is too small for ", keys, " distinct keys (\"",
                     std::string(kKeyPrefix), "\" plus digits needs ", needed, " bytes)"));
  }
  return KeySpace(keys, key_size, value_size);
}

void KeySpace::WriteKey(uint64_t i, char* out) const {
  std::memcpy(out, kKeyPrefix.data(), kKeyPrefix.size());
  char digits[20];
  const size_t n = FormatDecimal(i, digits);
  const size_t pad = key_size_ - kKeyPrefix.size() - n;
  std::memset(out + kKeyPrefix.size(), '0', pad);
  std::memcpy(out + kKeyPrefix.size() + pad, digits, n);
}

void KeySpace::WriteValue(uint64_t i, char* out) const {
  char head[21];
  size_t n = FormatDecimal(i, head);
  head[n++] = ':';
  const size_t copied = std::min(n, value_size_);
  std::memcpy(out, head, copied);
  std::memset(out + copied, FillChar(i), value_size_ - copied);
}

bool KeySpace::ValueMatches(uint64_t i, std::string_view value) const {
  if (value.size() != value_size_) return false;
  char head[21];
  size_t n = FormatDecimal(i, head);
  head[n++] = ':';
  const size_t compared = std::min(n, value_size_);
  if (std::memcmp(value.data(), head, compared) != 0) return false;
  const char fill = FillChar(i);
  return std::all_of(value.begin() + compared, value.end(), [fill](char c) { return c == fill; });
}

std::string KeySpace::Key(uint64_t i) const {
  std::string key(key_size_, '\0');
  WriteKey(i, key.data());
  return key;
}

std::string KeySpace::Value(uint64_t i) const {
  std::string value(value_size_, '\0');
  WriteValue(i, value.data());
  return value;
}

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) s = SplitMix64(seed);
}

uint64_t Rng::Next() {
  const auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

OpPicker::OpPicker(double get_ratio) {
  constexpr double kScale = 9007199254740992.0;  // 2^53
  const double r = std::clamp(get_ratio, 0.0, 1.0);
  threshold_ = r >= 1.0 ? (uint64_t{1} << 53) : static_cast<uint64_t>(r * kScale);
}

}  // namespace crabcache::bench

#include "fastpath/token_store.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace crabcache::auth {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

absl::Status CheckToken(std::string_view token, size_t line) {
  const std::string where = line == 0 ? "token" : absl::StrCat("line ", line);
  if (token.size() < kMinTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": token shorter than ", kMinTokenBytes,
                                                   " bytes (use a long random token)"));
  }
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": token longer than ", kMaxTokenBytes, " bytes"));
  }
  for (const char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tokens are printable ASCII without spaces (byte 0x",
                       absl::Hex(static_cast<uint8_t>(c), absl::kZeroPad2), ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseTokenFile(std::string_view content) {
  if (content.size() > kMaxTokenFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file larger than ", kMaxTokenFileBytes, " bytes"));
  }
  std::vector<std::string> tokens;
  size_t line = 0;
  while (!content.empty()) {
    ++line;
    const size_t end = content.find('\n');
    const std::string_view raw = content.substr(0, end);
    content.remove_prefix(end == std::string_view::npos ? content.size() : end + 1);
    const std::string_view text = Trim(raw);
    if (text.empty() || text.front() == '#') continue;
    if (absl::Status s = CheckToken(text, line); !s.ok()) return s;
    if (tokens.size() == kMaxTokens) {
      return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxTokens, " tokens"));
    }
    tokens.emplace_back(text);
  }
  if (tokens.empty()) return absl::InvalidArgumentError("no token (only blank lines or comments)");
  return tokens;
}

bool ConstantTimeContains(const std::vector<Digest>& digests, const Digest& probe) {
  uint32_t found = 0;
  for (const Digest& d : digests) {
    uint32_t diff = 0;
    for (size_t i = 0; i < d.size(); ++i) diff |= static_cast<uint32_t>(d[i] ^ probe[i]);
    // Keep the compiler from turning the loop into a compare with an early exit.
    __asm__ volatile("" : "+r"(diff));
    found |= (diff - 1) >> 31;  // 1 exactly when diff == 0 (diff is at most 0xff).
  }
  return found != 0;
}

absl::Status TokenStore::Replace(const std::vector<std::string>& tokens) {
  if (tokens.empty()) return absl::InvalidArgumentError("no token");
  if (tokens.size() > kMaxTokens) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxTokens, " tokens"));
  }
  std::vector<Digest> digests;
  digests.reserve(tokens.size());
  for (const std::string& token : tokens) {
    if (absl::Status s = CheckToken(token, 0); !s.ok()) return s;
    digests.push_back(Sha256(token));
  }
  core::MutexLock lock(&mu_);
  digests_.swap(digests);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return absl::OkStatus();
}

absl::Status TokenStore::LoadFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  std::string content;
  absl::Status status;
  struct stat st;
  char buf[16 << 10];
  if (fstat(fd, &st) != 0) {
    status = absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  } else {
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
        break;
      }
      if (n == 0) break;
      content.append(buf, static_cast<size_t>(n));
      if (content.size() > kMaxTokenFileBytes) {
        status = absl::InvalidArgumentError(
            absl::StrCat(path, ": larger than ", kMaxTokenFileBytes, " bytes"));
        break;
      }
    }
  }
  close(fd);
  explicit_bzero(buf, sizeof(buf));
  if (!status.ok()) return status;
  absl::StatusOr<std::vector<std::string>> tokens = ParseTokenFile(content);
  // The content is secret: scrub our copies (explicit_bzero is never optimised away); the
  // digests are all that is kept.
  explicit_bzero(content.data(), content.size());
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", tokens.status().message()));
  }
  status = Replace(*tokens);
  for (std::string& t : *tokens) explicit_bzero(t.data(), t.size());
  return status;
}

bool TokenStore::Check(std::string_view token, Grant* grant) const {
  const Digest digest = Sha256(token);
  bool ok;
  uint64_t generation;
  {
    core::MutexLock lock(&mu_);
    ok = ConstantTimeContains(digests_, digest);
    generation = generation_.load(std::memory_order_relaxed);
  }
  if (ok && grant != nullptr) {
    grant->digest = digest;
    grant->generation = generation;
  }
  return ok;
}

bool TokenStore::StillValid(Grant* grant) const {
  if (generation_.load(std::memory_order_acquire) == grant->generation) return true;
  core::MutexLock lock(&mu_);
  if (!ConstantTimeContains(digests_, grant->digest)) {
    grant->generation = 0;  // Never a live generation: every later call looks again, and fails.
    return false;
  }
  grant->generation = generation_.load(std::memory_order_relaxed);
  return true;
}

size_t TokenStore::size() const {
  core::MutexLock lock(&mu_);
  return digests_.size();
}

}  // namespace crabcache::auth

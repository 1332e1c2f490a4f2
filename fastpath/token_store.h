// The authentication tokens both front ends check: loaded from --auth_token_file, reloaded on
// SIGHUP and when the file changes, compared in constant time.
//
// Lives in fastpath/ (as its own library, crabcache_auth, with no socket or gRPC code) because
// fastpath/ is the one folder of ours built in every configuration, TSan included; service/
// links it too.
//
// Token file format: one token per line; leading and trailing whitespace is ignored; blank lines
// and lines whose first non-blank character is '#' are ignored. A token is kMinTokenBytes to
// kMaxTokenBytes printable ASCII characters other than space (0x21-0x7e: what a gRPC
// `authorization` header can carry). Several tokens may be listed (rotation: add the new one,
// move clients, remove the old one). At most kMaxTokens tokens, kMaxTokenFileBytes bytes.
#ifndef CRABCACHE_FASTPATH_TOKEN_STORE_H_
#define CRABCACHE_FASTPATH_TOKEN_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"
#include "fastpath/sha256.h"

namespace crabcache::auth {

inline constexpr size_t kMinTokenBytes = 16;
inline constexpr size_t kMaxTokenBytes = 4096;
inline constexpr size_t kMaxTokens = 64;
inline constexpr size_t kMaxTokenFileBytes = 1 << 20;

// The tokens of a token file (see the file comment), or kInvalidArgument naming the first bad
// line. A file with no token at all is an error too: auth cannot be on with nobody let in.
absl::StatusOr<std::vector<std::string>> ParseTokenFile(std::string_view content);

// What a successful Check hands the caller: which token (as its digest) was accepted and in which
// generation of the store, so that StillValid can tell cheaply whether a reload revoked it.
struct Grant {
  Digest digest{};
  uint64_t generation = 0;
};

// The configured tokens, as SHA-256 digests.
//
// Check hashes the presented token (time depends only on its own length, which the presenter
// knows) and compares the digest with every configured digest without early exit, so the time
// does not depend on which token matched, on how many bytes of any token were right, or on the
// configured tokens' lengths; only the number of configured tokens shows.
//
// Thread-safety: every method may be called from any thread. Replace/LoadFile swap the whole set
// at once; a Check sees the old set or the new one, never a mix. StillValid costs one atomic load
// while no reload has happened.
class TokenStore {
 public:
  TokenStore() = default;
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // Replaces the tokens. kInvalidArgument for an empty list or a bad token (see ParseTokenFile),
  // in which case the old tokens stay.
  absl::Status Replace(const std::vector<std::string>& tokens);
  // Reads and parses `path` and replaces the tokens; on any error (unreadable, not a regular
  // file, too large, bad content, no token) the old tokens stay and the error says why.
  absl::Status LoadFile(const std::string& path);

  // True if `token` is one of the configured tokens; then `grant` (if not null) records it.
  bool Check(std::string_view token, Grant* grant = nullptr) const;
  // True if the token recorded in `grant` is still configured (refreshes grant->generation).
  bool StillValid(Grant* grant) const;

  size_t size() const;
  // Bumped by every successful Replace/LoadFile.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable core::Mutex mu_;
  std::vector<Digest> digests_ ABSL_GUARDED_BY(mu_);
  // Written under mu_ (after digests_), read without it by StillValid's fast path.
  std::atomic<uint64_t> generation_{0};
};

// True if `probe` equals one of `digests`; the time depends only on digests.size().
bool ConstantTimeContains(const std::vector<Digest>& digests, const Digest& probe);

}  // namespace crabcache::auth

#endif  // CRABCACHE_FASTPATH_TOKEN_STORE_H_

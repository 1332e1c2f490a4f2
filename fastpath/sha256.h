// SHA-256 (FIPS 180-4), self-contained, for the auth token store: tokens are compared as digests
// so that the comparison takes the same time whatever the tokens' lengths and contents.
//
// Why not OpenSSL: the fast path (and its TSan build) links core only, and one hash of short
// inputs does not justify a new dependency. Checked against the FIPS 180-2 test vectors.
// Thread-safe (pure functions).
#ifndef CRABCACHE_FASTPATH_SHA256_H_
#define CRABCACHE_FASTPATH_SHA256_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace crabcache::auth {

using Digest = std::array<uint8_t, 32>;

// The SHA-256 digest of `data`.
Digest Sha256(std::string_view data);

// Lower-case hex (64 characters). For tests.
std::string ToHex(const Digest& digest);

}  // namespace crabcache::auth

#endif  // CRABCACHE_FASTPATH_SHA256_H_

// gRPC authentication: the check every crabcache.v1.Cache RPC runs before anything else.
//
// A call carries `authorization: Bearer <token>` metadata (the scheme name is case-insensitive,
// RFC 6750). Exactly one such header is accepted; the token is compared by auth::TokenStore in
// constant time. grpc.health.v1 and server reflection are separate services and never call this:
// probes need no token, and reflection describes only the public proto.
#ifndef CRABCACHE_SERVICE_AUTH_H_
#define CRABCACHE_SERVICE_AUTH_H_

#include <grpcpp/support/status.h>
#include <grpcpp/support/string_ref.h>

#include <map>

#include "fastpath/token_store.h"

namespace crabcache::service {

// Why a call was refused; the names are the `reason` label of crabcache_auth_failures_total.
enum class AuthResult : uint8_t {
  kOk = 0,
  kMissing = 1,      // No authorization metadata.
  kInvalid = 2,      // Malformed header, not a Bearer token, several headers, or an unknown token.
  kRevoked = 3,      // A stream's token was removed by a reload (checked before each batch).
  kRateLimited = 4,  // Refused unchecked: too many invalid tokens from the address (AuthLimiter).
};
inline constexpr size_t kNumAuthResults = 5;
// "ok", "missing", "invalid", "revoked", "rate_limited".
std::string_view AuthResultName(AuthResult result);

using ClientMetadata = std::multimap<grpc::string_ref, grpc::string_ref>;

// Checks a call's metadata against `tokens`. OK (and `grant` filled) or UNAUTHENTICATED with a
// message that says what the client should send, never what the configured tokens are.
// Thread-safe (TokenStore is).
grpc::Status CheckAuthorization(const ClientMetadata& metadata, const auth::TokenStore& tokens,
                                auth::Grant* grant, AuthResult* result);

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_AUTH_H_

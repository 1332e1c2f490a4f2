#include "service/auth.h"

#include <string_view>

namespace crabcache::service {
namespace {

bool StartsWithBearer(std::string_view v) {
  constexpr std::string_view kBearer = "bearer";
  if (v.size() <= kBearer.size() || v[kBearer.size()] != ' ') return false;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    const char c = v[i] >= 'A' && v[i] <= 'Z' ? static_cast<char>(v[i] - 'A' + 'a') : v[i];
    if (c != kBearer[i]) return false;
  }
  return true;
}

grpc::Status Refuse(AuthResult why, AuthResult* result, const char* message) {
  *result = why;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, message);
}

}  // namespace

std::string_view AuthResultName(AuthResult result) {
  switch (result) {
    case AuthResult::kOk:
      return "ok";
    case AuthResult::kMissing:
      return "missing";
    case AuthResult::kInvalid:
      return "invalid";
    case AuthResult::kRevoked:
      return "revoked";
    case AuthResult::kRateLimited:
      return "rate_limited";
  }
  return "unknown";
}

grpc::Status CheckAuthorization(const ClientMetadata& metadata, const auth::TokenStore& tokens,
                                auth::Grant* grant, AuthResult* result) {
  const auto [begin, end] = metadata.equal_range("authorization");
  if (begin == end) {
    return Refuse(AuthResult::kMissing, result,
                  "this server requires `authorization: Bearer <token>` metadata");
  }
  if (std::next(begin) != end) {
    return Refuse(AuthResult::kInvalid, result, "more than one authorization header");
  }
  std::string_view value(begin->second.data(), begin->second.size());
  if (!StartsWithBearer(value)) {
    return Refuse(AuthResult::kInvalid, result,
                  "the authorization header must be `Bearer <token>`");
  }
  value.remove_prefix(7);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (!tokens.Check(value, grant)) return Refuse(AuthResult::kInvalid, result, "invalid token");
  *result = AuthResult::kOk;
  return grpc::Status::OK;
}

}  // namespace crabcache::service

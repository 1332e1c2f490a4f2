// gRPC authentication in process: a GrpcFrontend with a token store over a real store, through
// real channels, so the ASan build runs it too. The real binary is covered by
// auth_crabcached_test.py.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/clock.h"
#include "core/executor.h"
#include "core/store.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "fastpath/token_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/auth.h"
#include "service/auth_limiter.h"
#include "service/grpc_server.h"

namespace crabcache::service {
namespace {

using crabcache::v1::BatchRequest;
using crabcache::v1::BatchResponse;
using crabcache::v1::Cache;

constexpr char kToken[] = "grpc-test-token-0123456789";

// CheckAuthorization on its own: what counts as a bearer token.
TEST(CheckAuthorizationTest, HeaderForms) {
  auth::TokenStore tokens;
  ASSERT_TRUE(tokens.Replace({kToken}).ok());
  struct Case {
    std::multimap<std::string, std::string> headers;
    AuthResult want;
  };
  const std::string bearer = absl::StrCat("Bearer ", kToken);
  const Case cases[] = {
      {{}, AuthResult::kMissing},
      {{{"x-other", bearer}}, AuthResult::kMissing},
      {{{"authorization", bearer}}, AuthResult::kOk},
      {{{"authorization", absl::StrCat("bEaReR ", kToken)}}, AuthResult::kOk},
      {{{"authorization", absl::StrCat("Bearer   ", kToken)}}, AuthResult::kOk},
      {{{"authorization", kToken}}, AuthResult::kInvalid},
      {{{"authorization", absl::StrCat("Basic ", kToken)}}, AuthResult::kInvalid},
      {{{"authorization", absl::StrCat("Bearer", kToken)}}, AuthResult::kInvalid},
      {{{"authorization", "Bearer "}}, AuthResult::kInvalid},
      {{{"authorization", absl::StrCat(bearer, "x")}}, AuthResult::kInvalid},
      {{{"authorization", bearer}, {"authorization", bearer}}, AuthResult::kInvalid},
  };
  for (const Case& c : cases) {
    ClientMetadata metadata;
    for (const auto& [k, v] : c.headers) metadata.emplace(grpc::string_ref(k), grpc::string_ref(v));
    AuthResult got = AuthResult::kOk;
    auth::Grant grant;
    const grpc::Status s = CheckAuthorization(metadata, tokens, &grant, &got);
    EXPECT_EQ(got, c.want) << (c.headers.empty() ? "" : c.headers.begin()->second);
    EXPECT_EQ(s.ok(), c.want == AuthResult::kOk);
    if (!s.ok()) {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
      EXPECT_EQ(s.error_message().find(kToken), std::string::npos) << "never echo a token";
    }
  }
}

class GrpcAuthTest : public ::testing::Test {
 protected:
  GrpcAuthTest() : store_(core::StoreOptions{.num_shards = 4}), executor_(&store_, nullptr) {
    EXPECT_TRUE(tokens_.Replace({kToken, "second-token-0123456789"}).ok());
    auto frontend =
        GrpcFrontend::Start({.address = "127.0.0.1", .port = 0, .tokens = &tokens_}, &executor_);
    EXPECT_TRUE(frontend.ok()) << frontend.status();
    frontend_ = *std::move(frontend);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", frontend_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = Cache::NewStub(channel_);
  }

  static void Authorize(grpc::ClientContext* ctx, const std::string& token = kToken) {
    ctx->AddMetadata("authorization", "Bearer " + token);
  }

  core::Store store_;
  core::Executor executor_;
  auth::TokenStore tokens_;
  std::unique_ptr<GrpcFrontend> frontend_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Cache::Stub> stub_;
};

// Every method of the service descriptor refuses a call without a token: an RPC added later
// without the check fails here.
TEST_F(GrpcAuthTest, AuthGuardsEveryCacheMethod) {
  const google::protobuf::ServiceDescriptor* service =
      crabcache::v1::Command::descriptor()->file()->FindServiceByName("Cache");
  ASSERT_NE(service, nullptr);
  ASSERT_GE(service->method_count(), 5);
  grpc::GenericStub generic(channel_);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string path =
        absl::StrCat("/", service->full_name(), "/", service->method(i)->name());
    for (const bool with_token : {false, true}) {
      grpc::ClientContext ctx;
      if (with_token) Authorize(&ctx);
      grpc::Slice empty("");
      grpc::ByteBuffer request(&empty, 1), response;  // An empty message.
      grpc::Status status;
      absl::Notification done;
      generic.UnaryCall(&ctx, path, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
        status = std::move(s);
        done.Notify();
      });
      done.WaitForNotification();
      if (with_token) {
        EXPECT_TRUE(status.ok()) << path << ": " << status.error_message();
      } else {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << path;
      }
    }
  }
  EXPECT_EQ(frontend_->service().auth_failures(AuthResult::kMissing),
            static_cast<uint64_t>(service->method_count()));
}

TEST_F(GrpcAuthTest, TokenLetsCommandsRunAndWrongTokenIsCounted) {
  {
    grpc::ClientContext ctx;
    Authorize(&ctx);
    crabcache::v1::SetRequest set;
    set.set_key("k");
    set.set_value("v");
    crabcache::v1::SetResponse out;
    ASSERT_TRUE(stub_->Set(&ctx, set, &out).ok());
  }
  {
    grpc::ClientContext ctx;
    Authorize(&ctx, "wrong-token-0123456789");
    crabcache::v1::GetRequest get;
    get.set_key("k");
    crabcache::v1::GetResponse out;
    EXPECT_EQ(stub_->Get(&ctx, get, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_TRUE(out.value().empty());
  }
  EXPECT_EQ(frontend_->service().auth_failures(AuthResult::kInvalid), 1u);
}

TEST_F(GrpcAuthTest, RemovedTokenEndsItsStreamAtTheNextBatch) {
  grpc::ClientContext ctx;
  Authorize(&ctx, "second-token-0123456789");
  auto stream = stub_->BatchExecute(&ctx);
  BatchRequest request;
  request.set_id(1);
  request.add_commands()->mutable_ping();
  BatchResponse response;
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.id(), 1u);

  ASSERT_TRUE(tokens_.Replace({kToken}).ok());
  request.set_id(2);
  (void)stream->Write(request);
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("revoked"));
  EXPECT_EQ(frontend_->service().auth_failures(AuthResult::kRevoked), 1u);
}

TEST_F(GrpcAuthTest, HealthNeedsNoToken) {
  grpc::GenericStub generic(channel_);
  grpc::ClientContext ctx;
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::Status status;
  absl::Notification done;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// AuthLimiter on its own, on a fake clock.
AuthLimitOptions LimitOptions(const core::Clock* clock, int max_failures = 3,
                              size_t max_addresses = 4096) {
  return {.max_failures = max_failures,
          .window_ms = 60'000,
          .max_addresses = max_addresses,
          .clock = clock};
}

TEST(AuthLimiterTest, BlocksAfterMaxFailuresForAWindowFromTheLast) {
  core::FakeClock clock;
  AuthLimiter limiter(LimitOptions(&clock));
  EXPECT_FALSE(limiter.MayBlock());
  limiter.RecordFailure("10.0.0.1");
  clock.Advance(10'000);
  limiter.RecordFailure("10.0.0.1");
  EXPECT_FALSE(limiter.Blocked("10.0.0.1"));
  EXPECT_TRUE(limiter.MayBlock());
  clock.Advance(10'000);
  limiter.RecordFailure("10.0.0.1");  // The third within a minute: blocked until +60 s.
  EXPECT_TRUE(limiter.Blocked("10.0.0.1"));
  EXPECT_FALSE(limiter.Blocked("10.0.0.2")) << "other addresses are not affected";
  clock.Advance(59'999);
  EXPECT_TRUE(limiter.Blocked("10.0.0.1")) << "refused attempts do not end the block early";
  clock.Advance(1);
  EXPECT_FALSE(limiter.Blocked("10.0.0.1"));
  // The window has passed: the next failure counts from one again.
  limiter.RecordFailure("10.0.0.1");
  EXPECT_FALSE(limiter.Blocked("10.0.0.1"));
  // A quiet window later the address is forgotten and the check takes no lock again.
  clock.Advance(60'000);
  EXPECT_FALSE(limiter.Blocked("10.0.0.1"));
  EXPECT_EQ(limiter.tracked(), 0u);
  EXPECT_FALSE(limiter.MayBlock());
}

TEST(AuthLimiterTest, FailuresSpreadOverMoreThanAWindowDoNotBlock) {
  core::FakeClock clock;
  AuthLimiter limiter(LimitOptions(&clock));
  for (int i = 0; i < 10; ++i) {
    limiter.RecordFailure("10.0.0.1");
    EXPECT_FALSE(limiter.Blocked("10.0.0.1")) << i;
    clock.Advance(i % 2 == 0 ? 1'000 : 59'500);  // Two per window at most.
  }
}

TEST(AuthLimiterTest, TheTableIsBounded) {
  core::FakeClock clock;
  AuthLimiter limiter(LimitOptions(&clock, /*max_failures=*/2, /*max_addresses=*/100));
  limiter.RecordFailure("victim");
  limiter.RecordFailure("victim");
  ASSERT_TRUE(limiter.Blocked("victim"));
  for (int i = 0; i < 1000; ++i) {
    limiter.RecordFailure(absl::StrCat("10.1.", i / 256, ".", i % 256));
    ASSERT_LE(limiter.tracked(), 100u);
  }
  // The least recently failing address was forgotten to make room (its count starts again).
  EXPECT_FALSE(limiter.Blocked("victim"));
  EXPECT_EQ(limiter.tracked(), 100u);
}

TEST(AuthLimiterTest, ZeroTurnsItOff) {
  core::FakeClock clock;
  AuthLimiter limiter(LimitOptions(&clock, /*max_failures=*/0));
  for (int i = 0; i < 100; ++i) limiter.RecordFailure("10.0.0.1");
  EXPECT_FALSE(limiter.Blocked("10.0.0.1"));
  EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(AuthLimiterTest, PeerAddress) {
  EXPECT_EQ(AuthLimiter::PeerAddress("ipv4:127.0.0.1:54321"), "127.0.0.1");
  EXPECT_EQ(AuthLimiter::PeerAddress("ipv6:[::1]:54321"), "::1");
  EXPECT_EQ(AuthLimiter::PeerAddress("ipv6:[2001:db8::7]:1"), "2001:db8::7");
  EXPECT_EQ(AuthLimiter::PeerAddress("ipv6:[::ffff:10.0.0.7]:443"), "10.0.0.7");
  EXPECT_EQ(AuthLimiter::PeerAddress("unix:/tmp/socket"), "unix:/tmp/socket");
}

// The limit through real calls: after three invalid tokens from 127.0.0.1 even the valid token
// is refused with RESOURCE_EXHAUSTED (and counted), until the fake clock passes the window.
TEST(GrpcAuthLimitTest, InvalidTokensBlockTheAddressUntilTheWindowPasses) {
  core::Store store(core::StoreOptions{.num_shards = 4});
  core::Executor executor(&store, nullptr);
  auth::TokenStore tokens;
  ASSERT_TRUE(tokens.Replace({kToken}).ok());
  core::FakeClock clock;
  auto frontend = GrpcFrontend::Start(
      {.address = "127.0.0.1", .port = 0, .auth_limit = LimitOptions(&clock), .tokens = &tokens},
      &executor);
  ASSERT_TRUE(frontend.ok()) << frontend.status();
  auto stub = Cache::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*frontend)->port()),
                                                 grpc::InsecureChannelCredentials()));
  auto ping = [&](const std::string& token) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    crabcache::v1::PingResponse out;
    return stub->Ping(&ctx, {}, &out);
  };
  EXPECT_TRUE(ping(kToken).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ping("wrong-token-0123456789").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  const grpc::Status refused = ping(kToken);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("too many invalid tokens"));
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    auto stream = stub->BatchExecute(&ctx);
    BatchResponse response;
    EXPECT_FALSE(stream->Read(&response));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  const CacheService& service = (*frontend)->service();
  EXPECT_EQ(service.auth_failures(AuthResult::kInvalid), 3u);
  EXPECT_EQ(service.auth_failures(AuthResult::kRateLimited), 2u);
  clock.Advance(60'000);
  EXPECT_TRUE(ping(kToken).ok());
  EXPECT_EQ(service.auth_failures(AuthResult::kRateLimited), 2u);
}

}  // namespace
}  // namespace crabcache::service

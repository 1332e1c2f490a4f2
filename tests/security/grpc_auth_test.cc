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
#include "core/executor.h"
#include "core/store.h"
#include "crabcache/v1/cache.grpc.pb.h"
#include "fastpath/token_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/auth.h"
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

}  // namespace
}  // namespace crabcache::service

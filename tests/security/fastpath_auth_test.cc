// Fast path authentication in process: a real Store + Executor + fastpath::Server with a token
// store, driven through real sockets, on both I/O engines. Runs in the gcc, ASan and TSan builds.
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/executor.h"
#include "core/store.h"
#include "fastpath/client.h"
#include "fastpath/server.h"
#include "fastpath/token_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fastpath/scenarios.h"

namespace crabcache::fastpath {
namespace {

using testing::ConnectTo;
using ::testing::HasSubstr;

constexpr char kAlpha[] = "alpha-token-0123456789";
constexpr char kBeta[] = "beta-token-0123456789";

bool WaitFor(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return done();
}

// Every test runs on both I/O engines (the auth rules live in the shared connection logic, the
// engines only move bytes; this checks they do not change what a client sees).
class FastPathAuthTest : public ::testing::TestWithParam<IoEngine> {
 protected:
  FastPathAuthTest()
      : store_(core::StoreOptions{.num_shards = 4, .clock = &clock_}), executor_(&store_, nullptr) {
    EXPECT_TRUE(tokens_.Replace({kAlpha, kBeta}).ok());
  }

  void SetUp() override {
    if (const std::string why = testing::EngineUnavailable(GetParam()); !why.empty()) {
      GTEST_SKIP() << why;
    }
  }

  void StartServer(bool auth = true, absl::Duration idle_timeout = absl::Seconds(60)) {
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start({.address = "127.0.0.1",
                       .port = 0,
                       .threads = 2,
                       .idle_timeout = idle_timeout,
                       .tokens = auth ? &tokens_ : nullptr,
                       .clock = &clock_,
                       .io_engine = GetParam()},
                      &executor_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_EQ(server_->io_engine(), GetParam());
  }

  std::unique_ptr<Client> Authed(const char* token = kAlpha) {
    std::unique_ptr<Client> c = ConnectTo(server_->port());
    if (c == nullptr) return nullptr;
    absl::Status s = c->Auth(token);
    EXPECT_TRUE(s.ok()) << s;
    return s.ok() ? std::move(c) : nullptr;
  }

  uint64_t Failures(AuthFailure reason) const {
    return server_->Stats().auth_failures[static_cast<size_t>(reason)];
  }

  static void ExpectError(Client* c, const std::string& text) {
    absl::StatusOr<OwnedReply> r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->type, ReplyType::kError);
    EXPECT_THAT(r->bytes, HasSubstr(text));
  }

  core::FakeClock clock_;
  core::Store store_;
  core::Executor executor_;
  auth::TokenStore tokens_;
  std::unique_ptr<Server> server_;
};

INSTANTIATE_TEST_SUITE_P(Engines, FastPathAuthTest, ::testing::ValuesIn(testing::kEngines),
                         testing::EngineTestName);

TEST_P(FastPathAuthTest, AuthThenCommandsInOnePipeline) {
  StartServer();
  std::unique_ptr<Client> c = ConnectTo(server_->port());
  ASSERT_NE(c, nullptr);
  c->QueueAuth(kBeta);
  c->QueuePut("k", "v");
  c->QueueGet("k");
  ASSERT_TRUE(c->Flush().ok());
  for (ReplyType want : {ReplyType::kOk, ReplyType::kOk, ReplyType::kValue}) {
    absl::StatusOr<OwnedReply> r = c->ReadReply();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->type, want);
  }
  EXPECT_EQ(Failures(AuthFailure::kInvalid) + Failures(AuthFailure::kMissing), 0u);
}

TEST_P(FastPathAuthTest, CommandBeforeAuthGetsErrorAndClose) {
  StartServer();
  std::unique_ptr<Client> c = ConnectTo(server_->port());
  ASSERT_NE(c, nullptr);
  c->QueuePing();
  c->QueueAuth(kAlpha);  // Too late: never read.
  ASSERT_TRUE(c->Flush().ok());
  ExpectError(c.get(), "UNAUTHENTICATED: this server requires AUTH");
  EXPECT_TRUE(c->WaitForClose().ok());
  EXPECT_EQ(Failures(AuthFailure::kMissing), 1u);
}

// The refusal comes from the first byte: a stranger announcing a 1 MiB value is answered and
// closed before the server buffers any of it.
TEST_P(FastPathAuthTest, RefusedFromTheFirstByteWithoutBuffering) {
  StartServer();
  std::unique_ptr<Client> c = ConnectTo(server_->port());
  ASSERT_NE(c, nullptr);
  c->QueueRaw(std::string("\x02", 1) + testing::U32(3) + "key" + testing::U32(1 << 20));
  ASSERT_TRUE(c->Flush().ok());
  ExpectError(c.get(), "UNAUTHENTICATED");
  EXPECT_TRUE(c->WaitForClose().ok());
}

TEST_P(FastPathAuthTest, WrongTokenThenRightToken) {
  StartServer();
  std::unique_ptr<Client> c = ConnectTo(server_->port());
  ASSERT_NE(c, nullptr);
  absl::Status wrong = c->Auth("alpha-token-012345678X");
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated) << wrong;
  EXPECT_THAT(wrong.message(), HasSubstr("invalid token"));
  EXPECT_TRUE(c->Auth(kAlpha).ok());
  EXPECT_TRUE(c->Put("after", "auth").ok());
  EXPECT_EQ(Failures(AuthFailure::kInvalid), 1u);
}

TEST_P(FastPathAuthTest, ThirdFailureClosesAndLaterFramesNeverRun) {
  StartServer();
  std::unique_ptr<Client> c = ConnectTo(server_->port());
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 3; ++i) c->QueueAuth("not-a-configured-token-" + std::to_string(i));
  c->QueueAuth(kAlpha);
  c->QueuePut("smuggled", "x");
  ASSERT_TRUE(c->Flush().ok());
  ExpectError(c.get(), "UNAUTHENTICATED: invalid token");
  ExpectError(c.get(), "UNAUTHENTICATED: invalid token");
  ExpectError(c.get(), "too many failed attempts");
  EXPECT_TRUE(c->WaitForClose().ok());
  EXPECT_EQ(Failures(AuthFailure::kInvalid), 3u);
  std::unique_ptr<Client> good = Authed();
  ASSERT_NE(good, nullptr);
  absl::StatusOr<std::optional<std::string>> v = good->Get("smuggled");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
}

TEST_P(FastPathAuthTest, OversizedTokenIsMalformed) {
  StartServer();
  std::unique_ptr<Client> c = ConnectTo(server_->port());
  ASSERT_NE(c, nullptr);
  c->QueueRaw(std::string("\x07", 1) + testing::U32(kMaxTokenBytes + 1));
  ASSERT_TRUE(c->Flush().ok());
  ExpectError(c.get(), "token");
  EXPECT_TRUE(c->WaitForClose().ok());
  // The longest valid token passes.
  const std::string longest(auth::kMaxTokenBytes, 't');
  ASSERT_TRUE(tokens_.Replace({kAlpha, longest}).ok());
  EXPECT_NE(Authed(longest.c_str()), nullptr);
}

TEST_P(FastPathAuthTest, RemovedTokenRevokesOpenConnections) {
  StartServer();
  std::unique_ptr<Client> alpha = Authed(kAlpha);
  std::unique_ptr<Client> beta = Authed(kBeta);
  ASSERT_NE(alpha, nullptr);
  ASSERT_NE(beta, nullptr);
  ASSERT_TRUE(tokens_.Replace({kAlpha}).ok());
  EXPECT_TRUE(alpha->Ping().ok());
  beta->QueuePing();
  ASSERT_TRUE(beta->Flush().ok());
  ExpectError(beta.get(), "revoked");
  EXPECT_TRUE(beta->WaitForClose().ok());
  EXPECT_EQ(Failures(AuthFailure::kRevoked), 1u);
  std::unique_ptr<Client> again = ConnectTo(server_->port());
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->Auth(kBeta).code(), absl::StatusCode::kUnauthenticated);
}

TEST_P(FastPathAuthTest, UnauthenticatedConnectionsTimeOut) {
  StartServer(/*auth=*/true, absl::Seconds(2));
  std::unique_ptr<Client> stranger = ConnectTo(server_->port());
  std::unique_ptr<Client> member = Authed();
  ASSERT_NE(stranger, nullptr);
  ASSERT_NE(member, nullptr);
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().connections_open == 2; }));
  // Keep time moving until the sweep closes the stranger (its accept time is stamped by the loop).
  EXPECT_TRUE(WaitFor([&] {
    clock_.Advance(200);
    return Failures(AuthFailure::kTimeout) == 1;
  }));
  EXPECT_TRUE(stranger->WaitForClose().ok());
  EXPECT_TRUE(member->Ping().ok());  // Authenticated and idle: never timed out.
}

TEST_P(FastPathAuthTest, AuthWhileDisabledKeepsTheConnection) {
  StartServer(/*auth=*/false);
  std::unique_ptr<Client> c = ConnectTo(server_->port());
  ASSERT_NE(c, nullptr);
  absl::Status s = c->Auth(kAlpha);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_TRUE(c->Ping().ok());
  EXPECT_EQ(Failures(AuthFailure::kInvalid), 0u);
}

TEST_P(FastPathAuthTest, RejectsBadFailureLimit) {
  EXPECT_FALSE(
      Server::Start(
          {.address = "127.0.0.1", .port = 0, .max_auth_failures = 0, .io_engine = GetParam()},
          &executor_)
          .ok());
}

}  // namespace
}  // namespace crabcache::fastpath

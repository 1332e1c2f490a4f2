// The fast path scenarios against the real crabcached binary, plus crabcache-cli and SIGTERM.
// CMake passes the binaries in $CRABCACHED and $CRABCACHE_CLI.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fastpath/scenarios.h"
#include "tests/fastpath/seccomp.h"
#include "tests/testlib/metrics_scrape.h"

namespace crabcache::fastpath {
namespace {

using testing::ConnectTo;
using ::testing::HasSubstr;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// The number after `"key":` in a flat JSON object, or -1.
int JsonInt(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return -1;
  return std::atoi(json.c_str() + at + needle.size());
}

// One crabcached process on free ports.
class Crabcached {
 public:
  // deny_io_uring: run it under a seccomp filter that fails the io_uring syscalls with EPERM, as
  // Docker's default profile does.
  explicit Crabcached(std::vector<std::string> extra_flags = {}, bool deny_io_uring = false) {
    char dir_template[] = "/tmp/crabcached_test.XXXXXX";
    dir_ = mkdtemp(dir_template);
    const std::string ready = dir_ + "/ready.json";
    log_ = dir_ + "/crabcached.log";
    std::vector<std::string> args = {
        Env("CRABCACHED"),    "--address=127.0.0.1",           "--port=0",
        "--grpc_port=0",      "--metrics_address=127.0.0.1:0", "--threads=2",
        "--max_memory=256Mi", "--ready_file=" + ready};
    for (std::string& f : extra_flags) args.push_back(std::move(f));
    if (args[0].empty()) {  // Run outside ctest without CRABCACHED=path/to/crabcached.
      early_exit_ = 127;
      return;
    }
    pid_ = fork();
    if (pid_ < 0) {
      pid_ = -1;
      early_exit_ = 127;
      return;
    }
    if (pid_ == 0) {
      std::freopen(log_.c_str(), "w", stderr);
      if (deny_io_uring && !testing::DenyIoUring(EPERM)) _exit(126);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      std::ifstream in(ready);
      std::stringstream json;
      json << in.rdbuf();
      if (int port = JsonInt(json.str(), "fastpath_port"); port > 0) {
        port_ = port;
        metrics_port_ = JsonInt(json.str(), "metrics_port");
        break;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        early_exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
  }

  ~Crabcached() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // SIGTERM, then the exit status (or -1 if it did not exit within 30 s).
  int Terminate() {
    // Never kill(-1 or 0, ...): that signals every process we may signal (as root, the machine).
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return -1;
  }

  double Metric(const std::string& series) const {
    return crabcache::testing::ScrapeSample(metrics_port_, series);
  }
  int port() const { return port_; }
  // The exit status if it exited before it was ready, else -1.
  int early_exit() const { return early_exit_; }
  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string dir_, log_;
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  int early_exit_ = -1;
};

std::string EngineFlag(IoEngine engine) {
  return "--io_engine=" + std::string(IoEngineName(engine));
}

// One crabcached per I/O engine, started by the engine's first test and shared by the suite.
class CrabcachedTest : public ::testing::TestWithParam<IoEngine> {
 protected:
  static void TearDownTestSuite() {
    for (Crabcached*& server : servers_) {
      if (server == nullptr) continue;
      EXPECT_EQ(server->Terminate(), 0) << server->Log();
      delete server;
      server = nullptr;
    }
  }
  void SetUp() override {
    if (const std::string why = testing::EngineUnavailable(GetParam()); !why.empty()) {
      GTEST_SKIP() << why;
    }
    Crabcached*& server = servers_[static_cast<size_t>(GetParam())];
    if (server == nullptr) server = new Crabcached({EngineFlag(GetParam())});
    server_ = server;
    ASSERT_GT(server_->port(), 0) << server_->Log();
    ASSERT_THAT(server_->Log(), HasSubstr("io_engine=" + std::string(IoEngineName(GetParam()))));
  }

  static int port() { return server_->port(); }
  static Crabcached* server_;                  // This test's engine's.
  static std::array<Crabcached*, 3> servers_;  // By IoEngine.
};
Crabcached* CrabcachedTest::server_ = nullptr;
std::array<Crabcached*, 3> CrabcachedTest::servers_{};

INSTANTIATE_TEST_SUITE_P(Engines, CrabcachedTest, ::testing::ValuesIn(testing::kEngines),
                         testing::EngineTestName);

constexpr char kBytesIn[] = "crabcache_received_bytes_total{frontend=\"fastpath\"}";

TEST_P(CrabcachedTest, FourPingsInOneWrite) { testing::FourPingsInOneWrite(port()); }

TEST_P(CrabcachedTest, TenThousandPipelinedMixedCommands) {
  testing::TenThousandPipelinedMixedCommands(port());
}

TEST_P(CrabcachedTest, EveryFrameOneByteAtATime) {
  const double base = server_->Metric(kBytesIn);
  ASSERT_GE(base, 0);
  testing::EveryFrameOneByteAtATime(port(), [base](uint64_t sent) {
    // The server's byte counter is the synchronisation: each byte is its own read.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (server_->Metric(kBytesIn) < base + static_cast<double>(sent)) {
      ASSERT_LT(absl::Now(), deadline);
      absl::SleepFor(absl::Microseconds(200));
    }
  });
}

TEST_P(CrabcachedTest, DelExpireTtlSemantics) {
  testing::DelExpireTtlSemantics(port());
  testing::ZeroTtlExpiresAtOnce(port());
}

TEST_P(CrabcachedTest, OneMiBValues) { testing::OneMiBValues(port()); }

TEST_P(CrabcachedTest, HundredPipelinedGetsOfOneMiBValuesWithTheDefaultLimits) {
  const std::string slow = "crabcache_slow_consumer_disconnects_total{frontend=\"fastpath\"}";
  const double before = server_->Metric(slow);
  ASSERT_GE(before, 0);
  testing::HundredPipelinedGetsOfOneMiBValues(port());
  EXPECT_EQ(server_->Metric(slow), before);
}

TEST_P(CrabcachedTest, KeysWithNulBytes) { testing::KeysWithNulBytes(port()); }

TEST_P(CrabcachedTest, MalformedFramesCloseOnlyThatConnection) {
  testing::MalformedFramesCloseOnlyThatConnection(port(), 64 << 10, 1 << 20);
  EXPECT_GE(server_->Metric(
                "crabcache_protocol_errors_total{frontend=\"fastpath\",reason=\"unknown_opcode\"}"),
            2);
}

TEST_P(CrabcachedTest, ConcurrentClientsAgainstModel) {
  testing::ConcurrentClientsAgainstModel(port(), 32, 2000);
}

// Runs crabcache-cli; returns its exit status and stdout.
std::pair<int, std::string> Cli(int port, const std::vector<std::string>& args) {
  std::string cmd = Env("CRABCACHE_CLI") + " --port " + std::to_string(port);
  for (const std::string& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST_P(CrabcachedTest, CliCommandsAndExitCodes) {
  using P = std::pair<int, std::string>;
  EXPECT_EQ(Cli(port(), {"ping"}), P(0, "PONG\n"));
  EXPECT_EQ(Cli(port(), {"put", "cli-k", "hello world"}), P(0, "OK\n"));
  EXPECT_EQ(Cli(port(), {"get", "cli-k"}), P(0, "hello world\n"));  // Not a terminal: raw.
  EXPECT_EQ(Cli(port(), {"--escaped", "get", "cli-k"}), P(0, "\"hello world\"\n"));
  EXPECT_EQ(Cli(port(), {"put", "cli-bin", std::string("a\tb\x01", 4)}), P(0, "OK\n"));
  EXPECT_EQ(Cli(port(), {"get", "--escaped", "cli-bin"}), P(0, "\"a\\tb\\001\"\n"));
  EXPECT_EQ(Cli(port(), {"ttl", "cli-k"}), P(0, "no expiry\n"));
  EXPECT_EQ(Cli(port(), {"expire", "cli-k", "100"}), P(0, "OK\n"));
  EXPECT_THAT(Cli(port(), {"ttl", "cli-k"}).second, HasSubstr(" ms\n"));
  EXPECT_EQ(Cli(port(), {"put", "cli-t", "v", "--ttl", "50"}), P(0, "OK\n"));
  EXPECT_EQ(Cli(port(), {"put", "cli-t0", "v", "--ttl=0"}), P(0, "OK\n"));
  EXPECT_EQ(Cli(port(), {"get", "cli-t0"}), P(1, "(nil)\n"));
  EXPECT_EQ(Cli(port(), {"del", "cli-k"}), P(0, "OK\n"));
  EXPECT_EQ(Cli(port(), {"del", "cli-k"}), P(1, "(not found)\n"));
  EXPECT_EQ(Cli(port(), {"get", "cli-k"}), P(1, "(nil)\n"));
  EXPECT_EQ(Cli(port(), {"expire", "cli-k", "5"}), P(1, "(not found)\n"));
  EXPECT_EQ(Cli(port(), {"ttl", "cli-k"}), P(1, "(not found)\n"));
  const auto [code, json] = Cli(port(), {"stats"});
  EXPECT_EQ(code, 0);
  EXPECT_THAT(json, HasSubstr("\"keys\":"));
  // Errors: usage, server ERROR, no server.
  EXPECT_EQ(Cli(port(), {"frobnicate"}).first, 2);
  EXPECT_EQ(Cli(port(), {"get"}).first, 2);
  EXPECT_EQ(Cli(port(), {"expire", "k", "soon"}).first, 2);
  const auto [big_code, big_out] = Cli(port(), {"put", std::string(70000, 'k'), "v"});
  EXPECT_EQ(big_code, 2);
  EXPECT_THAT(big_out, HasSubstr("key length 70000 exceeds max_key_bytes"));
  EXPECT_EQ(Cli(1, {"ping"}).first, 2);
}

class CrabcachedShutdownTest : public ::testing::TestWithParam<IoEngine> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::EngineUnavailable(GetParam()); !why.empty()) {
      GTEST_SKIP() << why;
    }
  }
};

INSTANTIATE_TEST_SUITE_P(Engines, CrabcachedShutdownTest, ::testing::ValuesIn(testing::kEngines),
                         testing::EngineTestName);

TEST_P(CrabcachedShutdownTest, SigtermFlushesComputedRepliesAndExitsZero) {
  Crabcached server(
      {"--output_soft_limit=256Mi", "--output_hard_limit=256Mi", EngineFlag(GetParam())});
  ASSERT_GT(server.port(), 0) << server.Log();
  std::unique_ptr<Client> c = ConnectTo(server.port());
  ASSERT_NE(c, nullptr);
  const std::string value(256 << 10, 'g');
  ASSERT_TRUE(c->Put("shut", value).ok());
  constexpr int kGets = 100;  // 25 MiB of replies: far more than the socket buffers hold.
  const double before = server.Metric(kBytesIn);
  for (int i = 0; i < kGets; ++i) c->QueueGet("shut");
  ASSERT_TRUE(c->Flush().ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server.Metric(kBytesIn) < before + kGets * 9 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  // Terminate in the background while the client reads every reply.
  std::thread term([&] { EXPECT_EQ(server.Terminate(), 0) << server.Log(); });
  for (int i = 0; i < kGets; ++i) {
    absl::StatusOr<Reply> r = c->ReadReplyView();
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    ASSERT_EQ(r->type, ReplyType::kValue);
    ASSERT_EQ(r->bytes.size(), value.size());
  }
  EXPECT_TRUE(c->WaitForClose().ok());
  term.join();
}

TEST_P(CrabcachedShutdownTest, SigtermUnderLoadExitsZero) {
  Crabcached server({EngineFlag(GetParam())});
  ASSERT_GT(server.port(), 0) << server.Log();
  int status = -1;
  testing::ClientsUnderLoadDuringShutdown(server.port(), 16, [&] { status = server.Terminate(); });
  EXPECT_EQ(status, 0) << server.Log();
}

// Under a seccomp profile that denies io_uring (Docker's default): auto serves on epoll and
// says why in one log line; io_uring asked for explicitly refuses to start.
TEST(CrabcachedIoEngineTest, AutoFallsBackToEpollUnderSeccompWithOneLogLine) {
  Crabcached server({"--io_engine=auto"}, /*deny_io_uring=*/true);
  ASSERT_GT(server.port(), 0) << server.Log();
  std::unique_ptr<Client> c = ConnectTo(server.port());
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->Ping().ok());
  const std::string log = server.Log();
  const std::string line = "fast path: io_uring is unavailable, using epoll";
  EXPECT_THAT(log,
              HasSubstr(line + " reason=\"io_uring_setup: Operation not permitted (io_uring is "
                               "disabled: seccomp profile or kernel.io_uring_disabled)\""))
      << log;
  EXPECT_EQ(log.find(line), log.rfind(line)) << "one line, not one per loop: " << log;
  EXPECT_THAT(log, HasSubstr("io_engine=epoll"));
  EXPECT_EQ(server.Terminate(), 0) << server.Log();
}

TEST(CrabcachedIoEngineTest, IoUringAskedForUnderSeccompFailsToStart) {
  Crabcached server({"--io_engine=io_uring"}, /*deny_io_uring=*/true);
  EXPECT_EQ(server.port(), 0);
  EXPECT_EQ(server.early_exit(), 1) << server.Log();
  EXPECT_THAT(server.Log(),
              HasSubstr("io_engine io_uring is unavailable: io_uring_setup: Operation not "
                        "permitted"));
}

TEST(CrabcachedFlagsTest, AHardLimitBelowTheLargestReplyIsAFlagError) {
  Crabcached server({"--max_value_bytes=100Mi"});  // Above the default 64Mi hard limit.
  EXPECT_EQ(server.early_exit(), 2) << server.Log();
  EXPECT_THAT(server.Log(), HasSubstr("--output_hard_limit: must exceed --max_value_bytes + 5"));
}

TEST(CrabcachedIoEngineTest, UnknownEngineIsAFlagError) {
  Crabcached server({"--io_engine=uring"});
  EXPECT_EQ(server.early_exit(), 2) << server.Log();
  EXPECT_THAT(server.Log(), HasSubstr("--io_engine: must be auto, epoll or io_uring"));
}

}  // namespace
}  // namespace crabcache::fastpath

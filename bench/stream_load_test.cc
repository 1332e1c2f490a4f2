// The byte-stream engine end to end against a small in-test RESP server that can be told to
// misbehave, so every way a run must fail is seen to fail.
#include "bench/stream_load.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/mutex.h"
#include "gtest/gtest.h"

namespace crabcache::bench {
namespace {

enum class Fault { kNone, kWrongValue, kGetAnswersOk, kForgetSets, kCloseConnection };

// A RESP GET/SET server on 127.0.0.1:0, one thread per connection. After `fault_after` GETs it
// starts misbehaving as `fault` says. Thread-safe.
class FakeRespServer {
 public:
  FakeRespServer(Fault fault, int fault_after) : fault_(fault), fault_after_(fault_after) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_fd_, 64), 0);
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeRespServer() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    close(listen_fd_);
    std::vector<std::thread> threads;
    std::vector<int> fds;
    {
      core::MutexLock lock(&mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
      fds.swap(fds_);
    }
    for (auto& t : threads) t.join();  // Without mu_: the threads take it to answer.
    for (int fd : fds) close(fd);
  }

  int port() const { return port_; }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      core::MutexLock lock(&mu_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  // Parses "*N\r\n" followed by N bulk strings at the start of `in`; returns bytes used or 0.
  static size_t ParseCommand(const std::string& in, std::vector<std::string>* args) {
    args->clear();
    size_t eol = in.find("\r\n");
    if (in.empty() || in[0] != '*' || eol == std::string::npos) return 0;
    const int argc = std::stoi(in.substr(1, eol - 1));
    size_t pos = eol + 2;
    for (int i = 0; i < argc; ++i) {
      eol = in.find("\r\n", pos);
      if (eol == std::string::npos) return 0;
      const size_t len = std::stoul(in.substr(pos + 1, eol - pos - 1));
      if (in.size() < eol + 2 + len + 2) return 0;
      args->push_back(in.substr(eol + 2, len));
      pos = eol + 2 + len + 2;
    }
    return pos;
  }

  void Serve(int fd) {
    std::string in, out;
    std::vector<std::string> args;
    char buf[16384];
    while (true) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
      out.clear();
      while (const size_t used = ParseCommand(in, &args)) {
        in.erase(0, used);
        if (!Answer(args, &out)) {
          shutdown(fd, SHUT_RDWR);
          return;
        }
      }
      // MSG_NOSIGNAL: a client that already hung up must not kill the test with SIGPIPE.
      if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
        return;
      }
    }
  }

  // Appends the reply to one command; false to drop the connection.
  bool Answer(const std::vector<std::string>& args, std::string* out) {
    core::MutexLock lock(&mu_);
    if (args.size() == 3 && args[0] == "SET") {
      if (!(faulty() && fault_ == Fault::kForgetSets)) data_[args[1]] = args[2];
      out->append("+OK\r\n");
      return true;
    }
    if (args.size() != 2 || args[0] != "GET") {
      out->append("-ERR unknown command\r\n");
      return true;
    }
    ++gets_;
    if (faulty() && fault_ == Fault::kCloseConnection) return false;
    if (faulty() && fault_ == Fault::kGetAnswersOk) {
      out->append("+OK\r\n");
      return true;
    }
    auto it = data_.find(args[1]);
    if (it == data_.end()) {
      out->append("$-1\r\n");
      return true;
    }
    std::string value = it->second;
    if (faulty() && fault_ == Fault::kWrongValue && !value.empty()) value[value.size() - 1] ^= 1;
    absl::StrAppend(out, "$", value.size(), "\r\n", value, "\r\n");
    return true;
  }

  bool faulty() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return gets_ > fault_after_; }

  // Immutable after construction.
  const Fault fault_;
  const int fault_after_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};

  core::Mutex mu_;
  std::map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
  int gets_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

LoadOptions SmallLoad(int port) {
  LoadOptions o;
  o.protocol = ProtocolKind::kResp;
  o.port = port;
  o.connections = 4;
  o.pipeline = 8;
  o.keys = 500;
  o.key_size = 12;
  o.value_size = 20;
  o.requests = 3000;
  o.warmup_s = 0;
  return o;
}

class StreamLoadTest : public ::testing::Test {
 protected:
  absl::StatusOr<LoadResult> Run(Fault fault, int fault_after, LoadOptions (*edit)(LoadOptions)) {
    FakeRespServer server(fault, fault_after);
    const LoadOptions o = edit(SmallLoad(server.port()));
    const KeySpace keys = *KeySpace::Create(o.keys, o.key_size, o.value_size);
    return RunStreamLoad(*MakeRespProtocol(), keys, o);
  }
  static LoadOptions Same(LoadOptions o) { return o; }
};

TEST_F(StreamLoadTest, HonestServerPassesAndEveryReplyIsCounted) {
  auto r = Run(Fault::kNone, 0, Same);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->ops, 3000u);
  EXPECT_GE(r->verified, 500u + r->ops);  // The prefill's 500 SETs, then the load.
  EXPECT_GT(r->gets, 0u);
  EXPECT_EQ(r->gets, r->get_hits);  // Prefilled: every GET hits.
  EXPECT_EQ(r->latency_ns.count(), r->ops);
  EXPECT_GT(r->seconds, 0);
}

TEST_F(StreamLoadTest, TwoThreadsAndAPipelineLargerThanTheSocketBuffer) {
  auto r = Run(Fault::kNone, 0, [](LoadOptions o) {
    o.threads = 2;
    o.pipeline = 2000;
    o.value_size = 200;
    o.requests = 20000;
    return o;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->ops, 20000u);
}

TEST_F(StreamLoadTest, LoadOnlySetsEveryKeyAndStops) {
  auto r = Run(Fault::kNone, 0, [](LoadOptions o) {
    o.load_only = true;
    return o;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verified, 500u);
  EXPECT_EQ(r->ops, 0u);
}

TEST_F(StreamLoadTest, WrongValueFailsTheRun) {
  auto r = Run(Fault::kWrongValue, 100, Same);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("wrong value"), std::string::npos) << r.status();
}

TEST_F(StreamLoadTest, WrongReplyTypeFailsTheRun) {
  auto r = Run(Fault::kGetAnswersOk, 100, Same);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("expected a value"), std::string::npos) << r.status();
}

TEST_F(StreamLoadTest, MissAfterPrefillFailsButIsFineWithoutPrefill) {
  auto lost = Run(Fault::kForgetSets, -1, Same);
  ASSERT_FALSE(lost.ok());
  EXPECT_NE(lost.status().message().find("not found"), std::string::npos) << lost.status();
  auto cold = Run(Fault::kForgetSets, -1, [](LoadOptions o) {
    o.prefill = false;
    return o;
  });
  ASSERT_TRUE(cold.ok()) << cold.status();
  EXPECT_EQ(cold->get_hits, 0u);
}

TEST_F(StreamLoadTest, ClosedConnectionFailsTheRun) {
  auto r = Run(Fault::kCloseConnection, 50, Same);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("closed"), std::string::npos) << r.status();
}

TEST(ConnectTcpTest, NothingListeningIsUnavailable) {
  int port;
  {
    FakeRespServer server(Fault::kNone, 0);
    port = server.port();
  }
  auto fd = ConnectTcp("127.0.0.1", port);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace crabcache::bench

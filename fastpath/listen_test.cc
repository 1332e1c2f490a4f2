#include "fastpath/listen.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"

namespace crabcache::net {
namespace {

// Connects to `address`:`port` (blocking); true when the connection is established.
bool CanConnect(int family, const char* address, int port) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, address, &a.sin6_addr);
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, address, &a.sin_addr);
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
  }
  close(fd);
  return rc == 0;
}

bool HaveIpv6Loopback() {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

TEST(ListenTcpTest, LoopbackGetsAnEphemeralPortAndAcceptsConnections) {
  absl::StatusOr<ListeningSocket> s = ListenTcp("127.0.0.1", 0, 16);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->port, 0);
  EXPECT_TRUE(CanConnect(AF_INET, "127.0.0.1", s->port));
  close(s->fd);
}

TEST(ListenTcpTest, TheSocketIsNonBlocking) {
  absl::StatusOr<ListeningSocket> s = ListenTcp("127.0.0.1", 0, 16);
  ASSERT_TRUE(s.ok()) << s.status();
  // Nothing is waiting: a non-blocking accept fails at once instead of hanging the test.
  EXPECT_EQ(accept(s->fd, nullptr, nullptr), -1);
  EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
  close(s->fd);
}

TEST(ListenTcpTest, WildcardsServeBothFamilies) {
  for (const char* host : {"", "0.0.0.0", "::"}) {
    absl::StatusOr<ListeningSocket> s = ListenTcp(host, 0, 16);
    ASSERT_TRUE(s.ok()) << "'" << host << "': " << s.status();
    EXPECT_TRUE(CanConnect(AF_INET, "127.0.0.1", s->port)) << "'" << host << "'";
    if (HaveIpv6Loopback()) {
      EXPECT_TRUE(CanConnect(AF_INET6, "::1", s->port)) << "'" << host << "'";
    }
    close(s->fd);
  }
}

TEST(ListenTcpTest, APortInUseIsUnavailableAndNamesTheAddress) {
  absl::StatusOr<ListeningSocket> first = ListenTcp("127.0.0.1", 0, 16);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<ListeningSocket> second = ListenTcp("127.0.0.1", first->port, 16);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("127.0.0.1"), std::string::npos) << second.status();
  close(first->fd);
}

TEST(ListenTcpTest, BadInputIsAnInvalidArgument) {
  EXPECT_EQ(ListenTcp("127.0.0.1", 65536, 16).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ListenTcp("127.0.0.1", -1, 16).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ListenTcp("not an address!", 0, 16).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace crabcache::net

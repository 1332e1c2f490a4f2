#include "fastpath/listen.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace crabcache::net {
namespace {

// A listening socket bound to `address`, or -1 with errno set.
int BindOne(const sockaddr* address, socklen_t length, int family, bool dual_stack, int backlog) {
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  const int zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      (dual_stack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) ||
      bind(fd, address, length) != 0 || listen(fd, backlog) != 0) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
}

absl::StatusOr<int> BindWildcard(int port, int backlog) {
  sockaddr_in6 any6{};
  any6.sin6_family = AF_INET6;
  any6.sin6_addr = in6addr_any;
  any6.sin6_port = htons(static_cast<uint16_t>(port));
  int fd = BindOne(reinterpret_cast<const sockaddr*>(&any6), sizeof(any6), AF_INET6,
                   /*dual_stack=*/true, backlog);
  if (fd >= 0) return fd;
  if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on [::]:", port, ": ", std::strerror(errno)));
  }
  sockaddr_in any4{};
  any4.sin_family = AF_INET;
  any4.sin_addr.s_addr = htonl(INADDR_ANY);
  any4.sin_port = htons(static_cast<uint16_t>(port));
  fd = BindOne(reinterpret_cast<const sockaddr*>(&any4), sizeof(any4), AF_INET,
               /*dual_stack=*/false, backlog);
  if (fd >= 0) return fd;
  return absl::UnavailableError(
      absl::StrCat("cannot listen on 0.0.0.0:", port, ": ", std::strerror(errno)));
}

absl::StatusOr<int> BindResolved(const std::string& host, int port, int backlog) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve address '", host, "': ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = BindOne(a->ai_addr, a->ai_addrlen, a->ai_family, /*dual_stack=*/false, backlog);
    if (fd < 0) error = std::strerror(errno);
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", host, ":", port, ": ", error));
  }
  return fd;
}

}  // namespace

absl::StatusOr<ListeningSocket> ListenTcp(const std::string& host, int port, int backlog) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port out of range: ", port));
  }
  const bool wildcard = host.empty() || host == "0.0.0.0" || host == "::";
  absl::StatusOr<int> fd =
      wildcard ? BindWildcard(port, backlog) : BindResolved(host, port, backlog);
  if (!fd.ok()) return fd.status();
  const int bound = BoundPort(*fd);
  if (bound == 0) {
    const std::string error = std::strerror(errno);
    close(*fd);
    return absl::InternalError(absl::StrCat("getsockname: ", error));
  }
  return ListeningSocket{.fd = *fd, .port = bound};
}

}  // namespace crabcache::net

// Listening TCP sockets for both front ends: the fast path's acceptor (fastpath/server.cc) and
// the listener crabcached runs for gRPC (service/grpc_listener.cc). One place decides how an
// address is bound, so the two ports of one server never disagree about it.
#ifndef CRABCACHE_FASTPATH_LISTEN_H_
#define CRABCACHE_FASTPATH_LISTEN_H_

#include <string>

#include "absl/status/statusor.h"

namespace crabcache::net {

// A bound, listening socket (non-blocking, close-on-exec, SO_REUSEADDR) and the port it got.
// Ownership: the caller owns `fd` and closes it.
struct ListeningSocket {
  int fd = -1;
  int port = 0;
};

// Binds and listens on `host`:`port` (port 0: the kernel picks one).
// - A wildcard host ("", "0.0.0.0" or "::") gets the IPv6 wildcard with IPv4 mapped in
//   (IPV6_V6ONLY off), so one socket serves both families, as gRPC's own listener does; on a
//   kernel without IPv6 it falls back to the IPv4 wildcard.
// - Any other host (a numeric address or a name) binds its first resolved address that binds.
// Errors: InvalidArgument for a port out of range or a host that does not resolve, Unavailable
// when nothing could be bound (the message names the address and errno).
// Thread-safe (no shared state).
absl::StatusOr<ListeningSocket> ListenTcp(const std::string& host, int port, int backlog);

}  // namespace crabcache::net

#endif  // CRABCACHE_FASTPATH_LISTEN_H_

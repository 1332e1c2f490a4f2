// The gRPC ports' listening sockets, accepted by CrabCache instead of by gRPC, so that connections
// can be capped and counted: gRPC 1.51 has no limit on incoming connections and reports neither
// accepts nor closes.
#ifndef CRABCACHE_SERVICE_GRPC_LISTENER_H_
#define CRABCACHE_SERVICE_GRPC_LISTENER_H_

#include <grpcpp/server_builder.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"

namespace crabcache::service {

struct GrpcListenerOptions {
  // Host or IP to bind. "0.0.0.0" and "::" bind the IPv6 wildcard with IPv4 mapped in (dual
  // stack, as gRPC's own listener does), or the IPv4 wildcard where IPv6 is unavailable.
  std::string address = "0.0.0.0";
  // 0 picks a free port (see port()).
  int port = 0;
  // Connections open at once; one accepted beyond this is closed at once (the client sees the
  // connection close before any HTTP/2 frame: UNAVAILABLE).
  size_t max_connections = 10000;
  // For log lines ("grpc", "grpc health").
  std::string name = "grpc";
};

// Listens on one TCP port and hands every accepted connection to a grpc::Server through
// grpc::experimental::ExternalConnectionAcceptor (ServerBuilder::experimental()
// .AddExternalConnectionAcceptor), which runs on it the same transport, TLS included, as gRPC's
// own listener would. Connections over max_connections are closed instead.
//
// Open connections: gRPC closes a connection's descriptor when the connection ends and tells no
// one. The listener remembers the (descriptor, device, inode) of each socket it handed over and
// counts it closed once fstat on that descriptor fails or finds another file (descriptor numbers
// are reused; a socket's inode is not while it lives). That costs one fstat per open connection,
// paid at the cap check only once the cap may have been reached, and at each open_connections()
// call (a metrics scrape).
//
// Thread-safety: all methods may be called from any thread. One accept thread runs between
// Start and StopAccepting. Ownership: owns the listening socket; the accepted sockets belong to
// gRPC once handed over.
class GrpcListener {
 public:
  // Binds and listens (connections queue in the kernel until Start). kUnavailable when the
  // address cannot be bound, kInvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<GrpcListener>> Listen(const GrpcListenerOptions& options);
  ~GrpcListener();  // StopAccepting.
  GrpcListener(const GrpcListener&) = delete;
  GrpcListener& operator=(const GrpcListener&) = delete;

  // The bound port.
  int port() const { return port_; }

  // Starts the accept thread, which hands connections to `acceptor`. Call once, after the
  // grpc::Server that made `acceptor` has started (gRPC closes connections handed to a server
  // that is not running).
  void Start(std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor);

  // Stops the accept thread and closes the listening socket: new connections are refused by the
  // kernel. Connections already handed over stay gRPC's. Idempotent.
  void StopAccepting();

  // Connections handed to gRPC, ever.
  uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }
  // Connections closed at once because max_connections were open.
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  // Connections handed to gRPC that gRPC has not closed yet (see the class comment).
  int64_t open_connections();

 private:
  // One socket handed to gRPC.
  struct Handed {
    int fd;
    dev_t dev;
    ino_t ino;
  };

  GrpcListener(const GrpcListenerOptions& options, int listen_fd, int wake_fd, int port);
  void Run();
  // Admits `fd` (hands it to gRPC) or, at the cap, closes it.
  void Admit(int fd);
  // Forgets the handed sockets gRPC has closed.
  void SweepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Immutable after construction.
  const GrpcListenerOptions options_;
  const int port_;
  const int wake_fd_;  // eventfd: StopAccepting wakes the accept thread.

  // Set by Start, then used by the accept thread only.
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  int listen_fd_;  // Closed (-1) by StopAccepting after the thread ended.

  core::Mutex mu_;
  std::vector<Handed> handed_ ABSL_GUARDED_BY(mu_);
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_GRPC_LISTENER_H_

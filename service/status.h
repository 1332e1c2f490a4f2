// The one place where CrabCache statuses become gRPC statuses.
#ifndef CRABCACHE_SERVICE_STATUS_H_
#define CRABCACHE_SERVICE_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace crabcache::service {

// Maps a core/absl status to the gRPC status with the same canonical code and message. Every
// gRPC status the service returns for a core outcome goes through here.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace crabcache::service

#endif  // CRABCACHE_SERVICE_STATUS_H_

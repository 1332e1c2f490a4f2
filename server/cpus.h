// How many CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota
// (Kubernetes CPU limits), which std::thread::hardware_concurrency() does not see.
#ifndef CRABCACHE_SERVER_CPUS_H_
#define CRABCACHE_SERVER_CPUS_H_

#include <string>

namespace crabcache::server {

struct CpuBudget {
  int cpus = 1;        // At least 1.
  std::string source;  // "affinity", "cgroup v2 cpu.max", "cgroup v1 cfs quota".
};

// Reads the cgroup files under `root` ("/" in production; a folder in tests); `affinity` is the
// number of CPUs in the affinity mask. A quota rounds up (1.5 CPUs -> 2).
CpuBudget DetectCpus(int affinity, const std::string& root = "/");

// The default number of fast path event loops for `cpus`: one when there are at most 2 (the
// loops then share no core with each other, and gRPC, the sweeper and the kernel's network work
// keep the other; measured in docs/benchmarks.md: p99 at pipeline 1 drops ~9x on 2 cores), else
// cpus - 1.
int DefaultEventLoops(int cpus);

// DetectCpus for this process.
CpuBudget AvailableCpus();

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_CPUS_H_

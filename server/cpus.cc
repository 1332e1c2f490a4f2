#include "server/cpus.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <thread>

namespace crabcache::server {
namespace {

// "quota period" (cgroup v2 cpu.max) or two files (v1); a quota of "max" or -1 is no limit.
int QuotaCpus(double quota, double period) {
  if (quota <= 0 || period <= 0) return 0;
  return std::max(1, static_cast<int>(std::ceil(quota / period)));
}

int CgroupV2(const std::string& root) {
  std::ifstream in(root + "/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max") return 0;
  try {
    return QuotaCpus(std::stod(quota), period);
  } catch (const std::exception&) {  // Start-up only; a malformed file means "unknown".
    return 0;
  }
}

int CgroupV1(const std::string& root) {
  std::ifstream quota_in(root + "/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  std::ifstream period_in(root + "/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double quota = 0, period = 0;
  if (!(quota_in >> quota) || !(period_in >> period)) return 0;
  return QuotaCpus(quota, period);
}

}  // namespace

CpuBudget DetectCpus(int affinity, const std::string& root) {
  CpuBudget budget{std::max(1, affinity), "affinity"};
  if (const int v2 = CgroupV2(root); v2 > 0 && v2 < budget.cpus) {
    budget = {v2, "cgroup v2 cpu.max"};
  } else if (const int v1 = CgroupV1(root); v1 > 0 && v1 < budget.cpus) {
    budget = {v1, "cgroup v1 cfs quota"};
  }
  return budget;
}

int DefaultEventLoops(int cpus) { return cpus <= 2 ? 1 : cpus - 1; }

CpuBudget AvailableCpus() {
  cpu_set_t set;
  int affinity = static_cast<int>(std::thread::hardware_concurrency());
  if (sched_getaffinity(0, sizeof(set), &set) == 0) affinity = CPU_COUNT(&set);
  return DetectCpus(affinity);
}

}  // namespace crabcache::server

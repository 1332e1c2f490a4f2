// Simulates a container runtime whose seccomp profile forbids io_uring (Docker's default profile
// since 25.0, moby#46762; containerd's RuntimeDefault since 2.0), for the tests of the io_uring
// fallback.
#ifndef CRABCACHE_TESTS_FASTPATH_SECCOMP_H_
#define CRABCACHE_TESTS_FASTPATH_SECCOMP_H_

namespace crabcache::fastpath::testing {

// Makes io_uring_setup, io_uring_enter and io_uring_register fail with `error` (EPERM, ENOSYS)
// in this process and every process it execs, for good (seccomp filters cannot be removed).
// Call it in a forked child only. Returns false if the filter could not be installed.
bool DenyIoUring(int error);

}  // namespace crabcache::fastpath::testing

#endif  // CRABCACHE_TESTS_FASTPATH_SECCOMP_H_

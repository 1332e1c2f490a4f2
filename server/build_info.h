// The version and the git commit crabcached was built from (generated at build time by
// server/build_info.cmake, so a new commit relinks without reconfiguring).
#ifndef CRABCACHE_SERVER_BUILD_INFO_H_
#define CRABCACHE_SERVER_BUILD_INFO_H_

namespace crabcache::server {

extern const char kVersion[];    // "0.1.0"
extern const char kGitCommit[];  // Short hash, "-dirty" appended for a modified tree; "unknown".

}  // namespace crabcache::server

#endif  // CRABCACHE_SERVER_BUILD_INFO_H_

// Reading a live crabcached's /metrics from C++ tests (no HTTP library: one GET over a socket).
#ifndef CRABCACHE_TESTS_TESTLIB_METRICS_SCRAPE_H_
#define CRABCACHE_TESTS_TESTLIB_METRICS_SCRAPE_H_

#include <string>
#include <string_view>

namespace crabcache::testing {

// The body and headers of GET `path` from 127.0.0.1:port (HTTP/1.0), or "" if nothing answered.
std::string HttpGet(int port, std::string_view path);

// The value of the sample whose text before the value is exactly `series` (e.g.
// `crabcache_keys` or `crabcache_connections_open{frontend="fastpath"}`), or -1 if absent.
double SampleValue(std::string_view exposition, std::string_view series);

// SampleValue(HttpGet(port, "/metrics"), series).
double ScrapeSample(int port, std::string_view series);

}  // namespace crabcache::testing

#endif  // CRABCACHE_TESTS_TESTLIB_METRICS_SCRAPE_H_

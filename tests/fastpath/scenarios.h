// Protocol scenarios run against a fast path listening on 127.0.0.1:<port>: by the in-process
// tests (a real Store + Executor + fastpath::Server) and by the tests that start crabcached.
// Each scenario reports through GoogleTest assertions and uses keys under its own prefix.
#ifndef CRABCACHE_TESTS_FASTPATH_SCENARIOS_H_
#define CRABCACHE_TESTS_FASTPATH_SCENARIOS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "fastpath/client.h"
#include "fastpath/server.h"
#include "gtest/gtest.h"

namespace crabcache::fastpath {

// Test names and failure messages say "epoll" rather than "1-byte object <01>".
inline void PrintTo(IoEngine engine, std::ostream* os) { *os << IoEngineName(engine); }

}  // namespace crabcache::fastpath

namespace crabcache::fastpath::testing {

// The I/O engines every fast path test runs against:
//   INSTANTIATE_TEST_SUITE_P(Engines, MyTest, ::testing::ValuesIn(kEngines), EngineTestName);
inline constexpr IoEngine kEngines[] = {IoEngine::kEpoll, IoEngine::kIoUring};
std::string EngineTestName(const ::testing::TestParamInfo<IoEngine>& info);
// Why `engine` cannot run in this process, for GTEST_SKIP; empty when it can. The io_uring probe
// runs once per process.
std::string EngineUnavailable(IoEngine engine);

// Connects or fails the test (ASSERT in the caller via the returned null).
std::unique_ptr<Client> ConnectTo(int port);

// Little-endian helpers for hand-made frames.
std::string U32(uint32_t v);
std::string U64(uint64_t v);

// Called after each chunk sent by the byte-at-a-time scenario with the total bytes sent on that
// connection; returns once the server has read them (so every chunk is a separate read).
using WaitConsumed = std::function<void(uint64_t sent_total)>;

void FourPingsInOneWrite(int port);
void TenThousandPipelinedMixedCommands(int port);
void EveryFrameOneByteAtATime(int port, const WaitConsumed& wait_consumed);
void DelExpireTtlSemantics(int port);
void ZeroTtlExpiresAtOnce(int port);
void OneMiBValues(int port);
// Pipelines 100 GETs of 1 MiB values in one write, then reads every reply: a client that reads
// promptly gets them all, with the default output limits (it asks for more than the hard limit).
void HundredPipelinedGetsOfOneMiBValues(int port);
void KeysWithNulBytes(int port);
// Each malformed input gets the earlier replies, one ERROR mentioning `reason_text`, and a close;
// a second connection keeps working throughout.
void MalformedFramesCloseOnlyThatConnection(int port, size_t max_key_bytes, size_t max_value_bytes);
void ConcurrentClientsAgainstModel(int port, int clients, int commands_per_client);
// `clients` connections pipeline PUT/GET pairs against their own keys; once each has had 20
// batches answered, `stop` runs (it shuts the server down, gracefully). Every reply a client
// reads must be right and in order; after `stop`, every connection ends (EOF or reset) instead
// of hanging. Returns the replies read after `stop` began.
uint64_t ClientsUnderLoadDuringShutdown(int port, int clients, const std::function<void()>& stop);

}  // namespace crabcache::fastpath::testing

#endif  // CRABCACHE_TESTS_FASTPATH_SCENARIOS_H_

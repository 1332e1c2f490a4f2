// Protocol scenarios run against a fast path listening on 127.0.0.1:<port>: by the in-process
// tests (a real Store + Executor + fastpath::Server) and by the tests that start crabcached.
// Each scenario reports through GoogleTest assertions and uses keys under its own prefix.
#ifndef CRABCACHE_TESTS_FASTPATH_SCENARIOS_H_
#define CRABCACHE_TESTS_FASTPATH_SCENARIOS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "fastpath/client.h"

namespace crabcache::fastpath::testing {

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
void KeysWithNulBytes(int port);
// Each malformed input gets the earlier replies, one ERROR mentioning `reason_text`, and a close;
// a second connection keeps working throughout.
void MalformedFramesCloseOnlyThatConnection(int port, size_t max_key_bytes, size_t max_value_bytes);
void ConcurrentClientsAgainstModel(int port, int clients, int commands_per_client);

}  // namespace crabcache::fastpath::testing

#endif  // CRABCACHE_TESTS_FASTPATH_SCENARIOS_H_

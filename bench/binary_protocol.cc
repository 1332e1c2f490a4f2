// Placeholder until fastpath/codec.h lands on main (issue 4): the binary protocol encodes and
// decodes with the fast path's own codec, never a second one.
#include "bench/protocol.h"

namespace crabcache::bench {

std::unique_ptr<Protocol> MakeBinaryProtocol() { return nullptr; }

}  // namespace crabcache::bench

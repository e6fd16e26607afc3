#pragma once
// Cross-slot reads fan out: one HGETALL per key, in parallel, the integer fields summed by name
// (the per-partition status counts, the per-partition parked-start counts).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "store/redis_client.hpp"

namespace sagaflow::store::impl {

using SumCallback = std::function<void(Result<std::map<std::string, std::int64_t>>)>;

void sum_hashes(RedisClient& redis, std::vector<std::string> keys, Millis timeout_ms,
                SumCallback done);

}  // namespace sagaflow::store::impl

#pragma once
// The answer of a write that had to reach `replicas` replicas: the write's reply when Redis
// WAIT counted enough of them, Errc::unavailable when it counted fewer (transient: nothing is
// acked, the caller retries), the WAIT's own failure otherwise.
#include <string>
#include <utility>

#include "core/result.hpp"
#include "store/reply.hpp"

namespace sagaflow::store::impl {

inline Result<Reply> replicated(Reply reply, Result<Reply> wait, int replicas) {
  if (!wait.ok()) return std::move(wait).error();
  if (wait->type != Reply::Type::integer) {
    return make_error(Errc::internal, "WAIT: unexpected reply: " + wait->str);
  }
  if (wait->integer < replicas) {
    return make_error(Errc::unavailable, "redis WAIT: " + std::to_string(wait->integer) + " of " +
                                             std::to_string(replicas) + " replicas have the write");
  }
  return reply;
}

}  // namespace sagaflow::store::impl

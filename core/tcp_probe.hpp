#pragma once
// Why a plain TCP connect to host:port fails ("connection refused", "cannot resolve host:
// ..."), for one-line errors: client libraries such as rabbitmq-c only say "a socket error
// occurred". Empty when the connect succeeds. Blocking, bounded by timeout_ms: call it on an
// error path or from a worker thread, not on the event loop's hot path.
#include <string>

namespace sagaflow {

std::string tcp_probe(const std::string& host, int port, int timeout_ms);

}  // namespace sagaflow

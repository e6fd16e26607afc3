#pragma once
// Async Redis client on a libuv loop (hiredis underneath), one connection, pipelined.
//
// Contract:
// - Every command() callback runs exactly once, on the loop thread: with the reply, or with
//   an Error of code unavailable (not connected, connection lost, server LOADING/BUSY/...)
//   or timeout (no reply within the call's timeout; the connection is then dropped, every call
//   in flight on it fails with timeout, and the client reconnects). Never a hang.
// - While connected, calls are pipelined (many in flight, replies in order). While the first
//   connection after start() is being made, calls are queued on it (bounded by their timeout);
//   after a connection was lost, calls fail at once with unavailable until it is back.
// - Failures are delivered from the loop (a zero timer), never from inside command() itself,
//   so a caller may retry from its callback without recursion. Exceptions: stop() fails
//   everything still pending synchronously, before it returns, and a call made before start()
//   or after stop() fails synchronously (callbacks must not retry after stop()).
// - A Redis error reply is delivered as a Reply of type error, except the transient ones
//   (LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, READONLY), which are Errc::unavailable.
// - Reconnects use exponential backoff with jitter (backoff_min_ms doubling to backoff_max_ms).
//   A heartbeat PING on an idle connection detects a dead or frozen server.
// - Lua scripts: register_script() once, then eval(): EVALSHA; on NOSCRIPT the client sends
//   SCRIPT LOAD and the EVALSHA again, transparently.
// - Redis Cluster (endpoint.cluster(), a redis-cluster:// URL): one connection per primary,
//   each call routed by its key's slot, MOVED / ASK followed, the map refreshed
//   (impl/cluster_client.hpp). Every key of one call must share a slot (hash tags).
// Lifecycle: start(), stop() noexcept; destroy only after stop() and never inside one of its
// own callbacks. Objects that capture the client in callbacks must outlive stop().
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/result.hpp"
#include "store/reply.hpp"

struct uv_loop_s;

namespace sagaflow::store {
namespace impl {
class ClusterClient;
}

struct RedisClientOptions {
  RedisEndpoint endpoint;              // host, port, db (SELECT), password (AUTH)
  Millis command_timeout_ms = 2000;    // default per-call timeout
  Millis connect_timeout_ms = 2000;    // TCP connect + AUTH/SELECT handshake
  Millis backoff_min_ms = 50;          // first reconnect delay
  Millis backoff_max_ms = 2000;        // reconnect delay cap
  Millis heartbeat_ms = 1000;          // PING when idle this long (0: never)
  std::size_t max_in_flight = 200000;  // beyond: unavailable at once (memory bound)
  std::string name = "sagaflow";       // CLIENT SETNAME
  int partitions = 0;  // cluster: warn when the saga partitions miss shards (0: no check)
};

// SAGAFLOW_REDIS_WAIT_REPLICAS: a write answered only once Redis WAIT reports that many replicas
// have it (fewer within timeout_ms: Errc::unavailable).
struct WaitReplicas {
  int replicas = 0;
  Millis timeout_ms = 500;  // below the command timeout: a WAIT holds its connection's pipeline
};

// A registered Lua script: its source and SHA1 (hex).
struct ScriptRef {
  std::size_t index = 0;
};

// A script call's keys and arguments, written straight in the wire format (RESP bulk strings)
// into two buffers: a batch of many events is two growing strings, not a string per argument
// (SagaStore). Keys and arguments may be added in any order; keys go first on the wire.
class ScriptArgs {
 public:
  ScriptArgs() = default;
  ScriptArgs(const ScriptArgs&) = default;
  ScriptArgs& operator=(const ScriptArgs&) = default;
  // A moved-from ScriptArgs is empty, counts included (a count that disagrees with the bytes
  // would put the connection's pipeline out of step).
  ScriptArgs(ScriptArgs&& other) noexcept;
  ScriptArgs& operator=(ScriptArgs&& other) noexcept;
  ~ScriptArgs() = default;

  void key(std::string_view k);
  // One key given as the parts it is made of, in order (written without building it).
  void key(std::initializer_list<std::string_view> parts);
  void arg(std::string_view a);
  void arg(std::int64_t n);
  // Keys or arguments already encoded (an earlier ScriptArgs' part): `count` items.
  void raw_keys(std::string_view resp, std::size_t count);
  void raw_args(std::string_view resp, std::size_t count);
  void reserve(std::size_t key_bytes, std::size_t arg_bytes);
  // Empty again, its buffers kept (for reuse without allocating).
  void clear() noexcept;

  std::size_t keys() const noexcept { return n_keys_; }
  std::size_t args() const noexcept { return n_args_; }
  std::string_view first_key() const noexcept;  // routes a cluster call ("" without keys)
  const std::string& key_bytes() const noexcept { return keys_; }
  const std::string& arg_bytes() const noexcept { return args_; }
  // EVALSHA <sha> <numkeys> <keys...> <args...>, as one RESP command.
  std::string command(std::string_view sha) const;

 private:
  std::string keys_;
  std::string args_;
  std::size_t n_keys_ = 0;
  std::size_t n_args_ = 0;
};

class RedisClient final {
 public:
  using Callback = std::function<void(Result<Reply>)>;
  using ConnectionListener = std::function<void(bool connected)>;

  RedisClient(uv_loop_s* loop, RedisClientOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void start();
  void stop() noexcept;

  bool connected() const noexcept;
  bool cluster() const noexcept { return cluster_ != nullptr; }
  uv_loop_s* loop() const noexcept { return loop_; }
  // Called on every change: true once a connection is ready (handshake done), false when lost.
  void on_connection(ConnectionListener listener);

  // timeout_ms <= 0: options.command_timeout_ms.
  void command(std::vector<std::string> argv, Callback done, Millis timeout_ms = 0);

  // The same, then WAIT on the connection that ran it (after MOVED / ASK: the node that did),
  // for a reply that is not an error. WAITs are coalesced per connection: at most one in
  // flight, the writes answered meanwhile share the next one.
  void command_replicated(std::vector<std::string> argv, WaitReplicas wait, Callback done,
                          Millis timeout_ms = 0);
  // One Redis only (the cluster mode uses it on each node): WAIT covering every write this
  // connection has been answered for, coalesced as above. The raw WAIT reply.
  void wait_written(int replicas, Millis timeout_ms, Callback done);

  ScriptRef register_script(std::string_view name, std::string source);
  const std::string& script_sha(ScriptRef script) const;
  // EVALSHA sha numkeys keys... args...
  void eval(ScriptRef script, std::vector<std::string> keys, std::vector<std::string> args,
            Callback done, Millis timeout_ms = 0);
  void eval(ScriptRef script, const ScriptArgs& args, Callback done, Millis timeout_ms = 0);
  // EVALSHA, then WAIT as command_replicated does.
  void eval_replicated(ScriptRef script, std::vector<std::string> keys,
                       std::vector<std::string> args, WaitReplicas wait, Callback done,
                       Millis timeout_ms = 0);
  void eval_replicated(ScriptRef script, const ScriptArgs& args, WaitReplicas wait, Callback done,
                       Millis timeout_ms = 0);

  struct Stats {
    std::uint64_t connects = 0;
    std::uint64_t disconnects = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t script_reloads = 0;
    std::uint64_t redirects = 0;  // cluster: MOVED / ASK followed
    std::size_t in_flight = 0;
  };
  Stats stats() const noexcept;

  class Impl;

 private:
  Callback then_wait(WaitReplicas wait, Callback done);

  uv_loop_s* loop_;
  std::unique_ptr<Impl> impl_;                    // one Redis
  std::unique_ptr<impl::ClusterClient> cluster_;  // or a Redis Cluster
};

}  // namespace sagaflow::store

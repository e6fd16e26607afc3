#pragma once
// The cluster mode of RedisClient (redis-cluster:// URLs): one RedisClient connection per
// primary, every call routed by the slot of its key, the slot map discovered with
// CLUSTER SLOTS from any node and followed through MOVED (re-route, refresh the map) and
// ASK (ASKING, then the command, on the target). Transient states (CLUSTERDOWN, TRYAGAIN, a
// lost primary) are Errc::unavailable like on one Redis; the map is refreshed on a timer (every
// second while a primary of the map is not connected, every 5 s otherwise) and after an
// unavailable call, so a failover's new primary is found without a restart.
// connected() is true when the map covers every slot and each of its primaries is connected:
// the worker pauses intake while it is false.
// Same lifecycle and callback rules as RedisClient (redis_client.hpp).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/redis_client.hpp"

struct uv_loop_s;

namespace sagaflow::store::impl {

class ClusterClient final {
 public:
  ClusterClient(uv_loop_s* loop, RedisClientOptions options);
  ~ClusterClient();
  ClusterClient(const ClusterClient&) = delete;
  ClusterClient& operator=(const ClusterClient&) = delete;

  void start();
  void stop() noexcept;
  bool connected() const noexcept;
  void on_connection(RedisClient::ConnectionListener listener);

  // route_key empty: the command's own key (cluster_slots.hpp routing_key), else this key.
  // wait.replicas > 0: then WAIT on the node that answered (RedisClient::command_replicated).
  void command(std::vector<std::string> argv, RedisClient::Callback done, Millis timeout_ms,
               std::string_view route_key, WaitReplicas wait = {});
  ScriptRef register_script(std::string_view name, std::string source);
  const std::string& script_sha(ScriptRef script) const;
  void eval(ScriptRef script, const ScriptArgs& args, RedisClient::Callback done, Millis timeout_ms,
            WaitReplicas wait = {});
  RedisClient::Stats stats() const noexcept;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow::store::impl

#include "store/impl/cluster_client.hpp"

#include <uv.h>

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "core/log.hpp"
#include "store/impl/cluster_slots.hpp"
#include "store/impl/replicated.hpp"
#include "store/impl/sha1.hpp"

namespace sagaflow::store::impl {
namespace {

constexpr int kMaxRedirects = 5;             // MOVED / ASK followed for one call
constexpr std::uint64_t kTickMs = 250;       // map refresh timer
constexpr std::uint64_t kHealthyTicks = 20;  // refresh every 5 s when all is well
constexpr std::uint64_t kMinRefreshGapMs = 100;
constexpr Millis kRefreshTimeoutMs = 1000;

struct Node {
  std::string host;
  int port = 0;
  std::unique_ptr<RedisClient> client;
  bool in_map = false;  // a primary of the current slot map
};

struct Call {
  std::vector<std::string> argv;    // a command
  std::optional<ScriptRef> script;  // or a script call
  ScriptArgs script_args;
  RedisClient::Callback done;
  Millis timeout_ms = 0;
  int slot = -1;  // -1: any node
  int redirects = 0;
  WaitReplicas wait;  // replicas > 0: WAIT on the node that answered, then done
};

struct Script {
  std::string name;
  std::string source;
  std::string sha;
};

}  // namespace

class ClusterClient::Impl {
 public:
  Impl(uv_loop_t* loop, RedisClientOptions options)
      : loop_(loop), opts_(std::move(options)), owner_(kClusterSlots, -1) {}
  ~Impl() { stop(); }

  void start() {
    if (running_) return;
    running_ = true;
    timer_ = new uv_timer_t{};
    uv_timer_init(loop_, timer_);
    timer_->data = this;
    uv_timer_start(timer_, &Impl::on_tick, kTickMs, kTickMs);
    complete_ = false;
    reported_ = false;
    refreshing_ = false;
    last_refresh_ = 0;
    for (const auto& seed : opts_.endpoint.cluster_seeds) node_for(seed.host, seed.port);
    for (auto& n : nodes_) n->client->start();  // after a stop(): the known nodes again
    refresh();
  }

  void stop() noexcept {
    if (!running_) return;
    running_ = false;
    if (timer_ != nullptr) {
      uv_timer_stop(timer_);
      uv_close(reinterpret_cast<uv_handle_t*>(timer_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer_ = nullptr;
    }
    for (auto& n : nodes_) n->client->stop();
  }

  bool connected() const noexcept {
    if (!complete_) return false;
    return std::all_of(nodes_.begin(), nodes_.end(),
                       [](const auto& n) { return !n->in_map || n->client->connected(); });
  }
  void on_connection(RedisClient::ConnectionListener l) { listener_ = std::move(l); }

  void command(std::vector<std::string> argv, RedisClient::Callback done, Millis timeout_ms,
               std::string_view route_key, WaitReplicas wait) {
    auto call = std::make_shared<Call>();
    call->wait = wait;
    if (!route_key.empty()) {
      call->slot = key_slot(route_key);
    } else if (auto key = routing_key(argv)) {
      call->slot = key_slot(*key);
    }
    call->argv = std::move(argv);
    call->done = std::move(done);
    call->timeout_ms = timeout_ms;
    dispatch(std::move(call));
  }

  ScriptRef register_script(std::string_view name, std::string source) {
    const std::string sha = sha1_hex(source);
    for (std::size_t i = 0; i < scripts_.size(); ++i) {
      if (scripts_[i].sha == sha) return ScriptRef{i};
    }
    // Every node registers the same scripts in the same order: equal ScriptRef indexes.
    for (auto& n : nodes_) n->client->register_script(name, source);
    scripts_.push_back(Script{std::string(name), std::move(source), sha});
    return ScriptRef{scripts_.size() - 1};
  }
  const std::string& script_sha(ScriptRef ref) const { return scripts_.at(ref.index).sha; }

  void eval(ScriptRef script, const ScriptArgs& args, RedisClient::Callback done, Millis timeout_ms,
            WaitReplicas wait) {
    auto call = std::make_shared<Call>();
    call->wait = wait;
    call->script = script;
    if (args.keys() > 0) call->slot = key_slot(args.first_key());
    call->script_args = args;
    call->done = std::move(done);
    call->timeout_ms = timeout_ms;
    dispatch(std::move(call));
  }

  RedisClient::Stats stats() const noexcept {
    RedisClient::Stats s;
    for (const auto& n : nodes_) {
      const auto one = n->client->stats();
      s.connects += one.connects;
      s.disconnects += one.disconnects;
      s.timeouts += one.timeouts;
      s.script_reloads += one.script_reloads;
      s.in_flight += one.in_flight;
    }
    s.redirects = redirects_;
    return s;
  }

 private:
  Node& node_for(const std::string& host, int port) {
    for (auto& n : nodes_) {
      if (n->port == port && n->host == host) return *n;
    }
    auto node = std::make_unique<Node>();
    node->host = host;
    node->port = port;
    RedisClientOptions o = opts_;
    o.endpoint.cluster_seeds.clear();
    o.endpoint.host = host;
    o.endpoint.port = port;
    o.endpoint.db = 0;
    node->client = std::make_unique<RedisClient>(loop_, std::move(o));
    for (const auto& s : scripts_) node->client->register_script(s.name, s.source);
    node->client->on_connection([this](bool up) {
      if (!up) refresh();
      notify();
    });
    nodes_.push_back(std::move(node));
    Node& added = *nodes_.back();
    if (running_) added.client->start();
    return added;
  }

  int index_of(const Node& node) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].get() == &node) return static_cast<int>(i);
    }
    return -1;
  }

  // The slot's primary; for a call without a slot (or a slot not in the map yet), a connected
  // primary, else any node (a wrong one answers MOVED).
  Node* target_of(int slot) {
    if (slot >= 0 && owner_[static_cast<std::size_t>(slot)] >= 0) {
      return nodes_[static_cast<std::size_t>(owner_[static_cast<std::size_t>(slot)])].get();
    }
    Node* any = nullptr;
    for (auto& n : nodes_) {
      if (n->client->connected() && (n->in_map || any == nullptr)) {
        if (n->in_map) return n.get();
        any = n.get();
      }
    }
    return any != nullptr ? any : (nodes_.empty() ? nullptr : nodes_.front().get());
  }

  void dispatch(std::shared_ptr<Call> call, Node* target = nullptr, bool asking = false) {
    if (target == nullptr) target = target_of(call->slot);
    if (!running_ || target == nullptr) {
      auto done = std::move(call->done);
      done(make_error(Errc::unavailable,
                      running_ ? "redis cluster: no node known" : "redis client not started"));
      return;
    }
    if (asking)
      target->client->command(
          {"ASKING"}, [](Result<Reply>) {}, call->timeout_ms);
    auto on_reply = [this, call, target](Result<Reply> r) mutable {
      settle(std::move(call), *target, std::move(r));
    };
    if (call->script) {
      target->client->eval(*call->script, call->script_args, std::move(on_reply), call->timeout_ms);
    } else {
      target->client->command(call->argv, std::move(on_reply), call->timeout_ms);
    }
  }

  void settle(std::shared_ptr<Call> call, Node& from, Result<Reply> r) {
    if (running_ && r.ok() && r->is_error()) {
      if (auto redirect = parse_redirect(r->str)) {
        if (call->redirects < kMaxRedirects) {
          ++call->redirects;
          ++redirects_;
          if (redirect->host.empty()) redirect->host = from.host;
          Node& to = node_for(redirect->host, redirect->port);
          if (!redirect->ask) {
            // The slot lives there now; the rest of the map is read again soon.
            owner_[static_cast<std::size_t>(redirect->slot)] = index_of(to);
            to.in_map = true;
            refresh();
            notify();
          }
          dispatch(std::move(call), &to, redirect->ask);
          return;
        }
        r = make_error(Errc::unavailable,
                       fmt::format("redis cluster: still redirected after {} tries ({})",
                                   kMaxRedirects, r->str));
      }
    }
    if (running_ && !r.ok() && r.error().code == Errc::unavailable) refresh();
    auto done = std::move(call->done);
    if (call->wait.replicas > 0 && r.ok() && !r->is_error()) {
      // The node that ran the write (after an ASK: not the slot's owner in the map) waits.
      const WaitReplicas wait = call->wait;
      from.client->wait_written(
          wait.replicas, wait.timeout_ms,
          [wait, reply = std::move(r.value()), done = std::move(done)](Result<Reply> w) mutable {
            done(replicated(std::move(reply), std::move(w), wait.replicas));
          });
      return;
    }
    done(std::move(r));
  }

  // ---- the slot map --------------------------------------------------------------------------

  // One CLUSTER SLOTS in flight at most, at most one per kMinRefreshGapMs (else the timer does
  // it): a storm of failed calls asks once.
  void refresh() {
    if (!running_) return;
    const std::uint64_t now = uv_now(loop_);
    if (refreshing_ || (last_refresh_ != 0 && now - last_refresh_ < kMinRefreshGapMs)) {
      refresh_wanted_ = true;
      return;
    }
    Node* asked = nullptr;
    for (auto& n : nodes_) {
      if (n->client->connected() && (asked == nullptr || (n->in_map && !asked->in_map))) {
        asked = n.get();
      }
    }
    if (asked == nullptr && !nodes_.empty()) {
      asked = nodes_[probe_++ % nodes_.size()].get();  // none connected: try each in turn
    }
    if (asked == nullptr) return;
    refreshing_ = true;
    refresh_wanted_ = false;
    last_refresh_ = now;
    const std::string host = asked->host;
    asked->client->command(
        {"CLUSTER", "SLOTS"},
        [this, host](Result<Reply> r) {
          refreshing_ = false;
          if (!running_) return;
          if (!r.ok() || r->is_error()) {
            refresh_wanted_ = true;
            log::debug("redis cluster: CLUSTER SLOTS failed",
                       {{"error", r.ok() ? r->str : r.error().detail}});
            return;
          }
          auto ranges = parse_cluster_slots(*r, host);
          if (!ranges) {
            log::warn("redis cluster: unreadable slot map", {{"error", ranges.error().detail}});
            return;
          }
          apply_map(ranges.value());
        },
        kRefreshTimeoutMs);
  }

  void apply_map(const std::vector<SlotRange>& ranges) {
    std::vector<int> owner(kClusterSlots, -1);
    for (const auto& range : ranges) {
      const int index = index_of(node_for(range.host, range.port));
      std::fill(owner.begin() + range.first, owner.begin() + range.last + 1, index);
    }
    const bool complete = std::find(owner.begin(), owner.end(), -1) == owner.end();
    std::set<int> primaries(owner.begin(), owner.end());
    primaries.erase(-1);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      nodes_[i]->in_map = primaries.count(static_cast<int>(i)) != 0;
    }
    if (owner != owner_ || complete != complete_) {
      log::info(
          "redis cluster slot map",
          {{"primaries", static_cast<std::int64_t>(primaries.size())}, {"complete", complete}});
    }
    owner_ = std::move(owner);
    complete_ = complete;
    if (complete && !partitions_checked_) {
      partitions_checked_ = true;
      check_partitions(primaries.size());
    }
    notify();
  }

  // The saga keyspace's partitions {0}..{P-1} should land on every shard.
  void check_partitions(std::size_t primaries) {
    if (opts_.partitions <= 0) return;
    std::set<int> used;
    for (int p = 0; p < opts_.partitions; ++p) {
      used.insert(owner_[static_cast<std::size_t>(key_slot(std::to_string(p)))]);
    }
    if (used.size() < primaries) {
      log::warn(
          "redis cluster: the saga partitions map to fewer shards than the cluster has; "
          "raise SAGAFLOW_REDIS_PARTITIONS (at least 4 x the shards) while no saga is live",
          {{"partitions", opts_.partitions},
           {"shards_used", static_cast<std::int64_t>(used.size())},
           {"primaries", static_cast<std::int64_t>(primaries)}});
    }
  }

  void notify() {
    if (!running_) return;
    const bool now = connected();
    if (now == reported_) return;
    reported_ = now;
    if (listener_) listener_(now);
  }

  static void on_tick(uv_timer_t* timer) {
    auto* self = static_cast<Impl*>(timer->data);
    ++self->ticks_;
    if (self->refresh_wanted_ || !self->connected() || self->ticks_ % kHealthyTicks == 0) {
      self->refresh();
    }
  }

  uv_loop_t* loop_;
  RedisClientOptions opts_;
  std::vector<std::unique_ptr<Node>> nodes_;  // never removed before the client is destroyed
  std::vector<int> owner_;                    // slot -> index in nodes_, -1: unknown
  std::vector<Script> scripts_;
  RedisClient::ConnectionListener listener_;
  uv_timer_t* timer_ = nullptr;
  bool running_ = false;
  bool complete_ = false;
  bool reported_ = false;
  bool refreshing_ = false;
  bool refresh_wanted_ = false;
  bool partitions_checked_ = false;
  std::uint64_t last_refresh_ = 0;
  std::uint64_t ticks_ = 0;
  std::uint64_t redirects_ = 0;
  std::size_t probe_ = 0;
};

ClusterClient::ClusterClient(uv_loop_s* loop, RedisClientOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(options))) {}
ClusterClient::~ClusterClient() = default;
void ClusterClient::start() {
  impl_->start();
}
void ClusterClient::stop() noexcept {
  impl_->stop();
}
bool ClusterClient::connected() const noexcept {
  return impl_->connected();
}
void ClusterClient::on_connection(RedisClient::ConnectionListener listener) {
  impl_->on_connection(std::move(listener));
}
void ClusterClient::command(std::vector<std::string> argv, RedisClient::Callback done,
                            Millis timeout_ms, std::string_view route_key, WaitReplicas wait) {
  impl_->command(std::move(argv), std::move(done), timeout_ms, route_key, wait);
}
ScriptRef ClusterClient::register_script(std::string_view name, std::string source) {
  return impl_->register_script(name, std::move(source));
}
const std::string& ClusterClient::script_sha(ScriptRef script) const {
  return impl_->script_sha(script);
}
void ClusterClient::eval(ScriptRef script, const ScriptArgs& args, RedisClient::Callback done,
                         Millis timeout_ms, WaitReplicas wait) {
  impl_->eval(script, args, std::move(done), timeout_ms, wait);
}
RedisClient::Stats ClusterClient::stats() const noexcept {
  return impl_->stats();
}

}  // namespace sagaflow::store::impl

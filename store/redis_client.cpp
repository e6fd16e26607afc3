#include "store/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <random>
#include <utility>

#include <fmt/format.h>

#include "core/log.hpp"
#include "store/impl/cluster_client.hpp"
#include "store/impl/replicated.hpp"
#include "store/impl/sha1.hpp"
#include "store/impl/uv_adapter.hpp"

namespace sagaflow::store {
namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::nil;
      break;
  }
  return out;
}

// Error replies that say "not now" rather than "never": the caller retries later.
bool transient_error_reply(std::string_view msg) noexcept {
  for (std::string_view prefix :
       {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "OOM"}) {
    if (msg.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

struct TimerBox {
  uv_timer_t handle;
};

}  // namespace

class RedisClient::Impl {
 public:
  Impl(uv_loop_t* loop, RedisClientOptions options)
      : loop_(loop), opts_(std::move(options)), rng_(std::random_device{}()) {
    if (opts_.command_timeout_ms <= 0) opts_.command_timeout_ms = 2000;
    if (opts_.connect_timeout_ms <= 0) opts_.connect_timeout_ms = opts_.command_timeout_ms;
    if (opts_.backoff_min_ms <= 0) opts_.backoff_min_ms = 1;
    if (opts_.backoff_max_ms < opts_.backoff_min_ms) opts_.backoff_max_ms = opts_.backoff_min_ms;
  }
  ~Impl() { stop(); }

  void start() {
    if (state_ != State::stopped) return;
    deadline_timer_ = make_timer();
    reconnect_timer_ = make_timer();
    defer_timer_ = make_timer();
    heartbeat_timer_ = make_timer();
    state_ = State::backoff;
    ever_connected_ = false;
    failures_ = 0;
    if (opts_.heartbeat_ms > 0) {
      const auto hb = static_cast<std::uint64_t>(opts_.heartbeat_ms);
      uv_timer_start(&heartbeat_timer_->handle, &Impl::on_heartbeat_timer, hb, hb);
    }
    connect();
  }

  void stop() noexcept {
    if (state_ == State::stopped) return;
    state_ = State::stopped;
    drop(Errc::unavailable, "redis client stopped", /*reconnect=*/false, /*notify=*/false);
    for (TimerBox** t : {&deadline_timer_, &reconnect_timer_, &defer_timer_, &heartbeat_timer_}) {
      if (*t == nullptr) continue;
      uv_timer_stop(&(*t)->handle);
      uv_close(reinterpret_cast<uv_handle_t*>(&(*t)->handle),
               [](uv_handle_t* h) { delete reinterpret_cast<TimerBox*>(h); });
      *t = nullptr;
    }
    flush_failures();
  }

  bool connected() const noexcept { return state_ == State::ready; }
  void on_connection(ConnectionListener l) { listener_ = std::move(l); }

  void command(const std::vector<std::string>& argv, Callback done, Millis timeout_ms) {
    send(argv, std::move(done), timeout_ms);
  }

  ScriptRef register_script(std::string_view name, std::string source) {
    Script s;
    s.name = std::string(name);
    s.sha = impl::sha1_hex(source);
    for (std::size_t i = 0; i < scripts_.size(); ++i) {
      if (scripts_[i].sha == s.sha) return ScriptRef{i};
    }
    s.source = std::move(source);
    scripts_.push_back(std::move(s));
    if (state_ == State::ready || state_ == State::connecting) {
      load_script(scripts_.back(), opts_.connect_timeout_ms, true);
    }
    return ScriptRef{scripts_.size() - 1};
  }
  const std::string& script_sha(ScriptRef ref) const { return scripts_.at(ref.index).sha; }

  void eval(ScriptRef ref, const ScriptArgs& args, Callback done, Millis timeout_ms) {
    auto call = std::make_shared<EvalCall>();
    call->script = ref.index;
    call->timeout_ms = timeout_ms;
    call->done = std::move(done);
    call->command = args.command(scripts_.at(ref.index).sha);
    send_eval(std::move(call));
  }

  // At most one WAIT in flight on this connection; a call made while one is out joins the next,
  // which is sent when the current one answers (it covers every write answered before it).
  void wait_written(int replicas, Millis timeout_ms, Callback done) {
    if (wait_in_flight_) {
      wait_next_.push_back(std::move(done));
      wait_next_replicas_ = std::max(wait_next_replicas_, replicas);
      return;
    }
    std::vector<Callback> waiters;
    waiters.push_back(std::move(done));
    send_wait(replicas, timeout_ms, std::move(waiters));
  }

  RedisClient::Stats stats() const noexcept {
    RedisClient::Stats s = stats_;
    s.in_flight = pending_.size();
    return s;
  }

 private:
  enum class State : std::uint8_t { stopped, backoff, connecting, ready };

  struct Pending {
    std::uint64_t id = 0;
    std::uint64_t deadline = 0;  // uv_now() ms
    Callback done;
  };
  struct Script {
    std::string name;
    std::string source;
    std::string sha;
    std::uint64_t load_id = 0;  // call id of the last SCRIPT LOAD sent for it (0: none)
  };
  struct EvalCall {
    std::size_t script = 0;
    std::string command;  // EVALSHA ..., in RESP (kept for a re-send after NOSCRIPT)
    Callback done;
    Millis timeout_ms = 0;
    std::uint64_t sent_id = 0;  // call id of the EVALSHA in flight
    bool reloaded = false;
  };

  TimerBox* make_timer() {
    auto* t = new TimerBox{};
    uv_timer_init(loop_, &t->handle);
    t->handle.data = this;
    return t;
  }

  // ---- sending -------------------------------------------------------------------------------

  // Returns the call id (ids grow across connections), or 0 when the call failed at once.
  std::uint64_t send(const std::vector<std::string>& argv, Callback done, Millis timeout_ms,
                     bool internal = false) {
    return send_with(std::move(done), timeout_ms, internal, [&](std::uint64_t id) {
      argv_ptrs_.clear();
      argv_lens_.clear();
      for (const auto& a : argv) {
        argv_ptrs_.push_back(a.data());
        argv_lens_.push_back(a.size());
      }
      return redisAsyncCommandArgv(ctx_, &Impl::on_reply, reinterpret_cast<void*>(id),
                                   static_cast<int>(argv.size()), argv_ptrs_.data(),
                                   argv_lens_.data());
    });
  }
  // A command already in RESP.
  std::uint64_t send_formatted(const std::string& command, Callback done, Millis timeout_ms) {
    return send_with(std::move(done), timeout_ms, false, [&](std::uint64_t id) {
      return redisAsyncFormattedCommand(ctx_, &Impl::on_reply, reinterpret_cast<void*>(id),
                                        command.data(), command.size());
    });
  }

  template <class Issue>
  std::uint64_t send_with(Callback done, Millis timeout_ms, bool internal, Issue&& issue) {
    const bool accepting =
        state_ == State::ready || (state_ == State::connecting && (internal || !ever_connected_));
    if (!accepting || ctx_ == nullptr) {
      fail_later(std::move(done), Errc::unavailable,
                 state_ == State::stopped ? "redis client not started" : "redis not connected");
      return 0;
    }
    if (pending_.size() >= opts_.max_in_flight) {
      fail_later(std::move(done), Errc::unavailable, "redis client: too many calls in flight");
      return 0;
    }
    const std::uint64_t id = next_id_++;
    if (issue(id) != REDIS_OK) {
      fail_later(std::move(done), Errc::unavailable, "redis connection is closing");
      return 0;
    }
    const Millis t = timeout_ms > 0 ? timeout_ms : opts_.command_timeout_ms;
    const std::uint64_t deadline = uv_now(loop_) + static_cast<std::uint64_t>(t);
    pending_.push_back(Pending{id, deadline, std::move(done)});
    if (deadline < armed_deadline_) arm_deadline(deadline);
    return id;
  }

  // SCRIPT LOAD on the current connection; later EVALSHAs on it queue behind it.
  void load_script(Script& s, Millis timeout_ms, bool internal) {
    const std::uint64_t id = send(
        {"SCRIPT", "LOAD", s.source}, [](Result<Reply>) {}, timeout_ms, internal);
    if (id != 0) s.load_id = id;
  }

  void send_eval(std::shared_ptr<EvalCall> call) {
    const Millis timeout = call->timeout_ms;
    const auto& command = call->command;
    EvalCall* raw = call.get();
    raw->sent_id = send_formatted(
        command,
        [this, call](Result<Reply> r) mutable {
          if (r.ok() && r->is_error() && r->str.rfind("NOSCRIPT", 0) == 0 && !call->reloaded &&
              state_ == State::ready) {
            // The server lost its script cache (SCRIPT FLUSH, failover): load the script
            // (once, unless a load already went out after this call) and run it again; both
            // go out on the same connection, in order.
            call->reloaded = true;
            Script& s = scripts_.at(call->script);
            if (s.load_id < call->sent_id) {
              ++stats_.script_reloads;
              log::warn("redis script reloaded", {{"script", s.name}});
              load_script(s, call->timeout_ms, false);
            }
            send_eval(std::move(call));
            return;
          }
          auto done = std::move(call->done);
          done(std::move(r));
        },
        timeout);
  }

  void send_wait(int replicas, Millis timeout_ms, std::vector<Callback> waiters) {
    wait_in_flight_ = true;
    auto current = std::make_shared<std::vector<Callback>>(std::move(waiters));
    send(
        {"WAIT", std::to_string(replicas), std::to_string(timeout_ms)},
        [this, current, timeout_ms](Result<Reply> r) {
          wait_in_flight_ = false;
          std::vector<Callback> next = std::move(wait_next_);
          wait_next_.clear();
          const int next_replicas = wait_next_replicas_;
          wait_next_replicas_ = 0;
          if (!next.empty()) {
            if (state_ == State::stopped) {
              for (auto& cb : next) cb(make_error(Errc::unavailable, "redis client stopped"));
            } else {
              send_wait(next_replicas, timeout_ms, std::move(next));
            }
          }
          for (auto& cb : *current) cb(r);
        },
        timeout_ms + opts_.command_timeout_ms);
  }

  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
    auto* self = static_cast<Impl*>(ac->data);
    if (self == nullptr || ac != self->ctx_ || reply == nullptr) return;  // a dropped connection
    const auto id = reinterpret_cast<std::uint64_t>(privdata);
    if (self->pending_.empty() || self->pending_.front().id != id) return;
    Callback done = std::move(self->pending_.front().done);
    self->pending_.pop_front();
    self->last_reply_ = uv_now(self->loop_);
    const auto* r = static_cast<const redisReply*>(reply);
    if (r->type == REDIS_REPLY_ERROR && transient_error_reply(std::string_view(r->str, r->len))) {
      done(make_error(Errc::unavailable,
                      fmt::format("redis: {}", std::string_view(r->str, r->len))));
      return;
    }
    done(convert(r));
  }

  // ---- connection ----------------------------------------------------------------------------

  void connect() {
    if (state_ == State::stopped) return;
    const auto& ep = opts_.endpoint;
    log::debug("redis connecting", {{"host", ep.host}, {"port", ep.port}});
    redisAsyncContext* ac = redisAsyncConnect(ep.host.c_str(), ep.port);
    if (ac == nullptr) {
      connect_failed("out of memory");
      return;
    }
    if (ac->err != 0) {
      std::string why = ac->errstr;
      redisAsyncFree(ac);
      connect_failed(why);
      return;
    }
    if (impl::attach_uv(ac, loop_) != REDIS_OK) {
      redisAsyncFree(ac);
      connect_failed("cannot attach to the event loop");
      return;
    }
    ac->data = this;
    redisAsyncSetConnectCallback(ac, &Impl::on_connect);
    redisAsyncSetDisconnectCallback(ac, &Impl::on_disconnect);
    ctx_ = ac;
    state_ = State::connecting;
    const std::uint64_t gen = ++conn_gen_;

    // Handshake, pipelined behind the TCP connect: AUTH, SELECT, name, then PING = ready.
    const Millis t = opts_.connect_timeout_ms;
    // A failed step drops this connection (not a later one: failures arrive deferred).
    auto must_ok = [this, gen](std::string what) {
      return [this, gen, what = std::move(what)](Result<Reply> r) {
        if (r.ok() && !r->is_error()) return;
        if (gen != conn_gen_ || state_ != State::connecting || ctx_ == nullptr) return;
        const std::string why = r.ok() ? r->str : r.error().detail;
        log::error("redis handshake failed", {{"step", what}, {"error", why}});
        drop(Errc::unavailable, fmt::format("redis {}: {}", what, why), true, true);
      };
    };
    if (!ep.password.empty()) send({"AUTH", ep.password}, must_ok("AUTH"), t, true);
    if (ep.db != 0) send({"SELECT", std::to_string(ep.db)}, must_ok("SELECT"), t, true);
    if (!opts_.name.empty())
      send(
          {"CLIENT", "SETNAME", opts_.name}, [](Result<Reply>) {}, t, true);
    for (auto& s : scripts_) load_script(s, t, true);  // a restarted server has none
    send(
        {"PING"},
        [this, gen, fail = must_ok("PING")](Result<Reply> r) {
          if (!r.ok() || r->is_error()) {
            fail(std::move(r));
            return;
          }
          if (gen != conn_gen_ || state_ != State::connecting) return;
          state_ = State::ready;
          ever_connected_ = true;
          failures_ = 0;
          ++stats_.connects;
          log::info("redis connected",
                    {{"host", opts_.endpoint.host}, {"port", opts_.endpoint.port}});
          if (listener_) listener_(true);
        },
        t, true);
  }

  void connect_failed(const std::string& why) {
    if (failures_ < 3 || failures_ % 30 == 0) {
      log::warn("redis connect failed", {{"error", why}, {"attempt", failures_ + 1}});
    }
    schedule_reconnect();
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<Impl*>(ac->data);
    log::debug("redis connect callback", {{"status", status}, {"error", ac->errstr}});
    if (self == nullptr || ac != self->ctx_ || status == REDIS_OK) return;
    // hiredis frees the context itself after this callback.
    self->ctx_ = nullptr;
    const std::string why = ac->errstr;
    self->lost(Errc::unavailable, fmt::format("redis connect: {}", why));
  }

  static void on_disconnect(const redisAsyncContext* ac, int /*status*/) {
    auto* self = static_cast<Impl*>(ac->data);
    if (self == nullptr || ac != self->ctx_) return;  // we dropped it ourselves
    // hiredis is freeing the context.
    self->ctx_ = nullptr;
    const std::string why = ac->errstr[0] != '\0' ? ac->errstr : "closed by server";
    self->lost(Errc::unavailable, fmt::format("redis connection lost: {}", why));
  }

  // The connection is gone (ctx_ already cleared): fail its calls, tell, reconnect.
  void lost(Errc code, const std::string& why) {
    log::debug("redis connection gone", {{"error", why}});
    const bool was_ready = state_ == State::ready;
    if (state_ != State::stopped) state_ = State::backoff;
    fail_pending(code, why);
    if (was_ready) {
      ++stats_.disconnects;
      log::warn("redis disconnected", {{"error", why}});
    } else if (failures_ < 3 || failures_ % 30 == 0) {  // not one line per attempt
      log::warn("redis connect failed", {{"error", why}, {"attempt", failures_ + 1}});
    }
    schedule_reconnect();
    if (was_ready && listener_) listener_(false);
  }

  // Drop our own connection: fail everything in flight with `code` and free the context.
  void drop(Errc code, const std::string& why, bool reconnect, bool notify) {
    redisAsyncContext* ac = ctx_;
    const bool was_ready = state_ == State::ready;
    if (state_ != State::stopped) state_ = State::backoff;
    ctx_ = nullptr;
    fail_pending(code, why);
    if (ac != nullptr) redisAsyncFree(ac);  // deferred by hiredis when inside its callback
    if (was_ready) {
      ++stats_.disconnects;
      log::warn("redis disconnected", {{"error", why}});
    }
    if (reconnect) schedule_reconnect();
    if (was_ready && notify && listener_) listener_(false);
  }

  void schedule_reconnect() {
    if (state_ == State::stopped || reconnect_timer_ == nullptr) return;
    // Exponential backoff with jitter in [d/2, d].
    Millis d = opts_.backoff_min_ms;
    for (int i = 0; i < failures_ && d < opts_.backoff_max_ms; ++i) d *= 2;
    d = std::min(d, opts_.backoff_max_ms);
    ++failures_;
    std::uniform_int_distribution<Millis> jitter(d / 2, d);
    const auto delay = static_cast<std::uint64_t>(std::max<Millis>(1, jitter(rng_)));
    log::debug("redis reconnect scheduled", {{"delay_ms", static_cast<std::int64_t>(delay)}});
    uv_timer_start(&reconnect_timer_->handle, &Impl::on_reconnect_timer, delay, 0);
  }

  static void on_reconnect_timer(uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    if (self->state_ == State::backoff && self->ctx_ == nullptr) self->connect();
  }

  // ---- timeouts ------------------------------------------------------------------------------

  void arm_deadline(std::uint64_t deadline) {
    if (deadline_timer_ == nullptr) return;
    const std::uint64_t now = uv_now(loop_);
    armed_deadline_ = deadline;
    uv_timer_start(&deadline_timer_->handle, &Impl::on_deadline_timer,
                   deadline > now ? deadline - now : 0, 0);
  }

  static void on_deadline_timer(uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    self->armed_deadline_ = UINT64_MAX;
    if (self->pending_.empty()) return;
    const std::uint64_t now = uv_now(self->loop_);
    std::uint64_t earliest = UINT64_MAX;
    for (const auto& p : self->pending_) earliest = std::min(earliest, p.deadline);
    if (earliest <= now) {
      // Replies come in order: nothing behind an overdue call can arrive either. The server is
      // frozen, overloaded or unreachable: drop the connection and start over.
      ++self->stats_.timeouts;
      self->drop(Errc::timeout, "redis: no reply in time", true, true);
      return;
    }
    self->arm_deadline(earliest);
  }

  static void on_heartbeat_timer(uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    if (self->state_ != State::ready || !self->pending_.empty()) return;
    const std::uint64_t now = uv_now(self->loop_);
    if (now - self->last_reply_ < static_cast<std::uint64_t>(self->opts_.heartbeat_ms)) return;
    self->send(
        {"PING"}, [](Result<Reply>) {}, 0, true);
  }

  // ---- failures ------------------------------------------------------------------------------

  void fail_pending(Errc code, const std::string& why) {
    if (pending_.empty()) return;
    std::deque<Pending> gone;
    gone.swap(pending_);
    for (auto& p : gone) failed_.emplace_back(std::move(p.done), Error{code, why});
    if (deadline_timer_ != nullptr) uv_timer_stop(&deadline_timer_->handle);
    armed_deadline_ = UINT64_MAX;
    schedule_flush();
  }

  void fail_later(Callback done, Errc code, std::string why) {
    if (defer_timer_ == nullptr) {  // not started, or stopped: no loop handle to defer with
      if (done) done(Error{code, std::move(why)});
      return;
    }
    failed_.emplace_back(std::move(done), Error{code, std::move(why)});
    schedule_flush();
  }

  void schedule_flush() {
    if (defer_timer_ == nullptr) return;  // stopped: stop() flushes synchronously
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&defer_timer_->handle))) {
      uv_timer_start(
          &defer_timer_->handle,
          [](uv_timer_t* t) { static_cast<Impl*>(t->data)->flush_failures(); }, 0, 0);
    }
  }

  void flush_failures() noexcept {
    while (!failed_.empty()) {
      std::vector<std::pair<Callback, Error>> batch;
      batch.swap(failed_);
      for (auto& [done, err] : batch) {
        if (done) done(std::move(err));
      }
    }
  }

  uv_loop_t* loop_;
  RedisClientOptions opts_;
  redisAsyncContext* ctx_ = nullptr;
  State state_ = State::stopped;
  bool ever_connected_ = false;
  int failures_ = 0;
  std::deque<Pending> pending_;
  std::vector<std::pair<Callback, Error>> failed_;
  std::uint64_t next_id_ = 1;
  std::uint64_t conn_gen_ = 0;
  std::uint64_t armed_deadline_ = UINT64_MAX;
  std::uint64_t last_reply_ = 0;
  TimerBox* deadline_timer_ = nullptr;
  TimerBox* reconnect_timer_ = nullptr;
  TimerBox* defer_timer_ = nullptr;
  TimerBox* heartbeat_timer_ = nullptr;
  std::vector<Script> scripts_;
  ConnectionListener listener_;
  std::mt19937_64 rng_;
  RedisClient::Stats stats_;
  std::vector<const char*> argv_ptrs_;
  std::vector<std::size_t> argv_lens_;
  bool wait_in_flight_ = false;
  std::vector<Callback> wait_next_;
  int wait_next_replicas_ = 0;
};

RedisClient::RedisClient(uv_loop_s* loop, RedisClientOptions options) : loop_(loop) {
  if (options.endpoint.cluster()) {
    cluster_ = std::make_unique<impl::ClusterClient>(loop, std::move(options));
  } else {
    impl_ = std::make_unique<Impl>(loop, std::move(options));
  }
}
RedisClient::~RedisClient() = default;
void RedisClient::start() {
  if (cluster_) return cluster_->start();
  impl_->start();
}
void RedisClient::stop() noexcept {
  if (cluster_) return cluster_->stop();
  impl_->stop();
}
bool RedisClient::connected() const noexcept {
  return cluster_ ? cluster_->connected() : impl_->connected();
}
void RedisClient::on_connection(ConnectionListener listener) {
  if (cluster_) return cluster_->on_connection(std::move(listener));
  impl_->on_connection(std::move(listener));
}
void RedisClient::command(std::vector<std::string> argv, Callback done, Millis timeout_ms) {
  if (cluster_) return cluster_->command(std::move(argv), std::move(done), timeout_ms, {});
  impl_->command(argv, std::move(done), timeout_ms);
}
void RedisClient::command_replicated(std::vector<std::string> argv, WaitReplicas wait,
                                     Callback done, Millis timeout_ms) {
  if (cluster_) {
    return cluster_->command(std::move(argv), std::move(done), timeout_ms, {}, wait);
  }
  impl_->command(argv, then_wait(wait, std::move(done)), timeout_ms);
}
void RedisClient::wait_written(int replicas, Millis timeout_ms, Callback done) {
  if (cluster_) {
    return done(make_error(Errc::internal, "wait_written: not on a cluster (use *_replicated)"));
  }
  impl_->wait_written(replicas, timeout_ms, std::move(done));
}
RedisClient::Callback RedisClient::then_wait(WaitReplicas wait, Callback done) {
  return [this, wait, done = std::move(done)](Result<Reply> r) mutable {
    if (!r.ok() || r->is_error()) return done(std::move(r));
    impl_->wait_written(
        wait.replicas, wait.timeout_ms,
        [wait, reply = std::move(r.value()), done = std::move(done)](Result<Reply> w) mutable {
          done(impl::replicated(std::move(reply), std::move(w), wait.replicas));
        });
  };
}
ScriptRef RedisClient::register_script(std::string_view name, std::string source) {
  if (cluster_) return cluster_->register_script(name, std::move(source));
  return impl_->register_script(name, std::move(source));
}
const std::string& RedisClient::script_sha(ScriptRef script) const {
  return cluster_ ? cluster_->script_sha(script) : impl_->script_sha(script);
}
namespace {
ScriptArgs script_args(std::vector<std::string> keys, std::vector<std::string> args) {
  ScriptArgs out;
  for (const auto& k : keys) out.key(k);
  for (const auto& a : args) out.arg(a);
  return out;
}
}  // namespace

void RedisClient::eval(ScriptRef script, std::vector<std::string> keys,
                       std::vector<std::string> args, Callback done, Millis timeout_ms) {
  eval(script, script_args(std::move(keys), std::move(args)), std::move(done), timeout_ms);
}
void RedisClient::eval(ScriptRef script, const ScriptArgs& args, Callback done, Millis timeout_ms) {
  if (cluster_) return cluster_->eval(script, args, std::move(done), timeout_ms);
  impl_->eval(script, args, std::move(done), timeout_ms);
}
void RedisClient::eval_replicated(ScriptRef script, std::vector<std::string> keys,
                                  std::vector<std::string> args, WaitReplicas wait, Callback done,
                                  Millis timeout_ms) {
  eval_replicated(script, script_args(std::move(keys), std::move(args)), wait, std::move(done),
                  timeout_ms);
}
void RedisClient::eval_replicated(ScriptRef script, const ScriptArgs& args, WaitReplicas wait,
                                  Callback done, Millis timeout_ms) {
  if (cluster_) return cluster_->eval(script, args, std::move(done), timeout_ms, wait);
  impl_->eval(script, args, then_wait(wait, std::move(done)), timeout_ms);
}

// ---- ScriptArgs ---------------------------------------------------------------------------

namespace {
void append_bulk(std::string& out, std::string_view s) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, s.size()).ptr;
  out += '$';
  out.append(digits, end);
  out += "\r\n";
  out.append(s);
  out += "\r\n";
}
}  // namespace

ScriptArgs::ScriptArgs(ScriptArgs&& other) noexcept
    : keys_(std::move(other.keys_)),
      args_(std::move(other.args_)),
      n_keys_(std::exchange(other.n_keys_, 0)),
      n_args_(std::exchange(other.n_args_, 0)) {
  other.keys_.clear();
  other.args_.clear();
}
ScriptArgs& ScriptArgs::operator=(ScriptArgs&& other) noexcept {
  keys_ = std::move(other.keys_);
  args_ = std::move(other.args_);
  n_keys_ = std::exchange(other.n_keys_, 0);
  n_args_ = std::exchange(other.n_args_, 0);
  other.keys_.clear();
  other.args_.clear();
  return *this;
}

void ScriptArgs::key(std::string_view k) {
  append_bulk(keys_, k);
  ++n_keys_;
}
void ScriptArgs::key(std::initializer_list<std::string_view> parts) {
  std::size_t size = 0;
  for (const std::string_view part : parts) size += part.size();
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, size).ptr;
  keys_ += '$';
  keys_.append(digits, end);
  keys_ += "\r\n";
  for (const std::string_view part : parts) keys_.append(part);
  keys_ += "\r\n";
  ++n_keys_;
}
void ScriptArgs::arg(std::string_view a) {
  append_bulk(args_, a);
  ++n_args_;
}
void ScriptArgs::arg(std::int64_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  arg(std::string_view(digits, static_cast<std::size_t>(end - digits)));
}
void ScriptArgs::raw_keys(std::string_view resp, std::size_t count) {
  keys_.append(resp);
  n_keys_ += count;
}
std::string_view ScriptArgs::first_key() const noexcept {
  // "$<n>\r\n<key>\r\n..."
  const std::size_t crlf = keys_.find("\r\n");
  if (n_keys_ == 0 || crlf == std::string::npos) return {};
  std::size_t n = 0;
  std::from_chars(keys_.data() + 1, keys_.data() + crlf, n);
  return std::string_view(keys_).substr(crlf + 2, n);
}
void ScriptArgs::raw_args(std::string_view resp, std::size_t count) {
  args_.append(resp);
  n_args_ += count;
}
void ScriptArgs::clear() noexcept {
  keys_.clear();
  args_.clear();
  n_keys_ = 0;
  n_args_ = 0;
}
void ScriptArgs::reserve(std::size_t key_bytes, std::size_t arg_bytes) {
  keys_.reserve(key_bytes);
  args_.reserve(arg_bytes);
}
std::string ScriptArgs::command(std::string_view sha) const {
  char items[24];
  const auto items_end = std::to_chars(items, items + sizeof items, 3 + n_keys_ + n_args_).ptr;
  char numkeys[24];
  const auto numkeys_end = std::to_chars(numkeys, numkeys + sizeof numkeys, n_keys_).ptr;
  std::string out;
  out.reserve(48 + sha.size() + keys_.size() + args_.size());
  out += '*';
  out.append(items, items_end);
  out += "\r\n$7\r\nEVALSHA\r\n";
  append_bulk(out, sha);
  append_bulk(out, std::string_view(numkeys, static_cast<std::size_t>(numkeys_end - numkeys)));
  out += keys_;
  out += args_;
  return out;
}

RedisClient::Stats RedisClient::stats() const noexcept {
  return cluster_ ? cluster_->stats() : impl_->stats();
}

}  // namespace sagaflow::store

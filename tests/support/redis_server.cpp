// RedisServer: /usr/bin/redis-server on a free loopback port, its own dir, stopped by pid.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "support/impl/child.hpp"
#include "support/servers.hpp"

namespace sagaflow::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kReadyTimeout = seconds(10);
constexpr auto kStopGrace = seconds(10);
constexpr int kStartAttempts = 3;  // a port taken between free_port() and bind: try another

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval to_timeval(milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

// Connected context, or an error message.
Context connect(int port, milliseconds connect_timeout, milliseconds io_timeout,
                std::string& error) {
  Context c(redisConnectWithTimeout("127.0.0.1", port, to_timeval(connect_timeout)));
  if (!c || c->err != 0) {
    error = c ? c->errstr : "cannot allocate redisContext";
    return nullptr;
  }
  redisSetTimeout(c.get(), to_timeval(io_timeout));
  return c;
}

void append_reply(const redisReply* r, std::string& out) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.append(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out += "(error) ";
      out.append(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out += std::to_string(r->integer);
      break;
    case REDIS_REPLY_NIL:
      out += "(nil)";
      break;
    case REDIS_REPLY_ARRAY:
      for (std::size_t i = 0; i < r->elements; ++i) {
        if (i > 0) out += '\n';
        append_reply(r->element[i], out);
      }
      break;
    default:
      out += "(unknown reply type " + std::to_string(r->type) + ")";
  }
}

}  // namespace

RedisServer::RedisServer(RedisOptions options)
    : options_(options), dir_(impl::make_temp_dir("sagaflow-redis-")) {
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    try {
      launch();
      wait_ready();
      return;
    } catch (const std::exception&) {
      if (pid_ != 0) impl::stop_group(pid_, SIGKILL, milliseconds(0));
      pid_ = 0;
      if (attempt == kStartAttempts) {
        impl::remove_tree(dir_);
        throw;
      }
    }
  }
}

RedisServer::~RedisServer() {
  if (pid_ != 0) impl::stop_group(pid_, SIGTERM, kStopGrace);
  impl::remove_tree(dir_);
}

int RedisServer::port() const {
  return port_;
}

std::string RedisServer::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_) + "/0";
}

pid_t RedisServer::pid() const {
  return pid_;
}

void RedisServer::launch() {
  const std::string log = dir_ + "/redis.log";
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  impl::SpawnOptions spawn;
  spawn.argv = {"/usr/bin/redis-server",
                "--port",
                std::to_string(port_),
                "--bind",
                "127.0.0.1",
                "--dir",
                dir_,
                "--daemonize",
                "no",
                "--save",
                "",
                "--appendonly",
                options_.appendonly ? "yes" : "no",
                "--logfile",
                "",  // "" = stdout, which goes to redis.log
                "--databases",
                "16"};
  spawn.stdout_fd = log_fd;
  spawn.stderr_fd = log_fd;
  spawn.die_with_parent = true;
  try {
    pid_ = impl::spawn(spawn);
  } catch (...) {
    ::close(log_fd);
    throw;
  }
  ::close(log_fd);
  paused_ = false;
}

void RedisServer::wait_ready() {
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto code = impl::wait_exit(pid_, milliseconds(0))) {
      pid_ = 0;
      throw std::runtime_error("redis-server on port " + std::to_string(port_) + " exited with " +
                               std::to_string(*code) + ": " + impl::file_tail(dir_ + "/redis.log"));
    }
    if (Context c = connect(port_, milliseconds(200), milliseconds(500), last)) {
      Reply r(static_cast<redisReply*>(redisCommand(c.get(), "PING")));
      if (r && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG") return;
      last = r ? std::string(r->str != nullptr ? r->str : "", r->len) : c->errstr;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  throw std::runtime_error("redis-server on port " + std::to_string(port_) +
                           " not ready after 10 s (" + last +
                           "): " + impl::file_tail(dir_ + "/redis.log"));
}

void RedisServer::pause() {
  if (pid_ == 0) throw std::runtime_error("RedisServer::pause: not running");
  ::kill(pid_, SIGSTOP);
  paused_ = true;
}

void RedisServer::resume() {
  if (pid_ == 0) throw std::runtime_error("RedisServer::resume: not running");
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

void RedisServer::stop() {
  if (pid_ == 0) return;
  impl::stop_group(pid_, SIGTERM, kStopGrace);
  pid_ = 0;
  paused_ = false;
}

void RedisServer::start() {
  if (pid_ != 0) return;
  launch();
  try {
    wait_ready();
  } catch (...) {
    if (pid_ != 0) impl::stop_group(pid_, SIGKILL, milliseconds(0));
    pid_ = 0;
    throw;
  }
}

void RedisServer::restart() {
  stop();
  start();
}

std::string RedisServer::command(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::runtime_error("RedisServer::command: empty argv");
  std::string error;
  Context c = connect(port_, seconds(2), seconds(5), error);
  if (!c)
    throw std::runtime_error("redis connect 127.0.0.1:" + std::to_string(port_) + ": " + error);
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  Reply r(static_cast<redisReply*>(
      redisCommandArgv(c.get(), static_cast<int>(args.size()), args.data(), lens.data())));
  if (!r) throw std::runtime_error("redis " + argv[0] + ": " + c->errstr);
  std::string out;
  append_reply(r.get(), out);
  return out;
}

// A function-local static: started on first use (thread-safe), stopped by its destructor at
// process exit. If the process dies without running it, PR_SET_PDEATHSIG kills the server.
RedisServer& shared_redis() {
  static RedisServer server;
  return server;
}

}  // namespace sagaflow::testing

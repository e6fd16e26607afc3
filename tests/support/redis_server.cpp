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
    // The bus port must be free too: the default, port + 10000, may collide with another pick.
    if (options_.cluster) cluster_port_ = free_port();
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
  if (options_.cluster) {
    for (std::string arg :
         {std::string("--cluster-enabled"), std::string("yes"), std::string("--cluster-port"),
          std::to_string(cluster_port_), std::string("--cluster-config-file"), dir_ + "/nodes.conf",
          std::string("--cluster-node-timeout"),
          std::to_string(options_.cluster_node_timeout_ms)}) {
      spawn.argv.push_back(std::move(arg));
    }
  }
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

void RedisServer::kill() {
  if (pid_ == 0) return;
  impl::stop_group(pid_, SIGKILL, milliseconds(0));
  pid_ = 0;
  paused_ = false;
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

std::map<std::string, long> RedisServer::command_calls() {
  // Lines like "cmdstat_zadd:calls=3,usec=...".
  std::map<std::string, long> calls;
  const std::string info = command({"INFO", "commandstats"});
  std::size_t at = 0;
  while ((at = info.find("cmdstat_", at)) != std::string::npos) {
    const std::size_t colon = info.find(':', at);
    const std::size_t eq = info.find("calls=", colon);
    if (colon == std::string::npos || eq == std::string::npos) break;
    calls[info.substr(at + 8, colon - at - 8)] = std::stol(info.substr(eq + 6));
    at = colon;
  }
  return calls;
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

// ---- RedisCluster ------------------------------------------------------------------------------

RedisCluster::RedisCluster(int primaries, int replicas) {
  RedisOptions o;
  o.cluster = true;
  o.appendonly = true;
  for (int i = 0; i < primaries * (1 + replicas); ++i) {
    nodes_.push_back(std::make_unique<RedisServer>(o));
  }
  std::vector<std::string> args = {"create"};
  for (const auto& n : nodes_) args.push_back("127.0.0.1:" + std::to_string(n->port()));
  args.insert(args.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
  cli(args);
  wait_ok();
}

std::string RedisCluster::url() const {
  std::string out = "redis-cluster://";
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (i > 0) out += ',';
    out += "127.0.0.1:" + std::to_string(nodes_[i]->port());
  }
  return out + "/";
}

std::size_t RedisCluster::live_node() {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->pid() != 0) return i;
  }
  throw std::runtime_error("RedisCluster: no node is running");
}

std::string RedisCluster::node_id(std::size_t i) {
  return node(i).command({"CLUSTER", "MYID"});
}

bool RedisCluster::is_primary(std::size_t i) {
  const std::string role = node(i).command({"ROLE"});
  return role.rfind("master", 0) == 0;
}

std::size_t RedisCluster::replica_of(std::size_t primary) {
  // ROLE of a replica: slave, master host, master port, state, offset (one per line here)
  const std::string port = "\n" + std::to_string(node(primary).port()) + "\n";
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (i == primary || nodes_[i]->pid() == 0) continue;
    const std::string role = nodes_[i]->command({"ROLE"});
    if (role.rfind("slave", 0) == 0 && role.find(port) != std::string::npos) return i;
  }
  throw std::runtime_error("RedisCluster: node " + std::to_string(primary) + " has no replica");
}

int RedisCluster::slot_of(const std::string& key) {
  return std::stoi(node(live_node()).command({"CLUSTER", "KEYSLOT", key}));
}

std::size_t RedisCluster::primary_of_slot(int slot) {
  // CLUSTER NODES lines: <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link>
  // <slot ranges...> (a range "a-b" or one slot "a"; "[...]" entries are migrations).
  const std::string nodes = node(live_node()).command({"CLUSTER", "NODES"});
  std::size_t start = 0;
  while (start < nodes.size()) {
    const auto end = nodes.find('\n', start);
    const std::string line = nodes.substr(start, end - start);
    start = end == std::string::npos ? nodes.size() : end + 1;
    std::vector<std::string> fields;
    for (std::size_t pos = 0; pos < line.size();) {
      const auto sp = line.find(' ', pos);
      fields.push_back(line.substr(pos, sp - pos));
      pos = sp == std::string::npos ? line.size() : sp + 1;
    }
    if (fields.size() < 9 || fields[2].find("master") == std::string::npos ||
        fields[2].find("fail") != std::string::npos) {
      continue;
    }
    bool owns = false;
    for (std::size_t f = 8; f < fields.size() && !owns; ++f) {
      if (fields[f].empty() || fields[f][0] == '[') continue;
      const auto dash = fields[f].find('-');
      const int from = std::stoi(fields[f].substr(0, dash));
      const int to = dash == std::string::npos ? from : std::stoi(fields[f].substr(dash + 1));
      owns = slot >= from && slot <= to;
    }
    if (!owns) continue;
    const auto colon = fields[1].find(':');
    const int port = std::stoi(fields[1].substr(colon + 1));
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]->port() == port) return i;
    }
  }
  throw std::runtime_error("RedisCluster: no live primary owns slot " + std::to_string(slot));
}

std::string RedisCluster::command(const std::string& key, const std::vector<std::string>& argv) {
  return node(primary_of_slot(slot_of(key))).command(argv);
}

std::vector<std::string> RedisCluster::on_primaries(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->pid() != 0 && is_primary(i)) out.push_back(nodes_[i]->command(argv));
  }
  return out;
}

std::string RedisCluster::cli(std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "--cluster"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (args.at(0) != "create") {
    // Every other subcommand takes one node's address right after its name
    argv.insert(argv.begin() + 3, "127.0.0.1:" + std::to_string(node(live_node()).port()));
  }
  Process p(argv);
  const auto code = p.wait_for(std::chrono::seconds(120));
  if (code != 0) {
    throw std::runtime_error("redis-cli --cluster " + args.at(0) + " failed (" +
                             (code ? std::to_string(*code) : std::string("timeout")) +
                             "): " + p.read_stdout() + p.read_stderr());
  }
  return p.read_stdout();
}

void RedisCluster::wait_ok(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    bool ok = true;
    for (std::size_t i = 0; i < nodes_.size() && ok; ++i) {
      if (nodes_[i]->pid() == 0) continue;
      try {
        const std::string info = nodes_[i]->command({"CLUSTER", "INFO"});
        ok = info.find("cluster_state:ok") != std::string::npos &&
             info.find("cluster_slots_ok:16384") != std::string::npos;
        if (ok && !is_primary(i)) {
          ok = nodes_[i]->command({"INFO", "replication"}).find("master_link_status:up") !=
               std::string::npos;
        }
        if (!ok) last = "node " + std::to_string(i) + ": " + info.substr(0, 200);
      } catch (const std::exception& e) {
        ok = false;
        last = e.what();
      }
    }
    if (ok) return;
    std::this_thread::sleep_for(milliseconds(100));
  }
  throw std::runtime_error("RedisCluster: not ok after the timeout: " + last);
}

// A function-local static: started on first use (thread-safe), stopped by its destructor at
// process exit. If the process dies without running it, PR_SET_PDEATHSIG kills the server.
RedisServer& shared_redis() {
  static RedisServer server;
  return server;
}

}  // namespace sagaflow::testing

// Test harness: real Redis and RabbitMQ servers, a librdkafka mock Kafka cluster, and child
// processes, all on free loopback ports, owned by the test and stopped by pid.
//
// Error policy: this is test code, so every failure throws std::runtime_error with a message
// that says what failed (and the tail of the server's log where there is one).
// Lifecycle: a server object starts its server in the constructor and stops it (by its pid or
// its own process group, never by name) in the destructor; its temporary directory is removed.
// Servers die with the test process even if it is killed (PR_SET_PDEATHSIG), so start them from
// the thread that runs the tests (Catch2's main thread), not from a short-lived std::thread.
// See tests/support/README.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace sagaflow::testing {

// A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close).
int free_port();

// Path of the sagaflow binary: $SAGAFLOW_BINARY (CTest sets it), else "sagaflow" (PATH).
std::string sagaflow_binary();

struct RedisOptions {
  bool appendonly = false;  // AOF on (appendfsync everysec), so data survives restart()
  bool cluster = false;     // --cluster-enabled yes, with an explicit free --cluster-port
  int cluster_node_timeout_ms = 1000;
};

// A redis-server (/usr/bin/redis-server) on a free port with its own temporary data dir.
class RedisServer {
 public:
  // Starts and waits until PING answers PONG (at most 10 s).
  explicit RedisServer(RedisOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const;
  std::string url() const;  // "redis://127.0.0.1:<port>/0"
  pid_t pid() const;        // 0 while stopped
  void kill();              // SIGKILL (a crash: nothing flushed); start() brings it back

  void pause();   // SIGSTOP: the server keeps its connections but answers nothing
  void resume();  // SIGCONT

  void stop();     // SIGTERM (graceful: AOF flushed), SIGKILL after 10 s; no-op if stopped
  void start();    // same port and data dir; waits for PONG; no-op if running
  void restart();  // stop() then start()

  // Runs one command on a short-lived synchronous connection (2 s connect, 5 s reply
  // timeout). Reply as text: strings and status as is, integers in decimal, nil as "(nil)",
  // errors as "(error) <message>", arrays as their elements joined by '\n'.
  std::string command(const std::vector<std::string>& argv);
  // Calls so far per command name, from INFO commandstats (commands run by scripts count).
  std::map<std::string, long> command_calls();

 private:
  void launch();
  void wait_ready();

  RedisOptions options_;
  std::string dir_;
  int port_ = 0;
  int cluster_port_ = 0;
  pid_t pid_ = 0;
  bool paused_ = false;
};

// A Redis Cluster of real redis-servers on loopback: `primaries` primaries with `replicas`
// replicas each, made with `redis-cli --cluster create`, ready when every node says
// cluster_state:ok and every replica's link is up. Nodes are stopped by pid.
class RedisCluster {
 public:
  explicit RedisCluster(int primaries = 3, int replicas = 1);
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  std::string url() const;  // "redis-cluster://127.0.0.1:<p0>,127.0.0.1:<p1>,.../"
  std::size_t size() const { return nodes_.size(); }
  RedisServer& node(std::size_t i) { return *nodes_.at(i); }
  std::string node_id(std::size_t i);           // CLUSTER MYID
  bool is_primary(std::size_t i);               // ROLE says master
  std::size_t replica_of(std::size_t primary);  // a node whose ROLE names it as master
  std::size_t primary_of_slot(int slot);        // from the first live node's CLUSTER NODES
  int slot_of(const std::string& key);          // CLUSTER KEYSLOT
  // A command on the primary of `key`'s slot (RedisServer::command's reply text).
  std::string command(const std::string& key, const std::vector<std::string>& argv);
  // The same command on every live primary, replies in node order.
  std::vector<std::string> on_primaries(const std::vector<std::string>& argv);
  // redis-cli --cluster <args> against a live node; its stdout; throws on a non-zero exit.
  std::string cli(std::vector<std::string> args);
  // Every live node reports cluster_state:ok with all 16384 slots served, and every live
  // replica's link to its primary is up (at most `timeout`).
  void wait_ok(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  std::size_t live_node();
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

// A RabbitMQ node (/usr/lib/rabbitmq/bin/rabbitmq-server) with its own epmd, node name, free
// ports and directories, in its own process group. No plugins; guest/guest may log in from
// 127.0.0.1. Starting takes about 5 s.
class RabbitServer {
 public:
  // Starts epmd and the node, waits until an AMQP login succeeds (at most 60 s).
  RabbitServer();
  ~RabbitServer();
  RabbitServer(const RabbitServer&) = delete;
  RabbitServer& operator=(const RabbitServer&) = delete;

  int port() const;
  std::string amqp_url() const;  // "amqp://guest:guest@127.0.0.1:<port>/"
  pid_t pid() const;             // the node's process-group leader; 0 while stopped

  // stop: SIGTERM to the node's process group (graceful), SIGKILL after 30 s.
  // start/restart: same node name, dirs and port, so durable queues and persistent
  // messages survive. Both are no-ops if already in that state.
  void stop();
  void start();
  void restart();

  // Convenience on a short-lived AMQP connection (default vhost, default exchange).
  std::uint32_t queue_depth(const std::string& queue);  // passive declare; 0 if missing
  void purge(const std::string& queue);                 // no-op if missing
  void declare_queue(const std::string& queue, bool durable = true);
  // Publishes to an exchange ("" = default exchange, routing key = queue name).
  void publish(const std::string& exchange, const std::string& routing_key, const std::string& body,
               bool persistent = true,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
  struct Message {
    std::string body;
    std::string routing_key;
    std::vector<std::pair<std::string, std::string>> headers;  // values as text
    std::uint32_t remaining = 0;  // messages left in the queue after this one
  };
  // basic.get with auto-ack: takes one message off the queue, nullopt if empty or missing.
  std::optional<Message> get(const std::string& queue);

 private:
  void launch_epmd();
  void launch_node();
  void wait_ready();
  std::string log_tail() const;

  std::string dir_;
  std::string node_name_;
  int port_ = 0;
  int dist_port_ = 0;
  int epmd_port_ = 0;
  pid_t epmd_pid_ = 0;
  pid_t pid_ = 0;
};

// A librdkafka mock cluster (rd_kafka_mock_cluster_new) listening on 127.0.0.1, inside the
// test process. Auto-creates topics on first use (librdkafka's default: 1 partition).
class KafkaMock {
 public:
  explicit KafkaMock(int brokers = 1);
  ~KafkaMock();
  KafkaMock(const KafkaMock&) = delete;
  KafkaMock& operator=(const KafkaMock&) = delete;

  std::string bootstrap() const;  // "127.0.0.1:<port>[,...]"
  // For fault injection: rd_kafka_mock_push_request_errors, rd_kafka_mock_broker_set_down...
  rd_kafka_mock_cluster_s* cluster();
  // Replication factor min(brokers, 3). Throws if it exists already.
  void create_topic(const std::string& topic, int partitions);

 private:
  int brokers_;
  rd_kafka_s* handle_ = nullptr;
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_;
};

// One server per test process, started on first use, stopped at process exit.
RedisServer& shared_redis();
RabbitServer& shared_rabbit();

// A child process (argv[0] looked up in PATH), in its own process group, stdin from
// /dev/null. stdout (if capture_stdout, else /dev/null) and stderr are drained continuously by
// a background thread, so a chatty child never blocks on a full pipe.
class Process {
 public:
  Process(std::vector<std::string> argv,
          std::vector<std::pair<std::string, std::string>> extra_env = {},
          bool capture_stdout = true);
  ~Process();  // SIGKILL to its process group + reap, if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const;
  void signal(int sig);  // to the process itself (not its group); no-op once reaped
  // Exit code (128 + signal number if killed by a signal); nullopt on timeout.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // Everything captured since the start (cumulative; never blocks).
  std::string read_stdout();
  std::string read_stderr();
  // The next full stdout line not yet returned by this function, without its '\n'. Throws if
  // none arrives within the timeout or stdout closes first (message includes stderr).
  std::string read_stdout_line(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sagaflow::testing

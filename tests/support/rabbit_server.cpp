// RabbitServer: a RabbitMQ node with its own epmd, node name, ports and dirs, stopped by its
// process group. See README.md for the environment it is started with and why.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <thread>

#include "support/impl/child.hpp"
#include "support/servers.hpp"

namespace sagaflow::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server";
constexpr const char* kEpmd = "/usr/bin/epmd";
constexpr auto kReadyTimeout = seconds(60);
constexpr auto kStopGrace = seconds(30);
constexpr int kStartAttempts = 3;

std::atomic<int> g_node_counter{0};

std::string reply_error(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "missing RPC reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION: {
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD || r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        // Both close methods start with reply_code, reply_text.
        const auto* m = static_cast<const amqp_channel_close_t*>(r.reply.decoded);
        return std::to_string(m->reply_code) + " " +
               std::string(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len);
      }
      return "server exception, method " + std::to_string(r.reply.id);
    }
  }
  return "unknown reply type";
}

bool is_not_found(const amqp_rpc_reply_t& r) {
  if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
    return false;
  return static_cast<const amqp_channel_close_t*>(r.reply.decoded)->reply_code == 404;
}

std::string bytes_text(const amqp_bytes_t& b) {
  return b.bytes == nullptr ? "" : std::string(static_cast<const char*>(b.bytes), b.len);
}

std::string field_text(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      return bytes_text(v.value.bytes);
    case AMQP_FIELD_KIND_BOOLEAN:
      return v.value.boolean != 0 ? "true" : "false";
    case AMQP_FIELD_KIND_I8:
      return std::to_string(v.value.i8);
    case AMQP_FIELD_KIND_U8:
      return std::to_string(v.value.u8);
    case AMQP_FIELD_KIND_I16:
      return std::to_string(v.value.i16);
    case AMQP_FIELD_KIND_U16:
      return std::to_string(v.value.u16);
    case AMQP_FIELD_KIND_I32:
      return std::to_string(v.value.i32);
    case AMQP_FIELD_KIND_U32:
      return std::to_string(v.value.u32);
    case AMQP_FIELD_KIND_I64:
      return std::to_string(v.value.i64);
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
      return std::to_string(v.value.u64);
    case AMQP_FIELD_KIND_F32:
      return std::to_string(v.value.f32);
    case AMQP_FIELD_KIND_F64:
      return std::to_string(v.value.f64);
    case AMQP_FIELD_KIND_VOID:
      return "";
    case AMQP_FIELD_KIND_ARRAY: {
      std::string out = "[";
      for (int i = 0; i < v.value.array.num_entries; ++i) {
        if (i > 0) out += ",";
        out += field_text(v.value.array.entries[i]);
      }
      return out + "]";
    }
    case AMQP_FIELD_KIND_TABLE: {
      std::string out = "{";
      for (int i = 0; i < v.value.table.num_entries; ++i) {
        if (i > 0) out += ",";
        out += bytes_text(v.value.table.entries[i].key) + "=" +
               field_text(v.value.table.entries[i].value);
      }
      return out + "}";
    }
    default:
      return "(field kind " + std::to_string(v.kind) + ")";
  }
}

// One AMQP connection with channel 1 open, closed on destruction. Throws on failure.
class Amqp {
 public:
  Amqp(int port, milliseconds timeout) : conn_(amqp_new_connection()) {
    if (!conn_) throw std::runtime_error("amqp_new_connection failed");
    amqp_socket_t* socket = amqp_tcp_socket_new(conn_.get());
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    if (socket == nullptr) throw std::runtime_error("amqp_tcp_socket_new failed");
    if (int rc = amqp_socket_open_noblock(socket, "127.0.0.1", port, &tv); rc != AMQP_STATUS_OK)
      throw std::runtime_error(std::string("amqp connect: ") + amqp_error_string2(rc));
    amqp_set_handshake_timeout(conn_.get(), &tv);
    amqp_set_rpc_timeout(conn_.get(), &tv);
    check(amqp_login(conn_.get(), "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
          "login");
    logged_in_ = true;
    amqp_channel_open(conn_.get(), 1);
    check(amqp_get_rpc_reply(conn_.get()), "channel.open");
    channel_open_ = true;
  }
  ~Amqp() {
    if (channel_open_) amqp_channel_close(conn_.get(), 1, AMQP_REPLY_SUCCESS);
    if (logged_in_) amqp_connection_close(conn_.get(), AMQP_REPLY_SUCCESS);
  }
  Amqp(const Amqp&) = delete;
  Amqp& operator=(const Amqp&) = delete;

  amqp_connection_state_t get() { return conn_.get(); }
  void channel_closed() { channel_open_ = false; }
  void check(const amqp_rpc_reply_t& r, const std::string& what) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
      channel_open_ = false;  // a channel.close or connection.close came: nothing left to close
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) logged_in_ = false;
    }
    throw std::runtime_error("amqp " + what + ": " + reply_error(r));
  }

 private:
  struct Deleter {
    void operator()(amqp_connection_state_t c) const { amqp_destroy_connection(c); }
  };
  // Destroyed (socket closed) even when the constructor throws half-way.
  std::unique_ptr<amqp_connection_state_t_, Deleter> conn_;
  bool logged_in_ = false;
  bool channel_open_ = false;
};

bool tcp_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

RabbitServer::RabbitServer() : dir_(impl::make_temp_dir("sagaflow-rabbit-")) {
  node_name_ = "sagaflow_test_" + std::to_string(::getpid()) + "_" +
               std::to_string(g_node_counter++) + "@localhost";
  namespace fs = std::filesystem;
  for (const char* sub : {"home", "mnesia", "log"}) fs::create_directories(dir_ + "/" + sub);
  impl::write_file(dir_ + "/rabbitmq.conf",
                   "loopback_users = none\n"
                   "log.console = false\n"
                   "log.file.level = info\n");
  impl::write_file(dir_ + "/enabled_plugins", "[].\n");
  impl::write_file(dir_ + "/rabbitmq-env.conf", "");  // instead of /etc/rabbitmq/rabbitmq-env.conf
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    dist_port_ = free_port();
    epmd_port_ = free_port();
    try {
      launch_epmd();
      launch_node();
      wait_ready();
      return;
    } catch (const std::exception&) {
      if (pid_ != 0) impl::stop_group(pid_, SIGKILL, milliseconds(0));
      if (epmd_pid_ != 0) impl::stop_group(epmd_pid_, SIGKILL, milliseconds(0));
      pid_ = epmd_pid_ = 0;
      if (attempt == kStartAttempts) {
        impl::remove_tree(dir_);
        throw;
      }
      // A fresh node dir for the next ports: a half-initialised mnesia may not restart cleanly.
      std::error_code ignored;
      fs::remove_all(dir_ + "/mnesia", ignored);
      fs::create_directories(dir_ + "/mnesia");
    }
  }
}

RabbitServer::~RabbitServer() {
  stop();
  if (epmd_pid_ != 0) impl::stop_group(epmd_pid_, SIGTERM, seconds(5));
  impl::remove_tree(dir_);
}

int RabbitServer::port() const {
  return port_;
}

std::string RabbitServer::amqp_url() const {
  return "amqp://guest:guest@127.0.0.1:" + std::to_string(port_) + "/";
}

pid_t RabbitServer::pid() const {
  return pid_;
}

void RabbitServer::launch_epmd() {
  const std::string log = dir_ + "/epmd.log";
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  impl::SpawnOptions spawn;
  spawn.argv = {kEpmd, "-port", std::to_string(epmd_port_), "-address", "127.0.0.1"};
  spawn.stdout_fd = spawn.stderr_fd = log_fd;
  spawn.die_with_parent = true;
  try {
    epmd_pid_ = impl::spawn(spawn);
  } catch (...) {
    ::close(log_fd);
    throw;
  }
  ::close(log_fd);
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (!tcp_accepts(epmd_port_)) {
    if (auto code = impl::wait_exit(epmd_pid_, milliseconds(0))) {
      epmd_pid_ = 0;
      throw std::runtime_error("epmd on port " + std::to_string(epmd_port_) + " exited with " +
                               std::to_string(*code) + ": " + impl::file_tail(log));
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("epmd on port " + std::to_string(epmd_port_) + " not listening");
    std::this_thread::sleep_for(milliseconds(10));
  }
}

void RabbitServer::launch_node() {
  const std::string log = dir_ + "/node.out";
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  impl::SpawnOptions spawn;
  spawn.argv = {kServerScript};
  spawn.env = {
      {"HOME", dir_ + "/home"},  // the Erlang cookie is created here
      {"RABBITMQ_CONF_ENV_FILE", dir_ + "/rabbitmq-env.conf"},
      {"RABBITMQ_NODENAME", node_name_},
      {"RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1"},
      {"RABBITMQ_NODE_PORT", std::to_string(port_)},
      {"RABBITMQ_DIST_PORT", std::to_string(dist_port_)},
      {"RABBITMQ_MNESIA_BASE", dir_ + "/mnesia"},
      {"RABBITMQ_LOG_BASE", dir_ + "/log"},
      {"RABBITMQ_CONFIG_FILE", dir_ + "/rabbitmq.conf"},
      {"RABBITMQ_ADVANCED_CONFIG_FILE", dir_ + "/advanced.config"},
      {"RABBITMQ_ENABLED_PLUGINS_FILE", dir_ + "/enabled_plugins"},
      {"RABBITMQ_PID_FILE", dir_ + "/rabbitmq.pid"},
      // Erlang distribution only on loopback, and our own epmd.
      {"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}"},
      {"ERL_EPMD_PORT", std::to_string(epmd_port_)},
      {"ERL_EPMD_ADDRESS", "127.0.0.1"},
      // The script then execs erl instead of running it as a background job of a shell that
      // traps signals: our pid is the Erlang VM itself, so PR_SET_PDEATHSIG reaches it, and
      // the VM stops gracefully on SIGTERM (rabbit_prelaunch_sighandler).
      {"detached", "true"},
  };
  spawn.stdout_fd = spawn.stderr_fd = log_fd;
  spawn.die_with_parent = true;
  try {
    pid_ = impl::spawn(spawn);
  } catch (...) {
    ::close(log_fd);
    throw;
  }
  ::close(log_fd);
}

std::string RabbitServer::log_tail() const {
  return impl::file_tail(dir_ + "/node.out", 1500) + "\n--- " + node_name_ + ".log:\n" +
         impl::file_tail(dir_ + "/log/" + node_name_ + ".log", 2500);
}

void RabbitServer::wait_ready() {
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto code = impl::wait_exit(pid_, milliseconds(0))) {
      pid_ = 0;
      throw std::runtime_error("rabbitmq node " + node_name_ + " exited with " +
                               std::to_string(*code) + ":\n" + log_tail());
    }
    if (tcp_accepts(port_)) {
      try {
        Amqp probe(port_, seconds(5));
        return;
      } catch (const std::exception& e) {
        last = e.what();
      }
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  throw std::runtime_error("rabbitmq node " + node_name_ + " on port " + std::to_string(port_) +
                           " not ready after 60 s (" + last + "):\n" + log_tail());
}

void RabbitServer::stop() {
  if (pid_ == 0) return;
  impl::stop_group(pid_, SIGTERM, kStopGrace);
  pid_ = 0;
}

void RabbitServer::start() {
  if (pid_ != 0) return;
  launch_node();
  try {
    wait_ready();
  } catch (...) {
    if (pid_ != 0) impl::stop_group(pid_, SIGKILL, milliseconds(0));
    pid_ = 0;
    throw;
  }
}

void RabbitServer::restart() {
  stop();
  start();
}

std::uint32_t RabbitServer::queue_depth(const std::string& queue) {
  Amqp amqp(port_, seconds(5));
  auto* ok = amqp_queue_declare(amqp.get(), 1, amqp_cstring_bytes(queue.c_str()), /*passive=*/1, 0,
                                0, 0, amqp_empty_table);
  if (ok != nullptr) return ok->message_count;
  const amqp_rpc_reply_t r = amqp_get_rpc_reply(amqp.get());
  if (is_not_found(r)) {
    amqp.channel_closed();
    return 0;
  }
  amqp.check(r, "queue.declare(passive) " + queue);
  throw std::runtime_error("amqp queue.declare(passive) " + queue + ": no reply");
}

void RabbitServer::purge(const std::string& queue) {
  Amqp amqp(port_, seconds(5));
  if (amqp_queue_purge(amqp.get(), 1, amqp_cstring_bytes(queue.c_str())) == nullptr) {
    const amqp_rpc_reply_t r = amqp_get_rpc_reply(amqp.get());
    if (is_not_found(r)) {
      amqp.channel_closed();
      return;
    }
    amqp.check(r, "queue.purge " + queue);
  }
}

void RabbitServer::declare_queue(const std::string& queue, bool durable) {
  Amqp amqp(port_, seconds(5));
  amqp_queue_declare(amqp.get(), 1, amqp_cstring_bytes(queue.c_str()), 0, durable ? 1 : 0, 0, 0,
                     amqp_empty_table);
  amqp.check(amqp_get_rpc_reply(amqp.get()), "queue.declare " + queue);
}

void RabbitServer::publish(const std::string& exchange, const std::string& routing_key,
                           const std::string& body, bool persistent,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
  Amqp amqp(port_, seconds(5));
  // Publisher confirms, so the message is routed and (if persistent) on disk on return.
  amqp_confirm_select(amqp.get(), 1);
  amqp.check(amqp_get_rpc_reply(amqp.get()), "confirm.select");
  std::vector<amqp_table_entry_t> entries;
  for (const auto& [k, v] : headers) {
    amqp_table_entry_t e{};
    e.key = amqp_cstring_bytes(k.c_str());
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(v.c_str());
    entries.push_back(e);
  }
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = persistent ? 2 : 1;
  props.content_type = amqp_cstring_bytes("application/json");
  if (!entries.empty()) {
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers.num_entries = static_cast<int>(entries.size());
    props.headers.entries = entries.data();
  }
  amqp_bytes_t payload{body.size(), const_cast<char*>(body.data())};  // NOLINT: C API
  const int rc = amqp_basic_publish(amqp.get(), 1, amqp_cstring_bytes(exchange.c_str()),
                                    amqp_cstring_bytes(routing_key.c_str()), 0, 0, &props, payload);
  if (rc != AMQP_STATUS_OK)
    throw std::runtime_error(std::string("amqp publish: ") + amqp_error_string2(rc));
  // Wait for the broker's basic.ack (or nack).
  amqp_frame_t frame;
  timeval tv{10, 0};
  for (;;) {
    const int status = amqp_simple_wait_frame_noblock(amqp.get(), &frame, &tv);
    if (status != AMQP_STATUS_OK)
      throw std::runtime_error(std::string("amqp publish confirm: ") + amqp_error_string2(status));
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) return;
    if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD)
      throw std::runtime_error("amqp publish: nacked by the broker");
    if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
      amqp.channel_closed();
      const auto* m = static_cast<const amqp_channel_close_t*>(frame.payload.method.decoded);
      throw std::runtime_error("amqp publish: channel closed: " + std::to_string(m->reply_code) +
                               " " + bytes_text(m->reply_text));
    }
  }
}

std::optional<RabbitServer::Message> RabbitServer::get(const std::string& queue) {
  Amqp amqp(port_, seconds(5));
  const amqp_rpc_reply_t r = amqp_basic_get(amqp.get(), 1, amqp_cstring_bytes(queue.c_str()),
                                            /*no_ack=*/1);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    if (is_not_found(r)) {
      amqp.channel_closed();
      return std::nullopt;
    }
    amqp.check(r, "basic.get " + queue);
  }
  if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
  const auto* get_ok = static_cast<const amqp_basic_get_ok_t*>(r.reply.decoded);
  Message out;
  out.routing_key = bytes_text(get_ok->routing_key);
  out.remaining = get_ok->message_count;
  amqp_message_t message;
  amqp.check(amqp_read_message(amqp.get(), 1, &message, 0), "read message");
  out.body = bytes_text(message.body);
  if ((message.properties._flags & AMQP_BASIC_HEADERS_FLAG) != 0) {
    for (int i = 0; i < message.properties.headers.num_entries; ++i) {
      const auto& e = message.properties.headers.entries[i];
      out.headers.emplace_back(bytes_text(e.key), field_text(e.value));
    }
  }
  amqp_destroy_message(&message);
  return out;
}

// A function-local static: started on first use, stopped by its destructor at process exit.
RabbitServer& shared_rabbit() {
  static RabbitServer server;
  return server;
}

}  // namespace sagaflow::testing

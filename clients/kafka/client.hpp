#pragma once
// One way to make a librdkafka handle (namespace sagaflow::kafka): the configuration from a
// list of (name, value) pairs with a one-line error naming the refused property, the handle
// with its destroy, and librdkafka's log lines brought to our log (core/log.hpp).
//
// Log bridge: with `logs` set, the handle is made with log.queue=true and its log lines go to
// a queue of their own (rd_kafka_set_log_queue) that the owner drains on its own thread with
// drain_logs(): the loop for the loop users (watch log_queue() with a QueueWakeup), the calling
// thread for the blocking tools. librdkafka's threads never write to our log. Lines queued when
// the handle is destroyed are written by destroy(); those librdkafka writes while it shuts
// down are dropped. Without `logs`, librdkafka's log lines are dropped.
//
// Include only from .cpp files (rdkafka.h).
#include <librdkafka/rdkafka.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace sagaflow::kafka {

using Settings = std::vector<std::pair<std::string, std::string>>;

// How one handle's librdkafka log lines are written: message "librdkafka", fields
// [owner_key: owner_value,] facility, detail[, syslog_level].
struct LogStyle {
  enum class Levels : std::uint8_t {
    syslog,         // syslog 0-3 error, 4 warn, 5-6 info, 7 debug
    warn_or_debug,  // 0-4 warn, 5-7 debug
    debug,          // all debug, with the syslog level as field syslog_level
  };
  std::string owner_key;  // a field naming the owner ("component", "link"); empty: none
  std::string owner_value;
  Levels levels = Levels::syslog;
};

struct ClientConfig {
  std::string brokers;           // bootstrap.servers; empty: not set
  std::string client_id;         // client.id; empty: not set
  Settings settings;             // the site's own properties, in order, after the two above
  Settings overrides;            // applied last (the options' extra properties)
  std::optional<LogStyle> logs;  // nullopt: librdkafka's log lines are dropped
  // Sets the opaque and the callbacks, just before rd_kafka_new.
  std::function<void(rd_kafka_conf_t*)> configure;
};

// A configuration refused: Errc::invalid_config with detail
// "librdkafka property <name>=<value>: <librdkafka's reason>"; a handle librdkafka would not
// make: Errc::invalid_config with "rd_kafka_new: <reason>".
class Client {
 public:
  static Result<Client> open(rd_kafka_type_t type, const ClientConfig& config);

  Client() = default;
  ~Client() { destroy(); }
  Client(Client&& o) noexcept { *this = std::move(o); }
  Client& operator=(Client&& o) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  rd_kafka_t* get() const noexcept { return rk_; }
  explicit operator bool() const noexcept { return rk_ != nullptr; }

  // The queue the log lines wait in (nullptr without a LogStyle): watch it to drain on time.
  rd_kafka_queue_t* log_queue() const noexcept { return log_queue_; }
  // Writes up to `max` queued log lines; returns how many were taken.
  std::size_t drain_logs(std::size_t max = 512) noexcept;

  // Writes the queued log lines, then rd_kafka_destroy_flags(handle, flags). Idempotent.
  void destroy(int flags = 0) noexcept;

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* log_queue_ = nullptr;
  LogStyle style_;
};

}  // namespace sagaflow::kafka

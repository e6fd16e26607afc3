#include "clients/kafka/client.hpp"

#include <array>

#include <fmt/format.h>

#include "core/log.hpp"

namespace sagaflow::kafka {
namespace {

void drop_log(const rd_kafka_t*, int, const char*, const char*) {}

log::Level level_of(LogStyle::Levels levels, int syslog_level) {
  switch (levels) {
    case LogStyle::Levels::syslog:
      if (syslog_level <= 3) return log::Level::error;
      if (syslog_level == 4) return log::Level::warn;
      if (syslog_level <= 6) return log::Level::info;
      return log::Level::debug;
    case LogStyle::Levels::warn_or_debug:
      return syslog_level <= 4 ? log::Level::warn : log::Level::debug;
    case LogStyle::Levels::debug:
      break;
  }
  return log::Level::debug;
}

void write_line(const LogStyle& style, int syslog_level, const char* facility, const char* text) {
  const log::Level level = level_of(style.levels, syslog_level);
  if (!log::enabled(level)) return;
  const bool with_level = style.levels == LogStyle::Levels::debug;
  if (style.owner_key.empty()) {
    if (with_level) {
      log::write(level, "librdkafka",
                 {{"facility", facility}, {"detail", text}, {"syslog_level", syslog_level}});
    } else {
      log::write(level, "librdkafka", {{"facility", facility}, {"detail", text}});
    }
  } else if (with_level) {
    log::write(level, "librdkafka",
               {{style.owner_key, style.owner_value},
                {"facility", facility},
                {"detail", text},
                {"syslog_level", syslog_level}});
  } else {
    log::write(level, "librdkafka",
               {{style.owner_key, style.owner_value}, {"facility", facility}, {"detail", text}});
  }
}

}  // namespace

Result<Client> Client::open(rd_kafka_type_t type, const ClientConfig& config) {
  std::array<char, 512> err{};
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& name, const std::string& value) -> Status {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err.data(), err.size()) ==
        RD_KAFKA_CONF_OK) {
      return Status::success();
    }
    return make_error(Errc::invalid_config,
                      fmt::format("librdkafka property {}={}: {}", name, value, err.data()));
  };
  Settings all;
  if (!config.brokers.empty()) all.emplace_back("bootstrap.servers", config.brokers);
  if (!config.client_id.empty()) all.emplace_back("client.id", config.client_id);
  all.insert(all.end(), config.settings.begin(), config.settings.end());
  if (config.logs) all.emplace_back("log.queue", "true");
  all.insert(all.end(), config.overrides.begin(), config.overrides.end());
  for (const auto& [name, value] : all) {
    if (Status s = set(name, value); !s) {
      rd_kafka_conf_destroy(conf);
      return s.error();
    }
  }
  if (!config.logs) rd_kafka_conf_set_log_cb(conf, &drop_log);
  if (config.configure) config.configure(conf);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err.data(), err.size());
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return make_error(Errc::invalid_config, fmt::format("rd_kafka_new: {}", err.data()));
  }
  Client c;
  c.rk_ = rk;
  if (config.logs) {
    c.style_ = *config.logs;
    c.log_queue_ = rd_kafka_queue_new(rk);
    rd_kafka_set_log_queue(rk, c.log_queue_);
  }
  return c;
}

Client& Client::operator=(Client&& o) noexcept {
  if (this == &o) return *this;
  destroy();
  rk_ = std::exchange(o.rk_, nullptr);
  log_queue_ = std::exchange(o.log_queue_, nullptr);
  style_ = std::move(o.style_);
  return *this;
}

std::size_t Client::drain_logs(std::size_t max) noexcept {
  if (log_queue_ == nullptr) return 0;
  std::size_t n = 0;
  while (n < max) {
    rd_kafka_event_t* ev = rd_kafka_queue_poll(log_queue_, 0);
    if (ev == nullptr) break;
    ++n;
    const char* facility = nullptr;
    const char* text = nullptr;
    int level = 0;
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_LOG &&
        rd_kafka_event_log(ev, &facility, &text, &level) == 0) {
      write_line(style_, level, facility != nullptr ? facility : "", text != nullptr ? text : "");
    }
    rd_kafka_event_destroy(ev);
  }
  return n;
}

void Client::destroy(int flags) noexcept {
  if (rk_ == nullptr) return;
  if (log_queue_ != nullptr) {
    drain_logs(4096);
    rd_kafka_queue_io_event_enable(log_queue_, -1, nullptr, 0);
    rd_kafka_queue_destroy(log_queue_);
    log_queue_ = nullptr;
  }
  rd_kafka_destroy_flags(std::exchange(rk_, nullptr), flags);
}

}  // namespace sagaflow::kafka

#pragma once
// Small helpers shared by the benchmarks: CPU seconds of a process or thread from /proc,
// percentiles, a bare rabbitmq-c connection. Header-only.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config.hpp"

namespace sagaflow::bench {

// utime + stime of a /proc/.../stat line, in seconds; `comm` gets the name in parentheses.
inline double stat_cpu(const std::string& path, std::string* comm = nullptr) {
  std::ifstream f(path);
  std::string line;
  if (!std::getline(f, line)) return 0;
  const auto open = line.find('(');
  const auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return 0;
  if (comm != nullptr) *comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> fields;
  std::string field;
  while (rest >> field) fields.push_back(field);
  if (fields.size() < 13) return 0;  // fields[0] is field 3 (state): utime 14, stime 15
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

// A whole process (all its threads), in seconds.
inline double process_cpu(pid_t pid) {
  return pid > 0 ? stat_cpu("/proc/" + std::to_string(pid) + "/stat") : 0;
}

// p in [0, 1] of an unsorted sample (sorted in place); 0 for an empty one.
inline double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  return v[i];
}

// A blocking rabbitmq-c connection with channel 1 open; throws on failure.
inline amqp_connection_state_t bare_connect(const AmqpEndpoint& ep) {
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* s = amqp_tcp_socket_new(conn);
  if (amqp_socket_open(s, ep.host.c_str(), ep.port) != AMQP_STATUS_OK)
    throw std::runtime_error("connect failed");
  if (amqp_login(conn, ep.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ep.user.c_str(),
                 ep.password.c_str())
          .reply_type != AMQP_RESPONSE_NORMAL) {
    throw std::runtime_error("login failed");
  }
  amqp_channel_open(conn, 1);
  if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
    throw std::runtime_error("channel failed");
  return conn;
}

// Publisher confirms on channel 1.
inline void select_confirms(amqp_connection_state_t conn) {
  amqp_confirm_select(conn, 1);
  amqp_get_rpc_reply(conn);
}

// Persistent, application/json, with a message id to fill in per message: what our sinks send.
inline amqp_basic_properties_t persistent_json() {
  amqp_basic_properties_t p{};
  p._flags =
      AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
  p.delivery_mode = 2;
  p.content_type = amqp_cstring_bytes("application/json");
  return p;
}

// INFO commandstats: command -> {calls, usec} (commands run inside scripts count, and the
// script call itself).
struct CommandStat {
  long long calls = 0;
  long long usec = 0;
};
using CommandStats = std::map<std::string, CommandStat>;

inline CommandStats parse_commandstats(const std::string& info) {
  CommandStats out;
  std::size_t at = 0;
  while ((at = info.find("cmdstat_", at)) != std::string::npos) {
    at += 8;
    const auto colon = info.find(':', at);
    if (colon == std::string::npos) break;
    CommandStat st;
    std::sscanf(info.c_str() + colon, ":calls=%lld,usec=%lld", &st.calls, &st.usec);
    out[info.substr(at, colon - at)] = st;
  }
  return out;
}

inline void bare_close(amqp_connection_state_t conn) {
  amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
}

}  // namespace sagaflow::bench

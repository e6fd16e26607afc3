// The parsers of single configuration values (config.hpp): host:port, AMQP and Redis URLs,
// rate-limit plans.
#include <charconv>
#include <string>

#include <fmt/format.h>

#include "core/config.hpp"
#include "core/impl/config_text.hpp"

namespace sagaflow {
namespace {

using core_impl::bad;
using core_impl::parse_int;
using core_impl::trim;

// Percent-decoding for URL user info and paths.
Result<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return make_error(Errc::invalid_config, "bad %-escape");
    int v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc{} || p != s.data() + i + 3)
      return make_error(Errc::invalid_config, "bad %-escape");
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

struct UrlParts {
  std::string user, password, host, path;
  int port = 0;
  bool has_user = false;
};

// scheme://[user[:password]@]host[:port][/path]
Result<UrlParts> split_url(std::string_view url, std::string_view scheme, int default_port) {
  const std::string prefix = std::string(scheme) + "://";
  if (url.substr(0, prefix.size()) != prefix) {
    return make_error(Errc::invalid_config, fmt::format("must start with {}", prefix));
  }
  std::string_view rest = url.substr(prefix.size());
  UrlParts parts;
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    auto path = url_decode(rest.substr(slash + 1));
    if (!path) return path.error();
    parts.path = std::move(path.value());
  }
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = info.find(':');
    auto user = url_decode(info.substr(0, colon));
    if (!user) return user.error();
    parts.user = std::move(user.value());
    if (colon != std::string_view::npos) {
      auto pw = url_decode(info.substr(colon + 1));
      if (!pw) return pw.error();
      parts.password = std::move(pw.value());
    }
    parts.has_user = true;
  }
  auto hp = parse_host_port(authority.find(':') == std::string_view::npos
                                ? std::string(authority) + ":" + std::to_string(default_port)
                                : std::string(authority));
  if (!hp) return hp.error();
  parts.host = hp->host;
  parts.port = hp->port;
  return parts;
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view text) {
  HostPort hp;
  if (text == "0") {
    hp.disabled = true;
    return hp;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error(Errc::invalid_config, fmt::format("'{}' is not host:port", text));
  }
  hp.host = std::string(text.substr(0, colon));
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  auto port = parse_int("port", text.substr(colon + 1), 0, 65535);
  if (!port) return make_error(Errc::invalid_config, fmt::format("'{}' has no valid port", text));
  hp.port = static_cast<int>(port.value());
  return hp;
}

Result<AmqpEndpoint> parse_amqp_url(std::string_view url) {
  auto parts = split_url(url, "amqp", 5672);
  if (!parts) return parts.error();
  AmqpEndpoint ep;
  ep.host = parts->host;
  ep.port = parts->port;
  if (parts->has_user) {
    ep.user = parts->user;
    ep.password = parts->password;
  }
  // amqp://host/ means the vhost "/", amqp://host/%2f too, amqp://host/prod means "prod".
  ep.vhost = parts->path.empty() ? "/" : parts->path;
  return ep;
}

// redis-cluster://[:password@]host:port[,host:port...][/]
Result<RedisEndpoint> parse_redis_cluster_url(std::string_view url) {
  std::string_view rest = url.substr(std::string_view("redis-cluster://").size());
  const auto slash = rest.find('/');
  if (slash != std::string_view::npos && slash + 1 != rest.size()) {
    return make_error(Errc::invalid_config,
                      "a redis-cluster:// URL has no database path (a cluster has only db 0)");
  }
  std::string_view authority = rest.substr(0, slash);
  if (authority.empty() || authority.back() == '@') {
    return make_error(Errc::invalid_config, "a redis-cluster:// URL names at least one node");
  }
  RedisEndpoint ep;
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view info = authority.substr(0, at);
    authority = authority.substr(at + 1);
    if (info.empty() || info.front() != ':') {
      return make_error(
          Errc::invalid_config,
          "a redis-cluster:// URL takes a password only: redis-cluster://:pw@host:port");
    }
    auto pw = url_decode(info.substr(1));
    if (!pw) return pw.error();
    ep.password = std::move(pw.value());
  }
  while (true) {
    const auto comma = authority.find(',');
    const std::string_view node = authority.substr(0, comma);
    const bool has_port =
        node.find(':') != std::string_view::npos && !(node.front() == '[' && node.back() == ']');
    auto hp = parse_host_port(has_port ? std::string(node) : std::string(node) + ":6379");
    if (!hp) return hp.error();
    if (hp->disabled || hp->host.empty() || hp->port == 0) {
      return make_error(Errc::invalid_config, fmt::format("'{}' is not a cluster node", node));
    }
    ep.cluster_seeds.push_back(std::move(hp.value()));
    if (comma == std::string_view::npos) break;
    authority = authority.substr(comma + 1);
  }
  ep.host = ep.cluster_seeds.front().host;
  ep.port = ep.cluster_seeds.front().port;
  return ep;
}

Result<RedisEndpoint> parse_redis_url(std::string_view url) {
  if (url.substr(0, 16) == "redis-cluster://") return parse_redis_cluster_url(url);
  if (url.substr(0, 8) != "redis://") {
    return make_error(Errc::invalid_config, "must start with redis:// or redis-cluster://");
  }
  auto parts = split_url(url, "redis", 6379);
  if (!parts) return parts.error();
  RedisEndpoint ep;
  ep.host = parts->host;
  ep.port = parts->port;
  ep.password = parts->password;  // redis://:secret@host:6379/0
  if (!parts->path.empty()) {
    auto db = parse_int("db", parts->path, 0, 15);
    if (!db)
      return make_error(Errc::invalid_config,
                        fmt::format("database '{}' is not 0..15", parts->path));
    ep.db = static_cast<int>(db.value());
  }
  return ep;
}

Result<std::vector<RatePlan>> parse_plans(std::string_view text) {
  std::vector<RatePlan> plans;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    // name=rate/period:burst
    const auto eq = item.find('=');
    const auto sl = item.find('/');
    const auto co = item.rfind(':');
    if (eq == std::string_view::npos || sl == std::string_view::npos ||
        co == std::string_view::npos || !(eq < sl && sl < co) || eq == 0) {
      return make_error(
          Errc::invalid_config,
          fmt::format("plan '{}' is not name=rate/period:burst (e.g. free=60/min:100)", item));
    }
    RatePlan p;
    p.name = std::string(item.substr(0, eq));
    auto rate = parse_int("rate", item.substr(eq + 1, sl - eq - 1), 1, 1'000'000'000);
    auto burst = parse_int("burst", item.substr(co + 1), 1, 1'000'000'000);
    if (!rate || !burst) {
      return make_error(Errc::invalid_config,
                        fmt::format("plan '{}': rate and burst must be positive integers", item));
    }
    const std::string_view period = item.substr(sl + 1, co - sl - 1);
    if (period == "s" || period == "sec" || period == "second")
      p.period_ms = 1000;
    else if (period == "min" || period == "minute" || period == "m")
      p.period_ms = 60'000;
    else if (period == "h" || period == "hour")
      p.period_ms = 3'600'000;
    else if (period == "d" || period == "day")
      p.period_ms = 86'400'000;
    else {
      return make_error(
          Errc::invalid_config,
          fmt::format("plan '{}': period '{}' is not one of s, min, h, day", item, period));
    }
    p.rate = rate.value();
    p.burst = burst.value();
    for (const auto& other : plans) {
      if (other.name == p.name)
        return make_error(Errc::invalid_config, fmt::format("plan '{}' is listed twice", p.name));
    }
    plans.push_back(std::move(p));
  }
  if (plans.empty()) return make_error(Errc::invalid_config, "no plan given");
  return plans;
}

}  // namespace sagaflow

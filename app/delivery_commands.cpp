// sagaflow endpoints ... and sagaflow deliveries ...: the outgoing webhooks' endpoints and the
// attempts log, read and written in Redis (CONTRACT.md section 9; store/deliveries.hpp).
// Exit codes: 0 done, 1 runtime failure or unknown id, 2 bad usage; errors are one line.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "app/commands.hpp"
#include "app/impl/delivery_json.hpp"
#include "app/impl/redis_session.hpp"
#include "core/envelope.hpp"
#include "delivery/address_guard.hpp"
#include "delivery/breaker.hpp"
#include "delivery/endpoint.hpp"
#include "delivery/record.hpp"
#include "http/webhook_signature.hpp"
#include "store/deliveries.hpp"

namespace sagaflow::app {
namespace {

using delivery::Endpoint;
using delivery::EndpointState;

Millis wall_ms() {
  return static_cast<Millis>(std::time(nullptr)) * 1000;
}

int fail(std::string_view command, std::string_view why, int code = 1) {
  std::fprintf(stderr, "sagaflow %.*s: %.*s\n", static_cast<int>(command.size()), command.data(),
               static_cast<int>(why.size()), why.data());
  return code;
}

// Runs one asynchronous store call to completion on the session's loop.
template <class T, class Call>
Result<T> await(RedisSession& session, Call call) {
  std::optional<Result<T>> out;
  auto st = session.run([&](std::function<void()> finish) {
    call([&, finish](Result<T> r) {
      out = std::move(r);
      finish();
    });
  });
  if (!st) return st.error();
  if (!out) return make_error(Errc::unavailable, "no answer from Redis");
  return std::move(*out);
}

Status await_status(RedisSession& session,
                    const std::function<void(std::function<void(Status)>)>& call) {
  std::optional<Status> out;
  auto st = session.run([&](std::function<void()> finish) {
    call([&, finish](Status s) {
      out = std::move(s);
      finish();
    });
  });
  if (!st) return st;
  if (!out) return make_error(Errc::unavailable, "no answer from Redis");
  return *out;
}

struct Tools {
  RedisSession session;
  store::Deliveries store;
  explicit Tools(const Config& c) : session(c), store(session.client(), deliveries_options(c)) {}

  Result<std::map<std::string, Endpoint>> endpoints() {
    auto raw = await<std::map<std::string, std::string>>(
        session, [&](auto done) { store.endpoints(std::move(done)); });
    if (!raw) return raw.error();
    std::map<std::string, Endpoint> out;
    for (const auto& [id, json] : raw.value()) {
      auto e = delivery::endpoint_from_json(json);
      if (e) out.emplace(id, std::move(e.value()));
    }
    return out;
  }
  Result<Endpoint> endpoint(const std::string& id) {
    auto all = endpoints();
    if (!all) return all.error();
    auto it = all->find(id);
    if (it == all->end()) return make_error(Errc::usage, fmt::format("no endpoint {}", id));
    return it->second;
  }
  Status put(const Endpoint& e) {
    return await_status(session, [&](auto done) {
      store.put_endpoint(e.id, delivery::to_json(e), std::move(done));
    });
  }
  delivery::Circuit circuit(const std::string& id) {
    auto text = await<std::string>(session, [&](auto done) { store.breaker(id, std::move(done)); });
    return text ? delivery::decode(text.value()).circuit : delivery::Circuit::closed;
  }
};

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string endpoint_line(const Endpoint& e, delivery::Circuit circuit) {
  return fmt::format("{} {} events={} store={} plan={} state={} circuit={}", e.id, e.url,
                     join(e.events, ","), e.store_id.empty() ? "*" : e.store_id,
                     e.plan.empty() ? "-" : e.plan, delivery::to_string(e.state),
                     delivery::to_string(circuit));
}

// The URL rules of `endpoints add`: http(s), and no literal private address unless allowed.
Status check_url(const Config& config, const std::string& url) {
  auto u = delivery::parse_url(url);
  if (!u) return u.error();
  if (!config.delivery_allow_private) {
    if (auto priv = delivery::is_private_literal(u->host); priv && *priv) {
      return make_error(Errc::usage, fmt::format("{} is a private or loopback address (set "
                                                 "SAGAFLOW_DELIVERY_ALLOW_PRIVATE=1 to allow it)",
                                                 u->host));
    }
  }
  return Status::success();
}

// RFC 3339 (UTC "Z" or an offset) to ms since the epoch.
std::optional<Millis> parse_rfc3339(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return std::nullopt;
  if (*rest == '.') {
    ++rest;
    while (*rest >= '0' && *rest <= '9') ++rest;
  }
  long offset = 0;
  if (*rest == 'Z' || *rest == 'z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    int hh = 0, mm = 0;
    if (std::sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
    offset = (hh * 3600L + mm * 60L) * (*rest == '+' ? 1 : -1);
    rest += 6;
  } else {
    return std::nullopt;
  }
  if (*rest != '\0') return std::nullopt;
  return (static_cast<Millis>(timegm(&tm)) - offset) * 1000;
}

}  // namespace

int run_endpoints(const Config& config, const EndpointsArgs& args) {
  const std::string cmd = "endpoints " + args.action;
  Tools t(config);
  if (args.action == "add") {
    auto events = delivery::parse_patterns(args.events);
    if (!events) return fail(cmd, events.error().detail, 2);
    if (auto st = check_url(config, args.url); !st) return fail(cmd, st.error().detail, 2);
    if (!args.plan.empty() && config.find_plan(args.plan) == nullptr)
      return fail(cmd, fmt::format("plan '{}' is not one of SAGAFLOW_PLANS", args.plan), 2);
    Endpoint e;
    e.id = delivery::new_endpoint_id();
    e.url = args.url;
    e.events = std::move(events.value());
    e.store_id = args.store;
    e.plan = args.plan;
    e.created_ms = wall_ms();
    if (!args.secret.empty() && !http::secret_key(args.secret))
      return fail(cmd, "--secret: a whsec_ secret must be base64 after the prefix", 2);
    const std::string secret = args.secret.empty() ? delivery::new_secret() : args.secret;
    e.secrets.push_back({secret, e.created_ms});
    if (auto st = t.put(e); !st) return fail(cmd, st.error().detail);
    std::printf("%s %s\n", e.id.c_str(), secret.c_str());
    return 0;
  }
  if (args.action == "list") {
    auto all = t.endpoints();
    if (!all) return fail(cmd, all.error().detail);
    if (args.json) std::printf("[");
    bool first = true;
    for (const auto& [id, e] : all.value()) {
      const auto c = t.circuit(id);
      if (args.json) {
        std::printf("%s%s", first ? "" : ",", endpoint_json(e, c, false).c_str());
      } else {
        std::printf("%s\n", endpoint_line(e, c).c_str());
      }
      first = false;
    }
    if (args.json) std::printf("]\n");
    return 0;
  }
  // The rest name one endpoint.
  auto e = t.endpoint(args.id);
  if (!e) return fail(cmd, e.error().detail);
  if (args.action == "show") {
    const auto c = t.circuit(args.id);
    if (args.json) {
      std::printf("%s\n", endpoint_json(e.value(), c, true).c_str());
    } else {
      std::printf("%s\n", endpoint_line(e.value(), c).c_str());
      for (const auto& s : e->secrets)
        std::printf("secret created %s\n", iso_time(s.created_ms).c_str());
    }
    return 0;
  }
  if (args.action == "disable" || args.action == "enable") {
    e->state = args.action == "enable" ? EndpointState::enabled : EndpointState::disabled;
    if (auto st = t.put(e.value()); !st) return fail(cmd, st.error().detail);
    std::printf("%s %s\n", e->id.c_str(), std::string(delivery::to_string(e->state)).c_str());
    return 0;
  }
  if (args.action == "rotate") {
    const Millis now = wall_ms();
    const std::string secret = delivery::new_secret();
    // Secrets no longer used for signing are dropped; the newest old one signs for 24 h more.
    const auto signing = delivery::signing_secrets(e.value(), now);
    std::vector<delivery::Secret> kept;
    for (const auto& s : e->secrets) {
      if (std::find(signing.begin(), signing.end(), s.value) != signing.end()) kept.push_back(s);
    }
    kept.push_back({secret, now});
    e->secrets = std::move(kept);
    if (auto st = t.put(e.value()); !st) return fail(cmd, st.error().detail);
    std::printf("%s\n", secret.c_str());
    return 0;
  }
  if (args.action == "remove") {
    auto removed = await<bool>(
        t.session, [&](auto done) { t.store.remove_endpoint(args.id, std::move(done)); });
    if (!removed) return fail(cmd, removed.error().detail);
    std::printf("%s removed\n", args.id.c_str());
    return 0;
  }
  return fail(cmd, "unknown action", 2);
}

namespace {}  // namespace

int run_deliveries(const Config& config, const DeliveriesArgs& args) {
  const std::string cmd = "deliveries " + args.action;
  Tools t(config);
  if (args.action == "show") {
    auto fields = await<std::map<std::string, std::string>>(
        t.session, [&](auto done) { t.store.get(args.event_id, std::move(done)); });
    if (!fields) return fail(cmd, fields.error().detail);
    if (fields->empty()) return fail(cmd, fmt::format("no deliveries of event {}", args.event_id));
    const auto rows = rows_of({{args.event_id, fields.value()}});
    if (args.json) {
      std::string out = "[";
      for (std::size_t i = 0; i < rows.size(); ++i) {
        if (i) out += ',';
        std::string row = row_json(rows[i]);
        row.pop_back();
        row += ",\"log\":" + delivery::to_json(rows[i].record).substr(0) + "}";
        out += row;
      }
      std::printf("%s]\n", out.c_str());
      return 0;
    }
    for (const auto& r : rows) {
      std::printf("%s %s state=%s attempts=%d next_at=%s\n", r.event_id.c_str(), r.endpoint.c_str(),
                  std::string(delivery::to_string(r.record.state)).c_str(), r.record.attempts,
                  iso_time(r.record.next_at_ms).c_str());
      for (const auto& a : r.record.log) {
        std::printf("  attempt %s status=%d %lldms%s%s\n", iso_time(a.at_ms).c_str(), a.status,
                    static_cast<long long>(a.latency_ms),
                    a.error.empty() ? "" : " error=", a.error.c_str());
      }
    }
    return 0;
  }
  if (args.limit < 1) return fail(cmd, "--limit must be at least 1", 2);
  std::optional<Millis> since;
  if (!args.since.empty()) {
    since = parse_rfc3339(args.since);
    if (!since)
      return fail(cmd, fmt::format("--since '{}' is not an RFC 3339 time", args.since), 2);
  }
  const int scan = static_cast<int>(std::min<std::int64_t>(config.delivery_log_max, 100000));
  auto logged = await<std::vector<store::Deliveries::Logged>>(
      t.session, [&](auto done) { t.store.recent(scan, std::move(done)); });
  if (!logged) return fail(cmd, logged.error().detail);
  std::vector<DeliveryRow> rows = rows_of(logged.value());
  std::erase_if(rows, [&](const DeliveryRow& r) {
    if (!args.endpoint.empty() && r.endpoint != args.endpoint) return true;
    if (args.dead && r.record.state != delivery::DeliveryState::dead) return true;
    if (args.failed && !failed_row(r)) return true;
    if (since && r.created_ms < *since) return true;
    return false;
  });
  if (args.action == "list") {
    if (rows.size() > static_cast<std::size_t>(args.limit))
      rows.resize(static_cast<std::size_t>(args.limit));
    if (args.json) {
      std::string out = "[";
      for (std::size_t i = 0; i < rows.size(); ++i) out += (i ? "," : "") + row_json(rows[i]);
      std::printf("%s]\n", out.c_str());
      return 0;
    }
    for (const auto& r : rows) {
      std::printf("%s %s state=%s attempts=%d last_status=%d next_at=%s\n", r.event_id.c_str(),
                  r.endpoint.c_str(), std::string(delivery::to_string(r.record.state)).c_str(),
                  r.record.attempts, r.record.last_status, iso_time(r.record.next_at_ms).c_str());
    }
    return 0;
  }
  if (args.action == "replay") {
    if (args.endpoint.empty()) return fail(cmd, "--endpoint ID is required", 2);
    if (auto e = t.endpoint(args.endpoint); !e) return fail(cmd, e.error().detail);
    std::int64_t replayed = 0;
    for (auto& r : rows) {
      if (replayed >= args.limit) break;
      if (r.record.state == delivery::DeliveryState::pending && !args.dead) continue;  // on its way
      r.record.restart(wall_ms());
      auto ok = await<bool>(t.session, [&](auto done) {
        t.store.update(r.event_id, r.endpoint, delivery::to_json(r.record), r.record.next_at_ms,
                       r.raw, std::move(done));
      });
      if (!ok) return fail(cmd, ok.error().detail);
      if (ok.value()) ++replayed;
    }
    std::printf("%lld\n", static_cast<long long>(replayed));
    return 0;
  }
  return fail(cmd, "unknown action", 2);
}

}  // namespace sagaflow::app

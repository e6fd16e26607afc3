#include "app/console/console_api.hpp"

#include <uv.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>

#include "app/console/access.hpp"
#include "app/console/assets.hpp"
#include "app/impl/delivery_json.hpp"
#include "brokers/broker.hpp"
#include "core/envelope.hpp"
#include "core/log.hpp"
#include "delivery/breaker.hpp"
#include "delivery/endpoint.hpp"
#include "delivery/record.hpp"
#include "sagas/definition.hpp"
#include "sagas/engine.hpp"
#include "sagas/saga_state.hpp"
#include "store/dead_letters.hpp"
#include "store/deliveries.hpp"
#include "store/keyspace.hpp"
#include "store/parking.hpp"
#include "store/redis_client.hpp"
#include "store/saga_index.hpp"
#include "store/saga_store.hpp"
#include "topology/names.hpp"

namespace sagaflow::app::console {
namespace {

using http::Request;
using http::Respond;
using http::Response;
using Counts = std::map<std::string, std::int64_t>;

constexpr std::size_t kMaxPage = 500;
constexpr std::size_t kDefaultPage = 50;
constexpr std::int64_t kReplayMax = 100000;  // dead letters one console replay re-publishes
constexpr Millis kRecentWindowMs = 60000;
constexpr std::uint64_t kFailedLoginDelayMs = 500;
const std::vector<std::string> kSagaStates = {"running",   "compensating", "stuck",
                                              "confirmed", "failed",       "parked"};

Millis wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void add_security_headers(Response& r) {
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "img-src 'self'; connect-src 'self'; form-action 'self'; "
                         "frame-ancestors 'none'; base-uri 'none'");
}

Response json(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  add_security_headers(r);
  return r;
}

Response error(int status, std::string_view code, std::string_view detail) {
  std::string body = "{\"error\":";
  append_json_string(body, code);
  body += ",\"detail\":";
  append_json_string(body, detail);
  body += "}";
  return json(status, std::move(body));
}

Response unavailable(const Error& e) {
  return error(503, "unavailable", "Redis: " + e.detail);
}

std::string counts_json(const Counts& counts) {
  std::string out;
  append_json_counts(out, counts);
  return out;
}

std::string cursor_json(const std::optional<std::string>& cursor) {
  if (!cursor) return "null";
  std::string out;
  append_json_string(out, *cursor);
  return out;
}

// limit=N: 1..500, default 50; anything else is a 400 with this detail.
Result<std::size_t> page_limit(const Request& r) {
  const std::string* text = r.query_param("limit");
  if (text == nullptr || text->empty()) return kDefaultPage;
  std::size_t n = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), n);
  if (ec != std::errc() || ptr != text->data() + text->size() || n < 1 || n > kMaxPage) {
    return make_error(Errc::usage, fmt::format("limit must be a whole number from 1 to {}, not "
                                               "'{}'",
                                               kMaxPage, *text));
  }
  return n;
}

std::string param(const Request& r, std::string_view name) {
  const std::string* v = r.query_param(name);
  return v == nullptr ? std::string() : *v;
}

// A reason code or a state: lower-case letters, digits, '_', ':' and '-' only (the index keys
// are built from it).
bool plain_word(std::string_view s) {
  if (s.empty() || s.size() > 100) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '-' ||
           c == '.';
  });
}

std::string_view strip_prefix(std::string_view s, std::string_view prefix) {
  return s.substr(prefix.size());
}

}  // namespace

struct ConsoleApi::Impl {
  uv_loop_s* loop;
  store::RedisClient& redis;
  Config config;
  // Shared with a replay running on libuv's thread pool (its calls are const and blocking).
  std::shared_ptr<const brokers::Broker> broker = brokers::open_broker(config);
  std::vector<SagaDefinition> definitions;
  const Access& access;
  store::SagaStore sagas;
  store::SagaIndex index;
  store::DeadLetterIndex dead_letters;
  store::Parking parking;
  store::Deliveries deliveries;
  bool replay_running = false;

  Impl(uv_loop_s* l, store::RedisClient& r, const Config& c, std::vector<SagaDefinition> defs,
       const Access& a)
      : loop(l),
        redis(r),
        config(c),
        definitions(std::move(defs)),
        access(a),
        sagas(r, saga_options(c)),
        index(r, c.redis_partitions, c.dedup_ttl_s),
        dead_letters(r),
        parking(r, c.redis_partitions),
        deliveries(r, deliveries_options(c)) {}

  static store::SagaStoreOptions saga_options(const Config& c) {
    store::SagaStoreOptions o;
    o.partitions = c.redis_partitions;
    o.dedup_ttl_s = c.dedup_ttl_s;
    return o;
  }

  void log_action(std::string_view who, std::string_view action, std::string_view target,
                  std::string_view result) {
    log::info("console action",
              {{"who", who}, {"action", action}, {"target", target}, {"result", result}});
  }

  void handle(const Request& r, Respond respond) {
    if (r.path == "/healthz") {
      Response ok;
      ok.body = "ok\n";
      return respond(std::move(ok));
    }
    const Access::Decision d = access.check(r, wall_ms() / 1000);
    if (d.status != 0) {
      Response refused =
          d.status == 401 && (r.path == "/" || r.path == "/index.html")
              ? page(401, "login.html")
              : error(d.status, d.status == 401 ? "unauthorized" : "forbidden", d.detail);
      // A wrong credential (a Bearer token, a session cookie) is answered after a pause, as a
      // wrong token at /login is: guessing costs time, whichever way it comes.
      if (d.status == 401 && (!r.header("authorization").empty() || !r.header("cookie").empty())) {
        return later(kFailedLoginDelayMs,
                     [respond = std::move(respond), refused = std::move(refused)]() mutable {
                       respond(std::move(refused));
                     });
      }
      return respond(std::move(refused));
    }
    if (r.path == "/login") return login(r, std::move(respond));
    if (r.method != "GET" && r.method != "POST") {
      return respond(error(405, "method_not_allowed", "GET or POST only"));
    }
    if (r.method == "GET" && (r.path == "/" || r.path == "/index.html")) {
      return respond(page(200, "index.html"));
    }
    if (r.method == "GET" && r.path.starts_with("/static/")) {
      return respond(static_file(strip_prefix(r.path, "/static/")));
    }
    const bool get = r.method == "GET";
    if (get && r.path == "/api/overview") return overview(std::move(respond));
    if (get && r.path == "/api/sagas") return saga_list(r, std::move(respond));
    if (r.path.starts_with("/api/sagas/")) {
      std::string_view rest = strip_prefix(r.path, "/api/sagas/");
      constexpr std::string_view kResend = "/resend";
      if (!get && rest.ends_with(kResend)) {
        return resend(std::string(rest.substr(0, rest.size() - kResend.size())), d.who,
                      std::move(respond));
      }
      // Everything after the prefix is the order id (which may itself contain '/').
      if (get && !rest.empty()) return saga_detail(std::string(rest), std::move(respond));
    }
    if (get && r.path == "/api/dead-letters") return dead_letter_list(r, std::move(respond));
    if (!get && r.path == "/api/dead-letters/replay") {
      return replay(r.body, d.who, std::move(respond));
    }
    if (get && r.path == "/api/endpoints") return endpoints(std::move(respond));
    if (get && r.path == "/api/deliveries") return delivery_list(r, std::move(respond));
    if (!get && r.path == "/api/deliveries/replay") {
      return delivery_replay(r.body, d.who, std::move(respond));
    }
    respond(error(404, "not_found", fmt::format("no {} {}", r.method, r.path)));
  }

  // ---- page, static files, login ----

  Response page(int status, std::string_view name) {
    Response p;
    p.status = status;
    p.content_type = "text/html; charset=utf-8";
    p.body = std::string(asset(name));
    static constexpr std::string_view kMark = "{{csrf}}";
    if (auto at = p.body.find(kMark); at != std::string::npos) {
      p.body.replace(at, kMark.size(), access.csrf_token());
    }
    add_security_headers(p);
    return p;
  }

  Response static_file(std::string_view name) {
    const std::string_view body = asset(name);
    if (body.empty() || name.ends_with(".html")) return error(404, "not_found", "no such file");
    Response f;
    f.content_type = name.ends_with(".css")  ? "text/css; charset=utf-8"
                     : name.ends_with(".js") ? "text/javascript; charset=utf-8"
                                             : "application/octet-stream";
    f.body = std::string(body);
    add_security_headers(f);
    return f;
  }

  void login(const Request& r, Respond respond) {
    if (r.method == "GET") return respond(page(200, "login.html"));
    if (r.method != "POST") return respond(error(405, "method_not_allowed", "GET or POST"));
    Response to_page;
    to_page.status = 303;
    to_page.headers.emplace_back("Location", "/");
    add_security_headers(to_page);
    if (!access.has_token()) return respond(std::move(to_page));  // nothing to log in to
    if (!access.token_matches(form_value(r.body, "token"))) {
      log_action("anonymous", "login", "-", "refused");
      // A wrong token is answered after a pause: guessing costs time, not just bandwidth.
      return later(kFailedLoginDelayMs, [this, respond = std::move(respond)]() mutable {
        respond(page(401, "login.html"));
      });
    }
    const std::string id = random_hex(8);
    to_page.headers.emplace_back("Set-Cookie",
                                 access.set_cookie(access.session_value(id, wall_ms() / 1000)));
    log_action("session:" + id, "login", "-", "ok");
    respond(std::move(to_page));
  }

  // Runs `fn` on the loop after `ms`.
  void later(std::uint64_t ms, std::function<void()> fn) {
    struct Timer {
      uv_timer_t handle{};
      std::function<void()> fn;
    };
    auto* t = new Timer{{}, std::move(fn)};
    uv_timer_init(loop, &t->handle);
    t->handle.data = t;
    uv_timer_start(
        &t->handle,
        [](uv_timer_t* h) {
          auto* timer = static_cast<Timer*>(h->data);
          timer->fn();
          uv_close(reinterpret_cast<uv_handle_t*>(h),
                   [](uv_handle_t* closed) { delete static_cast<Timer*>(closed->data); });
        },
        ms, 0);
  }

  // ---- overview ----

  void overview(Respond respond) {
    struct Acc {
      Counts sagas;
      std::int64_t parked = 0;
      Counts dead;
      std::int64_t endpoints = 0, circuit_open = 0;
      std::int64_t recent_confirmed = 0, recent_failed = 0;
    };
    auto acc = std::make_shared<Acc>();
    sagas.status_counts([this, acc, respond = std::move(respond)](Result<Counts> c) mutable {
      if (!c) return respond(unavailable(c.error()));
      acc->sagas = std::move(c.value());
      for (const auto& s : kSagaStates) acc->sagas.try_emplace(s, 0);
      parking.counts([this, acc, respond = std::move(respond)](Result<Counts> p) mutable {
        if (!p) return respond(unavailable(p.error()));
        for (const auto& [store, n] : p.value()) acc->parked += n;
        dead_letters.counts([this, acc, respond = std::move(respond)](Result<Counts> dl) mutable {
          if (!dl) return respond(unavailable(dl.error()));
          acc->dead = std::move(dl.value());
          recent(
              acc->recent_confirmed, acc->recent_failed,
              [this, acc, respond = std::move(respond)](Status st) mutable {
                if (!st) return respond(unavailable(st.error()));
                endpoint_health([acc, respond = std::move(respond)](
                                    Result<std::pair<std::int64_t, std::int64_t>> e) mutable {
                  if (!e) return respond(unavailable(e.error()));
                  std::tie(acc->endpoints, acc->circuit_open) = e.value();
                  std::int64_t total = 0;
                  for (const auto& [reason, n] : acc->dead) total += n;
                  respond(json(
                      200, fmt::format("{{\"sagas\":{},\"parked\":{},\"dead_letters\":{{\"total\":"
                                       "{},\"by_reason\":{}}},\"endpoints\":{{\"total\":{},"
                                       "\"circuit_open\":{}}},\"recent\":{{\"window_s\":{},"
                                       "\"confirmed\":{},\"failed\":{}}}}}",
                                       counts_json(acc->sagas), acc->parked, total,
                                       counts_json(acc->dead), acc->endpoints, acc->circuit_open,
                                       kRecentWindowMs / 1000, acc->recent_confirmed,
                                       acc->recent_failed)));
                });
              });
        });
      });
    });
  }

  // Sagas confirmed / failed in the last minute: ZCOUNT on each partition's status index.
  void recent(std::int64_t& confirmed, std::int64_t& failed, std::function<void(Status)> done) {
    struct Gather {
      std::size_t pending = 0;
      std::optional<Error> error;
      std::function<void(Status)> done;
    };
    auto g = std::make_shared<Gather>();
    g->done = std::move(done);
    const std::string since = std::to_string(wall_ms() - kRecentWindowMs);
    for (int p = 0; p < config.redis_partitions; ++p) {
      for (auto* out : {&confirmed, &failed}) {
        const char* status = out == &confirmed ? "confirmed" : "failed";
        ++g->pending;
        redis.command({"ZCOUNT", store::Keyspace::status_index_key(p, status), since, "+inf"},
                      [g, out](Result<store::Reply> r) {
                        if (!r) {
                          if (!g->error) g->error = r.error();
                        } else if (r->type == store::Reply::Type::integer) {
                          *out += r->integer;
                        }
                        if (--g->pending == 0) {
                          g->done(g->error ? Status(*g->error) : Status::success());
                        }
                      });
      }
    }
  }

  void endpoint_health(std::function<void(Result<std::pair<std::int64_t, std::int64_t>>)> done) {
    deliveries.endpoints([this, done = std::move(done)](
                             Result<std::map<std::string, std::string>> all) mutable {
      if (!all) return done(all.error());
      std::vector<std::string> ids;
      for (const auto& [id, json] : all.value()) ids.push_back(id);
      const auto total = static_cast<std::int64_t>(ids.size());
      if (ids.empty()) return done(std::pair<std::int64_t, std::int64_t>{0, 0});
      deliveries.breakers(
          ids, [total, done = std::move(done)](Result<std::vector<std::string>> states) mutable {
            if (!states) return done(states.error());
            std::int64_t open = 0;
            for (const auto& s : states.value()) {
              open += delivery::decode(s).circuit == delivery::Circuit::open;
            }
            done(std::pair<std::int64_t, std::int64_t>{total, open});
          });
    });
  }

  // ---- sagas ----

  void saga_list(const Request& r, Respond respond) {
    auto limit = page_limit(r);
    if (!limit) return respond(error(400, "bad_request", limit.error().detail));
    const std::string state = param(r, "state");
    const std::string reason = param(r, "reason");
    std::vector<std::string> statuses;
    if (!state.empty()) {
      if (std::find(kSagaStates.begin(), kSagaStates.end(), state) == kSagaStates.end()) {
        return respond(error(400, "bad_request",
                             fmt::format("state must be one of running, compensating, stuck, "
                                         "confirmed, failed, parked; not '{}'",
                                         state)));
      }
      if (!reason.empty()) {
        return respond(error(400, "bad_request", "give state or reason, not both"));
      }
      statuses.push_back(state);
    } else if (reason.empty()) {
      statuses = kSagaStates;
    } else if (!plain_word(reason)) {
      return respond(error(400, "bad_request", fmt::format("'{}' is not a reason code", reason)));
    }
    auto listing = std::make_shared<Listing>();
    listing->statuses = std::move(statuses);
    listing->reason = reason;
    listing->limit = limit.value();
    listing->respond = std::move(respond);
    list_step(std::move(listing), param(r, "cursor"));
  }

  // One saga list request: the rows gathered so far over the index pages read.
  struct Listing {
    std::vector<std::string> statuses;
    std::string reason;
    std::size_t limit = 0;
    std::vector<std::string> rows;  // each a JSON object
    int pages = 0;
    Respond respond;
  };
  // Index pages read for one answer at most: a page whose listed sagas have all changed since
  // they were indexed is followed by the next one, so an answer is short only at the end.
  static constexpr int kMaxIndexPages = 8;

  void list_step(std::shared_ptr<Listing> l, std::string cursor) {
    const std::size_t want = l->limit - l->rows.size();
    index.page(l->statuses, l->reason, want, cursor,
               [this, l](Result<store::SagaIndexPage> page) mutable {
                 if (!page) {
                   if (page.error().code == Errc::usage) {
                     return l->respond(error(400, "bad_request", page.error().detail));
                   }
                   return l->respond(unavailable(page.error()));
                 }
                 with_records(std::move(page.value()), std::move(l));
               });
  }

  // Each listed saga's record, for its current state and reason (one pipelined GET each).
  // A listed saga whose record no longer agrees with the list (it expired, or an index entry
  // was left by a worker of a version before the indexes) is not shown.
  void with_records(store::SagaIndexPage page, std::shared_ptr<Listing> listing) {
    struct Gather {
      store::SagaIndexPage page;
      std::vector<std::optional<SagaState>> states;
      std::size_t pending = 0;
      std::optional<Error> error;
      std::shared_ptr<Listing> l;
    };
    auto g = std::make_shared<Gather>();
    g->states.resize(page.sagas.size());
    g->page = std::move(page);
    g->l = std::move(listing);
    auto finish = [this, g] {
      Listing& l = *g->l;
      if (g->error) return l.respond(unavailable(*g->error));
      for (std::size_t i = 0; i < g->page.sagas.size(); ++i) {
        const auto& s = g->page.sagas[i];
        const auto& st = g->states[i];
        if (!st) continue;  // expired between the index and the record
        if (!l.reason.empty() && st->reason != l.reason) continue;
        if (l.reason.empty() &&
            std::find(l.statuses.begin(), l.statuses.end(), st->status_name()) == l.statuses.end())
          continue;
        std::string row = "{\"order_id\":";
        append_json_string(row, s.order_id);
        row += ",\"state\":";
        append_json_string(row, st->status_name());
        row += ",\"reason\":";
        if (st->reason.empty()) {
          row += "null";
        } else {
          append_json_string(row, st->reason);
        }
        row += fmt::format(",\"updated_at\":{},\"store_id\":", s.updated_at);
        append_json_string(row, st->store_id.str());
        row += "}";
        l.rows.push_back(std::move(row));
      }
      if (l.rows.size() < l.limit && g->page.next_cursor && ++l.pages < kMaxIndexPages) {
        return list_step(g->l, *g->page.next_cursor);
      }
      std::string out = "{\"sagas\":[";
      for (std::size_t i = 0; i < l.rows.size(); ++i) {
        if (i > 0) out += ',';
        out += l.rows[i];
      }
      out += "],\"next_cursor\":" + cursor_json(g->page.next_cursor) + "}";
      l.respond(json(200, std::move(out)));
    };
    if (g->page.sagas.empty()) return finish();
    g->pending = g->page.sagas.size();
    for (std::size_t i = 0; i < g->page.sagas.size(); ++i) {
      sagas.load(OrderId(g->page.sagas[i].order_id), [g, i, finish](Result<store::SagaRecord> rec) {
        if (!rec) {
          if (!g->error) g->error = rec.error();
        } else if (rec->version > 0) {
          if (auto st = SagaState::from_record(rec->state, rec->order); st) {
            g->states[i] = std::move(st.value());
          }
        }
        if (--g->pending == 0) finish();
      });
    }
  }

  const SagaDefinition* definition_of(const SagaState& s) const {
    return find_definition(definitions, s.saga);
  }

  void saga_detail(std::string order_id, Respond respond) {
    sagas.load(OrderId(order_id), [this, order_id, respond = std::move(respond)](
                                      Result<store::SagaRecord> rec) mutable {
      if (!rec) return respond(unavailable(rec.error()));
      if (rec->version == 0) {
        return respond(error(404, "not_found", fmt::format("no saga for order '{}'", order_id)));
      }
      auto state = SagaState::from_record(rec->state, rec->order);
      if (!state) {
        return respond(error(500, "internal",
                             fmt::format("saga record unreadable: {}", state.error().detail)));
      }
      // The full object (steps done, pending compensations), as `saga show` prints it.
      std::string saga = state->to_json();
      saga.pop_back();
      saga += fmt::format(",\"version\":{}}}", rec->version);
      const SagaDefinition* def = definition_of(state.value());
      respond(json(200, fmt::format("{{\"saga\":{},\"definition\":{}}}", saga,
                                    def ? definition_to_json(*def) : std::string("null"))));
    });
  }

  void resend(std::string order_id, std::string who, Respond respond) {
    sagas.load(OrderId(order_id), [this, order_id, who, respond = std::move(respond)](
                                      Result<store::SagaRecord> rec) mutable {
      if (!rec) return respond(unavailable(rec.error()));
      if (rec->version == 0) {
        return respond(error(404, "not_found", fmt::format("no saga for order '{}'", order_id)));
      }
      auto state = SagaState::from_record(rec->state, rec->order);
      if (!state) return respond(error(500, "internal", state.error().detail));
      const SagaDefinition* def = definition_of(state.value());
      if (def == nullptr) {
        return respond(
            error(500, "internal", fmt::format("no definition '{}' in this console", state->saga)));
      }
      const Millis now = wall_ms();
      StepResult step = resend_stuck(*def, state.value(), now);
      if (step.disposition != Disposition::applied || step.commands.empty()) {
        log_action(who, "resend", order_id, "refused: not stuck");
        return respond(error(409, "not_stuck",
                             fmt::format("the saga is {}; only a stuck saga's compensation can be "
                                         "re-sent",
                                         state->status_name())));
      }
      store::ApplyRequest req;
      req.order_id = OrderId(order_id);
      req.expected_version = rec->version;
      step.state.append_record(req.new_state);
      if (rec->order.empty()) step.state.append_order(req.order);
      req.new_status = std::string(step.state.status_name());
      req.old_status = std::string(state->status_name());
      for (const auto& cmd : step.commands) {
        req.commands.push_back({cmd.id, std::string(topology::kCommandsExchange),
                                std::string(to_string(cmd.type)), cmd.body});
      }
      req.deadline = step.deadline;
      req.store_id = step.state.store_id;
      req.updated_at = now;
      req.reason = step.state.reason;
      std::string sent = "[";
      for (std::size_t i = 0; i < step.commands.size(); ++i) {
        if (i > 0) sent += ',';
        sent += "{\"type\":";
        append_json_string(sent, to_string(step.commands[i].type));
        sent += ",\"id\":";
        append_json_string(sent, step.commands[i].id);
        sent += "}";
      }
      sent += "]";
      sagas.apply(req, [this, order_id, who, sent,
                        respond = std::move(respond)](Result<store::ApplyOutcome> out) mutable {
        if (!out) {
          log_action(who, "resend", order_id, "failed: " + out.error().detail);
          return respond(unavailable(out.error()));
        }
        if (out->kind != store::ApplyKind::applied) {
          log_action(who, "resend", order_id, "refused: changed meanwhile");
          return respond(
              error(409, "conflict", "the saga changed meanwhile; reload it and try again"));
        }
        log_action(who, "resend", order_id, "ok");
        respond(json(200, fmt::format("{{\"resent\":{},\"version\":{}}}", sent, out->version)));
      });
    });
  }

  // ---- dead letters ----

  void dead_letter_list(const Request& r, Respond respond) {
    auto limit = page_limit(r);
    if (!limit) return respond(error(400, "bad_request", limit.error().detail));
    const std::string reason = param(r, "reason");
    if (!reason.empty() && !plain_word(reason)) {
      return respond(error(400, "bad_request", fmt::format("'{}' is not a reason code", reason)));
    }
    dead_letters.page(reason, limit.value(), param(r, "cursor"),
                      [respond = std::move(respond)](Result<store::DeadLetterPage> page) mutable {
                        if (!page) {
                          if (page.error().code == Errc::usage) {
                            return respond(error(400, "bad_request", page.error().detail));
                          }
                          return respond(unavailable(page.error()));
                        }
                        std::string out = "{\"dead_letters\":[";
                        for (std::size_t i = 0; i < page->entries.size(); ++i) {
                          if (i > 0) out += ',';
                          out += page->entries[i];
                        }
                        out += "],\"next_cursor\":" + cursor_json(page->next_cursor) + "}";
                        respond(json(200, std::move(out)));
                      });
  }

  struct ReplayJob {
    uv_work_t work{};
    Impl* self = nullptr;
    Config config;
    bool by_ids = false;  // what the request asked for
    // The selection by id (also for a reason where replayed dead letters stay: the index's)
    std::set<std::string> ids;
    std::string reason;  // the selection by reason, when ids is empty
    std::string target;  // for the log line and the answer
    std::string who;
    Respond respond;
    std::shared_ptr<const brokers::Broker> broker;
    brokers::ReplayOutcome outcome;
  };

  void replay(const std::string& body, std::string who, Respond respond) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(body).get(root) != simdjson::SUCCESS || !root.is_object()) {
      return respond(error(400, "bad_request",
                           "the body must be a JSON object: {\"ids\": [...]} or {\"reason\": R}"));
    }
    auto job = std::make_unique<ReplayJob>();
    simdjson::dom::array ids;
    std::string_view reason;
    const bool has_ids = root["ids"].get_array().get(ids) == simdjson::SUCCESS;
    const bool has_reason = root["reason"].get_string().get(reason) == simdjson::SUCCESS;
    if (has_ids == has_reason) {
      return respond(
          error(400, "bad_request", "give either \"ids\" (an array of ids) or \"reason\""));
    }
    if (has_ids) {
      for (auto id : ids) {
        std::string_view s;
        if (id.get_string().get(s) != simdjson::SUCCESS || s.empty() || s.size() > 100) {
          return respond(error(400, "bad_request", "every id must be a non-empty string"));
        }
        job->ids.emplace(s);
      }
      if (job->ids.empty()) {
        return respond(error(400, "bad_request", "nothing to replay: the list of ids is empty"));
      }
    } else if (!plain_word(reason)) {
      return respond(error(400, "bad_request", "\"reason\" must be a reason code"));
    }
    if (replay_running) {
      return respond(error(409, "busy", "a replay is running; try again when it has finished"));
    }
    job->self = this;
    job->broker = broker;
    job->by_ids = has_ids;
    job->reason.assign(reason);
    job->target = has_ids ? fmt::format("{} id(s)", job->ids.size()) : "reason:" + job->reason;
    job->who = std::move(who);
    job->respond = std::move(respond);
    replay_running = true;
    if (!broker->replayed_dead_letters_stay()) return start_replay(std::move(job));
    // Kafka: a replayed record after a skipped one stays past the group's committed offset, so
    // the selection is what the index still lists (a replayed one has left it): a later replay
    // does not publish it again.
    auto selected = [this](ReplayJob* raw, Result<std::vector<std::string>> chosen) {
      std::unique_ptr<ReplayJob> j(raw);
      if (!chosen) {
        replay_running = false;
        return j->respond(unavailable(chosen.error()));
      }
      j->ids = std::set<std::string>(chosen->begin(), chosen->end());
      j->reason.clear();
      start_replay(std::move(j));
    };
    if (!has_ids) {
      const std::string r = job->reason;
      ReplayJob* raw = job.release();
      return dead_letters.ids_with_reason(r, kReplayMax,
                                          [raw, selected](Result<std::vector<std::string>> found) {
                                            selected(raw, std::move(found));
                                          });
    }
    std::vector<std::string> wanted(job->ids.begin(), job->ids.end());
    ReplayJob* raw = job.release();
    dead_letters.get(
        wanted, [raw, wanted, selected](Result<std::vector<std::optional<std::string>>> found) {
          if (!found) return selected(raw, found.error());
          std::vector<std::string> indexed;
          for (std::size_t i = 0; i < wanted.size() && i < found->size(); ++i) {
            if ((*found)[i]) indexed.push_back(wanted[i]);
          }
          selected(raw, std::move(indexed));
        });
  }

  void start_replay(std::unique_ptr<ReplayJob> job) {
    if (job->ids.empty() && job->reason.empty()) {  // Kafka: nothing in the index to replay
      replay_running = false;
      job->outcome.complete = true;
      return finish_replay(std::move(job));
    }
    job->work.data = job.get();
    if (const int rc = uv_queue_work(loop, &job->work, &run_replay, &replay_done); rc != 0) {
      replay_running = false;
      return job->respond(error(503, "unavailable", uv_strerror(rc)));
    }
    (void)job.release();  // owned by the work request until replay_done
  }

  static void run_replay(uv_work_t* w) {
    auto* job = static_cast<ReplayJob*>(w->data);
    // By ids: the scan can end once each one was found.
    const std::int64_t limit =
        job->ids.empty() ? kReplayMax : static_cast<std::int64_t>(job->ids.size());
    job->outcome = job->broker->replay_dead_letters(limit, [job](const brokers::DeadLetter& d) {
      return job->ids.empty() ? d.reason == job->reason : job->ids.contains(d.id);
    });
  }

  static void replay_done(uv_work_t* w, int) {
    std::unique_ptr<ReplayJob> job(static_cast<ReplayJob*>(w->data));
    job->self->replay_running = false;
    job->self->finish_replay(std::move(job));
  }

  void finish_replay(std::unique_ptr<ReplayJob> job) {
    const brokers::ReplayOutcome& out = job->outcome;
    log_action(job->who, "replay", job->target,
               out.error
                   ? fmt::format("failed after {} replayed: {}", out.replayed, out.error->detail)
                   : fmt::format("replayed {}", out.replayed));
    // The index forgets what was replayed (also when the replay stopped part-way). On Kafka,
    // after a complete scan, also the selected ids no longer pending (the selection came from
    // the index: they were replayed and committed earlier). Not on RabbitMQ: a dead letter
    // held unacked by another reader (a `dlq list`, another replay) is invisible to the scan.
    std::vector<std::string> forget = out.ids;
    if (broker->replayed_dead_letters_stay() && out.complete && !job->ids.empty())
      forget.assign(job->ids.begin(), job->ids.end());
    const std::int64_t replayed = out.replayed;
    const bool by_ids = job->by_ids;
    const std::string target = job->target;
    std::optional<Error> failure = out.error;
    auto answer = [replayed, by_ids, target, failure,
                   respond = std::move(job->respond)](Result<std::int64_t> removed) mutable {
      if (!removed) {
        log::warn("console: the dead-letter index was not updated after a replay",
                  {{"target", target}, {"error", removed.error().detail}});
      }
      if (failure) {
        return respond(error(
            502, "broker", fmt::format("{}; {} replayed before that", failure->detail, replayed)));
      }
      if (replayed == 0) {
        return respond(
            error(404, "not_found",
                  by_ids ? "none of the selected dead letters is in the dead-letter queue any more"
                         : fmt::format("no dead letter with reason '{}' to replay",
                                       target.substr(target.find(':') + 1))));
      }
      respond(json(200, fmt::format("{{\"replayed\":{}}}", replayed)));
    };
    if (forget.empty()) return answer(std::int64_t{0});
    dead_letters.remove(std::move(forget), std::move(answer));
  }

  // ---- endpoints and deliveries ----

  void endpoints(Respond respond) {
    deliveries.endpoints([this, respond = std::move(respond)](
                             Result<std::map<std::string, std::string>> all) mutable {
      if (!all) return respond(unavailable(all.error()));
      auto list = std::make_shared<std::vector<delivery::Endpoint>>();
      std::vector<std::string> ids;
      for (const auto& [id, text] : all.value()) {
        if (auto e = delivery::endpoint_from_json(text); e) {
          ids.push_back(id);
          list->push_back(std::move(e.value()));
        }
      }
      deliveries.breakers(ids, [list, respond = std::move(respond)](
                                   Result<std::vector<std::string>> states) mutable {
        if (!states) return respond(unavailable(states.error()));
        std::string out = "{\"endpoints\":[";
        for (std::size_t i = 0; i < list->size(); ++i) {
          if (i > 0) out += ',';
          const auto circuit = i < states->size() ? delivery::decode(states.value()[i]).circuit
                                                  : delivery::Circuit::closed;
          out += endpoint_json((*list)[i], circuit, false);
        }
        respond(json(200, out + "]}"));
      });
    });
  }

  // POST {"endpoint": ID}: the endpoint's dead deliveries are attempted again (the path of
  // `sagaflow deliveries replay --endpoint ID --dead`): {"replayed": n}.
  void delivery_replay(const std::string& body, std::string who, Respond respond) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    std::string_view endpoint;
    if (parser.parse(body).get(root) != simdjson::SUCCESS ||
        root["endpoint"].get_string().get(endpoint) != simdjson::SUCCESS || endpoint.empty()) {
      return respond(error(400, "bad_request", "the body must be {\"endpoint\": \"ep_...\"}"));
    }
    deliveries.has_endpoint(std::string(endpoint), [this, id = std::string(endpoint), who,
                                                    respond = std::move(respond)](
                                                       Result<bool> known) mutable {
      if (!known) return respond(unavailable(known.error()));
      if (!known.value()) {
        return respond(error(404, "not_found", fmt::format("no endpoint '{}'", id)));
      }
      const int scan = static_cast<int>(std::min<std::int64_t>(config.delivery_log_max, 100000));
      deliveries.recent(scan, [this, id, who, respond = std::move(respond)](
                                  Result<std::vector<store::Deliveries::Logged>> logged) mutable {
        if (!logged) return respond(unavailable(logged.error()));
        struct Gather {
          std::size_t pending = 0;
          std::int64_t replayed = 0;
          std::optional<Error> error;
          Respond respond;
        };
        auto g = std::make_shared<Gather>();
        g->respond = std::move(respond);
        auto finish = [this, g, id, who] {
          log_action(
              who, "replay deliveries", id,
              g->error ? "failed: " + g->error->detail : fmt::format("replayed {}", g->replayed));
          if (g->error) {
            return g->respond(error(
                503, "unavailable",
                fmt::format("Redis: {}; {} replayed before that", g->error->detail, g->replayed)));
          }
          g->respond(json(200, fmt::format("{{\"replayed\":{}}}", g->replayed)));
        };
        std::vector<DeliveryRow> rows = rows_of(logged.value());
        std::erase_if(rows, [&](const DeliveryRow& row) {
          return row.endpoint != id || row.record.state != delivery::DeliveryState::dead;
        });
        if (rows.empty()) return finish();
        g->pending = rows.size();
        const Millis now = wall_ms();
        for (auto& row : rows) {
          row.record.restart(now);
          deliveries.update(row.event_id, row.endpoint, delivery::to_json(row.record), now, row.raw,
                            [g, finish](Result<bool> ok) {
                              if (!ok) {
                                if (!g->error) g->error = ok.error();
                              } else if (ok.value()) {
                                ++g->replayed;
                              }
                              if (--g->pending == 0) finish();
                            });
        }
      });
    });
  }

  void delivery_list(const Request& r, Respond respond) {
    auto limit = page_limit(r);
    if (!limit) return respond(error(400, "bad_request", limit.error().detail));
    const std::string endpoint = param(r, "endpoint");
    const std::string state = param(r, "state");
    if (!state.empty() && state != "pending" && state != "delivered" && state != "dead" &&
        state != "failed") {
      return respond(error(400, "bad_request",
                           fmt::format("state must be pending, delivered, dead or failed; not "
                                       "'{}'",
                                       state)));
    }
    // The cursor is how many matching deliveries earlier pages showed.
    std::size_t offset = 0;
    if (const std::string cursor = param(r, "cursor"); !cursor.empty()) {
      auto [ptr, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), offset);
      if (ec != std::errc() || ptr != cursor.data() + cursor.size()) {
        return respond(error(400, "bad_request", fmt::format("'{}' is not a cursor", cursor)));
      }
    }
    auto list = [this, endpoint, state, offset, limit = limit.value()](Respond answer) {
      const int scan = static_cast<int>(std::min<std::int64_t>(config.delivery_log_max, 10000));
      list_deliveries(scan, endpoint, state, offset, limit, std::move(answer));
    };
    if (endpoint.empty()) return list(std::move(respond));
    // An unknown endpoint is a 404, not an empty list.
    deliveries.has_endpoint(
        endpoint, [endpoint, list, respond = std::move(respond)](Result<bool> known) mutable {
          if (!known) return respond(unavailable(known.error()));
          if (!known.value()) {
            return respond(error(404, "not_found", fmt::format("no endpoint '{}'", endpoint)));
          }
          list(std::move(respond));
        });
  }

  void list_deliveries(int scan, std::string endpoint, std::string state, std::size_t offset,
                       std::size_t limit, Respond respond) {
    deliveries.recent(scan, [endpoint, state, offset, limit, respond = std::move(respond)](
                                Result<std::vector<store::Deliveries::Logged>> logged) mutable {
      if (!logged) return respond(unavailable(logged.error()));
      std::vector<DeliveryRow> rows = rows_of(logged.value());
      std::erase_if(rows, [&](const DeliveryRow& row) {
        if (!endpoint.empty() && row.endpoint != endpoint) return true;
        if (state == "failed") return !failed_row(row);
        return !state.empty() && delivery::to_string(row.record.state) != state;
      });
      std::string out = "{\"deliveries\":[";
      std::size_t shown = 0;
      for (std::size_t i = offset; i < rows.size() && shown < limit; ++i, ++shown) {
        if (shown > 0) out += ',';
        out += row_json(rows[i]);
      }
      const bool more = offset + shown < rows.size();
      out += "],\"next_cursor\":";
      out += more ? fmt::format("\"{}\"", offset + shown) : std::string("null");
      respond(json(200, out + "}"));
    });
  }
};

ConsoleApi::ConsoleApi(uv_loop_s* loop, store::RedisClient& redis, const Config& config,
                       std::vector<SagaDefinition> definitions, const Access& access)
    : impl_(std::make_unique<Impl>(loop, redis, config, std::move(definitions), access)) {}

ConsoleApi::~ConsoleApi() = default;

void ConsoleApi::operator()(const Request& request, Respond respond) {
  impl_->handle(request, std::move(respond));
}

}  // namespace sagaflow::app::console

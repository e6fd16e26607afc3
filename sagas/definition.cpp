#include "sagas/definition.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <simdjson.h>

#include "sagas/impl/builtin.hpp"

namespace sagaflow {

namespace {

namespace dom = simdjson::dom;

constexpr Millis kMaxTimeoutMs = 7LL * 24 * 3600 * 1000;  // a week: beyond is surely a typo
constexpr std::int64_t kMaxRetries = 100;
constexpr std::size_t kMaxNameBytes = 64;

// Builds "file: field: message" errors.
struct Where {
  std::string_view file;
  Error fail(std::string_view field, std::string_view message) const {
    return make_error(Errc::invalid_config, fmt::format("{}: {}: {}", file, field, message));
  }
};

bool valid_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxNameBytes || s.front() < 'a' || s.front() > 'z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// The participant an event type belongs to: "payment" for "payment.charge".
std::string_view participant_of(EventType t) noexcept {
  std::string_view s = to_string(t);
  return s.substr(0, s.find('.'));
}

bool is_reply(EventType t) noexcept {
  return is_saga_input(t) && t != EventType::order_created && t != EventType::order_cancelled;
}

Result<std::string_view> read_string(const Where& w, const std::string& field, dom::element v) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return w.fail(field, "must be a string");
  return s;
}

Result<std::int64_t> read_int(const Where& w, const std::string& field, dom::element v,
                              std::int64_t min, std::int64_t max, std::string_view what) {
  std::int64_t n = 0;
  if (v.type() != dom::element_type::INT64 || v.get_int64().get(n) != simdjson::SUCCESS ||
      n < min || n > max) {
    return w.fail(field, fmt::format("must be {} (at most {})", what, max));
  }
  return n;
}

Result<EventType> read_type(const Where& w, const std::string& field, dom::element v,
                            bool want_command) {
  auto s = read_string(w, field, v);
  if (!s) return std::move(s).error();
  auto t = event_type_from(*s);
  if (!t) return w.fail(field, fmt::format("unknown event type \"{}\"", *s));
  if (want_command && !is_command(*t))
    return w.fail(field, fmt::format("\"{}\" is not a command type", *s));
  if (!want_command && !is_reply(*t)) {
    return w.fail(field, fmt::format("\"{}\" is not a participant reply type", *s));
  }
  return *t;
}

Result<StepDefinition> parse_step(const Where& w, std::size_t index, dom::element v,
                                  Millis default_timeout) {
  const std::string at = fmt::format("steps[{}]", index);
  dom::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) return w.fail(at, "must be an object");
  StepDefinition step;
  step.timeout_ms = default_timeout;
  bool seen[6] = {};
  for (auto field : obj) {
    const std::string name = fmt::format("{}.{}", at, field.key);
    const std::string_view key = field.key;
    if (key == "name") {
      auto s = read_string(w, name, field.value);
      if (!s) return std::move(s).error();
      if (!valid_name(*s)) return w.fail(name, "must match [a-z][a-z0-9_]* (at most 64 bytes)");
      step.name = std::string(*s);
      seen[0] = true;
    } else if (key == "command" || key == "compensation") {
      auto t = read_type(w, name, field.value, true);
      if (!t) return std::move(t).error();
      (key == "command" ? step.command : step.compensation) = *t;
      seen[key == "command" ? 1 : 4] = true;
    } else if (key == "success" || key == "failure" || key == "compensation_ack") {
      auto t = read_type(w, name, field.value, false);
      if (!t) return std::move(t).error();
      if (key == "success") {
        step.success = *t;
        seen[2] = true;
      } else if (key == "failure") {
        step.failure = *t;
        seen[3] = true;
      } else {
        step.compensation_ack = *t;
        seen[5] = true;
      }
    } else if (key == "timeout_ms") {
      auto n = read_int(w, name, field.value, 1, kMaxTimeoutMs, "a positive integer");
      if (!n) return std::move(n).error();
      step.timeout_ms = *n;
    } else if (key == "retries") {
      auto n = read_int(w, name, field.value, 0, kMaxRetries, "a non-negative integer");
      if (!n) return std::move(n).error();
      step.retries = static_cast<int>(*n);
    } else {
      return w.fail(name, "unknown key");
    }
  }
  static constexpr std::string_view kRequired[6] = {"name",    "command",      "success",
                                                    "failure", "compensation", "compensation_ack"};
  for (std::size_t i = 0; i < 6; ++i) {
    if (!seen[i]) return w.fail(fmt::format("{}.{}", at, kRequired[i]), "required");
  }
  // All five types of a step belong to one participant ("payment.charge", "payment.completed",
  // ...).
  const std::string_view p = participant_of(step.command);
  for (auto [t, key] : {std::pair{step.success, "success"}, std::pair{step.failure, "failure"},
                        std::pair{step.compensation, "compensation"},
                        std::pair{step.compensation_ack, "compensation_ack"}}) {
    if (participant_of(t) != p) {
      return w.fail(fmt::format("{}.{}", at, key),
                    fmt::format("\"{}\" is not an event of the participant of \"{}\"", to_string(t),
                                to_string(step.command)));
    }
  }
  if (step.success == step.failure) return w.fail(at + ".failure", "must differ from success");
  if (step.compensation_ack == step.success || step.compensation_ack == step.failure) {
    return w.fail(at + ".compensation_ack", "must differ from success and failure");
  }
  if (step.compensation == step.command)
    return w.fail(at + ".compensation", "must differ from command");
  return step;
}

Result<std::string> read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return make_error(Errc::invalid_config, fmt::format("{}: cannot be opened", path));
  std::string text;
  char buf[8192];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get()) != 0)
    return make_error(Errc::invalid_config, fmt::format("{}: cannot be read", path));
  return text;
}

}  // namespace

void SagaDefinition::finalize() noexcept {
  roles_.fill(EventRole{});
  commands_.fill(CommandRole{});
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const int s = static_cast<int>(i);
    commands_[static_cast<std::size_t>(steps[i].command)] = {s, false};
    commands_[static_cast<std::size_t>(steps[i].compensation)] = {s, true};
    roles_[static_cast<std::size_t>(steps[i].success)] = {s, ReplyRole::success};
    roles_[static_cast<std::size_t>(steps[i].failure)] = {s, ReplyRole::failure};
    roles_[static_cast<std::size_t>(steps[i].compensation_ack)] = {s, ReplyRole::compensation_ack};
  }
}

Result<SagaDefinition> parse_definition(std::string_view json, std::string_view file_name,
                                        Millis default_step_timeout_ms) {
  const Where w{file_name};
  if (default_step_timeout_ms <= 0 || default_step_timeout_ms > kMaxTimeoutMs) {
    return make_error(
        Errc::invalid_config,
        fmt::format("SAGAFLOW_STEP_TIMEOUT_MS: must be a positive integer (at most {})",
                    kMaxTimeoutMs));
  }
  dom::parser parser;
  dom::element root;
  const simdjson::padded_string padded(json);
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return make_error(Errc::invalid_config, fmt::format("{}: not valid JSON: {}", file_name,
                                                        simdjson::error_message(err)));
  }
  dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return w.fail("(root)", "must be an object");

  SagaDefinition def;
  def.source = std::string(file_name);
  bool have_name = false;
  bool have_steps = false;
  for (auto field : obj) {
    const std::string key(field.key);
    if (key == "name") {
      auto s = read_string(w, key, field.value);
      if (!s) return std::move(s).error();
      if (!valid_name(*s)) return w.fail(key, "must match [a-z][a-z0-9_]* (at most 64 bytes)");
      def.name = std::string(*s);
      have_name = true;
    } else if (key == "description") {
      auto s = read_string(w, key, field.value);
      if (!s) return std::move(s).error();
    } else if (key == "compensation_retries") {
      auto n = read_int(w, key, field.value, 0, kMaxRetries, "a non-negative integer");
      if (!n) return std::move(n).error();
      def.compensation_retries = static_cast<int>(*n);
    } else if (key == "steps") {
      dom::array arr;
      if (field.value.get_array().get(arr) != simdjson::SUCCESS)
        return w.fail(key, "must be an array");
      if (arr.size() == 0) return w.fail(key, "must hold at least one step");
      if (arr.size() > kMaxSagaSteps)
        return w.fail(key, fmt::format("at most {} steps", kMaxSagaSteps));
      std::size_t i = 0;
      for (dom::element e : arr) {
        auto step = parse_step(w, i, e, default_step_timeout_ms);
        if (!step) return std::move(step).error();
        def.steps.push_back(std::move(step.value()));
        ++i;
      }
      have_steps = true;
    } else {
      return w.fail(key, "unknown key");
    }
  }
  if (!have_name) return w.fail("name", "required");
  if (!have_steps) return w.fail("steps", "required");

  // Names and event types are unique across the saga: every reply maps to one step and role,
  // and every command id (<order_id>:<command type>) to one command.
  for (std::size_t i = 0; i < def.steps.size(); ++i) {
    const StepDefinition& a = def.steps[i];
    for (std::size_t j = 0; j < i; ++j) {
      const StepDefinition& b = def.steps[j];
      const std::string at = fmt::format("steps[{}]", i);
      if (a.name == b.name)
        return w.fail(at + ".name", fmt::format("\"{}\" is already steps[{}].name", a.name, j));
      for (EventType t : {a.command, a.compensation, a.success, a.failure, a.compensation_ack}) {
        for (EventType u : {b.command, b.compensation, b.success, b.failure, b.compensation_ack}) {
          if (t == u) {
            return w.fail(
                at, fmt::format("event type \"{}\" is already used by steps[{}]", to_string(t), j));
          }
        }
      }
    }
  }
  def.finalize();
  return def;
}

Result<std::vector<SagaDefinition>> load_definitions_from_dir(const std::string& dir,
                                                              Millis default_step_timeout_ms) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return make_error(Errc::invalid_config,
                      fmt::format("SAGAFLOW_SAGA_DIR: {}: not a folder", dir));
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".json" && it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec) {
    return make_error(Errc::invalid_config,
                      fmt::format("SAGAFLOW_SAGA_DIR: {}: {}", dir, ec.message()));
  }
  if (files.empty()) {
    return make_error(Errc::invalid_config,
                      fmt::format("SAGAFLOW_SAGA_DIR: {}: holds no *.json definition", dir));
  }
  std::sort(files.begin(), files.end());
  std::vector<SagaDefinition> defs;
  for (const fs::path& p : files) {
    const std::string file = p.filename().string();
    auto text = read_file(p.string());
    if (!text) return std::move(text).error();
    auto def = parse_definition(*text, file, default_step_timeout_ms);
    if (!def) return std::move(def).error();
    if (find_definition(defs, def->name) != nullptr) {
      return make_error(
          Errc::invalid_config,
          fmt::format("{}: name: saga \"{}\" is already defined by another file", file, def->name));
    }
    defs.push_back(std::move(def.value()));
  }
  return defs;
}

Result<std::vector<SagaDefinition>> builtin_definitions(Millis default_step_timeout_ms) {
  std::vector<SagaDefinition> defs;
  for (const auto& b : impl::builtin_definition_files()) {
    auto def = parse_definition(b.json, b.file, default_step_timeout_ms);
    if (!def) return std::move(def).error();
    defs.push_back(std::move(def.value()));
  }
  return defs;
}

Result<std::vector<SagaDefinition>> load_definitions(const std::string& dir_or_empty,
                                                     Millis default_step_timeout_ms) {
  if (dir_or_empty.empty()) return builtin_definitions(default_step_timeout_ms);
  return load_definitions_from_dir(dir_or_empty, default_step_timeout_ms);
}

const SagaDefinition* find_definition(const std::vector<SagaDefinition>& defs,
                                      std::string_view name) noexcept {
  for (const auto& d : defs) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::string definition_to_json(const SagaDefinition& d) {
  std::string out = "{\"name\":";
  append_json_string(out, d.name);
  out += fmt::format(",\"compensation_retries\":{},\"steps\":[", d.compensation_retries);
  for (std::size_t i = 0; i < d.steps.size(); ++i) {
    const StepDefinition& s = d.steps[i];
    if (i > 0) out += ',';
    out += "{\"name\":";
    append_json_string(out, s.name);
    out += fmt::format(
        ",\"command\":\"{}\",\"success\":\"{}\",\"failure\":\"{}\",\"compensation\":\"{}\","
        "\"compensation_ack\":\"{}\",\"timeout_ms\":{},\"retries\":{}}}",
        to_string(s.command), to_string(s.success), to_string(s.failure), to_string(s.compensation),
        to_string(s.compensation_ack), s.timeout_ms, s.retries);
  }
  out += "]}";
  return out;
}

}  // namespace sagaflow

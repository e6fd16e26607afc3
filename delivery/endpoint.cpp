// Webhook endpoints as data (CONTRACT.md section 9).
#include "delivery/endpoint.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

namespace sagaflow::delivery {

namespace {

namespace dom = simdjson::dom;

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_control_or_space(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

// JSON ------------------------------------------------------------------------------------------

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

Error bad_json(std::string_view why) {
  return make_error(Errc::invalid_config, fmt::format("stored endpoint: {}", why));
}

Status read_string(dom::element v, std::string_view field, std::string& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return bad_json(fmt::format("'{}' must be a string", field));
  }
  out.assign(s);
  return {};
}

Status read_millis(dom::element v, std::string_view field, Millis& out) {
  std::int64_t n = 0;
  if (v.get_int64().get(n) != simdjson::SUCCESS) {
    return bad_json(fmt::format("'{}' must be an integer", field));
  }
  out = n;
  return {};
}

Status read_secret(dom::element v, Secret& out) {
  dom::object o;
  if (v.get_object().get(o) != simdjson::SUCCESS) {
    return bad_json("'secrets' must hold objects {value, created_ms}");
  }
  bool have_value = false;
  for (auto field : o) {
    if (field.key == "value") {
      if (auto st = read_string(field.value, "secrets.value", out.value); !st) return st;
      have_value = true;
    } else if (field.key == "created_ms") {
      if (auto st = read_millis(field.value, "secrets.created_ms", out.created_ms); !st) return st;
    }
  }
  if (!have_value) return bad_json("a secret has no 'value'");
  return {};
}

// URLs -----------------------------------------------------------------------------------------

Error bad_url(std::string_view why) {
  return make_error(Errc::usage, std::string(why));
}

bool host_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

void random_bytes(unsigned char* out, std::size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) {
    throw std::runtime_error("the system's random generator failed (RAND_bytes)");
  }
}

}  // namespace

std::string_view to_string(EndpointState s) noexcept {
  switch (s) {
    case EndpointState::enabled:
      return "enabled";
    case EndpointState::disabled:
      return "disabled";
    case EndpointState::disabled_gone:
      return "disabled:gone";
  }
  return "disabled";
}

std::optional<EndpointState> endpoint_state_from(std::string_view text) noexcept {
  if (text == "enabled") return EndpointState::enabled;
  if (text == "disabled") return EndpointState::disabled;
  if (text == "disabled:gone") return EndpointState::disabled_gone;
  return std::nullopt;
}

std::string to_json(const Endpoint& e) {
  std::string out;
  out.reserve(256);
  out += "{\"id\":";
  append_json_string(out, e.id);
  out += ",\"url\":";
  append_json_string(out, e.url);
  out += ",\"events\":[";
  for (std::size_t i = 0; i < e.events.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, e.events[i]);
  }
  out += "],\"store_id\":";
  append_json_string(out, e.store_id);
  out += ",\"plan\":";
  append_json_string(out, e.plan);
  out += ",\"state\":";
  append_json_string(out, to_string(e.state));
  out += ",\"secrets\":[";
  for (std::size_t i = 0; i < e.secrets.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"value\":";
    append_json_string(out, e.secrets[i].value);
    out += fmt::format(",\"created_ms\":{}}}", e.secrets[i].created_ms);
  }
  out += fmt::format("],\"created_ms\":{}}}", e.created_ms);
  return out;
}

Result<Endpoint> endpoint_from_json(std::string_view json) {
  dom::parser parser;
  dom::element root;
  const simdjson::padded_string padded(json);
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    return make_error(Errc::malformed_json, fmt::format("stored endpoint: not valid JSON: {}",
                                                        simdjson::error_message(err)));
  }
  dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return bad_json("must be an object");

  Endpoint e;
  bool have_id = false, have_url = false, have_events = false;
  for (auto field : obj) {
    const std::string_view key = field.key;
    if (key == "id") {
      if (auto st = read_string(field.value, key, e.id); !st) return st.error();
      have_id = true;
    } else if (key == "url") {
      if (auto st = read_string(field.value, key, e.url); !st) return st.error();
      have_url = true;
    } else if (key == "events") {
      dom::array arr;
      if (field.value.get_array().get(arr) != simdjson::SUCCESS) {
        return bad_json("'events' must be an array of strings");
      }
      e.events.clear();
      for (dom::element item : arr) {
        std::string pattern;
        if (auto st = read_string(item, "events[]", pattern); !st) return st.error();
        e.events.push_back(std::move(pattern));
      }
      have_events = true;
    } else if (key == "store_id") {
      if (field.value.is_null()) continue;
      if (auto st = read_string(field.value, key, e.store_id); !st) return st.error();
    } else if (key == "plan") {
      if (field.value.is_null()) continue;
      if (auto st = read_string(field.value, key, e.plan); !st) return st.error();
    } else if (key == "state") {
      std::string text;
      if (auto st = read_string(field.value, key, text); !st) return st.error();
      const auto state = endpoint_state_from(text);
      if (!state) return bad_json(fmt::format("unknown state '{}'", text));
      e.state = *state;
    } else if (key == "secrets") {
      dom::array arr;
      if (field.value.get_array().get(arr) != simdjson::SUCCESS) {
        return bad_json("'secrets' must be an array");
      }
      e.secrets.clear();
      for (dom::element item : arr) {
        Secret s;
        if (auto st = read_secret(item, s); !st) return st.error();
        e.secrets.push_back(std::move(s));
      }
    } else if (key == "created_ms") {
      if (auto st = read_millis(field.value, key, e.created_ms); !st) return st.error();
    }
    // Unknown fields are ignored: a newer version may add some.
  }
  if (!have_id || e.id.empty()) return bad_json("no 'id'");
  if (!have_url) return bad_json(fmt::format("endpoint {}: no 'url'", e.id));
  if (!have_events) return bad_json(fmt::format("endpoint {}: no 'events'", e.id));
  return e;
}

Status check_pattern(std::string_view pattern) {
  if (pattern.empty()) return make_error(Errc::usage, "an event pattern is empty");
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (is_control_or_space(pattern[i])) {
      return make_error(
          Errc::usage,
          fmt::format("an event pattern has a space or control character (at {})", i + 1));
    }
  }
  if (!simdjson::validate_utf8(pattern.data(), pattern.size())) {
    return make_error(Errc::usage, "an event pattern is not valid UTF-8");
  }
  const std::size_t star = pattern.find('*');
  if (star == std::string_view::npos || pattern == "*") return {};
  const bool prefix =
      star == pattern.size() - 1 && pattern.size() >= 3 && pattern[pattern.size() - 2] == '.';
  if (!prefix) {
    return make_error(Errc::usage,
                      fmt::format("event pattern '{}': '*' is allowed only as '*' or at the end "
                                  "of a prefix such as 'order.*'",
                                  pattern));
  }
  return {};
}

Result<std::vector<std::string>> parse_patterns(std::string_view list) {
  std::vector<std::string> out;
  if (trim(list).empty()) return make_error(Errc::usage, "at least one event pattern is needed");
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view p = trim(list.substr(0, comma));
    if (auto st = check_pattern(p); !st) return st.error();
    if (std::find(out.begin(), out.end(), p) == out.end()) out.emplace_back(p);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

bool pattern_matches(std::string_view pattern, std::string_view type) noexcept {
  if (pattern == "*") return true;
  if (pattern.size() >= 3 && pattern.ends_with(".*")) {
    return type.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  return pattern == type;
}

bool endpoint_wants(const Endpoint& e, std::string_view type, std::string_view store_id) noexcept {
  if (e.state != EndpointState::enabled) return false;
  if (!e.store_id.empty() && e.store_id != store_id) return false;
  return std::any_of(e.events.begin(), e.events.end(),
                     [&](const std::string& p) { return pattern_matches(p, type); });
}

Result<Url> parse_url(std::string_view url) {
  for (char c : url) {
    if (is_control_or_space(c)) {
      return bad_url("the URL must not contain spaces or control characters");
    }
  }
  if (!simdjson::validate_utf8(url.data(), url.size())) {
    return bad_url("the URL is not valid UTF-8");
  }
  Url out;
  const std::size_t sep = url.find("://");
  if (sep != std::string_view::npos) out.scheme = lower(url.substr(0, sep));
  if (out.scheme != "http" && out.scheme != "https") {
    return bad_url(fmt::format("the URL must be http:// or https://: {}", url));
  }
  std::string_view rest = url.substr(sep + 3);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) {
    // (not echoed: it may hold a password)
    return bad_url("the URL must not carry a user name or password (user@host)");
  }
  std::string_view port_text;
  bool has_port = false;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return bad_url(fmt::format("the URL's host has no closing ']': {}", url));
    }
    const std::string host(authority.substr(1, close - 1));
    in6_addr a6{};
    if (host.empty() || inet_pton(AF_INET6, host.c_str(), &a6) != 1) {
      return bad_url(fmt::format("the URL's host is not an IPv6 address: [{}]", host));
    }
    out.host = host;
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad_url(fmt::format("the URL's host is malformed: {}", url));
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.empty()) return bad_url(fmt::format("the URL has no host: {}", url));
    if (!std::all_of(host.begin(), host.end(), host_name_char)) {
      return bad_url(fmt::format("the URL's host has a character not allowed in a host: {}", url));
    }
    out.host = std::string(host);
  }
  if (has_port) {
    int port = 0;
    const auto [ptr, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
        port_text.front() == '+' || port < 1 || port > 65535) {
      return bad_url(fmt::format("the URL's port must be 1-65535: {}", url));
    }
    out.port = port;
  }
  return out;
}

std::vector<std::string> signing_secrets(const Endpoint& e, Millis now, Millis overlap_ms) {
  std::vector<std::string> out;
  const std::size_t n = e.secrets.size();
  for (std::size_t i = 0; i < n; ++i) {
    const bool newest = i + 1 == n;
    if (newest || now - e.secrets[i + 1].created_ms < overlap_ms) out.push_back(e.secrets[i].value);
  }
  return out;
}

std::string new_endpoint_id() {
  constexpr std::string_view kAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  constexpr std::size_t kLength = 16;
  std::string id = "ep_";
  std::array<unsigned char, 32> buf{};
  while (id.size() < 3 + kLength) {
    random_bytes(buf.data(), buf.size());
    for (unsigned char b : buf) {
      // 252 = 7 * 36: bytes above it are dropped so that every character is equally likely.
      if (b >= 252 || id.size() == 3 + kLength) continue;
      id += kAlphabet[b % 36];
    }
  }
  return id;
}

std::string new_secret() {
  std::array<unsigned char, 24> key{};
  random_bytes(key.data(), key.size());
  std::string b64(4 * ((key.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), key.data(),
                                static_cast<int>(key.size()));
  b64.resize(static_cast<std::size_t>(n));
  return "whsec_" + b64;
}

}  // namespace sagaflow::delivery

// The settle plan both sources share: the attempt limit and the headers of the copies.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <variant>

#include "consumers/copy_plan.hpp"

using namespace sagaflow;

namespace {
std::map<std::string, std::string> as_map(const std::vector<Header>& hs) {
  std::map<std::string, std::string> m;
  for (const auto& h : hs) {
    if (const auto* i = std::get_if<std::int64_t>(&h.value)) {
      m[h.key] = std::to_string(*i);
    } else {
      m[h.key] = std::get<std::string>(h.value);
    }
  }
  return m;
}
}  // namespace

TEST_CASE("a retry past the attempt limit becomes a dead letter, retries_exhausted",
          "[consumers][copy]") {
  RetryPolicy p;
  p.max_attempts = 3;
  const Verdict early = effective_verdict(p, 2, Verdict::retry(Errc::rejected, "not yet"));
  CHECK(early.kind == Verdict::Kind::retry);
  const Verdict last = effective_verdict(p, 3, Verdict::retry(Errc::rejected, "not yet"));
  CHECK(last.kind == Verdict::Kind::dead_letter);
  CHECK(last.reason == Errc::retries_exhausted);
  CHECK(last.detail == "rejected after 3 attempts: not yet");
  // Acks and dead letters are what they are, at any attempt
  CHECK(effective_verdict(p, 9, Verdict::ack()).kind == Verdict::Kind::ack);
  CHECK(effective_verdict(p, 9, Verdict::dead_letter(Errc::malformed_json, "x")).reason ==
        Errc::malformed_json);
}

TEST_CASE("copies carry the contract's headers", "[consumers][copy]") {
  std::vector<Header> retry;
  add_retry_headers(retry, 2, "order.created");
  CHECK(as_map(retry) ==
        std::map<std::string, std::string>{{"x-sagaflow-attempts", "3"},
                                           {"x-sagaflow-original-route", "order.created"}});
  std::vector<Header> dead;
  add_dead_letter_headers(dead, Verdict::dead_letter(Errc::invalid_event, "bad\ntotal\r\n"), 4,
                          "payment.completed");
  auto headers = as_map(dead);
  const std::string id = headers["x-sagaflow-dead-letter-id"];
  CHECK(id.size() == 24);
  headers.erase("x-sagaflow-dead-letter-id");
  CHECK(headers ==
        std::map<std::string, std::string>{{"x-sagaflow-error", "invalid_event"},
                                           {"x-sagaflow-detail", "bad total  "},
                                           {"x-sagaflow-attempts", "4"},
                                           {"x-sagaflow-original-route", "payment.completed"}});

  // Every copy gets its own id, and the note the dead-letter index gets reads the copy back.
  std::vector<Header> second;
  add_dead_letter_headers(second, Verdict::dead_letter(Errc::invalid_event, "x"), 1, "r");
  CHECK(as_map(second)["x-sagaflow-dead-letter-id"] != id);

  Message copy;
  copy.message_id = "m-1";
  copy.body = R"({"type":"payment.completed"})";
  copy.headers = dead;
  const auto note = dead_letter_note(copy, "sagaflow.dead");
  REQUIRE(note.has_value());
  CHECK(note->id == id);
  CHECK(note->reason == "invalid_event");
  CHECK(note->detail == "bad total  ");
  CHECK(note->attempts == 4);
  CHECK(note->route == "payment.completed");
  CHECK(note->message_id == "m-1");
  CHECK(note->where == "sagaflow.dead");
  CHECK(note->body == copy.body);

  Message retry_copy;
  retry_copy.headers = retry;
  CHECK_FALSE(dead_letter_note(retry_copy, "sagaflow.retry").has_value());
  CHECK(is_copy_header("x-sagaflow-dead-letter-id"));
  CHECK_FALSE(is_copy_header("x-custom"));
}

TEST_CASE("details are one line of at most 1,000 bytes", "[consumers][copy]") {
  CHECK(one_line("a\tb\nc") == "a b c");
  CHECK(one_line(std::string(5000, 'x')).size() == 1000);
}

TEST_CASE("a copy the broker refuses as too large becomes a dead letter without its body",
          "[consumers][copy]") {
  Message retry;
  retry.exchange = "sagaflow.retry.sagaflow-saga";
  retry.routing_key = "order.created";
  retry.key = "o1";
  retry.message_id = "evt-1";
  retry.body = "abc";
  retry.headers = {Header{"type", std::string("order.created")},
                   Header{"x-big-custom", std::string(5000, 'h')}};
  add_retry_headers(retry.headers, 3, "order.created");
  retry.headers.push_back(Header{"x-sagaflow-not-before", std::int64_t{123}});

  const Message dead = without_body(retry, "sagaflow.dead");
  CHECK(dead.exchange == "sagaflow.dead");
  CHECK(dead.body.empty());
  CHECK(dead.key == "o1");
  CHECK(dead.message_id == "evt-1");
  auto h = as_map(dead.headers);
  CHECK(h["type"] == "order.created");
  CHECK(h["x-sagaflow-error"] == "too_large");
  CHECK(h["x-sagaflow-attempts"] == "3");  // the attempts made (the retry copy was for a 4th)
  CHECK(h["x-sagaflow-original-route"] == "order.created");
  CHECK(h["x-sagaflow-body-size"] == "3");
  // SHA-256("abc")
  CHECK(h["x-sagaflow-body-sha256"] ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(h.count("x-sagaflow-not-before") == 0);
  CHECK(h.count("x-big-custom") == 0);
  CHECK(h["x-sagaflow-detail"].find("3 bytes") != std::string::npos);
  CHECK(h["x-sagaflow-dead-letter-id"].size() == 24);
  // Each header once, and the dead-letter index gets a note for it
  CHECK(dead.headers.size() == h.size());
  const auto note = dead_letter_note(dead, "sagaflow.dead");
  REQUIRE(note.has_value());
  CHECK(note->reason == "too_large");
}

// ScriptArgs writes a script call's keys and arguments in the wire format, keys first whatever
// the order they were added in; encoded parts can be appended to a batch.
#include <catch2/catch.hpp>

#include <limits>
#include <string>

#include "store/redis_client.hpp"

using namespace sagaflow::store;

TEST_CASE("a script call is one RESP command, keys before arguments", "[store][resp]") {
  ScriptArgs one;
  one.arg("apply");
  one.key("sagaflow:{3}:saga:o1");
  one.arg(std::int64_t{-42});
  one.key("k2");
  one.arg(std::string_view("with\r\nbytes\0", 12));
  CHECK(one.keys() == 2);
  CHECK(one.args() == 3);
  CHECK(one.first_key() == "sagaflow:{3}:saga:o1");
  CHECK(one.command("abc") ==
        "*8\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n2\r\n"
        "$20\r\nsagaflow:{3}:saga:o1\r\n$2\r\nk2\r\n"
        "$5\r\napply\r\n$3\r\n-42\r\n$12\r\n" +
            std::string("with\r\nbytes\0", 12) + "\r\n");

  // Parts of one call appended to another (a batch)
  ScriptArgs batch;
  batch.arg("batch");
  batch.raw_keys(one.key_bytes(), one.keys());
  batch.raw_args(one.arg_bytes(), one.args());
  CHECK(batch.keys() == 2);
  CHECK(batch.args() == 4);
  CHECK(batch.first_key() == "sagaflow:{3}:saga:o1");
  CHECK(batch.command("abc") ==
        "*9\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n2\r\n"
        "$20\r\nsagaflow:{3}:saga:o1\r\n$2\r\nk2\r\n"
        "$5\r\nbatch\r\n$5\r\napply\r\n$3\r\n-42\r\n$12\r\n" +
            std::string("with\r\nbytes\0", 12) + "\r\n");
  // A moved-from one is empty, counts included
  ScriptArgs moved = std::move(batch);
  CHECK(moved.keys() == 2);
  CHECK(batch.keys() == 0);  // NOLINT(bugprone-use-after-move): that is the point
  CHECK(batch.args() == 0);
  CHECK(batch.command("s") == "*3\r\n$7\r\nEVALSHA\r\n$1\r\ns\r\n$1\r\n0\r\n");

  // The empty string and the extreme numbers
  ScriptArgs edges;
  edges.arg("");
  edges.arg(std::numeric_limits<std::int64_t>::min());
  CHECK(edges.arg_bytes() == "$0\r\n\r\n$20\r\n-9223372036854775808\r\n");

  ScriptArgs none;
  none.arg("x");
  CHECK(none.first_key().empty());
  CHECK(none.command("s") == "*4\r\n$7\r\nEVALSHA\r\n$1\r\ns\r\n$1\r\n0\r\n$1\r\nx\r\n");
}

TEST_CASE("a key given as parts is written as the one key they make", "[store][resp]") {
  ScriptArgs parts;
  parts.key({"sagaflow:{3}:", "saga:", "o1"});
  parts.key({"sagaflow:{3}:", "by_reason:", ""});  // an empty tail (no reason yet)
  ScriptArgs whole;
  whole.key("sagaflow:{3}:saga:o1");
  whole.key("sagaflow:{3}:by_reason:");
  CHECK(parts.keys() == 2);
  CHECK(parts.key_bytes() == whole.key_bytes());
  CHECK(parts.first_key() == "sagaflow:{3}:saga:o1");
  CHECK(parts.command("s") == whole.command("s"));
}

// What the dead-letter index stores of a message: valid JSON whatever the message's bytes.
#include <catch2/catch.hpp>

#include <string>

#include "store/dead_letters.hpp"

using namespace sagaflow::store;

TEST_CASE("invalid UTF-8 becomes U+FFFD, valid text is kept byte for byte", "[store][dlq]") {
  CHECK(valid_utf8("plain {json}") == "plain {json}");
  CHECK(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  const std::string bad = "\xff\xfe{";
  CHECK(valid_utf8(bad) == "\xef\xbf\xbd\xef\xbf\xbd{");
  CHECK(valid_utf8("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong '/'
  CHECK(valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // a surrogate
  CHECK(valid_utf8("\xf4\x90\x80\x80").find('\xf4') == std::string::npos);      // past U+10FFFF
  CHECK(valid_utf8("ab\xe2\x82") == "ab\xef\xbf\xbd\xef\xbf\xbd");              // cut short
}

TEST_CASE("a body preview is cut on a whole character and its entry is valid JSON text",
          "[store][dlq]") {
  const std::string body = std::string(255, 'a') + "\xc3\xa9" + "tail";
  CHECK(body_preview(body) == std::string(255, 'a'));
  CHECK(body_preview("short") == "short");
  DeadLetterEntry e;
  e.id = "id1";
  e.reason = "not_utf8";
  e.detail = "line\nbreak";
  e.body_preview = body_preview("\xff\x01{\"x\":1}");
  const std::string json = e.to_json();
  CHECK(json.find('\xff') == std::string::npos);
  CHECK(json.find("\\n") != std::string::npos);
  CHECK(json.find("\\u0001") != std::string::npos);
  CHECK(json.find("\"body_preview\":\"\xef\xbf\xbd\\u0001{\\\"x\\\":1}\"") != std::string::npos);
}

// Proves Process: exit codes, captured output, signals, line reading, cleanup.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "support/servers.hpp"

using namespace std::chrono_literals;
using sagaflow::testing::Process;

TEST_CASE("Process captures stdout and the exit code") {
  Process p({"/bin/sh", "-c", "echo hi; echo oops >&2; exit 3"});
  CHECK(p.wait_for(5s) == 3);
  CHECK(p.read_stdout() == "hi\n");
  CHECK(p.read_stderr() == "oops\n");
}

TEST_CASE("Process passes extra environment variables") {
  Process p({"/bin/sh", "-c", "printf %s \"$SAGAFLOW_TEST_VALUE\""},
            {{"SAGAFLOW_TEST_VALUE", "forty two"}});
  REQUIRE(p.wait_for(5s) == 0);
  CHECK(p.read_stdout() == "forty two");
}

TEST_CASE("Process reports a signal as 128 + signal number") {
  Process p({"/bin/sleep", "30"});
  CHECK_FALSE(p.wait_for(100ms).has_value());
  p.signal(SIGTERM);
  CHECK(p.wait_for(5s) == 128 + SIGTERM);
}

TEST_CASE("Process read_stdout_line returns lines one by one, as they arrive") {
  Process p({"/bin/sh", "-c", "echo 127.0.0.1:1234; sleep 0.3; echo second; sleep 30"});
  CHECK(p.read_stdout_line(5s) == "127.0.0.1:1234");
  CHECK(p.read_stdout_line(5s) == "second");
  CHECK_THROWS(p.read_stdout_line(100ms));
  // The destructor kills the sleeping shell and its group.
}

TEST_CASE("Process throws when the program does not exist") {
  CHECK_THROWS_WITH(Process({"/nonexistent/sagaflow-nope"}), Catch::Contains("cannot execute"));
}

TEST_CASE("Process drains a chatty child so it never blocks on a full pipe") {
  Process p({"/bin/sh", "-c", "head -c 1000000 /dev/zero; head -c 300000 /dev/zero >&2"});
  REQUIRE(p.wait_for(10s) == 0);
  CHECK(p.read_stdout().size() == 1000000);
  CHECK(p.read_stderr().size() == 300000);
}

TEST_CASE("sagaflow_binary comes from SAGAFLOW_BINARY") {
  CHECK_FALSE(sagaflow::testing::sagaflow_binary().empty());
}

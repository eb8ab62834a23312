// Tests of the control socket: a request gets its reply, bad requests get clear errors, a
// stale socket file is replaced and a live one is not taken over.
#include "control/control_server.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

#include "control/report.h"

namespace strata::control {
namespace {

std::string temp_socket(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("strata-control-test-" + std::to_string(::getpid()));
  return (dir / name).string();
}

TEST(Control, StreamsRows) {
  const std::string path = temp_socket("s.sock");
  ControlServer server;
  ASSERT_EQ(server.bind(path), "");
  server.start([](const nlohmann::json& req, Responder& out) -> nlohmann::json {
    const int n = req.value("rows", 0);
    out.line(nlohmann::json{{"ok", true}, {"stream", true}, {"rows", n}}.dump());
    for (int i = 0; i < n; ++i) out.line(fmt::format("[{},\"row {}\"]", i, i));
    return {{"ok", true}, {"end", true}, {"count", n}};
  });
  int header_rows = -1;
  std::vector<std::string> rows;
  const auto trailer = request_stream(
      path, {{"command", "x"}, {"rows", 100000}},
      [&](const nlohmann::json& h) { header_rows = h["rows"]; },
      [&](std::string_view row) { rows.emplace_back(row); });
  EXPECT_EQ(header_rows, 100000);
  ASSERT_EQ(rows.size(), 100000u);
  EXPECT_EQ(rows[0], "[0,\"row 0\"]");
  EXPECT_EQ(rows[99999], "[99999,\"row 99999\"]");
  EXPECT_EQ(trailer["count"], 100000);
  EXPECT_EQ(trailer["version"], kProtocolVersion);
  server.stop();
}

TEST(Control, AnswersRequests) {
  const std::string path = temp_socket("a.sock");
  ControlServer server;
  ASSERT_EQ(server.bind(path), "");
  server.start([](const nlohmann::json& req, Responder&) -> nlohmann::json {
    if (req.value("command", "") == "echo") return {{"ok", true}, {"said", req.value("text", "")}};
    throw std::runtime_error("unknown command");
  });
  const auto reply = request(path, {{"command", "echo"}, {"text", "hi"}});
  EXPECT_EQ(reply["said"], "hi");
  EXPECT_EQ(reply["version"], kProtocolVersion);
  EXPECT_THROW(request(path, {{"command", "nope"}}), std::runtime_error);
  // Another protocol version is refused (request() always sends ours: write the line by hand).
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string line = "{\"command\":\"echo\",\"text\":\"hi\",\"version\":99}\n";
    ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    std::string reply_text;
    char buf[512];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) reply_text.append(buf, static_cast<size_t>(n));
    ::close(fd);
    const auto r = nlohmann::json::parse(reply_text);
    EXPECT_EQ(r["ok"], false);
    EXPECT_NE(r["error"].get<std::string>().find("unsupported protocol version"), std::string::npos);
  }
  // In use: a second server must not take the socket over.
  ControlServer second;
  EXPECT_NE(second.bind(path).find("in use"), std::string::npos);
  server.stop();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Control, ReplacesStaleSocketFile) {
  const std::string path = temp_socket("stale.sock");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  // Leave a bound-but-closed socket file behind, as a crashed daemon would.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ::unlink(path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  ControlServer server;
  EXPECT_EQ(server.bind(path), "");
}

TEST(Control, UnreachableSocketIsAClearError) {
  try {
    request("/nonexistent/dir/control.sock", {{"command", "stats"}});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/control.sock"), std::string::npos);
  }
}

TEST(Report, StatsJsonHasEveryCounter) {
  StatsSnapshot s;
  s.counters[stats::index(stats::Counter::received)] = 42;
  s.processing_ns.buckets[stats::bucket_index(5000)] = 10;
  s.time.synchronised = true;
  s.time.stratum = 2;
  s.time.leap = wire::Leap::kNone;
  s.time.reference_id = 0xC0000201;
  const auto j = stats_json(s, s.time.as_of);
  EXPECT_EQ(j["counters"].size(), stats::kCounterCount);
  EXPECT_EQ(j["counters"]["received"], 42);
  EXPECT_EQ(j["processing_time_ns"]["count"], 10);
  EXPECT_NEAR(j["processing_time_ns"]["p50"].get<double>(), 5000, 400);
  EXPECT_EQ(j["time"]["refid"], "192.0.2.1");
  EXPECT_EQ(j["time"]["stratum"], 2);
}

}  // namespace
}  // namespace strata::control

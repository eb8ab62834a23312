// Unit tests of configuration parsing: defaults, every key, and errors that name the line.
#include "config/changes.h"
#include "config/config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>

namespace strata::config {
namespace {

TEST(Config, DefaultsServeEverythingOnPort123) {
  const Config c = default_config();
  ASSERT_EQ(c.server.listen.size(), 2u);
  EXPECT_EQ(c.server.listen[0].to_string(), "0.0.0.0:123");
  EXPECT_EQ(c.server.listen[1].to_string(), "[::]:123");
  EXPECT_TRUE(c.server.listen_is_default);
  EXPECT_EQ(c.server.threads, 0u);
  EXPECT_EQ(c.server.control, "/run/stratad/control.sock");
  EXPECT_EQ(c.server.socket.receive_buffer, 4 << 20);
  EXPECT_EQ(c.time.source, clock::Source::kKernel);
  EXPECT_EQ(c.time.unsynchronised, clock::UnsyncAction::kReply);
  EXPECT_EQ(parse_config("", "empty.toml").config->server.listen.size(), 2u);
}

TEST(Config, ParsesEveryKey) {
  const auto r = parse_config(R"(
[server]
listen = ["192.0.2.1", "[2001:db8::1]:12300"]
threads = 4
control = "/tmp/x.sock"
user = "ntp"
batch = 128
busy_poll_us = 200
freebind = true
receive_buffer = "8MiB"

[time]
source = "mirror"
mirror = "127.0.0.1:11123"
mirror_interval = 0.5
mirror_timeout = 20
unsynchronised = "drop"
precision = -22
)",
                              "full.toml");
  ASSERT_TRUE(r.config) << r.errors[0].to_string();
  const Config& c = *r.config;
  ASSERT_EQ(c.server.listen.size(), 2u);
  EXPECT_EQ(c.server.listen[0].to_string(), "192.0.2.1:123");
  EXPECT_EQ(c.server.listen[1].to_string(), "[2001:db8::1]:12300");
  EXPECT_FALSE(c.server.listen_is_default);
  EXPECT_EQ(c.server.threads, 4u);
  EXPECT_EQ(c.server.control, "/tmp/x.sock");
  EXPECT_EQ(c.server.user, "ntp");
  EXPECT_EQ(c.server.batch, 128u);
  EXPECT_EQ(c.server.busy_poll_us, 200u);
  EXPECT_TRUE(c.server.socket.freebind);
  EXPECT_EQ(c.server.socket.receive_buffer, 8 << 20);
  EXPECT_EQ(c.time.source, clock::Source::kMirror);
  EXPECT_EQ(c.time.mirror.to_string(), "127.0.0.1:11123");
  EXPECT_DOUBLE_EQ(c.time.mirror_interval, 0.5);
  EXPECT_DOUBLE_EQ(c.time.mirror_timeout, 20);
  EXPECT_EQ(c.time.unsynchronised, clock::UnsyncAction::kDrop);
  EXPECT_EQ(c.time.precision, -22);
}

TEST(Config, RefusesBareV6WithPortInListen) {
  const auto r = parse_config("[server]\nlisten = [\"::1:123\"]\n", "l.toml");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            "l.toml:2: listen entry '::1:123' is not an IPv4 or [IPv6] address with an optional "
            ":port: an IPv6 address with a port needs brackets: write [::1]:123 for port 123, or "
            "[::1:123] for the address alone");
  EXPECT_TRUE(parse_config("[server]\nlisten = [\"[::1]:123\", \"::1\"]\n", "l.toml").config);
}

TEST(Config, InterleavedMode) {
  const Config d = default_config();
  EXPECT_TRUE(d.server.interleaved);
  EXPECT_EQ(d.server.interleaved_entries, 262144u);
  const auto r = parse_config("[server]\ninterleaved = false\ninterleaved_entries = 4096\n", "i.toml");
  ASSERT_TRUE(r.config);
  EXPECT_FALSE(r.config->server.interleaved);
  EXPECT_EQ(r.config->server.interleaved_entries, 4096u);
  const auto bad = parse_config("[server]\ninterleaved = \"yes\"\ninterleaved_entries = 2\n", "i.toml");
  EXPECT_FALSE(bad.config);
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_NE(bad.errors[0].to_string().find("i.toml:2: "), std::string::npos) << bad.errors[0].to_string();
  EXPECT_NE(bad.errors[1].to_string().find("i.toml:3: "), std::string::npos) << bad.errors[1].to_string();
  EXPECT_NE(bad.errors[1].to_string().find("interleaved_entries"), std::string::npos) << bad.errors[1].to_string();
}

TEST(Config, LocalSourceDefaultsLikeChrony) {
  auto r = parse_config("[time]\nsource = \"local\"\n", "t.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->time.stratum, 10);
  EXPECT_EQ(r.config->time.reference_id, 0x7F7F0101u);
  r = parse_config("[time]\nsource = \"local\"\nstratum = 1\nrefid = \"GPS\"\nroot_dispersion = 0.001\n", "t.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->time.stratum, 1);
  EXPECT_EQ(r.config->time.reference_id, 0x47505300u);
  EXPECT_DOUBLE_EQ(r.config->time.root_dispersion, 0.001);
}

TEST(Config, ClientsAndRateLimit) {
  const auto r = parse_config(R"([clients]
memory = "64MiB"
mindepth = 100
maxage = 120

[ratelimit]
enabled = true
v4_prefix = 24
v6_prefix = 56
interval = 16
burst = 4
min_spacing = 1.5
leak = 0.1
kod = false
kod_interval = 30
flood_rate = 2
score_decay = 10
)",
                              "c.toml");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.config->clients.memory, 64u << 20);
  EXPECT_EQ(r.config->clients.mindepth, 100u);
  EXPECT_EQ(r.config->clients.maxage, 120);
  const auto& p = r.config->ratelimit;
  EXPECT_TRUE(p.enabled);
  EXPECT_EQ(p.v4_prefix, 24);
  EXPECT_EQ(p.v6_prefix, 56);
  EXPECT_EQ(p.interval_s, 16);
  EXPECT_EQ(p.burst, 4);
  EXPECT_EQ(p.min_spacing_s, 1.5);
  EXPECT_EQ(p.leak, 0.1);
  EXPECT_FALSE(p.kod);
  EXPECT_EQ(p.kod_interval_s, 30);
  EXPECT_EQ(p.flood_rate, 2);
  EXPECT_EQ(p.score_decay_s, 10);
  // Defaults: on, /32 and /64.
  const Config d = default_config();
  EXPECT_TRUE(d.ratelimit.enabled);
  EXPECT_EQ(d.ratelimit.v4_prefix, 32);
  EXPECT_EQ(d.ratelimit.v6_prefix, 64);
  EXPECT_EQ(d.clients.memory, 256u << 20);

  const auto bad = parse_config("[clients]\nmemory = \"12 parsecs\"\n[ratelimit]\nleak = 2\nv6_prefix = 129\nburst = 0\n", "b.toml");
  ASSERT_EQ(bad.errors.size(), 4u);
  EXPECT_EQ(bad.errors[0].to_string().rfind("b.toml:2: memory must be a size", 0), 0u);
  EXPECT_EQ(bad.errors[1].to_string(), "b.toml:4: leak = 2 is out of range 0..1");
  EXPECT_EQ(bad.errors[2].to_string(), "b.toml:5: v6_prefix = 129 is out of range 16..128");
  EXPECT_EQ(bad.errors[3].to_string(), "b.toml:6: burst = 0 is out of range 1..1000000");
}

TEST(Config, AccessRulesInlineAndFromAFile) {
  const std::string path = ::testing::TempDir() + "/access.rules";
  {
    std::ofstream f(path);
    f << "# blocklist\n203.0.113.0/24 deny\n2001:db8:bad::/48 ignore\n";
  }
  const auto r = parse_config("[access]\nrules = [\n  \"10.0.0.0/8 nolimit query\",\n"
                              "  \"192.0.2.0/24 ignore\",\n]\nfile = \"" + path + "\"\n",
                              "a.toml");
  ASSERT_TRUE(r.config) << r.errors[0].to_string();
  ASSERT_EQ(r.config->access.rules.size(), 4u);
  EXPECT_EQ(r.config->access.rules[0].file, "a.toml");
  EXPECT_EQ(r.config->access.rules[0].line, 3);
  EXPECT_EQ(r.config->access.rules[3].file, path);
  EXPECT_EQ(r.config->access.rules[3].line, 3);
  const policy::Policy p = compile_access(*r.config);
  EXPECT_EQ(p.lookup(*base::IpAddress::parse("203.0.113.9")).access, policy::Access::kDeny);
  EXPECT_EQ(p.lookup(*base::IpAddress::parse("10.1.1.1")).limited, false);

  // Errors name the config file's line for inline rules, the rules file's line for its own,
  // and duplicates across both.
  {
    std::ofstream f(path);
    f << "203.0.113.0/24 deny\n\n203.0.113.0/25 sometimes\n10.0.0.0/8 allow\n";
  }
  const auto bad = parse_config("[access]\nrules = [\"10.0.0.0/8 nolimit\", \"300.1.1.1 deny\"]\n"
                                "file = \"" + path + "\"\n", "b.toml");
  ASSERT_FALSE(bad.config);
  std::vector<std::string> text;
  for (const auto& e : bad.errors) text.push_back(e.to_string());
  ASSERT_EQ(text.size(), 3u) << text[0];
  EXPECT_EQ(text[0], "b.toml:2: '300.1.1.1' is not an address or prefix");
  EXPECT_EQ(text[1].rfind(path + ":3: unknown action 'sometimes'", 0), 0u) << text[1];
  EXPECT_EQ(text[2], path + ":4: 10.0.0.0/8 is already given at b.toml:2");
  const auto missing = parse_config("[access]\nfile = \"/nonexistent/rules\"\n", "c.toml");
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0].to_string(), "c.toml:2: file = \"/nonexistent/rules\": cannot open it: No such file or directory");
}

TEST(Config, RelativePathsAreTakenFromTheConfigFilesDirectory) {
  const auto r = parse_config("[clients]\nstate_dir = \"state\"\n", "/etc/stratad/stratad.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->clients.state_dir, "/etc/stratad/state");
  const auto keys = parse_config("[auth]\nkeys = \"../keys/ntp.keys\"\n", "/nonexistent/conf/s.toml");
  ASSERT_EQ(keys.errors.size(), 1u);
  EXPECT_EQ(keys.errors[0].to_string(),
            "/nonexistent/conf/s.toml:2: keys = \"/nonexistent/keys/ntp.keys\": cannot open it: No "
            "such file or directory");
}

TEST(Config, Seccomp) {
  EXPECT_EQ(parse_config("", "s.toml").config->server.seccomp, Seccomp::kKill);
  EXPECT_EQ(parse_config("[server]\nseccomp = \"log\"\n", "s.toml").config->server.seccomp, Seccomp::kLog);
  EXPECT_EQ(parse_config("[server]\nseccomp = \"off\"\n", "s.toml").config->server.seccomp, Seccomp::kOff);
  const auto bad = parse_config("[server]\nseccomp = \"trap\"\n", "s.toml");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(bad.errors[0].to_string(),
            "s.toml:2: seccomp = \"trap\": expected \"kill\", \"log\" or \"off\"");
}

TEST(Config, StateSaveInterval) {
  const auto r = parse_config("[clients]\nsave_interval = 2.5\n", "s.toml");
  ASSERT_TRUE(r.config);
  EXPECT_DOUBLE_EQ(r.config->clients.save_interval, 2.5);
  EXPECT_DOUBLE_EQ(parse_config("", "s.toml").config->clients.save_interval, 60);
  const auto bad = parse_config("[clients]\nsave_interval = 0\n", "s.toml");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_NE(bad.errors[0].to_string().find("s.toml:2: save_interval"), std::string::npos)
      << bad.errors[0].to_string();
}

TEST(Config, AuthKeysTrustedAndControlKey) {
  const std::string path = ::testing::TempDir() + "/ntp.keys";
  {
    std::ofstream f(path);
    f << "1 MD5 sesame\n2 SHA1 HEX:0011223344556677889900112233445566778899\n3 AES128CMAC "
         "2b7e151628aed2a6abf7158809cf4f3c\n";
  }
  auto r = parse_config("[auth]\nkeys = \"" + path + "\"\ntrusted = [1, 3]\nbad_mac = \"crypto-nak\"\n"
                        "control_key = 2\n", "a.toml");
  ASSERT_TRUE(r.config) << r.errors[0].to_string();
  const AuthConfig& a = r.config->auth;
  ASSERT_EQ(a.keys.size(), 3u);
  EXPECT_TRUE(a.keys[0].trusted);
  EXPECT_FALSE(a.keys[1].trusted);  // only the control key
  EXPECT_TRUE(a.keys[2].trusted);
  EXPECT_EQ(a.bad_mac, auth::BadMac::kCryptoNak);
  EXPECT_EQ(a.control_key, 2u);
  EXPECT_EQ(default_config().auth.bad_mac, auth::BadMac::kDrop);
  EXPECT_TRUE(default_config().auth.keys.empty());

  r = parse_config("[auth]\nkeys = \"" + path + "\"\ntrusted = [1, 9]\ncontrol_key = 8\nbad_mac = \"nak\"\n",
                   "b.toml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].to_string(), "b.toml:3: trusted key 9 is not in " + path);
  EXPECT_EQ(r.errors[1].to_string(), "b.toml:4: control_key 8 is not in the keys file");
  EXPECT_EQ(r.errors[2].to_string(), "b.toml:5: bad_mac = \"nak\": expected \"drop\" or \"crypto-nak\"");
  {
    std::ofstream f(path);
    f << "1 MD5 sesame\n\n2 SHA512 x\n";
  }
  r = parse_config("[auth]\nkeys = \"" + path + "\"\n", "c.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), path + ":3: unsupported key type 'SHA512' (MD5, SHA1 or AES128CMAC)");
}

TEST(Config, MetricsEndpoint) {
  EXPECT_EQ(default_config().metrics.listen->to_string(), "127.0.0.1:9123");
  auto r = parse_config("[metrics]\nlisten = \"[::1]:9100\"\n", "m.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->metrics.listen->to_string(), "[::1]:9100");
  r = parse_config("[metrics]\nlisten = \"\"\n", "m.toml");
  ASSERT_TRUE(r.config);
  EXPECT_FALSE(r.config->metrics.listen);
  r = parse_config("[metrics]\nlisten = \"localhost\"\n", "m.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string().rfind("m.toml:2: listen = \"localhost\": expected address:port", 0), 0u);
}

TEST(Config, Snmp) {
  EXPECT_TRUE(default_config().snmp.agentx.empty());  // off by default
  auto r = parse_config("[snmp]\nagentx = \"/var/agentx/master\"\nrefresh = 5\nping = 2\n", "s.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->snmp.agentx, "/var/agentx/master");
  EXPECT_EQ(r.config->snmp.refresh, 5);
  EXPECT_EQ(r.config->snmp.ping, 2);
  r = parse_config("[snmp]\nagentx = \"tcp:localhost:705\"\n", "s.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->snmp.agentx, "tcp:localhost:705");
  r = parse_config("[snmp]\nagentx = \"agentx\"\nrefresh = 0\ncommunity = \"public\"\n", "s.toml");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].to_string().rfind("s.toml:2: agentx = \"agentx\": expected the master agent's socket", 0), 0u);
  EXPECT_EQ(r.errors[1].line, 3);
  EXPECT_EQ(r.errors[2].line, 4);
}

TEST(Config, ErrorsNameFileLineAndReason) {
  const auto r = parse_config(R"([server]
threads = "four"
listen = ["not-an-address"]
colour = "blue"

[time]
stratum = 99
refid = "FAR TOO LONG"
source = "gps"
unsynchronised = "maybe"

[bogus]
x = 1
)",
                              "bad.toml");
  EXPECT_FALSE(r.config);
  std::vector<std::string> text;
  for (const auto& e : r.errors) text.push_back(e.to_string());
  ASSERT_EQ(text.size(), 8u);
  EXPECT_EQ(text[0], "bad.toml:2: threads must be an integer");
  EXPECT_EQ(text[1].rfind("bad.toml:3: listen entry 'not-an-address'", 0), 0u) << text[1];
  EXPECT_EQ(text[2], "bad.toml:4: unknown key 'colour' in [server]");
  EXPECT_EQ(text[3], "bad.toml:7: stratum = 99 is out of range 1..15");
  EXPECT_EQ(text[4].rfind("bad.toml:8: refid", 0), 0u) << text[4];
  EXPECT_EQ(text[5].rfind("bad.toml:9: source = \"gps\"", 0), 0u) << text[5];
  EXPECT_EQ(text[6].rfind("bad.toml:10: unsynchronised", 0), 0u) << text[6];
  EXPECT_EQ(text[7].rfind("bad.toml:12: unknown table 'bogus'", 0), 0u) << text[7];
}

TEST(Config, SyntaxErrorHasLine) {
  const auto r = parse_config("[server]\nthreads = 4\nlisten = [\"1.2.3.4\"\n", "syntax.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].file, "syntax.toml");
  EXPECT_GE(r.errors[0].line, 3);
  EXPECT_FALSE(r.errors[0].reason.empty());
}

TEST(Config, MissingFile) {
  const auto r = load_config("/nonexistent/stratad.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "/nonexistent/stratad.toml: cannot open the file: No such file or directory");
}

TEST(Config, Sizes) {
  EXPECT_EQ(parse_size("65536"), 65536u);
  EXPECT_EQ(parse_size("4MiB"), 4u << 20);
  EXPECT_EQ(parse_size("256 MiB"), 256u << 20);
  EXPECT_EQ(parse_size("1GB"), 1000000000u);
  EXPECT_EQ(parse_size("2KiB"), 2048u);
  EXPECT_FALSE(parse_size("MiB"));
  EXPECT_FALSE(parse_size("4 parsecs"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("99999999999999999999"));
}

TEST(Config, ControlPathMustFitAUnixSocket) {
  const std::string long_path = "/run/" + std::string(110, 'x');
  const auto r = parse_config("[server]\ncontrol = \"" + long_path + "\"\n", "c.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].reason.find("a unix socket path holds at most 107"), std::string::npos);
  EXPECT_TRUE(parse_config("[server]\ncontrol = \"/run/" + std::string(100, 'x') + "\"\n", "c.toml").config);
}

TEST(Config, HostBitsInAPrefixAreWarnedAbout) {
  const auto r = parse_config("[access]\nrules = [\"10.1.2.0/8 deny\", \"192.0.2.0/24 ignore\"]\n", "w.toml");
  ASSERT_TRUE(r.config);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].to_string(), "w.toml:2: '10.1.2.0/8' has host bits set: it is 10.0.0.0/8");
}

TEST(Config, ReloadChangesSayWhatDiffers) {
  const auto a = parse_config("[access]\nrules = [\"10.0.0.0/8 deny\", \"192.0.2.0/24 nolimit\"]\n", "a.toml");
  const auto b = parse_config("[ratelimit]\nburst = 4\nkod = false\n[access]\nrules = [\"10.0.0.0/8 ignore\", "
                              "\"2001:db8::/32 noquery\"]\n",
                              "b.toml");
  ASSERT_TRUE(a.config && b.config);
  EXPECT_EQ(reload_changes(*a.config, *a.config), std::vector<std::string>{});
  Config after = *b.config;
  after.auth.keys = {auth::Key{.id = 7}};
  Config before = *a.config;
  before.auth.keys = {auth::Key{.id = 3}, auth::Key{.id = 7, .trusted = false}};
  EXPECT_EQ(reload_changes(before, after),
            (std::vector<std::string>{"rule changed: 10.0.0.0/8 deny -> 10.0.0.0/8 ignore",
                                      "rule added: 2001:db8::/32 noquery",
                                      "rule removed: 192.0.2.0/24 nolimit",
                                      "[ratelimit] kod on -> off",
                                      "[ratelimit] burst 8 -> 4",
                                      "key 7: now trusted",
                                      "key removed: 3"}));
}

TEST(Config, AHugeValueIsShortenedInItsError) {
  const auto r = parse_config("[time]\nsource = \"" + std::string(1'000'000, 'a') + "\"\n", "h.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  const std::string text = r.errors[0].to_string();
  EXPECT_LT(text.size(), 600u);
  EXPECT_EQ(text.rfind("h.toml:2: source = \"aaaa", 0), 0u);
  EXPECT_NE(text.find("characters]..."), std::string::npos);
  EXPECT_NE(text.find("\": expected \"kernel\", \"mirror\" or \"local\""), std::string::npos);
}

TEST(Config, ReloadChangesListAtMostTwentyRules) {
  Config before, after;
  for (int i = 0; i < 30; ++i) {
    const auto r = parse_config(fmt::format("[access]\nrules = [\"10.0.0.{}/32 deny\"]\n", i), "r.toml");
    ASSERT_TRUE(r.config);
    after.access.rules.push_back(r.config->access.rules.at(0));
  }
  const auto one = parse_config("[access]\nrules = [\"192.0.2.0/24 deny\"]\n", "r.toml");
  before.access.rules = one.config->access.rules;
  after.ratelimit.burst = before.ratelimit.burst + 1;
  const auto lines = reload_changes(before, after);
  ASSERT_EQ(lines.size(), kMaxRuleLines + 2);
  EXPECT_EQ(lines[kMaxRuleLines], "and 11 more rule changes (30 added, 0 changed, 1 removed in all)");
  EXPECT_EQ(lines.back().rfind("[ratelimit] burst", 0), 0u);
}

}  // namespace
}  // namespace strata::config

namespace strata::config {
namespace {

TEST(Config, NtsKeys) {
  const auto off = parse_config("", "c.toml");
  EXPECT_FALSE(off.config->nts.enabled());
  const auto r = parse_config(R"([clients]
state_dir = "/var/lib/stratad"
[nts]
certificate = "/etc/stratad/nts.crt"
key = "nts.key"
listen = ["127.0.0.1", "[::1]:14460"]
ntp_server = "ntp1.example.net"
ntp_port = 1123
ke_threads = 2
max_connections = 100
timeout = 1.5
cookies = 4
ke_interval = 2
ke_burst = 10
rotate = 3600
keep = 3
)", "/etc/stratad/stratad.toml");
  ASSERT_TRUE(r.config) << r.errors[0].to_string();
  const NtsConfig& n = r.config->nts;
  EXPECT_TRUE(n.ke() && n.enabled());
  EXPECT_EQ(n.key, "/etc/stratad/nts.key");
  ASSERT_EQ(n.listen.size(), 2u);
  EXPECT_EQ(n.listen[0].to_string(), "127.0.0.1:4460");
  EXPECT_EQ(n.listen[1].to_string(), "[::1]:14460");
  EXPECT_EQ(n.ntp_server, "ntp1.example.net");
  EXPECT_EQ(n.ntp_port, 1123);
  EXPECT_EQ(n.ke_threads, 2u);
  EXPECT_EQ(n.max_connections, 100u);
  EXPECT_EQ(n.timeout, 1.5);
  EXPECT_EQ(n.cookies, 4u);
  EXPECT_EQ(n.secret, "/var/lib/stratad/nts-secret");  // from state_dir
  EXPECT_EQ(n.keys.rotate_s, 3600);
  EXPECT_EQ(n.keys.keep, 3);
  // Defaults: both families on 4460.
  const auto d = parse_config("[nts]\ncertificate = \"a\"\nkey = \"b\"\nsecret = \"/s\"\n", "c.toml");
  ASSERT_TRUE(d.config);
  EXPECT_EQ(d.config->nts.listen.size(), 2u);
  EXPECT_EQ(d.config->nts.listen[0].port, kNtsKePort);
  EXPECT_EQ(d.config->nts.cookies, 8u);
  EXPECT_EQ(d.config->nts.keys.keep, 7);
  // A secret without a certificate: NTS on the NTP side only.
  const auto ntp_only = parse_config("[nts]\nsecret = \"/s\"\n", "c.toml");
  EXPECT_TRUE(ntp_only.config->nts.enabled());
  EXPECT_FALSE(ntp_only.config->nts.ke());
}

TEST(Config, NtsMistakes) {
  const auto errors = [](const std::string& text) {
    std::vector<std::string> out;
    for (const auto& e : parse_config(text, "c.toml").errors) out.push_back(e.to_string());
    return out;
  };
  EXPECT_EQ(errors("[nts]\ncertificate = \"a\"\nsecret = \"/s\"\n"),
            std::vector<std::string>{"c.toml:2: [nts] needs both certificate and key (or neither: no NTS-KE)"});
  EXPECT_EQ(errors("[nts]\ncertificate = \"a\"\nkey = \"b\"\n"),
            std::vector<std::string>{"c.toml:1: [nts] needs secret = FILE (or [clients] state_dir, where "
                                     "nts-secret is kept): cookie keys come from it"});
  EXPECT_EQ(errors("[nts]\nsecret = \"/s\"\ncookies = 9\nkeep = 31\nntp_server = \"a b\"\nbogus = 1\n"),
            (std::vector<std::string>{"c.toml:3: cookies = 9 is out of range 1..8", "c.toml:4: keep = 31 is out of range 0..30",
                                      "c.toml:5: ntp_server = \"a b\": expected a host name or address of 1-255 printable characters",
                                      "c.toml:6: unknown key 'bogus' in [nts]"}));
  EXPECT_EQ(errors("[nts]\nsecret = \"/s\"\nlisten = [\"::1:4460\"]\n").size(), 1u);
}

}  // namespace
}  // namespace strata::config

namespace strata::config {
namespace {

TEST(ConfigXdp, BackendAndXdpTable) {
  const auto r = parse_config(
      "[server]\nbackend = \"xdp\"\n[xdp]\ninterfaces = [\"eth0\", \"eth1\"]\nqueues = [0, 3]\n"
      "mode = \"generic\"\nzerocopy = \"off\"\nbusy_poll = true\n",
      "s.toml");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.config->server.backend, io::BackendKind::kXdp);
  EXPECT_EQ(r.config->xdp.interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  EXPECT_EQ(r.config->xdp.queues, (std::vector<uint32_t>{0, 3}));
  EXPECT_EQ(r.config->xdp.mode, io::XdpMode::kGeneric);
  EXPECT_EQ(r.config->xdp.zerocopy, io::XdpZeroCopy::kOff);
  EXPECT_TRUE(r.config->xdp.busy_poll);
  const auto d = parse_config("", "s.toml");
  EXPECT_EQ(d.config->server.backend, io::BackendKind::kSockets);
  EXPECT_EQ(d.config->xdp.mode, io::XdpMode::kAuto);
  EXPECT_EQ(d.config->xdp.zerocopy, io::XdpZeroCopy::kAuto);
  EXPECT_FALSE(d.config->xdp.busy_poll);
}

TEST(ConfigXdp, ErrorsNameTheLine) {
  const auto first = [](const std::string& text) {
    const auto r = parse_config(text, "s.toml");
    return r.errors.empty() ? std::string("no error") : r.errors[0].to_string();
  };
  EXPECT_EQ(first("[server]\nbackend = \"dpdk\"\n"),
            "s.toml:2: backend = \"dpdk\": expected \"sockets\" or \"xdp\"");
  EXPECT_EQ(first("[server]\nbackend = \"xdp\"\n"),
            "s.toml:2: backend = \"xdp\" needs an [xdp] table with interfaces = [\"NAME\", ...]");
  EXPECT_EQ(first("[server]\nbackend = \"xdp\"\n[xdp]\nmode = \"auto\"\n"),
            "s.toml:3: backend = \"xdp\" needs [xdp] interfaces = [\"NAME\", ...]");
  EXPECT_EQ(first("[xdp]\ninterfaces = [\"a/b\"]\n"),
            "s.toml:2: interface \"a/b\" is not an interface name (1-15 characters, no '/', ':' or spaces)");
  EXPECT_EQ(first("[xdp]\ninterfaces = [\"eth0\", \"eth0\"]\n"), "s.toml:2: interface \"eth0\" is listed twice");
  EXPECT_EQ(first("[xdp]\nmode = \"offload\"\n"),
            "s.toml:2: mode = \"offload\": expected \"auto\", \"native\" or \"generic\"");
  EXPECT_EQ(first("[xdp]\nzerocopy = \"yes\"\n"), "s.toml:2: zerocopy = \"yes\": expected \"auto\", \"on\" or \"off\"");
  EXPECT_EQ(first("[xdp]\nqueues = [-1]\n").rfind("s.toml:2: queue", 0), 0u);
  EXPECT_EQ(first("[xdp]\nsockets = 2\n"), "s.toml:2: unknown key 'sockets' in [xdp]");
}

}  // namespace
}  // namespace strata::config

// Dynamic blocks: the meter's windows, the set's lookup, the book's placing, growing,
// capping, expiring and state file.
#include "policy/blocks.h"

#include <gtest/gtest.h>

#include <vector>

namespace strata::policy {
namespace {

using clients::AddressKey;
using clients::BlockEvent;
using clients::BlockMeter;

constexpr int64_t kSecond = 1'000'000'000;

AddressKey key(const char* text) { return AddressKey::from(*base::IpAddress::parse(text)); }
base::Cidr cidr(const char* text) { return *base::Cidr::parse(text); }

// Feeds `times` (seconds) of one source through the default rules; returns the events.
std::vector<BlockEvent> feed(const char* address, const std::vector<double>& times) {
  BlockMeter meter(1024, 7);
  std::vector<clients::MeterRule> rules;
  for (const BlockRule& r : default_block_rules()) rules.push_back(r.meter());
  std::vector<BlockEvent> events;
  for (double t : times)
    meter.observe(key(address), static_cast<int64_t>(t * 1e9) + 1000 * kSecond, rules, 1,
                  [&](const BlockEvent& e) { events.push_back(e); });
  return events;
}

std::vector<double> every(double interval, double from, double to) {
  std::vector<double> t;
  for (double x = from; x < to; x += interval) t.push_back(x);
  return t;
}

bool triggered(const std::vector<BlockEvent>& events) {
  for (const auto& e : events)
    if (!e.warning) return true;
  return false;
}

TEST(BlockMeter, DefaultRulesLeaveMonitorsIburstAndSlowPollersAlone) {
  // The NTP pool's monitor: 3 requests 2 s apart, every 4 minutes, for an hour.
  std::vector<double> monitor;
  for (double m = 0; m < 3600; m += 240)
    for (int i = 0; i < 3; ++i) monitor.push_back(m + 2 * i);
  EXPECT_TRUE(feed("192.0.2.1", monitor).empty());
  // ntpd's iburst (8 requests 2 s apart) then every 64 s; chrony's (4) then every 64 s.
  std::vector<double> ntpd = every(2, 0, 16), chrony = every(2, 0, 8);
  for (double t = 64; t < 3600; t += 64) ntpd.push_back(t), chrony.push_back(t);
  EXPECT_TRUE(feed("192.0.2.2", ntpd).empty());
  EXPECT_TRUE(feed("192.0.2.3", chrony).empty());
  // A client polling every 8 s, and one every 8 s that starts with an iburst.
  EXPECT_TRUE(feed("192.0.2.4", every(8, 0, 3600)).empty());
  std::vector<double> both = every(2, 0, 16);
  for (double t = 16; t < 3600; t += 8) both.push_back(t);
  EXPECT_TRUE(feed("192.0.2.5", both).empty());
}

TEST(BlockMeter, SixPerSecondTriggersWithinTheWindowOncePerWindow) {
  const auto events = feed("192.0.2.9", every(1.0 / 6, 0, 65));
  ASSERT_TRUE(triggered(events));
  const BlockEvent* first = nullptr;
  size_t triggers = 0, warnings = 0;
  for (const auto& e : events) {
    if (e.warning) {
      ++warnings;
      continue;
    }
    if (first == nullptr) first = &e;
    ++triggers;
  }
  // 60 requests at 6/s: 10 s after the first; a warning (30) before it.
  EXPECT_NEAR(static_cast<double>(first->at_ns - 1000 * kSecond) / 1e9, 59.0 / 6, 0.2);
  EXPECT_EQ(first->rule, 0);
  EXPECT_EQ(first->prefix, key("192.0.2.9"));
  EXPECT_GE(warnings, 1u);
  EXPECT_LE(triggers, 3u);  // once per 30 s window over 65 s
  // A 1/s poller warns but is not blocked.
  const auto one = feed("192.0.2.10", every(1.0, 0, 120));
  EXPECT_FALSE(triggered(one));
  EXPECT_FALSE(one.empty());
}

TEST(BlockMeter, AFloodFromOneNetworkTriggersItsPrefix) {
  BlockMeter meter(4096, 7);
  std::vector<clients::MeterRule> rules;
  for (const BlockRule& r : default_block_rules()) rules.push_back(r.meter());
  std::vector<BlockEvent> events;
  // 1,000 requests/s from 200 addresses of one /24, each 5/s: under the /32 rule's level for
  // 12 s, the /24 rule (250/s over 10 s) sees 2,500 after 2.5 s.
  for (int i = 0; i < 4000; ++i) {
    const std::string a = "198.51.100." + std::to_string(i % 200);
    meter.observe(AddressKey::from(*base::IpAddress::parse(a)), 1000 * kSecond + i * (kSecond / 1000), rules, 1,
                  [&](const BlockEvent& e) { events.push_back(e); });
  }
  bool network = false;
  for (const auto& e : events) {
    EXPECT_EQ(e.rule, 1);  // nobody's own rate reached the /32 levels
    if (!e.warning) {
      network = true;
      EXPECT_EQ(e.prefix, key("198.51.100.0"));
      EXPECT_NEAR(static_cast<double>(e.at_ns - 1000 * kSecond) / 1e9, 2.5, 0.01);
    }
  }
  EXPECT_TRUE(network);
  EXPECT_NEAR(meter.estimate(1, key("198.51.100.77"), 1000 * kSecond + 4 * kSecond, rules[1]), 4000, 1);
}

TEST(BlockMeter, ANewEpochStartsAgain) {
  BlockMeter meter(64, 1);
  const std::vector<clients::MeterRule> rules{default_block_rules()[0].meter()};
  int n = 0;
  for (int i = 0; i < 59; ++i) meter.observe(key("192.0.2.1"), i * (kSecond / 10), rules, 1, [&](auto&) { ++n; });
  EXPECT_EQ(n, 1);  // the warning at 30
  for (int i = 59; i < 70; ++i) meter.observe(key("192.0.2.1"), i * (kSecond / 10), rules, 2, [&](auto& e) {
    ++n;
    EXPECT_TRUE(e.warning);
  });
  EXPECT_EQ(n, 1);  // counting began again at 59: 11 requests, under both levels
}

TEST(BlockSet, MostSpecificBlockMatchesByFamilyAndLength) {
  BlockBook book(2);
  book.configure(BlocksConfig{});
  EXPECT_EQ(book.add(cidr("10.1.0.0/16"), BlockAction::kLeak, 60, "wide", 100), "");
  EXPECT_EQ(book.add(cidr("10.1.2.0/24"), BlockAction::kDrop, 60, "narrow", 100), "");
  EXPECT_EQ(book.add(cidr("2001:db8:1::/48"), BlockAction::kKod, 60, "v6", 100), "");
  EXPECT_EQ(book.add(cidr("192.0.2.7"), BlockAction::kDrop, 60, "one", 100), "");
  const auto set = book.take_set();
  ASSERT_TRUE(set);
  EXPECT_EQ(set->match(key("10.1.2.3"))->reason, "narrow");
  EXPECT_EQ(set->match(key("10.1.3.3"))->reason, "wide");
  EXPECT_EQ(set->match(key("10.2.0.1")), nullptr);
  EXPECT_EQ(set->match(key("2001:db8:1:ffff::1"))->action, BlockAction::kKod);
  EXPECT_EQ(set->match(key("2001:db8:2::1")), nullptr);
  EXPECT_EQ(set->match(key("192.0.2.7"))->reason, "one");
  EXPECT_EQ(set->match(key("192.0.2.8")), nullptr);
  EXPECT_EQ(set->match(key("::ffff:10.1.2.9"))->reason, "narrow");  // mapped IPv4 is IPv4
  EXPECT_EQ(book.take_set(), nullptr);  // nothing changed since
  set->match(key("10.1.2.3"))->hits->add(1);
  set->match(key("10.1.2.4"))->hits->add(0);
  EXPECT_EQ(book.view().blocks[1].total_hits(), 2u);  // the same counters, in the book and the set
}

BlockEvent trigger(const char* address, size_t rule, float requests) {
  BlockEvent e;
  const BlockRule r = default_block_rules()[rule];
  e.prefix = key(address).prefix(r.v4_prefix, r.v6_prefix);
  e.rule = static_cast<uint8_t>(rule);
  e.requests = requests;
  return e;
}

TEST(BlockBook, RulesPlaceGrowExpireAndRespectExclusionsAndTheCap) {
  BlockBook book(1);
  BlocksConfig config;
  config.max_active = 2;
  config.rules[0].exclude.push_back(cidr("203.0.113.0/24"));
  book.configure(config);
  book.event(trigger("192.0.2.9", 0, 180), 1000);
  auto v = book.view();
  ASSERT_EQ(v.blocks.size(), 1u);
  EXPECT_EQ(v.blocks[0].prefix, cidr("192.0.2.9/32"));
  EXPECT_EQ(v.blocks[0].action, BlockAction::kKod);
  EXPECT_EQ(v.blocks[0].rule, "fast poller");
  EXPECT_EQ(v.blocks[0].expires_s, 1600);
  EXPECT_EQ(v.blocks[0].reason, "180 requests in 30 s: over 2/s");
  book.event(trigger("192.0.2.9", 0, 180), 1010);  // already blocked
  book.event(trigger("203.0.113.5", 0, 180), 1010);  // the rule's exclusion
  book.event(trigger("127.0.0.1", 0, 180), 1010);    // the global one (loopback)
  EXPECT_EQ(book.view().blocks.size(), 1u);
  // Expired, then caught again: the second offence lasts twice as long.
  book.expire(1600);
  EXPECT_TRUE(book.view().blocks.empty());
  book.event(trigger("192.0.2.9", 0, 180), 1620);
  v = book.view();
  ASSERT_EQ(v.blocks.size(), 1u);
  EXPECT_EQ(v.blocks[0].offence, 2u);
  EXPECT_EQ(v.blocks[0].expires_s, 1620 + 1200);
  // A flood's /24, then the cap.
  book.event(trigger("198.51.100.77", 1, 3000), 1621);
  book.event(trigger("198.18.0.1", 0, 180), 1622);
  v = book.view();
  ASSERT_EQ(v.blocks.size(), 2u);
  EXPECT_EQ(v.blocks[1].prefix, cidr("198.51.100.0/24"));
  EXPECT_EQ(v.blocks[1].action, BlockAction::kDrop);
  EXPECT_EQ(v.refused_cap, 1u);
  EXPECT_NE(book.add(cidr("198.18.0.0/15"), BlockAction::kDrop, 60, "x", 1622), "");
  // A warning is kept, not acted on.
  BlockEvent w = trigger("192.0.2.50", 0, 40);
  w.warning = true;
  book.event(w, 1623);
  v = book.view();
  EXPECT_EQ(v.blocks.size(), 2u);
  ASSERT_EQ(v.warnings.size(), 1u);
  EXPECT_NEAR(v.warnings[0].rate, 40.0 / 30, 1e-6);
  // Removed by hand: gone, and its offences forgotten.
  EXPECT_TRUE(book.remove(cidr("192.0.2.9/32"), 1700));
  EXPECT_FALSE(book.remove(cidr("192.0.2.9/32"), 1700));
  book.event(trigger("192.0.2.9", 0, 180), 1701);
  EXPECT_EQ(book.view().blocks.back().offence, 1u);
}

TEST(BlockBook, DurationGrowsUpToTheMaximum) {
  BlockBook book(1);
  BlocksConfig config;
  config.rules[0].duration_s = 100;
  config.rules[0].max_duration_s = 250;
  book.configure(config);
  int64_t now = 0;
  std::vector<int64_t> lengths;
  for (int i = 0; i < 4; ++i) {
    book.event(trigger("192.0.2.1", 0, 100), now);
    const Block b = book.view().blocks.at(0);
    lengths.push_back(b.expires_s - b.since_s);
    now = b.expires_s;
    book.expire(now);
  }
  EXPECT_EQ(lengths, (std::vector<int64_t>{100, 200, 250, 250}));
}

TEST(BlockBook, StateFileKeepsBlocksHitsAndOffences) {
  BlockBook book(2);
  book.configure(BlocksConfig{});
  ASSERT_EQ(book.add(cidr("2001:db8::/32"), BlockAction::kDrop, 3600, "by \"hand\"", 100), "");
  book.event(trigger("192.0.2.9", 0, 180), 100);
  book.view().blocks[0].hits->add(1);
  EXPECT_TRUE(book.dirty_state());
  const std::string text = book.serialize(200);
  EXPECT_FALSE(book.dirty_state());
  BlockBook again(2);
  again.configure(BlocksConfig{});
  EXPECT_EQ(again.restore(text, 300), "");
  auto v = again.view();
  ASSERT_EQ(v.blocks.size(), 2u);
  EXPECT_EQ(v.blocks[0].prefix, cidr("2001:db8::/32"));
  EXPECT_EQ(v.blocks[0].reason, "by \"hand\"");
  EXPECT_EQ(v.blocks[0].total_hits(), 1u);
  EXPECT_EQ(v.blocks[1].rule, "fast poller");
  ASSERT_TRUE(again.take_set()->match(key("2001:db8:ffff::1")));
  // Restored after the poller's block ended: the block is gone, its offence is not.
  BlockBook later(1);
  later.configure(BlocksConfig{});
  EXPECT_EQ(later.restore(text, 800), "");
  ASSERT_EQ(later.view().blocks.size(), 1u);
  later.event(trigger("192.0.2.9", 0, 180), 800);
  EXPECT_EQ(later.view().blocks.back().offence, 2u);
  // Damaged files are refused with a reason.
  EXPECT_NE(later.restore("{", 0), "");
  EXPECT_NE(later.restore("{\"format\":\"other\"}", 0), "");
  EXPECT_NE(later.restore("{\"format\":79608300}", 0), "");  // found by fuzz_blocks: a number threw
  EXPECT_NE(later.restore("[1]", 0), "");
  EXPECT_NE(later.restore(R"({"format":"strata-blocks 1","blocks":[{"prefix":"192.0.2.0/24","action":"kod",)"
                          R"("reason":"","rule":"","since":1,"expires":2000000000,"offence":1,"hits":7.7e40}],"offenders":[]})", 0),
            "");  // found by fuzz_blocks: a float cast to an integer
  EXPECT_NE(later.restore(R"({"format":"strata-blocks 1","blocks":[{"prefix":"x"}],"offenders":[]})", 0), "");
  EXPECT_EQ(later.view().blocks.size(), 2u);  // a refused file changed nothing
}

TEST(BlocksConfig, SteeringKeepsTheShortestPrefixOnOneWorker) {
  BlocksConfig c;
  EXPECT_EQ(c.shortest_v4(32), 24);
  EXPECT_EQ(c.shortest_v6(64), 48);
  c.rules.clear();
  EXPECT_EQ(c.shortest_v4(32), 32);
}

}  // namespace
}  // namespace strata::policy

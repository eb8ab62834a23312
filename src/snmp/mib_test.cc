#include "snmp/mib.h"

#include <gtest/gtest.h>

#include <set>

#include "stats/counters.h"

namespace strata::snmp {
namespace {

size_t find(const std::string& name) {
  const auto& o = objects();
  for (size_t i = 0; i < o.size(); ++i)
    if (o[i].name == name) return i;
  ADD_FAILURE() << "no object " << name;
  return 0;
}

Reading reading() {
  Reading r;
  r.reachable = true;
  r.unix_now = 1796601600;  // 2026-12-07T00:00:00Z
  nlohmann::json counters = nlohmann::json::object();
  for (const auto& info : stats::kCounterInfo) counters[std::string(info.name)] = 7;
  counters["received"] = (uint64_t{1} << 32) + 5;  // past a Counter32's wrap
  counters["responses_sent"] = (uint64_t{3} << 32) + 1;
  counters["control_responses"] = 2;
  counters["bad_format"] = 10;
  counters["auth_failed"] = 3;
  r.stats = {{"ok", true},
             {"uptime", 12.5},
             {"clients", {{"records", 42}}},
             {"counters", counters},
             {"time",
              {{"source", "mirror"}, {"synchronised", true}, {"leap", 1}, {"stratum", 2}, {"refid", "192.0.2.1"},
               {"precision", -24}, {"root_delay", 0.002}, {"root_dispersion", 0.0005}}}};
  const int64_t minute = r.unix_now / 60 * 60;
  r.unique = {{"now", r.unix_now},
              {"sketches",
               {{{"window", "1m"}, {"start", minute}, {"end", minute + 60}, {"kind", "v4"}, {"estimate", 10.4}},
                {{"window", "1m"}, {"start", minute}, {"end", minute + 60}, {"kind", "v6"}, {"estimate", 5.2}},
                {{"window", "1m"}, {"start", minute}, {"end", minute + 60}, {"kind", "v4/24"}, {"estimate", 3}},
                {{"window", "1m"}, {"start", minute - 60}, {"end", minute}, {"kind", "v4"}, {"estimate", 99}}}}};
  r.top[0] = {{"rows", {{{"share", 0.25}}, {{"share", 0.05}}}}};
  r.top[1] = {{"rows", nlohmann::json::array()}};
  return r;
}

TEST(SnmpMib, ObjectsAreInOidOrderWithUniqueNames) {
  const auto& o = objects();
  ASSERT_GT(o.size(), stats::kCounterCount + 20);
  std::set<std::string> names;
  for (size_t i = 0; i < o.size(); ++i) {
    EXPECT_TRUE(names.insert(o[i].name).second) << o[i].name;
    if (i > 0) {
      EXPECT_LT(o[i - 1].oid, o[i].oid) << o[i].name;
    }
  }
  // Scalars end in .0; the NTPv4-MIB's under mib-2.197, the STRATA-MIB's under the placeholder PEN.
  EXPECT_EQ(o[find("ntpEntSoftwareName")].oid, (Oid{1, 3, 6, 1, 2, 1, 197, 1, 1, 1, 0}));
  EXPECT_EQ(o[find("ntpEntStatusInPkts")].oid, (Oid{1, 3, 6, 1, 2, 1, 197, 1, 2, 12, 0}));
  EXPECT_EQ(o[find("strataReceived")].oid, (Oid{1, 3, 6, 1, 4, 1, 32473, 1, 1, 1, 0}));
  EXPECT_EQ(o[find("strataBytesOutV6")].oid.at(9), 1 + stats::index(stats::Counter::bytes_out_v6));
}

TEST(SnmpMib, CountersWrapAt32BitsAndNotAt64) {
  const auto v = values(reading());
  const auto& in32 = v[find("ntpEntStatusInPkts")];
  ASSERT_TRUE(in32);
  EXPECT_EQ(in32->type, Type::kCounter32);
  EXPECT_EQ(in32->number, 5u);  // (2^32 + 5) mod 2^32
  const auto& in64 = v[find("strataReceived")];
  ASSERT_TRUE(in64);
  EXPECT_EQ(in64->type, Type::kCounter64);
  EXPECT_EQ(in64->number, (uint64_t{1} << 32) + 5);
  EXPECT_EQ(v[find("ntpEntStatusOutPkts")]->number, 3u);  // (3 * 2^32 + 1 + 2) mod 2^32
  EXPECT_EQ(v[find("strataResponsesSent")]->number, (uint64_t{3} << 32) + 1);
  EXPECT_EQ(v[find("ntpEntStatusProtocolError")]->number, 13u);
  EXPECT_EQ(v[find("ntpEntStatusBadVersion")]->number, 7u);
  EXPECT_EQ(v[find("ntpEntStatPktReceived.client")]->number, 14u);  // current + older version
  // Every other counter of the list at strataCounters.(its index + 1).
  const auto& o = objects();
  for (size_t i = 0; i < stats::kCounterCount; ++i) {
    const auto& name = stats::kCounterInfo[i].name;
    if (name == "received" || name == "responses_sent" || name == "control_responses" || name == "bad_format" ||
        name == "auth_failed")
      continue;
    Oid want = kStrataMib;
    want.insert(want.end(), {1, 1, static_cast<uint32_t>(i + 1), 0});
    size_t at = 0;
    while (at < o.size() && o[at].oid != want) ++at;
    ASSERT_LT(at, o.size()) << name;
    ASSERT_TRUE(v[at]) << name;
    EXPECT_EQ(v[at]->number, 7u) << name;
  }
}

TEST(SnmpMib, StatusClientsAndTime) {
  const auto v = values(reading());
  EXPECT_EQ(v[find("ntpEntStatusCurrentMode")]->integer, 6);  // syncToRemoteServer
  EXPECT_EQ(v[find("ntpEntStatusStratum")]->number, 2u);
  EXPECT_EQ(v[find("ntpEntStatusActiveRefSourceId")]->number, 0u);  // no associations
  EXPECT_EQ(v[find("ntpEntStatusActiveRefSourceName")]->octets, "mirror (refid 192.0.2.1)");
  EXPECT_EQ(v[find("ntpEntStatusLeapSecDirection")]->integer, 1);
  EXPECT_EQ(v[find("ntpEntStatusEntityUptime")]->number, 1250u);  // TimeTicks: 1/100 s
  EXPECT_EQ(v[find("ntpEntTimePrecision")]->integer, -24);
  EXPECT_EQ(v[find("ntpEntTimeDistance")]->octets, "1.500 ms");
  EXPECT_EQ(v[find("ntpEntStatusDispersion")]->octets, "0.500 ms");
  EXPECT_EQ(v[find("ntpEntStatusDateTime")]->octets.size(), 16u);
  EXPECT_EQ(v[find("strataUniqueClientsMinute")]->number, 16u);  // 10.4 + 5.2, this minute only
  EXPECT_EQ(v[find("strataUniqueClientsHour")]->number, 0u);  // no sketch of this hour yet
  EXPECT_EQ(v[find("strataClientRecords")]->number, 42u);
  EXPECT_EQ(v[find("strataTopTalkerShareMinute")]->number, 300000u);  // 30% in ppm
  EXPECT_EQ(v[find("strataTopTalkerShareHour")]->number, 0u);
  EXPECT_FALSE(v[find("strataTopTalkerShareDay")]);  // no reply for the day: noSuchInstance
  EXPECT_EQ(v[find("strataTimeSynchronised")]->integer, 1);
  EXPECT_EQ(v[find("strataTimeRootDelay")]->number, 2000u);
  EXPECT_EQ(v[find("strataTimeRootDispersion")]->number, 500u);

  Reading r = reading();
  r.stats["time"]["synchronised"] = false;
  r.stats["time"]["leap"] = 3;
  auto u = values(r);
  EXPECT_EQ(u[find("ntpEntStatusCurrentMode")]->integer, 2);  // notSynchronized
  EXPECT_EQ(u[find("ntpEntStatusDateTime")]->octets, "");     // empty while unsynchronised
  EXPECT_EQ(u[find("strataTimeSynchronised")]->integer, 2);
  r.stats["time"]["synchronised"] = true;
  r.stats["time"]["source"] = "local";
  EXPECT_EQ(values(r)[find("ntpEntStatusCurrentMode")]->integer, 4);  // syncToLocal
}

TEST(SnmpMib, UnreachableStratadIsNotRunning) {
  Reading r;
  const auto v = values(r);
  EXPECT_EQ(v[find("ntpEntStatusCurrentMode")]->integer, 1);
  EXPECT_EQ(v[find("ntpEntSoftwareName")]->octets, "strata");
  EXPECT_FALSE(v[find("ntpEntStatusInPkts")]);
  EXPECT_FALSE(v[find("strataReceived")]);
  EXPECT_FALSE(v[find("strataUniqueClientsDay")]);
}

TEST(SnmpMib, NtpDateTime) {
  // 1970 is 2,208,988,800 s into NTP era 0; 2036-02-07T06:28:16Z starts era 1.
  std::string d = ntp_date_time(0, 0.5);
  ASSERT_EQ(d.size(), 16u);
  EXPECT_EQ(d.substr(0, 8), std::string("\0\0\0\0\x83\xaa\x7e\x80", 8));
  EXPECT_EQ(static_cast<unsigned char>(d[8]), 0x80u);  // half a second
  d = ntp_date_time(2085978496, 0);
  EXPECT_EQ(d.substr(0, 8), std::string("\0\0\0\x01\0\0\0\0", 8));
}

TEST(SnmpMib, MibTextNamesEveryStrataObject) {
  const std::string m = mib_text();
  EXPECT_NE(m.find("STRATA-MIB DEFINITIONS ::= BEGIN"), std::string::npos);
  EXPECT_NE(m.find("::= { enterprises 32473 }"), std::string::npos);
  EXPECT_NE(m.find("strataReceived OBJECT-TYPE\n    SYNTAX      Counter64\n"), std::string::npos);
  for (const auto& o : objects())
    if (o.name.rfind("strata", 0) == 0) {
      EXPECT_NE(m.find("\n" + o.name + " OBJECT-TYPE\n"), std::string::npos) << o.name;
    }
  EXPECT_EQ(m.substr(m.size() - 4), "END\n");
}

}  // namespace
}  // namespace strata::snmp

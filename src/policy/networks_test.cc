// Unit tests of the network databases with MaxMind's own test databases (MIT licence, kept in
// tests/data/mmdb): ASN and organisation, country, IPv4-mapped addresses, misses and errors.
#include "policy/networks.h"

#include <gtest/gtest.h>

#include <fstream>

namespace strata::policy {
namespace {

const std::string kData = std::string(STRATA_SOURCE_DIR) + "/tests/data/mmdb/";

base::IpAddress ip(const char* text) { return *base::IpAddress::parse(text); }

TEST(Networks, AsnOrganisationAndCountry) {
  std::string error;
  const auto db = NetworkDb::open(kData + "GeoLite2-ASN-Test.mmdb", kData + "GeoLite2-Country-Test.mmdb", error);
  ASSERT_TRUE(db) << error;
  NetworkInfo google = db->lookup(ip("1.0.0.1"));
  EXPECT_EQ(google.asn, 15169u);
  EXPECT_EQ(google.org, "Google Inc.");
  EXPECT_EQ(google.asn_prefix, 24);  // 1.0.0.0/24 in the source data
  EXPECT_EQ(network_name(google), "AS15169 Google Inc.");
  // IPv4-mapped IPv6: looked up as IPv4.
  EXPECT_EQ(db->lookup(ip("::ffff:1.0.0.1")), google);
  const NetworkInfo att = db->lookup(ip("12.81.96.5"));  // a network without an organisation
  EXPECT_EQ(att.asn, 7018u);
  EXPECT_EQ(network_name(att), "AS7018");
  EXPECT_EQ(db->lookup(ip("2600:6000::1")).org, "Merit Network Inc.");
  EXPECT_EQ(db->lookup(ip("89.160.20.112")).country, "SE");
  EXPECT_EQ(db->lookup(ip("2001:218::1")).country, "JP");
  EXPECT_EQ(db->lookup(ip("::ffff:89.160.20.112")).country, "SE");
  // Not in either: unknown, not an error.
  const NetworkInfo none = db->lookup(ip("192.0.2.1"));
  EXPECT_EQ(none.asn, 0u);
  EXPECT_EQ(none.country, "");
  EXPECT_EQ(network_name(none), "unknown network");
  EXPECT_NE(db->describe().find("GeoLite2-ASN"), std::string::npos) << db->describe();
}

TEST(Networks, OneDatabaseIsEnoughAndBadFilesSayWhy) {
  std::string error;
  const auto country = NetworkDb::open("", kData + "GeoLite2-Country-Test.mmdb", error);
  ASSERT_TRUE(country) << error;
  EXPECT_FALSE(country->has_asn());
  EXPECT_EQ(country->lookup(ip("1.0.0.1")).asn, 0u);
  EXPECT_FALSE(NetworkDb::open("", "", error));
  EXPECT_FALSE(NetworkDb::open("/nonexistent.mmdb", "", error));
  EXPECT_NE(error.find("cannot open /nonexistent.mmdb"), std::string::npos) << error;
  const std::string bad = ::testing::TempDir() + "/not-a-database.mmdb";
  std::ofstream(bad) << "this is not a MaxMind database\n";
  EXPECT_FALSE(NetworkDb::open(bad, "", error));
  EXPECT_NE(error.find("cannot open " + bad), std::string::npos) << error;
}

}  // namespace
}  // namespace strata::policy

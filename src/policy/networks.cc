// MaxMind-format lookups (see networks.h).
#include "policy/networks.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <maxminddb.h>
#include <netinet/in.h>

#include <cstring>
#include <ctime>

#include "clients/address_key.h"

namespace strata::policy {

namespace {

std::string built(const MMDB_s& db) {
  const time_t t = static_cast<time_t>(db.metadata.build_epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{} (built {:04}-{:02}-{:02})", db.metadata.database_type ? db.metadata.database_type : "?",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

// The entry's value at `path` (a null-terminated list of keys) when it has that type.
bool value(MMDB_entry_s& entry, const char* const* path, uint32_t type, MMDB_entry_data_s& out) {
  return MMDB_aget_value(&entry, &out, path) == MMDB_SUCCESS && out.has_data && out.type == type;
}

std::string text(const MMDB_entry_data_s& d) { return std::string(d.utf8_string, d.data_size); }

MMDB_s* open_one(const std::string& file, std::string& error) {
  auto db = std::make_unique<MMDB_s>();
  const int status = MMDB_open(file.c_str(), MMDB_MODE_MMAP, db.get());
  if (status != MMDB_SUCCESS) {
    error = fmt::format("cannot open {}: {}{}", file, MMDB_strerror(status),
                        status == MMDB_IO_ERROR ? fmt::format(" ({})", std::strerror(errno)) : "");
    return nullptr;
  }
  return db.release();
}

// The lookup result for an address: IPv4 (also when mapped: AddressKey's normal form) as
// AF_INET.
MMDB_lookup_result_s find(const MMDB_s& db, const base::IpAddress& address, int& family) {
  const base::IpAddress a = clients::AddressKey::from(address).address();
  sockaddr_storage ss{};
  if (a.family == base::Family::kV4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, a.bytes.data(), 4);
    family = AF_INET;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, a.bytes.data(), 16);
    family = AF_INET6;
  }
  int error = 0;
  return MMDB_lookup_sockaddr(&db, reinterpret_cast<const sockaddr*>(&ss), &error);
}

}  // namespace

std::shared_ptr<const NetworkDb> NetworkDb::open(const std::string& asn_file, const std::string& country_file,
                                                 std::string& error) {
  if (asn_file.empty() && country_file.empty()) {
    error = "no database given";
    return nullptr;
  }
  std::shared_ptr<NetworkDb> db(new NetworkDb());
  db->asn_file_ = asn_file;
  db->country_file_ = country_file;
  if (!asn_file.empty() && (db->asn_ = open_one(asn_file, error)) == nullptr) return nullptr;
  if (!country_file.empty() && (db->country_ = open_one(country_file, error)) == nullptr) return nullptr;
  return db;
}

NetworkDb::~NetworkDb() {
  for (MMDB_s* db : {asn_, country_}) {
    if (db == nullptr) continue;
    MMDB_close(db);
    delete db;
  }
}

NetworkInfo NetworkDb::lookup(const base::IpAddress& address) const {
  NetworkInfo info;
  int family = 0;
  if (asn_ != nullptr) {
    MMDB_lookup_result_s r = find(*asn_, address, family);
    if (r.found_entry) {
      MMDB_entry_data_s d;
      static const char* const kNumber[] = {"autonomous_system_number", nullptr};
      static const char* const kAsn[] = {"asn", nullptr};  // IPinfo: "AS15169"
      static const char* const kOrg[] = {"autonomous_system_organization", nullptr};
      static const char* const kName[] = {"as_name", nullptr};
      if (value(r.entry, kNumber, MMDB_DATA_TYPE_UINT32, d)) {
        info.asn = d.uint32;
      } else if (value(r.entry, kAsn, MMDB_DATA_TYPE_UTF8_STRING, d)) {
        const std::string s = text(d);
        if (s.size() > 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's'))
          info.asn = static_cast<uint32_t>(std::strtoul(s.c_str() + 2, nullptr, 10));
      }
      if (value(r.entry, kOrg, MMDB_DATA_TYPE_UTF8_STRING, d) || value(r.entry, kName, MMDB_DATA_TYPE_UTF8_STRING, d))
        info.org = text(d);
      // The netmask is in the database's tree: an IPv4 address in an IPv6 tree is 96 deeper.
      info.asn_prefix = family == AF_INET && asn_->metadata.ip_version == 6 ? r.netmask - 96 : r.netmask;
    }
  }
  if (country_ != nullptr) {
    MMDB_lookup_result_s r = find(*country_, address, family);
    if (r.found_entry) {
      MMDB_entry_data_s d;
      static const char* const kIso[] = {"country", "iso_code", nullptr};
      static const char* const kCode[] = {"country_code", nullptr};
      static const char* const kRegistered[] = {"registered_country", "iso_code", nullptr};
      if (value(r.entry, kIso, MMDB_DATA_TYPE_UTF8_STRING, d) || value(r.entry, kCode, MMDB_DATA_TYPE_UTF8_STRING, d) ||
          value(r.entry, kRegistered, MMDB_DATA_TYPE_UTF8_STRING, d))
        info.country = text(d);
    }
  }
  return info;
}

std::string NetworkDb::describe() const {
  std::string out;
  if (asn_ != nullptr) out += "ASN " + asn_file_ + ": " + built(*asn_);
  if (country_ != nullptr) out += std::string(out.empty() ? "" : "; ") + "country " + country_file_ + ": " + built(*country_);
  return out;
}

std::string network_name(const NetworkInfo& info) {
  if (info.asn == 0) return info.org.empty() ? "unknown network" : info.org;
  return info.org.empty() ? fmt::format("AS{}", info.asn) : fmt::format("AS{} {}", info.asn, info.org);
}

std::string country_name(const NetworkInfo& info) {
  return info.country.empty() ? "unknown country" : info.country;
}

}  // namespace strata::policy

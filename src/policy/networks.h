// Whose network an address is in: MaxMind-format databases (GeoLite2 ASN and Country, DB-IP
// Lite, IPinfo Lite, sapics/ip-location-db), read with Debian's libmaxminddb (memory-mapped).
// Both schemas are understood: MaxMind's (autonomous_system_number, autonomous_system_
// organization, country.iso_code) and IPinfo's (asn "AS15169", as_name, country_code).
// IPv4-mapped IPv6 addresses are looked up as IPv4 (not every writer aliases ::ffff:0:0/96).
// Opened whole at start and on reload, then shared read-only: readers hold a shared_ptr, so a
// reload's new databases replace the old ones while lookups in flight finish on the old.
// Control plane only: a lookup costs about 100 ns and copies the organisation's name.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "base/net.h"

struct MMDB_s;

namespace strata::policy {

struct NetworkInfo {
  uint32_t asn = 0;        // 0: unknown
  std::string org;         // "" : unknown
  std::string country;     // ISO 3166 code, "" unknown
  int asn_prefix = -1;     // the database's network for the address (prefix length), -1 unknown
  bool operator==(const NetworkInfo&) const = default;
};

class NetworkDb {
 public:
  // Opens the files that are not "" (at least one). Null with `error` naming the file and
  // what is wrong ("cannot open x.mmdb: The MaxMind DB file's search tree is corrupt").
  static std::shared_ptr<const NetworkDb> open(const std::string& asn_file, const std::string& country_file,
                                               std::string& error);
  ~NetworkDb();
  NetworkDb(const NetworkDb&) = delete;
  NetworkDb& operator=(const NetworkDb&) = delete;

  NetworkInfo lookup(const base::IpAddress& address) const;
  // "ASN GeoLite2-ASN (built 2019-06-03), country GeoLite2-Country (built ...)".
  std::string describe() const;
  bool has_asn() const { return asn_ != nullptr; }
  bool has_country() const { return country_ != nullptr; }

 private:
  NetworkDb() = default;
  MMDB_s* asn_ = nullptr;
  MMDB_s* country_ = nullptr;
  std::string asn_file_, country_file_;
};

// The databases in force, replaced on reload: a reader takes a reference and keeps the old
// databases alive until it is done (control and metrics threads only, never the workers).
class NetworksCell {
 public:
  std::shared_ptr<const NetworkDb> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return db_;
  }
  void set(std::shared_ptr<const NetworkDb> db) {
    std::lock_guard<std::mutex> lock(mu_);
    db_.swap(db);
  }  // the old one is released here, outside no reader

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const NetworkDb> db_;
};

// "AS15169 Google Inc." / "AS15169" / "unknown network".
std::string network_name(const NetworkInfo& info);
// "SE" / "unknown country".
std::string country_name(const NetworkInfo& info);

}  // namespace strata::policy

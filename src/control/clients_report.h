// The control API's "clients" command: reads every worker's client table (lock-free, see
// clients/client_table.h), filters, sorts and streams one JSON array per client, so a
// million entries leave in seconds without building a JSON tree. Control thread only.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "base/net.h"
#include "base/ntp_time.h"
#include "clients/client_table.h"
#include "control/control_server.h"
#include "policy/networks.h"

namespace strata::control {

enum class ClientSort { kLstint, kCount, kAvgint, kAddr };

struct ClientQuery {
  ClientSort sort = ClientSort::kLstint;
  bool reverse = false;
  size_t limit = 0;  // 0: all
  uint32_t mincount = 0;
  bool limited = false;  // only clients whose last request was over the limit
  bool kod = false;      // only clients that were sent a KoD
  std::optional<base::Cidr> prefix;
  std::optional<base::IpAddress> laddr;
};

// Parses the request's fields ("sort": "-count", "limit": 10, ...). Throws
// std::invalid_argument with a readable message on a bad field.
ClientQuery parse_client_query(const nlohmann::json& request);

// The columns of each row, in order.
const std::vector<std::string>& client_columns();

// Streams the header, the rows and returns the trailer (see Responder). With `networks`, each
// row has three more columns: asn (0 unknown), org and country ("" unknown).
nlohmann::json stream_clients(const std::vector<const clients::ClientTable*>& tables,
                              const ClientQuery& query, base::RealTime now, Responder& out,
                              const policy::NetworkDb* networks = nullptr);

// One page of the same rows as one JSON document (the console's /api/v1/clients): the
// request's fields plus offset (0..100,000) and limit (the page, 1..1,000, default 50).
// Throws std::invalid_argument on bad fields.
nlohmann::json clients_page_json(const std::vector<const clients::ClientTable*>& tables,
                                 const nlohmann::json& request, base::RealTime now,
                                 const policy::NetworkDb* networks = nullptr);

// ntpd's average interval: (last - first) / (count - 1), 0 for a single request.
double average_interval_s(const clients::ClientSnapshot& c);

}  // namespace strata::control

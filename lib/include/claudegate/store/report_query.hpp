// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/errors.hpp"
#include "claudegate/store/usage.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

// usage-report's filters turned into a ledger query, shared by the command
// and serve-local's GET /admin/usage.
namespace claudegate::report {

// The filters as given, unparsed: --since/--until (or query parameters
// since/until) as Unix seconds, RFC 3339 or YYYY-MM-DD, --sub, --model,
// and --by as "sub,day"; empty `by` = one total row.
struct Filters {
  std::optional<std::string> since;
  std::optional<std::string> until;
  std::optional<std::string> subject;
  std::optional<std::string> model;
  std::string by;
};

// The ledger query of `filters` at `now`: the range defaults to today (UTC)
// and `until` is exclusive. Fails with config naming the filter as
// `prefix` + its name ("--since" or "since"): a time or --by value that does
// not parse, or a range that is empty.
Result<store::UsageQuery> make_query(const Filters& filters, UnixSeconds now, std::string_view prefix);

// Today's quota of each subject in `store` at `now`, needed only when
// `query` groups by sub (empty otherwise). Fails with storage.
Result<std::map<std::string, store::SubjectQuota>>
quotas_for(store::UsageStore& store, const store::UsageQuery& query, UnixSeconds now);

} // namespace claudegate::report

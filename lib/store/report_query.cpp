// SPDX-License-Identifier: Apache-2.0
#include "claudegate/store/report_query.hpp"

#include "claudegate/base/duration.hpp"
#include "claudegate/store/report.hpp"

#include <fmt/core.h>

#include <algorithm>

namespace claudegate::report {

namespace {

constexpr std::int64_t k_day_seconds = 86'400;

// `text` as a time, or `fallback` when not given.
Result<UnixSeconds> time_filter(const std::optional<std::string>& text, UnixSeconds fallback,
                                std::string_view name) {
  if (!text) {
    return fallback;
  }
  auto parsed = duration::parse_time(*text);
  if (!parsed) {
    return fail(Errc::config, fmt::format("{} {}: {}", name, *text, parsed.error().message));
  }
  return *parsed;
}

bool grouped_by_sub(const store::UsageQuery& query) {
  return std::find(query.group_by.begin(), query.group_by.end(), store::GroupBy::sub) != query.group_by.end();
}

} // namespace

Result<store::UsageQuery> make_query(const Filters& filters, UnixSeconds now, std::string_view prefix) {
  const std::string since_name = fmt::format("{}since", prefix);
  const std::string until_name = fmt::format("{}until", prefix);
  const UnixSeconds today = duration::utc_day_start(now);
  auto since = time_filter(filters.since, today, since_name);
  auto until = since ? time_filter(filters.until, today + k_day_seconds, until_name) : since;
  if (!until) {
    return propagate(until);
  }
  if (*since >= *until) {
    return fail(Errc::config, fmt::format("{} {} is not before {} {}, so the range is empty (without them, "
                                          "both mean today, UTC); give both or a later {}",
                                          since_name, duration::format_time(*since), until_name,
                                          duration::format_time(*until), until_name));
  }
  store::UsageQuery query{*since, *until, filters.subject, filters.model, {}};
  if (!filters.by.empty()) {
    auto keys = parse_group_by(filters.by);
    if (!keys) {
      return fail(Errc::config, fmt::format("{}by: {}", prefix, keys.error().message));
    }
    query.group_by = std::move(*keys);
  }
  return query;
}

Result<std::map<std::string, store::SubjectQuota>>
quotas_for(store::UsageStore& store, const store::UsageQuery& query, UnixSeconds now) {
  std::map<std::string, store::SubjectQuota> quotas;
  if (!grouped_by_sub(query)) {
    return quotas;
  }
  auto listed = store.subject_quotas(now);
  if (!listed) {
    return propagate(listed);
  }
  for (auto& quota : *listed) {
    auto subject = quota.subject;
    quotas.emplace(std::move(subject), std::move(quota));
  }
  return quotas;
}

} // namespace claudegate::report

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "claudegate/base/clock.hpp"
#include "claudegate/base/errors.hpp"

#include <string>
#include <string_view>

namespace claudegate::duration {

// Parse `text` such as "90s", "15m", "12h", "7d" (or a bare number of
// seconds) into seconds. Fails with config naming the accepted forms.
Result<std::int64_t> parse(std::string_view text);

// Parse `text` as Unix seconds or RFC 3339 ("2026-11-23T10:00:00Z",
// offsets allowed). Fails with config.
Result<UnixSeconds> parse_time(std::string_view text);

// Human form of `seconds`: "3m12s", "2h", "1d3h", "0s".
std::string format(std::int64_t seconds);

// RFC 3339 UTC form of `t`: "2026-11-23T10:00:00Z".
std::string format_time(UnixSeconds t);

// The UTC day "YYYY-MM-DD" of `t`, and the Unix time of its start.
std::string utc_day(UnixSeconds t);
UnixSeconds utc_day_start(UnixSeconds t);

} // namespace claudegate::duration

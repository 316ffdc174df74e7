// SPDX-License-Identifier: Apache-2.0
#include "claudegate/base/duration.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>

namespace claudegate::duration {

namespace {

namespace chr = std::chrono;

constexpr std::string_view k_duration_forms =
    "use whole seconds or a number with a unit: 90s, 15m, 12h, 7d (units combine, largest first: 1h30m)";
constexpr std::string_view k_time_forms =
    "use Unix seconds (1795428000) or RFC 3339 (2026-11-23T10:00:00Z, 2026-11-23T11:00:00+01:00)";

// Longer spans are typos, and the cap keeps `now + duration` far from overflow.
constexpr std::int64_t k_max_duration = 36500LL * 86400;

// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years RFC 3339 can write.
constexpr std::int64_t k_min_time = -62167219200;
constexpr std::int64_t k_max_time = 253402300799;

struct Unit {
  std::string_view suffix;
  std::int64_t seconds;
};

constexpr std::array<Unit, 4> k_units{{{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}}};

std::unexpected<Error> bad_duration(std::string_view text, std::string_view why) {
  return fail(Errc::config,
              fmt::format("cannot parse duration \"{}\" ({}); {}", text, why, k_duration_forms));
}

std::unexpected<Error> bad_time(std::string_view text, std::string_view why) {
  return fail(Errc::config, fmt::format("cannot parse time \"{}\" ({}); {}", text, why, k_time_forms));
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool all_digits(std::string_view text) {
  for (char c : text) {
    if (!is_digit(c)) {
      return false;
    }
  }
  return !text.empty();
}

// Index into k_units of the unit named `suffix`, or nullopt.
std::optional<std::size_t> unit_index(std::string_view suffix) {
  for (std::size_t i = 0; i < k_units.size(); ++i) {
    if (k_units[i].suffix == suffix) {
      return i;
    }
  }
  return std::nullopt;
}

// One "<digits><unit>" component at the front of `rest`, consumed from it.
struct Component {
  std::int64_t value = 0;
  std::string_view unit; // empty for a bare number
};

Result<Component> take_component(std::string_view& rest, std::string_view text) {
  if (!is_digit(rest.front())) {
    return bad_duration(text,
                        rest.front() == '-' ? "negative durations are not allowed" : "expected a number");
  }
  Component out;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), out.value);
  if (ec != std::errc{}) {
    return bad_duration(text, "number too large");
  }
  rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
  std::size_t letters = 0;
  while (letters < rest.size() && !is_digit(rest[letters])) {
    ++letters;
  }
  out.unit = rest.substr(0, letters);
  rest.remove_prefix(letters);
  return out;
}

// Days since 1970-01-01 of a valid civil date, or nullopt.
std::optional<std::int64_t> days_from_civil(int year, unsigned month, unsigned day) {
  const chr::year_month_day ymd{chr::year{year}, chr::month{month}, chr::day{day}};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  return chr::sys_days{ymd}.time_since_epoch().count();
}

// A left-to-right reader over RFC 3339 text.
class TimeCursor {
public:
  explicit TimeCursor(std::string_view text) : m_text(text) {}

  bool at_end() const { return m_pos == m_text.size(); }

  // Exactly `count` digits as a number.
  std::optional<int> digits(std::size_t count) {
    if (m_text.size() - m_pos < count) {
      return std::nullopt;
    }
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const char c = m_text[m_pos + i];
      if (!is_digit(c)) {
        return std::nullopt;
      }
      value = value * 10 + (c - '0');
    }
    m_pos += count;
    return value;
  }

  // Consume one character if it is one of `choices`; returns it or '\0'.
  char one_of(std::string_view choices) {
    if (at_end() || choices.find(m_text[m_pos]) == std::string_view::npos) {
      return '\0';
    }
    return m_text[m_pos++];
  }

  // Consume a run of digits (the ignored fraction); returns how many.
  std::size_t skip_digits() {
    const std::size_t start = m_pos;
    while (!at_end() && is_digit(m_text[m_pos])) {
      ++m_pos;
    }
    return m_pos - start;
  }

private:
  std::string_view m_text;
  std::size_t m_pos = 0;
};

struct Civil {
  int year = 0;
  int month = 0;
  int day = 0;
};

std::optional<Civil> read_date(TimeCursor& in) {
  const auto year = in.digits(4);
  if (!year || !in.one_of("-")) {
    return std::nullopt;
  }
  const auto month = in.digits(2);
  if (!month || !in.one_of("-")) {
    return std::nullopt;
  }
  const auto day = in.digits(2);
  if (!day) {
    return std::nullopt;
  }
  return Civil{*year, *month, *day};
}

// "hh:mm:ss[.frac]" as seconds of the day (60 allowed for a leap second).
std::optional<std::int64_t> read_clock(TimeCursor& in) {
  const auto hour = in.digits(2);
  const bool colon1 = hour && in.one_of(":");
  const auto minute = colon1 ? in.digits(2) : std::nullopt;
  const bool colon2 = minute && in.one_of(":");
  const auto second = colon2 ? in.digits(2) : std::nullopt;
  if (!second || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  // Fractions are truncated: tokens carry whole seconds.
  if (in.one_of(".") && in.skip_digits() == 0) {
    return std::nullopt;
  }
  return *hour * 3600 + *minute * 60 + *second;
}

// "Z" or "±hh:mm" as seconds east of UTC.
std::optional<std::int64_t> read_offset(TimeCursor& in) {
  if (in.one_of("Zz")) {
    return 0;
  }
  const char sign = in.one_of("+-");
  const auto hours = sign ? in.digits(2) : std::nullopt;
  const bool colon = hours && in.one_of(":");
  const auto minutes = colon ? in.digits(2) : std::nullopt;
  if (!minutes || *hours > 23 || *minutes > 59) {
    return std::nullopt;
  }
  const std::int64_t offset = *hours * 3600 + *minutes * 60;
  return sign == '-' ? -offset : offset;
}

Result<UnixSeconds> parse_rfc3339(std::string_view text) {
  TimeCursor in(text);
  const auto date = read_date(in);
  if (!date) {
    return bad_time(text, "expected a date YYYY-MM-DD");
  }
  const auto days =
      days_from_civil(date->year, static_cast<unsigned>(date->month), static_cast<unsigned>(date->day));
  if (!days) {
    return bad_time(text, "no such calendar date");
  }
  // A bare date means midnight UTC, handy for --since/--until.
  if (in.at_end()) {
    return *days * 86400;
  }
  if (!in.one_of("Tt ")) {
    return bad_time(text, "expected 'T' between date and time");
  }
  const auto clock = read_clock(in);
  if (!clock) {
    return bad_time(text, "expected a time hh:mm:ss");
  }
  const auto offset = read_offset(in);
  if (!offset || !in.at_end()) {
    return bad_time(text, "expected 'Z' or an offset like +01:00 at the end");
  }
  return *days * 86400 + *clock - *offset;
}

constexpr std::int64_t k_day_seconds = 86'400;

// `a / b` rounded toward negative infinity (days before 1970 included).
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

} // namespace

Result<std::int64_t> parse(std::string_view text) {
  if (text.empty()) {
    return bad_duration(text, "empty");
  }
  std::string_view rest = text;
  std::int64_t total = 0;
  std::size_t previous_unit = k_units.size();
  while (!rest.empty()) {
    auto component = take_component(rest, text);
    if (!component) {
      return propagate(component);
    }
    // A bare number is whole seconds, but only on its own.
    if (component->unit.empty() && previous_unit == k_units.size() && rest.empty()) {
      total = component->value;
      break;
    }
    const auto unit = unit_index(component->unit);
    if (!unit) {
      return bad_duration(text, component->unit.empty()
                                    ? std::string("missing unit")
                                    : fmt::format("unknown unit \"{}\"", component->unit));
    }
    if (previous_unit != k_units.size() && *unit <= previous_unit) {
      return bad_duration(text, "units must go from largest to smallest, each once");
    }
    previous_unit = *unit;
    std::int64_t seconds = 0;
    if (__builtin_mul_overflow(component->value, k_units[*unit].seconds, &seconds)
        || __builtin_add_overflow(total, seconds, &total)) {
      return bad_duration(text, "number too large");
    }
  }
  if (total > k_max_duration) {
    return bad_duration(text, "longer than 36500d");
  }
  return total;
}

Result<UnixSeconds> parse_time(std::string_view text) {
  if (text.empty()) {
    return bad_time(text, "empty");
  }
  if (all_digits(text)) {
    UnixSeconds value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || value > k_max_time) {
      return bad_time(text, "after the year 9999");
    }
    return value;
  }
  return parse_rfc3339(text);
}

std::string format(std::int64_t seconds) {
  if (seconds == 0) {
    return "0s";
  }
  // Unsigned magnitude, so INT64_MIN does not overflow on negation.
  const std::uint64_t magnitude =
      seconds < 0 ? static_cast<std::uint64_t>(-(seconds + 1)) + 1 : static_cast<std::uint64_t>(seconds);
  std::string out = seconds < 0 ? "-" : "";
  for (std::size_t i = 0; i < k_units.size(); ++i) {
    const auto unit = static_cast<std::uint64_t>(k_units[i].seconds);
    if (magnitude < unit) {
      continue;
    }
    out += fmt::format("{}{}", magnitude / unit, k_units[i].suffix);
    // Two adjacent units are precise enough for a human ("1d3h", "3m12s").
    if (i + 1 < k_units.size()) {
      const auto next = static_cast<std::uint64_t>(k_units[i + 1].seconds);
      const std::uint64_t rest = magnitude % unit / next;
      if (rest != 0) {
        out += fmt::format("{}{}", rest, k_units[i + 1].suffix);
      }
    }
    break;
  }
  return out;
}

std::string format_time(UnixSeconds t) {
  // RFC 3339 has four-digit years; anything else is shown as raw seconds.
  if (t < k_min_time || t > k_max_time) {
    return std::to_string(t);
  }
  const chr::sys_seconds point{chr::seconds{t}};
  const auto day = chr::floor<chr::days>(point);
  const chr::year_month_day ymd{day};
  const chr::hh_mm_ss clock{point - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     clock.hours().count(), clock.minutes().count(), clock.seconds().count());
}

std::string utc_day(UnixSeconds t) {
  const std::chrono::sys_days day(std::chrono::days(floor_div(t, k_day_seconds)));
  const std::chrono::year_month_day date{day};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                     static_cast<unsigned>(date.day()));
}

UnixSeconds utc_day_start(UnixSeconds t) {
  return floor_div(t, k_day_seconds) * k_day_seconds;
}

} // namespace claudegate::duration

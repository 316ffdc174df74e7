// SPDX-License-Identifier: Apache-2.0
// Quota reservations and leases beyond one backend: how much a request may
// hold and a lease may grow by, and who holds them (so only the death of
// the holder frees a reservation early).
#include "claudegate/store/store.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <sstream>
#include <unistd.h>

namespace claudegate::store {

namespace {

constexpr auto k_no_ceiling = std::numeric_limits<std::int64_t>::max();

// The first line of `path`, or "" when it cannot be read.
std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string host_name() {
  std::array<char, 256> name{};
  return ::gethostname(name.data(), name.size() - 1) == 0 ? std::string(name.data()) : std::string{};
}

// Field 22 of /proc/PID/stat (start time in clock ticks since boot): with
// the boot id it tells a running pid from a later process given the same pid.
std::string start_time_of(long pid) {
  const std::string stat = first_line(fmt::format("/proc/{}/stat", pid));
  const auto after_name = stat.rfind(')'); // the command name may hold spaces
  if (after_name == std::string::npos) {
    return {};
  }
  std::istringstream fields(stat.substr(after_name + 2));
  std::string field;
  for (int index = 3; index <= 22 && fields >> field; ++index) {
  }
  return field;
}

struct OwnerParts {
  std::string host;
  std::string boot;
  long pid = 0;
  std::string started;
};

std::optional<OwnerParts> parse_owner(std::string_view owner) {
  std::array<std::string_view, 4> parts;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto bar = owner.find('|');
    if ((bar == std::string_view::npos) != (i + 1 == parts.size())) {
      return std::nullopt;
    }
    parts[i] = owner.substr(0, bar);
    owner = bar == std::string_view::npos ? std::string_view{} : owner.substr(bar + 1);
  }
  long pid = 0;
  for (const char c : parts[2]) {
    if (c < '0' || c > '9' || pid > 1'000'000'000) {
      return std::nullopt;
    }
    pid = pid * 10 + (c - '0');
  }
  return OwnerParts{std::string(parts[0]), std::string(parts[1]), pid, std::string(parts[3])};
}

} // namespace

std::optional<std::int64_t> reservation_amount(const ReservationRequest& request,
                                               std::optional<std::int64_t> remaining) {
  if (!remaining) {
    return request.wanted;
  }
  const std::int64_t target = request.take_remaining
                                  ? std::max(request.ceiling.value_or(k_no_ceiling), request.minimum)
                                  : request.wanted;
  const std::int64_t amount = std::min(target, std::max<std::int64_t>(0, *remaining));
  if (amount < request.minimum || amount <= 0) {
    return std::nullopt;
  }
  return amount;
}

std::optional<LeaseAmounts> lease_amounts(const ReservationRequest& reservation, std::int64_t available,
                                          std::int64_t remaining) {
  const std::int64_t free = std::max<std::int64_t>(0, remaining);
  const std::int64_t own = std::max<std::int64_t>(0, available);
  // Both are bounded by the limit (an int64), so their sum cannot overflow unless the limit is near max.
  const std::int64_t reachable = own > k_no_ceiling - free ? k_no_ceiling : own + free;
  const auto amount = reservation_amount(reservation, reachable);
  if (!amount) {
    return std::nullopt;
  }
  const std::int64_t shortfall = std::max<std::int64_t>(0, *amount - own);
  const std::int64_t spare = reservation.take_remaining ? 0 : (free - shortfall) / k_lease_spare_divisor;
  return LeaseAmounts{*amount, shortfall + spare};
}

std::string reservation_owner() {
  const long pid = static_cast<long>(::getpid());
  return fmt::format("{}|{}|{}|{}", host_name(), first_line("/proc/sys/kernel/random/boot_id"), pid,
                     start_time_of(pid));
}

bool owner_may_be_alive(std::string_view owner) {
  const auto parts = parse_owner(owner);
  if (!parts) {
    return false; // written by a build that recorded no owner: nothing will ever settle it
  }
  if (parts->host != host_name()) {
    return true; // another machine's gateway sharing the store: it settles its own
  }
  if (parts->boot != first_line("/proc/sys/kernel/random/boot_id")) {
    return false; // this machine rebooted since: every process of then is gone
  }
  return parts->pid > 0 && start_time_of(parts->pid) == parts->started;
}

} // namespace claudegate::store

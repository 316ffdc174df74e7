// SPDX-License-Identifier: Apache-2.0
#include "progress.hpp"

#include <fmt/core.h>

#include <array>
#include <cstdio>
#include <unistd.h>

namespace claudegate::app {

namespace {

constexpr std::array<char, 4> k_frames = {'|', '/', '-', '\\'};
constexpr auto k_redraw_every = std::chrono::milliseconds(100);

} // namespace

Spinner::Spinner(std::string label) : m_label(std::move(label)), m_active(isatty(STDERR_FILENO) == 1) {
}

Spinner::~Spinner() {
  if (m_drawn) {
    fmt::print(stderr, "\r\033[K"); // leave the terminal as it was
  }
}

void Spinner::tick() {
  const auto now = std::chrono::steady_clock::now();
  if (!m_active || now - m_last < k_redraw_every) {
    return;
  }
  m_last = now;
  m_drawn = true;
  fmt::print(stderr, "\rclaudegate: {} {}", m_label, k_frames[m_frame++ % k_frames.size()]);
  std::fflush(stderr);
}

} // namespace claudegate::app

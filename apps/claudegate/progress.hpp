// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <string>

namespace claudegate::app {

// A one-line spinner on stderr while a slow step runs (RSA-4096 keygen), so
// the terminal shows it is alive. Silent unless stderr is a terminal, so
// scripts and pipes see nothing; the line is cleared when it ends.
class Spinner {
public:
  explicit Spinner(std::string label);
  ~Spinner();
  Spinner(const Spinner&) = delete;
  Spinner& operator=(const Spinner&) = delete;

  // Redraw, at most every 100 ms.
  void tick();
  bool active() const { return m_active; }

private:
  std::string m_label;
  bool m_active;
  bool m_drawn = false;
  unsigned m_frame = 0;
  std::chrono::steady_clock::time_point m_last{};
};

} // namespace claudegate::app

// edgescale/core/progress.hpp — a progress line for long-running work.
//
//   ProgressBar bar{std::cerr, "epoch 3/10"};
//   for (...) bar.update(done, total, "loss 0.412");
//   bar.finish("acc 88.1%");
//
// On a terminal the line is redrawn in place (carriage return) at most ~10 times a second; into a
// file or pipe only the finished line is written, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace edgescale {

/// Whether `os` is std::cout or std::cerr attached to a terminal.
inline bool is_terminal(const std::ostream& os) {
#if defined(__unix__) || defined(__APPLE__)
  if (os.rdbuf() == std::cerr.rdbuf()) {
    return ::isatty(STDERR_FILENO) != 0;
  }
  if (os.rdbuf() == std::cout.rdbuf()) {
    return ::isatty(STDOUT_FILENO) != 0;
  }
#endif
  (void)os;
  return false;
}

class ProgressBar {
 public:
  ProgressBar(std::ostream& os, std::string label, bool interactive)
      : os_(os),
        label_(std::move(label)),
        interactive_(interactive),
        start_(std::chrono::steady_clock::now()) {}
  ProgressBar(std::ostream& os, std::string label)
      : ProgressBar(os, std::move(label), is_terminal(os)) {}

  /// Reports `done` of `total` units, with a short status such as the running loss.
  void update(long done, long total, std::string_view status = {}) {
    if (!interactive_) {
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_draw_ < std::chrono::milliseconds(100)) {
      return;
    }
    last_draw_ = now;
    constexpr int width = 30;
    const double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1;
    const int filled = static_cast<int>(fraction * width);
    std::ostringstream line;
    line << '\r' << label_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
         << std::string(static_cast<std::size_t>(width - filled), '.') << "] " << std::setw(3)
         << static_cast<int>(fraction * 100) << "% " << std::fixed << std::setprecision(1)
         << elapsed() << "s " << status;
    os_ << line.str() << std::flush;
  }

  /// Ends the line with a final status.
  void finish(std::string_view status = {}) {
    if (interactive_) {
      os_ << '\r' << std::string(80, ' ') << '\r';
    }
    os_ << label_ << ' ' << status << " (" << std::fixed << std::setprecision(1) << elapsed()
        << " s)\n"
        << std::flush;
  }

  [[nodiscard]] double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::ostream& os_;
  std::string label_;
  bool interactive_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace edgescale

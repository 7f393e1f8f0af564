#pragma once
// Progress output for long loops: a self-updating bar on a terminal (rate, ETA, running loss), plain
// lines when the output is a file or a pipe (CI logs stay readable).

#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace embsr {

class ProgressBar {
 public:
  // `out` is a C stream (stdout/stderr); `interactive` defaults to isatty(out).
  ProgressBar(std::FILE* out, std::string label, std::size_t total, int interactive = -1)
      : out_(out), label_(std::move(label)), total_(total),
        interactive_(interactive < 0 ? ::isatty(::fileno(out)) != 0 : interactive != 0),
        start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

  // Reports that `done` of `total` units are finished; `loss` is the running mean to display.
  void update(std::size_t done, double loss) {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const bool finished = done >= total_;
    if (interactive_) {
      if (!finished && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
      last_draw_ = now;
      const int width = 30;
      const int filled = total_ ? static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total_)) : width;
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.resize(static_cast<std::size_t>(width), '.');
      const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
      const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
      std::fprintf(out_, "\r%s [%s] %zu/%zu  %.1f it/s  ETA %.0fs  loss %.4f ", label_.c_str(), bar.c_str(), done, total_,
                   rate, eta, loss);
      if (finished) std::fprintf(out_, "\n");
      std::fflush(out_);
    } else if (finished) {
      std::fprintf(out_, "%s: %zu/%zu batches, %.1f s, loss %.4f\n", label_.c_str(), done, total_, elapsed, loss);
      std::fflush(out_);
    }
  }

 private:
  std::FILE* out_;
  std::string label_;
  std::size_t total_;
  bool interactive_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace embsr

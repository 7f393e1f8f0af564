#pragma once
// GRU over every macro item's operation run (MODEL.md 3.1), PyTorch nn.GRU convention, h_0 = 0:
//   gi = x_t W_ih^T + b_ih,  gh = h W_hh^T + b_hh   (gate blocks ordered r, z, n)
//   r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n)
//   h' = (1 - z) * n + z * h
// and h~^k = the last state of the run over rows x[run_begin[k] .. run_end[k]).
//
// All runs advance step-synchronously, in the packed layout of PyTorch's PackedSequence: runs are
// sorted by length (descending, ties by run index), so the runs still active at step s are the
// first count_s of that order, and step s owns the packed rows [offset_s, offset_s + count_s)
// (offset_{s+1} = offset_s + count_s; the packed rows tile the T micro-behaviors). gi comes from
// one GEMM over all T rows; step s >= 1 costs one GEMM over its count_s active runs, whose previous
// states sit contiguously in packed order, so the whole layer costs O(T d^2), not
// O(N * max_len * d^2). The sort (and the per-step counts that size the GEMMs) is computed on the
// host from run_begin / run_end: one small device-to-host copy per forward.

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/data/ragged_batch.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

// Weights of one GRU (PyTorch layout, gate blocks ordered r, z, n):
// W_ih [3d x d_in], W_hh [3d x d], b_ih [3d], b_hh [3d]. Also used for the gradient slices.
template <class Scalar, class MemorySpace>
struct GruParams {
  MatRef<Scalar, MemorySpace> W_ih, W_hh;
  VecRef<Scalar, MemorySpace> b_ih, b_hh;
};

template <class Scalar, class MemorySpace>
struct RunGruCache {
  // Packed order (host): step_offsets[s] = offset_s, s = 0..max_len (step_offsets[max_len] = T).
  std::vector<index_t> step_offsets;
  int num_runs = 0, num_rows = 0, dim = 0;
  Vec<index_t, MemorySpace> order;  // [N] sorted position j -> run k
  Mat<Scalar, MemorySpace> gi;      // [T x 3d] x W_ih^T + b_ih, micro order
  Mat<Scalar, MemorySpace> gh;      // [T x 3d] h W_hh^T (+ b_hh in the n block), packed order
  Mat<Scalar, MemorySpace> gates;   // [T x 3d] r, z, n, packed order
  Mat<Scalar, MemorySpace> h_prev;  // [T x d] state entering each packed row (0 at step 0)
  // Backward workspace (grown by run_gru_backward).
  mutable Mat<Scalar, MemorySpace> d_gi;  // [T x 3d] micro order
  mutable Mat<Scalar, MemorySpace> d_gh;  // [T x 3d] packed order
  mutable Mat<Scalar, MemorySpace> d_h;   // [N x d] dL/dh of the current step, sorted order
  // Host scratch (no per-call allocation once large enough).
  std::vector<index_t> host_begin, host_end, host_order, host_count;
};

namespace gru_detail {

// Leading [n x m] block of a matrix storage (rows of m contiguous values).
template <class Scalar, class MemorySpace>
MatRef<Scalar, MemorySpace> block(const Mat<Scalar, MemorySpace>& storage, std::size_t row0, std::size_t n,
                                  std::size_t m) {
  return MatRef<Scalar, MemorySpace>(storage.data() + row0 * m, n, m);
}

template <class Scalar, class MemorySpace>
void check_gru_params(const GruParams<Scalar, MemorySpace>& p, std::size_t d_in, std::size_t d, const char* who) {
  if (p.W_ih.extent(0) != 3 * d || p.W_ih.extent(1) != d_in || p.W_hh.extent(0) != 3 * d || p.W_hh.extent(1) != d ||
      p.b_ih.extent(0) != 3 * d || p.b_hh.extent(0) != 3 * d)
    throw InvalidArgument(std::string(who) + ": GRU weights must be W_ih [3d x d_in], W_hh [3d x d], b [3d] with d = " +
                          std::to_string(d) + ", d_in = " + std::to_string(d_in) + " (got W_ih " +
                          std::to_string(p.W_ih.extent(0)) + "x" + std::to_string(p.W_ih.extent(1)) + ", W_hh " +
                          std::to_string(p.W_hh.extent(0)) + "x" + std::to_string(p.W_hh.extent(1)) + ")");
}

}  // namespace gru_detail

// h_last[N x d] = final state of the GRU run over x[run_begin[k] .. run_end[k]) for each run k;
// x [T x d_in]. Runs must be non-empty and together cover T rows at most.
template <class ExecSpace, class Scalar, class MemorySpace, class XV, class HV>
void run_gru_forward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const XV& x,
                     const GruParams<Scalar, MemorySpace>& p, const HV& h_last,
                     RunGruCache<Scalar, MemorySpace>& cache) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value,
                "run_gru_forward: first argument must be an execution space");
  using S = Scalar;
  using HostIdx = Kokkos::View<index_t*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
  const std::size_t N = batch.run_begin.extent(0), T = x.extent(0), d_in = x.extent(1), d = p.W_hh.extent(1);
  gru_detail::check_gru_params(p, d_in, d, "run_gru_forward");
  if (h_last.extent(0) != N || h_last.extent(1) != d)
    throw InvalidArgument("run_gru_forward: h_last must be [N x d] = " + std::to_string(N) + "x" + std::to_string(d));

  // Packed order on the host: counting sort of the runs by length, descending, stable.
  cache.host_begin.resize(N);
  cache.host_end.resize(N);
  if (N > 0 && batch.host_run_begin.size() == N && batch.host_run_end.size() == N) {
    std::copy(batch.host_run_begin.begin(), batch.host_run_begin.end(), cache.host_begin.begin());
    std::copy(batch.host_run_end.begin(), batch.host_run_end.end(), cache.host_end.begin());
  } else if (N > 0) {  // a Batch filled without copy_from: read the runs back from its memory space
    Kokkos::deep_copy(HostIdx(cache.host_begin.data(), N), batch.run_begin);
    Kokkos::deep_copy(HostIdx(cache.host_end.data(), N), batch.run_end);
  }
  index_t max_len = 0;
  std::size_t rows = 0;
  for (std::size_t k = 0; k < N; ++k) {
    const index_t b = cache.host_begin[k], len = cache.host_end[k] - b;
    if (len <= 0 || b < 0 || static_cast<std::size_t>(cache.host_end[k]) > T)
      throw InvalidArgument("run_gru_forward: run " + std::to_string(k) + " = [" + std::to_string(b) + ", " +
                            std::to_string(cache.host_end[k]) + ") is empty or outside the " + std::to_string(T) +
                            " rows of x");
    max_len = std::max(max_len, len);
    rows += static_cast<std::size_t>(len);
  }
  if (rows > T) throw InvalidArgument("run_gru_forward: runs cover more rows than x has (overlapping runs)");
  const auto L = static_cast<std::size_t>(max_len);
  // host_count[l] = number of runs of length l (l = 1..L), then start positions per length.
  cache.host_count.assign(L + 2, 0);
  for (std::size_t k = 0; k < N; ++k)
    ++cache.host_count[static_cast<std::size_t>(cache.host_end[k] - cache.host_begin[k])];
  // count_s = runs longer than s (stored at step_offsets[s + 1]), then prefix sums: offset_s.
  cache.step_offsets.assign(L + 1, 0);
  {
    index_t longer = 0;
    for (std::size_t s = L; s-- > 0;) {
      longer += cache.host_count[s + 1];
      cache.step_offsets[s + 1] = longer;
    }
    for (std::size_t s = 0; s < L; ++s) cache.step_offsets[s + 1] += cache.step_offsets[s];
  }
  {
    // Start of each length's block in sorted order: longest first.
    std::vector<index_t>& start = cache.host_count;
    index_t pos = 0;
    for (std::size_t l = L; l >= 1; --l) {
      const index_t c = start[l];
      start[l] = pos;
      pos += c;
    }
    cache.host_order.resize(N);
    for (std::size_t k = 0; k < N; ++k)
      cache.host_order[static_cast<std::size_t>(
          start[static_cast<std::size_t>(cache.host_end[k] - cache.host_begin[k])]++)] = static_cast<index_t>(k);
  }
  cache.num_runs = static_cast<int>(N);
  cache.num_rows = static_cast<int>(rows);
  cache.dim = static_cast<int>(d);
  const auto order = ensure(cache.order, N, "embsr::run_gru::order");
  if (N > 0)  // stream-ordered on `exec`: no device-wide fence in the middle of a step
    Kokkos::deep_copy(exec, order,
                      Kokkos::View<const index_t*, Kokkos::HostSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>(
                          cache.host_order.data(), N));

  const auto gi = ensure(cache.gi, T, 3 * d, "embsr::run_gru::gi");
  ensure(cache.gh, rows, 3 * d, "embsr::run_gru::gh");
  ensure(cache.gates, rows, 3 * d, "embsr::run_gru::gates");
  ensure(cache.h_prev, rows, d, "embsr::run_gru::h_prev");
  linear_forward(exec, x, p.W_ih, p.b_ih, gi);
  if (N == 0) return;

  const auto gh = cache.gh, gates = cache.gates, h_prev = cache.h_prev;  // storage (extent(1) = 3d / d)
  const auto W_hh = p.W_hh;
  const auto b_hh = p.b_hh;
  const auto run_begin = batch.run_begin;
  const int D = static_cast<int>(d);
  for (std::size_t s = 0; s < L; ++s) {
    const int off = cache.step_offsets[s], cnt = cache.step_offsets[s + 1] - off;
    const int off_next = s + 1 < L ? cache.step_offsets[s + 1] : 0;
    const int cnt_next = s + 1 < L ? cache.step_offsets[s + 2] - cache.step_offsets[s + 1] : 0;
    const int step = static_cast<int>(s);
    if (s > 0)  // gh = h_{s-1} W_hh^T over the active runs (their states are packed rows off..off+cnt)
      gemm(exec, Trans::No, Trans::Yes, S(1),
           gru_detail::block(h_prev, static_cast<std::size_t>(off), static_cast<std::size_t>(cnt), d), W_hh, S(0),
           gru_detail::block(gh, static_cast<std::size_t>(off), static_cast<std::size_t>(cnt), 3 * d));
    if constexpr (host_execution_space<ExecSpace>) {
      // Host: one run per iteration over raw row pointers, so the loop over the d coordinates
      // vectorises (the step-0 and later-step cases are separate loops: no branch inside).
      Kokkos::parallel_for("embsr::run_gru::step", Kokkos::RangePolicy<ExecSpace>(exec, 0, cnt), KOKKOS_LAMBDA(const int j) {
        const int row = off + j, k = order(j), t = run_begin(k) + step;
        const S* gi_t = &gi(t, 0);
        const S* bh = &b_hh(0);
        S* g = &gates(row, 0);
        S* ghr = &gh(row, 0);
        S* hp = &h_prev(row, 0);
        S* out = j < cnt_next ? &h_prev(off_next + j, 0) : &h_last(k, 0);
        if (step == 0) {
          EMBSR_IVDEP
          for (int c = 0; c < D; ++c) {
            const S ghn = bh[2 * D + c];
            const S r = math::sigmoid(gi_t[c] + bh[c]);
            const S z = math::sigmoid(gi_t[D + c] + bh[D + c]);
            const S n = math::tanh(gi_t[2 * D + c] + r * ghn);
            g[c] = r;
            g[D + c] = z;
            g[2 * D + c] = n;
            ghr[2 * D + c] = ghn;
            hp[c] = S(0);
            out[c] = (S(1) - z) * n;
          }
        } else {
          EMBSR_IVDEP
          for (int c = 0; c < D; ++c) {
            const S ghn = ghr[2 * D + c] + bh[2 * D + c];
            const S r = math::sigmoid(gi_t[c] + ghr[c] + bh[c]);
            const S z = math::sigmoid(gi_t[D + c] + ghr[D + c] + bh[D + c]);
            const S n = math::tanh(gi_t[2 * D + c] + r * ghn);
            g[c] = r;
            g[D + c] = z;
            g[2 * D + c] = n;
            ghr[2 * D + c] = ghn;
            out[c] = (S(1) - z) * n + z * hp[c];
          }
        }
      });
    } else {
      parallel_for_2d(exec, "embsr::run_gru::step", cnt, D,
          KOKKOS_LAMBDA(const int j, const int c) {
            const int row = off + j, k = order(j), t = run_begin(k) + step;
            const S hp = step == 0 ? S(0) : h_prev(row, c);
            const S ghr = (step == 0 ? S(0) : gh(row, c)) + b_hh(c);
            const S ghz = (step == 0 ? S(0) : gh(row, D + c)) + b_hh(D + c);
            const S ghn = (step == 0 ? S(0) : gh(row, 2 * D + c)) + b_hh(2 * D + c);
            const S r = math::sigmoid(gi(t, c) + ghr);
            const S z = math::sigmoid(gi(t, D + c) + ghz);
            const S n = math::tanh(gi(t, 2 * D + c) + r * ghn);
            const S h_new = (S(1) - z) * n + z * hp;
            gates(row, c) = r;
            gates(row, D + c) = z;
            gates(row, 2 * D + c) = n;
            gh(row, 2 * D + c) = ghn;
            if (step == 0) h_prev(row, c) = S(0);
            if (j < cnt_next) h_prev(off_next + j, c) = h_new;
            else h_last(k, c) = h_new;
          });
    }
  }
}

// Backpropagation through time, step s = max_len-1 .. 0, with dh the gradient of h_s of each
// active run (initially dh_last, entering each run at its last step):
//   dn = dh (1 - z),  dz = dh (h_{s-1} - n),  dn~ = dn (1 - n^2)  (n~ = gi_n + r gh_n)
//   dr~ = dn~ gh_n r (1 - r),  dz~ = dz z (1 - z)
//   dgi = [dr~, dz~, dn~],  dgh = [dr~, dz~, dn~ r]
//   dh_{s-1} = dh z + dgh W_hh
// and then, over all steps at once: dW_ih += dgi^T x, db_ih += sum dgi, dx += dgi W_ih,
// dW_hh += dgh^T h_prev, db_hh += sum dgh. dx may be an empty View (skipped). Adds into dx and g.
template <class ExecSpace, class Scalar, class MemorySpace, class XV, class DHV, class DXV>
void run_gru_backward(const ExecSpace& exec, const Batch<MemorySpace>& batch, const XV& x,
                      const GruParams<Scalar, MemorySpace>& p, const RunGruCache<Scalar, MemorySpace>& cache,
                      const DHV& dh_last, const DXV& dx, const GruParams<Scalar, MemorySpace>& g) {
  static_assert(Kokkos::is_execution_space<ExecSpace>::value,
                "run_gru_backward: first argument must be an execution space");
  using S = Scalar;
  const std::size_t N = static_cast<std::size_t>(cache.num_runs), T = x.extent(0),
                    d = static_cast<std::size_t>(cache.dim);
  const std::size_t rows = static_cast<std::size_t>(cache.num_rows);
  if (batch.run_begin.extent(0) != N || dh_last.extent(0) != N || dh_last.extent(1) != d)
    throw InvalidArgument("run_gru_backward: batch / dh_last do not match the forward's cache");
  if (dx.extent(0) != 0 && (dx.extent(0) != T || dx.extent(1) != x.extent(1)))
    throw InvalidArgument("run_gru_backward: dx must be empty or shaped like x");
  const auto d_gi = ensure(cache.d_gi, T, 3 * d, "embsr::run_gru::d_gi");
  ensure(cache.d_gh, rows, 3 * d, "embsr::run_gru::d_gh");
  ensure(cache.d_h, N, d, "embsr::run_gru::d_h");
  if (N == 0) return;
  if (rows != T) Kokkos::deep_copy(exec, cache.d_gi, S(0));  // rows of x outside every run get no gradient

  const auto d_gh = cache.d_gh, d_h = cache.d_h;
  const auto gh = cache.gh, gates = cache.gates, h_prev = cache.h_prev;
  const auto order = cache.order;
  const auto run_begin = batch.run_begin;
  const int D = static_cast<int>(d);
  parallel_for_2d(exec, "embsr::run_gru::d_h_init", static_cast<int>(N), D,
      KOKKOS_LAMBDA(const int j, const int c) { d_h(j, c) = dh_last(order(j), c); });
  const std::size_t L = cache.step_offsets.size() - 1;
  for (std::size_t s = L; s-- > 0;) {
    const int off = cache.step_offsets[s], cnt = cache.step_offsets[s + 1] - off;
    const int step = static_cast<int>(s);
    parallel_for_2d(exec, "embsr::run_gru::step_backward", cnt, D,
        KOKKOS_LAMBDA(const int j, const int c) {
          const int row = off + j, t = run_begin(order(j)) + step;
          const S dh = d_h(j, c);
          const S r = gates(row, c), z = gates(row, D + c), n = gates(row, 2 * D + c);
          const S dn = dh * (S(1) - z);
          const S dz = dh * (h_prev(row, c) - n);
          const S dnt = dn * (S(1) - n * n);
          const S drt = dnt * gh(row, 2 * D + c) * r * (S(1) - r);
          const S dzt = dz * z * (S(1) - z);
          d_gi(t, c) = drt;
          d_gi(t, D + c) = dzt;
          d_gi(t, 2 * D + c) = dnt;
          d_gh(row, c) = drt;
          d_gh(row, D + c) = dzt;
          d_gh(row, 2 * D + c) = dnt * r;
          d_h(j, c) = dh * z;
        });
    if (s > 0)
      gemm(exec, Trans::No, Trans::No, S(1),
           gru_detail::block(d_gh, static_cast<std::size_t>(off), static_cast<std::size_t>(cnt), 3 * d), p.W_hh, S(1),
           gru_detail::block(d_h, 0, static_cast<std::size_t>(cnt), d));
  }
  linear_backward(exec, x, p.W_ih, d_gi, dx, g.W_ih, g.b_ih);
  const std::size_t first =
      static_cast<std::size_t>(cache.step_offsets[std::min<std::size_t>(1, L)]);  // rows of step >= 1
  if (rows > first)
    gemm(exec, Trans::Yes, Trans::No, S(1), gru_detail::block(d_gh, first, rows - first, 3 * d),
         gru_detail::block(h_prev, first, rows - first, d), S(1), g.W_hh);
  add_column_sums(exec, "embsr::run_gru::d_b_hh", gru_detail::block(d_gh, 0, rows, 3 * d), g.b_hh);
}

}  // namespace embsr

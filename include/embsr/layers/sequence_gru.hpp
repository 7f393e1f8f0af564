#pragma once
// A GRU over each session's whole sequence that keeps the state after EVERY step (MKM-SR's
// operation GRU over the micro-behaviors, docs/GRAPH_MODELS.md section 4; the RNN-Self variant of
// EMBSR over [item ; operation] rows). PyTorch's nn.GRU convention, h_0 = 0 for every session:
//   gi = x_t W_ih^T + b_ih,  gh = h_{t-1} W_hh^T + b_hh     (gate blocks ordered r, z, n)
//   r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n)
//   h_t = (1 - z) * n + z * h_{t-1}
// (so r multiplies W_hn h + b_hn, bias included, as in torch.nn.GRU).
//
// Shapes: B sessions, R rows. offsets [B+1] (index_t, e.g. a Batch's micro_offsets): session b
// owns the rows [offsets[b], offsets[b+1]) of X, back to back (offsets[0] = 0, non-decreasing,
// offsets[B] = R; an empty session is allowed and has no rows). X [R x D_in]; params GruParams
// (layers/gru.hpp): W_ih [3d x D_in], W_hh [3d x d], b_ih [3d], b_hh [3d]; H [R x d], H[row] =
// the state after that row. X, H, dH and dX may be strided 2-D Views (column blocks of wider
// matrices) as long as each row is contiguous.
//
// Work: the input projection gi = X W_ih^T + b_ih is one GEMM over all R rows; the recurrence
// runs per session. On host backends a session is one iteration of a RangePolicy over sessions
// (dynamic schedule) with plain loops the compiler vectorises (the matvec reads a transposed copy
// W_hh^T [d x 3d] row by row, so its inner loop is contiguous and reduction-free); on GPUs a
// session is one team, each step a 3d-wide matvec over the team's threads, a barrier, the d-wide
// gate update, a barrier. Every sum runs in one fixed order (the same in both paths), no atomics:
// the outputs and gradients do not depend on the thread count or on the other sessions (beyond
// the GEMMs' own summation, as in layers/linear.hpp). The forward reads offsets on the host once
// to check them (a small device-to-host copy on GPUs).
//
// The GRU cell (gates, state update and their derivatives) is the one of layers/gru.hpp.

#include <cstddef>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/core/checks.hpp>
#include <embsr/core/error.hpp>
#include <embsr/core/gemm.hpp>
#include <embsr/core/math.hpp>
#include <embsr/core/parallel.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/core/types.hpp>
#include <embsr/layers/gru.hpp>
#include <embsr/layers/linear.hpp>

namespace embsr {

template <class Scalar, class MemorySpace>
struct SequenceGruCache {
  std::vector<index_t> offsets;  // the forward's offsets, host copy [B+1] (empty: B = 0)
  int num_sessions = 0, num_rows = 0, input_dim = 0, dim = 0;
  bool valid = false;  // holds a forward pass

  MatRef<Scalar, MemorySpace> gi;      // [R x 3d] x W_ih^T + b_ih
  MatRef<Scalar, MemorySpace> gh;      // [R x 3d] h_prev W_hh^T + b_hh (the n block is W_hn h + b_hn)
  MatRef<Scalar, MemorySpace> gates;   // [R x 3d] r, z, n
  MatRef<Scalar, MemorySpace> h_prev;  // [R x d]  state entering each row (0 at a session's first row)
  MatRef<Scalar, MemorySpace> w_hh_t;  // [d x 3d] W_hh^T

  Mat<Scalar, MemorySpace> gi_storage, gh_storage, gates_storage, h_prev_storage, w_hh_t_storage;
  // Backward workspace.
  mutable Mat<Scalar, MemorySpace> d_gi, d_gh;  // [R x 3d]
  mutable Mat<Scalar, MemorySpace> d_carry;     // [B x d] dL/dh of the state entering the current row
};

namespace detail {

// Host copy of offsets, checked against R rows: offsets[0] = 0, non-decreasing, offsets[B] = R.
// An empty View means no sessions (then R must be 0).
template <class OV>
void sequence_gru_read_offsets(const std::string& who, const OV& offsets, std::size_t R, std::vector<index_t>& out) {
  const std::size_t n = offsets.extent(0);
  out.resize(n);
  if (n == 0) {
    require(R == 0, who, "offsets is empty (no sessions) but X has " + std::to_string(R) + " rows");
    return;
  }
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), offsets);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<index_t>(host(i));
  require(out[0] == 0, who, "offsets[0] is " + std::to_string(out[0]) + ", expected 0");
  for (std::size_t b = 0; b + 1 < n; ++b)
    require(out[b] <= out[b + 1], who,
            "offsets decrease at session " + std::to_string(b) + " (" + std::to_string(out[b]) + " > " +
                std::to_string(out[b + 1]) + ")");
  require(static_cast<std::size_t>(out[n - 1]) == R, who,
          "offsets end at " + std::to_string(out[n - 1]) + " but X has " + std::to_string(R) + " rows");
}

}  // namespace detail

// X [R x D_in] -> H [R x d] (overwritten); fills `cache` for the backward. team_size (for the
// tests): 0 picks the path by backend (host: a loop per session; GPU: a team per session of
// automatic size); > 0 runs the team path with that many threads per team on any backend.
template <class ExecSpace, class Scalar, class MemorySpace, class OV, class XV, class HV>
void sequence_gru_forward(const ExecSpace& exec, const OV& offsets, const XV& X,
                          const GruParams<Scalar, MemorySpace>& p, const HV& H,
                          SequenceGruCache<Scalar, MemorySpace>& cache, int team_size = 0) {
  assert_accessible<ExecSpace, OV, XV, HV, MatRef<Scalar, MemorySpace>>();
  static_assert(OV::rank == 1 && XV::rank == 2 && HV::rank == 2, "sequence_gru_forward: offsets 1-D, X and H 2-D");
  using S = Scalar;
  const char* who = "sequence_gru_forward";
  const std::size_t R = X.extent(0), d_in = X.extent(1), d = p.W_hh.extent(1);
  cache.valid = false;
  detail::require_gru_params(who, p, d_in, d);
  require_shape(who, "H", H, R, d);
  require(team_size >= 0, who, "team_size must be >= 0, got " + std::to_string(team_size));
  detail::sequence_gru_read_offsets(who, offsets, R, cache.offsets);
  const std::size_t B = cache.offsets.empty() ? 0 : cache.offsets.size() - 1;
  cache.num_sessions = static_cast<int>(B);
  cache.num_rows = static_cast<int>(R);
  cache.input_dim = static_cast<int>(d_in);
  cache.dim = static_cast<int>(d);
  cache.gi = ensure(cache.gi_storage, R, 3 * d, "embsr::sequence_gru::gi");
  cache.gh = ensure(cache.gh_storage, R, 3 * d, "embsr::sequence_gru::gh");
  cache.gates = ensure(cache.gates_storage, R, 3 * d, "embsr::sequence_gru::gates");
  cache.h_prev = ensure(cache.h_prev_storage, R, d, "embsr::sequence_gru::h_prev");
  cache.w_hh_t = ensure(cache.w_hh_t_storage, d, 3 * d, "embsr::sequence_gru::w_hh_t");
  cache.valid = true;
  if (R == 0 || d == 0) return;

  const auto gi = cache.gi, gh = cache.gh, gates = cache.gates, h_prev = cache.h_prev, wt = cache.w_hh_t;
  const auto W_hh = p.W_hh;
  const auto b_hh = p.b_hh;
  const int D = static_cast<int>(d), nB = static_cast<int>(B);
  linear_forward(exec, X, p.W_ih, p.b_ih, gi);  // one GEMM over all rows
  parallel_for_2d(exec, "embsr::sequence_gru::transpose", d, 3 * d,
                  KOKKOS_LAMBDA(const int q, const int g) { wt(q, g) = W_hh(g, q); });

  // Per row: gh = (sum_q h_prev[q] W_hh^T[q][.], q in order) + b_hh (= b_hh at a session's first
  // row, skipping the zero matvec), then the gates and the new state, written to H and to the
  // next row's h_prev. Both paths add in this order.
  if constexpr (host_execution_space<ExecSpace>) {
    if (team_size == 0) {
      Kokkos::parallel_for(
          "embsr::sequence_gru::forward",
          Kokkos::RangePolicy<ExecSpace, Kokkos::Schedule<Kokkos::Dynamic>>(exec, 0, nB), KOKKOS_LAMBDA(const int b) {
            const int begin = offsets(b), end = offsets(b + 1);
            const S* bh = &b_hh(0);
            for (int row = begin; row < end; ++row) {
              const S* gi_r = &gi(row, 0);
              S* gh_r = &gh(row, 0);
              S* g = &gates(row, 0);
              S* hp = &h_prev(row, 0);
              if (row == begin) {
                for (int c = 0; c < D; ++c) hp[c] = S(0);
                for (int k = 0; k < 3 * D; ++k) gh_r[k] = bh[k];
              } else {
                for (int k = 0; k < 3 * D; ++k) gh_r[k] = S(0);
                for (int q = 0; q < D; ++q) {
                  const S hq = hp[q];
                  const S* w = &wt(q, 0);
                  EMBSR_IVDEP
                  for (int k = 0; k < 3 * D; ++k) gh_r[k] += hq * w[k];
                }
                EMBSR_IVDEP
                for (int k = 0; k < 3 * D; ++k) gh_r[k] += bh[k];
              }
              S* next = row + 1 < end ? &h_prev(row + 1, 0) : nullptr;
              for (int c = 0; c < D; ++c) {
                S r, z, n;
                detail::gru_cell_gates(gi_r[c] + gh_r[c], gi_r[D + c] + gh_r[D + c], gi_r[2 * D + c], gh_r[2 * D + c],
                                       r, z, n);
                const S h = detail::gru_cell_state<GruConvention::Torch>(z, n, hp[c]);
                g[c] = r;
                g[D + c] = z;
                g[2 * D + c] = n;
                H(row, c) = h;
                if (next) next[c] = h;
              }
            }
          });
      return;
    }
  }
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  using Member = typename Policy::member_type;
  const Policy policy = team_size > 0 ? Policy(exec, nB, team_size) : Policy(exec, nB, Kokkos::AUTO);
  Kokkos::parallel_for(
      "embsr::sequence_gru::forward_teams", policy, KOKKOS_LAMBDA(const Member& team) {
        const int b = team.league_rank();
        const int begin = offsets(b), end = offsets(b + 1);
        for (int row = begin; row < end; ++row) {
          const bool first = row == begin;
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, 3 * D), [&](const int k) {
            S acc = 0;
            if (!first)
              for (int q = 0; q < D; ++q) acc += h_prev(row, q) * wt(q, k);
            gh(row, k) = acc + b_hh(k);
          });
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, D), [&](const int c) {
            const S hp = first ? S(0) : h_prev(row, c);
            if (first) h_prev(row, c) = S(0);
            S r, z, n;
            detail::gru_cell_gates(gi(row, c) + gh(row, c), gi(row, D + c) + gh(row, D + c), gi(row, 2 * D + c),
                                   gh(row, 2 * D + c), r, z, n);
            const S h = detail::gru_cell_state<GruConvention::Torch>(z, n, hp);
            gates(row, c) = r;
            gates(row, D + c) = z;
            gates(row, 2 * D + c) = n;
            H(row, c) = h;
            if (row + 1 < end) h_prev(row + 1, c) = h;
          });
          team.team_barrier();
        }
      });
}

// dH [R x d] (the loss gradient of every output state) -> dX [R x D_in] (added; may be an empty
// View: not needed) and the parameter gradients `grads` (added). Backpropagation through time,
// per session, rows from last to first, with carry = dL/dh_prev of the later row (0 after the
// session's last row):
//   dh  = dH[row] + carry
//   dn  = dh (1 - z),  dz = dh (h_prev - n)                   (h = (1 - z) n + z h_prev)
//   dn~ = dn (1 - n^2),  dr~ = dn~ gh_n r (1 - r),  dz~ = dz z (1 - z)   (n = tanh(n~), n~ = gi_n + r gh_n)
//   dGI[row] = [dr~, dz~, dn~],  dGH[row] = [dr~, dz~, dn~ r]
//   carry = dh z + dGH[row] W_hh        (sum over the 3d gate rows in order; skipped at the first row)
// then, over all rows at once: dW_ih += dGI^T X, db_ih += sum dGI, dX += dGI W_ih,
// dW_hh += dGH^T H_prev (a session's first row has H_prev = 0), db_hh += sum dGH.
// offsets, X and params must be those of the forward that filled `cache`.
template <class ExecSpace, class Scalar, class MemorySpace, class OV, class XV, class DHV, class DXV>
void sequence_gru_backward(const ExecSpace& exec, const OV& offsets, const XV& X,
                           const GruParams<Scalar, MemorySpace>& p, const SequenceGruCache<Scalar, MemorySpace>& cache,
                           const DHV& dH, const DXV& dX, const GruParams<Scalar, MemorySpace>& grads,
                           int team_size = 0) {
  assert_accessible<ExecSpace, OV, XV, DHV, DXV, MatRef<Scalar, MemorySpace>>();
  static_assert(OV::rank == 1 && XV::rank == 2 && DHV::rank == 2 && DXV::rank == 2,
                "sequence_gru_backward: offsets 1-D, X, dH and dX 2-D");
  using S = Scalar;
  const std::string who = "sequence_gru_backward";
  require(cache.valid, who, "the cache does not hold a forward pass");
  const std::size_t R = static_cast<std::size_t>(cache.num_rows), d_in = static_cast<std::size_t>(cache.input_dim),
                    d = static_cast<std::size_t>(cache.dim), B = static_cast<std::size_t>(cache.num_sessions);
  require(offsets.extent(0) == cache.offsets.size(), who,
          "offsets has " + std::to_string(offsets.extent(0)) + " entries, the forward's had " +
              std::to_string(cache.offsets.size()));
  require_shape(who, "X (the forward's)", X, R, d_in);
  detail::require_gru_params(who, p, d_in, d);
  detail::require_gru_params(who + " (gradients)", grads, d_in, d);
  require_shape(who, "dH", dH, R, d);
  if (dX.extent(0) != 0 || dX.extent(1) != 0) require_shape(who, "dX (empty or shaped like X)", dX, R, d_in);
  require(team_size >= 0, who, "team_size must be >= 0, got " + std::to_string(team_size));
  const auto d_gi = ensure(cache.d_gi, R, 3 * d, "embsr::sequence_gru::d_gi");
  const auto d_gh = ensure(cache.d_gh, R, 3 * d, "embsr::sequence_gru::d_gh");
  const auto carry = ensure(cache.d_carry, B, d, "embsr::sequence_gru::d_carry");
  if (R == 0 || d == 0) return;

  const auto gh = cache.gh, gates = cache.gates, h_prev = cache.h_prev;
  const auto W_hh = p.W_hh;
  const int D = static_cast<int>(d), nB = static_cast<int>(B);

  if constexpr (host_execution_space<ExecSpace>) {
    if (team_size == 0) {
      Kokkos::parallel_for(
          "embsr::sequence_gru::backward",
          Kokkos::RangePolicy<ExecSpace, Kokkos::Schedule<Kokkos::Dynamic>>(exec, 0, nB), KOKKOS_LAMBDA(const int b) {
            const int begin = offsets(b), end = offsets(b + 1);
            if (end == begin) return;
            S* cr = &carry(b, 0);
            for (int c = 0; c < D; ++c) cr[c] = S(0);
            for (int row = end - 1; row >= begin; --row) {
              const S* g = &gates(row, 0);
              const S* hp = &h_prev(row, 0);
              const S* gh_r = &gh(row, 0);
              S* dgi = &d_gi(row, 0);
              S* dgh = &d_gh(row, 0);
              for (int c = 0; c < D; ++c) {
                const S dh = dH(row, c) + cr[c];
                const S r = g[c], z = g[D + c], n = g[2 * D + c];
                S dn, dz, dhp, drt, dzt, dnt;
                detail::gru_cell_state_backward<GruConvention::Torch>(dh, z, n, hp[c], dn, dz, dhp);
                detail::gru_cell_gates_backward(dn, dz, r, z, n, gh_r[2 * D + c], drt, dzt, dnt);
                dgi[c] = drt;
                dgi[D + c] = dzt;
                dgi[2 * D + c] = dnt;
                dgh[c] = drt;
                dgh[D + c] = dzt;
                dgh[2 * D + c] = dnt * r;
                cr[c] = dhp;
              }
              if (row == begin) break;
              for (int k = 0; k < 3 * D; ++k) {
                const S v = dgh[k];
                const S* w = &W_hh(k, 0);
                EMBSR_IVDEP
                for (int q = 0; q < D; ++q) cr[q] += v * w[q];
              }
            }
          });
    }
  }
  if (!host_execution_space<ExecSpace> || team_size > 0) {
    using Policy = Kokkos::TeamPolicy<ExecSpace>;
    using Member = typename Policy::member_type;
    const Policy policy = team_size > 0 ? Policy(exec, nB, team_size) : Policy(exec, nB, Kokkos::AUTO);
    Kokkos::parallel_for(
        "embsr::sequence_gru::backward_teams", policy, KOKKOS_LAMBDA(const Member& team) {
          const int b = team.league_rank();
          const int begin = offsets(b), end = offsets(b + 1);
          for (int row = end - 1; row >= begin; --row) {
            const bool last = row == end - 1;
            Kokkos::parallel_for(Kokkos::TeamThreadRange(team, D), [&](const int c) {
              const S dh = last ? S(dH(row, c)) : dH(row, c) + carry(b, c);
              const S r = gates(row, c), z = gates(row, D + c), n = gates(row, 2 * D + c);
              S dn, dz, dhp, drt, dzt, dnt;
              detail::gru_cell_state_backward<GruConvention::Torch>(dh, z, n, h_prev(row, c), dn, dz, dhp);
              detail::gru_cell_gates_backward(dn, dz, r, z, n, gh(row, 2 * D + c), drt, dzt, dnt);
              d_gi(row, c) = drt;
              d_gi(row, D + c) = dzt;
              d_gi(row, 2 * D + c) = dnt;
              d_gh(row, c) = drt;
              d_gh(row, D + c) = dzt;
              d_gh(row, 2 * D + c) = dnt * r;
              carry(b, c) = dhp;
            });
            if (row == begin) break;  // the same for the whole team: no barrier is skipped by part of it
            team.team_barrier();
            Kokkos::parallel_for(Kokkos::TeamThreadRange(team, D), [&](const int q) {
              S acc = carry(b, q);
              for (int k = 0; k < 3 * D; ++k) acc += d_gh(row, k) * W_hh(k, q);
              carry(b, q) = acc;
            });
            team.team_barrier();
          }
        });
  }

  // The dense parts, over all rows (fixed order).
  linear_backward(exec, X, p.W_ih, d_gi, dX, grads.W_ih, grads.b_ih);
  gemm(exec, Trans::Yes, Trans::No, S(1), d_gh, h_prev, S(1), grads.W_hh);
  add_column_sums(exec, "embsr::sequence_gru::d_b_hh", d_gh, grads.b_hh);
}

}  // namespace embsr

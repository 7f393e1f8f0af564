// Inputs of the attention (MODEL.md 4.1) and x_t (MODEL.md 5), layers/inputs.hpp: the forward against a
// host computation from the batch's index arrays, in both next-operation modes and in the Sec. V-D
// variants' modes (no operations over the macro items; one state per row), and central-difference
// gradients of every coordinate of the operation table, eo, h^f and the star.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include <Kokkos_Core.hpp>

#include <embsr/batch/batch_builder.hpp>
#include <embsr/core/tensor.hpp>
#include <embsr/layers/inputs.hpp>

#include "exec_spaces.hpp"
#include "gradcheck.hpp"

namespace test_inputs {  // file-local names stay apart in unity builds (EMBSR_UNITY_TESTS)

namespace {

using embsr::index_t;
using IV = std::vector<index_t>;
using DV = std::vector<double>;

template <class M>
using Mat = embsr::Mat<double, M>;

constexpr int kDim = 3;
constexpr int kOps = 3;  // operation ids 0..2, [NEXT] = 3

// Sessions of 4, 1, 4, 5 and 4 micro-behaviors (lengths 1 included).
embsr::ExampleSet examples() {
  embsr::ExampleSet set;
  set.add(IV{5, 5, 7, 5}, IV{0, 1, 0, 2}, 9, 1, 0, 0.0);
  set.add(IV{3}, IV{2}, 4, 0, 1, 1.0);
  set.add(IV{7, 3, 7, 3}, IV{1, 1, 1, 1}, 5, 2, 2, 2.0);
  set.add(IV{1, 2, 3, 4, 2}, IV{0, 1, 2, 0, 1}, 6, 0, 3, 3.0);
  set.add(IV{8, 6, 8, 2}, IV{2, 0, 1, 1}, 1, 1, 4, 4.0);
  return set;
}

double at(const DV& m, int r, int c) { return m[static_cast<std::size_t>(r * kDim + c)]; }

}  // namespace

TEMPLATE_LIST_TEST_CASE("inputs: forward against MODEL.md 4.1 and central-difference gradients", "[layers][inputs]",
                        embsr::test::ExecutionSpaces) {
  using Exec = TestType;
  using M = typename Exec::memory_space;
  embsr::BatchBuilder builder;
  const embsr::HostBatch host = builder.build(examples(), IV{3, 1, 0, 4, 2});
  const auto full_batch = embsr::to_memory_space<M>(host);
  REQUIRE(full_batch.sizes.num_sessions == 5);

  // The paper's model (operations over micro-behaviors, both next-operation modes) and the inputs of
  // its Sec. V-D variants: no operations over the macro items (SGNN-Self), and one state per row
  // (RNN-Self's GRU states) with and without operations.
  struct Mode {
    const char* name;
    bool given, operations, over_macro_items, states_per_row;
  };
  for (const Mode mode : {Mode{"operations, next operation given", true, true, false, false},
                          Mode{"operations, learned [NEXT]", false, true, false, false},
                          Mode{"no operations, over the macro items", true, false, true, false},
                          Mode{"states per row, operations", true, true, false, true},
                          Mode{"states per row, no operations", false, false, false, true}}) {
    INFO("mode: " << mode.name);
    const auto batch = mode.over_macro_items ? embsr::batch_over_macro_items(full_batch) : full_batch;
    const int B = batch.sizes.num_sessions, T = batch.sizes.num_micro;
    const int C = mode.states_per_row ? T : batch.sizes.num_nodes;
    // Where the rows come from on the host: the micro-behaviors, or the macro items in their place.
    const IV& offsets = mode.over_macro_items ? host.macro_offsets : host.micro_offsets;
    const IV& alias = mode.over_macro_items ? host.macro_alias : host.micro_alias;
    REQUIRE(T == offsets.back());

    Mat<M> table("op_table", kOps + 1, kDim), eo("eo", T, kDim), hf("hf", C, kDim), star("star", B, kDim);
    Mat<M> xm("xm", T, kDim), xs("xs", B, kDim), xt("xt", B, kDim);
    Mat<M> Rm("Rm", T, kDim), Rs("Rs", B, kDim), Rt("Rt", B, kDim);
    Kokkos::View<int*, M> op0("op0", B);
    embsr::test::fill_random(table, 81);
    embsr::test::fill_random(eo, 82);
    embsr::test::fill_random(hf, 83);
    embsr::test::fill_random(star, 84);
    embsr::test::fill_random(Rm, 85);
    embsr::test::fill_random(Rs, 86);
    embsr::test::fill_random(Rt, 87);

    embsr::InputsOptions opt;
    opt.next_op_given = mode.given;
    opt.next_op_id = kOps;
    opt.operations = mode.operations;
    opt.states_per_row = mode.states_per_row;
    auto loss = [&] {
      embsr::inputs_forward(Exec(), batch, opt, table, eo, hf, star, op0, xm, xs, xt);
      Kokkos::fence();
      return embsr::test::dot(xm, Rm) + embsr::test::dot(xs, Rs) + embsr::test::dot(xt, Rt);
    };
    loss();
    const DV tv = embsr::test::to_vector(table), ev = embsr::test::to_vector(eo), hv = embsr::test::to_vector(hf),
             sv = embsr::test::to_vector(star), xmv = embsr::test::to_vector(xm), xsv = embsr::test::to_vector(xs),
             xtv = embsr::test::to_vector(xt);
    const auto op0v = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), op0);
    const double with_ops = mode.operations ? 1.0 : 0.0;
    for (int b = 0; b < B; ++b) {
      const auto ub = static_cast<std::size_t>(b);
      const int want_op0 = mode.given ? host.next_ops[ub] : kOps;
      CHECK(op0v(b) == want_op0);
      const int last = offsets[ub + 1] - 1;
      for (int j = 0; j < kDim; ++j) {
        CHECK(at(xsv, b, j) == at(sv, b, j) + with_ops * at(tv, want_op0, j));
        CHECK(at(xtv, b, j) == at(xmv, last, j));
      }
    }
    for (int i = 0; i < T; ++i) {
      const int row = mode.states_per_row ? i : alias[static_cast<std::size_t>(i)];
      for (int j = 0; j < kDim; ++j) CHECK(at(xmv, i, j) == at(hv, row, j) + with_ops * at(ev, i, j));
    }

    // Gradients (the backward adds: start from zero). dxm is updated in place, so pass a copy of Rm.
    Mat<M> dtable("dtable", kOps + 1, kDim), deo("deo", T, kDim), dhf("dhf", C, kDim), dstar("dstar", B, kDim);
    Mat<M> dxm("dxm", T, kDim);
    Kokkos::deep_copy(dxm, Rm);
    embsr::inputs_backward(Exec(), batch, opt, op0, Rt, dxm, Rs, dstar, dtable, deo, dhf);
    Kokkos::fence();
    using Target = embsr::test::GradTarget<M>;
    std::vector<Target> targets{{"op_table", embsr::test::flat(table), embsr::test::to_vector(dtable)},
                                {"eo", embsr::test::flat(eo), embsr::test::to_vector(deo)},
                                {"hf", embsr::test::flat(hf), embsr::test::to_vector(dhf)},
                                {"star", embsr::test::flat(star), embsr::test::to_vector(dstar)}};
    embsr::test::check_gradients<M>(loss, targets);
  }
}

TEST_CASE("inputs: shape mismatches are rejected", "[layers][inputs]") {
  using M = Kokkos::HostSpace;
  using Exec = Kokkos::DefaultHostExecutionSpace;
  embsr::BatchBuilder builder;
  const auto batch = embsr::to_memory_space<M>(builder.build(examples(), IV{0, 1}));
  const int B = batch.sizes.num_sessions, T = batch.sizes.num_micro, C = batch.sizes.num_nodes;
  Mat<M> table("op_table", kOps + 1, kDim), eo("eo", T, kDim), hf("hf", C, kDim), star("star", B, kDim);
  Mat<M> xm("xm", T, kDim), xs("xs", B, kDim), xt("xt", B, kDim), bad("bad", B + 1, kDim);
  Kokkos::View<int*, M> op0("op0", B), op0_bad("op0", B + 1);
  const embsr::InputsOptions opt{true, kOps};
  CHECK_NOTHROW(embsr::inputs_forward(Exec(), batch, opt, table, eo, hf, star, op0, xm, xs, xt));
  CHECK_THROWS_AS(embsr::inputs_forward(Exec(), batch, opt, table, eo, hf, bad, op0, xm, xs, xt), embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::inputs_forward(Exec(), batch, opt, table, eo, hf, star, op0_bad, xm, xs, xt),
                  embsr::InvalidArgument);
  CHECK_THROWS_AS(embsr::inputs_forward(Exec(), batch, opt, table, eo, hf, star, op0, xm, xs, bad), embsr::InvalidArgument);
  Mat<M> dtable("dtable", kOps + 1, kDim), deo("deo", T, kDim), dhf("dhf", C, kDim), dstar("dstar", B, kDim);
  CHECK_THROWS_AS(embsr::inputs_backward(Exec(), batch, opt, op0, bad, xm, xs, dstar, dtable, deo, dhf),
                  embsr::InvalidArgument);
  CHECK_NOTHROW(embsr::inputs_backward(Exec(), batch, opt, op0, xt, xm, xs, dstar, dtable, deo, dhf));
  // One state per row: hf must then have T rows, not C.
  embsr::InputsOptions per_row = opt;
  per_row.states_per_row = true;
  if (T != C) {
    CHECK_THROWS_AS(embsr::inputs_forward(Exec(), batch, per_row, table, eo, hf, star, op0, xm, xs, xt),
                    embsr::InvalidArgument);
  }
  Mat<M> hf_rows("hf_rows", T, kDim);
  CHECK_NOTHROW(embsr::inputs_forward(Exec(), batch, per_row, table, eo, hf_rows, star, op0, xm, xs, xt));
}

}  // namespace test_inputs

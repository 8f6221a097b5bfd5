#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <random>
#include <stdexcept>

#include "noiselab/box_moments.hpp"
#include "reference.hpp"

namespace nl = noiselab;

namespace {

nl::ArrayView<const double> view_of(const ref::Array& a, std::size_t ndim) {
    nl::ArrayView<const double> v;
    v.data = a.v.data();
    v.ndim = ndim;
    std::ptrdiff_t stride = 1;
    for (std::size_t k = ndim; k-- > 0;) {
        v.shape[k] = a.shape[4 - ndim + k];
        v.strides[k] = stride;
        stride *= static_cast<std::ptrdiff_t>(v.shape[k]);
    }
    return v;
}

nl::ArrayView<double> out_like(std::vector<double>& buf, const nl::ArrayView<const double>& in) {
    buf.assign(in.size(), -1.0);
    nl::ArrayView<double> v;
    v.data = buf.data();
    v.ndim = in.ndim;
    v.shape = in.shape;
    v.strides = in.strides;
    return v;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-11 * (1.0 + std::abs(want[i]))) << what << " at " << i;
}

}  // namespace

struct Case {
    std::array<std::size_t, 4> shape;  // padded to 4 with leading 1s
    std::size_t ndim;
    std::array<std::size_t, 4> window;  // padded the same way
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.ndim << "-D shape";
    for (auto s : c.shape) *os << " " << s;
    *os << " window";
    for (auto w : c.window) *os << " " << w;
}

class BoxMoments : public ::testing::TestWithParam<Case> {};

TEST_P(BoxMoments, MatchesDirectSummationWithReflection) {
    const Case c = GetParam();
    const ref::Array x = ref::random_array(c.shape, 7);
    const auto in = view_of(x, c.ndim);
    nl::Window w{};
    for (std::size_t d = 0; d < c.ndim; ++d) w[d] = c.window[4 - c.ndim + d];
    std::vector<double> m2, m4;
    nl::box_moments(in, w, out_like(m2, in), out_like(m4, in));
    expect_close(m2, ref::box_mean(x, c.window, [](double v) { return v * v; }), "M^2");
    expect_close(m4, ref::box_mean(x, c.window, [](double v) { return v * v * v * v; }), "M^4");
}

// M^2 alone has no compensated channel: its rows take the path that sums axis 2 straight
// into the lanes of the last axis.
TEST_P(BoxMoments, MeanOfM2AloneMatchesDirectSummation) {
    const Case c = GetParam();
    const ref::Array x = ref::random_array(c.shape, 9);
    const auto in = view_of(x, c.ndim);
    nl::Window w{};
    for (std::size_t d = 0; d < c.ndim; ++d) w[d] = c.window[4 - c.ndim + d];
    std::vector<double> m2;
    nl::box_moments(in, w, out_like(m2, in));
    expect_close(m2, ref::box_mean(x, c.window, [](double v) { return v * v; }), "M^2");
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BoxMoments,
    ::testing::Values(Case{{1, 1, 1, 7}, 1, {1, 1, 1, 3}}, Case{{1, 1, 1, 7}, 1, {1, 1, 1, 2}},
                      Case{{1, 1, 1, 7}, 1, {1, 1, 1, 17}},  // 2n + 3
                      Case{{1, 1, 1, 1}, 1, {1, 1, 1, 4}}, Case{{1, 1, 5, 8}, 2, {1, 1, 4, 3}},
                      Case{{1, 1, 5, 8}, 2, {1, 1, 13, 19}}, Case{{1, 1, 40, 3}, 2, {1, 1, 10, 2}},
                      Case{{1, 6, 5, 4}, 3, {1, 3, 2, 5}}, Case{{1, 70, 3, 4}, 3, {1, 10, 1, 4}},
                      Case{{1, 9, 1, 4}, 3, {1, 4, 3, 1}}, Case{{3, 4, 5, 6}, 4, {2, 3, 4, 5}},
                      Case{{20, 2, 3, 4}, 4, {5, 1, 3, 1}}, Case{{3, 4, 5, 6}, 4, {1, 1, 1, 1}},
                      Case{{2, 3, 2, 3}, 4, {7, 9, 5, 2}},
                      Case{{1, 1, 3, 130}, 2, {1, 1, 2, 7}}, Case{{1, 1, 1, 200}, 1, {1, 1, 1, 403}},
                      Case{{1, 1, 2, 64}, 2, {1, 1, 3, 64}},
                      // the last axis takes rows 4 at a time: groups cut short by the end of
                      // an axis or of a thread's block, blocks of rows, no last axis to sum
                      Case{{1, 37, 7, 9}, 3, {1, 10, 3, 4}}, Case{{1, 1, 70, 13}, 2, {1, 1, 10, 5}},
                      Case{{1, 1, 70, 13}, 2, {1, 1, 1, 6}}, Case{{2, 9, 6, 5}, 4, {3, 4, 5, 6}},
                      Case{{5, 4, 9, 6}, 4, {3, 2, 3, 1}}, Case{{1, 45, 5, 1}, 3, {1, 4, 3, 1}},
                      Case{{1, 3, 6, 5}, 3, {1, 7, 13, 11}}, Case{{1, 6, 14, 9}, 3, {1, 3, 5, 4}},
                      Case{{2, 3, 13, 7}, 4, {2, 3, 4, 5}}));

TEST(BoxMomentsStrides, StridedAndReversedViewsAreHonoured) {
    // A 2-D view that takes every other column of a wider buffer, rows reversed.
    const ref::Array full = ref::random_array({1, 1, 9, 12}, 3);
    ref::Array picked;
    picked.shape = {1, 1, 9, 6};
    for (std::size_t r = 0; r < 9; ++r)
        for (std::size_t c = 0; c < 6; ++c) picked.v.push_back(full.v[(8 - r) * 12 + 2 * c]);
    nl::ArrayView<const double> in;
    in.data = full.v.data() + 8 * 12;
    in.ndim = 2;
    in.shape = {9, 6};
    in.strides = {-12, 2};
    std::vector<double> m2(54);
    auto out = nl::make_view(m2.data(), {9, 6});
    nl::box_moments(in, nl::Window{4, 3}, out);
    expect_close(m2, ref::box_mean(picked, {1, 1, 4, 3}, [](double v) { return v * v; }), "strided");
}

TEST(BoxMomentsStrides, ReversedVolumeMatchesItsCopy) {
    // Every axis reversed: the input is read row by row, never as one contiguous run.
    const ref::Array full = ref::random_array({1, 6, 7, 9}, 17);
    ref::Array flipped;
    flipped.shape = full.shape;
    for (std::size_t a = 0; a < 6; ++a)
        for (std::size_t b = 0; b < 7; ++b)
            for (std::size_t c = 0; c < 9; ++c) flipped.v.push_back(full.v[full.at(0, 5 - a, 6 - b, 8 - c)]);
    nl::ArrayView<const double> in;
    in.data = full.v.data() + full.v.size() - 1;
    in.ndim = 3;
    in.shape = {6, 7, 9};
    in.strides = {-63, -9, -1};
    std::vector<double> m2(full.v.size()), m4(full.v.size());
    nl::box_moments(in, nl::Window{3, 5, 4}, nl::make_view(m2.data(), {6, 7, 9}), nl::make_view(m4.data(), {6, 7, 9}));
    expect_close(m2, ref::box_mean(flipped, {1, 3, 5, 4}, [](double v) { return v * v; }), "M^2");
    expect_close(m4, ref::box_mean(flipped, {1, 3, 5, 4}, [](double v) { return v * v * v * v; }), "M^4");
}

TEST(BoxMomentsStrides, PaddedRowsGiveTheBitsOfContiguousOnes) {
    // The same values contiguous (read as one run per slab) and with padded rows (read row
    // by row): the same additions in the same order, so the same bits.
    const ref::Array x = ref::random_array({1, 13, 11, 17}, 19, 0.0, 1e4);
    std::vector<double> padded(13 * 11 * 20, -1.0);
    for (std::size_t i = 0; i < x.v.size(); ++i) padded[(i / 17) * 20 + i % 17] = x.v[i];
    nl::ArrayView<const double> loose;
    loose.data = padded.data();
    loose.ndim = 3;
    loose.shape = {13, 11, 17};
    loose.strides = {220, 20, 1};
    const nl::Window w{5, 4, 6};
    std::vector<double> a2(x.v.size()), a4(x.v.size()), b2(x.v.size()), b4(x.v.size());
    nl::box_moments(view_of(x, 3), w, nl::make_view(a2.data(), {13, 11, 17}), nl::make_view(a4.data(), {13, 11, 17}));
    nl::box_moments(loose, w, nl::make_view(b2.data(), {13, 11, 17}), nl::make_view(b4.data(), {13, 11, 17}));
    EXPECT_EQ(a2, b2);
    EXPECT_EQ(a4, b4);
}

TEST(BoxMomentsLanes, ARowsSumsDoNotDependOnTheRowsBesideIt) {
    // Rows share vectors along the last axis, 4 at a time; the window leaves the row axis
    // alone, so row 1's NaN must stay in row 1, also in the lanes of a later, partial
    // group (row 4 alone) that still hold row 1's sums.
    ref::Array x = ref::random_array({1, 1, 5, 20}, 23);
    x.v[x.at(0, 0, 1, 7)] = std::nan("");
    std::vector<double> m2(x.v.size());
    nl::BoxOptions opt;
    opt.threads = 1;
    nl::box_moments(view_of(x, 2), nl::Window{1, 5}, nl::make_view(m2.data(), {5, 20}), {}, opt);
    const auto want = ref::box_mean(x, {1, 1, 1, 5}, [](double v) { return v * v; });
    for (std::size_t r : {0u, 2u, 3u, 4u})
        for (std::size_t c = 0; c < 20; ++c)
            ASSERT_NEAR(m2[r * 20 + c], want[r * 20 + c], 1e-11 * want[r * 20 + c]) << r << " " << c;
    EXPECT_TRUE(std::isnan(m2[1 * 20 + 7]));
}

TEST(BoxMomentsLanes, ARowGivesTheSameBitsAloneAndInAnyLane) {
    // Each lane runs its row's own chain of additions, so a row's sums along the last axis
    // are the same bits whichever lane of which group it takes, or as a 1-row image: what
    // makes the results independent of the vector width. Row counts 1..9 leave groups cut
    // short; the columns are read every other one (strided) and the M^4 sums compensated.
    const std::size_t nx = 13;
    const ref::Array x = ref::random_array({1, 1, 9, 2 * nx}, 31, 0.0, 1e4);
    const nl::Window w{1, 6};
    auto sums = [&](std::size_t first, std::size_t rows, std::vector<double>& m2, std::vector<double>& m4) {
        nl::ArrayView<const double> in;
        in.data = x.v.data() + first * 2 * nx;
        in.ndim = 2;
        in.shape = {rows, nx};
        in.strides = {static_cast<std::ptrdiff_t>(2 * nx), 2};
        m2.assign(rows * nx, -1.0);
        m4.assign(rows * nx, -1.0);
        nl::BoxOptions opt;
        opt.threads = 1;
        nl::box_moments(in, w, nl::make_view(m2.data(), {rows, nx}), nl::make_view(m4.data(), {rows, nx}), opt);
    };
    std::vector<std::vector<double>> alone2(9), alone4(9);
    for (std::size_t r = 0; r < 9; ++r) sums(r, 1, alone2[r], alone4[r]);
    for (std::size_t rows = 1; rows <= 9; ++rows) {
        std::vector<double> m2, m4;
        sums(0, rows, m2, m4);
        for (std::size_t r = 0; r < rows; ++r) {
            const auto at = static_cast<std::ptrdiff_t>(r * nx);
            EXPECT_TRUE(std::equal(alone2[r].begin(), alone2[r].end(), m2.begin() + at)) << rows << " rows, row " << r;
            EXPECT_TRUE(std::equal(alone4[r].begin(), alone4[r].end(), m4.begin() + at)) << rows << " rows, row " << r;
        }
    }
}

TEST(BoxMomentsMask, OnlyInMaskVoxelsContribute) {
    const ref::Array x = ref::random_array({1, 7, 6, 5}, 11);
    std::vector<unsigned char> mask(x.v.size());
    std::mt19937 gen(5);
    for (auto& m : mask) m = gen() % 3 != 0;
    nl::BoxOptions opt;
    opt.mask = nl::make_view<const std::uint8_t>(mask.data(), {7, 6, 5});
    std::vector<double> m2(x.v.size());
    nl::box_moments(view_of(x, 3), nl::Window{3, 4, 5}, nl::make_view(m2.data(), {7, 6, 5}), {}, opt);
    expect_close(m2, ref::box_mean(x, {1, 3, 4, 5}, [](double v) { return v * v; }, mask), "masked");
}

TEST(BoxMomentsThreads, BitIdenticalForAnyThreadCount) {
    const ref::Array x = ref::random_array({1, 77, 33, 29}, 13, 0.0, 1e4);
    const auto in = view_of(x, 3);
    std::vector<double> base;
    for (int threads : {1, 2, 3, 8}) {
        std::vector<double> m2(x.v.size()), m4(x.v.size());
        nl::BoxOptions opt;
        opt.threads = threads;
        nl::box_moments(in, nl::Window{10, 10, 10}, nl::make_view(m2.data(), {77, 33, 29}),
                        nl::make_view(m4.data(), {77, 33, 29}), opt);
        m2.insert(m2.end(), m4.begin(), m4.end());
        if (base.empty()) base = m2;
        else EXPECT_EQ(m2, base) << threads << " threads";
    }
}

TEST(BoxMomentsErrors, BadArgumentsThrowInvalidArgument) {
    std::vector<double> x(12, 1.0), y(12);
    auto in = nl::make_view<const double>(x.data(), {3, 4});
    EXPECT_THROW(nl::box_moments(in, nl::Window{0, 3}, nl::make_view(y.data(), {3, 4})), std::invalid_argument);
    EXPECT_THROW(nl::box_moments(in, nl::Window{3, 3}, nl::make_view(y.data(), {4, 3})), std::invalid_argument);
    EXPECT_THROW(nl::make_view(y.data(), {1, 1, 1, 1, 12}), std::invalid_argument);
    auto empty = nl::make_view<const double>(x.data(), {0, 4});
    EXPECT_THROW(nl::box_moments(empty, nl::Window{1, 1}, nl::make_view(y.data(), {0, 4})), std::invalid_argument);
}

TEST(Views, SizeOverflowIsAnErrorNotWrapAround) {
    double x = 0.0;
    const std::size_t huge = std::size_t{1} << 33;
    // 2^33 cubed overflows std::size_t; 2^33 * 2^31 fits size_t but not ptrdiff_t strides.
    EXPECT_THROW(nl::make_view(&x, {huge, huge, huge}), std::overflow_error);
    EXPECT_THROW(nl::make_view(&x, {huge, std::size_t{1} << 31}), std::overflow_error);
    nl::ArrayView<const double> v;
    v.data = &x;
    v.ndim = 3;
    v.shape = {huge, huge, huge};
    v.strides = {0, 0, 0};  // a broadcast view: no memory behind it, still refused
    std::vector<double> out(1);
    EXPECT_THROW(nl::box_moments(v, nl::Window{1, 1, 1}, nl::make_view(out.data(), {1})), std::overflow_error);
}

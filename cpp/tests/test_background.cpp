// The count channel of the masked box means, and the kernels of the background search,
// against direct loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "noiselab/background.hpp"
#include "noiselab/box_moments.hpp"
#include "reference.hpp"

namespace nl = noiselab;

namespace {

std::vector<unsigned char> random_mask(std::size_t n, unsigned seed, unsigned one_in) {
    std::vector<unsigned char> m(n);
    std::mt19937 gen(seed);
    for (auto& e : m) e = gen() % one_in != 0;
    return m;
}

}  // namespace

TEST(BoxCount, CountsTheInMaskVoxelsOfEachWindowAndChecksThem) {
    // Windows longer than an axis reflect voxels several times: they count as often.
    for (const auto& w : {nl::Window{3, 4, 5}, nl::Window{9, 1, 13}}) {
        ref::Array x = ref::random_array({1, 7, 6, 5}, 11);
        const auto mask = random_mask(x.v.size(), 5, 3);
        x.v[x.at(0, 2, 3, 4)] = std::nan("");
        x.v[x.at(0, 1, 1, 1)] = -2.0;
        x.v[x.at(0, 4, 0, 0)] = -std::numeric_limits<double>::infinity();
        std::vector<double> m2(x.v.size());
        std::vector<std::uint32_t> count(x.v.size());
        nl::BoxOptions opt;
        opt.mask = nl::make_view<const std::uint8_t>(mask.data(), {7, 6, 5});
        opt.count = nl::make_view(count.data(), {7, 6, 5});
        const nl::BoxReport rep =
            nl::box_moments(nl::make_view<const double>(x.v.data(), {7, 6, 5}), w, nl::make_view(m2.data(), {7, 6, 5}), {}, opt);
        ref::Array in_mask;
        in_mask.shape = x.shape;
        in_mask.v.assign(mask.begin(), mask.end());
        const std::array<std::size_t, 4> w4{1, w[0], w[1], w[2]};
        const auto mean = ref::box_mean(in_mask, w4, [](double v) { return v; });
        const double volume = static_cast<double>(w[0] * w[1] * w[2]);
        for (std::size_t i = 0; i < count.size(); ++i)
            ASSERT_EQ(count[i], static_cast<std::uint32_t>(std::lround(mean[i] * volume))) << i;
        std::size_t nonfinite = 0, negative = 0;
        for (std::size_t i = 0; i < x.v.size(); ++i) {
            nonfinite += mask[i] && !std::isfinite(x.v[i]);
            negative += mask[i] && x.v[i] < 0;
        }
        EXPECT_EQ(rep.nonfinite, nonfinite);
        EXPECT_EQ(rep.negative, negative);
    }
}

TEST(BoxCount, NeedsAMask) {
    std::vector<double> x(12, 1.0), y(12);
    std::vector<std::uint32_t> c(12);
    nl::BoxOptions opt;
    opt.count = nl::make_view(c.data(), {3, 4});
    EXPECT_THROW(nl::box_moments(nl::make_view<const double>(x.data(), {3, 4}), nl::Window{3, 3}, nl::make_view(y.data(), {3, 4}), {}, opt),
                 std::invalid_argument);
}

TEST(BandSelect, PassesCountsAndHistogramMatchADirectLoop) {
    const std::size_t nz = 9, ny = 17, nx = 23, n = nz * ny * nx;
    std::mt19937 gen(3);
    std::uniform_real_distribution<double> u(0.5, 200.0);
    std::vector<double> values(n);
    std::vector<std::uint32_t> index(n);
    for (auto& v : values) v = u(gen);
    for (auto& k : index) k = gen() % 30;
    const auto mask = random_mask(n, 7, 4);
    std::vector<double> lo(30), hi(30);
    for (std::size_t k = 0; k < 30; ++k) {
        lo[k] = 3.0 * static_cast<double>(k);
        hi[k] = lo[k] + 60.0;
    }
    // Dense edges: several in one bucket of the lookup table, odd intervals collected.
    std::vector<double> edges{1.0, 1.0000001, 1.0000002, 7.5, 30.0, 30.5, 99.0, 150.0};
    for (int threads : {1, 2, 3}) {
        std::vector<std::uint8_t> out(n, 9);
        nl::BandOptions opt;
        opt.out = nl::make_view(out.data(), {nz, ny, nx});
        opt.edges = edges;
        opt.collect = 1000000;
        opt.threads = threads;
        const nl::BandStats s = nl::band_select(nl::make_view<const double>(values.data(), {nz, ny, nx}),
                                                nl::make_view<const std::uint32_t>(index.data(), {nz, ny, nx}),
                                                nl::make_view<const std::uint8_t>(mask.data(), {nz, ny, nx}), lo, hi, opt);
        std::size_t passed = 0;
        double mn = INFINITY, mx = -INFINITY;
        std::vector<std::size_t> counts(edges.size() + 1, 0);
        std::vector<double> odd;
        for (std::size_t i = 0; i < n; ++i) {
            const double v = values[i];
            const bool pass = mask[i] && lo[index[i]] <= v && v <= hi[index[i]];
            ASSERT_EQ(out[i], pass ? 1 : 0) << i;
            if (!pass) continue;
            ++passed;
            mn = std::min(mn, v);
            mx = std::max(mx, v);
            std::size_t j = 0;
            while (j < edges.size() && edges[j] <= v) ++j;
            ++counts[j];
            if (j % 2 == 1) odd.push_back(v);
        }
        std::sort(odd.begin(), odd.end());
        EXPECT_EQ(s.n, passed);
        EXPECT_EQ(s.min, mn);
        EXPECT_EQ(s.max, mx);
        EXPECT_EQ(s.counts, counts);
        EXPECT_EQ(s.collected, odd);
        opt.collect = odd.size() - 1;  // one too few: none
        EXPECT_TRUE(nl::band_select(nl::make_view<const double>(values.data(), {nz, ny, nx}),
                                    nl::make_view<const std::uint32_t>(index.data(), {nz, ny, nx}),
                                    nl::make_view<const std::uint8_t>(mask.data(), {nz, ny, nx}), lo, hi, opt)
                        .collected.empty());
    }
}

TEST(BandSelect, RefusesAnIndexBeyondTheTablesAndUnsortedEdges) {
    std::vector<double> v(6, 1.0);
    std::vector<std::uint32_t> k{0, 1, 2, 3, 4, 5};
    std::vector<std::uint8_t> m(6, 1);
    const auto vv = nl::make_view<const double>(v.data(), {6});
    const auto kv = nl::make_view<const std::uint32_t>(k.data(), {6});
    const auto mv = nl::make_view<const std::uint8_t>(m.data(), {6});
    EXPECT_THROW(nl::band_select(vv, kv, mv, std::vector<double>(5, 0.0), std::vector<double>(5, 2.0)), std::invalid_argument);
    m[5] = 0;  // out of the mask, the index is not read
    EXPECT_EQ(nl::band_select(vv, kv, mv, std::vector<double>(5, 0.0), std::vector<double>(5, 2.0)).n, 5u);
    nl::BandOptions opt;
    opt.edges = {1.0, 1.0};
    EXPECT_THROW(nl::band_select(vv, kv, mv, std::vector<double>(6, 0.0), std::vector<double>(6, 2.0), opt), std::invalid_argument);
}

TEST(MaskedMoments, SumsMatchADirectSumAndDoNotDependOnThreads) {
    // A strided view (every other column, rows reversed) with a sparse mask.
    const std::size_t nz = 40, ny = 70, nx = 90;
    ref::Array x = ref::random_array({1, nz, ny, nx}, 17, 0.0, 50.0);
    for (std::size_t i = 0; i < x.v.size(); i += 3) x.v[i] = std::round(x.v[i]);
    const auto mask = random_mask(x.v.size(), 9, 5);
    nl::ArrayView<const double> v;
    nl::ArrayView<const std::uint8_t> m;
    v.ndim = m.ndim = 3;
    v.shape = m.shape = {nz, ny, nx / 2};
    v.strides = m.strides = {static_cast<std::ptrdiff_t>(ny * nx), -static_cast<std::ptrdiff_t>(nx), 2};
    v.data = x.v.data() + (ny - 1) * nx;
    m.data = mask.data() + (ny - 1) * nx;
    long double s1 = 0, s2 = 0, s4 = 0, sq = 0;
    double hi = -INFINITY;
    std::size_t n = 0;
    for (std::size_t a = 0; a < nz; ++a)
        for (std::size_t b = 0; b < ny; ++b)
            for (std::size_t c = 0; c < nx / 2; ++c) {
                const std::size_t i = a * ny * nx + (ny - 1 - b) * nx + 2 * c;
                if (!mask[i]) continue;
                ++n;
                hi = std::max(hi, x.v[i]);
            }
    for (std::size_t i = 0; i < x.v.size(); ++i) {
        if (!mask[i] || (i % nx) % 2 != 0) continue;
        const long double u = x.v[i] / hi;
        s1 += u;
        s2 += u * u;
        s4 += u * u * u * u;
        sq += static_cast<long double>(x.v[i]) * x.v[i];
    }
    const nl::MaskedMoments base = nl::masked_moments(v, m, 1);
    EXPECT_EQ(base.n, n);
    EXPECT_EQ(base.max, hi);
    EXPECT_FALSE(base.integers);
    EXPECT_NEAR(base.sum_u, static_cast<double>(s1), 1e-12 * static_cast<double>(s1));
    EXPECT_NEAR(base.sum_u2, static_cast<double>(s2), 1e-12 * static_cast<double>(s2));
    EXPECT_NEAR(base.sum_u4, static_cast<double>(s4), 1e-12 * static_cast<double>(s4));
    EXPECT_NEAR(base.sum_sq, static_cast<double>(sq), 1e-12 * static_cast<double>(sq));
    for (int threads : {2, 3, 8}) {
        const nl::MaskedMoments t = nl::masked_moments(v, m, threads);
        EXPECT_EQ(t.sum_u, base.sum_u) << threads;
        EXPECT_EQ(t.sum_u2, base.sum_u2) << threads;
        EXPECT_EQ(t.sum_u4, base.sum_u4) << threads;
        EXPECT_EQ(t.sum_sq, base.sum_sq) << threads;
    }
}

TEST(MaskedMoments, OneLongRowSplitsAcrossThreadsWithTheSameSums) {
    // Summation nodes start inside the row: the cursor must find them without the rows.
    const ref::Array x = ref::random_array({1, 1, 1, 300000}, 21, 0.0, 9.0);
    const auto mask = random_mask(x.v.size(), 4, 3);
    const auto v = nl::make_view<const double>(x.v.data(), {x.v.size()});
    const auto m = nl::make_view<const std::uint8_t>(mask.data(), {mask.size()});
    const nl::MaskedMoments base = nl::masked_moments(v, m, 1);
    long double sq = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < x.v.size(); ++i)
        if (mask[i]) {
            ++n;
            sq += static_cast<long double>(x.v[i]) * x.v[i];
        }
    EXPECT_EQ(base.n, n);
    EXPECT_NEAR(base.sum_sq, static_cast<double>(sq), 1e-12 * static_cast<double>(sq));
    for (int threads : {2, 3}) {
        const nl::MaskedMoments t = nl::masked_moments(v, m, threads);
        EXPECT_EQ(t.sum_u, base.sum_u);
        EXPECT_EQ(t.sum_sq, base.sum_sq);
    }
}

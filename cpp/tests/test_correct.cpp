#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "noiselab/correct.hpp"
#include "reference.hpp"

namespace nl = noiselab;

namespace {

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
    return std::vector<T>(v.begin(), v.end());
}

}  // namespace

TEST(Correct, MomentsMatchTheFormula) {
    const ref::Array x = ref::random_array({1, 9, 8, 7}, 21, 0.0, 10.0);
    const double sigma = 4.1;  // 2 sigma^2 near the mean of M^2 (~33): some voxels clamp
    const auto want2 = ref::box_mean(x, {1, 4, 3, 5}, [](double v) { return v * v; });
    std::vector<double> out(x.v.size());
    const auto rep = nl::correct(nl::make_view<const double>(x.v.data(), {9, 8, 7}),
                                 nl::make_view(out.data(), {9, 8, 7}), sigma, nl::Window{4, 3, 5});
    std::size_t clamped = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const double a2 = want2[i] - 2 * sigma * sigma;
        clamped += a2 < 0;
        ASSERT_NEAR(out[i], std::sqrt(std::max(a2, 0.0)), 1e-12 * (1 + out[i]));
    }
    EXPECT_EQ(rep.clamped, clamped);
    EXPECT_GT(clamped, 0u);
    EXPECT_LT(clamped, out.size());
    EXPECT_EQ(rep.n, out.size());
    EXPECT_EQ(rep.min, *std::min_element(x.v.begin(), x.v.end()));
    EXPECT_EQ(rep.max, *std::max_element(x.v.begin(), x.v.end()));
}

TEST(Correct, LmmseMatchesTheFormulaAndCoils) {
    const ref::Array x = ref::random_array({1, 1, 12, 11}, 23, 0.0, 20.0);
    const double sigma = 2.0, N = 3;
    const auto m2 = ref::box_mean(x, {1, 1, 5, 5}, [](double v) { return v * v; });
    const auto m4 = ref::box_mean(x, {1, 1, 5, 5}, [](double v) { return v * v * v * v; });
    nl::CorrectionOptions opt;
    opt.method = nl::Correction::lmmse;
    opt.coils = 3;
    std::vector<float> in = cast<float>(x.v), out(in.size());
    nl::correct(nl::make_view<const float>(in.data(), {12, 11}), nl::make_view(out.data(), {12, 11}), sigma,
                nl::Window{5, 5}, opt);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const double v = in[i];
        const double var = m4[i] - m2[i] * m2[i];
        const double k = std::clamp(1 - 4 * sigma * sigma * (m2[i] - N * sigma * sigma) / var, 0.0, 1.0);
        const double a2 = m2[i] - 2 * N * sigma * sigma + k * (v * v - m2[i]);
        ASSERT_NEAR(out[i], std::sqrt(std::max(a2, 0.0)), 1e-5 * (1 + out[i])) << i;
    }
}

TEST(Correct, ValidationCountsRideAlong) {
    std::vector<double> v{0, 1, -2, NAN, INFINITY, 0, 5, 6};
    std::vector<double> out(v.size());
    const auto rep = nl::correct(nl::make_view<const double>(v.data(), {2, 4}), nl::make_view(out.data(), {2, 4}),
                                 1.0, nl::Window{1, 1});
    EXPECT_EQ(rep.nonfinite, 2u);
    EXPECT_EQ(rep.negative, 1u);
    EXPECT_EQ(rep.zeros, 2u);
}

TEST(Correct, MaskedVoxelsPassThroughBitIdentical) {
    const ref::Array x = ref::random_array({1, 1, 10, 10}, 5, 0.0, 50.0);
    std::vector<std::uint8_t> mask(100);
    for (std::size_t i = 0; i < 100; ++i) mask[i] = (i % 10) < 6;
    nl::CorrectionOptions opt;
    opt.mask = nl::make_view<const std::uint8_t>(mask.data(), {10, 10});
    std::vector<double> out(100);
    nl::correct(nl::make_view<const double>(x.v.data(), {10, 10}), nl::make_view(out.data(), {10, 10}), 4.0,
                nl::Window{3, 3}, opt);
    std::vector<unsigned char> m(mask.begin(), mask.end());
    const auto m2 = ref::box_mean(x, {1, 1, 3, 3}, [](double v) { return v * v; }, m);
    for (std::size_t i = 0; i < 100; ++i) {
        if (!mask[i]) ASSERT_EQ(out[i], x.v[i]);
        else ASSERT_NEAR(out[i], std::sqrt(std::max(m2[i] - 32.0, 0.0)), 1e-10);
    }
}

TEST(Correct, SigmaMapWithBroadcastStrides) {
    // Two volumes with their own sigma, given as a (2, 1, 1) map broadcast over (2, 4, 5).
    const ref::Array x = ref::random_array({1, 2, 4, 5}, 8, 5.0, 30.0);
    std::vector<double> sig{1.0, 3.0};
    nl::CorrectionOptions opt;
    opt.sigma_map.data = sig.data();
    opt.sigma_map.ndim = 3;
    opt.sigma_map.shape = {2, 4, 5};
    opt.sigma_map.strides = {1, 0, 0};
    std::vector<double> out(40);
    nl::correct(nl::make_view<const double>(x.v.data(), {2, 4, 5}), nl::make_view(out.data(), {2, 4, 5}), 0.0,
                nl::Window{1, 1, 1}, opt);
    for (std::size_t i = 0; i < 40; ++i) {
        const double s = sig[i / 20];
        ASSERT_NEAR(out[i], std::sqrt(std::max(x.v[i] * x.v[i] - 2 * s * s, 0.0)), 1e-12);
    }
}

TEST(Correct, ThreadCountDoesNotChangeABit) {
    const ref::Array x = ref::random_array({1, 45, 31, 30}, 77, 0.0, 1000.0);
    std::vector<float> in = cast<float>(x.v);
    std::vector<float> base;
    for (int t : {1, 2, 5}) {
        for (auto method : {nl::Correction::moments, nl::Correction::lmmse}) {
            std::vector<float> out(in.size());
            nl::CorrectionOptions opt;
            opt.threads = t;
            opt.method = method;
            nl::correct(nl::make_view<const float>(in.data(), {45, 31, 30}), nl::make_view(out.data(), {45, 31, 30}),
                        120.0, nl::Window{10, 10, 10}, opt);
            if (base.size() < 2 * in.size()) base.insert(base.end(), out.begin(), out.end());
            else {
                const std::size_t off = method == nl::Correction::moments ? 0 : in.size();
                EXPECT_TRUE(std::equal(out.begin(), out.end(), base.begin() + static_cast<std::ptrdiff_t>(off)))
                    << t << " threads";
            }
        }
    }
}

TEST(Correct, BadArgumentsThrow) {
    std::vector<double> v(6, 1.0), out(6);
    auto in = nl::make_view<const double>(v.data(), {2, 3});
    auto o = nl::make_view(out.data(), {2, 3});
    EXPECT_THROW(nl::correct(in, o, -1.0, nl::Window{1, 1}), std::invalid_argument);
    EXPECT_THROW(nl::correct(in, o, NAN, nl::Window{1, 1}), std::invalid_argument);
    nl::CorrectionOptions opt;
    opt.coils = 0;
    EXPECT_THROW(nl::correct(in, o, 1.0, nl::Window{1, 1}, opt), std::invalid_argument);
    EXPECT_THROW(nl::correct(in, nl::make_view(out.data(), {3, 2}), 1.0, nl::Window{1, 1}), std::invalid_argument);
}

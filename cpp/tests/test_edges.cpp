// Edge cases of the chi constants (any coil count, in O(1)) and of the float root
// (tiny and huge A^2), each against an independent reference.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "noiselab/correct.hpp"
#include "noiselab/sigma.hpp"

namespace nl = noiselab;

namespace {

// beta_N = sqrt(2) Gamma(N + 1/2) / Gamma(N) by its recurrence in long double: N roundings
// of ~5e-20 each, so a reference to ~1e-14 up to N = 1e5.
long double beta_recurrence(unsigned coils) {
    long double b = std::sqrt(std::acos(-1.0L) / 2.0L);
    for (unsigned k = 1; k < coils; ++k) b *= (2.0L * k + 1.0L) / (2.0L * k);
    return b;
}

}  // namespace

TEST(ChiConstants, MatchTheRecurrenceOnBothSidesOfTheSeries) {
    for (unsigned n : {1u, 2u, 7u, 31u, 32u, 33u, 64u, 100u, 1000u, 100000u}) {
        const long double b = beta_recurrence(n);
        EXPECT_NEAR(nl::chi_beta(n) / static_cast<double>(b), 1.0, 2e-15) << n;
    }
    // 2N - beta^2 cancels in the reference too: there it is good to ~1e-12 up to N = 1000.
    for (unsigned n : {1u, 8u, 31u, 32u, 100u, 1000u}) {
        const long double b = beta_recurrence(n);
        const double want = static_cast<double>(std::sqrt(2.0L * n - b * b));
        EXPECT_NEAR(nl::chi_std_factor(n) / want, 1.0, 1e-11) << n;
    }
}

TEST(ChiConstants, LargeCoilCountsFollowTheAsymptotics) {
    // Gamma(N + 1/2) / (sqrt(N) Gamma(N)) = 1 - 1/(8N) + 1/(128 N^2) + O(N^-3), and
    // Var(M) / sigma^2 = 2N - beta^2 = 1/2 - 1/(16N) + O(N^-2).
    for (unsigned n : {1000000u, 4294967295u}) {
        const double x = 1.0 / n;
        EXPECT_NEAR(nl::chi_beta(n) / std::sqrt(2.0 * n), 1.0 - x / 8 + x * x / 128, 1e-15) << n;
        const double f = nl::chi_std_factor(n);
        EXPECT_NEAR(f * f, 0.5 - x / 16, 1e-12) << n;
        EXPECT_NEAR(nl::chi_mean_std_ratio(n), nl::chi_beta(n) / std::sqrt(0.5 - x / 16), 1e-7 * std::sqrt(n));
    }
}

TEST(ChiConstants, CostDoesNotGrowWithTheCoilCount) {
    // The recurrence took ~4e9 steps (seconds) for the largest count; the series takes a few flops.
    const auto start = std::chrono::steady_clock::now();
    double sum = 0.0;
    for (unsigned i = 0; i < 1000; ++i) sum += nl::chi_beta(4294967295u - i) + nl::chi_std_factor(4294967295u - i);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    EXPECT_GT(sum, 0.0);
    EXPECT_LT(took.count(), 0.5);
}

TEST(FloatRoot, TinyAndHugeAmplitudesAreRoundedFromTheExactRoot) {
    // sigma = 0 and a window of 1: A = M exactly, so each output must be the input. A^2 is
    // below FLT_MIN for the first values (subnormal or 0 in float) and above FLT_MAX for
    // the last ones.
    const std::vector<float> in{1e-20f, 3e-23f, 1.5e-30f, 1e-45f, 1.0f, 7.5f, 1e19f, 3e30f};
    for (auto method : {nl::Correction::moments, nl::Correction::lmmse}) {
        nl::CorrectionOptions opt;
        opt.method = method;
        std::vector<float> out(in.size());
        nl::correct(nl::make_view<const float>(in.data(), {in.size()}), nl::make_view(out.data(), {out.size()}),
                    0.0, nl::Window{1}, opt);
        for (std::size_t i = 0; i < in.size(); ++i) {
            const double v = in[i];
            EXPECT_EQ(out[i], static_cast<float>(std::sqrt(v * v))) << i;
            EXPECT_EQ(out[i], in[i]) << i;
        }
    }
}

TEST(FloatRoot, TinyValuesWithNoiseMatchTheDoubleFormula) {
    // A row that is tiny throughout (the fast moments path) and one masked run (the general path).
    std::vector<float> in(64);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = 1e-21f * static_cast<float>(1 + i % 7);
    const double sigma = 1e-22;
    std::vector<std::uint8_t> all(in.size(), 1);
    for (bool masked : {false, true}) {
        nl::CorrectionOptions opt;
        if (masked) opt.mask = nl::make_view<const std::uint8_t>(all.data(), {all.size()});
        std::vector<float> out(in.size());
        nl::correct(nl::make_view<const float>(in.data(), {in.size()}), nl::make_view(out.data(), {out.size()}),
                    sigma, nl::Window{1}, opt);
        for (std::size_t i = 0; i < in.size(); ++i) {
            const double v = in[i];
            EXPECT_EQ(out[i], static_cast<float>(std::sqrt(v * v - 2 * sigma * sigma))) << i;
        }
    }
}

TEST(FloatRoot, SigmaWhoseSquareOverflowsIsRefused) {
    std::vector<double> in{1.0, 2.0}, out(2);
    EXPECT_THROW(nl::correct(nl::make_view<const double>(in.data(), {2}), nl::make_view(out.data(), {2}), 1e160,
                             nl::Window{1}),
                 std::invalid_argument);
}

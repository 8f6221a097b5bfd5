#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "noiselab/sigma.hpp"

namespace nl = noiselab;

namespace {

// Background of `coils` coils: sqrt of a sum of 2N squared N(0, sigma) values.
std::vector<double> chi_background(std::size_t n, double sigma, unsigned coils, unsigned seed) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> g(0.0, sigma);
    std::vector<double> v(n);
    for (auto& e : v) {
        double s = 0;
        for (unsigned k = 0; k < 2 * coils; ++k) {
            const double z = g(gen);
            s += z * z;
        }
        e = std::sqrt(s);
    }
    return v;
}

}  // namespace

TEST(Sigma, ChiConstantsMatchClosedForms) {
    const double pi = std::acos(-1.0);
    EXPECT_NEAR(nl::chi_beta(1), std::sqrt(pi / 2), 1e-15);
    EXPECT_NEAR(nl::chi_beta(2), 3.0 / 2.0 * std::sqrt(pi / 2), 1e-15);  // 3!! / (2 * 1!)
    EXPECT_NEAR(nl::chi_std_factor(1), std::sqrt(2 - pi / 2), 1e-15);
    EXPECT_NEAR(nl::chi_mean_std_ratio(1), std::sqrt(pi / (4 - pi)), 1e-12);
    EXPECT_THROW(nl::chi_beta(0), std::invalid_argument);
}

TEST(Sigma, EstimatorsLandWithinTheirStatisticalError) {
    const double sigma = 7.5;
    const std::size_t n = 40000;
    for (unsigned coils : {1u, 4u}) {
        auto bg = chi_background(n, sigma, coils, 42 + coils);
        auto view = nl::make_view<const double>(bg.data(), {200, 200});
        // sd(sigma_mle)/sigma = 1/(2 sqrt(N n)); the other two are at most ~1.5x wider.
        const double sd = sigma / (2.0 * std::sqrt(static_cast<double>(coils * n)));
        EXPECT_NEAR(nl::estimate_sigma(view, nl::SigmaMethod::mle, coils).sigma, sigma, 4 * sd);
        EXPECT_NEAR(nl::estimate_sigma(view, nl::SigmaMethod::mean, coils).sigma, sigma, 6 * sd);
        EXPECT_NEAR(nl::estimate_sigma(view, nl::SigmaMethod::std_dev, coils).sigma, sigma, 8 * sd);
        const auto e = nl::estimate_sigma(view, nl::SigmaMethod::mle, coils);
        EXPECT_EQ(e.n, n);
        EXPECT_NEAR(e.ratio, nl::chi_mean_std_ratio(coils), 0.05);
    }
}

TEST(Sigma, MaskAndZeroExclusion) {
    std::vector<double> v{0, 0, 3, 4, 5, 100};
    std::vector<std::uint8_t> mask{1, 1, 1, 1, 1, 0};
    nl::SampleOptions opt;
    opt.mask = nl::make_view<const std::uint8_t>(mask.data(), {6});
    opt.exclude_zeros = true;
    const auto s = nl::sample_stats(nl::make_view<const double>(v.data(), {6}), opt);
    EXPECT_EQ(s.n, 3u);
    EXPECT_EQ(s.zeros_excluded, 2u);
    EXPECT_DOUBLE_EQ(s.mean, 4.0);
    EXPECT_DOUBLE_EQ(s.std, std::sqrt(2.0 / 3.0));
    EXPECT_DOUBLE_EQ(s.mean_sq, 50.0 / 3.0);
}

TEST(Sigma, BadSamplesThrow) {
    std::vector<double> flat(10, 2.0), zeros(10, 0.0), neg{1, -1}, nan{1, NAN};
    auto est = [](std::vector<double>& v, nl::SigmaMethod m) {
        return nl::estimate_sigma(nl::make_view<const double>(v.data(), {v.size()}), m);
    };
    EXPECT_THROW(est(flat, nl::SigmaMethod::std_dev), std::invalid_argument);
    EXPECT_NO_THROW(est(flat, nl::SigmaMethod::mle));
    EXPECT_THROW(est(zeros, nl::SigmaMethod::mle), std::invalid_argument);
    EXPECT_THROW(est(neg, nl::SigmaMethod::mle), std::invalid_argument);
    EXPECT_THROW(est(nan, nl::SigmaMethod::mle), std::invalid_argument);
    EXPECT_THROW(nl::estimate_sigma(nl::make_view<const double>(flat.data(), {10}), nl::SigmaMethod::mle, 0),
                 std::invalid_argument);
}

TEST(Sigma, DeterministicForAnyThreadCount) {
    auto bg = chi_background(300000, 3.0, 1, 9);
    auto view = nl::make_view<const double>(bg.data(), {300, 1000});
    nl::SampleOptions one, many;
    one.threads = 1;
    many.threads = 3;
    const auto a = nl::sample_stats(view, one), b = nl::sample_stats(view, many);
    EXPECT_EQ(a.mean, b.mean);
    EXPECT_EQ(a.std, b.std);
    EXPECT_EQ(a.mean_sq, b.mean_sq);
}

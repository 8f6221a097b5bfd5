#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "noiselab/correct.hpp"
#include "reference.hpp"

namespace nl = noiselab;

namespace {

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
    return std::vector<T>(v.begin(), v.end());
}

/// The lmmse A^2 of a voxel, as Aja-Fernandez et al. write it.
double lmmse_a2(double v, double m2, double m4, double sigma, double coils) {
    const double var = m4 - m2 * m2;
    const double gain = 1 - 4 * sigma * sigma * (m2 - coils * sigma * sigma) / var;
    const double k = var > 0 ? std::clamp(gain, 0.0, 1.0) : 0.0;
    return m2 - 2 * coils * sigma * sigma + k * (v * v - m2);
}

/// Its bias-corrected root, Re sqrt(A^2 + i s/2) with s^2 the variance of the A^2 estimate
/// from n voxels, written from the definition with std::complex rather than the kernel's
/// real form.
double lmmse_root(double v, double m2, double m4, double sigma, double coils, double n) {
    const double var = m4 - m2 * m2;
    const double gain = 1 - 4 * sigma * sigma * (m2 - coils * sigma * sigma) / var;
    const double k = var > 0 ? std::clamp(gain, 0.0, 1.0) : 0.0;
    const double a2 = lmmse_a2(v, m2, m4, sigma, coils);
    const double s2 = 4 * sigma * sigma *
                      (k * k * (std::max(a2, 0.0) + coils * sigma * sigma) +
                       (1 - k * k) * std::max(m2 - coils * sigma * sigma, 0.0) / n);
    return std::sqrt(std::complex<double>(a2, std::sqrt(s2) / 2)).real();
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
        ASSERT_NEAR(out[i], lmmse_root(in[i], m2[i], m4[i], sigma, N, 25), 1e-5 * (1 + out[i])) << i;
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

TEST(Correct, EveryVoxelIsCountedOnceWhateverTheWindowsAndThreads) {
    // The sweep checks each input voxel when it first loads it: in the window a block of
    // work starts from, or as it enters the window. Zeros, negatives, NaN and inf scattered
    // through volumes of every kind, with windows short, long and longer than the axes.
    struct Layout {
        std::array<std::size_t, 4> shape;
        std::size_t ndim;
        nl::Window window;
    };
    const Layout layouts[] = {
        {{1, 70, 9, 11}, 3, {10, 4, 3}},  {{1, 70, 9, 11}, 3, {1, 4, 3}},   {{1, 1, 75, 9}, 2, {7, 5}},
        {{1, 1, 75, 9}, 2, {1, 5}},       {{1, 1, 1, 50}, 1, {9}},          {{9, 5, 6, 7}, 4, {3, 4, 2, 1}},
        {{9, 5, 6, 7}, 4, {1, 4, 2, 3}},  {{1, 5, 3, 4}, 3, {13, 9, 11}},  {{1, 40, 6, 5}, 3, {2, 1, 1}}};
    for (const Layout& lay : layouts) {
        ref::Array x = ref::random_array(lay.shape, 47, -5.0, 50.0);
        std::mt19937 gen(53);
        for (auto& v : x.v) {
            const unsigned r = gen() % 50;
            if (r == 0) v = 0.0;
            else if (r == 1) v = std::nan("");
            else if (r == 2) v = INFINITY;
        }
        std::vector<std::uint8_t> mask(x.v.size());
        for (auto& m : mask) m = gen() % 5 != 0;
        std::vector<float> in = cast<float>(x.v);
        nl::ArrayView<const float> iv;
        iv.data = in.data();
        iv.ndim = lay.ndim;
        nl::ArrayView<const std::uint8_t> mv;
        mv.data = mask.data();
        mv.ndim = lay.ndim;
        std::ptrdiff_t stride = 1;
        for (std::size_t k = lay.ndim; k-- > 0;) {
            iv.shape[k] = mv.shape[k] = lay.shape[4 - lay.ndim + k];
            iv.strides[k] = mv.strides[k] = stride;
            stride *= static_cast<std::ptrdiff_t>(iv.shape[k]);
        }
        for (bool masked : {false, true}) {
            std::size_t n = 0, nonfinite = 0, negative = 0, zeros = 0;
            double lo = INFINITY, hi = -INFINITY;
            for (std::size_t i = 0; i < in.size(); ++i) {
                if (masked && !mask[i]) continue;
                const float v = in[i];
                ++n;
                nonfinite += !std::isfinite(v);
                negative += v < 0;
                zeros += v == 0;
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            for (int t : {1, 3}) {
                for (auto method : {nl::Correction::moments, nl::Correction::lmmse}) {
                    nl::CorrectionOptions opt;
                    opt.threads = t;
                    opt.method = method;
                    if (masked) opt.mask = mv;
                    std::vector<float> out(in.size());
                    nl::ArrayView<float> ov;
                    ov.data = out.data();
                    ov.ndim = lay.ndim;
                    ov.shape = iv.shape;
                    ov.strides = iv.strides;
                    const auto rep = nl::correct(iv, ov, 2.0, lay.window, opt);
                    const std::string where = std::to_string(lay.ndim) + "-D " + std::to_string(in.size()) +
                                              (masked ? " masked" : "") + ", threads " + std::to_string(t);
                    EXPECT_EQ(rep.n, n) << where;
                    EXPECT_EQ(rep.nonfinite, nonfinite) << where;
                    EXPECT_EQ(rep.negative, negative) << where;
                    EXPECT_EQ(rep.zeros, zeros) << where;
                    EXPECT_EQ(rep.min, lo) << where;
                    EXPECT_EQ(rep.max, hi) << where;
                }
            }
        }
    }
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

TEST(Correct, MaskedLmmseMatchesTheFormulaIn3D) {
    const ref::Array x = ref::random_array({1, 9, 10, 11}, 29, 0.0, 20.0);
    std::vector<unsigned char> keep(x.v.size());
    std::mt19937 gen(31);
    for (auto& k : keep) k = gen() % 4 != 0;
    const std::vector<std::uint8_t> mask(keep.begin(), keep.end());
    const double sigma = 3.0, N = 2;
    const auto m2 = ref::box_mean(x, {1, 3, 4, 5}, [](double v) { return v * v; }, keep);
    const auto m4 = ref::box_mean(x, {1, 3, 4, 5}, [](double v) { return v * v * v * v; }, keep);
    ref::Array kept{x.shape, std::vector<double>(keep.begin(), keep.end())};
    const auto fraction = ref::box_mean(kept, {1, 3, 4, 5}, [](double v) { return v; });
    nl::CorrectionOptions opt;
    opt.method = nl::Correction::lmmse;
    opt.coils = 2;
    opt.mask = nl::make_view<const std::uint8_t>(mask.data(), {9, 10, 11});
    std::vector<float> in = cast<float>(x.v), out(in.size());
    const auto rep = nl::correct(nl::make_view<const float>(in.data(), {9, 10, 11}),
                                 nl::make_view(out.data(), {9, 10, 11}), sigma, nl::Window{3, 4, 5}, opt);
    std::size_t clamped = 0;
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (!mask[i]) {
            ASSERT_EQ(out[i], in[i]) << i;
            continue;
        }
        clamped += lmmse_a2(in[i], m2[i], m4[i], sigma, N) < 0;
        const double n = std::round(fraction[i] * 60);  // voxels of the mask in the window
        ASSERT_NEAR(out[i], lmmse_root(in[i], m2[i], m4[i], sigma, N, n), 1e-5 * (1 + out[i])) << i;
    }
    EXPECT_EQ(rep.clamped, clamped);
    EXPECT_GT(clamped, 0u);
}

TEST(Correct, LmmseWithNoGainHasTheMomentsAndTheWindowsSpread) {
    // M in [99, 101]: the variance of M^2 is at most 200^2, below 4 sigma^2 (<M^2> - sigma^2)
    // for sigma = 1.5, so K clamps to 0 everywhere: A^2 is the moments' to the bit, and the
    // root's s^2 is 4 sigma^2 (<M^2> - sigma^2) / n.
    const ref::Array x = ref::random_array({1, 12, 13, 35}, 37, 99.0, 101.0);
    std::vector<float> in = cast<float>(x.v), a(in.size()), b(in.size());
    const auto iv = nl::make_view<const float>(in.data(), {12, 13, 35});
    nl::CorrectionOptions opt;
    nl::correct(iv, nl::make_view(a.data(), {12, 13, 35}), 1.5, nl::Window{3, 4, 5}, opt);
    opt.method = nl::Correction::lmmse;
    nl::correct(iv, nl::make_view(b.data(), {12, 13, 35}), 1.5, nl::Window{3, 4, 5}, opt);
    const ref::Array rounded{x.shape, std::vector<double>(in.begin(), in.end())};  // the float input
    const auto m2 = ref::box_mean(rounded, {1, 3, 4, 5}, [](double v) { return v * v; });
    for (std::size_t i = 0; i < in.size(); ++i) {
        const double a2 = m2[i] - 2 * 1.5 * 1.5, s = std::sqrt(4 * 1.5 * 1.5 * (m2[i] - 1.5 * 1.5) / 60);
        ASSERT_NEAR(a[i], std::sqrt(a2), 1e-5 * a[i]) << i;
        ASSERT_NEAR(b[i], std::sqrt(std::complex<double>(a2, s / 2)).real(), 1e-5 * b[i]) << i;
        ASSERT_GT(b[i], a[i]) << i;  // the bias-corrected root lifts a positive A^2's root
    }
}

TEST(Correct, OneRootOutsideFloatSendsOnlyItsStretchToTheExactPath) {
    // One A^2 above FLT_MAX among ordinary ones: the stretch of the row that holds it is done
    // again, with the double root where the float one does not fit. Every voxel must still
    // be the float root of A^2 where A^2 is a normal float, the rounded double root elsewhere.
    const ref::Array x = ref::random_array({1, 1, 2, 600}, 41, 1.0, 100.0);
    std::vector<float> in = cast<float>(x.v);
    in[600 + 300] = 3e19f;  // A^2 = 9e38 > FLT_MAX
    for (auto method : {nl::Correction::moments, nl::Correction::lmmse}) {
        nl::CorrectionOptions opt;
        opt.method = method;
        std::vector<float> out(in.size());
        nl::correct(nl::make_view<const float>(in.data(), {2, 600}), nl::make_view(out.data(), {2, 600}), 0.5,
                    nl::Window{1, 1}, opt);
        for (std::size_t i = 0; i < in.size(); ++i) {
            const double v = in[i];
            double q = std::max(v * v - 0.5, 0.0);
            const bool fits = q <= std::numeric_limits<float>::max();
            if (method == nl::Correction::lmmse) {
                // A window of 1: K = 0, and s/2 = sqrt(sigma^2 (M^2 - sigma^2)) (all v >= 1).
                const double a2 = v * v - 0.5, t = 0.25 * (v * v - 0.25);
                q = fits ? 0.5 * (std::sqrt(a2 * a2 + t) + a2) : 0.5 * a2 + 0.5 * std::hypot(a2, 0.5 * std::sqrt(t / 0.25));
            }
            ASSERT_EQ(out[i], fits ? std::sqrt(static_cast<float>(q)) : static_cast<float>(std::sqrt(q))) << i;
        }
    }
}

TEST(Correct, FourDimensionalAndMaskedSweepsAreThreadIndependent) {
    // Volumes last (a window of 1 on the last axis) and a mask, lmmse: every block of work
    // restarts its running sums, so the thread count cannot change a bit.
    const ref::Array x = ref::random_array({17, 6, 5, 8}, 43, 0.0, 1000.0);
    std::vector<float> in = cast<float>(x.v);
    std::vector<std::uint8_t> mask(in.size());
    for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = i % 7 != 0;
    for (bool masked : {false, true}) {
        std::vector<float> base;
        for (int t : {1, 2, 3}) {
            nl::CorrectionOptions opt;
            opt.threads = t;
            opt.method = nl::Correction::lmmse;
            if (masked) opt.mask = nl::make_view<const std::uint8_t>(mask.data(), {17, 6, 5, 8});
            std::vector<float> out(in.size());
            nl::correct(nl::make_view<const float>(in.data(), {17, 6, 5, 8}), nl::make_view(out.data(), {17, 6, 5, 8}),
                        60.0, nl::Window{10, 3, 4, 1}, opt);
            if (base.empty()) base = out;
            else EXPECT_EQ(out, base) << t << " threads, masked " << masked;
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

// The typed cases of correct_stored() against its definition (see test_stored.cpp), as a
// type-parameterised suite: instantiated in two translation units, which compile in parallel
// (one unit for every type took over two minutes).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "noiselab/correct.hpp"

namespace nl = noiselab;

namespace {

/// One case: an image of stored values and how it converts.
template <class T>
struct Case {
    std::vector<std::size_t> shape;
    std::vector<T> v;
    std::vector<double> scale, offset, out_scale, out_offset;  // empty: the identity (skipped)
    double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    nl::Window window{};
    double sigma = 1.0;
    nl::CorrectionOptions opt{};
    bool single = false;

    std::size_t per_slice() const { return v.size() / shape[0]; }
};

nl::ArrayView<const double> view1(const std::vector<double>& a) {
    return a.empty() ? nl::ArrayView<const double>{} : nl::make_view(a.data(), {a.size()});
}

double at(const std::vector<double>& a, std::size_t s) { return a.size() == 1 ? a[0] : a[s]; }

/// The numpy sequence, one voxel at a time: m = v.astype(float64); m *= scale; m += offset
/// (skipped for the identity); correct; y *= out_scale; y -= out_offset (skipped likewise);
/// rint; clip; astype.
template <class T>
std::vector<T> reference(const Case<T>& c, nl::CorrectionReport& rep) {
    std::vector<double> m(c.v.size());
    for (std::size_t i = 0; i < m.size(); ++i) {
        const std::size_t s = i / c.per_slice();
        m[i] = static_cast<double>(c.v[i]);
        if (!c.scale.empty()) m[i] *= at(c.scale, s);
        if (!c.offset.empty()) m[i] += at(c.offset, s);
    }
    std::vector<double> a(m.size());
    if (c.single) {
        std::vector<float> mf(m.begin(), m.end()), af(m.size());
        rep = nl::correct(nl::make_view<const float>(mf.data(), c.shape), nl::make_view(af.data(), c.shape), c.sigma,
                          c.window, c.opt);
        std::copy(af.begin(), af.end(), a.begin());
    } else {
        rep = nl::correct(nl::make_view<const double>(m.data(), c.shape), nl::make_view(a.data(), c.shape), c.sigma,
                          c.window, c.opt);
    }
    std::vector<T> out(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        const std::size_t s = i / c.per_slice();
        double y = a[i];
        if (!c.out_scale.empty()) y *= at(c.out_scale, s);
        if (!c.out_offset.empty()) y -= at(c.out_offset, s);
        if constexpr (std::is_integral_v<T>) {
            const double lo = std::isinf(c.lo) ? static_cast<double>(std::numeric_limits<T>::lowest()) : c.lo;
            const double hi = std::isinf(c.hi) ? static_cast<double>(std::numeric_limits<T>::max()) : c.hi;
            y = std::min(std::max(std::nearbyint(y), lo), hi);
        }
        out[i] = static_cast<T>(y);
    }
    return out;
}

template <class T>
std::vector<T> fused(const Case<T>& c, nl::CorrectionReport& rep) {
    nl::StoredOptions o;
    o.correction = c.opt;
    o.scale = view1(c.scale);
    o.offset = view1(c.offset);
    o.out_scale = view1(c.out_scale);
    o.out_offset = view1(c.out_offset);
    o.lo = c.lo;
    o.hi = c.hi;
    o.single = c.single;
    std::vector<T> out(c.v.size());
    rep = nl::correct_stored(nl::make_view<const T>(c.v.data(), c.shape), nl::make_view(out.data(), c.shape),
                             c.sigma, c.window, o);
    return out;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// Random stored values: about 1% at each end of the type's range (or of a float range),
/// the rest an image: a bright block on noise, negative where the type is signed.
template <class T>
std::vector<T> random_stored(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    const double lowest = std::is_integral_v<T> ? static_cast<double>(std::numeric_limits<T>::lowest()) : -3.0e4;
    const double highest = std::is_integral_v<T> ? static_cast<double>(std::numeric_limits<T>::max()) : 3.0e4;
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::normal_distribution<double> noise(0.0, 1.0);
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        const double r = u(gen);
        double x;
        if (r < 0.01) x = lowest;
        else if (r < 0.02) x = highest;
        else {
            const double level = (i / 7) % 3 == 0 ? 0.4 * highest : 0.02 * highest;
            x = std::abs(level + 0.01 * highest * noise(gen));
            if (lowest < 0 && u(gen) < 0.1) x = -x;
        }
        if constexpr (std::is_integral_v<T>) x = std::min(std::max(std::round(x), lowest), highest);
        v[i] = static_cast<T>(x);
    }
    return v;
}

template <class T>
double magnitude_scale() {
    return std::is_integral_v<T> ? static_cast<double>(std::numeric_limits<T>::max()) : 3.0e4;
}


// Names the cases by numpy's names of the types.
struct TypeNames {
    template <class T>
    static std::string GetName(int) {
        if constexpr (std::is_floating_point_v<T>) return sizeof(T) == 4 ? "float32" : "float64";
        else return (std::is_signed_v<T> ? "int" : "uint") + std::to_string(8 * sizeof(T));
    }
};
template <class T>
class Stored : public ::testing::Test {};
TYPED_TEST_SUITE_P(Stored);

}  // namespace

TYPED_TEST_P(Stored, EqualsTheNumpySequenceBitForBit) {
    using T = TypeParam;
    const std::vector<std::vector<std::size_t>> shapes{{5, 19, 23}, {23, 37}, {3, 4, 9, 11}, {61}};
    unsigned seed = 1;
    for (const auto& shape : shapes) {
        const std::size_t nd = shape.size();
        std::size_t n = 1;
        for (auto e : shape) n *= e;
        const std::vector<nl::Window> windows = nd == 3   ? std::vector<nl::Window>{{1, 9, 9}, {3, 5, 5}}
                                                : nd == 2 ? std::vector<nl::Window>{{9, 9}, {1, 1}}
                                                : nd == 4 ? std::vector<nl::Window>{{1, 3, 5, 5}}
                                                          : std::vector<nl::Window>{{7}};
        for (const auto& window : windows)
            for (int rescale = 0; rescale < 3; ++rescale)  // identity, per slice, one for all
                for (auto method : {nl::Correction::moments, nl::Correction::lmmse})
                    for (int masked = 0; masked < 2; ++masked)
                        for (int threads : {1, 2}) {
                            if (rescale == 1 && nd == 1) continue;  // a 1-D image has no slices
                            Case<T> c;
                            c.shape = shape;
                            c.v = random_stored<T>(n, seed++);
                            c.window = window;
                            c.sigma = 0.01 * magnitude_scale<T>();
                            c.opt.method = method;
                            c.opt.threads = threads;
                            std::vector<std::uint8_t> mask(n);
                            for (std::size_t i = 0; i < n; ++i) mask[i] = (i * 7919) % 5 != 0;
                            if (masked) c.opt.mask = nl::make_view<const std::uint8_t>(mask.data(), shape);
                            if (rescale > 0) {
                                // As DICOM's slope and intercept per slice: magnitude in the first
                                // slice's units (unit = slope[0]).
                                const std::size_t ns = rescale == 1 ? shape[0] : 1;
                                std::mt19937 gen(seed);
                                std::uniform_real_distribution<double> slope(0.3, 3.0), inter(-500.0, 500.0);
                                std::vector<double> sl(ns), ic(ns);
                                for (std::size_t s = 0; s < ns; ++s) sl[s] = slope(gen), ic[s] = inter(gen);
                                const double unit = sl[0];
                                for (std::size_t s = 0; s < ns; ++s) {
                                    c.scale.push_back(sl[s] / unit);
                                    c.offset.push_back(ic[s] / unit);
                                    c.out_scale.push_back(unit / sl[s]);
                                    c.out_offset.push_back(ic[s] / sl[s]);
                                }
                            }
                            if constexpr (std::is_integral_v<T>) {
                                if (seed % 3 == 0) {  // narrower bounds, as BitsStored gives them
                                    c.lo = std::is_signed_v<T> ? -static_cast<double>(std::numeric_limits<T>::max() / 4) : 0.0;
                                    c.hi = static_cast<double>(std::numeric_limits<T>::max() / 4);
                                }
                            }
                            nl::CorrectionReport want_rep, got_rep;
                            const auto want = reference(c, want_rep);
                            const auto got = fused(c, got_rep);
                            const std::string where = "shape " + std::to_string(nd) + "-D, window " +
                                                      std::to_string(window[0]) + ", rescale " + std::to_string(rescale) +
                                                      ", lmmse " + std::to_string(method == nl::Correction::lmmse) +
                                                      ", masked " + std::to_string(masked) + ", threads " +
                                                      std::to_string(threads);
                            ASSERT_TRUE(same_bits(want, got)) << where;
                            EXPECT_EQ(got_rep.n, want_rep.n) << where;
                            EXPECT_EQ(got_rep.negative, want_rep.negative) << where;
                            EXPECT_EQ(got_rep.zeros, want_rep.zeros) << where;
                            EXPECT_EQ(got_rep.nonfinite, want_rep.nonfinite) << where;
                            EXPECT_EQ(got_rep.clamped, want_rep.clamped) << where;
                            EXPECT_EQ(got_rep.min, want_rep.min) << where;
                            EXPECT_EQ(got_rep.max, want_rep.max) << where;
                        }
    }
}

TYPED_TEST_P(Stored, SinglePrecisionEqualsTheFloatCorrection) {
    using T = TypeParam;
    if constexpr (nl::detail::single_ok<T>) {
        for (auto method : {nl::Correction::moments, nl::Correction::lmmse}) {
            Case<T> c;
            c.shape = {4, 21, 18};
            c.v = random_stored<T>(4 * 21 * 18, 99);
            c.window = {1, 9, 9};
            c.sigma = 0.01 * magnitude_scale<T>();
            c.opt.method = method;
            c.single = true;
            nl::CorrectionReport r1, r2;
            ASSERT_TRUE(same_bits(reference(c, r1), fused(c, r2)));
        }
    } else {
        Case<T> c;
        c.shape = {2, 3};
        c.v.assign(6, T(1));
        c.single = true;
        c.window = {1, 1};
        nl::CorrectionReport r;
        EXPECT_THROW(fused(c, r), std::invalid_argument);
    }
}

REGISTER_TYPED_TEST_SUITE_P(Stored, EqualsTheNumpySequenceBitForBit, SinglePrecisionEqualsTheFloatCorrection);

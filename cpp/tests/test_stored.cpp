// correct_stored() against its definition: the stored values converted to a double (or
// float) magnitude by a scalar loop, the magnitude corrected by correct(), and the result
// converted back by another scalar loop with std::nearbyint and std::min/std::max. The
// claim under test is the fused conversion, so correct() is the reference for the middle.
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

template <class T>
class Stored : public ::testing::Test {};

using StoredTypes = ::testing::Types<std::int8_t, std::uint8_t, std::int16_t, std::uint16_t, std::int32_t,
                                     std::uint32_t, float, double>;
// Names the cases by numpy's names of the types.
struct TypeNames {
    template <class T>
    static std::string GetName(int) {
        if constexpr (std::is_floating_point_v<T>) return sizeof(T) == 4 ? "float32" : "float64";
        else return (std::is_signed_v<T> ? "int" : "uint") + std::to_string(8 * sizeof(T));
    }
};
TYPED_TEST_SUITE(Stored, StoredTypes, TypeNames);

}  // namespace

TYPED_TEST(Stored, EqualsTheNumpySequenceBitForBit) {
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

TYPED_TEST(Stored, SinglePrecisionEqualsTheFloatCorrection) {
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

TEST(StoredConversion, RoundsHalfToEvenAndClips) {
    // Window 1 and sigma 0: the corrected magnitude is the magnitude itself, m = 2 v, and
    // y = m / 4 = v / 2 has halves to round to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 4.5 -> 4,
    // 3.5 -> 4, 5.5 -> 6, 6.5 -> 6, 10.5 -> 10; then [lo, hi] = [-3, 5] clips the last three.
    std::vector<std::int16_t> v{1, 3, 5, 9, 7, 11, 13, 21};
    std::vector<std::int16_t> out(v.size());
    const std::vector<double> scale{2.0}, offset{0.0}, out_scale{0.25}, out_offset{0.0};
    nl::StoredOptions o;
    o.scale = view1(scale), o.offset = view1(offset), o.out_scale = view1(out_scale), o.out_offset = view1(out_offset);
    o.lo = -3, o.hi = 5;
    nl::correct_stored(nl::make_view<const std::int16_t>(v.data(), {v.size()}), nl::make_view(out.data(), {v.size()}),
                       0.0, nl::Window{1}, o);
    EXPECT_EQ(out, (std::vector<std::int16_t>{0, 2, 2, 4, 4, 5, 5, 5}));
    // The offset is subtracted: y = v / 2 - 4 = -3.5, -2.5, -1.5, 0.5, -0.5, 1.5, 2.5, 6.5.
    const std::vector<double> four{4.0};
    o.out_offset = view1(four);
    nl::correct_stored(nl::make_view<const std::int16_t>(v.data(), {v.size()}), nl::make_view(out.data(), {v.size()}),
                       0.0, nl::Window{1}, o);
    EXPECT_EQ(out, (std::vector<std::int16_t>{-3, -2, -2, 0, 0, 2, 2, 5}));
}

TEST(StoredConversion, IdentityKeepsEveryBitOfFloatsOutsideTheMask) {
    // -0.0, subnormals and NaN outside the mask come back as they were; -0.0 + 0.0 would
    // have turned into +0.0.
    std::vector<double> v{-0.0, 4.9e-324, std::numeric_limits<double>::quiet_NaN(), -7.5, 3.0, 4.0};
    std::vector<std::uint8_t> mask{0, 0, 0, 0, 1, 1};
    std::vector<double> out(v.size());
    nl::StoredOptions o;
    o.correction.mask = nl::make_view<const std::uint8_t>(mask.data(), {6});
    nl::correct_stored(nl::make_view<const double>(v.data(), {6}), nl::make_view(out.data(), {6}), 1.0,
                       nl::Window{1}, o);
    EXPECT_TRUE(std::signbit(out[0]) && out[0] == 0.0);
    EXPECT_EQ(out[1], v[1]);
    EXPECT_TRUE(std::isnan(out[2]));
    EXPECT_EQ(out[3], -7.5);
    EXPECT_EQ(out[4], std::sqrt(9.0 - 2.0));
    EXPECT_EQ(out[5], std::sqrt(16.0 - 2.0));
}

TEST(StoredConversion, StridedViewsAndBigUnsignedValues) {
    // Every other column of a reversed-row image, uint32 near 2^32: the same as a copy.
    const std::size_t rows = 13, cols = 40;
    std::vector<std::uint32_t> base = random_stored<std::uint32_t>(rows * cols, 5);
    for (std::size_t i = 0; i < base.size(); i += 3) base[i] = 4294967295u - static_cast<std::uint32_t>(i);
    nl::ArrayView<const std::uint32_t> strided;
    strided.data = base.data() + (rows - 1) * cols;
    strided.ndim = 2;
    strided.shape = {rows, cols / 2};
    strided.strides = {-static_cast<std::ptrdiff_t>(cols), 2};
    std::vector<std::uint32_t> copy;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t x = 0; x < cols / 2; ++x) copy.push_back(base[(rows - 1 - r) * cols + 2 * x]);
    const std::vector<double> scale{1.5}, offset{-7.0}, out_scale{1.0 / 1.5}, out_offset{-7.0 / 1.5};
    for (const nl::Window& window : {nl::Window{5, 5}, nl::Window{1, 1}})
        for (auto method : {nl::Correction::moments, nl::Correction::lmmse}) {
            nl::StoredOptions o;
            o.correction.method = method;
            o.scale = view1(scale), o.offset = view1(offset), o.out_scale = view1(out_scale),
            o.out_offset = view1(out_offset);
            std::vector<std::uint32_t> a(copy.size()), b(copy.size());
            nl::correct_stored(strided, nl::make_view(a.data(), {rows, cols / 2}), 3.0e7, window, o);
            nl::correct_stored(nl::make_view<const std::uint32_t>(copy.data(), {rows, cols / 2}),
                               nl::make_view(b.data(), {rows, cols / 2}), 3.0e7, window, o);
            EXPECT_EQ(a, b);
            // Pointwise, the big values stay big: above 2^31, where a signed conversion would wrap.
            if (window[0] == 1) {
                EXPECT_GT(*std::max_element(a.begin(), a.end()), 4000000000u);
            }
        }
}

TEST(StoredConversion, BadArgumentsThrow) {
    std::vector<std::int16_t> v(12, 1), out(12);
    auto in = nl::make_view<const std::int16_t>(v.data(), {3, 4});
    auto o = nl::make_view(out.data(), {3, 4});
    const std::vector<double> two{1.0, 2.0}, three{1.0, 2.0, 3.0};
    nl::StoredOptions opt;
    opt.scale = view1(two);  // neither one value nor one per slice
    EXPECT_THROW(nl::correct_stored(in, o, 1.0, nl::Window{1, 1}, opt), std::invalid_argument);
    opt.scale = view1(three);
    EXPECT_NO_THROW(nl::correct_stored(in, o, 1.0, nl::Window{1, 1}, opt));
    opt = {};
    opt.lo = 0.5;
    EXPECT_THROW(nl::correct_stored(in, o, 1.0, nl::Window{1, 1}, opt), std::invalid_argument);
    opt.lo = -40000;  // outside int16
    EXPECT_THROW(nl::correct_stored(in, o, 1.0, nl::Window{1, 1}, opt), std::invalid_argument);
    opt.lo = 10, opt.hi = 5;
    EXPECT_THROW(nl::correct_stored(in, o, 1.0, nl::Window{1, 1}, opt), std::invalid_argument);
    opt = {};
    opt.single = true;
    opt.offset = view1(three);  // single precision takes no input rescale
    EXPECT_THROW(nl::correct_stored(in, o, 1.0, nl::Window{1, 1}, opt), std::invalid_argument);
    opt = {};
    EXPECT_THROW(nl::correct_stored(in, o, -1.0, nl::Window{1, 1}, opt), std::invalid_argument);
    // A 1-D image has no slices: one value only.
    std::vector<std::int16_t> line(3, 1), line_out(3);
    opt.scale = view1(three);
    EXPECT_THROW(nl::correct_stored(nl::make_view<const std::int16_t>(line.data(), {3}),
                                    nl::make_view(line_out.data(), {3}), 1.0, nl::Window{1}, opt),
                 std::invalid_argument);
    // Floating-point values are not clipped.
    std::vector<float> f(12, 1.0f), fo(12);
    opt = {};
    opt.hi = 100;
    EXPECT_THROW(nl::correct_stored(nl::make_view<const float>(f.data(), {3, 4}), nl::make_view(fo.data(), {3, 4}),
                                    1.0, nl::Window{1, 1}, opt),
                 std::invalid_argument);
}

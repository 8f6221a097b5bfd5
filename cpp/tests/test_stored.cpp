// correct_stored() against its definition: the stored values converted to a double (or
// float) magnitude by a scalar loop, the magnitude corrected by correct(), and the result
// converted back by another scalar loop with std::nearbyint and std::min/std::max. The
// claim under test is the fused conversion, so correct() is the reference for the middle.
#include "stored_cases.hpp"

namespace {
using WideTypes = ::testing::Types<std::int32_t, std::uint32_t, float, double>;
}  // namespace
INSTANTIATE_TYPED_TEST_SUITE_P(Wide, Stored, WideTypes, TypeNames);

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

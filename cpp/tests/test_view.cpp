// The view API as a caller meets it: mutable views passed as inputs, shapes known only
// at run time, and outputs that share memory with an input.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "noiselab/correct.hpp"
#include "reference.hpp"

namespace nl = noiselab;

namespace {

// Only the read-only direction converts, and never across element types.
static_assert(std::is_convertible_v<nl::ArrayView<float>, nl::ArrayView<const float>>);
static_assert(std::is_convertible_v<nl::ArrayView<std::uint8_t>, nl::ArrayView<const std::uint8_t>>);
static_assert(!std::is_convertible_v<nl::ArrayView<const float>, nl::ArrayView<float>>);
static_assert(!std::is_convertible_v<nl::ArrayView<float>, nl::ArrayView<const double>>);
static_assert(!std::is_convertible_v<nl::ArrayView<double>, nl::ArrayView<const float>>);

// Pointwise moments (a window of 1 on every axis): A = sqrt(max(M^2 - 2 sigma^2, 0)).
double pointwise(double m, double sigma) { return std::sqrt(std::max(m * m - 2 * sigma * sigma, 0.0)); }

// A size given the way itk::Size gives one: x (fastest in memory) first, with begin() and end().
struct XFirstSize {
    unsigned long v[3];
    const unsigned long* begin() const { return v; }
    const unsigned long* end() const { return v + 3; }
};

template <class T>
void expect_c_order(const nl::ArrayView<T>& v, std::vector<std::size_t> shape) {
    ASSERT_EQ(v.ndim, shape.size());
    std::ptrdiff_t stride = 1;  // C order by hand: the last axis has stride 1
    for (std::size_t k = shape.size(); k-- > 0;) {
        EXPECT_EQ(v.shape[k], shape[k]) << "axis " << k;
        EXPECT_EQ(v.strides[k], stride) << "axis " << k;
        stride *= static_cast<std::ptrdiff_t>(shape[k]);
    }
}

// Runs `f`, which must throw std::invalid_argument naming `what`.
template <class F>
void expect_refused(F f, const std::string& what) {
    try {
        f();
        ADD_FAILURE() << "not refused: " << what;
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("overlaps " + what), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("separate buffer"), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(View, MutableViewIsAnInput) {
    std::vector<double> image{0.5, 1.0, 2.0, 3.0, 4.0, 7.5}, out(6);
    const double sigma = 1.2;
    const auto in = nl::make_view(image.data(), {2, 3});  // ArrayView<double>, no as_const()
    const nl::ArrayView<const double> read_only = in;
    EXPECT_EQ(read_only.data, image.data());
    EXPECT_EQ(read_only.ndim, in.ndim);
    EXPECT_EQ(read_only.shape, in.shape);
    EXPECT_EQ(read_only.strides, in.strides);
    nl::correct(nl::make_view(image.data(), {2, 3}), nl::make_view(out.data(), {2, 3}), sigma,
                nl::Window{1, 1});
    for (std::size_t i = 0; i < out.size(); ++i) EXPECT_DOUBLE_EQ(out[i], pointwise(image[i], sigma)) << i;

    std::vector<float> fimage(image.begin(), image.end()), fout(6);
    nl::CorrectionOptions opt;
    std::vector<std::uint8_t> mask{1, 1, 0, 1, 1, 1};
    opt.mask = nl::make_view(mask.data(), {2, 3});  // a mutable mask view too
    nl::correct(nl::make_view(fimage.data(), {2, 3}), nl::make_view(fout.data(), {2, 3}), sigma,
                nl::Window{1, 1}, opt);
    for (std::size_t i = 0; i < fout.size(); ++i)
        EXPECT_FLOAT_EQ(fout[i], mask[i] ? static_cast<float>(pointwise(fimage[i], sigma)) : fimage[i]) << i;
}

TEST(View, RuntimeShapes) {
    float buf[4 * 5 * 6] = {};
    expect_c_order(nl::make_view(buf, std::array<std::size_t, 3>{4, 5, 6}), {4, 5, 6});
    expect_c_order(nl::make_view(buf, std::vector<long>{20, 6}), {20, 6});
    const int dims[4] = {2, 2, 5, 6};
    expect_c_order(nl::make_view(buf, dims), {2, 2, 5, 6});
    const std::int64_t rank_then_dims[5] = {3, 4, 5, 6, 1};  // as a C interface passes them
    expect_c_order(nl::make_view(buf, rank_then_dims + 1, static_cast<std::size_t>(rank_then_dims[0])),
                   {4, 5, 6});
    expect_c_order(nl::make_view(buf, XFirstSize{{6, 5, 4}}), {6, 5, 4});  // any range of integers
}

TEST(View, SizesListedXFirst) {
    // nx = 6, ny = 5, nz = 4, x fastest in memory: the voxel (x, y, z) holds x + 10 y + 100 z.
    std::vector<float> buf;
    for (int z = 0; z < 4; ++z)
        for (int y = 0; y < 5; ++y)
            for (int x = 0; x < 6; ++x) buf.push_back(static_cast<float>(x + 10 * y + 100 * z));
    const std::vector<unsigned> sitk_size{6, 5, 4};  // SimpleITK's GetSize()
    const std::int64_t nifti_dim[8] = {3, 6, 5, 4, 1, 1, 1, 1};
    for (const auto& v : {nl::make_view(buf.data(), nl::shape_from_x_first(XFirstSize{{6, 5, 4}})),
                          nl::make_view(buf.data(), nl::shape_from_x_first(sitk_size)),
                          nl::make_view(buf.data(), nl::shape_from_x_first(std::vector<std::int64_t>(
                                                        nifti_dim + 1, nifti_dim + 1 + nifti_dim[0])))}) {
        expect_c_order(v, {4, 5, 6});
        for (std::ptrdiff_t z = 0; z < 4; ++z)
            for (std::ptrdiff_t y = 0; y < 5; ++y)
                for (std::ptrdiff_t x = 0; x < 6; ++x)
                    ASSERT_EQ(v.data[z * v.strides[0] + y * v.strides[1] + x * v.strides[2]], x + 10 * y + 100 * z);
    }
}

TEST(View, RuntimeShapeErrors) {
    float x = 0;
    EXPECT_THROW(nl::make_view(&x, std::vector<std::size_t>{}), std::invalid_argument);
    EXPECT_THROW(nl::make_view(&x, std::vector<std::size_t>{1, 1, 1, 1, 1}), std::invalid_argument);
    const int five[5] = {1, 1, 1, 1, 1};
    EXPECT_THROW(nl::make_view(&x, five, 5), std::invalid_argument);
    EXPECT_THROW(nl::make_view(&x, five, 0), std::invalid_argument);
    try {
        nl::make_view(&x, std::array<int, 2>{3, -2});
        ADD_FAILURE() << "a negative extent was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("negative extent -2 on axis 1"), std::string::npos) << e.what();
    }
    const std::size_t huge = std::size_t{1} << 32;
    EXPECT_THROW(nl::make_view(&x, std::vector<std::size_t>{huge, huge, huge}), std::overflow_error);
}

TEST(View, InPlaceIsRefused) {
    std::vector<double> buf{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const std::vector<double> before = buf;
    const auto all = nl::make_view(buf.data(), {3, 4});
    expect_refused([&] { nl::correct(all, all, 1.0, nl::Window{3, 3}); }, "the image");
    EXPECT_EQ(buf, before);  // refused before anything was written
    // Rows 0-1 in, rows 1-2 out: one row shared.
    expect_refused(
        [&] {
            nl::correct(nl::make_view(buf.data(), {2, 4}), nl::make_view(buf.data() + 4, {2, 4}), 1.0,
                        nl::Window{1, 1});
        },
        "the image");
    // Even elements in, odd elements out: no element shared, but the address ranges
    // interleave, and the check compares ranges.
    nl::ArrayView<double> odd = nl::make_view(buf.data() + 1, {6});
    odd.strides[0] = 2;
    nl::ArrayView<double> even = nl::make_view(buf.data(), {6});
    even.strides[0] = 2;
    expect_refused([&] { nl::correct(even, odd, 1.0, nl::Window{1}); }, "the image");
    EXPECT_EQ(buf, before);
}

TEST(View, NegativeStridesAreMeasuredBackwards) {
    // The output starts just past the input but runs backwards into it.
    std::vector<double> buf(12, 1.0);
    const auto in = nl::make_view(buf.data(), {6});
    nl::ArrayView<double> back = nl::make_view(buf.data() + 6, {6});
    back.strides[0] = -1;  // elements 6, 5, ..., 1
    expect_refused([&] { nl::correct(in, back, 1.0, nl::Window{1}); }, "the image");
    // Starting at the last element of the second half, it stays clear of the input.
    back.data = buf.data() + 11;
    EXPECT_NO_THROW(nl::correct(in, back, 0.0, nl::Window{1}));
}

TEST(View, AdjacentBuffersAreAccepted) {
    // Input and output back to back in one allocation: no element shared, so allowed,
    // and the result is the box-mean formula (reference.hpp) as for separate buffers.
    const ref::Array x = ref::random_array({1, 1, 7, 9}, 5, 0.0, 10.0);
    const double sigma = 2.5;
    std::vector<double> buf(2 * x.v.size());
    std::copy(x.v.begin(), x.v.end(), buf.begin());
    nl::correct(nl::make_view(buf.data(), {7, 9}), nl::make_view(buf.data() + x.v.size(), {7, 9}), sigma,
                nl::Window{3, 3});
    const auto m2 = ref::box_mean(x, {1, 1, 3, 3}, [](double v) { return v * v; });
    for (std::size_t i = 0; i < x.v.size(); ++i) {
        const double want = std::sqrt(std::max(m2[i] - 2 * sigma * sigma, 0.0));
        ASSERT_NEAR(buf[x.v.size() + i], want, 1e-12 * (1 + m2[i])) << i;
    }
}

TEST(View, MaskOrSigmaMapSharingTheOutputIsRefused) {
    std::vector<double> in(8, 3.0), out(8, 0.0);
    nl::CorrectionOptions opt;
    const auto run = [&] {
        nl::correct(nl::make_view(in.data(), {8}), nl::make_view(out.data(), {8}), 1.0, nl::Window{1}, opt);
    };
    // A mask written over the output's own bytes.
    opt.mask = nl::make_view(reinterpret_cast<const std::uint8_t*>(out.data()), {8});
    expect_refused(run, "the mask");
    opt.mask = {};
    opt.sigma_map = nl::make_view(out.data(), {8});
    expect_refused(run, "sigma_map");
}

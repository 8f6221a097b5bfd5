// Non-owning N-D views over caller memory (pointer, shape, strides in elements).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace noiselab {

/// The kernels handle arrays of 1 to `max_ndim` dimensions.
inline constexpr std::size_t max_ndim = 4;

/// A strided view of an N-D array owned by the caller.
///
/// `strides` count elements, not bytes, and may be negative or zero
/// (a broadcast axis). Axis `ndim - 1` is the fastest-varying one in
/// C order, and the kernels walk it innermost. Kernel inputs are
/// `ArrayView<const T>`; an `ArrayView<T>` converts to one implicitly.
template <class T>
struct ArrayView {
    T* data = nullptr;
    std::size_t ndim = 0;
    std::array<std::size_t, max_ndim> shape{};
    std::array<std::ptrdiff_t, max_ndim> strides{};

    /// Number of elements; throws std::overflow_error if it does not fit.
    std::size_t size() const {
        std::size_t n = 1;
        for (std::size_t d = 0; d < ndim; ++d) {
            if (shape[d] != 0 && n > std::numeric_limits<std::size_t>::max() / shape[d])
                throw std::overflow_error("noiselab: array size overflows std::size_t");
            n *= shape[d];
        }
        return n;
    }

    /// Read-only view of the same memory.
    ArrayView<const T> as_const() const {
        ArrayView<const T> v;
        v.data = data;
        v.ndim = ndim;
        v.shape = shape;
        v.strides = strides;
        return v;
    }

    /// The implicit form of as_const(), so that a mutable view can be passed as an input.
    /// A template so that it does not exist for a view that is already read-only.
    template <class U, std::enable_if_t<std::is_same_v<U, const T> && !std::is_const_v<T>, int> = 0>
    operator ArrayView<U>() const {
        return as_const();
    }
};

namespace detail {

/// A C-contiguous view of `data` whose `ndim` extents are read from `shape`.
template <class T, class It>
ArrayView<T> contiguous_view(T* data, It shape, std::size_t ndim) {
    using Extent = typename std::iterator_traits<It>::value_type;
    static_assert(std::is_integral_v<Extent>, "noiselab: a shape holds integers");
    if (ndim == 0 || ndim > max_ndim)
        throw std::invalid_argument("noiselab: arrays must have 1 to 4 dimensions, got " +
                                    std::to_string(ndim));
    ArrayView<T> v;
    v.data = data;
    v.ndim = ndim;
    for (std::size_t d = 0; d < ndim; ++d, ++shape) {
        const Extent s = *shape;
        if constexpr (std::is_signed_v<Extent>) {
            if (s < 0)
                throw std::invalid_argument("noiselab: the shape has a negative extent " + std::to_string(s) +
                                            " on axis " + std::to_string(d));
        }
        v.shape[d] = static_cast<std::size_t>(s);
    }
    // Check the element count first: the strides below must not overflow either.
    if (v.size() > static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()))
        throw std::overflow_error("noiselab: array size overflows std::ptrdiff_t");
    std::ptrdiff_t stride = 1;
    for (std::size_t k = v.ndim; k-- > 0;) {
        v.strides[k] = stride;
        stride *= static_cast<std::ptrdiff_t>(v.shape[k]);
    }
    return v;
}

}  // namespace detail

/// A C-contiguous view of `data` with the given shape, in C order (the last axis varies
/// fastest): `make_view(ptr, {rows, cols})`. Throws std::invalid_argument for a rank
/// outside 1 to 4 and std::overflow_error when the element count overflows std::ptrdiff_t.
template <class T>
ArrayView<T> make_view(T* data, std::initializer_list<std::size_t> shape) {
    return detail::contiguous_view(data, shape.begin(), shape.size());
}

/// The same with a shape known at run time: any range of integers with std::begin and
/// std::end (std::array, std::vector, a built-in array). Signed extents must be >= 0.
template <class T, class Shape, class = decltype(std::end(std::declval<const Shape&>()))>
ArrayView<T> make_view(T* data, const Shape& shape) {
    const auto n = std::distance(std::begin(shape), std::end(shape));
    return detail::contiguous_view(data, std::begin(shape), static_cast<std::size_t>(n));
}

/// The same with `ndim` extents at `shape`, as C interfaces pass them.
template <class T, class Extent>
ArrayView<T> make_view(T* data, const Extent* shape, std::size_t ndim) {
    return detail::contiguous_view(data, shape, ndim);
}

/// The C-order shape of an image whose size is listed x first, x being the axis fastest in
/// memory (itk::Size, SimpleITK's GetSize(), NIfTI's dim[1..]): the same extents reversed.
/// `make_view(image->GetBufferPointer(), shape_from_x_first(region.GetSize()))`.
template <class Shape>
auto shape_from_x_first(const Shape& size) {
    using Extent = std::decay_t<decltype(*std::begin(size))>;
    std::vector<Extent> shape(std::begin(size), std::end(size));
    std::reverse(shape.begin(), shape.end());
    return shape;
}

namespace detail {

/// Checks a view's rank and extents; `what` names it in the message.
template <class T>
void check_view(const ArrayView<T>& v, const char* what) {
    if (v.ndim < 1 || v.ndim > max_ndim)
        throw std::invalid_argument(std::string("noiselab: ") + what +
                                    " must have 1 to 4 dimensions, got " + std::to_string(v.ndim));
    for (std::size_t d = 0; d < v.ndim; ++d)
        if (v.shape[d] == 0)
            throw std::invalid_argument(std::string("noiselab: ") + what + " has an empty axis " +
                                        std::to_string(d));
    if (v.data == nullptr) throw std::invalid_argument(std::string("noiselab: ") + what + " is null");
    (void)v.size();
}

template <class T, class U>
void check_same_shape(const ArrayView<T>& a, const ArrayView<U>& b, const char* what) {
    bool same = a.ndim == b.ndim;
    for (std::size_t d = 0; same && d < a.ndim; ++d) same = a.shape[d] == b.shape[d];
    if (!same)
        throw std::invalid_argument(std::string("noiselab: ") + what +
                                    " must have the same shape as the image");
}

/// T in a context where it is not deduced: a parameter `ArrayView<const identity_t<T>>`
/// takes T from the other arguments, so that a mutable view converts to it.
template <class T>
struct identity {
    using type = T;
};
template <class T>
using identity_t = typename identity<T>::type;

/// The bytes from a view's lowest to its highest element address, as [first, last).
/// Unsigned arithmetic: strides beyond the memory the caller owns wrap instead of being UB.
template <class T>
std::array<std::uintptr_t, 2> byte_span(const ArrayView<T>& v) {
    std::uintptr_t first = reinterpret_cast<std::uintptr_t>(v.data), last = first + sizeof(T);
    for (std::size_t d = 0; d < v.ndim; ++d) {
        const auto stride = static_cast<std::uintptr_t>(v.strides[d]);
        const std::uintptr_t step = v.strides[d] < 0 ? std::uintptr_t{0} - stride : stride;
        const std::uintptr_t extent = static_cast<std::uintptr_t>(v.shape[d] - 1) * sizeof(T) * step;
        if (v.strides[d] < 0) first -= extent;
        else last += extent;
    }
    return {first, last};
}

/// Refuses an output that shares memory with an input (`what` names it): an output voxel
/// depends on the input voxels around it, which in place may already be overwritten.
/// Compares address ranges, so two views interleaved in one buffer are refused too.
template <class T, class U>
void check_no_overlap(const ArrayView<T>& out, const ArrayView<U>& in, const char* what) {
    const auto a = byte_span(out), b = byte_span(in);
    if (a[0] < b[1] && b[0] < a[1])
        throw std::invalid_argument(std::string("noiselab: the output overlaps ") + what +
                                    " in memory: write it to a separate buffer (in place is not supported)");
}

}  // namespace detail
}  // namespace noiselab

// Non-owning N-D views over caller memory (pointer, shape, strides in elements).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>

namespace noiselab {

/// The kernels handle arrays of 1 to `max_ndim` dimensions.
inline constexpr std::size_t max_ndim = 4;

/// A strided view of an N-D array owned by the caller.
///
/// `strides` count elements, not bytes, and may be negative or zero
/// (a broadcast axis). Axis `ndim - 1` is the fastest-varying one in
/// C order, and the kernels walk it innermost. Kernel inputs are
/// `ArrayView<const T>`: pass a mutable view through `as_const()`.
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
};

/// A C-contiguous view of `data` with the given shape.
template <class T>
ArrayView<T> make_view(T* data, std::initializer_list<std::size_t> shape) {
    if (shape.size() == 0 || shape.size() > max_ndim)
        throw std::invalid_argument("noiselab: arrays must have 1 to 4 dimensions, got " +
                                    std::to_string(shape.size()));
    ArrayView<T> v;
    v.data = data;
    v.ndim = shape.size();
    std::size_t d = 0;
    for (std::size_t s : shape) v.shape[d++] = s;
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

}  // namespace detail
}  // namespace noiselab

// csim_common.h - helpers of the C-simulation entry points (test harness only, not synthesized).
//
// Entry points are extern "C" functions taking raw int64 arrays; they return 0, or an error
// code with a message readable through em_error().
#pragma once

#include <cstdint>

#include "edgemoe_types.h"

namespace edgemoe {
namespace csim {

// Record an error message for em_error() and return the error code -1.
int fail(const char* fmt, ...);

// Copy raw integers into values of T (and back), element by element.
template <class T>
inline void load_raw(const int64_t* raw, T* out, int n) {
    for (int i = 0; i < n; i++) out[i] = from_raw<T>(raw[i]);
}

template <class T>
inline void store_raw(const T* in, int64_t* raw, int n) {
    for (int i = 0; i < n; i++) raw[i] = to_raw(in[i]);
}

}  // namespace csim
}  // namespace edgemoe

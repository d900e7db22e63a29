// TensorFlow op `AntifragileBatchNorm`: batch normalisation in inference over the last axis,
// then optionally a residual input added and ReLU, in one pass over memory (TensorFlow runs
// them as three ops, three passes). src/kernels/native/batch-norm.ts says where it is used.
//
// Values: those of TensorFlow's `FusedBatchNorm` (inference), `Add` and `Relu`, in float32.
// Which formula the batch norm follows is the caller's `formula` attribute, found by comparing
// with TensorFlow's own outputs (oneDNN's kernel differs with the channel count):
//   formula 0: t = (x − mean)·r with r = 1/√(variance + ε), then y = fma(t, scale, offset);
//   formula 1: y = (x − mean)·s + offset with s = scale/√(variance + ε), each step rounded.
// Then y + side (when given), then ReLU as TensorFlow's: 0 > y ? 0 : y (NaN and −0 kept).
//
// Inputs: x [..., C]; mean, variance, scale, offset [C]; side as x, or [0] for none.
// Attrs: epsilon (float), formula (0 or 1), relu (bool). Output: y, x's shape.
#include <tensorflow/c/kernels.h>
#include <tensorflow/c/tf_status.h>
#include <tensorflow/c/tf_tensor.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ops.h"

namespace {

struct Attrs {
  float epsilon;
  int64_t formula;
  bool relu;
};

void* Create(TF_OpKernelConstruction* ctx) {
  auto* attrs = new Attrs{};
  TF_Status* status = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrFloat(ctx, "epsilon", &attrs->epsilon, status);
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrInt64(ctx, "formula", &attrs->formula, status);
  }
  if (TF_GetCode(status) == TF_OK) {
    TF_Bool relu = 0;
    TF_OpKernelConstruction_GetAttrBool(ctx, "relu", &relu, status);
    attrs->relu = relu != 0;
  }
  if (TF_GetCode(status) == TF_OK && attrs->formula != 0 && attrs->formula != 1) {
    TF_SetStatus(status, TF_INVALID_ARGUMENT, "AntifragileBatchNorm: formula must be 0 or 1");
  }
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(ctx, status);
  TF_DeleteStatus(status);
  return attrs;
}

void Delete(void* attrs) { delete static_cast<Attrs*>(attrs); }

// Per channel: the mean, the factor (r or s) and scale and offset; rows of C values.
struct Plan {
  int64_t rows, channels;
  int64_t formula;
  bool relu;
  const float *mean, *factor, *scale, *offset;
};

inline float Relu(float y) { return 0.0f > y ? 0.0f : y; }

void RowsScalar(const Plan& p, const float* x, const float* side, float* y, int64_t begin,
                int64_t end) {
  const int64_t c = p.channels;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t at = row * c;
    for (int64_t k = 0; k < c; ++k) {
      const float t = (x[at + k] - p.mean[k]) * p.factor[k];
      float v = p.formula == 0 ? std::fma(t, p.scale[k], p.offset[k]) : t + p.offset[k];
      if (side) v = v + side[at + k];
      y[at + k] = p.relu ? Relu(v) : v;
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

// The mask of the first min(remaining, 16) lanes.
inline __mmask16 TailMask(int64_t remaining) {
  return remaining >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << remaining) - 1);
}

// One vector of 16 values: the formula (kFma: 0, else 1), the side, ReLU; the same roundings as
// the scalar path. `m` masks a tail.
template <bool kFma>
__attribute__((target("avx512f"))) inline void Vector16(const Plan& p, __mmask16 m, __m512 mean,
                                                        __m512 factor, __m512 scale,
                                                        __m512 offset, const float* x,
                                                        const float* side, float* y) {
  const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x), mean), factor);
  __m512 v = kFma ? _mm512_fmadd_ps(t, scale, offset) : _mm512_add_ps(t, offset);
  if (side) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, side));
  // max_ps(a, b) is a > b ? a : b: TensorFlow's ReLU, NaN and −0 kept.
  if (p.relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);
  _mm512_mask_storeu_ps(y, m, v);
}

template <bool kFma>
__attribute__((target("avx512f"))) void RowsAvx512(const Plan& p, const float* x,
                                                   const float* side, float* y, int64_t begin,
                                                   int64_t end) {
  const int64_t c = p.channels;
  if (16 % c == 0) {
    // Channels repeat within a vector: the per-channel values stay in registers, and the rows
    // run as one flat stretch of values.
    float lanes[4][16];
    for (int i = 0; i < 16; ++i) {
      lanes[0][i] = p.mean[i % c], lanes[1][i] = p.factor[i % c];
      lanes[2][i] = p.scale[i % c], lanes[3][i] = p.offset[i % c];
    }
    const __m512 mean = _mm512_loadu_ps(lanes[0]), factor = _mm512_loadu_ps(lanes[1]);
    const __m512 scale = _mm512_loadu_ps(lanes[2]), offset = _mm512_loadu_ps(lanes[3]);
    const int64_t first = begin * c, last = end * c;
    for (int64_t i = first; i < last; i += 16) {
      const __mmask16 m = TailMask(last - i);
      Vector16<kFma>(p, m, mean, factor, scale, offset, x + i, side ? side + i : nullptr, y + i);
    }
    return;
  }
  for (int64_t row = begin; row < end; ++row) {
    const int64_t at = row * c;
    for (int64_t k = 0; k < c; k += 16) {
      const __mmask16 m = TailMask(c - k);
      Vector16<kFma>(p, m, _mm512_maskz_loadu_ps(m, p.mean + k),
                     _mm512_maskz_loadu_ps(m, p.factor + k), _mm512_maskz_loadu_ps(m, p.scale + k),
                     _mm512_maskz_loadu_ps(m, p.offset + k), x + at + k,
                     side ? side + at + k : nullptr, y + at + k);
    }
  }
}
#define HAVE_AVX512_PATH 1
#endif

void Rows(const Plan& p, const float* x, const float* side, float* y, int64_t begin,
          int64_t end) {
#ifdef HAVE_AVX512_PATH
  if (__builtin_cpu_supports("avx512f")) {
    if (p.formula == 0) {
      RowsAvx512<true>(p, x, side, y, begin, end);
    } else {
      RowsAvx512<false>(p, x, side, y, begin, end);
    }
    return;
  }
#endif
  RowsScalar(p, x, side, y, begin, end);
}

// The shape checks; an error message, or empty.
std::string Check(TF_Tensor* const* in) {
  TF_Tensor* x = in[0];
  const int dims = TF_NumDims(x);
  if (dims < 1) return "x must have a channel axis";
  const int64_t c = TF_Dim(x, dims - 1);
  for (int i = 1; i <= 4; ++i) {
    if (TF_NumDims(in[i]) != 1 || TF_Dim(in[i], 0) != c) {
      return "mean, variance, scale and offset must be [C], C = x's last dimension";
    }
  }
  TF_Tensor* side = in[5];
  const bool none = TF_NumDims(side) == 1 && TF_Dim(side, 0) == 0;
  if (none) return "";
  if (TF_NumDims(side) != dims) return "side must have x's shape, or be [0]";
  for (int d = 0; d < dims; ++d) {
    if (TF_Dim(side, d) != TF_Dim(x, d)) return "side must have x's shape, or be [0]";
  }
  return "";
}

void Compute(void* kernel, TF_OpKernelContext* ctx) {
  const Attrs& attrs = *static_cast<Attrs*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor* in[6] = {};
  for (int i = 0; i < 6 && TF_GetCode(status) == TF_OK; ++i) TF_GetInput(ctx, i, &in[i], status);
  const std::string why = TF_GetCode(status) == TF_OK ? Check(in) : "";
  TF_Tensor* out = nullptr;
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, status);
  } else if (!why.empty()) {
    antifragile::Fail(ctx, "AntifragileBatchNorm: " + why);
  } else {
    TF_Tensor* x = in[0];
    const int dims = TF_NumDims(x);
    std::vector<int64_t> shape(dims);
    for (int d = 0; d < dims; ++d) shape[d] = TF_Dim(x, d);
    const int64_t total = TF_TensorElementCount(x);
    out = TF_AllocateOutput(ctx, 0, TF_FLOAT, shape.data(), dims, total * sizeof(float), status);
    if (TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(ctx, status);
    } else if (total > 0) {
      const int64_t c = shape[dims - 1];
      const auto* variance = static_cast<const float*>(TF_TensorData(in[2]));
      const auto* scale = static_cast<const float*>(TF_TensorData(in[3]));
      std::vector<float> factor(c);
      for (int64_t k = 0; k < c; ++k) {
        const float root = std::sqrt(variance[k] + attrs.epsilon);
        factor[k] = attrs.formula == 0 ? 1.0f / root : scale[k] / root;
      }
      const Plan plan{total / c,
                      c,
                      attrs.formula,
                      attrs.relu,
                      static_cast<const float*>(TF_TensorData(in[1])),
                      factor.data(),
                      scale,
                      static_cast<const float*>(TF_TensorData(in[4]))};
      const auto* xp = static_cast<const float*>(TF_TensorData(x));
      const auto* sp =
          TF_TensorElementCount(in[5]) > 0 ? static_cast<const float*>(TF_TensorData(in[5]))
                                           : nullptr;
      auto* yp = static_cast<float*>(TF_TensorData(out));
      // Small tensors in one thread: starting one costs more than it saves.
      if (total < (1 << 16)) {
        Rows(plan, xp, sp, yp, 0, plan.rows);
      } else {
        antifragile::Split(plan.rows,
                           [&](int64_t begin, int64_t end) { Rows(plan, xp, sp, yp, begin, end); });
      }
    }
  }
  for (TF_Tensor* t : in) {
    if (t) TF_DeleteTensor(t);
  }
  if (out) TF_DeleteTensor(out);
  TF_DeleteStatus(status);
}

// ---- The gradient: AntifragileReluScaleGrad ----
//
// dy and y (the ReLU's output) [..., C], factor [C]: g = dy·(y > 0 ? 1 : 0) (TensorFlow's ReluGrad,
// a product: −0 and NaN as it gives them), then dx = g·factor[channel] (the batch norm's input
// gradient, one float32 product). Outputs dx, and g when `with_side` (the residual input's
// gradient), else an empty g. y may hold fewer examples than dy, a whole number of times fewer:
// dy is then copies of a batch stacked along the first axis, each copy's step taken from y (the
// shared prefix of the batched sweep, src/analysis/shared-prefix.ts).

struct GradAttrs {
  bool with_side;
};

void* CreateGrad(TF_OpKernelConstruction* ctx) {
  auto* attrs = new GradAttrs{};
  TF_Status* status = TF_NewStatus();
  TF_Bool side = 0;
  TF_OpKernelConstruction_GetAttrBool(ctx, "with_side", &side, status);
  attrs->with_side = side != 0;
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(ctx, status);
  TF_DeleteStatus(status);
  return attrs;
}

void DeleteGrad(void* attrs) { delete static_cast<GradAttrs*>(attrs); }

void GradRows(int64_t c, const float* dy, const float* y, const float* factor, float* dx, float* g,
              int64_t begin, int64_t end) {
  for (int64_t i = begin * c; i < end * c; ++i) {
    const float v = dy[i] * (y[i] > 0.0f ? 1.0f : 0.0f);
    if (g) g[i] = v;
    dx[i] = v * factor[i % c];
  }
}

#ifdef HAVE_AVX512_PATH
__attribute__((target("avx512f"))) inline void GradVector16(__mmask16 m, __m512 factor,
                                                            const float* dy, const float* y,
                                                            float* dx, float* g) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __mmask16 positive =
      _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, y), _mm512_setzero_ps(), _CMP_GT_OQ);
  const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy), _mm512_maskz_mov_ps(positive, one));
  if (g) _mm512_mask_storeu_ps(g, m, v);
  _mm512_mask_storeu_ps(dx, m, _mm512_mul_ps(v, factor));
}

__attribute__((target("avx512f"))) void GradRowsAvx512(int64_t c, const float* dy, const float* y,
                                                       const float* factor, float* dx, float* g,
                                                       int64_t begin, int64_t end) {
  if (16 % c == 0) {
    float lanes[16];
    for (int i = 0; i < 16; ++i) lanes[i] = factor[i % c];
    const __m512 f = _mm512_loadu_ps(lanes);
    const int64_t first = begin * c, last = end * c;
    for (int64_t i = first; i < last; i += 16) {
      const __mmask16 m = TailMask(last - i);
      GradVector16(m, f, dy + i, y + i, dx + i, g ? g + i : nullptr);
    }
    return;
  }
  for (int64_t row = begin; row < end; ++row) {
    const int64_t at = row * c;
    for (int64_t k = 0; k < c; k += 16) {
      const __mmask16 m = TailMask(c - k);
      GradVector16(m, _mm512_maskz_loadu_ps(m, factor + k), dy + at + k, y + at + k, dx + at + k,
                   g ? g + at + k : nullptr);
    }
  }
}
#endif

void ComputeGrad(void* kernel, TF_OpKernelContext* ctx) {
  const GradAttrs& attrs = *static_cast<GradAttrs*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor* in[3] = {};
  for (int i = 0; i < 3 && TF_GetCode(status) == TF_OK; ++i) TF_GetInput(ctx, i, &in[i], status);
  TF_Tensor* out[2] = {};
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, status);
  } else {
    const int dims = TF_NumDims(in[0]);
    bool same = dims >= 1 && TF_NumDims(in[1]) == dims && TF_NumDims(in[2]) == 1;
    std::vector<int64_t> shape(dims);
    for (int d = 0; same && d < dims; ++d) {
      shape[d] = TF_Dim(in[0], d);
      same = d == 0 ? TF_Dim(in[1], 0) > 0 && shape[0] % TF_Dim(in[1], 0) == 0
                    : TF_Dim(in[1], d) == shape[d];
    }
    if (!same || TF_Dim(in[2], 0) != shape[dims - 1]) {
      antifragile::Fail(ctx,
                        "AntifragileReluScaleGrad: dy [n·k, ..., C], y [n, ..., C] (k ≥ 1), "
                        "factor [C]");
    } else {
      const int64_t total = TF_TensorElementCount(in[0]);
      const int64_t empty = 0;
      out[0] = TF_AllocateOutput(ctx, 0, TF_FLOAT, shape.data(), dims, total * sizeof(float),
                                 status);
      if (TF_GetCode(status) == TF_OK) {
        out[1] = attrs.with_side ? TF_AllocateOutput(ctx, 1, TF_FLOAT, shape.data(), dims,
                                                     total * sizeof(float), status)
                                 : TF_AllocateOutput(ctx, 1, TF_FLOAT, &empty, 1, 0, status);
      }
      if (TF_GetCode(status) != TF_OK) {
        TF_OpKernelContext_Failure(ctx, status);
      } else if (total > 0) {
        const int64_t c = shape[dims - 1];
        const auto* dy = static_cast<const float*>(TF_TensorData(in[0]));
        const auto* y = static_cast<const float*>(TF_TensorData(in[1]));
        const auto* factor = static_cast<const float*>(TF_TensorData(in[2]));
        auto* dx = static_cast<float*>(TF_TensorData(out[0]));
        auto* g = attrs.with_side ? static_cast<float*>(TF_TensorData(out[1])) : nullptr;
        // Rows of y: dy's rows [k·rows_y, (k+1)·rows_y) take their steps from y's rows.
        const int64_t rows_y = TF_TensorElementCount(in[1]) / c;
        auto span = [&](int64_t at, int64_t from_y, int64_t n) {
          float* side = g ? g + at * c : nullptr;
          const float* steps = y + from_y * c;
#ifdef HAVE_AVX512_PATH
          if (__builtin_cpu_supports("avx512f")) {
            GradRowsAvx512(c, dy + at * c, steps, factor, dx + at * c, side, 0, n);
            return;
          }
#endif
          GradRows(c, dy + at * c, steps, factor, dx + at * c, side, 0, n);
        };
        auto rows = [&](int64_t begin, int64_t end) {
          while (begin < end) {
            const int64_t from_y = begin % rows_y;
            const int64_t n = std::min(end - begin, rows_y - from_y);
            span(begin, from_y, n);
            begin += n;
          }
        };
        if (total < (1 << 16)) {
          rows(0, total / c);
        } else {
          antifragile::Split(total / c, rows);
        }
      }
    }
  }
  for (TF_Tensor* t : in) {
    if (t) TF_DeleteTensor(t);
  }
  for (TF_Tensor* t : out) {
    if (t) TF_DeleteTensor(t);
  }
  TF_DeleteStatus(status);
}

}  // namespace

namespace antifragile {

void RegisterBatchNormOps(TF_Status* status) {
  RegisterOp("AntifragileBatchNorm",
             {"x: float", "mean: float", "variance: float", "scale: float", "offset: float",
              "side: float"},
             {"y: float"}, {"epsilon: float", "formula: int", "relu: bool"}, Create, Compute,
             Delete, status);
  if (TF_GetCode(status) != TF_OK) return;
  RegisterOp("AntifragileReluScaleGrad", {"dy: float", "y: float", "factor: float"},
             {"dx: float", "g: float"}, {"with_side: bool"}, CreateGrad, ComputeGrad, DeleteGrad,
             status);
}

}  // namespace antifragile

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

// The batch norm of one value of channel k, by the plan's formula.
inline float Norm(const Plan& p, float x, int64_t k) {
  const float t = (x - p.mean[k]) * p.factor[k];
  return p.formula == 0 ? std::fma(t, p.scale[k], p.offset[k]) : t + p.offset[k];
}

void RowsScalar(const Plan& p, const float* x, const float* side, float* y, int64_t begin,
                int64_t end) {
  const int64_t c = p.channels;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t at = row * c;
    for (int64_t k = 0; k < c; ++k) {
      float v = Norm(p, x[at + k], k);
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
__attribute__((target("avx512f"))) inline __m512 Norm16(__mmask16 m, __m512 mean, __m512 factor,
                                                        __m512 scale, __m512 offset,
                                                        const float* x) {
  const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x), mean), factor);
  return kFma ? _mm512_fmadd_ps(t, scale, offset) : _mm512_add_ps(t, offset);
}

template <bool kFma>
__attribute__((target("avx512f"))) inline void Vector16(const Plan& p, __mmask16 m, __m512 mean,
                                                        __m512 factor, __m512 scale,
                                                        __m512 offset, const float* x,
                                                        const float* side, float* y) {
  __m512 v = Norm16<kFma>(m, mean, factor, scale, offset, x);
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

// Per channel: 1/√(var + ε) (formula 0, γ applied by the fused multiply-add) or γ/√(var + ε).
std::vector<float> Factors(int64_t formula, float epsilon, const float* variance,
                           const float* scale, int64_t c) {
  std::vector<float> factor(c);
  for (int64_t k = 0; k < c; ++k) {
    const float root = std::sqrt(variance[k] + epsilon);
    factor[k] = formula == 0 ? 1.0f / root : scale[k] / root;
  }
  return factor;
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
      const std::vector<float> factor = Factors(attrs.formula, attrs.epsilon, variance, scale, c);
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

// ---- Batch norm, ReLU, zero padding and max pooling: AntifragileBatchNormPool ----
//
// x [N, H, W, C] → relu(batchNorm(x)), zero-padded by `pads` (top, bottom, left, right), then
// max pooled (`pool`: window height and width, stride height and width; `valid` on the padded
// map): a network's stem in one pass, without the normalised map in memory. TensorFlow's
// MaxPool takes, in window order from the lowest float, m = v > m ? v : m (the first of equal
// values, never a NaN); max_ps(v, m) is that.

struct PoolAttrs {
  float epsilon;
  int64_t formula;
  int64_t pool[4];
  int64_t pads[4];
};

void* CreatePool(TF_OpKernelConstruction* ctx) {
  auto* attrs = new PoolAttrs{};
  TF_Status* status = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrFloat(ctx, "epsilon", &attrs->epsilon, status);
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrInt64(ctx, "formula", &attrs->formula, status);
  }
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrInt64List(ctx, "pool", attrs->pool, 4, status);
  }
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrInt64List(ctx, "pads", attrs->pads, 4, status);
  }
  const bool positive = attrs->pool[0] > 0 && attrs->pool[1] > 0 && attrs->pool[2] > 0 &&
                        attrs->pool[3] > 0;
  const bool pads = attrs->pads[0] >= 0 && attrs->pads[1] >= 0 && attrs->pads[2] >= 0 &&
                    attrs->pads[3] >= 0;
  if (TF_GetCode(status) == TF_OK && (attrs->formula < 0 || attrs->formula > 1 || !positive ||
                                      !pads)) {
    TF_SetStatus(status, TF_INVALID_ARGUMENT,
                 "AntifragileBatchNormPool: formula 0 or 1, pool sizes and strides > 0, "
                 "pads >= 0");
  }
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(ctx, status);
  TF_DeleteStatus(status);
  return attrs;
}

void DeletePool(void* attrs) { delete static_cast<PoolAttrs*>(attrs); }

// The pooling's sizes, input and output.
struct PoolShape {
  int64_t in_h, in_w, out_h, out_w;
  int64_t kh, kw, sh, sw, top, left;
};

// Whether input pixel (ih, iw) is on the map (else it is padding: 0).
inline bool OnMap(const PoolShape& g, int64_t ih, int64_t iw) {
  return ih >= 0 && ih < g.in_h && iw >= 0 && iw < g.in_w;
}

void PoolRowsScalar(const Plan& p, const PoolShape& g, const float* x, float* y, int64_t begin,
                    int64_t end) {
  const int64_t c = p.channels;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / g.out_h, oh = row % g.out_h;
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      for (int64_t k = 0; k < c; ++k) {
        float best = -3.40282347e+38f;
        for (int64_t i = 0; i < g.kh; ++i) {
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t ih = oh * g.sh + i - g.top, iw = ow * g.sw + j - g.left;
            const float v =
                OnMap(g, ih, iw) ? Relu(Norm(p, x[((n * g.in_h + ih) * g.in_w + iw) * c + k], k))
                                 : 0.0f;
            best = v > best ? v : best;
          }
        }
        y[(row * g.out_w + ow) * c + k] = best;
      }
    }
  }
}

#ifdef HAVE_AVX512_PATH
template <bool kFma>
__attribute__((target("avx512f"))) void PoolRowsAvx512(const Plan& p, const PoolShape& g,
                                                       const float* x, float* y, int64_t begin,
                                                       int64_t end) {
  const int64_t c = p.channels;
  const __m512 zero = _mm512_setzero_ps(), lowest = _mm512_set1_ps(-3.40282347e+38f);
  for (int64_t k = 0; k < c; k += 16) {
    const __mmask16 m = TailMask(c - k);
    const __m512 mean = _mm512_maskz_loadu_ps(m, p.mean + k);
    const __m512 factor = _mm512_maskz_loadu_ps(m, p.factor + k);
    const __m512 scale = _mm512_maskz_loadu_ps(m, p.scale + k);
    const __m512 offset = _mm512_maskz_loadu_ps(m, p.offset + k);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / g.out_h, oh = row % g.out_h;
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        __m512 best = lowest;
        for (int64_t i = 0; i < g.kh; ++i) {
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t ih = oh * g.sh + i - g.top, iw = ow * g.sw + j - g.left;
            __m512 v = zero;
            if (OnMap(g, ih, iw)) {
              const float* at = x + ((n * g.in_h + ih) * g.in_w + iw) * c + k;
              // ReLU as in Vector16: max_ps(0, v) is 0 > v ? 0 : v.
              v = _mm512_max_ps(zero, Norm16<kFma>(m, mean, factor, scale, offset, at));
            }
            best = _mm512_max_ps(v, best);
          }
        }
        _mm512_mask_storeu_ps(y + (row * g.out_w + ow) * c + k, m, best);
      }
    }
  }
}
#endif

void PoolRows(const Plan& p, const PoolShape& g, const float* x, float* y, int64_t begin,
              int64_t end) {
#ifdef HAVE_AVX512_PATH
  if (__builtin_cpu_supports("avx512f")) {
    if (p.formula == 0) {
      PoolRowsAvx512<true>(p, g, x, y, begin, end);
    } else {
      PoolRowsAvx512<false>(p, g, x, y, begin, end);
    }
    return;
  }
#endif
  PoolRowsScalar(p, g, x, y, begin, end);
}

// The pooling's shape from x [N, H, W, C] and the attributes; an error message, or empty.
std::string PoolCheck(TF_Tensor* const* in, const PoolAttrs& a, PoolShape* g) {
  TF_Tensor* x = in[0];
  if (TF_NumDims(x) != 4) return "x must be [N, H, W, C]";
  const int64_t c = TF_Dim(x, 3);
  for (int i = 1; i <= 4; ++i) {
    if (TF_NumDims(in[i]) != 1 || TF_Dim(in[i], 0) != c) {
      return "mean, variance, scale and offset must be [C], C = x's last dimension";
    }
  }
  g->in_h = TF_Dim(x, 1), g->in_w = TF_Dim(x, 2);
  g->kh = a.pool[0], g->kw = a.pool[1], g->sh = a.pool[2], g->sw = a.pool[3];
  g->top = a.pads[0], g->left = a.pads[2];
  const int64_t padded_h = g->in_h + a.pads[0] + a.pads[1];
  const int64_t padded_w = g->in_w + a.pads[2] + a.pads[3];
  if (padded_h < g->kh || padded_w < g->kw) return "the pooling window exceeds the padded map";
  g->out_h = (padded_h - g->kh) / g->sh + 1;
  g->out_w = (padded_w - g->kw) / g->sw + 1;
  return "";
}

void ComputePool(void* kernel, TF_OpKernelContext* ctx) {
  const PoolAttrs& attrs = *static_cast<PoolAttrs*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor* in[5] = {};
  for (int i = 0; i < 5 && TF_GetCode(status) == TF_OK; ++i) TF_GetInput(ctx, i, &in[i], status);
  PoolShape g{};
  const std::string why = TF_GetCode(status) == TF_OK ? PoolCheck(in, attrs, &g) : "";
  TF_Tensor* out = nullptr;
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, status);
  } else if (!why.empty()) {
    antifragile::Fail(ctx, "AntifragileBatchNormPool: " + why);
  } else {
    const int64_t n = TF_Dim(in[0], 0), c = TF_Dim(in[0], 3);
    const int64_t shape[4] = {n, g.out_h, g.out_w, c};
    const int64_t total = n * g.out_h * g.out_w * c;
    out = TF_AllocateOutput(ctx, 0, TF_FLOAT, shape, 4, total * sizeof(float), status);
    if (TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(ctx, status);
    } else if (total > 0) {
      const auto* variance = static_cast<const float*>(TF_TensorData(in[2]));
      const auto* scale = static_cast<const float*>(TF_TensorData(in[3]));
      const std::vector<float> factor = Factors(attrs.formula, attrs.epsilon, variance, scale, c);
      const Plan plan{n * g.in_h * g.in_w,
                      c,
                      attrs.formula,
                      true,
                      static_cast<const float*>(TF_TensorData(in[1])),
                      factor.data(),
                      scale,
                      static_cast<const float*>(TF_TensorData(in[4]))};
      const auto* xp = static_cast<const float*>(TF_TensorData(in[0]));
      auto* yp = static_cast<float*>(TF_TensorData(out));
      auto rows = [&](int64_t begin, int64_t end) { PoolRows(plan, g, xp, yp, begin, end); };
      if (TF_TensorElementCount(in[0]) < (1 << 16)) {
        rows(0, n * g.out_h);
      } else {
        antifragile::Split(n * g.out_h, rows);
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
  RegisterOp("AntifragileBatchNormPool",
             {"x: float", "mean: float", "variance: float", "scale: float", "offset: float"},
             {"y: float"}, {"epsilon: float", "formula: int", "pool: list(int)", "pads: list(int)"},
             CreatePool, ComputePool, DeletePool, status);
  if (TF_GetCode(status) != TF_OK) return;
  RegisterOp("AntifragileReluScaleGrad", {"dy: float", "y: float", "factor: float"},
             {"dx: float", "g: float"}, {"with_side: bool"}, CreateGrad, ComputeGrad, DeleteGrad,
             status);
}

}  // namespace antifragile

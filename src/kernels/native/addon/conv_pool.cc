// TensorFlow op `AntifragileConvPool`: a convolution with few input channels, its bias, ReLU and
// max pooling in one pass, registered with TensorFlow's C API when Node loads this module
// (src/kernels/native/conv-pool.ts explains where the analysis uses it and why).
//
// Values: each output is TensorFlow's CPU Conv2D value for fewer than 8 input channels (a fused
// multiply-add per tap, taps in (row, column, channel) order, starting from 0), then the bias
// added in float32, then ReLU as `v > 0 ? v : 0`, and the window's maximum. Max pooling commutes
// exactly with the bias and ReLU (float rounding is monotone), so the maximum is taken over the
// sums and the bias and ReLU applied once per pooled value.
//
// Inputs: x [n, h, w, c]; filter [blocks, kh, kw, c, f] (example i uses set i / (n / blocks));
// bias [blocks, f] or [0] for none. Attrs: pool = [ph, pw, sh, sw] (valid pooling over the
// stride-1 valid convolution), relu, groups. Output [groups · n, qh, qw, f / groups]: channel
// block k of every example is written as example k·n + i (the stacked variants' layout).
#include <node_api.h>
#include <tensorflow/c/kernels.h>
#include <tensorflow/c/ops.h>
#include <tensorflow/c/tf_status.h>
#include <tensorflow/c/tf_tensor.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Geometry {
  int64_t n, h, w, c;      // input, NHWC
  int64_t kh, kw, f;       // filter [kh, kw, c, f]
  int64_t ph, pw, sh, sw;  // pooling window and strides (valid)
  int64_t oh, ow;          // convolution output
  int64_t qh, qw;          // pooled output
  int64_t blocks;          // weight sets: example i uses set i / (n / blocks)
  int64_t groups;          // output layout [groups, n, qh, qw, f / groups]
  bool relu;
  bool bias;
};

// The scalar path: any CPU, any channel count.
void ExamplesScalar(const Geometry& g, const float* x, const float* w, const float* b, float* out,
                    int64_t begin, int64_t end) {
  const int64_t per_group = g.f / g.groups;
  const int64_t per_block = g.n / g.blocks;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t set = i / per_block;
    const float* wi = w + set * g.kh * g.kw * g.c * g.f;
    const float* bi = b ? b + set * g.f : nullptr;
    const float* xi = x + i * g.h * g.w * g.c;
    for (int64_t qy = 0; qy < g.qh; ++qy) {
      for (int64_t qx = 0; qx < g.qw; ++qx) {
        for (int64_t f = 0; f < g.f; ++f) {
          float best = -std::numeric_limits<float>::infinity();
          for (int64_t dy = 0; dy < g.ph; ++dy) {
            for (int64_t dx = 0; dx < g.pw; ++dx) {
              const float* xp = xi + ((qy * g.sh + dy) * g.w + (qx * g.sw + dx)) * g.c;
              float a = 0.0f;
              for (int64_t r = 0; r < g.kh; ++r) {
                for (int64_t s = 0; s < g.kw; ++s) {
                  for (int64_t ch = 0; ch < g.c; ++ch) {
                    a = std::fma(xp[(r * g.w + s) * g.c + ch], wi[((r * g.kw + s) * g.c + ch) * g.f + f], a);
                  }
                }
              }
              best = std::max(best, a);
            }
          }
          float v = best;
          if (bi) v = v + bi[f];
          if (g.relu) v = v > 0.0f ? v : 0.0f;
          const int64_t grp = f / per_group;
          out[(((grp * g.n + i) * g.qh + qy) * g.qw + qx) * per_group + (f - grp * per_group)] = v;
        }
      }
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1

constexpr int64_t kMaxWindow = 64;

// AVX2+FMA: 16 channels of up to 4 window positions at a time, in registers; the same fused
// multiply-adds in the same order as the scalar path, so the same values.
__attribute__((target("avx2,fma"))) void ExamplesAvx2(const Geometry& g, const float* x,
                                                      const float* w, const float* b, float* out,
                                                      int64_t begin, int64_t end) {
  const int64_t per_group = g.f / g.groups;
  const int64_t per_block = g.n / g.blocks;
  const int64_t window = g.ph * g.pw;
  const int64_t groups4 = (window + 3) / 4;
  const int64_t taps = g.kh * g.kw * g.c;
  std::vector<int64_t> tap_offset(taps);
  for (int64_t r = 0, t = 0; r < g.kh; ++r)
    for (int64_t s = 0; s < g.kw; ++s)
      for (int64_t ch = 0; ch < g.c; ++ch) tap_offset[t++] = (r * g.w + s) * g.c + ch;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t i = begin; i < end; ++i) {
    const int64_t set = i / per_block;
    const float* wi = w + set * taps * g.f;
    const float* bi = b ? b + set * g.f : nullptr;
    const float* xi = x + i * g.h * g.w * g.c;
    for (int64_t qy = 0; qy < g.qh; ++qy) {
      for (int64_t qx = 0; qx < g.qw; ++qx) {
        // The window's positions, four at a time (a short last group repeats its last
        // position: the maximum is unchanged).
        const float* xp[kMaxWindow];
        for (int64_t p = 0; p < groups4 * 4; ++p) {
          const int64_t q = std::min(p, window - 1);
          xp[p] = xi + ((qy * g.sh + q / g.pw) * g.w + (qx * g.sw + q % g.pw)) * g.c;
        }
        const __m256 lowest = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
        for (int64_t f0 = 0; f0 + 16 <= g.f; f0 += 16) {
          __m256 m0 = lowest, m1 = lowest;
          for (int64_t p0 = 0; p0 < groups4 * 4; p0 += 4) {
            __m256 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
            __m256 c0 = zero, c1 = zero, c2 = zero, c3 = zero;
            const float* wp = wi + f0;
            for (int64_t t = 0; t < taps; ++t, wp += g.f) {
              const __m256 w0 = _mm256_loadu_ps(wp), w1 = _mm256_loadu_ps(wp + 8);
              const int64_t o = tap_offset[t];
              const __m256 v0 = _mm256_set1_ps(xp[p0][o]), v1 = _mm256_set1_ps(xp[p0 + 1][o]);
              const __m256 v2 = _mm256_set1_ps(xp[p0 + 2][o]), v3 = _mm256_set1_ps(xp[p0 + 3][o]);
              a0 = _mm256_fmadd_ps(v0, w0, a0), c0 = _mm256_fmadd_ps(v0, w1, c0);
              a1 = _mm256_fmadd_ps(v1, w0, a1), c1 = _mm256_fmadd_ps(v1, w1, c1);
              a2 = _mm256_fmadd_ps(v2, w0, a2), c2 = _mm256_fmadd_ps(v2, w1, c2);
              a3 = _mm256_fmadd_ps(v3, w0, a3), c3 = _mm256_fmadd_ps(v3, w1, c3);
            }
            m0 = _mm256_max_ps(m0, _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3)));
            m1 = _mm256_max_ps(m1, _mm256_max_ps(_mm256_max_ps(c0, c1), _mm256_max_ps(c2, c3)));
          }
          if (bi) {
            m0 = _mm256_add_ps(m0, _mm256_loadu_ps(bi + f0));
            m1 = _mm256_add_ps(m1, _mm256_loadu_ps(bi + f0 + 8));
          }
          if (g.relu) {
            // v > 0 ? v : 0 (max(v, 0) would keep a -0 or a NaN).
            m0 = _mm256_and_ps(m0, _mm256_cmp_ps(m0, zero, _CMP_GT_OQ));
            m1 = _mm256_and_ps(m1, _mm256_cmp_ps(m1, zero, _CMP_GT_OQ));
          }
          // per_group is a multiple of 16 here: the 16 channels are in one group.
          const int64_t grp = f0 / per_group;
          float* o = out + (((grp * g.n + i) * g.qh + qy) * g.qw + qx) * per_group + (f0 - grp * per_group);
          _mm256_storeu_ps(o, m0);
          _mm256_storeu_ps(o + 8, m1);
        }
      }
    }
  }
}
#endif

void Examples(const Geometry& g, const float* x, const float* w, const float* b, float* out,
              int64_t begin, int64_t end) {
#ifdef HAVE_AVX2_PATH
  if ((g.f / g.groups) % 16 == 0 && g.ph * g.pw <= kMaxWindow - 3 &&
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    ExamplesAvx2(g, x, w, b, out, begin, end);
    return;
  }
#endif
  ExamplesScalar(g, x, w, b, out, begin, end);
}


struct Attrs {
  int64_t pool[4];
  bool relu;
  int64_t groups;
};

void* Create(TF_OpKernelConstruction* ctx) {
  auto* attrs = new Attrs{};
  TF_Status* status = TF_NewStatus();
  TF_OpKernelConstruction_GetAttrInt64List(ctx, "pool", attrs->pool, 4, status);
  if (TF_GetCode(status) == TF_OK) {
    TF_Bool relu = 0;
    TF_OpKernelConstruction_GetAttrBool(ctx, "relu", &relu, status);
    attrs->relu = relu != 0;
  }
  if (TF_GetCode(status) == TF_OK) {
    TF_OpKernelConstruction_GetAttrInt64(ctx, "groups", &attrs->groups, status);
  }
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(ctx, status);
  TF_DeleteStatus(status);
  return attrs;
}

void Delete(void* attrs) { delete static_cast<Attrs*>(attrs); }

void Fail(TF_OpKernelContext* ctx, const std::string& message) {
  TF_Status* status = TF_NewStatus();
  TF_SetStatus(status, TF_INVALID_ARGUMENT, ("AntifragileConvPool: " + message).c_str());
  TF_OpKernelContext_Failure(ctx, status);
  TF_DeleteStatus(status);
}

bool Geometry5(TF_Tensor* x, TF_Tensor* filter, TF_Tensor* bias, const Attrs& a, Geometry* g,
               std::string* why) {
  const bool no_bias = TF_NumDims(bias) == 1 && TF_Dim(bias, 0) == 0;
  if (TF_NumDims(x) != 4 || TF_NumDims(filter) != 5 || (TF_NumDims(bias) != 2 && !no_bias)) {
    *why = "x must be [n, h, w, c], filter [blocks, kh, kw, c, f], bias [blocks, f] or [0]";
    return false;
  }
  g->n = TF_Dim(x, 0), g->h = TF_Dim(x, 1), g->w = TF_Dim(x, 2), g->c = TF_Dim(x, 3);
  g->blocks = TF_Dim(filter, 0), g->kh = TF_Dim(filter, 1), g->kw = TF_Dim(filter, 2);
  g->f = TF_Dim(filter, 4);
  g->ph = a.pool[0], g->pw = a.pool[1], g->sh = a.pool[2], g->sw = a.pool[3];
  g->relu = a.relu, g->groups = a.groups;
  g->bias = TF_NumDims(bias) == 2;
  g->oh = g->h - g->kh + 1, g->ow = g->w - g->kw + 1;
  if (TF_Dim(filter, 3) != g->c || g->blocks < 1 || g->n % g->blocks != 0 || g->groups < 1 ||
      g->f % g->groups != 0 || g->ph < 1 || g->pw < 1 || g->sh < 1 || g->sw < 1 ||
      g->oh < g->ph || g->ow < g->pw ||
      (g->bias && (TF_Dim(bias, 0) != g->blocks || TF_Dim(bias, 1) != g->f))) {
    *why = "inconsistent shapes or attributes";
    return false;
  }
  g->qh = (g->oh - g->ph) / g->sh + 1, g->qw = (g->ow - g->pw) / g->sw + 1;
  return true;
}

void Compute(void* kernel, TF_OpKernelContext* ctx) {
  const Attrs& attrs = *static_cast<Attrs*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor *x = nullptr, *filter = nullptr, *bias = nullptr, *y = nullptr;
  TF_GetInput(ctx, 0, &x, status);
  if (TF_GetCode(status) == TF_OK) TF_GetInput(ctx, 1, &filter, status);
  if (TF_GetCode(status) == TF_OK) TF_GetInput(ctx, 2, &bias, status);
  Geometry g{};
  std::string why;
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, status);
  } else if (!Geometry5(x, filter, bias, attrs, &g, &why)) {
    Fail(ctx, why);
  } else {
    const int64_t dims[4] = {g.groups * g.n, g.qh, g.qw, g.f / g.groups};
    const int64_t total = dims[0] * dims[1] * dims[2] * dims[3];
    y = TF_AllocateOutput(ctx, 0, TF_FLOAT, dims, 4, total * sizeof(float), status);
    if (TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(ctx, status);
    } else {
      const float* xp = static_cast<const float*>(TF_TensorData(x));
      const float* wp = static_cast<const float*>(TF_TensorData(filter));
      const float* bp = g.bias ? static_cast<const float*>(TF_TensorData(bias)) : nullptr;
      float* out = static_cast<float*>(TF_TensorData(y));
      const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
      const int64_t count = std::min<int64_t>(cores, g.n);
      std::vector<std::thread> threads;
      for (int64_t t = 1; t < count; ++t) {
        threads.emplace_back(Examples, std::cref(g), xp, wp, bp, out, g.n * t / count,
                             g.n * (t + 1) / count);
      }
      Examples(g, xp, wp, bp, out, 0, g.n / count);
      for (auto& th : threads) th.join();
    }
  }
  TF_DeleteTensor(x);
  TF_DeleteTensor(filter);
  TF_DeleteTensor(bias);
  TF_DeleteTensor(y);
  TF_DeleteStatus(status);
}

void SetUnknown(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  TF_ShapeInferenceContextSetUnknownShape(ctx, status);
}

// Registers the op and its CPU kernel; an error message, or empty.
std::string Register() {
  TF_Status* status = TF_NewStatus();
  TF_OpDefinitionBuilder* op = TF_NewOpDefinitionBuilder("AntifragileConvPool");
  TF_OpDefinitionBuilderAddInput(op, "x: float");
  TF_OpDefinitionBuilderAddInput(op, "filter: float");
  TF_OpDefinitionBuilderAddInput(op, "bias: float");
  TF_OpDefinitionBuilderAddOutput(op, "y: float");
  TF_OpDefinitionBuilderAddAttr(op, "pool: list(int)");
  TF_OpDefinitionBuilderAddAttr(op, "relu: bool");
  TF_OpDefinitionBuilderAddAttr(op, "groups: int");
  TF_OpDefinitionBuilderSetShapeInferenceFunction(op, SetUnknown);
  TF_RegisterOpDefinition(op, status);
  std::string error;
  if (TF_GetCode(status) == TF_OK) {
    TF_KernelBuilder* builder =
        TF_NewKernelBuilder("AntifragileConvPool", "CPU", Create, Compute, Delete);
    TF_RegisterKernelBuilder("AntifragileConvPool", builder, status);
  }
  if (TF_GetCode(status) != TF_OK) error = TF_Message(status);
  TF_DeleteStatus(status);
  return error;
}

napi_value Init(napi_env env, napi_value exports) {
  static const std::string error = Register();
  napi_value value;
  napi_create_string_utf8(env, error.c_str(), error.size(), &value);
  napi_set_named_property(env, exports, "registrationError", value);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)

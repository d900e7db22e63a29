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
#include "ops.h"
#include <tensorflow/c/kernels.h>
#include <tensorflow/c/ops.h>
#include <tensorflow/c/tf_status.h>
#include <tensorflow/c/tf_tensor.h>

#include <algorithm>
#include <atomic>
#include <initializer_list>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using antifragile::RegisterOp;
using antifragile::Split;

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

// Where a pooled value came from: its window position (row-major), plus kMasked when the
// activation there is not positive (ReLU's gradient is 0): what a gradient needs.
constexpr int32_t kMasked = 0x100;

// The scalar path: any CPU, any channel count. `route` (or null) as the output, groups 1.
void ExamplesScalar(const Geometry& g, const float* x, const float* w, const float* b, float* out,
                    int32_t* route, int64_t begin, int64_t end) {
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
          int32_t where = 0;
          for (int64_t dy = 0; dy < g.ph; ++dy) {
            for (int64_t dx = 0; dx < g.pw; ++dx) {
              const float* xp = xi + ((qy * g.sh + dy) * g.w + (qx * g.sw + dx)) * g.c;
              float a = 0.0f;
              for (int64_t r = 0; r < g.kh; ++r) {
                for (int64_t s = 0; s < g.kw; ++s) {
                  for (int64_t ch = 0; ch < g.c; ++ch) {
                    a = std::fma(xp[(r * g.w + s) * g.c + ch],
                                 wi[((r * g.kw + s) * g.c + ch) * g.f + f], a);
                  }
                }
              }
              if (route) {
                // TensorFlow's argmax: the first strict maximum of the activated values.
                if (bi) a = a + bi[f];
                if (g.relu) a = a > 0.0f ? a : 0.0f;
                if (a > best) best = a, where = static_cast<int32_t>(dy * g.pw + dx);
              } else {
                best = std::max(best, a);
              }
            }
          }
          float v = best;
          if (!route) {
            if (bi) v = v + bi[f];
            if (g.relu) v = v > 0.0f ? v : 0.0f;
          }
          const int64_t grp = f / per_group;
          const int64_t at =
              (((grp * g.n + i) * g.qh + qy) * g.qw + qx) * per_group + (f - grp * per_group);
          out[at] = v;
          if (route) route[at] = where | (g.relu && !(v > 0.0f) ? kMasked : 0);
        }
      }
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1

constexpr int64_t kMaxWindow = 64;

// Each filter tap's offset from a window position in the input, taps in (row, column, channel)
// order: the order of the fused multiply-add chain.
std::vector<int64_t> TapOffsets(const Geometry& g) {
  std::vector<int64_t> offsets;
  offsets.reserve(g.kh * g.kw * g.c);
  for (int64_t r = 0; r < g.kh; ++r)
    for (int64_t s = 0; s < g.kw; ++s)
      for (int64_t ch = 0; ch < g.c; ++ch) offsets.push_back((r * g.w + s) * g.c + ch);
  return offsets;
}

// AVX2+FMA: 16 channels of up to 4 window positions at a time, in registers; the same fused
// multiply-adds in the same order as the scalar path, so the same values.
__attribute__((target("avx2,fma"))) void ExamplesAvx2(const Geometry& g, const float* x,
                                                      const float* w, const float* b, float* out,
                                                      int32_t* route, int64_t begin,
                                                      int64_t end) {
  const int64_t per_group = g.f / g.groups;
  const int64_t per_block = g.n / g.blocks;
  const int64_t window = g.ph * g.pw;
  const int64_t groups4 = (window + 3) / 4;
  const int64_t taps = g.kh * g.kw * g.c;
  const std::vector<int64_t> tap_offset = TapOffsets(g);
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
          __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
          const __m256 b0 = bi ? _mm256_loadu_ps(bi + f0) : zero;
          const __m256 b1 = bi ? _mm256_loadu_ps(bi + f0 + 8) : zero;
          for (int64_t p0 = 0; p0 < groups4 * 4; p0 += 4) {
            __m256 a[4] = {zero, zero, zero, zero};
            __m256 c[4] = {zero, zero, zero, zero};
            const float* wp = wi + f0;
            for (int64_t t = 0; t < taps; ++t, wp += g.f) {
              const __m256 w0 = _mm256_loadu_ps(wp), w1 = _mm256_loadu_ps(wp + 8);
              const int64_t o = tap_offset[t];
              const __m256 v0 = _mm256_set1_ps(xp[p0][o]), v1 = _mm256_set1_ps(xp[p0 + 1][o]);
              const __m256 v2 = _mm256_set1_ps(xp[p0 + 2][o]), v3 = _mm256_set1_ps(xp[p0 + 3][o]);
              a[0] = _mm256_fmadd_ps(v0, w0, a[0]), c[0] = _mm256_fmadd_ps(v0, w1, c[0]);
              a[1] = _mm256_fmadd_ps(v1, w0, a[1]), c[1] = _mm256_fmadd_ps(v1, w1, c[1]);
              a[2] = _mm256_fmadd_ps(v2, w0, a[2]), c[2] = _mm256_fmadd_ps(v2, w1, c[2]);
              a[3] = _mm256_fmadd_ps(v3, w0, a[3]), c[3] = _mm256_fmadd_ps(v3, w1, c[3]);
            }
            if (!route) {
              m0 = _mm256_max_ps(m0, _mm256_max_ps(_mm256_max_ps(a[0], a[1]), _mm256_max_ps(a[2], a[3])));
              m1 = _mm256_max_ps(m1, _mm256_max_ps(_mm256_max_ps(c[0], c[1]), _mm256_max_ps(c[2], c[3])));
              continue;
            }
            // TensorFlow's argmax: the first strict maximum of the activated values (a short
            // last group repeats a position, which is never strictly greater).
            for (int k = 0; k < 4; ++k) {
              __m256 u = a[k], v = c[k];
              if (bi) u = _mm256_add_ps(u, b0), v = _mm256_add_ps(v, b1);
              if (g.relu) {
                u = _mm256_and_ps(u, _mm256_cmp_ps(u, zero, _CMP_GT_OQ));
                v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
              }
              const __m256i at = _mm256_set1_epi32(static_cast<int32_t>(std::min<int64_t>(p0 + k, window - 1)));
              const __m256 gu = _mm256_cmp_ps(u, m0, _CMP_GT_OQ), gv = _mm256_cmp_ps(v, m1, _CMP_GT_OQ);
              m0 = _mm256_blendv_ps(m0, u, gu), m1 = _mm256_blendv_ps(m1, v, gv);
              i0 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(i0), _mm256_castsi256_ps(at), gu));
              i1 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(i1), _mm256_castsi256_ps(at), gv));
            }
          }
          if (!route) {
            if (bi) m0 = _mm256_add_ps(m0, b0), m1 = _mm256_add_ps(m1, b1);
            if (g.relu) {
              // v > 0 ? v : 0 (max(v, 0) would keep a -0 or a NaN).
              m0 = _mm256_and_ps(m0, _mm256_cmp_ps(m0, zero, _CMP_GT_OQ));
              m1 = _mm256_and_ps(m1, _mm256_cmp_ps(m1, zero, _CMP_GT_OQ));
            }
          }
          // per_group is a multiple of 16 here: the 16 channels are in one group.
          const int64_t grp = f0 / per_group;
          float* o = out + (((grp * g.n + i) * g.qh + qy) * g.qw + qx) * per_group + (f0 - grp * per_group);
          _mm256_storeu_ps(o, m0);
          _mm256_storeu_ps(o + 8, m1);
          if (route) {
            if (g.relu) {
              const __m256i masked = _mm256_set1_epi32(kMasked);
              const __m256i off0 = _mm256_castps_si256(_mm256_cmp_ps(m0, zero, _CMP_GT_OQ));
              const __m256i off1 = _mm256_castps_si256(_mm256_cmp_ps(m1, zero, _CMP_GT_OQ));
              i0 = _mm256_or_si256(i0, _mm256_andnot_si256(off0, masked));
              i1 = _mm256_or_si256(i1, _mm256_andnot_si256(off1, masked));
            }
            int32_t* ro = route + (o - out);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(ro), i0);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(ro + 8), i1);
          }
        }
      }
    }
  }
}
#endif

#ifdef HAVE_AVX2_PATH
// One pooled output's 16 channels from its window's four sums: the AVX2 path's operations, 16
// lanes wide, so the same values and route.
__attribute__((target("avx512f"))) inline void PoolAvx512(__m512 a0, __m512 a1, __m512 a2,
                                                         __m512 a3, const float* bias, bool relu,
                                                         float* out, int32_t* route) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512 b = bias ? _mm512_loadu_ps(bias) : zero;
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  if (!route) {
    m = _mm512_max_ps(m, _mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3)));
    if (bias) m = _mm512_add_ps(m, b);
    if (relu) m = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ), m);
    _mm512_storeu_ps(out, m);
    return;
  }
  __m512i where = _mm512_setzero_si512();
  const __m512 sums[4] = {a0, a1, a2, a3};
  for (int k = 0; k < 4; ++k) {
    __m512 u = sums[k];
    if (bias) u = _mm512_add_ps(u, b);
    if (relu) u = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(u, zero, _CMP_GT_OQ), u);
    const __mmask16 gt = _mm512_cmp_ps_mask(u, m, _CMP_GT_OQ);
    m = _mm512_mask_mov_ps(m, gt, u);
    where = _mm512_mask_mov_epi32(where, gt, _mm512_set1_epi32(k));
  }
  if (relu) {
    const __mmask16 off = _mm512_cmp_ps_mask(m, zero, _CMP_NGT_UQ);
    where = _mm512_mask_or_epi32(where, off, where, _mm512_set1_epi32(kMasked));
  }
  _mm512_storeu_ps(out, m);
  _mm512_storeu_si512(route, where);
}

// AVX-512: Q pooled outputs × their 2×2 window × NB blocks of 16 channels accumulate in registers
// (24 of the 32), each accumulator the same fused multiply-add chain over the taps as the scalar
// path; then each pooled output is taken from its four sums and written to out[j] (its route to
// route[j]), or not where out[j] is null. One base pointer per pooled output and one offset per
// window position keep the addressing in general registers.
template <int NB, int Q>
__attribute__((target("avx512f"))) inline void TileAvx512(const float* const* base,
                                                         const int64_t* window_offset,
                                                         const int64_t* tap_offset, int64_t taps,
                                                         const float* wp, int64_t tap_stride,
                                                         const float* bias, bool relu,
                                                         float* const* out,
                                                         int32_t* const* route) {
  constexpr int kWindow = 4;
  __m512 a[Q][kWindow][NB];
#pragma GCC unroll 8
  for (int j = 0; j < Q; ++j)
#pragma GCC unroll 4
    for (int k = 0; k < kWindow; ++k)
#pragma GCC unroll 2
      for (int b = 0; b < NB; ++b) a[j][k][b] = _mm512_setzero_ps();
  const float* bases[Q];
#pragma GCC unroll 8
  for (int j = 0; j < Q; ++j) bases[j] = base[j];
  const int64_t w0 = window_offset[0], w1 = window_offset[1];
  const int64_t w2 = window_offset[2], w3 = window_offset[3];
  for (int64_t t = 0; t < taps; ++t, wp += tap_stride) {
    __m512 wv[NB];
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) wv[b] = _mm512_loadu_ps(wp + 16 * b);
    const int64_t o = tap_offset[t];
    const int64_t at[kWindow] = {o + w0, o + w1, o + w2, o + w3};
#pragma GCC unroll 4
    for (int k = 0; k < kWindow; ++k) {
#pragma GCC unroll 8
      for (int j = 0; j < Q; ++j) {
        const __m512 v = _mm512_set1_ps(bases[j][at[k]]);
#pragma GCC unroll 2
        for (int b = 0; b < NB; ++b) a[j][k][b] = _mm512_fmadd_ps(v, wv[b], a[j][k][b]);
      }
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < Q; ++j) {
    if (!out[j]) continue;
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) {
      PoolAvx512(a[j][0][b], a[j][1][b], a[j][2][b], a[j][3][b], bias ? bias + 16 * b : nullptr,
                 relu, out[j] + 16 * b, route ? route[j] + 16 * b : nullptr);
    }
  }
}

template <int NB, int Q>
__attribute__((target("avx512f"))) void ExamplesAvx512(const Geometry& g, const float* x,
                                                      const float* w, const float* b, float* out,
                                                      int32_t* route, int64_t begin,
                                                      int64_t end) {
  const int64_t per_group = g.f / g.groups;
  const int64_t per_block = g.n / g.blocks;
  const int64_t taps = g.kh * g.kw * g.c;
  const int64_t pooled = g.qh * g.qw;
  const std::vector<int64_t> tap_offset = TapOffsets(g);
  const int64_t window_offset[4] = {0, g.c, g.w * g.c, (g.w + 1) * g.c};
  // With more channels than one tile, the sets this range uses repacked as
  // [set][channel tile][tap][NB·16]: a tile's weights side by side rather than g.f apart.
  constexpr int64_t kTile = NB * 16;
  const int64_t first = begin / per_block, sets = end > begin ? (end - 1) / per_block - first + 1 : 0;
  std::vector<float> packed;
  if (g.f > kTile) {
    packed.resize(sets * taps * g.f);
    for (int64_t s = 0; s < sets; ++s)
      for (int64_t k = 0; k < g.f / kTile; ++k)
        for (int64_t t = 0; t < taps; ++t)
          std::copy_n(w + ((first + s) * taps + t) * g.f + k * kTile, kTile,
                      packed.data() + ((s * (g.f / kTile) + k) * taps + t) * kTile);
  }
  const int64_t tile_stride = packed.empty() ? kTile : taps * kTile;  // from one tile to the next
  const int64_t tap_stride = packed.empty() ? g.f : kTile;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t set = i / per_block;
    const float* wi = packed.empty() ? w + set * taps * g.f : packed.data() + (set - first) * taps * g.f;
    const float* bi = b ? b + set * g.f : nullptr;
    const float* xi = x + i * g.h * g.w * g.c;
    for (int64_t j0 = 0; j0 < pooled; j0 += Q) {
      // The last chunk repeats its last pooled output (computed, not written).
      const float* base[Q];
      for (int j = 0; j < Q; ++j) {
        const int64_t q = std::min<int64_t>(j0 + j, pooled - 1);
        base[j] = xi + ((q / g.qw) * g.sh * g.w + (q % g.qw) * g.sw) * g.c;
      }
      for (int64_t f0 = 0; f0 < g.f; f0 += kTile) {
        float* outs[Q];
        int32_t* routes[Q];
        const int64_t grp = f0 / per_group;
        for (int j = 0; j < Q; ++j) {
          const int64_t at = ((grp * g.n + i) * pooled + j0 + j) * per_group + (f0 - grp * per_group);
          outs[j] = j0 + j < pooled ? out + at : nullptr;
          routes[j] = route && j0 + j < pooled ? route + at : nullptr;
        }
        TileAvx512<NB, Q>(base, window_offset, tap_offset.data(), taps,
                          wi + (f0 / kTile) * tile_stride, tap_stride, bi ? bi + f0 : nullptr,
                          g.relu, outs, route ? routes : nullptr);
      }
    }
  }
}
#endif

void Examples(const Geometry& g, const float* x, const float* w, const float* b, float* out,
              int32_t* route, int64_t begin, int64_t end) {
#ifdef HAVE_AVX2_PATH
  if (g.ph == 2 && g.pw == 2 && (g.f / g.groups) % 16 == 0 && __builtin_cpu_supports("avx512f")) {
    if ((g.f / g.groups) % 32 == 0) {
      ExamplesAvx512<2, 3>(g, x, w, b, out, route, begin, end);
    } else {
      ExamplesAvx512<1, 6>(g, x, w, b, out, route, begin, end);
    }
    return;
  }
  if ((g.f / g.groups) % 16 == 0 && g.ph * g.pw <= kMaxWindow - 3 &&
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    ExamplesAvx2(g, x, w, b, out, route, begin, end);
    return;
  }
#endif
  ExamplesScalar(g, x, w, b, out, route, begin, end);
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
  antifragile::Fail(ctx, "AntifragileConvPool: " + message);
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

void Parallel(const Geometry& g, const float* x, const float* w, const float* b, float* out,
              int32_t* route) {
  Split(g.n, [&](int64_t begin, int64_t end) { Examples(g, x, w, b, out, route, begin, end); });
}

void ComputeForward(void* kernel, TF_OpKernelContext* ctx, bool with_route) {
  const Attrs& attrs = *static_cast<Attrs*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor *x = nullptr, *filter = nullptr, *bias = nullptr, *y = nullptr, *route = nullptr;
  TF_GetInput(ctx, 0, &x, status);
  if (TF_GetCode(status) == TF_OK) TF_GetInput(ctx, 1, &filter, status);
  if (TF_GetCode(status) == TF_OK) TF_GetInput(ctx, 2, &bias, status);
  Geometry g{};
  std::string why;
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, status);
  } else if (!Geometry5(x, filter, bias, attrs, &g, &why)) {
    Fail(ctx, why);
  } else if (with_route && (g.groups != 1 || g.ph * g.pw > 0xff)) {
    Fail(ctx, "the route is only laid out for groups = 1 and windows of at most 255 positions");
  } else {
    const int64_t dims[4] = {g.groups * g.n, g.qh, g.qw, g.f / g.groups};
    const int64_t total = dims[0] * dims[1] * dims[2] * dims[3];
    y = TF_AllocateOutput(ctx, 0, TF_FLOAT, dims, 4, total * sizeof(float), status);
    if (with_route && TF_GetCode(status) == TF_OK) {
      route = TF_AllocateOutput(ctx, 1, TF_INT32, dims, 4, total * sizeof(int32_t), status);
    }
    if (TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(ctx, status);
    } else {
      Parallel(g, static_cast<const float*>(TF_TensorData(x)),
               static_cast<const float*>(TF_TensorData(filter)),
               g.bias ? static_cast<const float*>(TF_TensorData(bias)) : nullptr,
               static_cast<float*>(TF_TensorData(y)),
               route ? static_cast<int32_t*>(TF_TensorData(route)) : nullptr);
    }
  }
  for (TF_Tensor* t : {x, filter, bias, y, route}) TF_DeleteTensor(t);
  TF_DeleteStatus(status);
}

void Compute(void* kernel, TF_OpKernelContext* ctx) { ComputeForward(kernel, ctx, false); }
void ComputeRoute(void* kernel, TF_OpKernelContext* ctx) { ComputeForward(kernel, ctx, true); }

// ---- The input gradient: AntifragileConvPoolGrad ----
//
// dy [m, qh, qw, f] (the gradient at the pooled output), route [r, qh, qw, f] (from
// AntifragileConvPoolRoute; example i uses route i mod r: copies of one batch share it), filter
// [blocks, kh, kw, c, f] (example i uses set i / (m / blocks)); attrs pool (non-overlapping:
// strides ≥ window) and input_size [h, w]. Output dx [m, h, w, c]: TensorFlow's max-pool
// gradient (each value to its window's argmax), times ReLU's mask, then TensorFlow's own
// Conv2DBackpropInput (not oneDNN's: src/kernels/native/narrow-conv.ts), bit for bit. That
// kernel multiplies dy by the filter per input position (a fused multiply-add chain over the
// output channels, ascending from 0) and adds the products into dx position by position in
// row-major order; zero terms change neither (no sum here is ever -0), so only routed values
// are visited.

// Reads int-list attributes into `lists` (name, destination, length) in order; on a failure
// the kernel's construction fails with TensorFlow's message.
void ReadIntLists(TF_OpKernelConstruction* ctx,
                  std::initializer_list<std::tuple<const char*, int64_t*, int>> lists) {
  TF_Status* status = TF_NewStatus();
  for (const auto& [name, values, length] : lists) {
    TF_OpKernelConstruction_GetAttrInt64List(ctx, name, values, length, status);
    if (TF_GetCode(status) != TF_OK) break;
  }
  if (TF_GetCode(status) != TF_OK) TF_OpKernelConstruction_Failure(ctx, status);
  TF_DeleteStatus(status);
}

// The pooling [ph, pw, sh, sw] and a size [h, w] (attribute `kSizeName`): the grad and scatter ops.
struct GradAttrs {
  int64_t pool[4];
  int64_t size[2];
};

template <const char* kSizeName>
void* CreateGrad(TF_OpKernelConstruction* ctx) {
  auto* attrs = new GradAttrs{};
  ReadIntLists(ctx, {{"pool", attrs->pool, 4}, {kSizeName, attrs->size, 2}});
  return attrs;
}

constexpr char kInputSize[] = "input_size";
constexpr char kConvSize[] = "conv_size";

void DeleteGrad(void* attrs) { delete static_cast<GradAttrs*>(attrs); }

struct GradGeometry {
  int64_t m, r, blocks, h, w, c, kh, kw, f, ph, pw, sh, sw, qh, qw;
};

// Per example: each pooled value's gradient (times ReLU's mask) goes to its window position's
// column of filter products, a fused multiply-add chain over the output channels in ascending
// order (the channels routed elsewhere would add exact zeros); then the columns are added into
// dx position by position, in row-major order. `wt` is the filter as [set][f][padded taps].

// One example's pointers.
struct GradExample {
  const float* w;      // [f][padded]
  const float* dy;     // [qh, qw, f]
  const int32_t* route;
  float* dx;           // [h, w, c], zeroed here
};

inline GradExample GradStart(const GradGeometry& g, const float* dy, const int32_t* route,
                             const float* wt, int64_t padded, float* dx, int64_t i) {
  GradExample e{wt + (i / (g.m / g.blocks)) * g.f * padded, dy + i * g.qh * g.qw * g.f,
                route + (i % g.r) * g.qh * g.qw * g.f, dx + i * g.h * g.w * g.c};
  std::fill(e.dx, e.dx + g.h * g.w * g.c, 0.0f);
  return e;
}

// The gradient routed through pooled value `at` (ReLU's mask applied), and its window position.
inline float Routed(const GradExample& e, int64_t at, int32_t* position) {
  const int32_t code = e.route[at];
  *position = code & 0xff;
  return (code & kMasked) ? e.dy[at] * 0.0f : e.dy[at];
}

// Adds one row of cells' columns into dx, positions in row-major order.
inline void AddColumns(const GradGeometry& g, const float* cols, int64_t padded, float* dx,
                       int64_t qy) {
  const int64_t window = g.ph * g.pw;
  for (int64_t dyy = 0; dyy < g.ph; ++dyy) {
    const int64_t oh = qy * g.sh + dyy;
    for (int64_t qx = 0; qx < g.qw; ++qx) {
      for (int64_t dxx = 0; dxx < g.pw; ++dxx) {
        const int64_t ow = qx * g.sw + dxx;
        const float* col = cols + (qx * window + dyy * g.pw + dxx) * padded;
        for (int64_t rr = 0, t = 0; rr < g.kh; ++rr) {
          float* row = dx + ((oh + rr) * g.w + ow) * g.c;
          for (int64_t k = 0; k < g.kw * g.c; ++k, ++t) row[k] += col[t];
        }
      }
    }
  }
}

void GradExamplesScalar(const GradGeometry& g, const float* dy, const int32_t* route,
                        const float* wt, int64_t padded, float* dx, int64_t begin, int64_t end) {
  const int64_t taps = g.kh * g.kw * g.c;
  std::vector<float> cols(g.qw * g.ph * g.pw * padded);
  for (int64_t i = begin; i < end; ++i) {
    const GradExample e = GradStart(g, dy, route, wt, padded, dx, i);
    for (int64_t qy = 0; qy < g.qh; ++qy) {
      std::fill(cols.begin(), cols.end(), 0.0f);
      for (int64_t qx = 0; qx < g.qw; ++qx) {
        for (int64_t f = 0; f < g.f; ++f) {
          int32_t p;
          const float v = Routed(e, (qy * g.qw + qx) * g.f + f, &p);
          float* col = cols.data() + (qx * g.ph * g.pw + p) * padded;
          const float* wf = e.w + f * padded;
          for (int64_t t = 0; t < taps; ++t) col[t] = std::fma(v, wf[t], col[t]);
        }
      }
      AddColumns(g, cols.data(), padded, e.dx, qy);
    }
  }
}

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2,fma"))) void GradExamplesAvx2(const GradGeometry& g, const float* dy,
                                                          const int32_t* route, const float* wt,
                                                          int64_t padded, float* dx,
                                                          int64_t begin, int64_t end) {
  std::vector<float> cols(g.qw * g.ph * g.pw * padded);
  for (int64_t i = begin; i < end; ++i) {
    const GradExample e = GradStart(g, dy, route, wt, padded, dx, i);
    for (int64_t qy = 0; qy < g.qh; ++qy) {
      std::fill(cols.begin(), cols.end(), 0.0f);
      for (int64_t qx = 0; qx < g.qw; ++qx) {
        for (int64_t f = 0; f < g.f; ++f) {
          int32_t p;
          const __m256 v = _mm256_set1_ps(Routed(e, (qy * g.qw + qx) * g.f + f, &p));
          float* col = cols.data() + (qx * g.ph * g.pw + p) * padded;
          const float* wf = e.w + f * padded;
          for (int64_t t = 0; t < padded; t += 8) {
            _mm256_storeu_ps(col + t,
                             _mm256_fmadd_ps(v, _mm256_loadu_ps(wf + t), _mm256_loadu_ps(col + t)));
          }
        }
      }
      AddColumns(g, cols.data(), padded, e.dx, qy);
    }
  }
}
#endif

#ifdef HAVE_AVX2_PATH
// One input channel: the same sums, laid out for vectors. The routed gradient is spread into a
// zeroed [oh][f][ow] map; each tap's products form a plane [oh][ow] (the chain over f, eight
// positions of a row at a time); then each input row adds the planes' rows, shifted by the tap's
// column, taps in the order positions reach that value (row-major positions: descending filter
// row, then descending filter column). Zero products and out-of-range positions add exact zeros.
__attribute__((target("avx2,fma"))) void GradExamplesPlanar(const GradGeometry& g,
                                                            const float* dy,
                                                            const int32_t* route,
                                                            const float* wt, int64_t padded,
                                                            float* dx, int64_t begin,
                                                            int64_t end) {
  const int64_t oh = g.h - g.kh + 1, ow = g.w - g.kw + 1;
  const int64_t row = (ow + 7) / 8 * 8;  // a plane row: whole vectors, zero past ow
  const int64_t taps = g.kh * g.kw;
  std::vector<float> spread(oh * g.f * row), planes(taps * oh * row), line(g.w + row);
  for (int64_t i = begin; i < end; ++i) {
    const GradExample e = GradStart(g, dy, route, wt, padded, dx, i);
    std::fill(spread.begin(), spread.end(), 0.0f);
    for (int64_t qy = 0; qy < g.qh; ++qy) {
      for (int64_t qx = 0; qx < g.qw; ++qx) {
        for (int64_t f = 0; f < g.f; ++f) {
          int32_t p;
          const float v = Routed(e, (qy * g.qw + qx) * g.f + f, &p);
          const int64_t y = qy * g.sh + p / g.pw, x = qx * g.sw + p % g.pw;
          spread[(y * g.f + f) * row + x] = v;
        }
      }
    }
    for (int64_t y = 0; y < oh; ++y) {
      for (int64_t t = 0; t < taps; ++t) {
        for (int64_t x = 0; x < row; x += 16) {
          const bool two = x + 8 < row;
          __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
          const float* sp = spread.data() + y * g.f * row + x;
          for (int64_t f = 0; f < g.f; ++f, sp += row) {
            const __m256 w = _mm256_set1_ps(e.w[f * padded + t]);
            a = _mm256_fmadd_ps(_mm256_loadu_ps(sp), w, a);
            if (two) b = _mm256_fmadd_ps(_mm256_loadu_ps(sp + 8), w, b);
          }
          float* out = planes.data() + (t * oh + y) * row + x;
          _mm256_storeu_ps(out, a);
          if (two) _mm256_storeu_ps(out + 8, b);
        }
      }
    }
    for (int64_t y = 0; y < g.h; ++y) {
      float* to = e.dx + y * g.w;
      for (int64_t r = g.kh - 1; r >= 0; --r) {
        const int64_t src = y - r;
        if (src < 0 || src >= oh) continue;
        for (int64_t sft = g.kw - 1; sft >= 0; --sft) {
          const float* from = planes.data() + ((r * g.kw + sft) * oh + src) * row;
          for (int64_t x = 0; x < ow; ++x) to[x + sft] += from[x];
        }
      }
    }
  }
}
#endif

#ifdef HAVE_AVX2_PATH
// One input channel with AVX-512, plane rows of NV·16 lanes (conv outputs up to NV·16 wide): the
// same sums as the planar path, a pooled row at a time. Its window rows' routed gradient is
// spread into a zeroed [ph][f][lanes] buffer; each conv row's tap planes (the chain over f,
// kGroup taps × NV vectors in registers) go to a buffer with zeros before and after, and each
// tap's plane is added into its input row shifted by the tap's column, descending columns:
// conv rows ascend in the outer loop, so every input value takes its terms in row-major order of
// positions. Rows no window reaches add exact zeros and are skipped.
template <int NV>
__attribute__((target("avx512f"))) void GradExamplesPlanar512(const GradGeometry& g,
                                                             const float* dy,
                                                             const int32_t* route,
                                                             const float* wt, int64_t padded,
                                                             float* dx, int64_t begin,
                                                             int64_t end) {
  constexpr int kGroup = 9;
  constexpr int64_t kLanes = NV * 16, kPad = 16;
  const int64_t taps = g.kh * g.kw;
  const int64_t plane_stride = kPad + kLanes + kPad;
  const int64_t vectors = (g.w + 15) / 16;  // of an input row
  std::vector<float> spread(g.ph * g.f * kLanes), planes(taps * plane_stride, 0.0f);
  std::vector<int64_t> spread_at(g.ph * g.pw);  // a window position's offset in `spread`
  for (int64_t p = 0; p < g.ph * g.pw; ++p) spread_at[p] = (p / g.pw) * g.f * kLanes + p % g.pw;
  for (int64_t i = begin; i < end; ++i) {
    const GradExample e = GradStart(g, dy, route, wt, padded, dx, i);
    for (int64_t qy = 0; qy < g.qh; ++qy) {
      std::fill(spread.begin(), spread.end(), 0.0f);
      for (int64_t qx = 0, at = qy * g.qw * g.f; qx < g.qw; ++qx) {
        float* cell = spread.data() + qx * g.sw;
        for (int64_t f = 0; f < g.f; ++f, ++at) {
          int32_t p;
          const float v = Routed(e, at, &p);
          cell[spread_at[p] + f * kLanes] = v;
        }
      }
      for (int64_t k = 0; k < g.ph; ++k) {
        const int64_t oy = qy * g.sh + k;
        const float* sp = spread.data() + k * g.f * kLanes;
        for (int64_t t0 = 0; t0 < taps; t0 += kGroup) {
          __m512 acc[kGroup][NV];
#pragma GCC unroll 9
          for (int j = 0; j < kGroup; ++j)
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) acc[j][v] = _mm512_setzero_ps();
          // A short last group repeats its last tap (computed, not stored twice).
          int64_t tap[kGroup];
          for (int j = 0; j < kGroup; ++j) tap[j] = std::min<int64_t>(t0 + j, taps - 1);
          for (int64_t f = 0; f < g.f; ++f) {
            __m512 sv[NV];
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v) sv[v] = _mm512_loadu_ps(sp + f * kLanes + 16 * v);
            const float* wf = e.w + f * padded;
#pragma GCC unroll 9
            for (int j = 0; j < kGroup; ++j) {
              const __m512 w = _mm512_set1_ps(wf[tap[j]]);
#pragma GCC unroll 2
              for (int v = 0; v < NV; ++v) acc[j][v] = _mm512_fmadd_ps(sv[v], w, acc[j][v]);
            }
          }
          for (int j = 0; j < kGroup && t0 + j < taps; ++j)
#pragma GCC unroll 2
            for (int v = 0; v < NV; ++v)
              _mm512_storeu_ps(planes.data() + (t0 + j) * plane_stride + kPad + 16 * v, acc[j][v]);
        }
        for (int64_t r = 0; r < g.kh; ++r) {
          float* row = e.dx + (oy + r) * g.w;
          for (int64_t v = 0; v < vectors; ++v) {
            const int64_t left = g.w - 16 * v;
            const __mmask16 m = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
            __m512 sum = _mm512_maskz_loadu_ps(m, row + 16 * v);
            for (int64_t s = g.kw - 1; s >= 0; --s) {
              const float* from = planes.data() + (r * g.kw + s) * plane_stride + kPad - s;
              sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(m, from + 16 * v));
            }
            _mm512_mask_storeu_ps(row + 16 * v, m, sum);
          }
        }
      }
    }
  }
}
#endif

void GradExamples(const GradGeometry& g, const float* dy, const int32_t* route, const float* wt,
                  int64_t padded, float* dx, int64_t begin, int64_t end) {
#ifdef HAVE_AVX2_PATH
  const int64_t ow = g.w - g.kw + 1;
  if (g.c == 1 && ow <= 32 && g.kw <= 17 && __builtin_cpu_supports("avx512f")) {
    if (ow <= 16) {
      GradExamplesPlanar512<1>(g, dy, route, wt, padded, dx, begin, end);
    } else {
      GradExamplesPlanar512<2>(g, dy, route, wt, padded, dx, begin, end);
    }
    return;
  }
  if (g.c == 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    GradExamplesPlanar(g, dy, route, wt, padded, dx, begin, end);
    return;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    GradExamplesAvx2(g, dy, route, wt, padded, dx, begin, end);
    return;
  }
#endif
  GradExamplesScalar(g, dy, route, wt, padded, dx, begin, end);
}

constexpr const char* kBadRoute = "a route value names no position of its window";

// Whether a route value names one of a window's `window` positions.
inline bool Names(int32_t code, int64_t window) {
  return (code & ~(kMasked | 0xff)) == 0 && (code & 0xff) < window;
}

// What is wrong with a pooled gradient and its route for pooling `pool` ([ph, pw, sh, sw], windows
// that do not overlap) over a [oh, ow] map, or empty: dy [m, qh, qw, f], route int32
// [r, qh, qw, f] (example i takes route i mod r), every route naming a position of its window
// (the kernels write where it points).
std::string RouteProblem(TF_Tensor* dy, TF_Tensor* route, const int64_t* pool, int64_t oh,
                         int64_t ow, bool scan_codes = true) {
  const int64_t m = TF_Dim(dy, 0), qh = TF_Dim(dy, 1), qw = TF_Dim(dy, 2), f = TF_Dim(dy, 3);
  const int64_t r = TF_Dim(route, 0), ph = pool[0], pw = pool[1], sh = pool[2], sw = pool[3];
  const bool ok = (m == 0 || (r >= 1 && m % r == 0)) && TF_Dim(route, 1) == qh &&
                  TF_Dim(route, 2) == qw && TF_Dim(route, 3) == f && ph >= 1 && pw >= 1 &&
                  sh >= ph && sw >= pw && ph * pw <= 255 && oh >= ph && ow >= pw &&
                  (oh - ph) / sh + 1 == qh && (ow - pw) / sw + 1 == qw;
  if (!ok) return "inconsistent shapes or attributes";
  if (!scan_codes) return "";
  const int32_t* codes = static_cast<const int32_t*>(TF_TensorData(route));
  for (int64_t k = 0; k < r * qh * qw * f; ++k) {
    if (!Names(codes[k], ph * pw)) return kBadRoute;
  }
  return "";
}

void ComputeGrad(void* kernel, TF_OpKernelContext* ctx) {
  const GradAttrs& a = *static_cast<GradAttrs*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor *dy = nullptr, *route = nullptr, *filter = nullptr, *dx = nullptr;
  TF_GetInput(ctx, 0, &dy, status);
  if (TF_GetCode(status) == TF_OK) TF_GetInput(ctx, 1, &route, status);
  if (TF_GetCode(status) == TF_OK) TF_GetInput(ctx, 2, &filter, status);
  GradGeometry g{};
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, status);
  } else if (TF_NumDims(dy) != 4 || TF_NumDims(route) != 4 || TF_NumDims(filter) != 5 ||
             TF_TensorType(route) != TF_INT32) {
    Fail(ctx, "grad: dy [m, qh, qw, f], route int32 [r, qh, qw, f], filter [blocks, kh, kw, c, f]");
  } else {
    g.m = TF_Dim(dy, 0), g.qh = TF_Dim(dy, 1), g.qw = TF_Dim(dy, 2), g.f = TF_Dim(dy, 3);
    g.r = TF_Dim(route, 0), g.blocks = TF_Dim(filter, 0);
    g.kh = TF_Dim(filter, 1), g.kw = TF_Dim(filter, 2), g.c = TF_Dim(filter, 3);
    g.h = a.size[0], g.w = a.size[1];
    g.ph = a.pool[0], g.pw = a.pool[1], g.sh = a.pool[2], g.sw = a.pool[3];
    const std::string why =
        g.blocks >= 1 && g.m % g.blocks == 0 && TF_Dim(filter, 4) == g.f
            ? RouteProblem(dy, route, a.pool, g.h - g.kh + 1, g.w - g.kw + 1)
            : "inconsistent shapes or attributes";
    if (!why.empty()) {
      Fail(ctx, "grad: " + why);
    } else {
      const int64_t dims[4] = {g.m, g.h, g.w, g.c};
      dx = TF_AllocateOutput(ctx, 0, TF_FLOAT, dims, 4, g.m * g.h * g.w * g.c * sizeof(float),
                             status);
      if (TF_GetCode(status) != TF_OK) {
        TF_OpKernelContext_Failure(ctx, status);
      } else {
        // The filters transposed to [set][f][taps]: one output channel's taps side by side.
        const int64_t taps = g.kh * g.kw * g.c;
        const int64_t padded = (taps + 7) / 8 * 8;  // whole vectors; the padding stays 0
        const float* w = static_cast<const float*>(TF_TensorData(filter));
        std::vector<float> wt(g.blocks * g.f * padded, 0.0f);
        for (int64_t b = 0; b < g.blocks; ++b)
          for (int64_t t = 0; t < taps; ++t)
            for (int64_t f = 0; f < g.f; ++f)
              wt[(b * g.f + f) * padded + t] = w[(b * taps + t) * g.f + f];
        const float* dyp = static_cast<const float*>(TF_TensorData(dy));
        const int32_t* rp = static_cast<const int32_t*>(TF_TensorData(route));
        float* dxp = static_cast<float*>(TF_TensorData(dx));
        Split(g.m, [&](int64_t begin, int64_t end) {
          GradExamples(g, dyp, rp, wt.data(), padded, dxp, begin, end);
        });
      }
    }
  }
  for (TF_Tensor* t : {dy, route, filter, dx}) TF_DeleteTensor(t);
  TF_DeleteStatus(status);
}

// ---- The pooled gradient spread back: AntifragileRouteScatter ----
//
// dy [m, qh, qw, f] and the route of AntifragileConvPoolRoute → [m, oh, ow, f]: the gradient at
// the convolution's output as TensorFlow's MaxPoolGrad and then ReLU's gradient give it. That is
// 0 + dy at each pooled value's routed position (MaxPoolGrad adds into zeros), times 0 where the
// activation was not positive (ReLU's gradient multiplies by its step), and 0 elsewhere. For
// the convolutions whose input gradient TensorFlow sums in an order our grad op does not repeat:
// their caller runs TensorFlow's own Conv2DBackpropInput on this.

// False at the first route value that names no position of its window (the op then fails).
bool Scatter(const float* dy, const int32_t* route, float* out, int64_t r, int64_t qh,
             int64_t qw, int64_t f, const int64_t* pool, int64_t oh, int64_t ow, int64_t begin,
             int64_t end) {
  const int64_t pooled = qh * qw * f;
  std::fill(out + begin * oh * ow * f, out + end * oh * ow * f, 0.0f);
  for (int64_t i = begin; i < end; ++i) {
    const float* d = dy + i * pooled;
    const int32_t* codes = route + (i % r) * pooled;
    float* o = out + i * oh * ow * f;
    for (int64_t qy = 0, k = 0; qy < qh; ++qy) {
      for (int64_t qx = 0; qx < qw; ++qx) {
        for (int64_t c = 0; c < f; ++c, ++k) {
          if (!Names(codes[k], pool[0] * pool[1])) return false;
          const int32_t p = codes[k] & 0xff;
          const int64_t y = qy * pool[2] + p / pool[1], x = qx * pool[3] + p % pool[1];
          const float v = 0.0f + d[k];
          o[(y * ow + x) * f + c] = (codes[k] & kMasked) ? v * 0.0f : v;
        }
      }
    }
  }
  return true;
}

void ComputeScatter(void* kernel, TF_OpKernelContext* ctx) {
  const GradAttrs& a = *static_cast<GradAttrs*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor *dy = nullptr, *route = nullptr, *out = nullptr;
  TF_GetInput(ctx, 0, &dy, status);
  if (TF_GetCode(status) == TF_OK) TF_GetInput(ctx, 1, &route, status);
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, status);
  } else if (TF_NumDims(dy) != 4 || TF_NumDims(route) != 4 || TF_TensorType(route) != TF_INT32) {
    Fail(ctx, "scatter: dy [m, qh, qw, f], route int32 [r, qh, qw, f]");
  } else {
    const int64_t oh = a.size[0], ow = a.size[1];
    const std::string why = RouteProblem(dy, route, a.pool, oh, ow, false);
    const int64_t m = TF_Dim(dy, 0), f = TF_Dim(dy, 3);
    const int64_t dims[4] = {m, oh, ow, f};
    if (!why.empty()) {
      Fail(ctx, "scatter: " + why);
    } else if ((out = TF_AllocateOutput(ctx, 0, TF_FLOAT, dims, 4, m * oh * ow * f * sizeof(float),
                                        status)) == nullptr ||
               TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(ctx, status);
    } else {
      const float* d = static_cast<const float*>(TF_TensorData(dy));
      const int32_t* codes = static_cast<const int32_t*>(TF_TensorData(route));
      float* o = static_cast<float*>(TF_TensorData(out));
      const int64_t r = TF_Dim(route, 0), qh = TF_Dim(dy, 1), qw = TF_Dim(dy, 2);
      std::atomic<bool> routed{true};
      Split(m, [&](int64_t begin, int64_t end) {
        if (!Scatter(d, codes, o, r, qh, qw, f, a.pool, oh, ow, begin, end)) routed = false;
      });
      if (!routed) Fail(ctx, std::string("scatter: ") + kBadRoute);
    }
  }
  for (TF_Tensor* t : {dy, route, out}) TF_DeleteTensor(t);
  TF_DeleteStatus(status);
}

void SetUnknown(TF_ShapeInferenceContext* ctx, TF_Status* status) {
  TF_ShapeInferenceContextSetUnknownShape(ctx, status);
}

// ---- A convolution's input gradient into few channels: AntifragileInputGrad ----
//
// dy [m, oh, ow, f], filter [kh, kw, c, f]; attrs strides [sh, sw], pads [top, left],
// input_size [h, w]. Output dx [m, h, w, c], TensorFlow's own Conv2DBackpropInput (the kernel
// src/kernels/native/narrow-conv.ts selects) bit for bit: per output position, the products
// with the filter as fused multiply-add chains over the output channels in ascending order from
// 0, added into dx position by position in row-major order (taps outside the input skipped).

struct InputGradAttrs {
  int64_t strides[2];
  int64_t pads[2];
  int64_t size[2];
};

void* CreateInputGrad(TF_OpKernelConstruction* ctx) {
  auto* attrs = new InputGradAttrs{};
  ReadIntLists(ctx, {{"strides", attrs->strides, 2}, {"pads", attrs->pads, 2},
                     {"input_size", attrs->size, 2}});
  return attrs;
}

void DeleteInputGrad(void* attrs) { delete static_cast<InputGradAttrs*>(attrs); }

struct InputGradGeometry {
  int64_t m, oh, ow, f, kh, kw, c, h, w, sh, sw, pt, pl;
};

// Adds one output position's column into dx, taps in (row, column, channel) order (each dx
// value gets one addition per position, so the order of positions is all that matters); only
// the taps inside the input, a contiguous run per filter row.
inline void AddColumn(const InputGradGeometry& g, const float* col, float* dx, int64_t y,
                      int64_t x) {
  const int64_t top = y * g.sh - g.pt, left = x * g.sw - g.pl;
  const int64_t r0 = std::max<int64_t>(0, -top), r1 = std::min(g.kh, g.h - top);
  const int64_t s0 = std::max<int64_t>(0, -left), s1 = std::min(g.kw, g.w - left);
  const int64_t run = (s1 - s0) * g.c;
  for (int64_t r = r0; r < r1; ++r) {
    float* to = dx + ((top + r) * g.w + left + s0) * g.c;
    const float* from = col + (r * g.kw + s0) * g.c;
    for (int64_t k = 0; k < run; ++k) to[k] += from[k];
  }
}

void InputGradScalar(const InputGradGeometry& g, const float* dy, const float* wt, int64_t padded,
                     float* dx, int64_t begin, int64_t end) {
  const int64_t taps = g.kh * g.kw * g.c;
  std::vector<float> col(padded);
  for (int64_t i = begin; i < end; ++i) {
    float* dxi = dx + i * g.h * g.w * g.c;
    std::fill(dxi, dxi + g.h * g.w * g.c, 0.0f);
    for (int64_t y = 0; y < g.oh; ++y) {
      for (int64_t x = 0; x < g.ow; ++x) {
        const float* d = dy + ((i * g.oh + y) * g.ow + x) * g.f;
        std::fill(col.begin(), col.end(), 0.0f);
        for (int64_t f = 0; f < g.f; ++f) {
          for (int64_t t = 0; t < taps; ++t) col[t] = std::fma(d[f], wt[f * padded + t], col[t]);
        }
        AddColumn(g, col.data(), dxi, y, x);
      }
    }
  }
}

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2,fma"))) void InputGradAvx2(const InputGradGeometry& g,
                                                       const float* dy, const float* wt,
                                                       int64_t padded, float* dx, int64_t begin,
                                                       int64_t end) {
  // Four output positions of a row at a time (a short last group repeats its last position,
  // whose column is then not added again), 16 taps at a time: eight accumulators in registers.
  const int64_t width = (padded + 15) / 16 * 16;
  std::vector<float> cols(4 * width, 0.0f);
  std::vector<float> w16(g.f * width, 0.0f);
  for (int64_t f = 0; f < g.f; ++f) std::copy(wt + f * padded, wt + (f + 1) * padded, &w16[f * width]);
  for (int64_t i = begin; i < end; ++i) {
    float* dxi = dx + i * g.h * g.w * g.c;
    std::fill(dxi, dxi + g.h * g.w * g.c, 0.0f);
    for (int64_t y = 0; y < g.oh; ++y) {
      for (int64_t x0 = 0; x0 < g.ow; x0 += 4) {
        const float* d[4];
        for (int64_t k = 0; k < 4; ++k) {
          d[k] = dy + ((i * g.oh + y) * g.ow + std::min(x0 + k, g.ow - 1)) * g.f;
        }
        for (int64_t t0 = 0; t0 < width; t0 += 16) {
          __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
          __m256 c0 = a0, c1 = a0, c2 = a0, c3 = a0;
          const float* wf = w16.data() + t0;
          for (int64_t f = 0; f < g.f; ++f, wf += width) {
            const __m256 w0 = _mm256_loadu_ps(wf), w1 = _mm256_loadu_ps(wf + 8);
            const __m256 v0 = _mm256_set1_ps(d[0][f]), v1 = _mm256_set1_ps(d[1][f]);
            const __m256 v2 = _mm256_set1_ps(d[2][f]), v3 = _mm256_set1_ps(d[3][f]);
            a0 = _mm256_fmadd_ps(v0, w0, a0), c0 = _mm256_fmadd_ps(v0, w1, c0);
            a1 = _mm256_fmadd_ps(v1, w0, a1), c1 = _mm256_fmadd_ps(v1, w1, c1);
            a2 = _mm256_fmadd_ps(v2, w0, a2), c2 = _mm256_fmadd_ps(v2, w1, c2);
            a3 = _mm256_fmadd_ps(v3, w0, a3), c3 = _mm256_fmadd_ps(v3, w1, c3);
          }
          float* col = cols.data() + t0;
          _mm256_storeu_ps(col, a0), _mm256_storeu_ps(col + 8, c0);
          _mm256_storeu_ps(col + width, a1), _mm256_storeu_ps(col + width + 8, c1);
          _mm256_storeu_ps(col + 2 * width, a2), _mm256_storeu_ps(col + 2 * width + 8, c2);
          _mm256_storeu_ps(col + 3 * width, a3), _mm256_storeu_ps(col + 3 * width + 8, c3);
        }
        for (int64_t k = 0; k < 4 && x0 + k < g.ow; ++k) {
          AddColumn(g, cols.data() + k * width, dxi, y, x0 + k);
        }
      }
    }
  }
}
#endif

void InputGradExamples(const InputGradGeometry& g, const float* dy, const float* wt,
                       int64_t padded, float* dx, int64_t begin, int64_t end) {
#ifdef HAVE_AVX2_PATH
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    InputGradAvx2(g, dy, wt, padded, dx, begin, end);
    return;
  }
#endif
  InputGradScalar(g, dy, wt, padded, dx, begin, end);
}

void ComputeInputGrad(void* kernel, TF_OpKernelContext* ctx) {
  const InputGradAttrs& a = *static_cast<InputGradAttrs*>(kernel);
  TF_Status* status = TF_NewStatus();
  TF_Tensor *dy = nullptr, *filter = nullptr, *dx = nullptr;
  TF_GetInput(ctx, 0, &dy, status);
  if (TF_GetCode(status) == TF_OK) TF_GetInput(ctx, 1, &filter, status);
  InputGradGeometry g{};
  if (TF_GetCode(status) != TF_OK) {
    TF_OpKernelContext_Failure(ctx, status);
  } else if (TF_NumDims(dy) != 4 || TF_NumDims(filter) != 4 ||
             TF_Dim(dy, 3) != TF_Dim(filter, 3)) {
    Fail(ctx, "input grad: dy [m, oh, ow, f] and filter [kh, kw, c, f]");
  } else {
    g.m = TF_Dim(dy, 0), g.oh = TF_Dim(dy, 1), g.ow = TF_Dim(dy, 2), g.f = TF_Dim(dy, 3);
    g.kh = TF_Dim(filter, 0), g.kw = TF_Dim(filter, 1), g.c = TF_Dim(filter, 2);
    g.h = a.size[0], g.w = a.size[1], g.sh = a.strides[0], g.sw = a.strides[1];
    g.pt = a.pads[0], g.pl = a.pads[1];
    const bool ok = g.sh >= 1 && g.sw >= 1 && g.pt >= 0 && g.pl >= 0 && g.h >= 1 && g.w >= 1 &&
                    (g.oh - 1) * g.sh - g.pt < g.h && (g.ow - 1) * g.sw - g.pl < g.w;
    const int64_t dims[4] = {g.m, g.h, g.w, g.c};
    if (!ok) {
      Fail(ctx, "input grad: inconsistent shapes or attributes");
    } else if ((dx = TF_AllocateOutput(ctx, 0, TF_FLOAT, dims, 4,
                                       g.m * g.h * g.w * g.c * sizeof(float), status)),
               TF_GetCode(status) != TF_OK) {
      TF_OpKernelContext_Failure(ctx, status);
    } else {
      const int64_t taps = g.kh * g.kw * g.c;
      const int64_t padded = (taps + 7) / 8 * 8;
      const float* w = static_cast<const float*>(TF_TensorData(filter));
      std::vector<float> wt(g.f * padded, 0.0f);
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t f = 0; f < g.f; ++f) wt[f * padded + t] = w[t * g.f + f];
      const float* dyp = static_cast<const float*>(TF_TensorData(dy));
      float* dxp = static_cast<float*>(TF_TensorData(dx));
      Split(g.m, [&](int64_t begin, int64_t end) {
        InputGradExamples(g, dyp, wt.data(), padded, dxp, begin, end);
      });
    }
  }
  for (TF_Tensor* t : {dy, filter, dx}) TF_DeleteTensor(t);
  TF_DeleteStatus(status);
}

// Registers the ops and their CPU kernels; an error message, or empty.
std::string Register() {
  TF_Status* status = TF_NewStatus();
  const auto forward = {"pool: list(int)", "relu: bool", "groups: int"};
  RegisterOp("AntifragileConvPool", {"x: float", "filter: float", "bias: float"}, {"y: float"},
             forward, Create, Compute, Delete, status);
  if (TF_GetCode(status) == TF_OK) {
    RegisterOp("AntifragileConvPoolRoute", {"x: float", "filter: float", "bias: float"},
               {"y: float", "route: int32"}, forward, Create, ComputeRoute, Delete, status);
  }
  if (TF_GetCode(status) == TF_OK) {
    RegisterOp("AntifragileConvPoolGrad", {"dy: float", "route: int32", "filter: float"},
               {"dx: float"}, {"pool: list(int)", "input_size: list(int)"},
               CreateGrad<kInputSize>, ComputeGrad, DeleteGrad, status);
  }
  if (TF_GetCode(status) == TF_OK) {
    RegisterOp("AntifragileRouteScatter", {"dy: float", "route: int32"}, {"y: float"},
               {"pool: list(int)", "conv_size: list(int)"}, CreateGrad<kConvSize>,
               ComputeScatter, DeleteGrad, status);
  }
  if (TF_GetCode(status) == TF_OK) {
    RegisterOp("AntifragileInputGrad", {"dy: float", "filter: float"}, {"dx: float"},
               {"strides: list(int)", "pads: list(int)", "input_size: list(int)"},
               CreateInputGrad, ComputeInputGrad, DeleteInputGrad, status);
  }
  if (TF_GetCode(status) == TF_OK) antifragile::RegisterBatchNormOps(status);
  std::string error = TF_GetCode(status) == TF_OK ? "" : TF_Message(status);
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

namespace antifragile {

void Fail(TF_OpKernelContext* ctx, const std::string& message) {
  TF_Status* status = TF_NewStatus();
  TF_SetStatus(status, TF_INVALID_ARGUMENT, message.c_str());
  TF_OpKernelContext_Failure(ctx, status);
  TF_DeleteStatus(status);
}

// One op definition (inputs, outputs and attributes as "name: type" specs) and its CPU kernel.
void RegisterOp(const char* name, std::initializer_list<const char*> inputs,
                std::initializer_list<const char*> outputs, std::initializer_list<const char*> attrs,
                void* (*create)(TF_OpKernelConstruction*),
                void (*compute)(void*, TF_OpKernelContext*), void (*destroy)(void*),
                TF_Status* status) {
  TF_OpDefinitionBuilder* op = TF_NewOpDefinitionBuilder(name);
  for (const char* spec : inputs) TF_OpDefinitionBuilderAddInput(op, spec);
  for (const char* spec : outputs) TF_OpDefinitionBuilderAddOutput(op, spec);
  for (const char* spec : attrs) TF_OpDefinitionBuilderAddAttr(op, spec);
  TF_OpDefinitionBuilderSetShapeInferenceFunction(op, SetUnknown);
  TF_RegisterOpDefinition(op, status);
  if (TF_GetCode(status) != TF_OK) return;
  TF_RegisterKernelBuilder(name, TF_NewKernelBuilder(name, "CPU", create, compute, destroy),
                           status);
}

}  // namespace antifragile

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)

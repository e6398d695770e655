// kmath.h: the transcendental functions the kernels use (exp, log in float and double;
// sin/cos in double), written with arithmetic and bit operations only. clang's PTX build
// has no libdevice (toolchain.md §4), and the CPU emulation should compute exactly what the
// GPU computes, so every kernel calls these instead of expf/logf/sin from a library (but the
// tensor-core attention, which takes the special function unit's 2^x: exp2_approx, common.h).
//
// Accuracy (checked in emu_test.go against Go's math package): km_expf, km_logf within 2 ulp
// of the float result; km_exp, km_log, km_sincos within about 2e-16 relative (sincos on
// |x| < 1e5). Subnormal results flush to zero.
//
// Test: go test ./kernels/cuda -run KMath
#pragma once

#if defined(__NVCC__)
#define KM_SQRTF(x) sqrtf(x)
#define KM_SQRT(x) sqrt(x)
#else
#define KM_SQRTF(x) __builtin_sqrtf(x)
#define KM_SQRT(x) __builtin_sqrt(x)
#endif

#define KM_FN __device__ __forceinline__

KM_FN float km_inff() { return __uint_as_float(0x7f800000u); }
KM_FN float km_nanf() { return __uint_as_float(0x7fc00000u); }
KM_FN double km_inf() { return __longlong_as_double(0x7ff0000000000000ll); }
KM_FN double km_nan() { return __longlong_as_double(0x7ff8000000000000ll); }

// km_ldexpf returns x*2^n for n in [-252, 254] (two scalings by normal powers of two).
KM_FN float km_ldexpf(float x, int n) {
  int n1 = n / 2, n2 = n - n1;
  return x * __uint_as_float((unsigned)(n1 + 127) << 23) * __uint_as_float((unsigned)(n2 + 127) << 23);
}

// km_expf: e^x = 2^n e^r, n = round(x/ln2), |r| <= ln2/2, e^r by its Taylor series to r^7.
KM_FN float km_expf(float x) {
  if (!(x == x)) return x;
  if (x > 88.7228394f) return km_inff();
  if (x < -103.972694f) return 0.0f;
  const float kRound = 12582912.0f;  // 1.5*2^23: adding it rounds to an integer
  float t = x * 1.44269504f + kRound;
  float n = t - kRound;
  float r = x - n * 0.693145752f;  // ln2 = 0.693145752 + 1.42860677e-6, the first part exact in n*
  r = r - n * 1.42860677e-6f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666672e-1f + r * (4.16666679e-2f +
            r * (8.33333377e-3f + r * (1.38888892e-3f + r * 1.98412701e-4f))))));
  return km_ldexpf(p, (int)n);
}

// km_logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m-1)/(m+1).
KM_FN float km_logf(float x) {
  if (!(x > 0.0f)) return x == 0.0f ? -km_inff() : km_nanf();
  if (x == km_inff()) return x;
  int e = 0;
  if (x < 1.17549435e-38f) {
    x *= 16777216.0f;
    e = -24;
  }
  unsigned u = __float_as_uint(x);
  e += (int)(u >> 23) - 127;
  float m = __uint_as_float((u & 0x007fffffu) | 0x3f800000u);
  if (m > 1.41421356f) {
    m *= 0.5f;
    e += 1;
  }
  float f = m - 1.0f;
  float s = f / (2.0f + f);
  float s2 = s * s;
  float lm = 2.0f * s * (1.0f + s2 * (0.333333343f + s2 * (0.2f + s2 * (0.142857149f + s2 * 0.111111112f))));
  float fe = (float)e;
  return fe * 0.693145752f + (fe * 1.42860677e-6f + lm);
}

// km_ldexp returns x*2^n for n in [-2044, 2046].
KM_FN double km_ldexp(double x, int n) {
  int n1 = n / 2, n2 = n - n1;
  return x * __longlong_as_double((long long)(n1 + 1023) << 52) * __longlong_as_double((long long)(n2 + 1023) << 52);
}

// km_exp: as km_expf in double, Taylor series to r^13.
KM_FN double km_exp(double x) {
  if (!(x == x)) return x;
  if (x > 709.782712893384) return km_inf();
  if (x < -745.2) return 0.0;
  const double kRound = 6755399441055744.0;  // 1.5*2^52
  double t = x * 1.4426950408889634 + kRound;
  double n = t - kRound;
  double r = x - n * 6.93147180369123816490e-01;  // ln2 high part: n*hi is exact for |n| < 2^11
  r = r - n * 1.90821492927058770002e-10;
  double p = 1.6059043836821613e-10;
  p = 2.08767569878681e-09 + r * p;
  p = 2.505210838544172e-08 + r * p;
  p = 2.755731922398589e-07 + r * p;
  p = 2.755731922398589e-06 + r * p;
  p = 2.48015873015873e-05 + r * p;
  p = 1.984126984126984e-04 + r * p;
  p = 1.388888888888889e-03 + r * p;
  p = 8.333333333333333e-03 + r * p;
  p = 4.1666666666666664e-02 + r * p;
  p = 1.6666666666666666e-01 + r * p;
  p = 0.5 + r * p;
  p = 1.0 + r * p;
  p = 1.0 + r * p;
  return km_ldexp(p, (int)n);
}

// km_log: as km_logf in double, atanh series to s^21.
KM_FN double km_log(double x) {
  if (!(x > 0.0)) return x == 0.0 ? -km_inf() : km_nan();
  if (x == km_inf()) return x;
  int e = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984.0;  // 2^54
    e = -54;
  }
  unsigned long long u = (unsigned long long)__double_as_longlong(x);
  e += (int)(u >> 52) - 1023;
  double m = __longlong_as_double((long long)((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull));
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  double f = m - 1.0;
  double s = f / (2.0 + f);
  double s2 = s * s;
  double p = 1.0 / 21;
  p = 1.0 / 19 + s2 * p;
  p = 1.0 / 17 + s2 * p;
  p = 1.0 / 15 + s2 * p;
  p = 1.0 / 13 + s2 * p;
  p = 1.0 / 11 + s2 * p;
  p = 1.0 / 9 + s2 * p;
  p = 1.0 / 7 + s2 * p;
  p = 1.0 / 5 + s2 * p;
  p = 1.0 / 3 + s2 * p;
  p = 1.0 + s2 * p;
  double de = (double)e;
  return de * 6.93147180369123816490e-01 + (de * 1.90821492927058770002e-10 + 2.0 * s * p);
}

// km_sincos: reduction by pi/2 in three parts (exact for |x| < 2^20 pi/2), then Taylor series
// of sin to r^17 and cos to r^18 on |r| <= pi/4.
KM_FN void km_sincos(double x, double* sp, double* cp) {
  if ((__double_as_longlong(x) & 0x7ff0000000000000ll) == 0x7ff0000000000000ll) {  // Inf or NaN
    *sp = *cp = km_nan();
    return;
  }
  const double kRound = 6755399441055744.0;
  double t = x * 0.63661977236758134 + kRound;
  double q = t - kRound;
  double r = x - q * 1.57079632673412561417e+00;
  r = r - q * 6.07710050630396597660e-11;
  r = r - q * 2.02226624879595063154e-21;
  int quadrant = (int)((long long)q & 3);
  double r2 = r * r;
  double s = 2.8114572543455206e-15;
  s = -7.647163731819816e-13 + r2 * s;
  s = 1.6059043836821613e-10 + r2 * s;
  s = -2.505210838544172e-08 + r2 * s;
  s = 2.755731922398589e-06 + r2 * s;
  s = -1.984126984126984e-04 + r2 * s;
  s = 8.333333333333333e-03 + r2 * s;
  s = -1.6666666666666666e-01 + r2 * s;
  s = r + r * r2 * s;
  double c = -1.5619206968586225e-16;
  c = 4.779477332387385e-14 + r2 * c;
  c = -1.1470745597729725e-11 + r2 * c;
  c = 2.08767569878681e-09 + r2 * c;
  c = -2.755731922398589e-07 + r2 * c;
  c = 2.48015873015873e-05 + r2 * c;
  c = -1.388888888888889e-03 + r2 * c;
  c = 4.1666666666666664e-02 + r2 * c;
  c = -0.5 + r2 * c;
  c = 1.0 + r2 * c;
  switch (quadrant) {
    case 0: *sp = s; *cp = c; break;
    case 1: *sp = c; *cp = -s; break;
    case 2: *sp = -s; *cp = -c; break;
    default: *sp = -c; *cp = s; break;
  }
}

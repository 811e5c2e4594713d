/* How many bf16 dot products (VDPBF16PS zmm) and fp32 FMAs (VFMADD zmm) one core completes per nanosecond of
 * its own CPU time (so other jobs on the machine do not count), and per tick of the TSC (the clock
 * /proc/cpuinfo reports): the instruction rate `cifarpipe bench speed` assumes in its peak
 * (docs/benchmarks.md).
 * 24 independent accumulators hide the latency; nothing touches memory.
 *
 *     gcc -O2 -mavx512f -mavx512bf16 benchmarks/dot_rate.c -o /tmp/dot_rate && /tmp/dot_rate
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

#define N 100000000L
#define ACC 24
/* the ACC accumulators, spelled out so that they stay in registers */
#define EACH(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11) OP(12) OP(13) \
    OP(14) OP(15) OP(16) OP(17) OP(18) OP(19) OP(20) OP(21) OP(22) OP(23)
#define DOT(i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
#define FMA(i) acc[i] = _mm512_fmadd_ps(x, y, acc[i]);

static double now(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double tsc_ghz(void) {  /* TSC ticks per wall nanosecond */
    double t0 = now(CLOCK_MONOTONIC);
    unsigned long long c0 = __rdtsc();
    while (now(CLOCK_MONOTONIC) - t0 < 0.2) {
    }
    return (__rdtsc() - c0) / (now(CLOCK_MONOTONIC) - t0) / 1e9;
}

static void report(const char *what, int flop, double cpu_seconds, float sink) {
    double done = (double)ACC * N, ghz = tsc_ghz();
    printf("%s: %.2f a ns of CPU time, %.2f a TSC tick (TSC %.3f GHz), %.0f GFLOP/s on one core (%d FLOP "
           "each) [%g]\n", what, done / cpu_seconds / 1e9, done / cpu_seconds / 1e9 / ghz, ghz,
           done * flop / cpu_seconds / 1e9, flop, sink);
}

int main(void) {
    __m512 acc[ACC];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f80);
    __m512 x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(1e-9f);
    float sink = 0;
    for (int i = 0; i < ACC; i++) acc[i] = _mm512_setzero_ps();
    double t0 = now(CLOCK_THREAD_CPUTIME_ID);
    for (long n = 0; n < N; n++) {
        EACH(DOT)
        __asm__ volatile("" : "+v"(a));
    }
    double seconds = now(CLOCK_THREAD_CPUTIME_ID) - t0;
    for (int i = 0; i < ACC; i++) sink += _mm512_reduce_add_ps(acc[i]);
    report("VDPBF16PS zmm", 64, seconds, sink);

    for (int i = 0; i < ACC; i++) acc[i] = _mm512_setzero_ps();
    t0 = now(CLOCK_THREAD_CPUTIME_ID);
    for (long n = 0; n < N; n++) {
        EACH(FMA)
        __asm__ volatile("" : "+v"(x));
    }
    seconds = now(CLOCK_THREAD_CPUTIME_ID) - t0;
    sink = 0;
    for (int i = 0; i < ACC; i++) sink += _mm512_reduce_add_ps(acc[i]);
    report("VFMADD231PS zmm", 32, seconds, sink);
    return 0;
}

/* How many multiply-add instructions one core completes per nanosecond of its own CPU time (other jobs on the
 * machine do not count), and the core's clock over the same time: the instruction rate and the clock that
 * `cifarpipe bench speed` builds its peak from (cifarpipe/tools/bench/peak.py compiles and runs this file).
 *
 *     gcc -O2 benchmarks/dot_rate.c -o /tmp/dot_rate && /tmp/dot_rate dpbf16 [MILLIONS]
 *
 * MODE is one of
 *   clock   the clock alone: a chain of dependent 64-bit multiplies, 3 cycles each on Intel's cores since
 *           Nehalem and AMD's since Zen (a chain of adds would not do: Golden Cove folds add-immediates)
 *   fma256  VFMADD231PS ymm (16 FLOP: 8 fp32 lanes x multiply+add)
 *   fma512  VFMADD231PS zmm (32 FLOP)
 *   dpbf16  VDPBF16PS zmm (64 FLOP: 16 lanes x 2 bf16 products x multiply+add)
 *   amx     TDPBF16PS (16,384 FLOP: 16 x 16 fp32 results, each 32 bf16 products, multiply+add)
 * and prints one line: mode, instructions per ns, FLOP per instruction, the clock in GHz measured just before
 * and just after. Independent accumulators hide each instruction's latency; nothing touches memory in the loop.
 * Each mode's code is compiled for its own instruction set (target attributes), so one binary runs anywhere
 * and the caller asks only for what the CPU flags say it has.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <immintrin.h>

#define ACC 24
#define EACH(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11) OP(12) OP(13) \
    OP(14) OP(15) OP(16) OP(17) OP(18) OP(19) OP(20) OP(21) OP(22) OP(23)

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* GHz: 8 dependent multiplies an iteration, 3 cycles each; the loop's own counter runs beside them */
static double clock_ghz(long iterations) {
    uint64_t v = 1;
    double t0 = cpu_now();
    for (long n = 0; n < iterations; n++) {
        __asm__ volatile("imul $3, %0, %0\n\timul $3, %0, %0\n\timul $3, %0, %0\n\timul $3, %0, %0\n\t"
                         "imul $3, %0, %0\n\timul $3, %0, %0\n\timul $3, %0, %0\n\timul $3, %0, %0"
                         : "+r"(v));
    }
    double seconds = cpu_now() - t0;
    return v == 0 ? 0 : 3 * 8.0 * iterations / seconds / 1e9;
}

__attribute__((target("avx2,fma"))) static double fma256(long n_iter, float *sink) {
    __m256 acc[ACC], x = _mm256_set1_ps(1.0f), y = _mm256_set1_ps(1e-9f);
    for (int i = 0; i < ACC; i++) acc[i] = _mm256_setzero_ps();
    double t0 = cpu_now();
#define FMA256(i) acc[i] = _mm256_fmadd_ps(x, y, acc[i]);
    for (long n = 0; n < n_iter; n++) {
        EACH(FMA256)
        __asm__ volatile("" : "+x"(x));
    }
    double seconds = cpu_now() - t0;
    for (int i = 0; i < ACC; i++) *sink += acc[i][0];
    return seconds;
}

__attribute__((target("avx512f"))) static double fma512(long n_iter, float *sink) {
    __m512 acc[ACC], x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(1e-9f);
    for (int i = 0; i < ACC; i++) acc[i] = _mm512_setzero_ps();
    double t0 = cpu_now();
#define FMA512(i) acc[i] = _mm512_fmadd_ps(x, y, acc[i]);
    for (long n = 0; n < n_iter; n++) {
        EACH(FMA512)
        __asm__ volatile("" : "+v"(x));
    }
    double seconds = cpu_now() - t0;
    for (int i = 0; i < ACC; i++) *sink += _mm512_reduce_add_ps(acc[i]);
    return seconds;
}

__attribute__((target("avx512f,avx512bf16"))) static double dpbf16(long n_iter, float *sink) {
    __m512 acc[ACC];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f80);
    for (int i = 0; i < ACC; i++) acc[i] = _mm512_setzero_ps();
    double t0 = cpu_now();
#define DOT(i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    for (long n = 0; n < n_iter; n++) {
        EACH(DOT)
        __asm__ volatile("" : "+v"(a));
    }
    double seconds = cpu_now() - t0;
    for (int i = 0; i < ACC; i++) *sink += _mm512_reduce_add_ps(acc[i]);
    return seconds;
}

struct tile_config {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* 6 accumulator tiles (tmm0-5) of 16 x 16 fp32, tmm6 and tmm7 the bf16 operands: 6 a round */
__attribute__((target("amx-tile,amx-bf16"))) static double amx(long n_iter, float *sink) {
    static uint16_t operand[16 * 32];
    static float out[16 * 16];
    struct tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    for (int i = 0; i < 16 * 32; i++) operand[i] = 0x3f80;
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */)) return -1;
    _tile_loadconfig(&cfg);
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); _tile_zero(4); _tile_zero(5);
    _tile_loadd(6, operand, 64);
    _tile_loadd(7, operand, 64);
    double t0 = cpu_now();
    for (long n = 0; n < n_iter; n++) {
        _tile_dpbf16ps(0, 6, 7); _tile_dpbf16ps(1, 6, 7); _tile_dpbf16ps(2, 6, 7);
        _tile_dpbf16ps(3, 6, 7); _tile_dpbf16ps(4, 6, 7); _tile_dpbf16ps(5, 6, 7);
    }
    double seconds = cpu_now() - t0;
    _tile_stored(0, out, 64);
    _tile_release();
    *sink += out[0];
    return seconds;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "clock";
    long millions = argc > 2 ? atol(argv[2]) : 20;
    float sink = 0;
    double before = clock_ghz(millions * 1000000L / 8), seconds = 0, per_iteration = ACC;
    int flop = 0;
    if (!strcmp(mode, "clock")) {
        printf("clock 0 0 %.4f %.4f\n", before, clock_ghz(millions * 1000000L / 8));
        return 0;
    } else if (!strcmp(mode, "fma256")) {
        flop = 16, seconds = fma256(millions * 1000000L / ACC, &sink);
    } else if (!strcmp(mode, "fma512")) {
        flop = 32, seconds = fma512(millions * 1000000L / ACC, &sink);
    } else if (!strcmp(mode, "dpbf16")) {
        flop = 64, seconds = dpbf16(millions * 1000000L / ACC, &sink);
    } else if (!strcmp(mode, "amx")) {
        flop = 16384, per_iteration = 6, seconds = amx(millions * 1000000L / 16 / 6, &sink);
    } else {
        fprintf(stderr, "unknown mode %s: clock, fma256, fma512, dpbf16 or amx\n", mode);
        return 2;
    }
    if (seconds <= 0) {
        fprintf(stderr, "%s: the kernel refused it (no AMX permission)\n", mode);
        return 1;
    }
    long iterations = !strcmp(mode, "amx") ? millions * 1000000L / 16 / 6 : millions * 1000000L / ACC;
    printf("%s %.6f %d %.4f %.4f %g\n", mode, iterations * per_iteration / seconds / 1e9, flop, before,
           clock_ghz(millions * 1000000L / 8), sink);
    return 0;
}

/*
 * The machine's memory bandwidth as native code gets it: copy, add, read-only sum and write-only fill over
 * arrays far larger than the caches, at 1 thread and at every thread (OpenMP), the best of `reps` samples.
 *
 *   cc -O3 -march=native -fopenmp scripts/native-probe.c -o native-probe && ./native-probe [MB per array] [reps]
 *
 * Prints one JSON object: {"mb": MB, "reps": R, "threads": T, "kernels": [{"name", "threads", "gbps"}]}.
 * GB/s counts the bytes a kernel must move: copy reads and writes (2 per byte), add reads two arrays and writes
 * one (3), sum reads (1), fill writes (1). copy and fill call memcpy and memset, which glibc runs with
 * non-temporal stores at these sizes (no read of the destination first); add stores through the cache.
 * scripts/native-probe.sh compiles and runs it; src/bench/native-probe.ts reads its output.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now(void) { return omp_get_wtime(); }

/* each thread's part of [0, n) */
static void part(size_t n, size_t *lo, size_t *hi) {
  size_t t = (size_t)omp_get_thread_num(), count = (size_t)omp_get_num_threads();
  *lo = n * t / count;
  *hi = n * (t + 1) / count;
}

static volatile float sink;

static double run(const char *name, int threads, float *a, const float *b, const float *c, size_t n) {
  double start = now();
  float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    size_t lo, hi;
    part(n, &lo, &hi);
    if (strcmp(name, "copy") == 0) {
      memcpy(a + lo, b + lo, (hi - lo) * sizeof(float));
    } else if (strcmp(name, "add") == 0) {
      for (size_t i = lo; i < hi; i++) a[i] = b[i] + c[i];
    } else if (strcmp(name, "sum") == 0) {
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (size_t i = lo; i < hi; i++) s += b[i];
      total += s;
    } else {
      memset(a + lo, 0, (hi - lo) * sizeof(float));
    }
  }
  sink = total;
  return now() - start;
}

int main(int argc, char **argv) {
  size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 128;
  int reps = argc > 2 ? atoi(argv[2]) : 10;
  if (mb < 1 || reps < 1) {
    fprintf(stderr, "usage: native-probe [MB per array >= 1] [reps >= 1]\n");
    return 2;
  }
  size_t n = mb * 1024 * 1024 / sizeof(float);
  float *a = aligned_alloc(64, n * sizeof(float)), *b = aligned_alloc(64, n * sizeof(float)), *c = aligned_alloc(64, n * sizeof(float));
  if (a == NULL || b == NULL || c == NULL) {
    fprintf(stderr, "native-probe: cannot allocate 3 x %zu MB\n", mb);
    return 1;
  }
  int all = omp_get_max_threads();
  /* every page touched before timing, by the threads that use it */
#pragma omp parallel num_threads(all)
  {
    size_t lo, hi;
    part(n, &lo, &hi);
    for (size_t i = lo; i < hi; i++) a[i] = 0, b[i] = 1, c[i] = 2;
  }
  const char *names[] = {"copy", "add", "sum", "fill"};
  const double moved[] = {2, 3, 1, 1};
  int counts[] = {1, all};
  printf("{\"mb\": %zu, \"reps\": %d, \"threads\": %d, \"kernels\": [", mb, reps, all);
  for (int k = 0; k < 4; k++) {
    for (int t = 0; t < (all > 1 ? 2 : 1); t++) {
      double best = 1e30;
      run(names[k], counts[t], a, b, c, n);
      for (int r = 0; r < reps; r++) {
        double s = run(names[k], counts[t], a, b, c, n);
        if (s < best) best = s;
      }
      printf("%s{\"name\": \"%s\", \"threads\": %d, \"gbps\": %.2f}", k + t == 0 ? "" : ", ", names[k], counts[t], moved[k] * (double)(n * sizeof(float)) / best / 1e9);
    }
  }
  printf("]}\n");
  free(a);
  free(b);
  free(c);
  return 0;
}

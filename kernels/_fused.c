/* Fused loops for the two updates whose NumPy ufunc chains cost most per element: HALO's
 * elementwise update (kernels/halo_elementwise.py) and Adam's (kernels/optim_adaptive.py).
 *
 * Each function does exactly the float32 operations of its ufunc chain, in the same order,
 * on blocks of BLK elements kept in L1 (stack buffers), so the result is bit-for-bit the
 * ufunc chain's: every operation used (+ - * / sqrt, abs, and NumPy's NaN-propagating
 * maximum/minimum) is exactly rounded, the build turns off contraction into fused
 * multiply-adds (-ffp-contract=off: aarch64 would otherwise fuse a*b+c) and keeps
 * float32 evaluation (FLT_EVAL_METHOD 0 on x86_64 SSE and aarch64).  What is saved is the
 * chain's ~1 us of call overhead per ufunc and its passes over memory: a HALO update reads
 * and writes p, g, m, v once.
 *
 * No NumPy C API: arrays arrive through the buffer protocol (contiguous, the caller checks
 * float32), so the module builds against Python's headers alone.  The Python side
 * (kernels/fused.py) falls back to the ufunc chains when this module is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "float32 arithmetic must be evaluated in float32 (FLT_EVAL_METHOD 0)"
#endif

#define BLK 256   /* elements per block: 2 x 4 + 3 float32 vectors of 1 KiB stay in L1 */
#define MAXP 4    /* mirror pairs a plan may hold (kernels.halo_fold.N_PAIRS is 2) */

/* x86_64 with glibc: each loop is also compiled for AVX2 (8 floats a vector instead of
 * SSE2's 4) and the loader picks the variant the CPU runs; same operations, same results.
 * Elsewhere (aarch64: NEON is baseline) one variant. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef CLONES
#define CLONES
#endif

/* np.maximum(x, c) / np.minimum(x, c) against a constant c that is not NaN (|beta|, 0, -inf):
 * a NaN x gives x, as NumPy's NaN-propagating max/min; one maxps/minps on x86, whose
 * operand order is exactly this select. */
static inline float max_c(float x, float c) { return c > x ? c : x; }
static inline float min_c(float x, float c) { return c < x ? c : x; }
static inline double max_c64(double x, double c) { return c > x ? c : x; }
static inline double min_c64(double x, double c) { return c < x ? c : x; }

/* A float32 constant of E (per tensor); a scale may be absent (on = 0). */
typedef struct {
    float val;
    int on;
} operand;

static operand scalar_op(float x) {
    operand o;
    o.val = x;
    o.on = 1;
    return o;
}

static int check_len(Py_buffer *b, Py_ssize_t n, const char *name) {
    if (b->len != n * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd float32 values, got %zd bytes", name, n,
                     b->len);
        return -1;
    }
    return 0;
}

/* The buffers a call holds, released together (no release ladders). */
typedef struct {
    Py_buffer b[10];
    int n;
} bufs_t;

static void bufs_release(bufs_t *s) {
    while (s->n > 0) PyBuffer_Release(&s->b[--s->n]);
}

/* o's contiguous buffer, held by s (NULL: an exception is set). */
static Py_buffer *bufs_get(bufs_t *s, PyObject *o, int writable) {
    if (s->n >= 10) {
        PyErr_SetString(PyExc_RuntimeError, "too many buffers");
        return NULL;
    }
    if (PyObject_GetBuffer(o, &s->b[s->n], (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    return &s->b[s->n++];
}

/* o's n float64 values, held by s (NULL: an exception naming the argument is set). */
static double *bufs_f64(bufs_t *s, PyObject *o, Py_ssize_t n, const char *name, int writable) {
    Py_buffer *b = bufs_get(s, o, writable);
    if (b == NULL) return NULL;
    if (b->len != n * (Py_ssize_t)sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd float64 values, got %zd bytes", name, n,
                     b->len);
        return NULL;
    }
    return (double *)b->buf;
}

/* p, g, m, v: an update's float32 (n,) arrays (p, m, v writable), held by bs. */
static int get_update_arrays(bufs_t *bs, PyObject *const o[4], float *arr[4], Py_ssize_t *n) {
    static const char *const names[4] = {"p", "g", "m", "v"};
    for (int k = 0; k < 4; k++) {
        Py_buffer *b = bufs_get(bs, o[k], k != 1);
        if (b == NULL) return -1;
        if (k == 0)
            *n = b->len / (Py_ssize_t)sizeof(float);
        else if (check_len(b, *n, names[k]))
            return -1;
        arr[k] = (float *)b->buf;
    }
    return 0;
}

typedef struct {
    int k, base_is_m, has_kappa, even, odd;
    float kappa, hi, lo;
    double abs_beta; /* |beta| in float64 (E's constants are folded in float64) */
} pair_t;

typedef struct {
    int k;
    operand c;
} term_t;

/* The HALO loop proper (see halo() below for the arguments' meaning). */
CLONES static void halo_loop(Py_ssize_t n, float *restrict P, const float *restrict G,
                             float *restrict M, float *restrict V, float b1, float b2, float eps,
                             const pair_t *pairs, int np_, int first_odd, const int *rest_k,
                             const float *rest_c, int nrest, const term_t *terms, int nterms,
                             const operand *c0, int clamp, const operand *scale, int sub) {
    float s[BLK], t[BLK], acc[BLK], e[BLK];
    float z[MAXP][BLK], mk[MAXP][BLK];
    for (Py_ssize_t i0 = 0; i0 < n; i0 += BLK) {
        const int w = (int)(n - i0 < BLK ? n - i0 : BLK);
        float *restrict p = P + i0, *restrict m = M + i0, *restrict v = V + i0;
        const float *restrict g = G + i0;
        for (int i = 0; i < w; i++) {
            float mm = m[i] * b1;
            m[i] = mm + g[i]; /* m = b1 m + g */
            float tt = g[i] * g[i];
            float vv = v[i] * b2;
            vv = vv + tt; /* v = b2 v + g^2 */
            v[i] = vv;
            s[i] = sqrtf(vv) + eps;
        }
        for (int j = 0; j < np_; j++) {
            const pair_t pr = pairs[j];
            float *restrict zk = z[pr.k], *restrict mkk = mk[pr.k];
            const float *base = pr.base_is_m ? m : g, *other = pr.base_is_m ? g : m;
            if (pr.has_kappa) {
                const float kap = pr.kappa;
                for (int i = 0; i < w; i++) {
                    float zz = other[i] * kap;
                    zz = zz + base[i];
                    zk[i] = zz / s[i];
                }
            } else {
                for (int i = 0; i < w; i++) zk[i] = base[i] / s[i]; /* zeta_k */
            }
            if (pr.even == 1) {
                for (int i = 0; i < w; i++) mkk[i] = fabsf(zk[i]);
            } else if (pr.even == 2) {
                const float hi = pr.hi;
                for (int i = 0; i < w; i++) mkk[i] = max_c(fabsf(zk[i]), hi);
            }
            if (pr.odd >= 2) {
                const float hi = pr.hi, lo = pr.lo;
                if (pr.odd == 2) {
                    for (int i = 0; i < w; i++) zk[i] = zk[i] + min_c(max_c(zk[i], lo), hi);
                } else {
                    for (int i = 0; i < w; i++) zk[i] = zk[i] - min_c(max_c(zk[i], lo), hi);
                }
            }
        }
        if (first_odd < 0) continue; /* d = 0: the moments move, the parameters do not */
        {
            const float *a0 = z[first_odd];
            for (int i = 0; i < w; i++) acc[i] = a0[i];
        }
        for (int j = 0; j < nrest; j++) { /* A = d / D */
            const float *zk = z[rest_k[j]];
            const float cf = rest_c[j];
            for (int i = 0; i < w; i++) acc[i] = acc[i] + zk[i] * cf;
        }
        if (nterms == 0) {
            for (int i = 0; i < w; i++) e[i] = c0->val;
        } else {
            for (int j = 0; j < nterms; j++) {
                const float *mkk = mk[terms[j].k];
                const float c = terms[j].c.val;
                if (j == 0) {
                    for (int i = 0; i < w; i++) e[i] = mkk[i] * c;
                } else {
                    for (int i = 0; i < w; i++) t[i] = mkk[i] * c;
                    for (int i = 0; i < w; i++) e[i] = e[i] + t[i];
                }
            }
            for (int i = 0; i < w; i++) e[i] = e[i] + c0->val;
            if (clamp)
                for (int i = 0; i < w; i++) e[i] = max_c(e[i], 0.0f);
        }
        if (scale->on)
            for (int i = 0; i < w; i++) e[i] = e[i] * scale->val;
        if (sub)
            for (int i = 0; i < w; i++) p[i] = p[i] - acc[i] * e[i];
        else
            for (int i = 0; i < w; i++) p[i] = p[i] + acc[i] * e[i];
    }
}

/* Plans with one mirror pair (every shipped weights file so far): the whole update of an
 * element without the staged loop's block arrays, the same operations in the same order as
 * the staged loop and the ufunc chain.
 *
 * Software-pipelined.  An element's update is a long dependency chain: the moments, sqrt,
 * the division (the CPU's divider is the bound: Adam's loop waits on the same two), then ten
 * more operations down to p.  Written as one loop, the out-of-order window fills with the
 * tails of elements still waiting on the divider, and the loop ran ~1.35x Adam's in cache
 * (llvm-mca, znver3: 12.5 against Adam's 8.5 cycles per 8 elements).  So the element is cut
 * after the division (part A: m, v, zeta; part B: the pair's parts, E, p) and one loop runs
 * A of block k beside B of block k - 1, whose zeta was computed a block ago: B's operations
 * never wait and fill the pipes while the divider works on A (measured ~1.1x Adam's in
 * cache).  Per element nothing changes but when it runs, so results are bit for bit the
 * same; Adam's loop cut the same way measured no faster (its tail is one multiply and one
 * subtraction), so it stays one pass. */
typedef struct {
    float *P, *M, *V;
    const float *G;
    float b1, b2, eps, kappa, hi, lo;
    const operand *c0, *ck, *scale;
} one_args;

/* The constants of one specialised variant (see one_pair_body). */
typedef struct {
    float c0, ck, sc, b1, b2, eps, kappa, hi, lo;
} one_k;

#define AI static inline __attribute__((always_inline))

/* Part A of element i: m = b1 m + g, v = b2 v + g^2, zeta = (other kappa + base) / (sqrt v + eps).
 * BASE_M: the pair's base vector is m (else g). */
AI float one_a(const int i, float *restrict m, float *restrict v, const float *restrict g,
               const one_k *k, const int BASE_M) {
    const float gi = g[i];
    float mm = m[i] * k->b1;
    mm = mm + gi;
    m[i] = mm;
    const float tt = gi * gi;
    float vv = v[i] * k->b2;
    vv = vv + tt;
    v[i] = vv;
    const float s = sqrtf(vv) + k->eps;
    const float base = BASE_M ? mm : gi, other = BASE_M ? gi : mm;
    float z = other * k->kappa;
    z = z + base;
    return z / s;
}

/* Part B: p plus or minus zeta's odd part times E.  ODD (1: |beta| = 0, so the even part is
 * |zeta| and the odd part zeta; 2 / 3: beta > 0 / < 0, clipped), NT (E reads M), SC (E has a
 * scale: one tensor of several with a shared gain), CL (E is clamped at 0), SB (p -= d, else
 * p += d). */
AI float one_b(float z, const float p, const one_k *k, const int ODD, const int NT, const int SC,
               const int CL, const int SB) {
    const float mk = ODD == 1 ? fabsf(z) : max_c(fabsf(z), k->hi); /* M */
    if (ODD == 2) z = z + min_c(max_c(z, k->lo), k->hi);
    if (ODD == 3) z = z - min_c(max_c(z, k->lo), k->hi);
    float e;
    if (NT) {
        e = mk * k->ck;
        e = e + k->c0;
        if (CL) e = max_c(e, 0.0f);
    } else {
        e = k->c0;
    }
    if (SC) e = e * k->sc;
    const float d = z * e;
    return SB ? p - d : p + d;
}

#define ONE_FLAGS const int BASE_M, const int ODD, const int NT, const int SC, const int CL, const int SB

/* Both parts of w elements in one pass (arrays shorter than a block, and the tail). */
AI void one_whole(const int w, float *restrict p, float *restrict m, float *restrict v,
                  const float *restrict g, const one_k *k, ONE_FLAGS) {
    for (int i = 0; i < w; i++)
        p[i] = one_b(one_a(i, m, v, g, k, BASE_M), p[i], k, ODD, NT, SC, CL, SB);
}

/* A of a block into zn beside B of the block before (its zeta zp, its parameters pp).  The
 * pointers are restrict parameters: GCC vectorises it. */
AI void one_skew(const int w, float *restrict zn, float *restrict m, float *restrict v,
                 const float *restrict g, const float *restrict zp, float *restrict pp,
                 const one_k *k, ONE_FLAGS) {
    for (int i = 0; i < w; i++) {
        zn[i] = one_a(i, m, v, g, k, BASE_M);
        pp[i] = one_b(zp[i], pp[i], k, ODD, NT, SC, CL, SB);
    }
}

AI void one_pair_body(const one_args *a, Py_ssize_t n, ONE_FLAGS) {
    const one_k k = {a->c0->val, NT ? a->ck->val : 0.0f, a->scale->val, a->b1, a->b2, a->eps,
                     a->kappa, a->hi, a->lo};
    const Py_ssize_t nb = n / BLK, tail = n - nb * BLK;
    float za[BLK], zb[BLK], *zn = za, *zp = zb;
    if (nb > 0) {
        for (int i = 0; i < BLK; i++) za[i] = one_a(i, a->M, a->V, a->G, &k, BASE_M);
        for (Py_ssize_t b = 1; b < nb; b++) {
            float *t = zp;
            zp = zn;
            zn = t;
            const Py_ssize_t i0 = b * BLK;
            one_skew(BLK, zn, a->M + i0, a->V + i0, a->G + i0, zp, a->P + i0 - BLK, &k, BASE_M,
                     ODD, NT, SC, CL, SB);
        }
        float *restrict pl = a->P + (nb - 1) * BLK;
        for (int i = 0; i < BLK; i++) pl[i] = one_b(zn[i], pl[i], &k, ODD, NT, SC, CL, SB);
    }
    if (tail > 0) {
        const Py_ssize_t i0 = nb * BLK;
        one_whole((int)tail, a->P + i0, a->M + i0, a->V + i0, a->G + i0, &k, BASE_M, ODD, NT, SC,
                  CL, SB);
    }
}

typedef void (*one_fn)(const one_args *, Py_ssize_t);
CLONES static void one_b0o1n0s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 0, 0, 0, 0); }
CLONES static void one_b0o1n0s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 0, 0, 0, 1); }
CLONES static void one_b0o1n0s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 0, 1, 0, 0); }
CLONES static void one_b0o1n0s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 0, 1, 0, 1); }
CLONES static void one_b0o1n1s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 0, 0, 0); }
CLONES static void one_b0o1n1s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 0, 0, 1); }
CLONES static void one_b0o1n1s0c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 0, 1, 0); }
CLONES static void one_b0o1n1s0c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 0, 1, 1); }
CLONES static void one_b0o1n1s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 1, 0, 0); }
CLONES static void one_b0o1n1s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 1, 0, 1); }
CLONES static void one_b0o1n1s1c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 1, 1, 0); }
CLONES static void one_b0o1n1s1c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 1, 1, 1); }
CLONES static void one_b0o2n0s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 0, 0, 0, 0); }
CLONES static void one_b0o2n0s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 0, 0, 0, 1); }
CLONES static void one_b0o2n0s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 0, 1, 0, 0); }
CLONES static void one_b0o2n0s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 0, 1, 0, 1); }
CLONES static void one_b0o2n1s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 1, 0, 0, 0); }
CLONES static void one_b0o2n1s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 1, 0, 0, 1); }
CLONES static void one_b0o2n1s0c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 1, 0, 1, 0); }
CLONES static void one_b0o2n1s0c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 1, 0, 1, 1); }
CLONES static void one_b0o2n1s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 1, 1, 0, 0); }
CLONES static void one_b0o2n1s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 1, 1, 0, 1); }
CLONES static void one_b0o2n1s1c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 1, 1, 1, 0); }
CLONES static void one_b0o2n1s1c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 2, 1, 1, 1, 1); }
CLONES static void one_b0o3n0s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 0, 0, 0, 0); }
CLONES static void one_b0o3n0s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 0, 0, 0, 1); }
CLONES static void one_b0o3n0s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 0, 1, 0, 0); }
CLONES static void one_b0o3n0s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 0, 1, 0, 1); }
CLONES static void one_b0o3n1s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 1, 0, 0, 0); }
CLONES static void one_b0o3n1s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 1, 0, 0, 1); }
CLONES static void one_b0o3n1s0c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 1, 0, 1, 0); }
CLONES static void one_b0o3n1s0c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 1, 0, 1, 1); }
CLONES static void one_b0o3n1s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 1, 1, 0, 0); }
CLONES static void one_b0o3n1s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 1, 1, 0, 1); }
CLONES static void one_b0o3n1s1c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 1, 1, 1, 0); }
CLONES static void one_b0o3n1s1c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 3, 1, 1, 1, 1); }
CLONES static void one_b1o1n0s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 0, 0, 0, 0); }
CLONES static void one_b1o1n0s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 0, 0, 0, 1); }
CLONES static void one_b1o1n0s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 0, 1, 0, 0); }
CLONES static void one_b1o1n0s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 0, 1, 0, 1); }
CLONES static void one_b1o1n1s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 0, 0, 0); }
CLONES static void one_b1o1n1s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 0, 0, 1); }
CLONES static void one_b1o1n1s0c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 0, 1, 0); }
CLONES static void one_b1o1n1s0c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 0, 1, 1); }
CLONES static void one_b1o1n1s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 1, 0, 0); }
CLONES static void one_b1o1n1s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 1, 0, 1); }
CLONES static void one_b1o1n1s1c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 1, 1, 0); }
CLONES static void one_b1o1n1s1c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 1, 1, 1); }
CLONES static void one_b1o2n0s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 0, 0, 0, 0); }
CLONES static void one_b1o2n0s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 0, 0, 0, 1); }
CLONES static void one_b1o2n0s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 0, 1, 0, 0); }
CLONES static void one_b1o2n0s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 0, 1, 0, 1); }
CLONES static void one_b1o2n1s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 1, 0, 0, 0); }
CLONES static void one_b1o2n1s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 1, 0, 0, 1); }
CLONES static void one_b1o2n1s0c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 1, 0, 1, 0); }
CLONES static void one_b1o2n1s0c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 1, 0, 1, 1); }
CLONES static void one_b1o2n1s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 1, 1, 0, 0); }
CLONES static void one_b1o2n1s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 1, 1, 0, 1); }
CLONES static void one_b1o2n1s1c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 1, 1, 1, 0); }
CLONES static void one_b1o2n1s1c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 2, 1, 1, 1, 1); }
CLONES static void one_b1o3n0s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 0, 0, 0, 0); }
CLONES static void one_b1o3n0s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 0, 0, 0, 1); }
CLONES static void one_b1o3n0s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 0, 1, 0, 0); }
CLONES static void one_b1o3n0s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 0, 1, 0, 1); }
CLONES static void one_b1o3n1s0c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 1, 0, 0, 0); }
CLONES static void one_b1o3n1s0c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 1, 0, 0, 1); }
CLONES static void one_b1o3n1s0c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 1, 0, 1, 0); }
CLONES static void one_b1o3n1s0c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 1, 0, 1, 1); }
CLONES static void one_b1o3n1s1c0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 1, 1, 0, 0); }
CLONES static void one_b1o3n1s1c0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 1, 1, 0, 1); }
CLONES static void one_b1o3n1s1c1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 1, 1, 1, 0); }
CLONES static void one_b1o3n1s1c1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 3, 1, 1, 1, 1); }

/* [base is m][odd mode - 1][E reads M][E has a scale][E clamped][p -= d] */
static const one_fn ONE_PAIR[2][3][2][2][2][2] = {
    {{{{{one_b0o1n0s0c0m0, one_b0o1n0s0c0m1}, {one_b0o1n0s0c0m0, one_b0o1n0s0c0m1}}, {{one_b0o1n0s1c0m0, one_b0o1n0s1c0m1}, {one_b0o1n0s1c0m0, one_b0o1n0s1c0m1}}}, {{{one_b0o1n1s0c0m0, one_b0o1n1s0c0m1}, {one_b0o1n1s0c1m0, one_b0o1n1s0c1m1}}, {{one_b0o1n1s1c0m0, one_b0o1n1s1c0m1}, {one_b0o1n1s1c1m0, one_b0o1n1s1c1m1}}}}, {{{{one_b0o2n0s0c0m0, one_b0o2n0s0c0m1}, {one_b0o2n0s0c0m0, one_b0o2n0s0c0m1}}, {{one_b0o2n0s1c0m0, one_b0o2n0s1c0m1}, {one_b0o2n0s1c0m0, one_b0o2n0s1c0m1}}}, {{{one_b0o2n1s0c0m0, one_b0o2n1s0c0m1}, {one_b0o2n1s0c1m0, one_b0o2n1s0c1m1}}, {{one_b0o2n1s1c0m0, one_b0o2n1s1c0m1}, {one_b0o2n1s1c1m0, one_b0o2n1s1c1m1}}}}, {{{{one_b0o3n0s0c0m0, one_b0o3n0s0c0m1}, {one_b0o3n0s0c0m0, one_b0o3n0s0c0m1}}, {{one_b0o3n0s1c0m0, one_b0o3n0s1c0m1}, {one_b0o3n0s1c0m0, one_b0o3n0s1c0m1}}}, {{{one_b0o3n1s0c0m0, one_b0o3n1s0c0m1}, {one_b0o3n1s0c1m0, one_b0o3n1s0c1m1}}, {{one_b0o3n1s1c0m0, one_b0o3n1s1c0m1}, {one_b0o3n1s1c1m0, one_b0o3n1s1c1m1}}}}},
    {{{{{one_b1o1n0s0c0m0, one_b1o1n0s0c0m1}, {one_b1o1n0s0c0m0, one_b1o1n0s0c0m1}}, {{one_b1o1n0s1c0m0, one_b1o1n0s1c0m1}, {one_b1o1n0s1c0m0, one_b1o1n0s1c0m1}}}, {{{one_b1o1n1s0c0m0, one_b1o1n1s0c0m1}, {one_b1o1n1s0c1m0, one_b1o1n1s0c1m1}}, {{one_b1o1n1s1c0m0, one_b1o1n1s1c0m1}, {one_b1o1n1s1c1m0, one_b1o1n1s1c1m1}}}}, {{{{one_b1o2n0s0c0m0, one_b1o2n0s0c0m1}, {one_b1o2n0s0c0m0, one_b1o2n0s0c0m1}}, {{one_b1o2n0s1c0m0, one_b1o2n0s1c0m1}, {one_b1o2n0s1c0m0, one_b1o2n0s1c0m1}}}, {{{one_b1o2n1s0c0m0, one_b1o2n1s0c0m1}, {one_b1o2n1s0c1m0, one_b1o2n1s0c1m1}}, {{one_b1o2n1s1c0m0, one_b1o2n1s1c0m1}, {one_b1o2n1s1c1m0, one_b1o2n1s1c1m1}}}}, {{{{one_b1o3n0s0c0m0, one_b1o3n0s0c0m1}, {one_b1o3n0s0c0m0, one_b1o3n0s0c0m1}}, {{one_b1o3n0s1c0m0, one_b1o3n0s1c0m1}, {one_b1o3n0s1c0m0, one_b1o3n0s1c0m1}}}, {{{one_b1o3n1s0c0m0, one_b1o3n1s0c0m1}, {one_b1o3n1s0c1m0, one_b1o3n1s0c1m1}}, {{one_b1o3n1s1c0m0, one_b1o3n1s1c0m1}, {one_b1o3n1s1c1m0, one_b1o3n1s1c1m1}}}}}};

/* One HALO update of n elements (pointers already offset to the first): the one-pair loop
 * when the plan has that shape, else the staged loop.  Called without the GIL. */
static void run_halo(Py_ssize_t n, float *P, const float *G, float *M, float *V, float b1,
                     float b2, float eps, const pair_t *pairs, int np_, int first_odd,
                     const int *rest_k, const float *rest_c, int nrest, const term_t *terms,
                     int nterms, const operand *c0, int clamp, const operand *scale, int sub) {
    one_fn one = NULL;
    if (np_ == 1 && nrest == 0 && nterms <= 1 && first_odd == pairs[0].k && pairs[0].has_kappa &&
        pairs[0].odd >= 1 && pairs[0].odd <= 3 &&
        (nterms == 0 || (terms[0].k == pairs[0].k && pairs[0].even >= 1)))
        one = ONE_PAIR[pairs[0].base_is_m ? 1 : 0][pairs[0].odd - 1][nterms][scale->on ? 1 : 0]
                      [clamp ? 1 : 0][sub ? 1 : 0];
    if (one != NULL) {
        const pair_t pr = pairs[0];
        const one_args oa = {P, M, V, G, b1, b2, eps, pr.kappa, pr.hi, pr.lo, c0,
                             nterms ? &terms[0].c : NULL, scale};
        one(&oa, n);
        return;
    }
    halo_loop(n, P, G, M, V, b1, b2, eps, pairs, np_, first_odd, rest_k, rest_c, nrest, terms,
              nterms, c0, clamp, scale, sub);
}

/* The per-parameter MLP in mirror-pair form as Python floats: (b_q, ((w_g, w_m, delta, mu,
 * b), ...)) (kernels.halo_fold.mlp_floats). */
typedef struct {
    double q_bias;
    int n;
    double w_g[MAXP], w_m[MAXP], delta[MAXP], mu[MAXP], b[MAXP];
} mlp_t;

static int parse_mlp(PyObject *o, mlp_t *mlp) {
    PyObject *pp;
    if (!PyArg_ParseTuple(o, "dO!", &mlp->q_bias, &PyTuple_Type, &pp)) return -1;
    mlp->n = (int)PyTuple_GET_SIZE(pp);
    if (mlp->n > MAXP) {
        PyErr_Format(PyExc_ValueError, "at most %d mirror pairs, got %d", MAXP, mlp->n);
        return -1;
    }
    for (int k = 0; k < mlp->n; k++)
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(pp, k), "ddddd", &mlp->w_g[k], &mlp->w_m[k],
                              &mlp->delta[k], &mlp->mu[k], &mlp->b[k]))
            return -1;
    return 0;
}

/* A count's plan: kernels.halo_fold.fold_floats and kernels.halo_plan's pairs_of /
 * StepPlan in C, the same float64 operations in the same order (pow and sqrt are the C
 * library's, as Python's float ** and math.sqrt), rounded to float32 where they round. */
typedef struct {
    pair_t pairs[MAXP];
    int np_, first_odd, rest_k[MAXP], nrest, sub, any_even;
    float rest_c[MAXP], eps;
    double d_scale, q_bias, qc[MAXP];
} plan_t;

static void fold_plan(const mlp_t *mlp, double beta1, double beta2, double eps, long long count,
                      plan_t *pl) {
    const double a_m = (1.0 - beta1) / (1.0 - pow(beta1, (double)count));
    const double a_v = sqrt((1.0 - beta2) / (1.0 - pow(beta2, (double)count)));
    double d_scale = 0.0, q_bias = mlp->q_bias, d_coef[MAXP];
    int np_ = 0;
    for (int j = 0; j < mlp->n; j++) {
        const double w_g = mlp->w_g[j], w_m = mlp->w_m[j], delta = mlp->delta[j], mu = mlp->mu[j],
                     b = mlp->b[j];
        const double u_g = w_g / a_v, u_m = w_m * a_m / a_v;
        if (u_g == 0.0 && u_m == 0.0) { /* dead pair: h+ = h- = relu(b), constant */
            q_bias += mu * 2.0 * (b > 0.0 ? b : 0.0);
            continue;
        }
        int base_is_m;
        double rho, kappa;
        if (fabs(u_m) >= fabs(u_g)) {
            base_is_m = 1, rho = u_m, kappa = u_g / u_m;
        } else {
            base_is_m = 0, rho = u_g, kappa = u_m / u_g;
        }
        const int odd = delta != 0.0, even = mu != 0.0;
        if (!(odd || even)) continue;
        const double beta = b / fabs(rho), ab = fabs(beta);
        pair_t *pr = &pl->pairs[np_];
        pr->k = np_;
        pr->base_is_m = base_is_m;
        pr->has_kappa = kappa != 0.0;
        pr->kappa = (float)kappa;
        pr->abs_beta = ab;
        pr->hi = (float)ab;
        pr->lo = -pr->hi;
        pr->even = !even ? 0 : (ab != 0.0 ? 2 : 1);
        pr->odd = !odd ? 0 : (ab == 0.0 ? 1 : (beta > 0.0 ? 2 : 3));
        if (odd) {
            if (d_scale == 0.0) d_scale = delta * rho;
            d_coef[np_] = delta * rho / d_scale;
        } else {
            d_coef[np_] = 0.0;
        }
        if (even) {
            q_bias += mu * fabs(rho) * beta;
            pl->qc[np_] = mu * fabs(rho);
        } else {
            pl->qc[np_] = 0.0;
        }
        np_++;
    }
    pl->np_ = np_;
    pl->first_odd = -1;
    pl->nrest = 0;
    pl->any_even = 0;
    for (int k = 0; k < np_; k++) {
        pl->any_even = pl->any_even || pl->pairs[k].even;
        if (!pl->pairs[k].odd) continue;
        if (pl->first_odd < 0) {
            pl->first_odd = k;
        } else {
            pl->rest_k[pl->nrest] = k;
            pl->rest_c[pl->nrest++] = (float)d_coef[k];
        }
    }
    pl->sub = d_scale > 0.0;
    pl->eps = (float)(eps / a_v);
    pl->d_scale = d_scale;
    pl->q_bias = q_bias;
}



/* The update of one segment of n elements (pointers at its first) from its count's plan
 * and its tensors, as halo_step() below describes.  Returns 0, or -1 with an exception. */
static int segment_update(float *P, const float *G, float *M, float *V, Py_ssize_t n, float b1,
                          float b2, const plan_t *pl, PyObject *bounds_o, PyObject *lr_o,
                          PyObject *gamma_o) {
    Py_buffer bb, blr, bga;
    int status = -1;
    const pair_t *pairs = pl->pairs;
    const int np_ = pl->np_, first_odd = pl->first_odd, nrest = pl->nrest, sub = pl->sub;
    const int any_even = pl->any_even;
    const int *rest_k = pl->rest_k;
    const float *rest_c = pl->rest_c;
    const float eps = pl->eps;
    const double d_scale = pl->d_scale, q_bias = pl->q_bias, *qc = pl->qc;
    if (PyObject_GetBuffer(bounds_o, &bb, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(lr_o, &blr, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&bb);
        return -1;
    }
    if (PyObject_GetBuffer(gamma_o, &bga, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&bb);
        PyBuffer_Release(&blr);
        return -1;
    }
    const Py_ssize_t K = blr.len / (Py_ssize_t)sizeof(double);
    if (K < 1 || bga.len != blr.len || bb.len != (K + 1) * 8) {
        PyErr_SetString(PyExc_ValueError, "halo_step: bounds (k+1,), lr and gamma (k,) needed");
        goto out;
    }
    {
        const long long *bounds = (const long long *)bb.buf;
        const double *lr = (const double *)blr.buf, *gamma = (const double *)bga.buf;
        if (bounds[0] != 0 || bounds[K] != n) {
            PyErr_SetString(PyExc_ValueError, "halo_step: bounds must run from 0 to n");
            goto out;
        }
        for (Py_ssize_t t = 0; t < K; t++)
            if (bounds[t + 1] < bounds[t]) {
                PyErr_SetString(PyExc_ValueError, "halo_step: bounds must not decrease");
                goto out;
            }
        const double d = fabs(d_scale);
        int one = K == 1, same_gamma = 1;
        if (!one) { /* len(set(gamma)) == 1 and len(set(lr)) == 1 (NaN: never equal) */
            for (Py_ssize_t t = 1; t < K; t++) same_gamma = same_gamma && gamma[t] == gamma[0];
            if (same_gamma) {
                int same_lr = 1;
                for (Py_ssize_t t = 1; t < K; t++) same_lr = same_lr && lr[t] == lr[0];
                if (same_lr) one = 1; /* one piece [0, n) */
            }
        }
        const Py_ssize_t pieces = one ? 1 : K;
        term_t terms[MAXP];
        int nterms = 0, clamp = 0;
        operand c0 = scalar_op(0.0f), scale = scalar_op(0.0f);
        scale.on = 0;
        /* the shared-gain form's tensor-independent part (shared_gain) */
        double sg_c0 = 0.0, sg_x[MAXP];
        int sg_clamp = 0;
        if (any_even && same_gamma) {
            const double gam = gamma[0];
            double acc = 0.0;
            int neg = 0;
            sg_c0 = 1.0 + gam * q_bias;
            for (int k = 0; k < np_; k++) {
                const double x = gam * qc[k];
                sg_x[k] = x;
                neg = neg || x < 0.0;
                acc = acc + x * pairs[k].abs_beta;
            }
            sg_clamp = neg || sg_c0 + acc < 0.0;
        }
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t t = 0; t < pieces; t++) {
            const Py_ssize_t a = one ? 0 : (Py_ssize_t)bounds[t];
            const Py_ssize_t b = one ? n : (Py_ssize_t)bounds[t + 1];
            if (b <= a) continue;
            nterms = 0;
            scale.on = 0;
            if (!any_even) { /* E = |lr| d (1 + gamma q_bias) */
                const double e0 = fabs(lr[t]) * d * (1.0 + gamma[t] * q_bias);
                c0 = scalar_op((float)e0);
                clamp = 0;
            } else if (same_gamma && one) { /* folded into one set of constants */
                const double lr1 = fabs(lr[0]) * d;
                c0 = scalar_op((float)(sg_c0 * lr1));
                for (int k = 0; k < np_; k++)
                    if (sg_x[k] != 0.0) {
                        terms[nterms].k = k;
                        terms[nterms++].c = scalar_op((float)(sg_x[k] * lr1));
                    }
                clamp = sg_clamp;
            } else if (same_gamma) { /* shared phi, each tensor's |lr D| as the scale */
                c0 = scalar_op((float)sg_c0);
                for (int k = 0; k < np_; k++)
                    if (sg_x[k] != 0.0) {
                        terms[nterms].k = k;
                        terms[nterms++].c = scalar_op((float)sg_x[k]);
                    }
                clamp = sg_clamp;
                scale = scalar_op((float)(fabs(lr[t]) * d));
            } else if (one) { /* tensor_scalars */
                const double sc = fabs(lr[0] * d_scale);
                const double e0 = sc * (1.0 + gamma[0] * q_bias);
                double low = 0.0;
                int neg = 0;
                c0 = scalar_op((float)e0);
                for (int k = 0; k < np_; k++) {
                    const double ek = sc * gamma[0] * qc[k];
                    low = low + ek * pairs[k].abs_beta;
                    neg = neg || ek < 0.0;
                    if (ek != 0.0) {
                        terms[nterms].k = k;
                        terms[nterms++].c = scalar_op((float)ek);
                    }
                }
                clamp = neg || e0 + low < 0.0;
            } else { /* tensor_arrays: every pair with q_coef != 0, clamped */
                const double sc = fabs(lr[t] * d_scale);
                const double sg = sc * gamma[t];
                c0 = scalar_op((float)(sc * (1.0 + gamma[t] * q_bias)));
                for (int k = 0; k < np_; k++)
                    if (qc[k] != 0.0) {
                        terms[nterms].k = k;
                        terms[nterms++].c = scalar_op((float)(sg * qc[k]));
                    }
                clamp = 1;
            }
            run_halo(b - a, P + a, G + a, M + a, V + a, b1, b2, eps, pairs, np_, first_odd, rest_k, rest_c, nrest,
                     terms, nterms, &c0, clamp, &scale, sub);
        }
        Py_END_ALLOW_THREADS
    }
    status = 0;
out:
    PyBuffer_Release(&bb);
    PyBuffer_Release(&blr);
    PyBuffer_Release(&bga);
    return status;
}

/* halo_step(p, g, m, v, b1, b2, mlp, beta1, beta2, eps, runs)
 *
 * HALO's update (kernels/halo_elementwise.py): p, m, v float32 (n,) in place from g.
 * b1, b2: the moment decays as float32; mlp: kernels.halo_fold.mlp_floats; beta1, beta2,
 * eps: the weights' (float64).  runs: ((a, b, count, bounds, lr, gamma), ...): elements
 * [a, b) at update count `count`, their tensors' bounds (int64, relative to a, from 0 to
 * b - a), learning rates and gains (float64).  Per run: the count's plan (fold_plan);
 * per tensor: E's constants by exactly the float64 operations of
 * ElementwiseKernel._e_plan (kernels.halo_fold's shared_gain / tensor_scalars /
 * tensor_arrays), rounded to float32 where it rounds, with the same choice between its
 * forms (one tensor or all alike; a shared gain; per-tensor gains); then the loops do
 * ElementwiseKernel._chunk's operations in its order.  So the ufunc chain's results. */
static PyObject *halo_step(PyObject *self, PyObject *args) {
    PyObject *o[4], *mlp_o, *runs_o;
    float b1, b2, *arr[4];
    double beta1, beta2, eps;
    mlp_t mlp;
    bufs_t bs = {.n = 0};
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOOOffOdddO!", &o[0], &o[1], &o[2], &o[3], &b1, &b2, &mlp_o,
                          &beta1, &beta2, &eps, &PyTuple_Type, &runs_o))
        return NULL;
    if (get_update_arrays(&bs, o, arr, &n) || parse_mlp(mlp_o, &mlp)) goto fail;
    for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(runs_o); r++) {
        Py_ssize_t a, b;
        long long count;
        PyObject *bounds_o, *lr_o, *gamma_o;
        plan_t plan;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(runs_o, r), "nnLOOO", &a, &b, &count, &bounds_o,
                              &lr_o, &gamma_o))
            goto fail;
        if (a < 0 || b > n || a > b || count < 1) {
            PyErr_Format(PyExc_ValueError, "halo_step: run [%zd, %zd) at count %lld outside [0, %zd)",
                         a, b, count, n);
            goto fail;
        }
        fold_plan(&mlp, beta1, beta2, eps, count, &plan);
        if (segment_update(arr[0] + a, arr[1] + a, arr[2] + a, arr[3] + a, b - a, b1, b2, &plan,
                           bounds_o, lr_o, gamma_o))
            goto fail;
    }
    bufs_release(&bs);
    Py_RETURN_NONE;
fail:
    bufs_release(&bs);
    return NULL;
}

CLONES static void adam_loop(Py_ssize_t n, float *restrict p, const float *restrict g,
                      float *restrict m, float *restrict v, float b1, float omb1, float b2,
                      float omb2, float eps_hat, float step) {
    for (Py_ssize_t i = 0; i < n; i++) {
        float mm = m[i] * b1;
        float tt = g[i] * omb1;
        mm = mm + tt; /* m = b1 m + (1 - b1) g */
        m[i] = mm;
        float vv = v[i] * b2;
        tt = g[i] * g[i];
        tt = tt * omb2;
        vv = vv + tt; /* v = b2 v + (1 - b2) g^2 */
        v[i] = vv;
        tt = sqrtf(vv);
        tt = tt + eps_hat;
        tt = mm / tt;
        tt = tt * step;
        p[i] = p[i] - tt;
    }
}

/* adam(p, g, m, v, b1, omb1, b2, omb2, eps_hat, step): kernels.optim_adaptive._adam_kernel's
 * twelve ufuncs (through kernels.optim_common.ema_moments) in one pass, same order. */
static PyObject *adam(PyObject *self, PyObject *args) {
    PyObject *o[4];
    float b1, omb1, b2, omb2, eps_hat, step, *arr[4];
    bufs_t bs = {.n = 0};
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OOOOffffff", &o[0], &o[1], &o[2], &o[3], &b1, &omb1, &b2, &omb2,
                          &eps_hat, &step))
        return NULL;
    if (get_update_arrays(&bs, o, arr, &n)) {
        bufs_release(&bs);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    adam_loop(n, arr[0], arr[1], arr[2], arr[3], b1, omb1, b2, omb2, eps_hat, step);
    Py_END_ALLOW_THREADS
    bufs_release(&bs);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------
 * HALO's per-tensor controller (models/halo/controller.py): the same float64 operations in
 * the same order as its NumPy calls, one C call instead of ~10-20 ufunc calls on arrays of
 * a few tensors.  log and exp are the C library's; NumPy's float64 log/exp are the same
 * calls on builds without AVX-512 (checked at test time, tests/test_fused.py), and may
 * differ by an ulp where NumPy vectorises them. */


/* NumPy's pairwise summation of n doubles (numpy/_core/src/umath/loops_utils.h.src), the
 * order np.add.reduceat sums a contiguous run in: a[0] + pairwise(a[1:]). */
static double pairwise(const double *a, Py_ssize_t n) {
    if (n < 8) {
        double res = 0.;
        for (Py_ssize_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        Py_ssize_t i;
        for (int k = 0; k < 8; k++) r[k] = a[k];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int k = 0; k < 8; k++) r[k] += a[i + k];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

static double reduce_run(const double *a, Py_ssize_t n) {
    return n <= 1 ? (n == 1 ? a[0] : 0.0) : a[0] + pairwise(a + 1, n - 1);
}

/* A segment's statistics sample: per sampled tensor j, len_j elements from first[j] with
 * step stride[j] (a strided slice of that tensor), stored from starts[j] on (len_j =
 * starts[j+1] - starts[j], the last up to S).  Checks that every run stays inside [0, n). */
typedef struct {
    const long long *first, *stride, *starts;
    Py_ssize_t J, S;
} runs_t;

static int parse_runs(const Py_buffer *bf, const Py_buffer *bs, const Py_buffer *bst, Py_ssize_t S,
                      Py_ssize_t n, runs_t *r) {
    r->J = bst->len / 8;
    r->S = S;
    r->first = (const long long *)bf->buf;
    r->stride = (const long long *)bs->buf;
    r->starts = (const long long *)bst->buf;
    if (bf->len != bst->len || bs->len != bst->len) {
        PyErr_SetString(PyExc_ValueError, "sample runs: first, stride, starts differ in length");
        return -1;
    }
    for (Py_ssize_t j = 0; j < r->J; j++) {
        const long long a = r->starts[j], b = j + 1 < r->J ? r->starts[j + 1] : S;
        if (a < 0 || b > S || a > b || r->stride[j] < 1 || r->first[j] < 0 ||
            (b > a && r->first[j] + (b - a - 1) * r->stride[j] >= n)) {
            PyErr_SetString(PyExc_ValueError, "sample runs out of range");
            return -1;
        }
    }
    return 0;
}

/* take(src float32 (n,), first, stride, starts int64 (J,), out float32 (S,)): the sample */
static PyObject *take(PyObject *self, PyObject *args) {
    PyObject *o[5];
    bufs_t bs = {.n = 0};
    Py_buffer *b[5];
    runs_t r;
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4])) return NULL;
    for (int k = 0; k < 5; k++)
        if ((b[k] = bufs_get(&bs, o[k], k == 4)) == NULL) goto fail;
    if (parse_runs(b[1], b[2], b[3], b[4]->len / (Py_ssize_t)sizeof(float),
                   b[0]->len / (Py_ssize_t)sizeof(float), &r))
        goto fail;
    {
        const float *src = (const float *)b[0]->buf;
        float *out = (float *)b[4]->buf;
        for (Py_ssize_t j = 0; j < r.J; j++) {
            const Py_ssize_t a = r.starts[j], e = j + 1 < r.J ? r.starts[j + 1] : r.S;
            const float *x = src + r.first[j];
            const Py_ssize_t st = r.stride[j];
            for (Py_ssize_t i = 0; i < e - a; i++) out[a + i] = x[i * st];
        }
    }
    bufs_release(&bs);
    Py_RETURN_NONE;
fail:
    bufs_release(&bs);
    return NULL;
}

/* gather(g, p_after float32 (n,), before float32 (S,), first, stride, starts, ids int64 (J,),
 *        counts float64 (J,), acc float64 (4, T))
 * Controller.gather_segment's sums: per sampled tensor j, acc[r, ids[j]] += the
 * reduceat-ordered float64 sum of g^2, p^2, (p - before)^2 (r = 0, 1, 2) over its sample,
 * and acc[3, ids[j]] += counts[j]. */
static PyObject *gather(PyObject *self, PyObject *args) {
    PyObject *o[9]; /* g, p, before, first, stride, starts, ids, counts, acc */
    bufs_t bs = {.n = 0};
    Py_buffer *b[9];
    double *buf = NULL;
    runs_t r;
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &o[7], &o[8]))
        return NULL;
    for (int k = 0; k < 9; k++)
        if ((b[k] = bufs_get(&bs, o[k], k == 8)) == NULL) goto fail;
    const Py_ssize_t n = b[0]->len / (Py_ssize_t)sizeof(float);
    const Py_ssize_t S = b[2]->len / (Py_ssize_t)sizeof(float);
    const Py_ssize_t T = b[8]->len / (Py_ssize_t)sizeof(double) / 4;
    if (parse_runs(b[3], b[4], b[5], S, n, &r)) goto fail;
    if (b[1]->len != b[0]->len || b[6]->len != r.J * 8 || b[7]->len != r.J * 8 ||
        b[8]->len != 4 * T * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "gather: inconsistent array lengths");
        goto fail;
    }
    const float *g = (const float *)b[0]->buf, *p = (const float *)b[1]->buf;
    const float *before = (const float *)b[2]->buf;
    const long long *ids = (const long long *)b[6]->buf;
    const double *counts = (const double *)b[7]->buf;
    double *acc = (double *)b[8]->buf;
    for (Py_ssize_t j = 0; j < r.J; j++)
        if (ids[j] < 0 || ids[j] >= T) {
            PyErr_SetString(PyExc_ValueError, "gather: tensor ids out of range");
            goto fail;
        }
    buf = (double *)PyMem_Malloc((size_t)(3 * (S > 0 ? S : 1)) * sizeof(double));
    if (buf == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t j = 0; j < r.J; j++) {
        const Py_ssize_t a = r.starts[j], len = (j + 1 < r.J ? r.starts[j + 1] : S) - a;
        const Py_ssize_t st = r.stride[j];
        const float *gj = g + r.first[j], *pj = p + r.first[j], *bj = before + a;
        double *x0 = buf, *x1 = buf + len, *x2 = buf + 2 * len;
        for (Py_ssize_t i = 0; i < len; i++) {
            const double gv = (double)gj[i * st], pv = (double)pj[i * st];
            const double u = pv - (double)bj[i];
            x0[i] = gv * gv;
            x1[i] = pv * pv;
            x2[i] = u * u;
        }
        acc[ids[j]] += reduce_run(x0, len);
        acc[T + ids[j]] += reduce_run(x1, len);
        acc[2 * T + ids[j]] += reduce_run(x2, len);
        acc[3 * T + ids[j]] += counts[j];
    }
    PyMem_Free(buf);
    bufs_release(&bs);
    Py_RETURN_NONE;
fail:
    PyMem_Free(buf);
    bufs_release(&bs);
    return NULL;
}

/* finish(acc (4, T), fin (3, T), have (T,) bool, mask (T,) bool, stat_term (2, T),
 *        (th_rel_g0, th_rel_g1), (th_ratio0, th_ratio1), every, n_have) -> n_have
 * Controller._finish for T tensors: see its docstring; a tensor's results are kept if
 * every or mask[k]; acc is zeroed, mask cleared (unless every), have updated. */
static PyObject *finish(PyObject *self, PyObject *args) {
    PyObject *acc_o, *fin_o, *have_o, *mask_o, *st_o;
    double tg0, tg1, tr0, tr1;
    int every;
    Py_ssize_t n_have;
    if (!PyArg_ParseTuple(args, "OOOOO(dd)(dd)pn", &acc_o, &fin_o, &have_o, &mask_o, &st_o, &tg0,
                          &tg1, &tr0, &tr1, &every, &n_have))
        return NULL;
    bufs_t bs = {.n = 0};
    Py_buffer *bh = bufs_get(&bs, have_o, 1), *bm = bh ? bufs_get(&bs, mask_o, 1) : NULL;
    if (bm == NULL) goto fail;
    const Py_ssize_t T = bh->len;
    if (bm->len != T) {
        PyErr_SetString(PyExc_ValueError, "finish: have and mask differ in length");
        goto fail;
    }
    double *acc = bufs_f64(&bs, acc_o, 4 * T, "acc", 1);
    double *fin = acc ? bufs_f64(&bs, fin_o, 3 * T, "fin", 1) : NULL;
    double *st = fin ? bufs_f64(&bs, st_o, 2 * T, "stat_term", 1) : NULL;
    if (st == NULL) goto fail;
    unsigned char *have = (unsigned char *)bh->buf, *mask = (unsigned char *)bm->buf;
    const int fill_first = n_have != T;
    for (Py_ssize_t k = 0; k < T; k++) {
        double cnt = acc[3 * T + k];
        if (!every) cnt = cnt < 1.0 ? 1.0 : cnt; /* np.maximum(cnt, 1): cnt is a count */
        double rg = acc[k] / cnt, rp = acc[T + k] / cnt, ru = acc[2 * T + k] / cnt;
        rg = rg + 1e-30;
        rp = rp + 0.0;
        ru = ru + 1e-30;
        rg = log(sqrt(rg) + 0.0);
        rp = log(sqrt(rp) + 1e-3);
        ru = log(sqrt(ru) + 0.0);
        double ratio = ru - rp;
        double rbar = fin[T + k] * 0.9;
        double rel = rg * 0.1;
        rbar = rbar + rel;
        if (fill_first && !have[k]) rbar = rg;
        rel = rg - rbar;
        ratio = max_c64(ratio, -12.0);
        rel = max_c64(rel, -3.0);
        ratio = min_c64(ratio, 2.0);
        rel = min_c64(rel, 3.0);
        const double t0 = tg0 * rel, t1 = tg1 * rel, u0 = tr0 * ratio, u1 = tr1 * ratio;
        if (every || mask[k]) {
            fin[k] = rg;
            fin[T + k] = rbar;
            fin[2 * T + k] = ratio;
            st[k] = t0 + u0;
            st[T + k] = t1 + u1;
        }
    }
    if (fill_first) {
        n_have = 0;
        for (Py_ssize_t k = 0; k < T; k++) {
            if (every || mask[k]) have[k] = 1;
            n_have += have[k] != 0;
        }
    }
    if (!every) memset(mask, 0, (size_t)T);
    memset(acc, 0, (size_t)(4 * T) * sizeof(double));
    bufs_release(&bs);
    return PyLong_FromSsize_t(n_have);
fail:
    bufs_release(&bs);
    return NULL;
}

/* scalars(depth_term (2, T), stat_term (2, T), t0, t1, sh0, sh1, runs, uses_stats, clip,
 *         out (2, t1 - t0))
 * Controller.scalars for tensors [t0, t1) without the relative-lr column:
 * out = exp(clip(depth + shared (+ stat), -clip, clip)), row 0 the lr multipliers, row 1
 * the gains; the shared part is (sh0, sh1) for every tensor (runs None), or per run of
 * tensors ((a, b, s0, s1), ...) covering [0, t1 - t0) in order. */
static PyObject *scalars(PyObject *self, PyObject *args) {
    PyObject *dt_o, *st_o, *runs_o, *out_o;
    Py_ssize_t t0, t1;
    double sh0, sh1, c;
    int uses_stats;
    if (!PyArg_ParseTuple(args, "OOnnddOpdO", &dt_o, &st_o, &t0, &t1, &sh0, &sh1, &runs_o,
                          &uses_stats, &c, &out_o))
        return NULL;
    bufs_t bs = {.n = 0};
    Py_buffer *bd = bufs_get(&bs, dt_o, 0);
    if (bd == NULL) goto fail;
    const Py_ssize_t T = bd->len / (Py_ssize_t)sizeof(double) / 2, k = t1 - t0;
    const double *stt = bufs_f64(&bs, st_o, 2 * T, "stat_term", 0);
    if (stt == NULL) goto fail;
    if (t0 < 0 || t1 > T || k < 0) {
        PyErr_SetString(PyExc_ValueError, "scalars: tensors out of range");
        goto fail;
    }
    if (runs_o != Py_None && !PyTuple_Check(runs_o)) {
        PyErr_SetString(PyExc_TypeError, "scalars: runs must be None or a tuple");
        goto fail;
    }
    double *out = bufs_f64(&bs, out_o, 2 * k, "out", 1);
    if (out == NULL) goto fail;
    {
        const double *dt = (const double *)bd->buf;
        const Py_ssize_t nr = runs_o == Py_None ? 1 : PyTuple_GET_SIZE(runs_o);
        Py_ssize_t prev = 0;
        for (Py_ssize_t r = 0; r < nr; r++) {
            Py_ssize_t a = 0, b = k;
            double s0 = sh0, s1 = sh1;
            if (runs_o != Py_None &&
                !PyArg_ParseTuple(PyTuple_GET_ITEM(runs_o, r), "nndd", &a, &b, &s0, &s1))
                goto fail;
            if (a != prev || b < a || b > k || (r == nr - 1 && b != k)) {
                PyErr_SetString(PyExc_ValueError, "scalars: runs must cover the tensors in order");
                goto fail;
            }
            prev = b;
            for (Py_ssize_t j = a; j < b; j++) {
                for (int q = 0; q < 2; q++) {
                    double o = dt[q * T + t0 + j] + (q ? s1 : s0);
                    if (uses_stats) o = o + stt[q * T + t0 + j];
                    o = max_c64(o, -c);
                    o = min_c64(o, c);
                    out[q * k + j] = exp(o);
                }
            }
        }
    }
    bufs_release(&bs);
    Py_RETURN_NONE;
fail:
    bufs_release(&bs);
    return NULL;
}

static PyMethodDef methods[] = {
    {"adam", adam, METH_VARARGS, "Adam's update in one pass (see kernels/fused.py)."},
    {"halo_step", halo_step, METH_VARARGS, "HALO's update of runs of tensors (see the source)."},
    {"take", take, METH_VARARGS, "HALO controller: a segment's statistics sample."},
    {"gather", gather, METH_VARARGS, "HALO controller: a segment's statistics sums."},
    {"finish", finish, METH_VARARGS, "HALO controller: finalise the gathered statistics."},
    {"scalars", scalars, METH_VARARGS, "HALO controller: per-tensor lr multipliers and gains."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fused",
    .m_doc = "Fused float32 update loops, bit-identical to the ufunc chains.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fused(void) { return PyModule_Create(&module); }

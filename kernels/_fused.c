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

/* A float32 operand that is either one value or a vector over the segment. */
typedef struct {
    const float *vec; /* NULL: the scalar val */
    float val;
    Py_buffer view;
    int held;
} operand;

static int get_operand(PyObject *o, Py_ssize_t n, const char *name, operand *out) {
    out->vec = NULL;
    out->held = 0;
    if (PyFloat_Check(o) || PyLong_Check(o)) {
        double x = PyFloat_AsDouble(o);
        if (x == -1.0 && PyErr_Occurred()) return -1;
        out->val = (float)x;
        return 0;
    }
    if (PyObject_GetBuffer(o, &out->view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    out->held = 1;
    if (out->view.len != n * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd float32 values, got %zd bytes", name, n,
                     out->view.len);
        return -1;
    }
    out->vec = (const float *)out->view.buf;
    return 0;
}

static void release(operand *o) {
    if (o->held) PyBuffer_Release(&o->view);
    o->held = 0;
}

static int check_len(Py_buffer *b, Py_ssize_t n, const char *name) {
    if (b->len != n * (Py_ssize_t)sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd float32 values, got %zd bytes", name, n,
                     b->len);
        return -1;
    }
    return 0;
}

typedef struct {
    int k, base_is_m, has_kappa, even, odd;
    float kappa, hi, lo;
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
            if (c0->vec)
                for (int i = 0; i < w; i++) e[i] = c0->vec[i0 + i];
            else
                for (int i = 0; i < w; i++) e[i] = c0->val;
        } else {
            for (int j = 0; j < nterms; j++) {
                const float *mkk = mk[terms[j].k];
                const operand *c = &terms[j].c;
                if (j == 0) {
                    if (c->vec)
                        for (int i = 0; i < w; i++) e[i] = mkk[i] * c->vec[i0 + i];
                    else
                        for (int i = 0; i < w; i++) e[i] = mkk[i] * c->val;
                } else {
                    if (c->vec)
                        for (int i = 0; i < w; i++) t[i] = mkk[i] * c->vec[i0 + i];
                    else
                        for (int i = 0; i < w; i++) t[i] = mkk[i] * c->val;
                    for (int i = 0; i < w; i++) e[i] = e[i] + t[i];
                }
            }
            if (c0->vec)
                for (int i = 0; i < w; i++) e[i] = e[i] + c0->vec[i0 + i];
            else
                for (int i = 0; i < w; i++) e[i] = e[i] + c0->val;
            if (clamp)
                for (int i = 0; i < w; i++) e[i] = max_c(e[i], 0.0f);
        }
        if (scale->vec)
            for (int i = 0; i < w; i++) e[i] = e[i] * scale->vec[i0 + i];
        if (sub)
            for (int i = 0; i < w; i++) p[i] = p[i] - acc[i] * e[i];
        else
            for (int i = 0; i < w; i++) p[i] = p[i] + acc[i] * e[i];
    }
}

/* Plans with one mirror pair (every shipped weights file so far): the whole update of an
 * element in registers, one pass, specialised at compile time on what changes the
 * operations (kappa or not, the even and odd modes, whether E reads M), with the rest as
 * selects.  The same operations in the same order as the staged loop and the ufunc chain;
 * p - d is computed as p + (-d), the same IEEE operation. */
typedef struct {
    float *P, *M, *V;
    const float *G;
    float b1, b2, eps, kappa, he, hi, lo;
    int clamp, sub;
    const operand *c0, *ck, *scale;
} one_args;

/* One block of at most BLK elements.  EM, how E's operands arrive: 0 c0 and c_k scalars;
 * 1 scalars and a per-element scale; 2 c0 and c_k per-element vectors (c_k only if NT).
 * The pointers are restrict parameters (GCC does not vectorise a loop whose pointers are
 * picked with ?: in the same function). */
static inline __attribute__((always_inline)) void one_block(
    const int w, float *restrict p, float *restrict m, float *restrict v, const float *restrict g,
    const float *restrict c0p, const float *restrict ckp, const float *restrict scp, const float c0s,
    const float cks, const float b1, const float b2, const float eps, const float kappa,
    const float he, const float hi, const float lo, const float floor, const float sgn,
    const int HAS_K, const int BASE_M, const int ODD, const int NT, const int EM) {
    for (int i = 0; i < w; i++) {
        const float gi = g[i];
        float mm = m[i] * b1;
        mm = mm + gi;
        m[i] = mm;
        const float tt = gi * gi;
        float vv = v[i] * b2;
        vv = vv + tt;
        v[i] = vv;
        const float s = sqrtf(vv) + eps;
        const float base = BASE_M ? mm : gi, other = BASE_M ? gi : mm;
        float z;
        if (HAS_K) {
            z = other * kappa;
            z = z + base;
            z = z / s;
        } else {
            z = base / s;
        }
        /* M = max(|z|, |beta|), or |z| (he = 0: max(|z|, 0) is |z|, NaN stays NaN) */
        const float mk = max_c(fabsf(z), he);
        if (ODD == 2) z = z + min_c(max_c(z, lo), hi);
        if (ODD == 3) z = z - min_c(max_c(z, lo), hi);
        const float c0 = EM == 2 ? c0p[i] : c0s;
        float e;
        if (NT) {
            e = mk * (EM == 2 ? ckp[i] : cks);
            e = e + c0;
            e = max_c(e, floor);
        } else {
            e = c0;
        }
        if (EM == 1) e = e * scp[i];
        const float d = z * e;
        p[i] = p[i] + d * sgn;
    }
}

static inline __attribute__((always_inline)) void one_pair_body(const one_args *a, Py_ssize_t n,
                                                                 const int HAS_K, const int BASE_M,
                                                                 const int ODD, const int NT,
                                                                 const int EM) {
    /* max(e, -inf) is e (NaN stays NaN); d * -1 is -d exactly, and p + (-d) is p - d */
    const float floor = a->clamp ? 0.0f : -INFINITY, sgn = a->sub ? -1.0f : 1.0f;
    const float c0s = a->c0->val, cks = NT ? a->ck->val : 0.0f;
    for (Py_ssize_t i0 = 0; i0 < n; i0 += BLK) {
        const int w = (int)(n - i0 < BLK ? n - i0 : BLK);
        one_block(w, a->P + i0, a->M + i0, a->V + i0, a->G + i0,
                  EM == 2 ? a->c0->vec + i0 : NULL, (EM == 2 && NT) ? a->ck->vec + i0 : NULL,
                  EM == 1 ? a->scale->vec + i0 : NULL, c0s, cks, a->b1, a->b2, a->eps, a->kappa,
                  a->he, a->hi, a->lo, floor, sgn, HAS_K, BASE_M, ODD, NT, EM);
    }
}

typedef void (*one_fn)(const one_args *, Py_ssize_t);
CLONES static void one_k0b0o1n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 1, 0, 0); }
CLONES static void one_k0b0o1n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 1, 0, 1); }
CLONES static void one_k0b0o1n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 1, 0, 2); }
CLONES static void one_k0b0o1n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 1, 1, 0); }
CLONES static void one_k0b0o1n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 1, 1, 1); }
CLONES static void one_k0b0o1n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 1, 1, 2); }
CLONES static void one_k0b0o2n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 2, 0, 0); }
CLONES static void one_k0b0o2n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 2, 0, 1); }
CLONES static void one_k0b0o2n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 2, 0, 2); }
CLONES static void one_k0b0o2n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 2, 1, 0); }
CLONES static void one_k0b0o2n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 2, 1, 1); }
CLONES static void one_k0b0o2n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 2, 1, 2); }
CLONES static void one_k0b0o3n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 3, 0, 0); }
CLONES static void one_k0b0o3n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 3, 0, 1); }
CLONES static void one_k0b0o3n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 3, 0, 2); }
CLONES static void one_k0b0o3n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 3, 1, 0); }
CLONES static void one_k0b0o3n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 3, 1, 1); }
CLONES static void one_k0b0o3n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 0, 3, 1, 2); }
CLONES static void one_k0b1o1n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 0, 0); }
CLONES static void one_k0b1o1n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 0, 1); }
CLONES static void one_k0b1o1n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 0, 2); }
CLONES static void one_k0b1o1n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 1, 0); }
CLONES static void one_k0b1o1n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 1, 1); }
CLONES static void one_k0b1o1n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 1, 1, 2); }
CLONES static void one_k0b1o2n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 2, 0, 0); }
CLONES static void one_k0b1o2n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 2, 0, 1); }
CLONES static void one_k0b1o2n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 2, 0, 2); }
CLONES static void one_k0b1o2n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 2, 1, 0); }
CLONES static void one_k0b1o2n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 2, 1, 1); }
CLONES static void one_k0b1o2n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 2, 1, 2); }
CLONES static void one_k0b1o3n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 3, 0, 0); }
CLONES static void one_k0b1o3n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 3, 0, 1); }
CLONES static void one_k0b1o3n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 3, 0, 2); }
CLONES static void one_k0b1o3n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 3, 1, 0); }
CLONES static void one_k0b1o3n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 3, 1, 1); }
CLONES static void one_k0b1o3n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 0, 1, 3, 1, 2); }
CLONES static void one_k1b0o1n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 1, 0, 0); }
CLONES static void one_k1b0o1n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 1, 0, 1); }
CLONES static void one_k1b0o1n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 1, 0, 2); }
CLONES static void one_k1b0o1n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 1, 1, 0); }
CLONES static void one_k1b0o1n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 1, 1, 1); }
CLONES static void one_k1b0o1n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 1, 1, 2); }
CLONES static void one_k1b0o2n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 2, 0, 0); }
CLONES static void one_k1b0o2n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 2, 0, 1); }
CLONES static void one_k1b0o2n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 2, 0, 2); }
CLONES static void one_k1b0o2n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 2, 1, 0); }
CLONES static void one_k1b0o2n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 2, 1, 1); }
CLONES static void one_k1b0o2n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 2, 1, 2); }
CLONES static void one_k1b0o3n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 3, 0, 0); }
CLONES static void one_k1b0o3n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 3, 0, 1); }
CLONES static void one_k1b0o3n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 3, 0, 2); }
CLONES static void one_k1b0o3n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 3, 1, 0); }
CLONES static void one_k1b0o3n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 3, 1, 1); }
CLONES static void one_k1b0o3n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 0, 3, 1, 2); }
CLONES static void one_k1b1o1n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 0, 0); }
CLONES static void one_k1b1o1n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 0, 1); }
CLONES static void one_k1b1o1n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 0, 2); }
CLONES static void one_k1b1o1n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 1, 0); }
CLONES static void one_k1b1o1n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 1, 1); }
CLONES static void one_k1b1o1n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 1, 1, 2); }
CLONES static void one_k1b1o2n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 2, 0, 0); }
CLONES static void one_k1b1o2n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 2, 0, 1); }
CLONES static void one_k1b1o2n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 2, 0, 2); }
CLONES static void one_k1b1o2n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 2, 1, 0); }
CLONES static void one_k1b1o2n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 2, 1, 1); }
CLONES static void one_k1b1o2n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 2, 1, 2); }
CLONES static void one_k1b1o3n0m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 3, 0, 0); }
CLONES static void one_k1b1o3n0m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 3, 0, 1); }
CLONES static void one_k1b1o3n0m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 3, 0, 2); }
CLONES static void one_k1b1o3n1m0(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 3, 1, 0); }
CLONES static void one_k1b1o3n1m1(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 3, 1, 1); }
CLONES static void one_k1b1o3n1m2(const one_args *a, Py_ssize_t n) { one_pair_body(a, n, 1, 1, 3, 1, 2); }

/* [has kappa][base is m][odd mode - 1][E reads M][E's operands] */
static const one_fn ONE_PAIR[2][2][3][2][3] = {
    {{{{one_k0b0o1n0m0, one_k0b0o1n0m1, one_k0b0o1n0m2}, {one_k0b0o1n1m0, one_k0b0o1n1m1, one_k0b0o1n1m2}}, {{one_k0b0o2n0m0, one_k0b0o2n0m1, one_k0b0o2n0m2}, {one_k0b0o2n1m0, one_k0b0o2n1m1, one_k0b0o2n1m2}}, {{one_k0b0o3n0m0, one_k0b0o3n0m1, one_k0b0o3n0m2}, {one_k0b0o3n1m0, one_k0b0o3n1m1, one_k0b0o3n1m2}}}, {{{one_k0b1o1n0m0, one_k0b1o1n0m1, one_k0b1o1n0m2}, {one_k0b1o1n1m0, one_k0b1o1n1m1, one_k0b1o1n1m2}}, {{one_k0b1o2n0m0, one_k0b1o2n0m1, one_k0b1o2n0m2}, {one_k0b1o2n1m0, one_k0b1o2n1m1, one_k0b1o2n1m2}}, {{one_k0b1o3n0m0, one_k0b1o3n0m1, one_k0b1o3n0m2}, {one_k0b1o3n1m0, one_k0b1o3n1m1, one_k0b1o3n1m2}}}},
    {{{{one_k1b0o1n0m0, one_k1b0o1n0m1, one_k1b0o1n0m2}, {one_k1b0o1n1m0, one_k1b0o1n1m1, one_k1b0o1n1m2}}, {{one_k1b0o2n0m0, one_k1b0o2n0m1, one_k1b0o2n0m2}, {one_k1b0o2n1m0, one_k1b0o2n1m1, one_k1b0o2n1m2}}, {{one_k1b0o3n0m0, one_k1b0o3n0m1, one_k1b0o3n0m2}, {one_k1b0o3n1m0, one_k1b0o3n1m1, one_k1b0o3n1m2}}}, {{{one_k1b1o1n0m0, one_k1b1o1n0m1, one_k1b1o1n0m2}, {one_k1b1o1n1m0, one_k1b1o1n1m1, one_k1b1o1n1m2}}, {{one_k1b1o2n0m0, one_k1b1o2n0m1, one_k1b1o2n0m2}, {one_k1b1o2n1m0, one_k1b1o2n1m1, one_k1b1o2n1m2}}, {{one_k1b1o3n0m0, one_k1b1o3n0m1, one_k1b1o3n0m2}, {one_k1b1o3n1m0, one_k1b1o3n1m1, one_k1b1o3n1m2}}}}};

/* halo(p, g, m, v, b1, b2, eps, pairs, first_odd, odd_rest, sub, c0, terms, clamp, scale)
 *
 * p, m, v: writable float32 (n,); g: float32 (n,).  b1, b2, eps: float32 values.
 * pairs: ((k, base_is_m, has_kappa, kappa, even, odd, abs_beta), ...) as
 * kernels.halo_plan.Pair / StepPlan hold them; first_odd: the pair holding A (-1: the
 * parameters do not move); odd_rest: ((k, coef), ...); sub: p -= A E (else p += A E);
 * c0: E's constant; terms: ((k, c_k), ...) of E = c0 + sum c_k M_k (empty: E = c0);
 * clamp: E = max(E, 0); scale: None or E's per-element factor.  c0, c_k: a float or a
 * float32 (n,) vector.  The order of operations is ElementwiseKernel._chunk's. */
static PyObject *halo(PyObject *self, PyObject *args) {
    Py_buffer bp, bg, bm, bv;
    float b1, b2, eps;
    PyObject *pairs_o, *rest_o, *c0_o, *terms_o, *scale_o;
    int first_odd, sub, clamp;
    pair_t pairs[MAXP];
    int np_ = 0, nrest = 0, nterms = 0;
    int rest_k[MAXP];
    float rest_c[MAXP];
    term_t terms[MAXP];
    operand c0, scale;
    PyObject *result = NULL;
    c0.held = scale.held = 0;
    c0.vec = scale.vec = NULL;
    for (int j = 0; j < MAXP; j++) terms[j].c.held = 0;

    if (!PyArg_ParseTuple(args, "w*y*w*w*fffO!iO!pOO!pO", &bp, &bg, &bm, &bv, &b1, &b2, &eps,
                          &PyTuple_Type, &pairs_o, &first_odd, &PyTuple_Type, &rest_o, &sub,
                          &c0_o, &PyTuple_Type, &terms_o, &clamp, &scale_o))
        return NULL;
    const Py_ssize_t n = bp.len / (Py_ssize_t)sizeof(float);
    if (check_len(&bp, n, "p") || check_len(&bg, n, "g") || check_len(&bm, n, "m") ||
        check_len(&bv, n, "v"))
        goto done;
    np_ = (int)PyTuple_GET_SIZE(pairs_o);
    nrest = (int)PyTuple_GET_SIZE(rest_o);
    nterms = (int)PyTuple_GET_SIZE(terms_o);
    if (np_ > MAXP || nrest > MAXP || nterms > MAXP) {
        PyErr_Format(PyExc_ValueError, "at most %d mirror pairs, got %d", MAXP, np_);
        goto done;
    }
    for (int j = 0; j < np_; j++) {
        pair_t *pr = &pairs[j];
        float ab;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(pairs_o, j), "ippfiif", &pr->k, &pr->base_is_m,
                              &pr->has_kappa, &pr->kappa, &pr->even, &pr->odd, &ab))
            goto done;
        if (pr->k < 0 || pr->k >= MAXP) {
            PyErr_Format(PyExc_ValueError, "pair index %d out of range", pr->k);
            goto done;
        }
        pr->hi = ab;
        pr->lo = -ab;
    }
    for (int j = 0; j < nrest; j++) {
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(rest_o, j), "if", &rest_k[j], &rest_c[j])) goto done;
        if (rest_k[j] < 0 || rest_k[j] >= MAXP) {
            PyErr_Format(PyExc_ValueError, "pair index %d out of range", rest_k[j]);
            goto done;
        }
    }
    for (int j = 0; j < nterms; j++) {
        PyObject *it = PyTuple_GET_ITEM(terms_o, j), *c;
        if (!PyArg_ParseTuple(it, "iO", &terms[j].k, &c)) goto done;
        if (terms[j].k < 0 || terms[j].k >= MAXP) {
            PyErr_Format(PyExc_ValueError, "pair index %d out of range", terms[j].k);
            goto done;
        }
        if (get_operand(c, n, "c_k", &terms[j].c)) goto done;
    }
    if (first_odd >= MAXP) {
        PyErr_Format(PyExc_ValueError, "pair index %d out of range", first_odd);
        goto done;
    }
    if (get_operand(c0_o, n, "c0", &c0)) goto done;
    if (scale_o != Py_None && get_operand(scale_o, n, "scale", &scale)) goto done;

    one_fn one = NULL;
    /* E's operands: 0 all scalars; 1 scalars and a scale vector; 2 vectors, no scale */
    const int em = scale.vec ? ((c0.vec || (nterms && terms[0].c.vec)) ? -1 : 1)
                             : (c0.vec ? ((nterms == 0 || terms[0].c.vec) ? 2 : -1)
                                       : ((nterms && terms[0].c.vec) ? -1 : 0));
    if (em >= 0 && np_ == 1 && nrest == 0 && nterms <= 1 && first_odd == pairs[0].k &&
        pairs[0].odd >= 1 && pairs[0].odd <= 3 && pairs[0].even >= 0 && pairs[0].even <= 2 &&
        (nterms == 0 || (terms[0].k == pairs[0].k && pairs[0].even >= 1)))
        one = ONE_PAIR[pairs[0].has_kappa ? 1 : 0][pairs[0].base_is_m ? 1 : 0][pairs[0].odd - 1]
                      [nterms][em];
    if (one != NULL) {
        const pair_t pr = pairs[0];
        const one_args oa = {(float *)bp.buf, (float *)bm.buf, (float *)bv.buf,
                             (const float *)bg.buf, b1, b2, eps, pr.kappa,
                             pr.even == 2 ? pr.hi : 0.0f, pr.hi, pr.lo,
                             clamp, sub, &c0, nterms ? &terms[0].c : NULL, &scale};
        Py_BEGIN_ALLOW_THREADS
        one(&oa, n);
        Py_END_ALLOW_THREADS
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    halo_loop(n, (float *)bp.buf, (const float *)bg.buf, (float *)bm.buf, (float *)bv.buf, b1, b2,
              eps, pairs, np_, first_odd, rest_k, rest_c, nrest, terms, nterms, &c0, clamp, &scale,
              sub);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    for (int j = 0; j < nterms && j < MAXP; j++) release(&terms[j].c);
    release(&c0);
    release(&scale);
    PyBuffer_Release(&bp);
    PyBuffer_Release(&bg);
    PyBuffer_Release(&bm);
    PyBuffer_Release(&bv);
    return result;
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
    Py_buffer bp, bg, bm, bv;
    float b1, omb1, b2, omb2, eps_hat, step;
    if (!PyArg_ParseTuple(args, "w*y*w*w*ffffff", &bp, &bg, &bm, &bv, &b1, &omb1, &b2, &omb2,
                          &eps_hat, &step))
        return NULL;
    const Py_ssize_t n = bp.len / (Py_ssize_t)sizeof(float);
    PyObject *result = NULL;
    if (check_len(&bg, n, "g") || check_len(&bm, n, "m") || check_len(&bv, n, "v")) goto done;
    Py_BEGIN_ALLOW_THREADS
    adam_loop(n, (float *)bp.buf, (const float *)bg.buf, (float *)bm.buf, (float *)bv.buf, b1, omb1,
              b2, omb2, eps_hat, step);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&bp);
    PyBuffer_Release(&bg);
    PyBuffer_Release(&bm);
    PyBuffer_Release(&bv);
    return result;
}

static PyMethodDef methods[] = {
    {"halo", halo, METH_VARARGS, "HALO's elementwise update in one pass (see kernels/fused.py)."},
    {"adam", adam, METH_VARARGS, "Adam's update in one pass (see kernels/fused.py)."},
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

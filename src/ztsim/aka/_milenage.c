/* Milenage (TS 35.206) in C on the processor's AES instructions, and the 5G HE vector's
 * derivations on top of it: the optional speed-up of ztsim.aka.milenage and
 * ztsim.aka.vectors, whose Python functions are its reference (the tests hold the two
 * equal and run the TS 35.208 sets and the 5G vectors through both). SHA-256 is
 * FIPS 180-4's, written out here as MD5 is in radius/_fast.c, and run on the SHA
 * extensions where the processor has them (chosen at import; ZTSIM_SOFT_SHA256 set and
 * not empty keeps the portable compression, which the tests check in a process of its
 * own).
 *
 * One call computes OUT1..OUT5 for (K, OPc, RAND, SQN, AMF): the key schedule is made
 * for the call and wiped with the other intermediate values (CK, IK, the HMAC pads)
 * before it returns, so the call leaves no key material behind; its caller's Milenage
 * holds K and OPc as the Python path's holds an OpenSSL encryptor of K.
 * AES-128 only through AES-NI, whose rounds take no data-dependent time; where the
 * processor lacks them `supported()` is false and ztsim keeps the Python path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <emmintrin.h>
#include <immintrin.h>
#include <wmmintrin.h>
#define HAVE_AESNI 1
#endif

#define BLOCK 16
#define OUTPUTS 5 /* OUT1..OUT5, TS 35.206 4.1 */

#ifdef HAVE_AESNI

#define AESNI __attribute__((target("aes,sse2")))

AESNI static __m128i expand(__m128i key, __m128i assist) {
    assist = _mm_shuffle_epi32(assist, 0xff);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, assist);
}

/* FIPS 197 5.2: the round constants 01, 02, 04, ..., 1b, 36. */
#define ROUND_KEY(i, rcon) ks[i] = expand(ks[i - 1], _mm_aeskeygenassist_si128(ks[i - 1], rcon))

AESNI static void schedule(const unsigned char key[BLOCK], __m128i ks[11]) {
    ks[0] = _mm_loadu_si128((const __m128i *)key);
    ROUND_KEY(1, 0x01);
    ROUND_KEY(2, 0x02);
    ROUND_KEY(3, 0x04);
    ROUND_KEY(4, 0x08);
    ROUND_KEY(5, 0x10);
    ROUND_KEY(6, 0x20);
    ROUND_KEY(7, 0x40);
    ROUND_KEY(8, 0x80);
    ROUND_KEY(9, 0x1b);
    ROUND_KEY(10, 0x36);
}

AESNI static void encrypt(const __m128i ks[11], const unsigned char in[BLOCK],
                          unsigned char out[BLOCK]) {
    __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)in), ks[0]);
    for (int i = 1; i < 10; i++) b = _mm_aesenc_si128(b, ks[i]);
    _mm_storeu_si128((__m128i *)out, _mm_aesenclast_si128(b, ks[10]));
}

AESNI static void wipe_schedule(__m128i ks[11]) {
    for (int i = 0; i < 11; i++) ks[i] = _mm_setzero_si128();
    __asm__ __volatile__("" : : "r"(ks) : "memory"); /* the stores are not dead */
}

static int have_aes; /* read once, at import: cpuid traps to the hypervisor in a VM */

static int aes_supported(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx & bit_AES) != 0 && (edx & bit_SSE2) != 0;
}

static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

/* TS 35.206 4.1: OUTk = E_K(rot(TEMP xor OPc, rk) xor ck) xor OPc for k = 2..5, and
 * OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc. The rotations are whole
 * octets (r1..r5 = 64, 0, 32, 64, 96 bits) towards the most significant end; c1..c5
 * are zero but for the last octet's 0, 1, 2, 4, 8. */
static const int ROTATE[OUTPUTS] = {8, 0, 4, 8, 12};
static const unsigned char CONSTANT[OUTPUTS] = {0, 1, 2, 4, 8};

AESNI static void milenage(const unsigned char *k, const unsigned char *opc,
                           const unsigned char *rand, const unsigned char *sqn,
                           const unsigned char *amf, unsigned char out[OUTPUTS * BLOCK]) {
    __m128i ks[11];
    unsigned char block[BLOCK], temp[BLOCK], x[BLOCK], in1[BLOCK];
    schedule(k, ks);
    for (int i = 0; i < BLOCK; i++) block[i] = rand[i] ^ opc[i];
    encrypt(ks, block, temp);
    memcpy(in1, sqn, 6);
    memcpy(in1 + 6, amf, 2);
    memcpy(in1 + 8, in1, 8);
    for (int n = 0; n < OUTPUTS; n++) {
        const int r = ROTATE[n];
        if (n == 0) {
            for (int i = 0; i < BLOCK; i++) x[i] = in1[i] ^ opc[i];
            for (int i = 0; i < BLOCK; i++) block[i] = temp[i] ^ x[(i + r) % BLOCK];
        } else {
            for (int i = 0; i < BLOCK; i++) x[i] = temp[i] ^ opc[i];
            for (int i = 0; i < BLOCK; i++) block[i] = x[(i + r) % BLOCK];
        }
        block[BLOCK - 1] ^= CONSTANT[n];
        unsigned char *o = out + n * BLOCK;
        encrypt(ks, block, o);
        for (int i = 0; i < BLOCK; i++) o[i] ^= opc[i];
    }
    wipe_schedule(ks);
    wipe(block, sizeof block);
    wipe(temp, sizeof temp);
    wipe(x, sizeof x);
    wipe(in1, sizeof in1);
}

/* ---- SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for the 5G HE vector ---------- */

typedef struct {
    uint32_t state[8];
    unsigned char pending[64];
    size_t used;
    uint64_t length;
} Sha256;

static const uint32_t ROUND[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block_soft(uint32_t state[8], const unsigned char *block) {
    uint32_t w[64], a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = state[0], b = state[1], c = state[2], d = state[3];
    e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                      ROUND[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    state[0] += a, state[1] += b, state[2] += c, state[3] += d;
    state[4] += e, state[5] += f, state[6] += g, state[7] += h;
    wipe(w, sizeof w);
}

/* The same compression on the SHA extensions (sha256rnds2: two rounds; sha256msg1/2:
 * the message schedule's sigma terms), where the processor has them. The state lives in
 * two registers as the instructions want it: (A, B, E, F) and (C, D, G, H). */
#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

SHANI static void sha256_block_ni(uint32_t state[8], const unsigned char *block) {
    const __m128i big_endian = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)state);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(state + 4));
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xb1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1b);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xf0);
    const __m128i abef_in = abef, cdgh_in = cdgh;
    __m128i w[4];
    for (int i = 0; i < 16; i++) {
        __m128i words;
        if (i < 4) {
            words = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * i)), big_endian);
        } else {
            /* W[t] = sigma1(W[t-2]) + W[t-7] + sigma0(W[t-15]) + W[t-16], four at a time */
            __m128i partial = _mm_sha256msg1_epu32(w[i % 4], w[(i + 1) % 4]);
            partial = _mm_add_epi32(partial, _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4));
            words = _mm_sha256msg2_epu32(partial, w[(i + 3) % 4]);
        }
        w[i % 4] = words;
        __m128i sum = _mm_add_epi32(words, _mm_loadu_si128((const __m128i *)(ROUND + 4 * i)));
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, sum);
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(sum, 0x0e));
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
    __m128i feba = _mm_shuffle_epi32(abef, 0x1b);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
    _mm_storeu_si128((__m128i *)state, _mm_blend_epi16(feba, dchg, 0xf0));
    _mm_storeu_si128((__m128i *)(state + 4), _mm_alignr_epi8(dchg, feba, 8));
    for (int i = 0; i < 4; i++) w[i] = _mm_setzero_si128();
    __asm__ __volatile__("" : : "r"(w) : "memory");
}

static int sha_supported(void) {
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if (!(ebx & bit_SHA)) return 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx & bit_SSE4_1) && (ecx & bit_SSSE3);
}

/* Chosen at import (`PyInit__milenage`). */
static void (*sha256_block)(uint32_t state[8], const unsigned char *block) = sha256_block_soft;

static void sha256_init(Sha256 *s) {
    static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->state, initial, sizeof initial);
    s->used = 0;
    s->length = 0;
}

static void sha256_update(Sha256 *s, const unsigned char *data, size_t size) {
    s->length += size;
    if (s->used) {
        size_t take = 64 - s->used < size ? 64 - s->used : size;
        memcpy(s->pending + s->used, data, take);
        s->used += take, data += take, size -= take;
        if (s->used < 64) return;
        sha256_block(s->state, s->pending);
        s->used = 0;
    }
    for (; size >= 64; data += 64, size -= 64) sha256_block(s->state, data);
    memcpy(s->pending, data, size);
    s->used = size;
}

static void sha256_final(Sha256 *s, unsigned char out[32]) {
    unsigned char tail[72] = {0x80};
    uint64_t bits = s->length * 8;
    size_t pad = (s->used < 56 ? 56 : 120) - s->used;
    for (int i = 0; i < 8; i++) tail[pad + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(s, tail, pad + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->state[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->state[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->state[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->state[i];
    }
    wipe(s, sizeof *s);
}

typedef struct {
    const unsigned char *data;
    size_t size;
} Piece;

static void hmac_sha256(const unsigned char *key, size_t key_size, const Piece *pieces,
                        int count, unsigned char out[32]) {
    unsigned char block[64] = {0}, inner[32];
    Sha256 s;
    if (key_size > 64) { /* RFC 2104 §2: a longer key is hashed first */
        sha256_init(&s);
        sha256_update(&s, key, key_size);
        sha256_final(&s, block);
    } else {
        memcpy(block, key, key_size);
    }
    for (int i = 0; i < 64; i++) block[i] ^= 0x36;
    sha256_init(&s);
    sha256_update(&s, block, 64);
    for (int i = 0; i < count; i++) sha256_update(&s, pieces[i].data, pieces[i].size);
    sha256_final(&s, inner);
    for (int i = 0; i < 64; i++) block[i] ^= 0x36 ^ 0x5c;
    sha256_init(&s);
    sha256_update(&s, block, 64);
    sha256_update(&s, inner, 32);
    sha256_final(&s, out);
    wipe(block, sizeof block);
    wipe(inner, sizeof inner);
}

/* TS 33.501 A.2 (KAUSF), A.4 (XRES*), A.5 (HXRES*) over TS 33.220 B.2's
 * FC || P0 || L0 || P1 || L1 ...; a Milenage RES is 8 octets. Out: AUTN (16), XRES* (16),
 * KAUSF (32), HXRES* (16). */
#define FC_KAUSF 0x6a
#define FC_XRES_STAR 0x6b
#define HE_SIZE 80

static void fiveg_he(const unsigned char *k, const unsigned char *opc, const unsigned char *rand,
                     const unsigned char *sqn, const unsigned char *amf, const unsigned char *snn,
                     size_t snn_size, unsigned char he[HE_SIZE]) {
    unsigned char out[OUTPUTS * BLOCK], key[32], digest[32], sqn_xor_ak[6];
    const unsigned char fc_xres = FC_XRES_STAR, fc_kausf = FC_KAUSF;
    const unsigned char snn_length[2] = {(unsigned char)(snn_size >> 8), (unsigned char)snn_size};
    static const unsigned char L16[2] = {0, 16}, L8[2] = {0, 8}, L6[2] = {0, 6};
    milenage(k, opc, rand, sqn, amf, out);
    const unsigned char *mac_a = out, *res = out + 24, *ak = out + 16;
    memcpy(key, out + 32, 32); /* CK || IK */
    for (int i = 0; i < 6; i++) sqn_xor_ak[i] = sqn[i] ^ ak[i];
    memcpy(he, sqn_xor_ak, 6);
    memcpy(he + 6, amf, 2);
    memcpy(he + 8, mac_a, 8);
    const Piece xres_input[] = {{&fc_xres, 1}, {snn, snn_size}, {snn_length, 2}, {rand, 16},
                                {L16, 2},      {res, 8},        {L8, 2}};
    hmac_sha256(key, 32, xres_input, 7, digest);
    memcpy(he + 16, digest + 16, 16);
    const Piece kausf_input[] = {
        {&fc_kausf, 1}, {snn, snn_size}, {snn_length, 2}, {sqn_xor_ak, 6}, {L6, 2}};
    hmac_sha256(key, 32, kausf_input, 5, he + 32);
    Sha256 s;
    sha256_init(&s);
    sha256_update(&s, rand, 16);
    sha256_update(&s, he + 16, 16);
    sha256_final(&s, digest);
    memcpy(he + 64, digest + 16, 16);
    wipe(out, sizeof out);
    wipe(key, sizeof key);
    wipe(digest, sizeof digest);
}

#endif /* HAVE_AESNI */

static int fixed(Py_buffer *b, Py_ssize_t size, const char *name) {
    if (b->len != size) {
        /* The length only: never the value. */
        PyErr_Format(PyExc_ValueError, "%s must be %zd octets", name, size);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(outputs_doc,
             "outputs(k, opc, rand, sqn, amf) -> bytes\n\n"
             "OUT1..OUT5 of TS 35.206 4.1, 16 octets each, in order. Only where "
             "supported() is true.");

#ifdef HAVE_AESNI
/* K, OPc, RAND, SQN, AMF: whether they can go to `milenage` (else an exception is set). */
static int milenage_inputs(Py_buffer in[5]) {
    if (!have_aes) {
        PyErr_SetString(PyExc_RuntimeError, "this processor has no AES instructions");
        return 0;
    }
    return fixed(&in[0], BLOCK, "K") && fixed(&in[1], BLOCK, "OPc") &&
           fixed(&in[2], BLOCK, "RAND") && fixed(&in[3], 6, "SQN") && fixed(&in[4], 2, "AMF");
}

static void release(Py_buffer *buffers, int count) {
    for (int i = 0; i < count; i++) PyBuffer_Release(&buffers[i]);
}
#endif

static PyObject *outputs(PyObject *self, PyObject *args) {
#ifdef HAVE_AESNI
    Py_buffer in[5];
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*", &in[0], &in[1], &in[2], &in[3], &in[4]))
        return NULL;
    if (milenage_inputs(in) && (result = PyBytes_FromStringAndSize(NULL, OUTPUTS * BLOCK)))
        milenage(in[0].buf, in[1].buf, in[2].buf, in[3].buf, in[4].buf,
                 (unsigned char *)PyBytes_AS_STRING(result));
    release(in, 5);
    return result;
#else
    PyErr_SetString(PyExc_RuntimeError, "built without AES instructions");
    return NULL;
#endif
}

PyDoc_STRVAR(fiveg_he_doc,
             "fiveg_he(k, opc, rand, sqn, amf, snn) -> bytes\n\n"
             "The 5G HE vector's AUTN, XRES*, KAUSF and HXRES* (TS 33.501 6.1.3.2), 80 "
             "octets in that order; `snn` is the serving network name's encoding. Only "
             "where supported() is true.");

static PyObject *fiveg_he_vector(PyObject *self, PyObject *args) {
#ifdef HAVE_AESNI
    Py_buffer in[6]; /* the five of `outputs`, then the serving network name */
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*", &in[0], &in[1], &in[2], &in[3], &in[4], &in[5]))
        return NULL;
    if (!milenage_inputs(in)) {
        /* the exception is set */
    } else if (in[5].len < 1 || in[5].len > 0xffff) {
        PyErr_SetString(PyExc_ValueError, "the serving network name must be 1 to 65535 octets");
    } else if ((result = PyBytes_FromStringAndSize(NULL, HE_SIZE))) {
        fiveg_he(in[0].buf, in[1].buf, in[2].buf, in[3].buf, in[4].buf, in[5].buf,
                 (size_t)in[5].len, (unsigned char *)PyBytes_AS_STRING(result));
    }
    release(in, 6);
    return result;
#else
    PyErr_SetString(PyExc_RuntimeError, "built without AES instructions");
    return NULL;
#endif
}

static PyObject *hmac_sha256_py(PyObject *self, PyObject *args) {
#ifdef HAVE_AESNI
    Py_buffer key, message;
    unsigned char out[32];
    if (!PyArg_ParseTuple(args, "y*y*", &key, &message)) return NULL;
    Piece piece = {message.buf, (size_t)message.len};
    hmac_sha256(key.buf, (size_t)key.len, &piece, 1, out);
    PyBuffer_Release(&key);
    PyBuffer_Release(&message);
    return PyBytes_FromStringAndSize((const char *)out, 32);
#else
    PyErr_SetString(PyExc_RuntimeError, "built without AES instructions");
    return NULL;
#endif
}

static PyObject *supported(PyObject *self, PyObject *unused) {
#ifdef HAVE_AESNI
    return PyBool_FromLong(have_aes);
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"outputs", outputs, METH_VARARGS, outputs_doc},
    {"fiveg_he", fiveg_he_vector, METH_VARARGS, fiveg_he_doc},
    {"hmac_sha256", hmac_sha256_py, METH_VARARGS, "HMAC-SHA-256(key, message): for the tests."},
    {"supported", supported, METH_NOARGS, "Whether this processor has the AES instructions."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ztsim.aka._milenage",
    .m_doc = "Milenage and the 5G HE vector on AES-NI (see milenage.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__milenage(void) {
#ifdef HAVE_AESNI
    have_aes = aes_supported();
    const char *soft = getenv("ZTSIM_SOFT_SHA256"); /* set and not empty: the reference */
    if (!(soft && *soft) && sha_supported()) sha256_block = sha256_block_ni;
#endif
    return PyModule_Create(&module);
}

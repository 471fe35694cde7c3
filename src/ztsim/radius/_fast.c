/*
 * The RADIUS hot path in C: reading an Access-Request, checking its
 * Message-Authenticator, signing the reply; reading an Accounting-Request's values.
 * ztsim/radius/fastpath.py holds the same rules in Python; it is the reference, used
 * where this module is not built, and Hypothesis tests hold the two equal
 * (tests/radius/test_radius_fast.py).
 *
 * MD5 as RFC 1321 specifies it; HMAC as RFC 2104; the RADIUS rules as RFC 2865 §3
 * (Response Authenticator) and RFC 3579 §3.2 (Message-Authenticator). Everything
 * here works on octets the caller owns; nothing is kept between calls but what
 * init() and init_accounting() were handed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- MD5 (RFC 1321) ------------------------------------------------------------ */

/* RFC 1321 §3.4: T[i] = floor(2^32 * abs(sin(i + 1))). */
static const uint32_t T[64] = {
    0xd76aa478U, 0xe8c7b756U, 0x242070dbU, 0xc1bdceeeU, 0xf57c0fafU, 0x4787c62aU,
    0xa8304613U, 0xfd469501U, 0x698098d8U, 0x8b44f7afU, 0xffff5bb1U, 0x895cd7beU,
    0x6b901122U, 0xfd987193U, 0xa679438eU, 0x49b40821U, 0xf61e2562U, 0xc040b340U,
    0x265e5a51U, 0xe9b6c7aaU, 0xd62f105dU, 0x02441453U, 0xd8a1e681U, 0xe7d3fbc8U,
    0x21e1cde6U, 0xc33707d6U, 0xf4d50d87U, 0x455a14edU, 0xa9e3e905U, 0xfcefa3f8U,
    0x676f02d9U, 0x8d2a4c8aU, 0xfffa3942U, 0x8771f681U, 0x6d9d6122U, 0xfde5380cU,
    0xa4beea44U, 0x4bdecfa9U, 0xf6bb4b60U, 0xbebfbc70U, 0x289b7ec6U, 0xeaa127faU,
    0xd4ef3085U, 0x04881d05U, 0xd9d4d039U, 0xe6db99e5U, 0x1fa27cf8U, 0xc4ac5665U,
    0xf4292244U, 0x432aff97U, 0xab9423a7U, 0xfc93a039U, 0x655b59c3U, 0x8f0ccc92U,
    0xffeff47dU, 0x85845dd1U, 0x6fa87e4fU, 0xfe2ce6e0U, 0xa3014314U, 0x4e0811a1U,
    0xf7537e82U, 0xbd3af235U, 0x2ad7d2bbU, 0xeb86d391U,
};

/* RFC 1321 §3.4: the rotation of each step, four per round. */
static const unsigned char SHIFT[16] = {7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21};

typedef struct {
    uint32_t state[4];
    uint64_t length; /* octets hashed so far */
    unsigned char pending[64];
    size_t used;
} Md5;

static void md5_block(uint32_t state[4], const unsigned char *block) {
    uint32_t x[16];
    for (int i = 0; i < 16; i++) {
        const unsigned char *p = block + 4 * i;
        x[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int k;
        switch (i >> 4) {
        case 0: f = (b & c) | (~b & d); k = i; break;
        case 1: f = (b & d) | (c & ~d); k = (5 * i + 1) & 15; break;
        case 2: f = b ^ c ^ d; k = (3 * i + 5) & 15; break;
        default: f = c ^ (b | ~d); k = (7 * i) & 15; break;
        }
        uint32_t sum = a + f + T[i] + x[k];
        unsigned s = SHIFT[(i >> 4) * 4 + (i & 3)];
        a = d;
        d = c;
        c = b;
        b = b + ((sum << s) | (sum >> (32 - s)));
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

static void md5_init(Md5 *m) {
    /* RFC 1321 §3.3 */
    m->state[0] = 0x67452301U;
    m->state[1] = 0xefcdab89U;
    m->state[2] = 0x98badcfeU;
    m->state[3] = 0x10325476U;
    m->length = 0;
    m->used = 0;
}

static void md5_update(Md5 *m, const unsigned char *data, size_t size) {
    m->length += size;
    if (m->used) {
        size_t room = 64 - m->used;
        size_t take = size < room ? size : room;
        memcpy(m->pending + m->used, data, take);
        m->used += take;
        data += take;
        size -= take;
        if (m->used < 64) return;
        md5_block(m->state, m->pending);
        m->used = 0;
    }
    while (size >= 64) {
        md5_block(m->state, data);
        data += 64;
        size -= 64;
    }
    memcpy(m->pending, data, size);
    m->used = size;
}

static void md5_final(Md5 *m, unsigned char out[16]) {
    /* RFC 1321 §3.1-3.2: a 1 bit, zeros to 56 mod 64, the bit length little-endian. */
    uint64_t bits = m->length * 8;
    unsigned char tail[72] = {0x80};
    size_t pad = (m->used < 56 ? 56 : 120) - m->used;
    for (int i = 0; i < 8; i++) tail[pad + i] = (unsigned char)(bits >> (8 * i));
    md5_update(m, tail, pad + 8);
    for (int i = 0; i < 4; i++) {
        out[4 * i] = (unsigned char)m->state[i];
        out[4 * i + 1] = (unsigned char)(m->state[i] >> 8);
        out[4 * i + 2] = (unsigned char)(m->state[i] >> 16);
        out[4 * i + 3] = (unsigned char)(m->state[i] >> 24);
    }
}

/* ---- HMAC-MD5 (RFC 2104) over a message given in pieces ---------------------------- */

typedef struct {
    const unsigned char *data;
    size_t size;
} Piece;

static void hmac_md5(const unsigned char *key, size_t key_size, const Piece *pieces, int count,
                     unsigned char out[16]) {
    unsigned char block[64] = {0};
    if (key_size > 64) {
        Md5 k;
        md5_init(&k);
        md5_update(&k, key, key_size);
        md5_final(&k, block);
    } else {
        memcpy(block, key, key_size);
    }
    unsigned char pad[64];
    Md5 inner, outer;
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    md5_init(&inner);
    md5_update(&inner, pad, 64);
    for (int i = 0; i < count; i++) md5_update(&inner, pieces[i].data, pieces[i].size);
    unsigned char inner_digest[16];
    md5_final(&inner, inner_digest);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    md5_init(&outer);
    md5_update(&outer, pad, 64);
    md5_update(&outer, inner_digest, 16);
    md5_final(&outer, out);
}

/* ---- RADIUS ------------------------------------------------------------------------ */

#define HEADER 20             /* RFC 2865 §3 */
#define MAX_PACKET 4096       /* RFC 2865 §3 */
#define MA_TYPE 80            /* RFC 3579 §3.2 */
#define MA_LENGTH 18          /* Type, Length and a 16-octet HMAC-MD5 */
#define USER_NAME 1           /* RFC 2865 §5.1 */
#define CALLED_STATION_ID 30  /* RFC 2865 §5.30 */
#define PROXY_STATE 33        /* RFC 2865 §5.33 */
#define VENDOR_SPECIFIC 26    /* RFC 2865 §5.26 */
#define VENDOR_3GPP 10415     /* TS 29.061 §16.4.7 */
#define IMSI_3GPP 1
#define IMEISV_3GPP 20

static PyObject *decode_error;  /* RadiusDecodeError */
static PyObject *raw_request;   /* fastpath.RawRequest */
static PyObject *raw_access;    /* fastpath.RawAccess */

/* The text of an attribute's value; None where it is not UTF-8 (as the reference). */
static PyObject *text_or_none(const unsigned char *p, Py_ssize_t size) {
    PyObject *text = PyUnicode_DecodeUTF8((const char *)p, size, "strict");
    if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return text;
}

/* A tuple subclass (the NamedTuples of fastpath) built from a plain tuple, in C. */
static PyObject *named(PyObject *cls, PyObject *values) {
    if (values == NULL) return NULL;
    PyObject *args = PyTuple_Pack(1, values);
    Py_DECREF(values);
    if (args == NULL) return NULL;
    PyObject *made = PyTuple_Type.tp_new((PyTypeObject *)cls, args, NULL);
    Py_DECREF(args);
    return made;
}

/* RFC 2865 §3: the datagram's Length field, checked against the datagram; -1 (the error
   set) where it does not fit. */
static Py_ssize_t packet_length(const unsigned char *d, Py_ssize_t size) {
    if (size < HEADER) {
        PyErr_Format(decode_error, "datagram is %zd octets, shorter than the RADIUS header", size);
        return -1;
    }
    Py_ssize_t length = (Py_ssize_t)d[2] << 8 | d[3];
    if (length < HEADER || length > MAX_PACKET || length > size) {
        PyErr_Format(decode_error, "Length field %zd does not fit the %zd-octet datagram", length,
                     size);
        return -1;
    }
    return length;
}

/* RFC 2865 §5: where the attribute at `offset` ends, within `length`; -1 (the error set)
   where it does not fit. */
static Py_ssize_t attribute_end(const unsigned char *d, Py_ssize_t offset, Py_ssize_t length) {
    if (length - offset < 2) {
        PyErr_Format(decode_error, "attribute at offset %zd is cut off after its type", offset);
        return -1;
    }
    Py_ssize_t end = offset + d[offset + 1];
    if (end < offset + 2 || end > length) {
        PyErr_Format(decode_error, "attribute %d at offset %zd has a bad length", d[offset],
                     offset);
        return -1;
    }
    return end;
}

static PyObject *scan(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (raw_request == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ztsim.radius._fast.init() was not called");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *d = view.buf;
    Py_ssize_t size = view.len;
    PyObject *found[4] = {NULL, NULL, NULL, NULL}; /* user, imsi, imeisv, apn */
    PyObject *proxy = NULL, *result = NULL;
    Py_ssize_t length = packet_length(d, size);
    if (length < 0) goto done;
    proxy = PyList_New(0);
    if (proxy == NULL) goto done;
    long ma_offset = -1;
    Py_ssize_t offset = HEADER;
    while (offset < length) {
        Py_ssize_t end = attribute_end(d, offset, length);
        if (end < 0) goto done;
        int kind = d[offset];
        int slot = -1;
        const unsigned char *value = d + offset + 2;
        Py_ssize_t value_size = end - offset - 2;
        if (kind == VENDOR_SPECIFIC) {
            if (end >= offset + 6 && value[0] == 0 && value[1] == 0 &&
                ((value[2] << 8) | value[3]) == VENDOR_3GPP) {
                /* TS 29.061 §16.4.7: 3GPP sub-attributes are Type (1), Length (1), Value. */
                Py_ssize_t sub = offset + 6;
                while (sub + 2 <= end) {
                    int sub_type = d[sub];
                    Py_ssize_t sub_end = sub + d[sub + 1];
                    if (sub_end < sub + 2 || sub_end > end) break;
                    int into = sub_type == IMSI_3GPP ? 1 : sub_type == IMEISV_3GPP ? 2 : -1;
                    if (into >= 0 && found[into] == NULL) {
                        found[into] = text_or_none(d + sub + 2, sub_end - sub - 2);
                        if (found[into] == NULL) goto done;
                    }
                    sub = sub_end;
                }
            }
        } else if (kind == USER_NAME) {
            slot = 0;
        } else if (kind == CALLED_STATION_ID) {
            slot = 3;
        } else if (kind == MA_TYPE) {
            ma_offset = (ma_offset == -1 && end - offset == MA_LENGTH) ? (long)offset : -2;
        } else if (kind == PROXY_STATE) {
            PyObject *state = PyBytes_FromStringAndSize((const char *)d + offset, end - offset);
            if (state == NULL || PyList_Append(proxy, state) < 0) {
                Py_XDECREF(state);
                goto done;
            }
            Py_DECREF(state);
        }
        if (slot >= 0 && found[slot] == NULL) {
            found[slot] = text_or_none(value, value_size);
            if (found[slot] == NULL) goto done;
        }
        offset = end;
    }
    for (int i = 0; i < 4; i++) {
        if (found[i] == NULL) {
            Py_INCREF(Py_None);
            found[i] = Py_None;
        }
    }
    PyObject *states = PyList_AsTuple(proxy);
    if (states == NULL) goto done;
    PyObject *access =
        named(raw_access, Py_BuildValue("(OOOON)", found[0], found[1], found[2], found[3], states));
    if (access == NULL) goto done;
    result = named(raw_request, Py_BuildValue("(iiy#nlN)", d[0], d[1], (const char *)d + 4,
                                              (Py_ssize_t)16, length, ma_offset, access));
done:
    for (int i = 0; i < 4; i++) Py_XDECREF(found[i]);
    Py_XDECREF(proxy);
    PyBuffer_Release(&view);
    return result;
}

/* ---- Accounting-Request: the typed values by name (fastpath.scan_accounting_py) ---- */

#define ACCOUNTING_REQUEST 4 /* RFC 2866 §4.1 */

static PyObject *raw_accounting; /* fastpath.RawAccounting */
/* Per type number, None or (name, how, enum members by value or None, DataType, enum or
   None): the standard attributes, and {Vendor-Id: the same} for the TLV vendors. */
static PyObject *acct_standard;
static PyObject *acct_vendors;
static PyObject *decode_value_fn; /* datatypes.decode_value, for the rarer data types */

/* How a value is decoded here (fastpath's _HOW); anything else goes to decode_value. */
enum { AS_OTHER = 0, AS_TEXT = 1, AS_DIGITS = 2, AS_OCTETS = 3, AS_INTEGER = 4, AS_BYTE = 5 };

/* An INTEGER or BYTE: the enum's member where it has one, else the number. */
static PyObject *enum_or_int(PyObject *entry, unsigned long number) {
    PyObject *value = PyLong_FromUnsignedLong(number);
    PyObject *members = PyTuple_GET_ITEM(entry, 2);
    if (value == NULL || members == Py_None) return value;
    PyObject *member = PyDict_GetItemWithError(members, value); /* borrowed */
    if (member != NULL) {
        Py_INCREF(member);
        Py_DECREF(value);
        return member;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(value);
        return NULL;
    }
    /* Not a listed member: the enum may still take it (_missing_), as the reference asks. */
    PyObject *made = PyObject_CallOneArg(PyTuple_GET_ITEM(entry, 4), value);
    if (made != NULL || !PyErr_ExceptionMatches(PyExc_ValueError)) {
        Py_DECREF(value);
        return made;
    }
    PyErr_Clear();
    return value;
}

/* datatypes.decode_value for one attribute, with its errors' messages. */
static PyObject *acct_value(PyObject *entry, const unsigned char *p, Py_ssize_t size) {
    PyObject *name = PyTuple_GET_ITEM(entry, 0);
    long how = PyLong_AsLong(PyTuple_GET_ITEM(entry, 1));
    if (how == AS_OCTETS) return PyBytes_FromStringAndSize((const char *)p, size);
    if (how == AS_TEXT || how == AS_DIGITS) {
        PyObject *text = PyUnicode_DecodeUTF8((const char *)p, size, "strict");
        if (text == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                PyErr_Format(decode_error, "%U is not valid UTF-8", name);
            }
            return NULL;
        }
        int digits = size > 0;
        for (Py_ssize_t i = 0; how == AS_DIGITS && digits && i < size; i++)
            digits = p[i] >= '0' && p[i] <= '9';
        if (how == AS_DIGITS && !digits) {
            Py_DECREF(text);
            PyErr_Format(decode_error, "%U must be decimal digits", name);
            return NULL;
        }
        return text;
    }
    if (how == AS_INTEGER || how == AS_BYTE) {
        Py_ssize_t want = how == AS_INTEGER ? 4 : 1;
        if (size != want) {
            PyErr_Format(decode_error, "%U is %zd octets, not %zd", name, size, want);
            return NULL;
        }
        unsigned long number = p[0];
        for (Py_ssize_t i = 1; i < size; i++) number = number << 8 | p[i];
        return enum_or_int(entry, number);
    }
    PyObject *raw = PyBytes_FromStringAndSize((const char *)p, size);
    if (raw == NULL) return NULL;
    PyObject *value = PyObject_CallFunctionObjArgs(
        decode_value_fn, name, PyTuple_GET_ITEM(entry, 3), raw, PyTuple_GET_ITEM(entry, 4), NULL);
    Py_DECREF(raw);
    return value;
}

/* Decodes a known attribute into `values`, keeping the first of each name. */
static int acct_attribute(PyObject *values, PyObject *table, int type, const unsigned char *p,
                          Py_ssize_t size) {
    PyObject *entry = PyTuple_GET_ITEM(table, type);
    if (entry == Py_None) return 0;
    PyObject *value = acct_value(entry, p, size);
    if (value == NULL) return -1;
    PyObject *kept = PyDict_SetDefault(values, PyTuple_GET_ITEM(entry, 0), value);
    Py_DECREF(value);
    return kept == NULL ? -1 : 0;
}

static PyObject *scan_acct(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (raw_accounting == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "ztsim.radius._fast.init_accounting() was not called");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *d = view.buf;
    Py_ssize_t size = view.len;
    PyObject *values = NULL, *result = NULL;
    unsigned char states[MAX_PACKET]; /* the Proxy-States, whole, in order */
    Py_ssize_t states_used = 0;
    Py_ssize_t length = packet_length(d, size);
    if (length < 0) goto done;
    if (d[0] != ACCOUNTING_REQUEST) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    values = PyDict_New();
    if (values == NULL) goto done;
    Py_ssize_t offset = HEADER;
    while (offset < length) {
        Py_ssize_t end = attribute_end(d, offset, length);
        if (end < 0) goto done;
        int kind = d[offset];
        if (kind == VENDOR_SPECIFIC) {
            /* RFC 2865 §5.26: Vendor-Id (4 octets), then for the TLV vendors Type, Length,
               Value. */
            Py_ssize_t start = offset + 2;
            if (end - start < 5) {
                PyErr_Format(decode_error, "Vendor-Specific value is %zd octets, shorter than 5",
                             end - start);
                goto done;
            }
            unsigned long vendor = (unsigned long)d[start] << 24 | (unsigned long)d[start + 1] << 16 |
                                   (unsigned long)d[start + 2] << 8 | d[start + 3];
            PyObject *key = PyLong_FromUnsignedLong(vendor);
            if (key == NULL) goto done;
            PyObject *table = PyDict_GetItemWithError(acct_vendors, key); /* borrowed */
            Py_DECREF(key);
            if (table == NULL && PyErr_Occurred()) goto done;
            for (Py_ssize_t sub = start + 4; table != NULL && sub < end;) {
                if (end - sub < 2) {
                    PyErr_Format(decode_error, "vendor %lu sub-attribute is cut off after its type",
                                 vendor);
                    goto done;
                }
                int sub_type = d[sub];
                Py_ssize_t sub_end = sub + d[sub + 1];
                if (sub_end < sub + 2 || sub_end > end) {
                    PyErr_Format(decode_error, "vendor %lu sub-attribute %d has a bad length",
                                 vendor, sub_type);
                    goto done;
                }
                if (acct_attribute(values, table, sub_type, d + sub + 2, sub_end - sub - 2) < 0)
                    goto done;
                sub = sub_end;
            }
        } else if (kind == MA_TYPE) {
            /* Its HMAC is the general path's to check. */
            result = Py_NewRef(Py_None);
            goto done;
        } else {
            if (kind == PROXY_STATE) {
                memcpy(states + states_used, d + offset, (size_t)(end - offset));
                states_used += end - offset;
            }
            if (acct_attribute(values, acct_standard, kind, d + offset + 2, end - offset - 2) < 0)
                goto done;
        }
        offset = end;
    }
    result = named(raw_accounting, Py_BuildValue("(iy#nOy#)", d[1], (const char *)d + 4,
                                                 (Py_ssize_t)16, length, values,
                                                 (const char *)states, states_used));
done:
    Py_XDECREF(values);
    PyBuffer_Release(&view);
    return result;
}

/* A 256-tuple of None or (str name, int how, dict or None, data type, enum or None): the
   entries are read without checks when scanning. */
static int is_table(PyObject *table) {
    if (!PyTuple_Check(table) || PyTuple_GET_SIZE(table) != 256) return 0;
    for (int i = 0; i < 256; i++) {
        PyObject *e = PyTuple_GET_ITEM(table, i);
        if (e == Py_None) continue;
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 5 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(e, 0)) || !PyLong_Check(PyTuple_GET_ITEM(e, 1)) ||
            !(PyTuple_GET_ITEM(e, 2) == Py_None || PyDict_Check(PyTuple_GET_ITEM(e, 2))))
            return 0;
    }
    return 1;
}

static PyObject *init_accounting(PyObject *self, PyObject *args) {
    PyObject *accounting, *standard, *vendors, *decode;
    if (!PyArg_ParseTuple(args, "OOO!O", &accounting, &standard, &PyDict_Type, &vendors, &decode))
        return NULL;
    int tables_ok = is_table(standard);
    Py_ssize_t at = 0;
    PyObject *key, *table;
    while (tables_ok && PyDict_Next(vendors, &at, &key, &table)) tables_ok = is_table(table);
    if (!PyType_Check(accounting) ||
        !PyType_IsSubtype((PyTypeObject *)accounting, &PyTuple_Type) || !tables_ok ||
        !PyCallable_Check(decode)) {
        PyErr_SetString(PyExc_TypeError,
                        "init_accounting(RawAccounting, 256-tuple, {vendor: 256-tuple}, decode)");
        return NULL;
    }
    Py_XSETREF(raw_accounting, Py_NewRef(accounting));
    Py_XSETREF(acct_standard, Py_NewRef(standard));
    /* A copy: the tables are read without checks, so nobody may change the mapping. */
    PyObject *vendors_copy = PyDict_Copy(vendors);
    if (vendors_copy == NULL) return NULL;
    Py_XSETREF(acct_vendors, vendors_copy);
    Py_XSETREF(decode_value_fn, Py_NewRef(decode));
    Py_RETURN_NONE;
}

static PyObject *ma_ok(PyObject *self, PyObject *args) {
    Py_buffer datagram, secret;
    Py_ssize_t offset, length;
    if (!PyArg_ParseTuple(args, "y*nny*", &datagram, &offset, &length, &secret)) return NULL;
    PyObject *result = NULL;
    /* Each bound is compared without adding to a caller's number: offset + MA_LENGTH
       overflows for an offset near PY_SSIZE_T_MAX and would pass the check. */
    if (length > datagram.len || length < HEADER + MA_LENGTH || offset < HEADER ||
        offset > length - MA_LENGTH) {
        PyErr_SetString(PyExc_ValueError, "Message-Authenticator offset out of the packet");
    } else {
        static const unsigned char zeros[16] = {0};
        const unsigned char *d = datagram.buf;
        Piece pieces[3] = {
            {d, (size_t)offset + 2},
            {zeros, 16},
            {d + offset + MA_LENGTH, (size_t)(length - offset - MA_LENGTH)},
        };
        unsigned char expected[16];
        hmac_md5(secret.buf, (size_t)secret.len, pieces, 3, expected);
        unsigned char diff = 0; /* constant time, as hmac.compare_digest */
        for (int i = 0; i < 16; i++) diff |= expected[i] ^ d[offset + 2 + i];
        result = PyBool_FromLong(diff == 0);
    }
    PyBuffer_Release(&datagram);
    PyBuffer_Release(&secret);
    return result;
}

static PyObject *sign(PyObject *self, PyObject *args) {
    int code, identifier;
    Py_buffer authenticator, tail, secret;
    if (!PyArg_ParseTuple(args, "iiy*y*y*", &code, &identifier, &authenticator, &tail, &secret))
        return NULL;
    PyObject *reply = NULL;
    if (authenticator.len != 16 || code < 0 || code > 255 || identifier < 0 || identifier > 255) {
        PyErr_SetString(PyExc_ValueError, "reply fields out of range");
        goto done;
    }
    /* RFC 2865 §3: at most 4096 octets; refused whole, never truncated. Compared before
       adding, so a huge attribute buffer cannot wrap the sum. */
    if (tail.len > MAX_PACKET - HEADER - MA_LENGTH) {
        PyErr_Format(PyExc_ValueError, "%zd octets of attributes make a reply over %d octets",
                     tail.len, MAX_PACKET);
        goto done;
    }
    Py_ssize_t length = HEADER + MA_LENGTH + tail.len;
    reply = PyBytes_FromStringAndSize(NULL, length);
    if (reply == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(reply);
    out[0] = (unsigned char)code;
    out[1] = (unsigned char)identifier;
    out[2] = (unsigned char)(length >> 8);
    out[3] = (unsigned char)length;
    /* RFC 3579 §3.2: the HMAC covers the Request Authenticator in the header's place and
       the attribute with its value zeroed. */
    memcpy(out + 4, authenticator.buf, 16);
    out[HEADER] = MA_TYPE;
    out[HEADER + 1] = MA_LENGTH;
    memset(out + HEADER + 2, 0, 16);
    memcpy(out + HEADER + MA_LENGTH, tail.buf, (size_t)tail.len);
    Piece whole = {out, (size_t)length};
    hmac_md5(secret.buf, (size_t)secret.len, &whole, 1, out + HEADER + 2);
    /* RFC 2865 §3: MD5(Code + Identifier + Length + Request Authenticator + Attributes +
       Secret), then written over the Request Authenticator. */
    Md5 m;
    md5_init(&m);
    md5_update(&m, out, (size_t)length);
    md5_update(&m, secret.buf, (size_t)secret.len);
    md5_final(&m, out + 4);
done:
    PyBuffer_Release(&authenticator);
    PyBuffer_Release(&tail);
    PyBuffer_Release(&secret);
    return reply;
}

static PyObject *md5(PyObject *self, PyObject *arg) {
    Py_buffer data;
    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0) return NULL;
    unsigned char out[16];
    Md5 m;
    md5_init(&m);
    md5_update(&m, data.buf, (size_t)data.len);
    md5_final(&m, out);
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

static PyObject *hmac(PyObject *self, PyObject *args) {
    Py_buffer key, data;
    if (!PyArg_ParseTuple(args, "y*y*", &key, &data)) return NULL;
    unsigned char out[16];
    Piece piece = {data.buf, (size_t)data.len};
    hmac_md5(key.buf, (size_t)key.len, &piece, 1, out);
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

static PyObject *init(PyObject *self, PyObject *args) {
    PyObject *error, *request, *access;
    if (!PyArg_ParseTuple(args, "OOO", &error, &request, &access)) return NULL;
    if (!PyType_Check(request) || !PyType_IsSubtype((PyTypeObject *)request, &PyTuple_Type) ||
        !PyType_Check(access) || !PyType_IsSubtype((PyTypeObject *)access, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "RawRequest and RawAccess must be tuple types");
        return NULL;
    }
    Py_INCREF(error);
    Py_INCREF(request);
    Py_INCREF(access);
    Py_XSETREF(decode_error, error);
    Py_XSETREF(raw_request, request);
    Py_XSETREF(raw_access, access);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"init", init, METH_VARARGS, "init(error, RawRequest, RawAccess): the types scan() makes."},
    {"scan", scan, METH_O, "scan(datagram) -> RawRequest, as fastpath.scan_request."},
    {"init_accounting", init_accounting, METH_VARARGS,
     "init_accounting(RawAccounting, standard, vendors, decode_value): what scan_accounting "
     "makes and decodes with."},
    {"scan_accounting", scan_acct, METH_O,
     "scan_accounting(datagram) -> RawAccounting or None, as fastpath.scan_accounting_py."},
    {"ma_ok", ma_ok, METH_VARARGS,
     "ma_ok(datagram, offset, length, secret) -> bool: RFC 3579 §3.2 check."},
    {"sign", sign, METH_VARARGS,
     "sign(code, identifier, request_authenticator, attributes, secret) -> reply octets."},
    {"md5", md5, METH_O, "md5(data) -> 16-octet digest (RFC 1321)."},
    {"hmac_md5", hmac, METH_VARARGS, "hmac_md5(key, data) -> 16-octet HMAC (RFC 2104)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ztsim.radius._fast",
    "The Access-Request hot path in C; see ztsim.radius.fastpath.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fast(void) { return PyModule_Create(&module); }

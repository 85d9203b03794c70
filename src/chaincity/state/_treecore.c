/*
 * chaincity.state._treecore: the state tree update of one version, in C.
 *
 * The same work as writer.py's TreeWriter (which stays the reference): apply a
 * sorted batch of (key hash, value hash or None) to the pages of the tree, and
 * return the new root, the new pages (encoded, in the order the Python writer
 * records them: children before their parent, the root last) and the node keys
 * of the pages they replace. Page format and hashing rules are those of page.py
 * and tree.py; the results are byte for byte equal. An update may also refresh
 * an old version: copy forward the pages of it that the new tree reaches, found
 * by walking the given paths along with the changes (see writer.py).
 *
 * A slot is empty, a leaf (one key), a child page, or a bucket: 2..BUCKET_MAX keys
 * kept inline in the parent page with their subtree's hash (no page of their own;
 * hashes are those of the same binary tree). A slot whose keys would be more makes
 * a page; a page left with no child and BUCKET_MAX keys or fewer collapses back
 * into an empty slot, a leaf or a bucket (the root page never collapses).
 *
 * Hashing goes through the suite: the suite alone decides the hash (SHA-256 or
 * SM3), and no hash is implemented here. Where the caller names the suite's hash
 * as OpenSSL knows it (digest_name, checked against the suite by the caller), and
 * this module was built against OpenSSL (CHAINCITY_OPENSSL), hashes are computed
 * by OpenSSL's EVP interface with one context per call. Else, where the suite
 * offers a constructor implemented in C (hashlib.sha256), hashes are
 * ctor(data).digest() through the C API, with no Python frame in between;
 * otherwise the suite's callable.
 *
 * Beside it, the loops of preparing and writing a version that cost most in Python,
 * each with its Python steps as the reference: collect (store.py's _collect),
 * fresh_entries and merge_newest (values.py's merge), count_prefixes and
 * sorted_suffixes (generations.py's counts and refresh paths).
 *
 * Rules of this file:
 * - every byte that comes from outside (a fetched page, a change, a hash) is
 *   length-checked before it is read; a malformed page raises StateCorruption;
 * - an exception from fetch or hash_fn propagates unchanged;
 * - recursion is bounded by the page depth (64 pages for 256-bit hashes), and a
 *   bucket's hash by its number of keys;
 * - nothing is global but the module definition: a call owns all its memory;
 * - what a call points into is held in private tuples of its arguments, so code the
 *   call runs (a lookup, a hash) cannot free it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef CHAINCITY_OPENSSL
#include <openssl/err.h>
#include <openssl/evp.h>
#endif

#define SLOTS 16
#define FIRST_SLOT 16
#define HASH_MAX 64
#define DEPTH_MAX 64 /* pages: a 256-bit key hash has 64 nibbles */
#define BUCKET_MAX 4 /* keys in a bucket: 2..BUCKET_MAX */
/* A slot's bytes, as encoded: a leaf is key hash || value hash, a child be64(version)
 * || hash, a bucket u8 n || hash || n x (key hash || value hash). */
#define SLOT_MAX (1 + HASH_MAX + 2 * BUCKET_MAX * HASH_MAX)
#define SMALL_LEAVES 16 /* a gather's changes plus a bucket's keys, without the heap */
#define REFRESH_VERSIONS_MAX 16
/* apply_page's result: the slots whose hash changed (low 16 bits), and the slots that
 * now name a copy of the same page (high 16 bits: rewritten, nothing to rehash). */
#define HASHED(mask) ((unsigned)(mask)&0xFFFFu)

/* The slots under each position of a page (heap numbering: 1 is the top, p has
 * children 2p and 2p + 1, 16..31 are the slots). */
static const uint16_t RANGE[2 * SLOTS] = {
    0x0000, 0xFFFF, 0x00FF, 0xFF00, 0x000F, 0x00F0, 0x0F00, 0xF000,
    0x0003, 0x000C, 0x0030, 0x00C0, 0x0300, 0x0C00, 0x3000, 0xC000,
    0x0001, 0x0002, 0x0004, 0x0008, 0x0010, 0x0020, 0x0040, 0x0080,
    0x0100, 0x0200, 0x0400, 0x0800, 0x1000, 0x2000, 0x4000, 0x8000,
};

typedef struct {
    const unsigned char *key;
    const unsigned char *value; /* NULL deletes the key */
} Change;

/* The path (nibbles) of a page written by the refreshed version. */
typedef struct {
    const unsigned char *path;
    Py_ssize_t length;
} Refresh;

/* A page being built; each slot holds its bytes as in the encoding (SLOT_MAX). The
 * masks: `occupied` has every slot not empty (buckets too), `leaves` the leaves only,
 * `buckets` the buckets (so a bucket counts as a child for is_many: two keys or more).
 * The encoding marks a bucket occupied=0, leaf=1. */
typedef struct {
    unsigned occupied;
    unsigned leaves;
    unsigned buckets;
    unsigned has_inner; /* bit p: inner[p] is position p's hash */
    unsigned char slot[SLOTS][SLOT_MAX];
    unsigned char inner[SLOTS][HASH_MAX];
} Page;

typedef struct {
    PyObject *fetch;
    PyObject *cache; /* NULL, or a dict of node key -> encoded page tried before fetch */
    PyObject *hash_fn;
    PyObject *hash_ctor;   /* NULL: call hash_fn */
    PyObject *digest_name; /* "digest", with hash_ctor */
#ifdef CHAINCITY_OPENSSL
    EVP_MD *md;      /* with digest_name: OpenSSL's digest, used before hash_ctor */
    EVP_MD_CTX *ctx; /* one context for every hash of the call */
#endif
    PyObject *corruption; /* chaincity.state.tree.StateCorruption */
    PyObject *pages;      /* list of (node key, encoded page) */
    PyObject *stale;      /* list of node keys */
    const unsigned char *leaf_prefix;
    Py_ssize_t leaf_prefix_len;
    const unsigned char *node_prefix;
    Py_ssize_t node_prefix_len;
    Py_ssize_t hs;
    int depth_max;
    int refresh_count; /* refreshed versions, sorted, be64 each */
    unsigned char refresh_versions[REFRESH_VERSIONS_MAX][8];
    unsigned char version[8];
    unsigned char path[DEPTH_MAX + 1];
    unsigned char zero[HASH_MAX];
    Page *stack; /* stack[d]: the page being built at depth d (one at a time per depth) */
} Writer;

static int lowest_bit(unsigned mask) {
    int index = 0;
    while (mask && !(mask & 1u)) { /* callers pass a nonzero mask; 0 gives 0, not a hang */
        mask >>= 1;
        index++;
    }
    return index;
}

static int bit_count(unsigned mask) {
    int count = 0;
    for (; mask; mask &= mask - 1) count++;
    return count;
}

/* be64(value) into out[0..8). */
static void put_be64(unsigned char *out, unsigned long long value) {
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(value >> (56 - 8 * i));
}

/* Two keys or more below (or one child page): the position's hash is stored. */
static int is_many(const Page *pg, int position) {
    unsigned mask = pg->occupied & RANGE[position];
    return (mask & (mask - 1)) != 0 || (mask != 0 && !(pg->leaves & mask));
}

static void corrupt(Writer *w, const char *message) {
    PyErr_SetString(w->corruption, message);
}

#ifdef CHAINCITY_OPENSSL
/* OpenSSL's digest named `name`, or NULL (no Python error set) if it has none. Before
 * OpenSSL 3 digests are looked up, not fetched, and are not freed. */
static EVP_MD *find_md(const char *name) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    /* Fetched once: passing a looked-up digest to EVP_DigestInit_ex fetches it again
     * at every hash, which costs twice the hash itself. */
    EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
#else
    EVP_MD *md = (EVP_MD *)EVP_get_digestbyname(name);
#endif
    if (md == NULL) ERR_clear_error(); /* leave nothing queued for hashlib to find */
    return md;
}

static void free_md(EVP_MD *md) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD_free(md);
#else
    (void)md;
#endif
}

/* out = md(prefix || a || b) through the call's context. */
static int evp_hash(Writer *w, const unsigned char *prefix, Py_ssize_t prefix_len,
                    const unsigned char *a, const unsigned char *b, unsigned char *out) {
    unsigned int size = 0;
    if (EVP_DigestInit_ex(w->ctx, w->md, NULL) != 1 ||
        EVP_DigestUpdate(w->ctx, prefix, (size_t)prefix_len) != 1 ||
        EVP_DigestUpdate(w->ctx, a, (size_t)w->hs) != 1 ||
        EVP_DigestUpdate(w->ctx, b, (size_t)w->hs) != 1 ||
        EVP_DigestFinal_ex(w->ctx, out, &size) != 1 || (Py_ssize_t)size != w->hs) {
        PyErr_SetString(PyExc_ValueError, "OpenSSL failed to compute a digest");
        return -1;
    }
    return 0;
}
#endif

/* out = hash_fn(prefix || a || b), a and b each hs bytes. */
static int call_hash(Writer *w, const unsigned char *prefix, Py_ssize_t prefix_len,
                     const unsigned char *a, const unsigned char *b, unsigned char *out) {
    Py_ssize_t hs = w->hs;
#ifdef CHAINCITY_OPENSSL
    if (w->ctx != NULL) return evp_hash(w, prefix, prefix_len, a, b, out);
#endif
    PyObject *message = PyBytes_FromStringAndSize(NULL, prefix_len + 2 * hs);
    if (message == NULL) return -1;
    char *buffer = PyBytes_AS_STRING(message);
    memcpy(buffer, prefix, (size_t)prefix_len);
    memcpy(buffer + prefix_len, a, (size_t)hs);
    memcpy(buffer + prefix_len + hs, b, (size_t)hs);
    PyObject *digest;
    if (w->hash_ctor != NULL) {
        PyObject *state = PyObject_CallOneArg(w->hash_ctor, message);
        Py_DECREF(message);
        if (state == NULL) return -1;
        digest = PyObject_CallMethodNoArgs(state, w->digest_name);
        Py_DECREF(state);
    } else {
        digest = PyObject_CallOneArg(w->hash_fn, message);
        Py_DECREF(message);
    }
    if (digest == NULL) return -1;
    if (!PyBytes_Check(digest) || PyBytes_GET_SIZE(digest) != hs) {
        Py_DECREF(digest);
        PyErr_SetString(PyExc_ValueError, "hash_fn returned a digest of the wrong size");
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(digest), (size_t)hs);
    Py_DECREF(digest);
    return 0;
}

static int leaf_hash(Writer *w, const unsigned char *leaf, unsigned char *out) {
    return call_hash(w, w->leaf_prefix, w->leaf_prefix_len, leaf, leaf + w->hs, out);
}

/* The hash at a position whose inner hashes below are up to date (buf may hold it). */
static const unsigned char *position_hash(Writer *w, const Page *pg, int position,
                                          unsigned char *buf) {
    if (position >= FIRST_SLOT) {
        int index = position - FIRST_SLOT;
        unsigned bit = 1u << index;
        if (!(pg->occupied & bit)) return w->zero;
        if (pg->buckets & bit) return pg->slot[index] + 1;
        if (!(pg->leaves & bit)) return pg->slot[index] + 8;
        return leaf_hash(w, pg->slot[index], buf) < 0 ? NULL : buf;
    }
    if (pg->has_inner & (1u << position)) return pg->inner[position];
    unsigned mask = pg->occupied & RANGE[position];
    if (mask == 0) return w->zero;
    if ((mask & (mask - 1)) || !(pg->leaves & mask)) {
        corrupt(w, "page lacks the hash of a position with two keys");
        return NULL;
    }
    return leaf_hash(w, pg->slot[lowest_bit(mask)], buf) < 0 ? NULL : buf;
}

/* Recompute the inner hashes above the slots in `dirty`, bottom level first. */
static int rehash(Writer *w, Page *pg, unsigned dirty) {
    unsigned char left_buf[HASH_MAX], right_buf[HASH_MAX];
    for (int first = SLOTS / 2; first >= 1; first >>= 1) {
        unsigned above = 0;
        for (int j = 0; j < first; j++) {
            if (!(dirty & (3u << (2 * j)))) continue;
            int position = first + j;
            above |= 1u << j;
            if (!is_many(pg, position)) {
                pg->has_inner &= ~(1u << position);
                continue;
            }
            const unsigned char *left = position_hash(w, pg, 2 * position, left_buf);
            if (left == NULL) return -1;
            const unsigned char *right = position_hash(w, pg, 2 * position + 1, right_buf);
            if (right == NULL) return -1;
            if (call_hash(w, w->node_prefix, w->node_prefix_len, left, right,
                          pg->inner[position]) < 0)
                return -1;
            pg->has_inner |= 1u << position;
        }
        dirty = above;
    }
    return 0;
}

/* The bytes of a bucket of n keys. */
static Py_ssize_t bucket_size(const Writer *w, int n) {
    return 1 + w->hs + 2 * (Py_ssize_t)n * w->hs;
}

/* The i-th leaf (key hash || value hash) of the bucket in slot `index`. */
static const unsigned char *bucket_leaf(const Writer *w, const Page *pg, int index, int i) {
    return pg->slot[index] + 1 + w->hs + 2 * (Py_ssize_t)i * w->hs;
}

static Py_ssize_t slot_size(const Writer *w, const Page *pg, int index) {
    if (pg->buckets & (1u << index)) return bucket_size(w, pg->slot[index][0]);
    return (pg->leaves & (1u << index)) ? 2 * w->hs : 8 + w->hs;
}

/* Decode a stored page; any length or mask inconsistency is corruption. */
static int decode_page(Writer *w, PyObject *raw, Page *pg) {
    if (!PyBytes_Check(raw)) {
        PyErr_SetString(PyExc_TypeError, "fetch must return bytes");
        return -1;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(raw);
    Py_ssize_t size = PyBytes_GET_SIZE(raw);
    if (size < 4) {
        corrupt(w, "state page too short");
        return -1;
    }
    unsigned occupied = ((unsigned)data[0] << 8) | data[1];
    unsigned leaves = ((unsigned)data[2] << 8) | data[3];
    pg->buckets = leaves & ~occupied; /* occupied=0, leaf=1: a bucket */
    pg->occupied = occupied | pg->buckets;
    pg->leaves = leaves & occupied;
    pg->has_inner = 0;
    /* Every length first, in page.py's order: a bucket is checked where the walk meets
     * it (its count, that it lies inside the page, its keys' order), the whole length
     * after the walk; nothing is copied before, so a short or long page is never read
     * past. */
    Py_ssize_t lengths[SLOTS];
    Py_ssize_t offset = 4, leaf_size = 2 * w->hs;
    for (int index = 0; index < SLOTS; index++) {
        unsigned bit = 1u << index;
        if (!(pg->occupied & bit)) continue;
        Py_ssize_t length;
        if (pg->buckets & bit) {
            int n = offset < size ? data[offset] : 0;
            if (n < 2 || n > BUCKET_MAX) goto malformed_bucket;
            length = bucket_size(w, n);
            if (length > size - offset) goto malformed_bucket;
            const unsigned char *keys = data + offset + 1 + w->hs;
            for (int i = 1; i < n; i++)
                if (memcmp(keys + (i - 1) * leaf_size, keys + i * leaf_size, (size_t)w->hs) >= 0)
                    goto malformed_bucket;
        } else {
            length = (pg->leaves & bit) ? leaf_size : 8 + w->hs;
        }
        lengths[index] = length;
        offset += length;
    }
    for (int position = 1; position < FIRST_SLOT; position++)
        if (is_many(pg, position)) offset += w->hs;
    if (offset != size) {
        corrupt(w, "state page has the wrong length");
        return -1;
    }
    offset = 4;
    for (int index = 0; index < SLOTS; index++) {
        if (!(pg->occupied & (1u << index))) continue;
        memcpy(pg->slot[index], data + offset, (size_t)lengths[index]);
        offset += lengths[index];
    }
    for (int position = 1; position < FIRST_SLOT; position++) {
        if (!is_many(pg, position)) continue;
        memcpy(pg->inner[position], data + offset, (size_t)w->hs);
        pg->has_inner |= 1u << position;
        offset += w->hs;
    }
    return 0;
malformed_bucket:
    corrupt(w, "state page has a malformed bucket");
    return -1;
}

static PyObject *encode_page(Writer *w, const Page *pg) {
    Py_ssize_t size = 4;
    for (int index = 0; index < SLOTS; index++)
        if (pg->occupied & (1u << index)) size += slot_size(w, pg, index);
    for (int position = 1; position < FIRST_SLOT; position++) {
        if (!is_many(pg, position)) continue;
        if (!(pg->has_inner & (1u << position))) {
            PyErr_SetString(PyExc_SystemError, "a rewritten page lacks an inner hash");
            return NULL;
        }
        size += w->hs;
    }
    PyObject *raw = PyBytes_FromStringAndSize(NULL, size);
    if (raw == NULL) return NULL;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(raw);
    unsigned occupied = pg->occupied & ~pg->buckets, leaves = pg->leaves | pg->buckets;
    out[0] = (unsigned char)(occupied >> 8);
    out[1] = (unsigned char)occupied;
    out[2] = (unsigned char)(leaves >> 8);
    out[3] = (unsigned char)leaves;
    Py_ssize_t offset = 4;
    for (int index = 0; index < SLOTS; index++) {
        if (!(pg->occupied & (1u << index))) continue;
        Py_ssize_t length = slot_size(w, pg, index);
        memcpy(out + offset, pg->slot[index], (size_t)length);
        offset += length;
    }
    for (int position = 1; position < FIRST_SLOT; position++) {
        if (!is_many(pg, position)) continue;
        memcpy(out + offset, pg->inner[position], (size_t)w->hs);
        offset += w->hs;
    }
    return raw;
}

static PyObject *node_key(Writer *w, const unsigned char *version, int depth) {
    PyObject *key = PyBytes_FromStringAndSize(NULL, 8 + depth);
    if (key == NULL) return NULL;
    memcpy(PyBytes_AS_STRING(key), version, 8);
    memcpy(PyBytes_AS_STRING(key) + 8, w->path, (size_t)depth);
    return key;
}

/* Record the page at `depth` (complete) as written at the current path; top = its hash. */
static int write_page(Writer *w, int depth, unsigned char *top) {
    Page *pg = &w->stack[depth];
    PyObject *key = node_key(w, w->version, depth);
    if (key == NULL) return -1;
    PyObject *raw = encode_page(w, pg);
    if (raw == NULL) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *entry = PyTuple_Pack(2, key, raw);
    Py_DECREF(key);
    Py_DECREF(raw);
    if (entry == NULL) return -1;
    int failed = PyList_Append(w->pages, entry);
    Py_DECREF(entry);
    if (failed) return -1;
    const unsigned char *hash = position_hash(w, pg, 1, top);
    if (hash == NULL) return -1;
    if (hash != top) memcpy(top, hash, (size_t)w->hs);
    return 0;
}

/* Fetch the page that `reference` (be64 version || hash) names at `depth` into the
 * stack; returns its node key (a new reference), or NULL on error. */
static PyObject *fetch_page(Writer *w, const unsigned char *reference, int depth) {
    PyObject *key = node_key(w, reference, depth);
    if (key == NULL) return NULL;
    /* The cache first, with no Python frame: nearly every page an update reads is there. */
    PyObject *raw = w->cache == NULL ? NULL : PyDict_GetItemWithError(w->cache, key);
    if (raw != NULL && PyBytes_CheckExact(raw)) {
        Py_INCREF(raw);
    } else if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    } else {
        raw = PyObject_CallOneArg(w->fetch, key);
    }
    if (raw == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    if (raw == Py_None) { /* fetch found nothing: the tree names a page it lacks */
        PyObject *hex = PyObject_CallMethod(key, "hex", NULL);
        if (hex != NULL) PyErr_Format(w->corruption, "state page %U is missing", hex);
        Py_XDECREF(hex);
        Py_DECREF(raw);
        Py_DECREF(key);
        return NULL;
    }
    int failed = decode_page(w, raw, &w->stack[depth]);
    Py_DECREF(raw);
    if (failed) {
        Py_DECREF(key);
        return NULL;
    }
    return key;
}

/* Record `key` (a new reference, consumed) as replaced. */
static int mark_stale(Writer *w, PyObject *key) {
    int failed = PyList_Append(w->stale, key);
    Py_DECREF(key);
    return failed ? -1 : 0;
}

/* Fetch a page this update replaces. */
static int load_page(Writer *w, const unsigned char *reference, int depth) {
    PyObject *key = fetch_page(w, reference, depth);
    return key == NULL ? -1 : mark_stale(w, key);
}

/* A child's version against the refreshed ones: -1 older than all of them (nothing
 * under it needs a look; always so when nothing is refreshed), 0 one of them, 1 else. */
static int refresh_order(const Writer *w, const unsigned char *reference) {
    if (w->refresh_count == 0 || memcmp(reference, w->refresh_versions[0], 8) < 0) return -1;
    for (int i = 0; i < w->refresh_count; i++)
        if (memcmp(reference, w->refresh_versions[i], 8) == 0) return 0;
    return 1;
}

static void set_empty(Page *pg, int index) {
    pg->occupied &= ~(1u << index);
    pg->leaves &= ~(1u << index);
    pg->buckets &= ~(1u << index);
}

static void set_leaf(Writer *w, Page *pg, int index, const unsigned char *key,
                     const unsigned char *value) {
    /* memmove: an unchanged leaf is copied onto itself. */
    memmove(pg->slot[index], key, (size_t)w->hs);
    memmove(pg->slot[index] + w->hs, value, (size_t)w->hs);
    pg->occupied |= 1u << index;
    pg->leaves |= 1u << index;
    pg->buckets &= ~(1u << index);
}

/* Slot `index` becomes a bucket of leaves[0..n) (sorted, 2 <= n <= BUCKET_MAX) whose
 * subtree hash is `hash`; leaves and hash may point into the slot itself. */
static void set_bucket(Writer *w, Page *pg, int index, const Change *leaves, int n,
                       const unsigned char *hash) {
    unsigned char bytes[SLOT_MAX];
    Py_ssize_t hs = w->hs;
    bytes[0] = (unsigned char)n;
    memcpy(bytes + 1, hash, (size_t)hs);
    for (int i = 0; i < n; i++) {
        memcpy(bytes + 1 + hs + 2 * i * hs, leaves[i].key, (size_t)hs);
        memcpy(bytes + 1 + 2 * hs + 2 * i * hs, leaves[i].value, (size_t)hs);
    }
    memcpy(pg->slot[index], bytes, (size_t)bucket_size(w, n));
    pg->occupied |= 1u << index;
    pg->leaves &= ~(1u << index);
    pg->buckets |= 1u << index;
}

static int key_bit(const unsigned char *key, int index) {
    return (key[index >> 3] >> (7 - (index & 7))) & 1;
}

/* out = the hash of the subtree at bit depth `depth` (bits counted from the most
 * significant of the key hash) holding leaves[0..n), sorted and sharing their first
 * `depth` bits: tree.py's _subtree_root. Each level of recursion splits the leaves
 * in two nonempty parts, so it goes no deeper than n; the levels above a split that
 * all the leaves take on the same side are a loop. */
static int subtree_hash(Writer *w, const Change *leaves, Py_ssize_t n, int depth,
                        unsigned char *out) {
    if (n == 0) {
        memcpy(out, w->zero, (size_t)w->hs);
        return 0;
    }
    if (n == 1)
        return call_hash(w, w->leaf_prefix, w->leaf_prefix_len, leaves[0].key, leaves[0].value,
                         out);
    int bits = (int)(8 * w->hs), split = depth;
    const unsigned char *first = leaves[0].key, *last = leaves[n - 1].key;
    while (split < bits && key_bit(first, split) == key_bit(last, split)) split++;
    if (split >= bits) {
        corrupt(w, "two keys share a whole key hash");
        return -1;
    }
    Py_ssize_t mid = 1;
    while (mid < n && !key_bit(leaves[mid].key, split)) mid++;
    unsigned char left[HASH_MAX], right[HASH_MAX];
    if (subtree_hash(w, leaves, mid, split + 1, left) < 0 ||
        subtree_hash(w, leaves + mid, n - mid, split + 1, right) < 0 ||
        call_hash(w, w->node_prefix, w->node_prefix_len, left, right, out) < 0)
        return -1;
    for (int level = split - 1; level >= depth; level--) {
        unsigned char below[HASH_MAX];
        memcpy(below, out, (size_t)w->hs);
        int failed = key_bit(first, level)
                         ? call_hash(w, w->node_prefix, w->node_prefix_len, w->zero, below, out)
                         : call_hash(w, w->node_prefix, w->node_prefix_len, below, w->zero, out);
        if (failed < 0) return -1;
    }
    return 0;
}

static int update_slot(Writer *w, int depth, int index, const Change *changes, Py_ssize_t count,
                       const Refresh *refreshes, Py_ssize_t refresh_count);
static int refresh_slot(Writer *w, int depth, int index, const Refresh *refreshes,
                        Py_ssize_t refresh_count);

/* Apply sorted changes and refreshes, all under the page at `depth`; returns the mask
 * of changed slots. */
static long apply_page(Writer *w, int depth, const Change *changes, Py_ssize_t count,
                       const Refresh *refreshes, Py_ssize_t refresh_count) {
    if (depth >= w->depth_max) {
        corrupt(w, "two keys share a whole key hash");
        return -1;
    }
    if (refresh_count && refreshes[0].length == depth) { /* this page: the caller's part */
        refreshes++;
        refresh_count--;
    }
    int byte_at = depth >> 1, shift = (depth & 1) ? 0 : 4;
    unsigned dirty = 0, copied = 0;
    Py_ssize_t start = 0, refresh_start = 0;
    while (start < count || refresh_start < refresh_count) {
        /* Sorted paths sharing this page's path, the page's own dropped: each is
         * longer than `depth`, so path[depth] exists. */
        int change_index = start < count ? (changes[start].key[byte_at] >> shift) & 0x0F : SLOTS;
        int refresh_index = refresh_start < refresh_count ? refreshes[refresh_start].path[depth]
                                                          : SLOTS;
        int index = change_index < refresh_index ? change_index : refresh_index;
        Py_ssize_t end = start;
        while (end < count && ((changes[end].key[byte_at] >> shift) & 0x0F) == index) end++;
        Py_ssize_t refresh_end = refresh_start;
        while (refresh_end < refresh_count && refreshes[refresh_end].path[depth] == index)
            refresh_end++;
        w->path[depth] = (unsigned char)index;
        if (end > start) {
            if (update_slot(w, depth, index, changes + start, end - start,
                            refreshes + refresh_start, refresh_end - refresh_start) < 0)
                return -1;
            dirty |= 1u << index;
        } else {
            int changed = refresh_slot(w, depth, index, refreshes + refresh_start,
                                       refresh_end - refresh_start);
            if (changed < 0) return -1;
            if (changed == 1) copied |= 1u << index;
            if (changed == 2) dirty |= 1u << index;
        }
        start = end;
        refresh_start = refresh_end;
    }
    return (long)(dirty | (copied << 16));
}

/* Put the finished page at depth + 1 into slot `index` of the page at `depth`: if it
 * names no child page and holds BUCKET_MAX keys or fewer, nothing, its leaf or a bucket
 * of its keys; else a child reference. */
static int finish(Writer *w, int depth, int index, unsigned dirty) {
    Page *pg = &w->stack[depth];
    Page *sub = &w->stack[depth + 1];
    unsigned char top[HASH_MAX];
    if (!(sub->occupied & ~sub->leaves & ~sub->buckets)) {
        int keys = bit_count(sub->leaves);
        for (unsigned mask = sub->buckets; mask && keys <= BUCKET_MAX; mask &= mask - 1)
            keys += sub->slot[lowest_bit(mask)][0];
        if (keys == 0) {
            set_empty(pg, index);
            return 0;
        }
        if (keys == 1) {
            const unsigned char *leaf = sub->slot[lowest_bit(sub->leaves)];
            set_leaf(w, pg, index, leaf, leaf + w->hs);
            return 0;
        }
        if (keys <= BUCKET_MAX) { /* the keys in slot order are sorted */
            Change leaves[BUCKET_MAX];
            int n = 0;
            for (int slot = 0; slot < SLOTS; slot++) {
                unsigned bit = 1u << slot;
                if (sub->leaves & bit) {
                    leaves[n].key = sub->slot[slot];
                    leaves[n++].value = sub->slot[slot] + w->hs;
                } else if (sub->buckets & bit) {
                    for (int i = 0; i < sub->slot[slot][0]; i++, n++) {
                        leaves[n].key = bucket_leaf(w, sub, slot, i);
                        leaves[n].value = leaves[n].key + w->hs;
                    }
                }
            }
            /* Hashed from the keys, as writer.py does (the page's top hash is the same). */
            if (subtree_hash(w, leaves, n, 4 * (depth + 1), top) < 0) return -1;
            set_bucket(w, pg, index, leaves, n, top);
            return 0;
        }
    }
    if (rehash(w, sub, dirty) < 0 || write_page(w, depth + 1, top) < 0) return -1;
    memcpy(pg->slot[index], w->version, 8);
    memcpy(pg->slot[index] + 8, top, (size_t)w->hs);
    pg->occupied |= 1u << index;
    pg->leaves &= ~(1u << index);
    pg->buckets &= ~(1u << index);
    return 0;
}

/* The surviving leaves under a slot (not a child): the changes that set a value, plus
 * the slot's own leaf or bucket keys that no change names; sorted by key hash. Returns
 * their count (at most count + BUCKET_MAX). */
static Py_ssize_t gather_leaves(Writer *w, const Page *pg, int index, const Change *changes,
                                Py_ssize_t count, Change *leaves) {
    Change own[BUCKET_MAX];
    int own_count = 0;
    unsigned bit = 1u << index;
    if (pg->leaves & bit) {
        own[0].key = pg->slot[index];
        own[0].value = pg->slot[index] + w->hs;
        own_count = 1;
    } else if (pg->buckets & bit) {
        own_count = pg->slot[index][0];
        for (int i = 0; i < own_count; i++) {
            own[i].key = bucket_leaf(w, pg, index, i);
            own[i].value = own[i].key + w->hs;
        }
    }
    Py_ssize_t found = 0, i = 0;
    int j = 0;
    while (i < count || j < own_count) {
        int order = j == own_count ? 1
                    : i == count   ? -1
                                   : memcmp(own[j].key, changes[i].key, (size_t)w->hs);
        if (order < 0) { /* an own key no change names */
            leaves[found++] = own[j++];
            continue;
        }
        if (order == 0) j++; /* the change replaces or deletes it */
        if (changes[i].value != NULL) leaves[found++] = changes[i];
        i++;
    }
    return found;
}

/* Refresh under slot `index` of the page at `depth` (no changes there): returns 1 if
 * the slot now names a copy (same hash, new version), 2 if the copy collapsed into a
 * bucket or a leaf (the same hash where the page was sound, hashed again all the same,
 * as writer.py does), 0 if it is unchanged, -1 on error. */
static int refresh_slot(Writer *w, int depth, int index, const Refresh *refreshes,
                        Py_ssize_t refresh_count) {
    Page *pg = &w->stack[depth];
    unsigned bit = 1u << index;
    if (!(pg->occupied & ~pg->leaves & ~pg->buckets & bit)) return 0; /* no page below */
    int order = refresh_order(w, pg->slot[index]);
    if (order < 0) return 0; /* a page older than the refreshed version: nothing of it */
    /* A page newer than the refreshed versions, on whose path only a refreshed page
     * that it replaced was written: nothing below it to copy, so it is not read. */
    if (order > 0 && refresh_count == 1 && refreshes[0].length == depth + 1) return 0;
    PyObject *key = fetch_page(w, pg->slot[index], depth + 1);
    if (key == NULL) return -1;
    if (order == 0 && mark_stale(w, key) < 0) return -1; /* reached: copied in any case */
    long dirty = apply_page(w, depth + 1, NULL, 0, refreshes, refresh_count);
    if (dirty < 0 || (order > 0 && dirty == 0)) {
        if (order > 0) Py_DECREF(key);
        return dirty < 0 ? -1 : 0;
    }
    if (order > 0 && mark_stale(w, key) < 0) return -1;
    if (finish(w, depth, index, HASHED(dirty)) < 0) return -1;
    return (pg->occupied & ~pg->leaves & ~pg->buckets & bit) ? 1 : 2;
}

static int update_slot(Writer *w, int depth, int index, const Change *changes, Py_ssize_t count,
                       const Refresh *refreshes, Py_ssize_t refresh_count) {
    Page *pg = &w->stack[depth];
    unsigned bit = 1u << index;
    if (pg->occupied & ~pg->leaves & ~pg->buckets & bit) { /* a child page */
        if (refresh_order(w, pg->slot[index]) < 0) refresh_count = 0;
        if (load_page(w, pg->slot[index], depth + 1) < 0) return -1;
        long dirty = apply_page(w, depth + 1, changes, count, refreshes, refresh_count);
        return dirty < 0 ? -1 : finish(w, depth, index, HASHED(dirty));
    }
    if (count == 1 && !(pg->buckets & bit)) { /* the common case at the bottom of a batch */
        const Change *change = &changes[0];
        if (!(pg->occupied & bit) || memcmp(pg->slot[index], change->key, (size_t)w->hs) == 0) {
            if (change->value == NULL)
                set_empty(pg, index);
            else
                set_leaf(w, pg, index, change->key, change->value);
            return 0;
        }
        if (change->value == NULL) return 0; /* deleting an absent key */
    }
    Change small[SMALL_LEAVES];
    Change *leaves = small;
    if (count + BUCKET_MAX > SMALL_LEAVES) {
        leaves = PyMem_New(Change, (size_t)count + BUCKET_MAX);
        if (leaves == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_ssize_t found = gather_leaves(w, pg, index, changes, count, leaves);
    int result = 0;
    if (found == 0) {
        set_empty(pg, index);
    } else if (found == 1) {
        set_leaf(w, pg, index, leaves[0].key, leaves[0].value);
    } else if (found <= BUCKET_MAX) { /* hashed again even if they are the bucket's own */
        unsigned char hash[HASH_MAX];
        result = subtree_hash(w, leaves, found, 4 * (depth + 1), hash);
        if (result == 0) set_bucket(w, pg, index, leaves, (int)found, hash);
    } else {
        Page *sub = &w->stack[depth + 1];
        sub->occupied = sub->leaves = sub->buckets = sub->has_inner = 0;
        long dirty = apply_page(w, depth + 1, leaves, found, NULL, 0);
        result = dirty < 0 ? -1 : finish(w, depth, index, HASHED(dirty));
    }
    if (leaves != small) PyMem_Free(leaves);
    return result;
}

/* Check the changes and point into them (the tuple `items` keeps them alive). */
static Change *read_changes(Writer *w, PyObject *items, Py_ssize_t count) {
    Change *changes = PyMem_New(Change, (size_t)(count ? count : 1));
    if (changes == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        PyObject *key, *value;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) goto malformed;
        key = PyTuple_GET_ITEM(item, 0);
        value = PyTuple_GET_ITEM(item, 1);
        if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) != w->hs) goto malformed;
        if (value != Py_None && (!PyBytes_Check(value) || PyBytes_GET_SIZE(value) != w->hs))
            goto malformed;
        changes[i].key = (const unsigned char *)PyBytes_AS_STRING(key);
        changes[i].value = value == Py_None ? NULL : (const unsigned char *)PyBytes_AS_STRING(value);
        if (i > 0 && memcmp(changes[i - 1].key, changes[i].key, (size_t)w->hs) >= 0) {
            PyMem_Free(changes);
            PyErr_SetString(PyExc_ValueError, "changes must be sorted by key hash, no repeats");
            return NULL;
        }
    }
    return changes;
malformed:
    PyMem_Free(changes);
    PyErr_SetString(PyExc_TypeError,
                    "each change must be (key hash, value hash or None) of hash_size bytes");
    return NULL;
}

/* The refreshed versions (a sequence of at most REFRESH_VERSIONS_MAX ints), sorted. */
static int read_refresh_versions(Writer *w, PyObject *versions_in) {
    if (versions_in == NULL || versions_in == Py_None) return 0;
    PyObject *items = PySequence_Tuple(versions_in);
    if (items == NULL) return -1;
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    if (count > REFRESH_VERSIONS_MAX) {
        Py_DECREF(items);
        PyErr_SetString(PyExc_ValueError, "too many refresh_versions");
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned long long version = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(items, i));
        if (version == (unsigned long long)-1 && PyErr_Occurred()) {
            Py_DECREF(items);
            return -1;
        }
        unsigned char be[8];
        put_be64(be, version);
        /* Insertion into the sorted array: a handful of versions at most. */
        int at = w->refresh_count;
        while (at > 0 && memcmp(w->refresh_versions[at - 1], be, 8) > 0) {
            memcpy(w->refresh_versions[at], w->refresh_versions[at - 1], 8);
            at--;
        }
        memcpy(w->refresh_versions[at], be, 8);
        w->refresh_count++;
    }
    Py_DECREF(items);
    return 0;
}

/* Check the refresh paths (nibbles, strictly sorted) and point into them. */
static Refresh *read_refreshes(Writer *w, PyObject *items, Py_ssize_t count) {
    Refresh *refreshes = PyMem_New(Refresh, (size_t)(count ? count : 1));
    if (refreshes == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) >= w->depth_max) goto malformed;
        const unsigned char *path = (const unsigned char *)PyBytes_AS_STRING(item);
        Py_ssize_t length = PyBytes_GET_SIZE(item);
        for (Py_ssize_t j = 0; j < length; j++)
            if (path[j] >= SLOTS) goto malformed;
        if (i > 0) {
            const Refresh *before = &refreshes[i - 1];
            Py_ssize_t common = before->length < length ? before->length : length;
            int order = memcmp(before->path, path, (size_t)common);
            if (order > 0 || (order == 0 && before->length >= length)) {
                PyMem_Free(refreshes);
                PyErr_SetString(PyExc_ValueError, "refresh paths must be sorted, no repeats");
                return NULL;
            }
        }
        refreshes[i].path = path;
        refreshes[i].length = length;
    }
    return refreshes;
malformed:
    PyMem_Free(refreshes);
    PyErr_SetString(PyExc_TypeError, "each refresh path must be bytes of nibbles (0..15)");
    return NULL;
}

/* Returns 1 if a root page was written, 0 if the tree is unchanged (root holds its
 * hash either way), -1 on error. An empty tree gets a root page all the same. */
static int update_root(Writer *w, PyObject *root_version, const Change *changes,
                       Py_ssize_t count, const Refresh *refreshes, Py_ssize_t refresh_count,
                       unsigned char *root) {
    Page *pg = &w->stack[0];
    pg->occupied = pg->leaves = pg->buckets = pg->has_inner = 0;
    PyObject *key = NULL;
    int order = -1;
    if (root_version != Py_None) {
        unsigned long long version = PyLong_AsUnsignedLongLong(root_version);
        if (version == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        unsigned char reference[8];
        put_be64(reference, version);
        key = fetch_page(w, reference, 0);
        if (key == NULL) return -1;
        order = refresh_order(w, reference);
        if (count > 0 || order == 0) {
            int failed = mark_stale(w, key);
            key = NULL;
            if (failed) return -1;
        }
    }
    long dirty = apply_page(w, 0, changes, count, order >= 0 ? refreshes : NULL,
                            order >= 0 ? refresh_count : 0);
    if (dirty < 0) {
        Py_XDECREF(key);
        return -1;
    }
    if (root_version != Py_None && count == 0 && order != 0 && dirty == 0) {
        /* nothing changed: the same root */
        Py_XDECREF(key);
        const unsigned char *hash = position_hash(w, pg, 1, root);
        if (hash == NULL) return -1;
        if (hash != root) memcpy(root, hash, (size_t)w->hs);
        return 0;
    }
    if (key != NULL && mark_stale(w, key) < 0) return -1;
    if (rehash(w, pg, HASHED(dirty)) < 0) return -1;
    return write_page(w, 0, root) < 0 ? -1 : 1;
}

/* Use OpenSSL's digest `name` (a str, or None for none) for every hash of the call. */
static int init_digest(Writer *w, PyObject *name) {
    if (name == Py_None) return 0;
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "digest_name must be a str or None");
        return -1;
    }
#ifdef CHAINCITY_OPENSSL
    const char *text = PyUnicode_AsUTF8(name);
    if (text == NULL) return -1;
    w->md = find_md(text);
    if (w->md == NULL || EVP_MD_size(w->md) != w->hs) {
        PyErr_Format(PyExc_ValueError, "OpenSSL has no digest %R of %zd bytes", name, w->hs);
        return -1;
    }
    w->ctx = EVP_MD_CTX_new();
    if (w->ctx == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
#else
    (void)w;
    PyErr_SetString(PyExc_ValueError, "this build of _treecore has no OpenSSL digests");
    return -1;
#endif
}

static int init_writer(Writer *w, PyObject *fetch, PyObject *hash_fn, PyObject *hash_ctor,
                       Py_buffer *leaf_prefix,
                       Py_buffer *node_prefix, Py_ssize_t hash_size,
                       unsigned long long version) {
    memset(w, 0, sizeof(*w)); /* clear_writer runs whatever happens below */
    if (hash_size < 1 || hash_size > HASH_MAX) {
        PyErr_SetString(PyExc_ValueError, "hash_size must be 1..64 bytes");
        return -1;
    }
    if (!PyCallable_Check(fetch) || !PyCallable_Check(hash_fn)) {
        PyErr_SetString(PyExc_TypeError, "fetch and hash_fn must be callable");
        return -1;
    }
    if (hash_ctor != Py_None && !PyCallable_Check(hash_ctor)) {
        PyErr_SetString(PyExc_TypeError, "hash_ctor must be callable or None");
        return -1;
    }
    w->fetch = fetch;
    w->hash_fn = hash_fn;
    if (hash_ctor != Py_None) {
        w->digest_name = PyUnicode_InternFromString("digest");
        if (w->digest_name == NULL) return -1;
        w->hash_ctor = hash_ctor;
    }
    w->leaf_prefix = leaf_prefix->buf;
    w->leaf_prefix_len = leaf_prefix->len;
    w->node_prefix = node_prefix->buf;
    w->node_prefix_len = node_prefix->len;
    w->hs = hash_size;
    /* A page's nibble must lie inside the key hash. */
    w->depth_max = 2 * hash_size < DEPTH_MAX ? (int)(2 * hash_size) : DEPTH_MAX;
    put_be64(w->version, version);
    PyObject *tree = PyImport_ImportModule("chaincity.state.tree");
    if (tree == NULL) return -1;
    w->corruption = PyObject_GetAttrString(tree, "StateCorruption");
    Py_DECREF(tree);
    if (w->corruption == NULL) return -1;
    w->stack = PyMem_New(Page, DEPTH_MAX + 1);
    w->pages = PyList_New(0);
    w->stale = PyList_New(0);
    if (w->stack == NULL || w->pages == NULL || w->stale == NULL) {
        if (w->stack == NULL) PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void clear_writer(Writer *w) {
#ifdef CHAINCITY_OPENSSL
    if (w->ctx != NULL) EVP_MD_CTX_free(w->ctx);
    if (w->md != NULL) free_md(w->md);
#endif
    PyMem_Free(w->stack);
    Py_XDECREF(w->corruption);
    Py_XDECREF(w->digest_name);
    Py_XDECREF(w->pages);
    Py_XDECREF(w->stale);
}

PyDoc_STRVAR(apply_doc,
             "apply(changes, root_version, version, fetch, hash_fn, leaf_prefix, node_prefix,"
             " hash_size, hash_ctor=None, refresh_versions=(), refreshes=(), cache=None,"
             " digest_name=None)\n"
             "--\n\n"
             "Apply sorted (key hash, value hash or None) changes to the tree whose root page\n"
             "was written at root_version (None: an empty tree) as version `version`.\n"
             "fetch(node_key) returns an encoded page, or None if it has none (corruption);\n"
             "hash_fn is the suite's hash;\n"
             "hash_ctor, if given, a constructor whose ctor(data).digest() is hash_fn(data).\n"
             "digest_name, if given, names hash_fn's digest in OpenSSL (see digest()), which\n"
             "then computes every hash; ValueError if this build cannot.\n"
             "refreshes: sorted paths of the pages refresh_versions wrote; those the new tree\n"
             "reaches are copied into `version`. cache, a dict of node key -> encoded page,\n"
             "is read before fetch is called (a value that is not bytes is passed over).\n"
             "Returns (root hash, [(node key, encoded page)], [replaced node key]); no pages\n"
             "if nothing changed.");

static PyObject *apply(PyObject *module, PyObject *args) {
    PyObject *changes_in, *root_version, *version_in, *fetch, *hash_fn, *hash_ctor = Py_None;
    PyObject *refresh_in = NULL, *refreshes_in = NULL, *cache = Py_None, *digest = Py_None;
    Py_buffer leaf_prefix, node_prefix;
    Py_ssize_t hash_size;
    (void)module;
    if (!PyArg_ParseTuple(args, "OOOOOy*y*n|OOOOO:apply", &changes_in, &root_version,
                          &version_in, &fetch, &hash_fn, &leaf_prefix, &node_prefix, &hash_size,
                          &hash_ctor, &refresh_in, &refreshes_in, &cache, &digest))
        return NULL;
    Writer w;
    PyObject *result = NULL, *items = NULL, *refresh_items = NULL;
    Change *changes = NULL;
    Refresh *refreshes = NULL;
    unsigned char root[HASH_MAX];
    unsigned long long version = PyLong_AsUnsignedLongLong(version_in);
    if (version == (unsigned long long)-1 && PyErr_Occurred()) {
        PyBuffer_Release(&leaf_prefix);
        PyBuffer_Release(&node_prefix);
        return NULL;
    }
    if (init_writer(&w, fetch, hash_fn, hash_ctor, &leaf_prefix, &node_prefix, hash_size,
                    version) < 0 ||
        init_digest(&w, digest) < 0)
        goto done;
    if (cache != Py_None) {
        if (!PyDict_CheckExact(cache)) {
            PyErr_SetString(PyExc_TypeError, "cache must be a dict or None");
            goto done;
        }
        w.cache = cache; /* borrowed: the caller's argument outlives the call */
    }
    /* A private tuple: fetch or hash_fn may run any code, even change the caller's list. */
    items = PySequence_Tuple(changes_in);
    if (items == NULL) goto done;
    changes = read_changes(&w, items, PyTuple_GET_SIZE(items));
    if (changes == NULL) goto done;
    if (read_refresh_versions(&w, refresh_in) < 0) goto done;
    refresh_items = refreshes_in == NULL ? PyTuple_New(0) : PySequence_Tuple(refreshes_in);
    if (refresh_items == NULL) goto done;
    if (w.refresh_count == 0 && PyTuple_GET_SIZE(refresh_items) > 0) {
        PyErr_SetString(PyExc_ValueError, "refreshes given without refresh_versions");
        goto done;
    }
    refreshes = read_refreshes(&w, refresh_items, PyTuple_GET_SIZE(refresh_items));
    if (refreshes == NULL) goto done;
    if (update_root(&w, root_version, changes, PyTuple_GET_SIZE(items), refreshes,
                    PyTuple_GET_SIZE(refresh_items), root) < 0)
        goto done;
    result = Py_BuildValue("(y#OO)", (const char *)root, w.hs, w.pages, w.stale);
done:
    PyMem_Free(changes);
    PyMem_Free(refreshes);
    Py_XDECREF(items);
    Py_XDECREF(refresh_items);
    clear_writer(&w);
    PyBuffer_Release(&leaf_prefix);
    PyBuffer_Release(&node_prefix);
    return result;
}

PyDoc_STRVAR(digest_doc,
             "digest(name, data)\n"
             "--\n\n"
             "OpenSSL's digest `name` of data, as apply() computes it with digest_name=name;\n"
             "None if this build has no OpenSSL or OpenSSL no such digest. Callers compare it\n"
             "with the suite's hash before naming it to apply().");

static PyObject *digest(PyObject *module, PyObject *args) {
    const char *name;
    Py_buffer data;
    (void)module;
    if (!PyArg_ParseTuple(args, "sy*:digest", &name, &data)) return NULL;
#ifdef CHAINCITY_OPENSSL
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_MD *md = find_md(name);
    int done = md != NULL && EVP_Digest(data.buf, (size_t)data.len, out, &size, md, NULL) == 1;
    if (md != NULL) free_md(md);
    PyBuffer_Release(&data);
    if (done) return PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)size);
#else
    (void)name;
    PyBuffer_Release(&data);
#endif
    Py_RETURN_NONE;
}

PyDoc_STRVAR(digests_doc,
             "digests(name, items)\n"
             "--\n\n"
             "[digest(name, item) for item in items], with None for an item that is None, in\n"
             "one call and one OpenSSL context; ValueError if this build has no OpenSSL or\n"
             "OpenSSL no such digest, TypeError for an item that is neither bytes nor None.");

static PyObject *digests(PyObject *module, PyObject *args) {
    const char *name;
    PyObject *items_in;
    (void)module;
    if (!PyArg_ParseTuple(args, "sO:digests", &name, &items_in)) return NULL;
#ifdef CHAINCITY_OPENSSL
    PyObject *items = PySequence_Tuple(items_in);
    if (items == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    EVP_MD *md = find_md(name);
    EVP_MD_CTX *ctx = md == NULL ? NULL : EVP_MD_CTX_new();
    PyObject *result = ctx == NULL ? NULL : PyList_New(count);
    if (md == NULL) PyErr_Format(PyExc_ValueError, "OpenSSL has no digest %s", name);
    else if (ctx == NULL) PyErr_NoMemory();
    for (Py_ssize_t i = 0; result != NULL && i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i), *out = Py_None;
        unsigned char digest_out[EVP_MAX_MD_SIZE];
        unsigned int size = 0;
        if (item == Py_None) {
            Py_INCREF(out);
        } else if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "digests: each item must be bytes or None");
            out = NULL;
        } else if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
                   EVP_DigestUpdate(ctx, PyBytes_AS_STRING(item),
                                    (size_t)PyBytes_GET_SIZE(item)) != 1 ||
                   EVP_DigestFinal_ex(ctx, digest_out, &size) != 1) {
            PyErr_SetString(PyExc_ValueError, "OpenSSL failed to compute a digest");
            out = NULL;
        } else {
            out = PyBytes_FromStringAndSize((const char *)digest_out, (Py_ssize_t)size);
        }
        if (out == NULL) Py_CLEAR(result);
        else PyList_SET_ITEM(result, i, out);
    }
    if (ctx != NULL) EVP_MD_CTX_free(ctx);
    if (md != NULL) free_md(md);
    Py_DECREF(items);
    return result;
#else
    (void)name;
    (void)items_in;
    PyErr_SetString(PyExc_ValueError, "this build of _treecore has no OpenSSL digests");
    return NULL;
#endif
}

/* 0x00, or 0x01 + value: a new reference. */
static PyObject *fresh_entry(PyObject *value) {
    if (value == Py_None) return PyBytes_FromStringAndSize("\x00", 1);
    PyObject *entry = PyBytes_FromStringAndSize(NULL, 1 + PyBytes_GET_SIZE(value));
    if (entry == NULL) return NULL;
    PyBytes_AS_STRING(entry)[0] = 1;
    memcpy(PyBytes_AS_STRING(entry) + 1, PyBytes_AS_STRING(value),
           (size_t)PyBytes_GET_SIZE(value));
    return entry;
}

PyDoc_STRVAR(collect_doc,
             "collect(items, digest_name, key_max, value_max, check_key, check_value,\n"
             " state_error)\n"
             "--\n\n"
             "store.py's AuthenticatedState._collect after its islice, in one call (that method\n"
             "is the reference): check every (key, value) of items (keys of 1..key_max bytes,\n"
             "values None or bytes of at most value_max) and, for the first that fails, call\n"
             "check_key or check_value to raise their error; hash keys and values with\n"
             "OpenSSL's digest_name. Returns (values, tree changes): every key's (key hash,\n"
             "value or None) sorted by key hash, and (key hash, value hash or None) as values.\n"
             "state_error('a key changes twice in one version') if two keys share a key hash.");

#ifdef CHAINCITY_OPENSSL
typedef struct {
    PyObject *key_hash; /* bytes, a new reference */
    PyObject *value;    /* borrowed from the items: bytes or None */
} Changed;

static int digest_into(EVP_MD_CTX *ctx, EVP_MD *md, PyObject *data, Py_ssize_t hs,
                       PyObject **out) {
    unsigned char buffer[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
        EVP_DigestUpdate(ctx, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data)) != 1 ||
        EVP_DigestFinal_ex(ctx, buffer, &size) != 1 || (Py_ssize_t)size != hs) {
        PyErr_SetString(PyExc_ValueError, "OpenSSL failed to compute a digest");
        return -1;
    }
    *out = PyBytes_FromStringAndSize((const char *)buffer, (Py_ssize_t)size);
    return *out == NULL ? -1 : 0;
}

/* Key hashes all have the digest's size. */
static int compare_changed(const void *a, const void *b) {
    PyObject *first = ((const Changed *)a)->key_hash, *second = ((const Changed *)b)->key_hash;
    return memcmp(PyBytes_AS_STRING(first), PyBytes_AS_STRING(second),
                  (size_t)PyBytes_GET_SIZE(first));
}

#endif

static PyObject *collect(PyObject *module, PyObject *args) {
    PyObject *items_in, *digest_name, *check_key, *check_value, *state_error;
    Py_ssize_t key_max, value_max;
    (void)module;
    if (!PyArg_ParseTuple(args, "OUnnOOO:collect", &items_in, &digest_name, &key_max, &value_max,
                          &check_key, &check_value, &state_error))
        return NULL;
#ifdef CHAINCITY_OPENSSL
    if (key_max < 1 || key_max > 0xFFFF || value_max < 0) {
        PyErr_SetString(PyExc_ValueError, "collect: key_max must be 1..65535, value_max >= 0");
        return NULL;
    }
    PyObject *items = PySequence_Tuple(items_in);
    if (items == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(items);
    PyObject **pairs = PyMem_New(PyObject *, (size_t)(count ? count : 1));
    Changed *changed = PyMem_New(Changed, (size_t)(count ? count : 1));
    const char *name = PyUnicode_AsUTF8(digest_name);
    EVP_MD *md = name == NULL ? NULL : find_md(name);
    EVP_MD_CTX *ctx = md == NULL ? NULL : EVP_MD_CTX_new();
    PyObject *values = PyList_New(0), *tree = PyList_New(0);
    PyObject *result = NULL;
    Py_ssize_t paired = 0, changes = 0;
    if (pairs == NULL || changed == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (md == NULL) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "OpenSSL has no digest %R", digest_name);
        goto done;
    }
    if (ctx == NULL || values == NULL || tree == NULL) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t hs = EVP_MD_size(md);
    /* Every pair checked before anything is hashed, as the reference does. */
    for (; paired < count; paired++) {
        /* A private tuple of each pair (and of the items): a check may run any code,
         * even change the caller's lists. */
        PyObject *pair = PySequence_Tuple(PyTuple_GET_ITEM(items, paired));
        if (pair == NULL) goto done;
        pairs[paired] = pair;
        if (PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_ValueError, "collect: each change must be a (key, value) pair");
            paired++;
            goto done;
        }
        PyObject *key = PyTuple_GET_ITEM(pair, 0);
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        PyObject *failed = NULL, *check = NULL;
        if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) < 1 || PyBytes_GET_SIZE(key) > key_max)
            failed = key, check = check_key;
        else if (value != Py_None && (!PyBytes_Check(value) || PyBytes_GET_SIZE(value) > value_max))
            failed = value, check = check_value;
        if (failed != NULL) {
            PyObject *outcome = PyObject_CallOneArg(check, failed);
            Py_XDECREF(outcome);
            if (outcome != NULL)
                PyErr_SetString(PyExc_SystemError, "collect: a check passed what it refused");
            paired++;
            goto done;
        }
    }
    for (; changes < count; changes++) {
        changed[changes].value = PyTuple_GET_ITEM(pairs[changes], 1);
        if (digest_into(ctx, md, PyTuple_GET_ITEM(pairs[changes], 0), hs,
                        &changed[changes].key_hash) < 0)
            goto done;
    }
    qsort(changed, (size_t)changes, sizeof(Changed), compare_changed);
    for (Py_ssize_t i = 0; i < changes; i++) {
        if (i > 0 && compare_changed(&changed[i - 1], &changed[i]) == 0) {
            PyErr_SetString(state_error, "a key changes twice in one version");
            goto done;
        }
        PyObject *value = changed[i].value, *value_hash = Py_None;
        if (value == Py_None) Py_INCREF(value_hash);
        else if (digest_into(ctx, md, value, hs, &value_hash) < 0) goto done;
        PyObject *entry = PyTuple_Pack(2, changed[i].key_hash, value);
        PyObject *change = PyTuple_Pack(2, changed[i].key_hash, value_hash);
        Py_DECREF(value_hash);
        int failed = entry == NULL || change == NULL || PyList_Append(values, entry) < 0 ||
                     PyList_Append(tree, change) < 0;
        Py_XDECREF(entry);
        Py_XDECREF(change);
        if (failed) goto done;
    }
    result = PyTuple_Pack(2, values, tree);
done:
    for (Py_ssize_t i = 0; i < changes; i++) Py_DECREF(changed[i].key_hash);
    for (Py_ssize_t i = 0; i < paired; i++) Py_DECREF(pairs[i]);
    PyMem_Free(pairs);
    PyMem_Free(changed);
    if (ctx != NULL) EVP_MD_CTX_free(ctx);
    if (md != NULL) free_md(md);
    Py_XDECREF(values);
    Py_XDECREF(tree);
    Py_DECREF(items);
    return result;
#else
    (void)items_in, (void)digest_name, (void)key_max, (void)value_max, (void)check_key;
    (void)check_value, (void)state_error;
    PyErr_SetString(PyExc_ValueError, "this build of _treecore has no OpenSSL digests");
    return NULL;
#endif
}

PyDoc_STRVAR(fresh_entries_doc,
             "fresh_entries(version, values)\n"
             "--\n\n"
             "values.py's merge, its first step: [(be64(version) + key hash, 0x00 if value is\n"
             "None else 0x01 + value) for key hash, value in values]. TypeError for a pair\n"
             "that is not (bytes, bytes or None).");

static PyObject *fresh_entries(PyObject *module, PyObject *args) {
    unsigned long long version;
    PyObject *values_in;
    (void)module;
    if (!PyArg_ParseTuple(args, "KO:fresh_entries", &version, &values_in)) return NULL;
    PyObject *values = PySequence_Tuple(values_in);
    if (values == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(values);
    PyObject *result = PyList_New(count);
    for (Py_ssize_t i = 0; result != NULL && i < count; i++) {
        PyObject *pair = PyTuple_GET_ITEM(values, i), *key = NULL, *entry = NULL;
        PyObject *key_hash, *value;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyBytes_Check(key_hash = PyTuple_GET_ITEM(pair, 0)) ||
            ((value = PyTuple_GET_ITEM(pair, 1)) != Py_None && !PyBytes_Check(value))) {
            PyErr_SetString(PyExc_TypeError, "fresh_entries: (key hash, value or None) pairs");
            Py_CLEAR(result);
            break;
        }
        key = PyBytes_FromStringAndSize(NULL, 8 + PyBytes_GET_SIZE(key_hash));
        if (key != NULL) {
            unsigned char *out = (unsigned char *)PyBytes_AS_STRING(key);
            put_be64(out, version);
            memcpy(out + 8, PyBytes_AS_STRING(key_hash), (size_t)PyBytes_GET_SIZE(key_hash));
            entry = fresh_entry(value);
        }
        PyObject *item = entry == NULL ? NULL : PyTuple_Pack(2, key, entry);
        Py_XDECREF(key);
        Py_XDECREF(entry);
        if (item == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, item);
    }
    Py_DECREF(values);
    return result;
}

PyDoc_STRVAR(merge_newest_doc,
             "merge_newest(runs, offset)\n"
             "--\n\n"
             "values.py's merge, its middle step: runs are lists of (fresh key, entry), oldest\n"
             "run first, each key's hash its bytes from `offset` on. For each key hash, its\n"
             "entry in the newest run that has one; returns (puts, deletes, bad), sorted by key\n"
             "hash: (key hash, value) of the entries 0x01 + value, the key hashes of the\n"
             "entries 0x00, and (key hash, entry) of the first other entry, or None.");

/* A private tuple of private tuples of `lists` (a sequence of sequences), and the number
 * of their items in `total`: what the caller points into stays alive whatever code runs. */
static PyObject *nested_tuples(PyObject *lists, Py_ssize_t *total) {
    PyObject *outer = PySequence_Tuple(lists);
    if (outer == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(outer);
    PyObject *copies = PyTuple_New(count);
    *total = 0;
    for (Py_ssize_t i = 0; copies != NULL && i < count; i++) {
        PyObject *inner = PySequence_Tuple(PyTuple_GET_ITEM(outer, i));
        if (inner == NULL) {
            Py_CLEAR(copies);
            break;
        }
        PyTuple_SET_ITEM(copies, i, inner);
        *total += PyTuple_GET_SIZE(inner);
    }
    Py_DECREF(outer);
    return copies;
}

/* Bytes compared as Python compares them: the common part, then the shorter first. */
typedef struct {
    const char *data;
    Py_ssize_t length;
} Suffix;

static int compare_suffix(const void *a, const void *b) {
    const Suffix *first = a, *second = b;
    Py_ssize_t length = first->length < second->length ? first->length : second->length;
    int order = memcmp(first->data, second->data, (size_t)length);
    if (order != 0) return order;
    return first->length < second->length ? -1 : first->length > second->length;
}

typedef struct {
    Suffix key_hash;  /* its bytes within the fresh key */
    Py_ssize_t order; /* runs in order, then items: later is newer */
    PyObject *entry;  /* borrowed from the private tuples */
} Fresh;

static int compare_fresh(const void *a, const void *b) {
    const Fresh *first = a, *second = b;
    int order = compare_suffix(&first->key_hash, &second->key_hash);
    if (order != 0) return order;
    return first->order < second->order ? -1 : first->order > second->order;
}

static PyObject *merge_newest(PyObject *module, PyObject *args) {
    PyObject *runs_in;
    Py_ssize_t offset;
    (void)module;
    if (!PyArg_ParseTuple(args, "On:merge_newest", &runs_in, &offset)) return NULL;
    if (offset < 0) {
        PyErr_SetString(PyExc_ValueError, "merge_newest: offset must be >= 0");
        return NULL;
    }
    Py_ssize_t total;
    PyObject *copies = nested_tuples(runs_in, &total);
    if (copies == NULL) return NULL;
    Py_ssize_t run_count = PyTuple_GET_SIZE(copies);
    PyObject *puts = PyList_New(0), *deletes = PyList_New(0), *bad = NULL, *result = NULL;
    Fresh *all = NULL;
    if (puts == NULL || deletes == NULL) goto done;
    all = PyMem_New(Fresh, (size_t)(total ? total : 1));
    if (all == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t n = 0;
    for (Py_ssize_t r = 0; r < run_count; r++) {
        PyObject *run = PyTuple_GET_ITEM(copies, r);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(run); i++, n++) {
            PyObject *item = PyTuple_GET_ITEM(run, i), *key, *entry;
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
                !PyBytes_Check(key = PyTuple_GET_ITEM(item, 0)) ||
                !PyBytes_Check(entry = PyTuple_GET_ITEM(item, 1)) ||
                PyBytes_GET_SIZE(key) <= offset) {
                PyErr_SetString(PyExc_TypeError,
                                "merge_newest: runs of (key longer than offset, entry) bytes");
                goto done;
            }
            all[n].key_hash.data = PyBytes_AS_STRING(key) + offset;
            all[n].key_hash.length = PyBytes_GET_SIZE(key) - offset;
            all[n].order = n;
            all[n].entry = entry;
        }
    }
    qsort(all, (size_t)total, sizeof(Fresh), compare_fresh);
    for (Py_ssize_t i = 0; i < total; i++) {
        if (i + 1 < total && compare_suffix(&all[i + 1].key_hash, &all[i].key_hash) == 0)
            continue; /* a newer entry of the same key follows */
        PyObject *entry = all[i].entry;
        const char *raw = PyBytes_AS_STRING(entry);
        Py_ssize_t size = PyBytes_GET_SIZE(entry);
        PyObject *key_hash = PyBytes_FromStringAndSize(all[i].key_hash.data, all[i].key_hash.length);
        if (key_hash == NULL) goto done;
        int failed;
        if (size >= 1 && raw[0] == 1) {
            PyObject *value = PyBytes_FromStringAndSize(raw + 1, size - 1);
            PyObject *pair = value == NULL ? NULL : PyTuple_Pack(2, key_hash, value);
            failed = pair == NULL || PyList_Append(puts, pair) < 0;
            Py_XDECREF(value);
            Py_XDECREF(pair);
        } else if (size == 1 && raw[0] == 0) {
            failed = PyList_Append(deletes, key_hash) < 0;
        } else {
            failed = bad == NULL && (bad = PyTuple_Pack(2, key_hash, entry)) == NULL;
        }
        Py_DECREF(key_hash);
        if (failed) goto done;
    }
    result = PyTuple_Pack(3, puts, deletes, bad == NULL ? Py_None : bad);
done:
    PyMem_Free(all);
    Py_XDECREF(bad);
    Py_XDECREF(puts);
    Py_XDECREF(deletes);
    Py_DECREF(copies);
    return result;
}

PyDoc_STRVAR(count_prefixes_doc,
             "count_prefixes(keys, length)\n"
             "--\n\n"
             "collections.Counter(key[:length] for key in keys), as a dict; TypeError for a key\n"
             "that is not bytes of at least `length` bytes.");

static PyObject *count_prefixes(PyObject *module, PyObject *args) {
    PyObject *keys_in;
    Py_ssize_t length;
    (void)module;
    if (!PyArg_ParseTuple(args, "On:count_prefixes", &keys_in, &length)) return NULL;
    PyObject *keys = PySequence_Tuple(keys_in);
    if (keys == NULL) return NULL;
    PyObject *counts = PyDict_New();
    const char *last = NULL; /* neighbouring keys often share a prefix: counted at once */
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; counts != NULL && i <= PyTuple_GET_SIZE(keys); i++) {
        PyObject *key = i < PyTuple_GET_SIZE(keys) ? PyTuple_GET_ITEM(keys, i) : NULL;
        if (key != NULL && (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) < length)) {
            PyErr_SetString(PyExc_TypeError, "count_prefixes: keys must be long enough bytes");
            Py_CLEAR(counts);
            break;
        }
        if (key != NULL && last != NULL && memcmp(PyBytes_AS_STRING(key), last, (size_t)length) == 0) {
            run++;
            continue;
        }
        if (last != NULL) { /* the run of `last` ends: add it */
            PyObject *prefix = PyBytes_FromStringAndSize(last, length);
            PyObject *before = prefix == NULL ? NULL : PyDict_GetItemWithError(counts, prefix);
            PyObject *total = NULL;
            if (prefix != NULL && !PyErr_Occurred()) {
                Py_ssize_t sum = run;
                if (before != NULL) sum += PyLong_AsSsize_t(before);
                total = PyErr_Occurred() ? NULL : PyLong_FromSsize_t(sum);
            }
            int failed = total == NULL || PyDict_SetItem(counts, prefix, total) < 0;
            Py_XDECREF(prefix);
            Py_XDECREF(total);
            if (failed) {
                Py_CLEAR(counts);
                break;
            }
        }
        if (key != NULL) {
            last = PyBytes_AS_STRING(key);
            run = 1;
        }
    }
    Py_DECREF(keys);
    return counts;
}

PyDoc_STRVAR(sorted_suffixes_doc,
             "sorted_suffixes(key_lists, offset)\n"
             "--\n\n"
             "sorted({key[offset:] for keys in key_lists for key in keys}); TypeError for a key\n"
             "that is not bytes of at least `offset` bytes.");

static PyObject *sorted_suffixes(PyObject *module, PyObject *args) {
    PyObject *lists_in;
    Py_ssize_t offset;
    (void)module;
    if (!PyArg_ParseTuple(args, "On:sorted_suffixes", &lists_in, &offset)) return NULL;
    Py_ssize_t total;
    PyObject *copies = nested_tuples(lists_in, &total), *result = NULL;
    if (copies == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(copies);
    Suffix *all = PyMem_New(Suffix, (size_t)(total ? total : 1));
    if (all == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *keys = PyTuple_GET_ITEM(copies, i);
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(keys); j++, n++) {
            PyObject *key = PyTuple_GET_ITEM(keys, j);
            if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) < offset) {
                PyErr_SetString(PyExc_TypeError, "sorted_suffixes: keys must be long enough bytes");
                goto done;
            }
            all[n].data = PyBytes_AS_STRING(key) + offset;
            all[n].length = PyBytes_GET_SIZE(key) - offset;
        }
    }
    qsort(all, (size_t)total, sizeof(Suffix), compare_suffix);
    result = PyList_New(0);
    for (Py_ssize_t i = 0; result != NULL && i < total; i++) {
        if (i > 0 && compare_suffix(&all[i - 1], &all[i]) == 0) continue;
        PyObject *suffix = PyBytes_FromStringAndSize(all[i].data, all[i].length);
        if (suffix == NULL || PyList_Append(result, suffix) < 0) Py_CLEAR(result);
        Py_XDECREF(suffix);
    }
done:
    PyMem_Free(all);
    Py_DECREF(copies);
    return result;
}

static PyMethodDef methods[] = {
    {"apply", apply, METH_VARARGS, apply_doc},
    {"digest", digest, METH_VARARGS, digest_doc},
    {"digests", digests, METH_VARARGS, digests_doc},
    {"collect", collect, METH_VARARGS, collect_doc},
    {"fresh_entries", fresh_entries, METH_VARARGS, fresh_entries_doc},
    {"merge_newest", merge_newest, METH_VARARGS, merge_newest_doc},
    {"count_prefixes", count_prefixes, METH_VARARGS, count_prefixes_doc},
    {"sorted_suffixes", sorted_suffixes, METH_VARARGS, sorted_suffixes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef treecore_module = {
    PyModuleDef_HEAD_INIT,
    "_treecore",
    "The state tree update of one version, and the costliest loops of preparing and writing\n"
    "it, in C (the Python steps are the reference: see _treecore.c).",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__treecore(void) {
    return PyModuleDef_Init(&treecore_module);
}

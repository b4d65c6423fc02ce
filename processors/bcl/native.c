#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 8 x 8 bytes: rows[k] byte i → rows[i] byte k (a transposition in registers). */
static inline void transpose8(uint64_t r[8]) {
    uint64_t t;
    for (int k = 0; k < 8; k += 2) {
        t = ((r[k] >> 8) ^ r[k + 1]) & 0x00FF00FF00FF00FFULL;
        r[k + 1] ^= t; r[k] ^= t << 8;
    }
    for (int k = 0; k < 8; k += 4) for (int j = k; j < k + 2; j++) {
        t = ((r[j] >> 16) ^ r[j + 2]) & 0x0000FFFF0000FFFFULL;
        r[j + 2] ^= t; r[j] ^= t << 16;
    }
    for (int j = 0; j < 4; j++) {
        t = ((r[j] >> 32) ^ r[j + 4]) & 0x00000000FFFFFFFFULL;
        r[j + 4] ^= t; r[j] ^= t << 32;
    }
}

/* Eight clusters (from start) of cycle c as the 8 bytes of one integer. */
static inline __attribute__((always_inline)) uint64_t gather8(
    const uint8_t *const *sources, const uint8_t *tables, const uint16_t *pairs,
    const int64_t *table_of, int mode, int64_t c, int64_t start)
{
    const uint8_t *src = sources[c];
    uint64_t v = 0;
    if (mode == 2) {  /* packed: a byte's two nibbles through the cycle's pair table */
        const uint16_t *t = pairs + table_of[c] * 256;
        const uint8_t *at = src + (start >> 1);
        for (int b = 0; b < 4; b++) v |= (uint64_t)t[at[b]] << (16 * b);
    } else if (mode == 1) {  /* bytes through the cycle's table */
        const uint8_t *t = tables + table_of[c] * 256;
        for (int b = 0; b < 8; b++) v |= (uint64_t)t[src[start + b]] << (8 * b);
    } else {  /* bytes as they are */
        for (int b = 0; b < 8; b++) v |= (uint64_t)src[start + b] << (8 * b);
    }
    return v;
}

static inline __attribute__((always_inline)) void blocks8(
    const uint8_t *const *sources, const uint8_t *tables, const uint16_t *pairs,
    const int64_t *table_of, int mode, int64_t whole, int64_t wide, int64_t cycles,
    uint8_t *out)
{
    /* Blocks of BLOCK clusters, so each cycle's source is visited once per block. */
    enum { BLOCK = 64 };
    for (int64_t first = 0; first < whole; first += BLOCK) {
        int64_t last = first + BLOCK < whole ? first + BLOCK : whole;
        for (int64_t c0 = 0; c0 < wide; c0 += 8) {
            for (int64_t start = first; start < last; start += 8) {
                uint64_t r[8];
                for (int k = 0; k < 8; k++)
                    r[k] = gather8(sources, tables, pairs, table_of, mode, c0 + k, start);
                transpose8(r);
                for (int i = 0; i < 8; i++) {
                    uint8_t *row = out + (start + i) * cycles + c0;
                    for (int b = 0; b < 8; b++) row[b] = (uint8_t)(r[i] >> (8 * b));
                }
            }
        }
    }
}

/* sources[c]: cycle c's calls for the tile; packed: two clusters a byte, low nibble
   first, each nibble mapped through table table_of[c] (tables[table_of[c] * 256 +
   nibble]; pairs holds the same as one uint16 per byte, low nibble's call first);
   else one byte a cluster, mapped through its table (or kept when tables is NULL).
   Eight clusters by eight cycles at a time: gathered as 8 integers, transposed in
   registers, stored as 8 bytes per cluster. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_SSSE3_PATH 1

/* 16 clusters by 16 cycles at a time. CBCL (packed): each cycle's 8 packed bytes
   split into 16 nibbles and looked up in its 16-entry table with one shuffle; BCL
   (tables NULL): each cycle's 16 bytes as they are. The 16 x 16 bytes are then
   transposed with four rounds of byte interleaving. */
__attribute__((target("ssse3"), always_inline))
static inline void blocks16(
    const uint8_t *const *sources, const uint8_t *tables, const int64_t *table_of,
    const int packed, int64_t whole, int64_t wide, int64_t cycles, uint8_t *out)
{
    enum { BLOCK = 64 };
    const __m128i low = _mm_set1_epi8(0x0F);
    for (int64_t first = 0; first < whole; first += BLOCK) {
        int64_t last = first + BLOCK < whole ? first + BLOCK : whole;
        for (int64_t c0 = 0; c0 < wide; c0 += 16) {
            __m128i table[16];
            for (int k = 0; k < 16 && packed; k++)
                table[k] = _mm_loadu_si128((const __m128i *)(tables + table_of[c0 + k] * 256));
            for (int64_t start = first; start < last; start += 16) {
                __m128i r[16], t[16];
                for (int k = 0; k < 16; k++) {
                    const uint8_t *src = sources[c0 + k];
                    if (packed) {
                        __m128i two = _mm_loadl_epi64((const __m128i *)(src + (start >> 1)));
                        __m128i nibbles = _mm_unpacklo_epi8(
                            _mm_and_si128(two, low), _mm_and_si128(_mm_srli_epi16(two, 4), low));
                        r[k] = _mm_shuffle_epi8(table[k], nibbles);
                    } else {
                        r[k] = _mm_loadu_si128((const __m128i *)(src + start));
                    }
                }
                for (int round = 0; round < 4; round++) {
                    for (int k = 0; k < 8; k++) {
                        t[2 * k] = _mm_unpacklo_epi8(r[k], r[k + 8]);
                        t[2 * k + 1] = _mm_unpackhi_epi8(r[k], r[k + 8]);
                    }
                    for (int k = 0; k < 16; k++) r[k] = t[k];
                }
                for (int i = 0; i < 16; i++)
                    _mm_storeu_si128((__m128i *)(out + (start + i) * cycles + c0), r[i]);
            }
        }
    }
}

__attribute__((target("ssse3")))
static void packed16(
    const uint8_t *const *sources, const uint8_t *tables, const int64_t *table_of,
    int64_t whole, int64_t wide, int64_t cycles, uint8_t *out)
{
    blocks16(sources, tables, table_of, 1, whole, wide, cycles, out);
}

__attribute__((target("ssse3")))
static void plain16(
    const uint8_t *const *sources, int64_t whole, int64_t wide, int64_t cycles, uint8_t *out)
{
    blocks16(sources, NULL, NULL, 0, whole, wide, cycles, out);
}
#endif

void cluster_major(
    const uint8_t *const *sources, const uint8_t *tables, const uint16_t *pairs,
    const int64_t *table_of, int64_t packed, int64_t n, int64_t cycles, uint8_t *out)
{
    int64_t whole = n & ~(int64_t)7, wide = cycles & ~(int64_t)7;
#ifdef HAVE_SSSE3_PATH
    __builtin_cpu_init();
    if ((packed || !tables) && __builtin_cpu_supports("ssse3")) {
        whole = n & ~(int64_t)15;
        wide = cycles & ~(int64_t)15;
        if (packed) packed16(sources, tables, table_of, whole, wide, cycles, out);
        else plain16(sources, whole, wide, cycles, out);
    } else
#endif
    if (packed) blocks8(sources, tables, pairs, table_of, 2, whole, wide, cycles, out);
    else if (tables) blocks8(sources, tables, pairs, table_of, 1, whole, wide, cycles, out);
    else blocks8(sources, tables, pairs, table_of, 0, whole, wide, cycles, out);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t c = i < whole ? wide : 0; c < cycles; c++) {
            const uint8_t *src = sources[c];
            uint8_t v = packed ? (uint8_t)((i & 1) ? src[i >> 1] >> 4 : src[i >> 1] & 15)
                               : src[i];
            out[i * cycles + c] = tables ? tables[table_of[c] * 256 + v] : v;
        }
    }
}

/* cluster_major for clusters first..first+n-1 (first even when packed). */
int64_t cluster_range(
    const uint8_t *const *sources, const uint8_t *tables, const uint16_t *pairs,
    const int64_t *table_of, int64_t packed, int64_t first, int64_t n, int64_t cycles,
    uint8_t *out)
{
    const uint8_t **shifted = malloc(sizeof(*shifted) * (size_t)(cycles ? cycles : 1));
    if (!shifted) return -1;
    for (int64_t c = 0; c < cycles; c++) shifted[c] = sources[c] + (packed ? first / 2 : first);
    cluster_major(shifted, tables, pairs, table_of, packed, n, cycles, out);
    free(shifted);
    return 0;
}

static inline int write_number(uint8_t *p, int64_t value) {
    char digits[24];
    int count = 0;
    if (value < 0) value = 0;
    do { digits[count++] = (char)('0' + value % 10); value /= 10; } while (value);
    for (int i = 0; i < count; i++) p[i] = (uint8_t)digits[count - 1 - i];
    return count;
}

/* A BCL byte's base letter: bits 0-1 A, C, G, T; 0 is a no-call (N). Arithmetic
   rather than a table so the loop vectorises. */
static inline void write_bases(uint8_t *restrict p, const uint8_t *restrict s, int64_t len) {
    for (int64_t j = 0; j < len; j++) {
        uint8_t c = s[j], b = c & 3;
        uint8_t letter = (uint8_t)(65 + (b == 1) * 2 + (b == 2) * 6 + (b == 3) * 19);
        p[j] = c ? letter : (uint8_t)'N';
    }
}

/* Phred+33 of a BCL byte (bits 2-7; a no-call is Q2), with the Q30 count and sum. */
static inline void write_qualities(
    uint8_t *restrict p, const uint8_t *restrict s, int64_t len, int64_t *good, int64_t *sum)
{
    uint32_t g = 0, t = 0;
    for (int64_t j = 0; j < len; j++) {
        uint8_t c = s[j];
        uint8_t q = c ? (uint8_t)(c >> 2) : (uint8_t)2;
        p[j] = (uint8_t)(q + 33);
        t += q;
        g += q >= 30;
    }
    *good = g;
    *sum = t;
}

/* FASTQ records for `outputs` reads of the same clusters at once, so each cluster's
   row (rows[i], or i) is fetched from memory once and the tile is read in its own
   order. Output k takes bases [seq_starts[k], +seq_lens[k]) of the row after a name
   ending in middles[k] (" <read>:"). Record i goes to outs[k] at cursors[k][g], g =
   group[i] (its sample), which it advances: each group's records end up together,
   in the tile's order. Its Q30 bases and quality sum go to q30[k][i], qsum[k][i].
   Returns -1, writing nothing more, if a record would pass limits[k][g]. */
int64_t fastq_records(
    const uint8_t *calls, const int64_t *rows, int64_t n, int64_t width,
    const int64_t *group,
    const uint8_t *prefix, int64_t prefix_len,
    const int64_t *x, const int64_t *y, const uint8_t *flag,
    const int64_t *index_starts, const int64_t *index_lens, int64_t index_count,
    int64_t outputs, const int64_t *seq_starts, const int64_t *seq_lens,
    const uint8_t *const *middles, const int64_t *middle_lens,
    uint8_t *const *outs, int64_t *const *cursors, const int64_t *const *limits,
    int64_t *const *q30, int64_t *const *qsum)
{
    uint8_t name[160], tail[160];
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *row = calls + (rows ? rows[i] : i) * width;
        int64_t g = group ? group[i] : 0;
        /* "<prefix><x>:<y>" and "<flag>:0:<index>\n", shared by every output */
        uint8_t *p = name;
        memcpy(p, prefix, (size_t)prefix_len); p += prefix_len;
        p += write_number(p, x[i]);
        *p++ = ':';
        p += write_number(p, y[i]);
        int64_t name_len = p - name;
        p = tail;
        *p++ = flag[i]; *p++ = ':'; *p++ = '0'; *p++ = ':';
        for (int64_t k = 0; k < index_count; k++) {
            if (k) *p++ = '+';
            write_bases(p, row + index_starts[k], index_lens[k]);
            p += index_lens[k];
        }
        *p++ = '\n';
        int64_t tail_len = p - tail;
        for (int64_t k = 0; k < outputs; k++) {
            int64_t len = seq_lens[k];
            int64_t size = name_len + middle_lens[k] + tail_len + 2 * len + 4;
            if (cursors[k][g] + size > limits[k][g]) return -1;
            uint8_t *o = outs[k] + cursors[k][g];
            memcpy(o, name, (size_t)name_len); o += name_len;
            memcpy(o, middles[k], (size_t)middle_lens[k]); o += middle_lens[k];
            memcpy(o, tail, (size_t)tail_len); o += tail_len;
            const uint8_t *seq = row + seq_starts[k];
            write_bases(o, seq, len);
            o += len;
            *o++ = '\n'; *o++ = '+'; *o++ = '\n';
            write_qualities(o, seq, len, &q30[k][i], &qsum[k][i]);
            o += len;
            *o++ = '\n';
            cursors[k][g] += size;
        }
    }
    return 0;
}

/* Self-contained tests of sono_proto (no framework). Prints "c-codec: N passed, M failed". */
#include "sono_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned g_passed;
static unsigned g_failed;

static void check_(int ok, const char *what, const char *file, int line)
{
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s:%d: %s\n", file, line, what);
    }
}
#define CHECK(cond) check_((cond) ? 1 : 0, #cond, __FILE__, __LINE__)
#define CHECK_MSG(cond, ...)                                  \
    do {                                                      \
        if (cond) {                                           \
            g_passed++;                                       \
        } else {                                              \
            g_failed++;                                       \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);       \
            printf(__VA_ARGS__);                              \
            printf("\n");                                     \
        }                                                     \
    } while (0)

/* ---- helpers ----------------------------------------------------------------------- */

static size_t from_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2u;
    size_t i;
    if (n > cap) {
        printf("FAIL hex string too long for buffer\n");
        g_failed++;
        return 0;
    }
    for (i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(&hex[2u * i], "%2x", &v) != 1) {
            printf("FAIL bad hex\n");
            g_failed++;
            return 0;
        }
        out[i] = (uint8_t)v;
    }
    return n;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
    size_t i;
    for (i = 0; i < n; i++) {
        sprintf(&out[2u * i], "%02x", b[i]);
    }
    out[2u * n] = '\0';
}

static int feq(float a, float b) /* bit-exact */
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int msg_equal(const sp_message *a, const sp_message *b)
{
    unsigned i;
    if (a->type != b->type || a->seq != b->seq || a->timestamp_us != b->timestamp_us) {
        return 0;
    }
    switch (a->type) {
    case SP_MSG_HELLO: {
        const sp_hello *x = &a->u.hello, *y = &b->u.hello;
        return x->kind == y->kind && x->protocol_version == y->protocol_version && x->fw_major == y->fw_major &&
               x->fw_minor == y->fw_minor && x->fw_patch == y->fw_patch &&
               memcmp(x->serial, y->serial, sizeof x->serial) == 0 && x->capabilities == y->capabilities &&
               x->joint_count == y->joint_count && x->sample_rate_hz == y->sample_rate_hz &&
               x->heartbeat_period_ms == y->heartbeat_period_ms;
    }
    case SP_MSG_HEARTBEAT: {
        const sp_heartbeat *x = &a->u.heartbeat, *y = &b->u.heartbeat;
        return x->state == y->state && x->reserved == y->reserved && x->rx_crc_errors == y->rx_crc_errors &&
               x->rx_seq_gaps == y->rx_seq_gaps;
    }
    case SP_MSG_FT_SAMPLE: {
        const sp_ft_sample *x = &a->u.ft_sample, *y = &b->u.ft_sample;
        return feq(x->fx, y->fx) && feq(x->fy, y->fy) && feq(x->fz, y->fz) && feq(x->tx, y->tx) &&
               feq(x->ty, y->ty) && feq(x->tz, y->tz) && x->status == y->status;
    }
    case SP_MSG_JOINT_STATE: {
        const sp_joint_state *x = &a->u.joint_state, *y = &b->u.joint_state;
        if (x->joint_count != y->joint_count || x->status != y->status || x->joint_count > SP_MAX_JOINTS) {
            return 0;
        }
        for (i = 0; i < x->joint_count; i++) {
            if (!feq(x->joints[i].position, y->joints[i].position) ||
                !feq(x->joints[i].velocity, y->joints[i].velocity) ||
                !feq(x->joints[i].current, y->joints[i].current) || x->joints[i].flags != y->joints[i].flags) {
                return 0;
            }
        }
        return 1;
    }
    case SP_MSG_ESTOP_STATE:
        return a->u.estop_state.engaged == b->u.estop_state.engaged &&
               a->u.estop_state.source == b->u.estop_state.source;
    case SP_MSG_FAULT_REPORT: {
        const sp_fault_report *x = &a->u.fault_report, *y = &b->u.fault_report;
        return x->code == y->code && x->axis == y->axis && x->severity == y->severity &&
               feq(x->value, y->value) && feq(x->limit, y->limit);
    }
    case SP_MSG_ACK:
        return a->u.ack.acked_seq == b->u.ack.acked_seq && a->u.ack.acked_type == b->u.ack.acked_type;
    case SP_MSG_NACK:
        return a->u.nack.acked_seq == b->u.nack.acked_seq && a->u.nack.acked_type == b->u.nack.acked_type &&
               a->u.nack.error == b->u.nack.error;
    case SP_MSG_JOINT_COMMAND: {
        const sp_joint_command *x = &a->u.joint_command, *y = &b->u.joint_command;
        if (x->joint_count != y->joint_count || x->joint_count > SP_MAX_JOINTS) {
            return 0;
        }
        for (i = 0; i < x->joint_count; i++) {
            if (!feq(x->joints[i].position, y->joints[i].position) ||
                !feq(x->joints[i].max_velocity, y->joints[i].max_velocity) ||
                !feq(x->joints[i].max_current, y->joints[i].max_current)) {
                return 0;
            }
        }
        return 1;
    }
    case SP_MSG_SET_DRIVES:
        return a->u.set_drives.enable == b->u.set_drives.enable;
    case SP_MSG_STOP:
        return a->u.stop.category == b->u.stop.category;
    default:
        return 1; /* GET_INFO, CLEAR_FAULTS, TARE */
    }
}

static uint32_t g_rng = 0x2545F491u;
static uint32_t xorshift32(void)
{
    uint32_t x = g_rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    g_rng = x;
    return x;
}

/* ---- golden vectors ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    sp_message msg;
    const char *hex;
} frame_vector;

static const frame_vector k_frames[] = {
#include "../vectors/frames.inc"
};

#define MAX_EXPECT 8
typedef struct {
    sp_status status;
    uint8_t type;
    uint16_t seq;
} outcome;

typedef struct {
    const char *name;
    const char *hex;
    size_t expect_count;
    outcome expect[MAX_EXPECT];
} invalid_vector;

static const invalid_vector k_invalid[] = {
#include "../vectors/invalid.inc"
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- tests ----------------------------------------------------------------------------- */

static void test_crc(void)
{
    static const uint8_t check[] = "123456789";
    uint32_t c;
    CHECK(sp_crc32c(check, 9) == 0xE3069283u);
    c = sp_crc32c_update(SP_CRC32C_INIT, check, 4);
    c = sp_crc32c_update(c, check + 4, 5);
    CHECK((c ^ SP_CRC32C_XOROUT) == 0xE3069283u);
    CHECK(sp_crc32c(NULL, 0) == 0u);
}

static void cobs_case(const char *name, const uint8_t *in, size_t len, size_t want_len, const uint8_t *want_prefix,
                      size_t prefix_len)
{
    static uint8_t enc[1024];
    static uint8_t dec[1024];
    size_t n = 0, m = 0, i;
    int zero = 0;
    sp_status st = sp_cobs_encode(in, len, enc, sizeof enc, &n);
    CHECK_MSG(st == SP_OK && n == want_len, "%s: encode status %s len %zu want %zu", name, sp_status_name(st), n,
              want_len);
    CHECK_MSG(n <= SP_COBS_MAX_ENCODED(len), "%s: encoded length over the bound", name);
    for (i = 0; i < n; i++) {
        zero |= enc[i] == 0u;
    }
    CHECK_MSG(!zero, "%s: encoded output contains 0x00", name);
    CHECK_MSG(prefix_len == 0 || memcmp(enc, want_prefix, prefix_len) == 0, "%s: encoded prefix", name);
    st = sp_cobs_decode(enc, n, dec, sizeof dec, &m);
    CHECK_MSG(st == SP_OK && m == len && (len == 0 || memcmp(dec, in, len) == 0), "%s: round trip", name);
    /* in place */
    st = sp_cobs_decode(enc, n, enc, sizeof enc, &m);
    CHECK_MSG(st == SP_OK && m == len && (len == 0 || memcmp(enc, in, len) == 0), "%s: in-place round trip", name);
}

static void test_cobs(void)
{
    static uint8_t buf[600];
    static uint8_t out[700];
    size_t n, i, cap;
    sp_status st;

    {
        static const uint8_t w[] = {0x01};
        cobs_case("empty", buf, 0, 1, w, 1);
    }
    {
        static const uint8_t z[] = {0x00};
        static const uint8_t w[] = {0x01, 0x01};
        cobs_case("single zero", z, 1, 2, w, 2);
    }
    memset(buf, 0x5A, sizeof buf);
    {
        static const uint8_t w[] = {0xFE};
        cobs_case("253 non-zero", buf, 253, 254, w, 1);
    }
    {
        static const uint8_t w[] = {0xFF};
        cobs_case("254 non-zero", buf, 254, 255, w, 1); /* no trailing 0x01 (PyPI cobs) */
    }
    cobs_case("255 non-zero", buf, 255, 257, NULL, 0);
    st = sp_cobs_encode(buf, 255, out, sizeof out, &n);
    CHECK(st == SP_OK && out[0] == 0xFF && out[255] == 0x02 && out[256] == 0x5A);
    cobs_case("508 non-zero", buf, 508, 510, NULL, 0);
    buf[254] = 0;
    st = sp_cobs_encode(buf, 255, out, sizeof out, &n); /* 254 non-zero then 00: FF ... 01 01 */
    CHECK(st == SP_OK && n == 257 && out[0] == 0xFF && out[255] == 0x01 && out[256] == 0x01);
    cobs_case("254 non-zero then zero", buf, 255, 257, NULL, 0);
    memset(buf, 0, sizeof buf);
    {
        static const uint8_t w[] = {0x01, 0x01, 0x01};
        cobs_case("300 zeros", buf, 300, 301, w, 3);
    }

    /* capacity: every too-small cap fails without writing past it */
    memset(buf, 0x11, sizeof buf);
    buf[10] = 0; /* 10 bytes, then a 289-byte run: 11 + 255 + 36 = 302 encoded */
    for (cap = 0; cap < 302; cap++) {
        memset(out, 0xEE, sizeof out);
        st = sp_cobs_encode(buf, 300, out, cap, &n);
        if (st != SP_ERR_BUFFER_TOO_SMALL || out[cap] != 0xEE) {
            break;
        }
    }
    CHECK_MSG(cap == 302, "encode capacity: first success/overrun at cap %zu", cap);
    st = sp_cobs_encode(buf, 300, out, 302, &n);
    CHECK(st == SP_OK && n == 302);
    {
        uint8_t enc[302];
        memcpy(enc, out, 302);
        for (cap = 0; cap < 300; cap++) {
            memset(out, 0xEE, sizeof out);
            st = sp_cobs_decode(enc, 302, out, cap, &n);
            if (st != SP_ERR_BUFFER_TOO_SMALL || out[cap] != 0xEE) {
                break;
            }
        }
        CHECK_MSG(cap == 300, "decode capacity: first success/overrun at cap %zu", cap);
    }

    /* malformed */
    {
        static const uint8_t past_end[] = {0x05, 0x11, 0x22};
        static const uint8_t with_zero[] = {0x03, 0x41, 0x00};
        static const uint8_t zero_code[] = {0x00};
        static const uint8_t ff_short[] = {0xFF, 0x01};
        static const uint8_t ok_one[] = {0x01};
        CHECK(sp_cobs_decode(past_end, 3, out, sizeof out, &n) == SP_ERR_MALFORMED_COBS);
        CHECK(sp_cobs_decode(with_zero, 3, out, sizeof out, &n) == SP_ERR_MALFORMED_COBS);
        CHECK(sp_cobs_decode(zero_code, 1, out, sizeof out, &n) == SP_ERR_MALFORMED_COBS);
        CHECK(sp_cobs_decode(ff_short, 2, out, sizeof out, &n) == SP_ERR_MALFORMED_COBS);
        CHECK(sp_cobs_decode(ok_one, 1, out, sizeof out, &n) == SP_OK && n == 0);
    }

    /* random round trips */
    for (i = 0; i < 2000; i++) {
        size_t len = xorshift32() % 600u, k, m = 0;
        uint32_t zero_odds = xorshift32() % 4u;
        uint8_t dec[600];
        for (k = 0; k < len; k++) {
            uint8_t b = (uint8_t)xorshift32();
            buf[k] = (zero_odds == 0 && (xorshift32() % 8u) == 0) ? 0 : (zero_odds == 1 ? (uint8_t)(b | 1u) : b);
        }
        st = sp_cobs_encode(buf, len, out, SP_COBS_MAX_ENCODED(len), &n);
        if (st != SP_OK || memchr(out, 0, n) != NULL) {
            break;
        }
        st = sp_cobs_decode(out, n, dec, len, &m);
        if (st != SP_OK || m != len || memcmp(dec, buf, len) != 0) {
            break;
        }
    }
    CHECK_MSG(i == 2000, "random COBS round trip failed at iteration %zu", i);
}

static void test_frame_vectors(void)
{
    size_t i, k;
    static sp_receiver rx;
    for (i = 0; i < COUNT(k_frames); i++) {
        const frame_vector *v = &k_frames[i];
        uint8_t want[SP_RX_BUFFER_SIZE + 8];
        uint8_t got[SP_MAX_WIRE_FRAME];
        char hex[2 * SP_MAX_WIRE_FRAME + 1];
        size_t want_len = from_hex(v->hex, want, sizeof want);
        size_t n = 0;
        sp_message m;
        sp_status st = sp_encode(&v->msg, got, sizeof got, &n);
        to_hex(got, st == SP_OK ? n : 0, hex);
        CHECK_MSG(st == SP_OK && n == want_len && memcmp(got, want, n) == 0, "%s: encode gives %s (%s)", v->name, hex,
                  sp_status_name(st));
        CHECK_MSG(want_len >= 2 && want[want_len - 1] == 0, "%s: vector lacks its delimiter", v->name);

        memset(&m, 0xA5, sizeof m);
        st = sp_decode_frame(want, want_len - 1u, &m);
        CHECK_MSG(st == SP_OK && msg_equal(&m, &v->msg), "%s: decode gives %s or other fields", v->name,
                  sp_status_name(st));

        /* through the receiver */
        sp_receiver_init(&rx);
        memset(&m, 0, sizeof m);
        for (k = 0; k < want_len; k++) {
            st = sp_receiver_push(&rx, want[k], &m);
            if (k + 1u < want_len && st != SP_NEED_MORE) {
                break;
            }
        }
        CHECK_MSG(k == want_len && st == SP_OK && msg_equal(&m, &v->msg) && rx.counters.frames_ok == 1,
                  "%s: receiver", v->name);

        /* every too-small output capacity fails cleanly */
        for (k = 0; k < want_len; k++) {
            memset(got, 0xEE, sizeof got);
            st = sp_encode(&v->msg, got, k, &n);
            if (st != SP_ERR_BUFFER_TOO_SMALL || got[k] != 0xEE) {
                break;
            }
        }
        CHECK_MSG(k == want_len, "%s: encode with cap %zu gives %s", v->name, k, sp_status_name(st));
    }
    CHECK(COUNT(k_frames) >= 14);
}

static uint32_t counter_total(const sp_rx_counters *c)
{
    return c->frames_ok + c->oversized + c->malformed_cobs + c->truncated + c->crc_mismatch +
           c->unsupported_version + c->length_mismatch + c->unknown_type + c->invalid_payload;
}

static void test_invalid_vectors(void)
{
    static uint8_t stream[4096];
    static sp_receiver rx;
    size_t i, k;
    for (i = 0; i < COUNT(k_invalid); i++) {
        const invalid_vector *v = &k_invalid[i];
        size_t len = from_hex(v->hex, stream, sizeof stream);
        outcome got[MAX_EXPECT + 4];
        size_t ngot = 0;
        int same;
        sp_message m;
        sp_receiver_init(&rx);
        for (k = 0; k < len; k++) {
            sp_status st = sp_receiver_push(&rx, stream[k], &m);
            if (st == SP_NEED_MORE) {
                continue;
            }
            if (ngot < COUNT(got)) {
                got[ngot].status = st;
                got[ngot].type = st == SP_OK ? m.type : 0u;
                got[ngot].seq = st == SP_OK ? m.seq : 0u;
            }
            ngot++;
        }
        same = ngot == v->expect_count;
        for (k = 0; same && k < ngot; k++) {
            same = got[k].status == v->expect[k].status && got[k].type == v->expect[k].type &&
                   got[k].seq == v->expect[k].seq;
        }
        CHECK_MSG(same, "%s: %zu outcomes (first: %s), expected %zu (first: %s)", v->name, ngot,
                  ngot ? sp_status_name(got[0].status) : "-", v->expect_count,
                  v->expect_count ? sp_status_name(v->expect[0].status) : "-");
        CHECK_MSG(counter_total(&rx.counters) == ngot, "%s: counters", v->name);
    }
    CHECK(COUNT(k_invalid) >= 20);
}

static void test_encode_refusals(void)
{
    uint8_t out[SP_MAX_WIRE_FRAME];
    size_t n;
    sp_message m;
    sp_status st;

    memset(&m, 0, sizeof m);
    m.type = SP_MSG_JOINT_STATE;
    m.u.joint_state.joint_count = 0;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);
    m.u.joint_state.joint_count = 9;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);
    m.u.joint_state.joint_count = 8;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_OK && n <= SP_MAX_WIRE_FRAME);

    memset(&m, 0, sizeof m);
    m.type = SP_MSG_JOINT_COMMAND;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);
    m.u.joint_command.joint_count = 9;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);

    memset(&m, 0, sizeof m);
    m.type = SP_MSG_HELLO;
    m.u.hello.kind = 3;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);
    m.type = SP_MSG_ESTOP_STATE;
    m.u.estop_state.engaged = 2;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);
    m.type = SP_MSG_SET_DRIVES;
    m.u.set_drives.enable = 2;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);
    m.type = 0x7F;
    CHECK(sp_encode(&m, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);
    CHECK(sp_encode(NULL, out, sizeof out, &n) == SP_ERR_INVALID_ARGUMENT);

    /* STOP with an out-of-range category is a valid frame */
    memset(&m, 0, sizeof m);
    m.type = SP_MSG_STOP;
    m.seq = 9;
    m.u.stop.category = 3;
    st = sp_encode(&m, out, sizeof out, &n);
    CHECK(st == SP_OK);
    {
        sp_message d;
        CHECK(sp_decode_frame(out, n - 1u, &d) == SP_OK && d.type == SP_MSG_STOP && d.u.stop.category == 3);
    }

    /* raw encoder: maximal payload, and decode of frames this codec refuses */
    {
        uint8_t payload[SP_MAX_PAYLOAD + 1];
        sp_message d;
        memset(payload, 0, sizeof payload);
        CHECK(sp_encode_raw(0x7F, 1, 2, payload, SP_MAX_PAYLOAD + 1u, out, sizeof out, &n) ==
              SP_ERR_INVALID_ARGUMENT);
        CHECK(sp_encode_raw(0x7F, 1, 2, payload, SP_MAX_PAYLOAD, out, sizeof out, &n) == SP_OK);
        CHECK(n == SP_MAX_DECODED + 2u); /* all zeros: one code byte per byte + 1, + delimiter */
        CHECK(sp_decode_frame(out, n - 1u, &d) == SP_ERR_UNKNOWN_TYPE);
        memset(payload, 0x77, sizeof payload);
        CHECK(sp_encode_raw(0x7F, 0x0101, 0x0101010101010101ull, payload, SP_MAX_PAYLOAD, out, sizeof out, &n) ==
              SP_OK);
        CHECK(n <= SP_MAX_WIRE_FRAME);
        CHECK(sp_decode_frame(out, n - 1u, &d) == SP_ERR_UNKNOWN_TYPE);
    }
    CHECK(SP_MAX_ENCODED == 260u && SP_MAX_WIRE_FRAME == 261u && SP_RX_BUFFER_SIZE == 260u);
    CHECK(sp_decode_frame(out, SP_MAX_ENCODED + 1u, &m) == SP_ERR_OVERSIZED);
    CHECK(sp_decode_frame(out, 0, &m) == SP_ERR_TRUNCATED);
}

static void test_seq_tracker(void)
{
    sp_seq_tracker t;
    uint16_t lost = 99;
    sp_seq_tracker_init(&t);
    CHECK(sp_seq_tracker_update(&t, 65534, SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_FIRST && lost == 0);
    CHECK(sp_seq_tracker_update(&t, 65535, SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_IN_ORDER);
    CHECK(sp_seq_tracker_update(&t, 0, SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_IN_ORDER); /* wrap */
    CHECK(sp_seq_tracker_update(&t, 1, SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_IN_ORDER);
    CHECK(sp_seq_tracker_update(&t, 5, SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_GAP && lost == 3);
    CHECK(t.lost == 3 && t.resets == 0);
    CHECK(sp_seq_tracker_update(&t, 65533, SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_RESET); /* e=6: diff 65527 */
    CHECK(t.resets == 1 && t.expected == 65534);
    CHECK(sp_seq_tracker_update(&t, 2, SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_GAP && lost == 4); /* across wrap */
    CHECK(sp_seq_tracker_update(&t, 2, SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_RESET && lost == 0); /* duplicate */
    CHECK(t.resets == 2 && t.lost == 7);
    /* e = 3: diff 32767 is a gap, 32768 a reset */
    CHECK(sp_seq_tracker_update(&t, (uint16_t)(3u + 32767u), SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_GAP &&
          lost == 32767);
    CHECK(sp_seq_tracker_update(&t, (uint16_t)(32771u + 32768u), SP_MSG_FT_SAMPLE, &lost) == SP_SEQ_RESET);
    /* HELLO resets without counting */
    CHECK(sp_seq_tracker_update(&t, 100, SP_MSG_HELLO, &lost) == SP_SEQ_FIRST && lost == 0);
    CHECK(t.resets == 3 && t.lost == 7 + 32767u && t.expected == 101);
    CHECK(sp_seq_tracker_update(&t, 101, SP_MSG_HEARTBEAT, NULL) == SP_SEQ_IN_ORDER);
    /* saturation */
    t.lost = UINT32_MAX - 1u;
    CHECK(sp_seq_tracker_update(&t, 200, SP_MSG_HEARTBEAT, NULL) == SP_SEQ_GAP && t.lost == UINT32_MAX);
}

/* The receiver sits between canaries; random streams must never touch them, never leave
 * len out of bounds, and must agree with sp_decode_frame on every frame. */
typedef struct {
    uint8_t before[32];
    sp_receiver rx;
    uint8_t after[32];
} guarded_receiver;

static void test_random_streams(void)
{
    static guarded_receiver g;
    static uint8_t shadow[2048];
    static uint8_t valid[SP_MAX_WIRE_FRAME];
    size_t valid_len = 0;
    unsigned iter;
    unsigned bad_iter = 0, mismatches = 0, canary = 0, oob = 0, reported = 0;
    uint32_t frames_total = 0;
    size_t k;
    sp_message m;

    memset(&m, 0, sizeof m);
    m.type = SP_MSG_JOINT_STATE;
    m.u.joint_state.joint_count = 6;
    m.u.joint_state.joints[2].position = 1.0f;
    (void)sp_encode(&m, valid, sizeof valid, &valid_len);

    for (iter = 0; iter < 10000u; iter++) {
        size_t len = xorshift32() % 1500u, shadow_len = 0;
        uint32_t mode = xorshift32() % 4u;
        unsigned outcomes = 0;
        memset(g.before, 0xC3, sizeof g.before);
        memset(g.after, 0x3C, sizeof g.after);
        sp_receiver_init(&g.rx);
        for (k = 0; k < len; k++) {
            uint8_t b;
            sp_message got, ref;
            sp_status st, st_ref;
            uint32_t r = xorshift32();
            switch (mode) {
            case 0: b = (uint8_t)r; break;                                   /* uniform */
            case 1: b = (r % 300u == 0u) ? 0u : (uint8_t)((r >> 8) | 1u); break; /* long runs */
            case 2: b = valid[(k + (r % 97u == 0u ? r : 0u)) % valid_len]; break; /* frames, slips */
            default: b = (r % 16u == 0u) ? (uint8_t)(r >> 8) : valid[k % valid_len]; break; /* noisy frames */
            }
            st = sp_receiver_push(&g.rx, b, &got);
            if (g.rx.len > SP_RX_BUFFER_SIZE) {
                oob++;
            }
            if (b != 0u) {
                if (shadow_len < sizeof shadow) {
                    shadow[shadow_len++] = b;
                }
                if ((st != SP_NEED_MORE && st != SP_ERR_OVERSIZED) ||
                    ((st == SP_ERR_OVERSIZED) != (shadow_len == SP_MAX_ENCODED + 1u))) {
                    mismatches++;
                }
                if (st == SP_ERR_OVERSIZED) {
                    outcomes++;
                }
                continue;
            }
            /* delimiter: compare with the stateless decoder */
            if (shadow_len == 0u) {
                st_ref = SP_NEED_MORE;
            } else if (shadow_len > SP_MAX_ENCODED) {
                st_ref = SP_NEED_MORE; /* oversized was already reported during the run */
            } else {
                st_ref = sp_decode_frame(shadow, shadow_len, &ref);
            }
            if (st != st_ref || (st == SP_OK && !msg_equal(&got, &ref))) {
                mismatches++;
            }
            if (st != SP_NEED_MORE) {
                outcomes++;
            }
            if (st == SP_OK) {
                frames_total++;
            }
            shadow_len = 0;
        }
        reported += outcomes;
        if (counter_total(&g.rx.counters) != outcomes) {
            bad_iter++;
        }
        for (k = 0; k < sizeof g.before; k++) {
            if (g.before[k] != 0xC3 || g.after[k] != 0x3C) {
                canary++;
            }
        }
    }
    CHECK_MSG(canary == 0, "random streams: %u canary bytes overwritten", canary);
    CHECK_MSG(oob == 0, "random streams: len out of bounds %u times", oob);
    CHECK_MSG(mismatches == 0, "random streams: %u disagreements with sp_decode_frame", mismatches);
    CHECK_MSG(bad_iter == 0, "random streams: counters disagree with outcomes in %u streams", bad_iter);
    CHECK_MSG(frames_total > 1000u && reported > frames_total, "random streams: only %u frames, %u outcomes",
              (unsigned)frames_total, reported);
}

static void test_receiver_details(void)
{
    static sp_receiver rx;
    sp_message m;
    size_t k;
    unsigned errors = 0;
    uint8_t frame[SP_MAX_WIRE_FRAME];
    size_t n;

    sp_receiver_init(&rx);
    /* oversized exactly on the 261st byte, once per run */
    for (k = 1; k <= 1000u; k++) {
        sp_status st = sp_receiver_push(&rx, 0x42, &m);
        if (k == 261u) {
            CHECK(st == SP_ERR_OVERSIZED);
        } else if (st != SP_NEED_MORE) {
            errors++;
        }
    }
    CHECK(errors == 0 && rx.counters.oversized == 1);
    CHECK(sp_receiver_push(&rx, 0x00, &m) == SP_NEED_MORE);
    CHECK(rx.len == 0 && !rx.discarding);

    /* reset drops a partial frame */
    memset(&m, 0, sizeof m);
    m.type = SP_MSG_TARE;
    m.seq = 4;
    CHECK(sp_encode(&m, frame, sizeof frame, &n) == SP_OK);
    for (k = 0; k < 5; k++) {
        (void)sp_receiver_push(&rx, frame[k], &m);
    }
    sp_receiver_reset(&rx);
    for (k = 0; k + 1u < n; k++) {
        CHECK(sp_receiver_push(&rx, frame[k], &m) == SP_NEED_MORE);
    }
    CHECK(sp_receiver_push(&rx, 0x00, &m) == SP_OK && m.type == SP_MSG_TARE && m.seq == 4);
    CHECK(sp_receiver_push(NULL, 0, &m) == SP_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(sp_status_name(SP_ERR_CRC_MISMATCH), "crc_mismatch") == 0);
}

int main(void)
{
    test_crc();
    test_cobs();
    test_frame_vectors();
    test_invalid_vectors();
    test_encode_refusals();
    test_seq_tracker();
    test_receiver_details();
    test_random_streams();
    printf("c-codec: %u passed, %u failed\n", g_passed, g_failed);
    return g_failed == 0u ? 0 : 1;
}

/*
 * sono_proto: reference codec of the Sono board protocol, version 1 (../PROTOCOL.md).
 *
 * Portable C99 for firmware: no heap, no libc beyond <string.h> (memcpy/memset), no
 * dependence on the host's byte order, every write bounds-checked against the caller's
 * capacity. Not thread-safe per object: one sp_receiver / sp_seq_tracker per link and
 * context (see README.md for ISR use).
 */
#ifndef SONO_PROTO_H
#define SONO_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Limits (PROTOCOL.md §1) ------------------------------------------------------- */

#define SP_PROTOCOL_VERSION 1u
#define SP_HEADER_SIZE 14u
#define SP_CRC_SIZE 4u
#define SP_MAX_PAYLOAD 240u
#define SP_MAX_JOINTS 8u
/* header + payload + CRC of the largest legal frame */
#define SP_MAX_DECODED (SP_HEADER_SIZE + SP_MAX_PAYLOAD + SP_CRC_SIZE) /* 258 */
/* worst-case COBS size of n bytes (without the 0x00 delimiter) */
#define SP_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)
/* largest legal frame on the wire: 260 bytes without the delimiter, 261 with it */
#define SP_MAX_ENCODED SP_COBS_MAX_ENCODED(SP_MAX_DECODED)
#define SP_MAX_WIRE_FRAME (SP_MAX_ENCODED + 1u)
/* the receiver buffers at most this many bytes; the next one without a delimiter (the
 * 261st) is oversized (PROTOCOL.md §1) */
#define SP_RX_BUFFER_SIZE SP_MAX_ENCODED

/* ---- Status ------------------------------------------------------------------------- */

typedef enum {
    SP_OK = 0,               /* success; from sp_receiver_push: a frame was decoded into *msg */
    SP_NEED_MORE,            /* sp_receiver_push: nothing to report for this byte */
    /* receive errors of PROTOCOL.md §1.3, in the order they are checked */
    SP_ERR_OVERSIZED,
    SP_ERR_MALFORMED_COBS,
    SP_ERR_TRUNCATED,
    SP_ERR_CRC_MISMATCH,
    SP_ERR_UNSUPPORTED_VERSION,
    SP_ERR_LENGTH_MISMATCH,
    SP_ERR_UNKNOWN_TYPE,
    SP_ERR_INVALID_PAYLOAD,
    /* local errors, never caused by received bytes */
    SP_ERR_BUFFER_TOO_SMALL, /* output capacity too small */
    SP_ERR_INVALID_ARGUMENT  /* NULL pointer, or a message the encoder refuses (see sp_encode) */
} sp_status;

const char *sp_status_name(sp_status s); /* "ok", "crc_mismatch", ... (PROTOCOL.md spelling) */

/* ---- Messages (PROTOCOL.md §3) ------------------------------------------------------ */

typedef enum {
    SP_MSG_HELLO = 0x01,
    SP_MSG_HEARTBEAT = 0x02,
    SP_MSG_GET_INFO = 0x03,
    SP_MSG_FT_SAMPLE = 0x10,
    SP_MSG_JOINT_STATE = 0x11,
    SP_MSG_ESTOP_STATE = 0x12,
    SP_MSG_FAULT_REPORT = 0x13,
    SP_MSG_ACK = 0x20,
    SP_MSG_NACK = 0x21,
    SP_MSG_JOINT_COMMAND = 0x30,
    SP_MSG_SET_DRIVES = 0x31,
    SP_MSG_STOP = 0x32,
    SP_MSG_CLEAR_FAULTS = 0x33,
    SP_MSG_TARE = 0x34
} sp_msg_type;

bool sp_msg_type_known(uint8_t type);
/* payload size of a message of this type; for JOINT_STATE/JOINT_COMMAND with n joints.
 * 0 for unknown types (and for the three empty messages: use sp_msg_type_known). */
size_t sp_payload_size(uint8_t type, uint8_t joint_count);

typedef struct {
    uint8_t kind; /* 1 force_torque, 2 arm (anything else: invalid_payload) */
    uint8_t protocol_version;
    uint8_t fw_major;
    uint8_t fw_minor;
    uint8_t fw_patch;
    char serial[16]; /* ASCII, 0x00-padded, NOT necessarily 0-terminated */
    uint32_t capabilities;
    uint8_t joint_count;
    uint16_t sample_rate_hz;
    uint16_t heartbeat_period_ms;
} sp_hello;

typedef struct {
    uint8_t state;
    uint8_t reserved;
    uint16_t rx_crc_errors;
    uint16_t rx_seq_gaps;
} sp_heartbeat;

typedef struct {
    float fx, fy, fz;
    float tx, ty, tz;
    uint16_t status;
} sp_ft_sample;

typedef struct {
    float position;
    float velocity;
    float current;
    uint8_t flags;
} sp_joint_sample;

typedef struct {
    uint8_t joint_count; /* 1..SP_MAX_JOINTS */
    uint16_t status;
    sp_joint_sample joints[SP_MAX_JOINTS];
} sp_joint_state;

typedef struct {
    uint8_t engaged; /* 0 or 1 */
    uint8_t source;
} sp_estop_state;

typedef struct {
    uint16_t code;
    uint8_t axis;
    uint8_t severity;
    float value;
    float limit;
} sp_fault_report;

typedef struct {
    uint16_t acked_seq;
    uint8_t acked_type;
} sp_ack;

typedef struct {
    uint16_t acked_seq;
    uint8_t acked_type;
    uint16_t error;
} sp_nack;

typedef struct {
    float position;
    float max_velocity;
    float max_current;
} sp_joint_target;

typedef struct {
    uint8_t joint_count; /* 1..SP_MAX_JOINTS */
    sp_joint_target joints[SP_MAX_JOINTS];
} sp_joint_command;

typedef struct {
    uint8_t enable; /* 0 or 1 */
} sp_set_drives;

typedef struct {
    uint8_t category; /* raw: 3..255 decode and are NACKed out_of_range by the board */
} sp_stop;

/* A decoded message. GET_INFO, CLEAR_FAULTS and TARE have no union member. */
typedef struct {
    uint8_t type; /* sp_msg_type */
    uint16_t seq;
    uint64_t timestamp_us;
    union {
        sp_hello hello;
        sp_heartbeat heartbeat;
        sp_ft_sample ft_sample;
        sp_joint_state joint_state;
        sp_estop_state estop_state;
        sp_fault_report fault_report;
        sp_ack ack;
        sp_nack nack;
        sp_joint_command joint_command;
        sp_set_drives set_drives;
        sp_stop stop;
    } u;
} sp_message;

/* ---- CRC-32C (PROTOCOL.md §1.2) -----------------------------------------------------
 * Table-driven (1 KiB const table, placed in flash by any Cortex-M toolchain). Define
 * SP_CRC32C_BITWISE when compiling sono_proto.c to use a bitwise loop without a table
 * (8 iterations per byte). Both give identical results. */

uint32_t sp_crc32c(const uint8_t *data, size_t len);
/* incremental: crc = SP_CRC32C_INIT; crc = sp_crc32c_update(crc, ...)...; result = crc ^ SP_CRC32C_XOROUT */
#define SP_CRC32C_INIT 0xFFFFFFFFu
#define SP_CRC32C_XOROUT 0xFFFFFFFFu
uint32_t sp_crc32c_update(uint32_t crc, const uint8_t *data, size_t len);

/* ---- COBS ---------------------------------------------------------------------------
 * Plain COBS, without the delimiter, bit-identical to the PyPI package `cobs` (a block
 * of 254 non-zero bytes at the very end is not followed by a 0x01 code byte).
 * sp_cobs_encode: cap >= SP_COBS_MAX_ENCODED(len) always suffices; in and out must not overlap.
 * sp_cobs_decode: fails with SP_ERR_MALFORMED_COBS on a 0x00 in the input or a code byte
 * pointing past the end; decoding in place (out == in) is allowed.
 * Both return SP_ERR_BUFFER_TOO_SMALL (and write nothing past cap) when cap is too small. */

sp_status sp_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);
sp_status sp_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* ---- Frames ------------------------------------------------------------------------- */

/* Encodes msg into the complete wire frame COBS(header|payload|crc)|0x00.
 * cap >= SP_MAX_WIRE_FRAME always suffices. Refuses (SP_ERR_INVALID_ARGUMENT) unknown
 * types and anything a receiver would reject as invalid_payload (joint_count 0 or > 8,
 * HELLO.kind not 1/2, ESTOP_STATE.engaged or SET_DRIVES.enable not 0/1).
 * Uses ~500 bytes of stack (payload and frame scratch buffers). */
sp_status sp_encode(const sp_message *msg, uint8_t *out, size_t cap, size_t *out_len);

/* Same with a raw payload (for message types this codec does not know yet). */
sp_status sp_encode_raw(uint8_t type, uint16_t seq, uint64_t timestamp_us, const uint8_t *payload,
                        size_t payload_len, uint8_t *out, size_t cap, size_t *out_len);

/* Decodes the bytes between two delimiters (no 0x00 in them) per PROTOCOL.md §1.3.
 * len == 0 (an empty frame) gives SP_ERR_TRUNCATED; the receiver never passes it.
 * len > SP_MAX_ENCODED gives SP_ERR_OVERSIZED.
 * *msg is written only on SP_OK. Uses ~260 bytes of stack. */
sp_status sp_decode_frame(const uint8_t *cobs_bytes, size_t len, sp_message *msg);

/* ---- Streaming receiver (PROTOCOL.md §1) -------------------------------------------- */

typedef struct {
    uint32_t frames_ok;
    uint32_t oversized;
    uint32_t malformed_cobs;
    uint32_t truncated;
    uint32_t crc_mismatch;
    uint32_t unsupported_version;
    uint32_t length_mismatch;
    uint32_t unknown_type;
    uint32_t invalid_payload;
} sp_rx_counters; /* saturating */

typedef struct {
    uint8_t buf[SP_RX_BUFFER_SIZE];
    size_t len;
    bool discarding; /* after oversized, until the next 0x00 */
    sp_rx_counters counters;
} sp_receiver;

void sp_receiver_init(sp_receiver *rx);
/* Feeds one byte. Returns SP_NEED_MORE (nothing to report), SP_OK (a frame was decoded into
 * *msg) or an SP_ERR_* receive error (counted; the frame is dropped). Empty frames are
 * ignored. oversized is returned once, on the 261st byte of a run without 0x00, and the
 * rest of the run up to and including the next 0x00 is dropped silently.
 * Decodes in place: no stack buffer. */
sp_status sp_receiver_push(sp_receiver *rx, uint8_t byte, sp_message *msg);
/* Drops a partial frame, as a 0x00 would (counters are kept). */
void sp_receiver_reset(sp_receiver *rx);

/* ---- Sequence tracking (PROTOCOL.md §4.2) ------------------------------------------- */

typedef enum {
    SP_SEQ_FIRST = 0, /* no expectation yet (first frame, or after a HELLO): nothing counted */
    SP_SEQ_IN_ORDER,
    SP_SEQ_GAP,       /* frames were lost; *lost_out tells how many */
    SP_SEQ_RESET      /* duplicate or a frame from before a reboot */
} sp_seq_result;

typedef struct {
    bool have_expected;
    uint16_t expected;
    uint32_t lost;   /* frames counted as lost (saturating) */
    uint32_t resets; /* seq_reset events (saturating) */
} sp_seq_tracker;

void sp_seq_tracker_init(sp_seq_tracker *t);
/* Call for every valid frame received from one sender, with its seq and type. A HELLO
 * resets the expectation without counting. lost_out may be NULL. */
sp_seq_result sp_seq_tracker_update(sp_seq_tracker *t, uint16_t seq, uint8_t type, uint16_t *lost_out);

#ifdef __cplusplus
}
#endif

#endif /* SONO_PROTO_H */

/* sono_proto: reference codec of the Sono board protocol, version 1. See sono_proto.h. */
#include "sono_proto.h"

#include <string.h>

/* ---- Little-endian helpers: assembled from bytes, independent of the host order ---- */

static void put_u8(uint8_t *p, size_t *off, uint8_t v)
{
    p[(*off)++] = v;
}

static void put_u16(uint8_t *p, size_t *off, uint16_t v)
{
    p[*off] = (uint8_t)(v & 0xFFu);
    p[*off + 1u] = (uint8_t)(v >> 8);
    *off += 2u;
}

static void put_u32(uint8_t *p, size_t *off, uint32_t v)
{
    unsigned i;
    for (i = 0; i < 4u; i++) {
        p[*off + i] = (uint8_t)((v >> (8u * i)) & 0xFFu);
    }
    *off += 4u;
}

static void put_u64(uint8_t *p, size_t *off, uint64_t v)
{
    unsigned i;
    for (i = 0; i < 8u; i++) {
        p[*off + i] = (uint8_t)((v >> (8u * i)) & 0xFFu);
    }
    *off += 8u;
}

static void put_f32(uint8_t *p, size_t *off, float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w); /* float and uint32_t share the host's byte order */
    put_u32(p, off, w);
}

static uint8_t get_u8(const uint8_t *p, size_t *off)
{
    return p[(*off)++];
}

static uint16_t get_u16(const uint8_t *p, size_t *off)
{
    uint16_t v = (uint16_t)((uint16_t)p[*off] | (uint16_t)((uint16_t)p[*off + 1u] << 8));
    *off += 2u;
    return v;
}

static uint32_t get_u32(const uint8_t *p, size_t *off)
{
    uint32_t v = 0;
    unsigned i;
    for (i = 0; i < 4u; i++) {
        v |= (uint32_t)p[*off + i] << (8u * i);
    }
    *off += 4u;
    return v;
}

static uint64_t get_u64(const uint8_t *p, size_t *off)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < 8u; i++) {
        v |= (uint64_t)p[*off + i] << (8u * i);
    }
    *off += 8u;
    return v;
}

static float get_f32(const uint8_t *p, size_t *off)
{
    uint32_t w = get_u32(p, off);
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

/* ---- Status names ------------------------------------------------------------------- */

const char *sp_status_name(sp_status s)
{
    switch (s) {
    case SP_OK: return "ok";
    case SP_NEED_MORE: return "need_more";
    case SP_ERR_OVERSIZED: return "oversized";
    case SP_ERR_MALFORMED_COBS: return "malformed_cobs";
    case SP_ERR_TRUNCATED: return "truncated";
    case SP_ERR_CRC_MISMATCH: return "crc_mismatch";
    case SP_ERR_UNSUPPORTED_VERSION: return "unsupported_version";
    case SP_ERR_LENGTH_MISMATCH: return "length_mismatch";
    case SP_ERR_UNKNOWN_TYPE: return "unknown_type";
    case SP_ERR_INVALID_PAYLOAD: return "invalid_payload";
    case SP_ERR_BUFFER_TOO_SMALL: return "buffer_too_small";
    case SP_ERR_INVALID_ARGUMENT: return "invalid_argument";
    }
    return "unknown_status";
}

/* ---- CRC-32C -------------------------------------------------------------------------- */

#define SP_CRC32C_POLY_REFLECTED 0x82F63B78u

#ifdef SP_CRC32C_BITWISE
uint32_t sp_crc32c_update(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    unsigned k;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        for (k = 0; k < 8u; k++) {
            crc = (crc >> 1) ^ (SP_CRC32C_POLY_REFLECTED & (0u - (crc & 1u)));
        }
    }
    return crc;
}
#else
/* table[i] = CRC of byte i (reflected, polynomial 0x82F63B78) */
static const uint32_t sp_crc32c_table[256] = {
    0x00000000u, 0xF26B8303u, 0xE13B70F7u, 0x1350F3F4u, 0xC79A971Fu, 0x35F1141Cu, 0x26A1E7E8u, 0xD4CA64EBu,
    0x8AD958CFu, 0x78B2DBCCu, 0x6BE22838u, 0x9989AB3Bu, 0x4D43CFD0u, 0xBF284CD3u, 0xAC78BF27u, 0x5E133C24u,
    0x105EC76Fu, 0xE235446Cu, 0xF165B798u, 0x030E349Bu, 0xD7C45070u, 0x25AFD373u, 0x36FF2087u, 0xC494A384u,
    0x9A879FA0u, 0x68EC1CA3u, 0x7BBCEF57u, 0x89D76C54u, 0x5D1D08BFu, 0xAF768BBCu, 0xBC267848u, 0x4E4DFB4Bu,
    0x20BD8EDEu, 0xD2D60DDDu, 0xC186FE29u, 0x33ED7D2Au, 0xE72719C1u, 0x154C9AC2u, 0x061C6936u, 0xF477EA35u,
    0xAA64D611u, 0x580F5512u, 0x4B5FA6E6u, 0xB93425E5u, 0x6DFE410Eu, 0x9F95C20Du, 0x8CC531F9u, 0x7EAEB2FAu,
    0x30E349B1u, 0xC288CAB2u, 0xD1D83946u, 0x23B3BA45u, 0xF779DEAEu, 0x05125DADu, 0x1642AE59u, 0xE4292D5Au,
    0xBA3A117Eu, 0x4851927Du, 0x5B016189u, 0xA96AE28Au, 0x7DA08661u, 0x8FCB0562u, 0x9C9BF696u, 0x6EF07595u,
    0x417B1DBCu, 0xB3109EBFu, 0xA0406D4Bu, 0x522BEE48u, 0x86E18AA3u, 0x748A09A0u, 0x67DAFA54u, 0x95B17957u,
    0xCBA24573u, 0x39C9C670u, 0x2A993584u, 0xD8F2B687u, 0x0C38D26Cu, 0xFE53516Fu, 0xED03A29Bu, 0x1F682198u,
    0x5125DAD3u, 0xA34E59D0u, 0xB01EAA24u, 0x42752927u, 0x96BF4DCCu, 0x64D4CECFu, 0x77843D3Bu, 0x85EFBE38u,
    0xDBFC821Cu, 0x2997011Fu, 0x3AC7F2EBu, 0xC8AC71E8u, 0x1C661503u, 0xEE0D9600u, 0xFD5D65F4u, 0x0F36E6F7u,
    0x61C69362u, 0x93AD1061u, 0x80FDE395u, 0x72966096u, 0xA65C047Du, 0x5437877Eu, 0x4767748Au, 0xB50CF789u,
    0xEB1FCBADu, 0x197448AEu, 0x0A24BB5Au, 0xF84F3859u, 0x2C855CB2u, 0xDEEEDFB1u, 0xCDBE2C45u, 0x3FD5AF46u,
    0x7198540Du, 0x83F3D70Eu, 0x90A324FAu, 0x62C8A7F9u, 0xB602C312u, 0x44694011u, 0x5739B3E5u, 0xA55230E6u,
    0xFB410CC2u, 0x092A8FC1u, 0x1A7A7C35u, 0xE811FF36u, 0x3CDB9BDDu, 0xCEB018DEu, 0xDDE0EB2Au, 0x2F8B6829u,
    0x82F63B78u, 0x709DB87Bu, 0x63CD4B8Fu, 0x91A6C88Cu, 0x456CAC67u, 0xB7072F64u, 0xA457DC90u, 0x563C5F93u,
    0x082F63B7u, 0xFA44E0B4u, 0xE9141340u, 0x1B7F9043u, 0xCFB5F4A8u, 0x3DDE77ABu, 0x2E8E845Fu, 0xDCE5075Cu,
    0x92A8FC17u, 0x60C37F14u, 0x73938CE0u, 0x81F80FE3u, 0x55326B08u, 0xA759E80Bu, 0xB4091BFFu, 0x466298FCu,
    0x1871A4D8u, 0xEA1A27DBu, 0xF94AD42Fu, 0x0B21572Cu, 0xDFEB33C7u, 0x2D80B0C4u, 0x3ED04330u, 0xCCBBC033u,
    0xA24BB5A6u, 0x502036A5u, 0x4370C551u, 0xB11B4652u, 0x65D122B9u, 0x97BAA1BAu, 0x84EA524Eu, 0x7681D14Du,
    0x2892ED69u, 0xDAF96E6Au, 0xC9A99D9Eu, 0x3BC21E9Du, 0xEF087A76u, 0x1D63F975u, 0x0E330A81u, 0xFC588982u,
    0xB21572C9u, 0x407EF1CAu, 0x532E023Eu, 0xA145813Du, 0x758FE5D6u, 0x87E466D5u, 0x94B49521u, 0x66DF1622u,
    0x38CC2A06u, 0xCAA7A905u, 0xD9F75AF1u, 0x2B9CD9F2u, 0xFF56BD19u, 0x0D3D3E1Au, 0x1E6DCDEEu, 0xEC064EEDu,
    0xC38D26C4u, 0x31E6A5C7u, 0x22B65633u, 0xD0DDD530u, 0x0417B1DBu, 0xF67C32D8u, 0xE52CC12Cu, 0x1747422Fu,
    0x49547E0Bu, 0xBB3FFD08u, 0xA86F0EFCu, 0x5A048DFFu, 0x8ECEE914u, 0x7CA56A17u, 0x6FF599E3u, 0x9D9E1AE0u,
    0xD3D3E1ABu, 0x21B862A8u, 0x32E8915Cu, 0xC083125Fu, 0x144976B4u, 0xE622F5B7u, 0xF5720643u, 0x07198540u,
    0x590AB964u, 0xAB613A67u, 0xB831C993u, 0x4A5A4A90u, 0x9E902E7Bu, 0x6CFBAD78u, 0x7FAB5E8Cu, 0x8DC0DD8Fu,
    0xE330A81Au, 0x115B2B19u, 0x020BD8EDu, 0xF0605BEEu, 0x24AA3F05u, 0xD6C1BC06u, 0xC5914FF2u, 0x37FACCF1u,
    0x69E9F0D5u, 0x9B8273D6u, 0x88D28022u, 0x7AB90321u, 0xAE7367CAu, 0x5C18E4C9u, 0x4F48173Du, 0xBD23943Eu,
    0xF36E6F75u, 0x0105EC76u, 0x12551F82u, 0xE03E9C81u, 0x34F4F86Au, 0xC69F7B69u, 0xD5CF889Du, 0x27A40B9Eu,
    0x79B737BAu, 0x8BDCB4B9u, 0x988C474Du, 0x6AE7C44Eu, 0xBE2DA0A5u, 0x4C4623A6u, 0x5F16D052u, 0xAD7D5351u,
};

uint32_t sp_crc32c_update(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        crc = (crc >> 8) ^ sp_crc32c_table[(crc ^ data[i]) & 0xFFu];
    }
    return crc;
}
#endif

uint32_t sp_crc32c(const uint8_t *data, size_t len)
{
    return sp_crc32c_update(SP_CRC32C_INIT, data, len) ^ SP_CRC32C_XOROUT;
}

/* ---- COBS ------------------------------------------------------------------------------ */

sp_status sp_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t i;
    size_t o;
    size_t code_at = 0;
    uint8_t code = 1;

    if ((in == NULL && len > 0u) || out == NULL || out_len == NULL) {
        return SP_ERR_INVALID_ARGUMENT;
    }
    if (cap < 1u) {
        return SP_ERR_BUFFER_TOO_SMALL;
    }
    o = 1; /* out[0] is the first code byte */
    for (i = 0; i < len; i++) {
        if (in[i] == 0u) {
            out[code_at] = code;
            if (o >= cap) {
                return SP_ERR_BUFFER_TOO_SMALL;
            }
            code_at = o++;
            code = 1;
        } else {
            if (o >= cap) {
                return SP_ERR_BUFFER_TOO_SMALL;
            }
            out[o++] = in[i];
            code++;
            if (code == 0xFFu) {
                out[code_at] = code;
                if (i + 1u == len) {
                    /* input ends with a full block: no trailing code byte */
                    *out_len = o;
                    return SP_OK;
                }
                if (o >= cap) {
                    return SP_ERR_BUFFER_TOO_SMALL;
                }
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    *out_len = o;
    return SP_OK;
}

sp_status sp_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t i = 0;
    size_t o = 0;

    if ((in == NULL && len > 0u) || out == NULL || out_len == NULL) {
        return SP_ERR_INVALID_ARGUMENT;
    }
    while (i < len) {
        uint8_t code = in[i++];
        size_t k;
        if (code == 0u || (size_t)(code - 1u) > len - i) {
            return SP_ERR_MALFORMED_COBS;
        }
        for (k = 1; k < code; k++) {
            if (in[i] == 0u) {
                return SP_ERR_MALFORMED_COBS;
            }
            if (o >= cap) {
                return SP_ERR_BUFFER_TOO_SMALL;
            }
            out[o++] = in[i++]; /* o <= i always: forward copy is safe in place */
        }
        if (code != 0xFFu && i < len) {
            if (o >= cap) {
                return SP_ERR_BUFFER_TOO_SMALL;
            }
            out[o++] = 0u;
        }
    }
    *out_len = o;
    return SP_OK;
}

/* ---- Payload layout --------------------------------------------------------------------- */

#define SP_JOINT_STATE_HEAD 3u
#define SP_JOINT_STATE_JOINT 13u
#define SP_JOINT_COMMAND_HEAD 1u
#define SP_JOINT_COMMAND_JOINT 12u

bool sp_msg_type_known(uint8_t type)
{
    switch (type) {
    case SP_MSG_HELLO: case SP_MSG_HEARTBEAT: case SP_MSG_GET_INFO: case SP_MSG_FT_SAMPLE:
    case SP_MSG_JOINT_STATE: case SP_MSG_ESTOP_STATE: case SP_MSG_FAULT_REPORT: case SP_MSG_ACK:
    case SP_MSG_NACK: case SP_MSG_JOINT_COMMAND: case SP_MSG_SET_DRIVES: case SP_MSG_STOP:
    case SP_MSG_CLEAR_FAULTS: case SP_MSG_TARE:
        return true;
    default:
        return false;
    }
}

size_t sp_payload_size(uint8_t type, uint8_t joint_count)
{
    switch (type) {
    case SP_MSG_HELLO: return 30u;
    case SP_MSG_HEARTBEAT: return 6u;
    case SP_MSG_FT_SAMPLE: return 26u;
    case SP_MSG_JOINT_STATE: return SP_JOINT_STATE_HEAD + SP_JOINT_STATE_JOINT * (size_t)joint_count;
    case SP_MSG_ESTOP_STATE: return 2u;
    case SP_MSG_FAULT_REPORT: return 12u;
    case SP_MSG_ACK: return 3u;
    case SP_MSG_NACK: return 5u;
    case SP_MSG_JOINT_COMMAND: return SP_JOINT_COMMAND_HEAD + SP_JOINT_COMMAND_JOINT * (size_t)joint_count;
    case SP_MSG_SET_DRIVES: return 1u;
    case SP_MSG_STOP: return 1u;
    default: return 0u; /* GET_INFO, CLEAR_FAULTS, TARE, unknown */
    }
}

/* Writes the payload of msg to p (capacity SP_MAX_PAYLOAD); returns its length, or
 * SP_ERR_INVALID_ARGUMENT via *st for a message the receiver would reject. */
static size_t encode_payload(const sp_message *m, uint8_t *p, sp_status *st)
{
    size_t o = 0;
    unsigned i;
    *st = SP_OK;
    switch (m->type) {
    case SP_MSG_HELLO:
        if (m->u.hello.kind != 1u && m->u.hello.kind != 2u) {
            *st = SP_ERR_INVALID_ARGUMENT;
            return 0;
        }
        put_u8(p, &o, m->u.hello.kind);
        put_u8(p, &o, m->u.hello.protocol_version);
        put_u8(p, &o, m->u.hello.fw_major);
        put_u8(p, &o, m->u.hello.fw_minor);
        put_u8(p, &o, m->u.hello.fw_patch);
        for (i = 0; i < 16u; i++) {
            put_u8(p, &o, (uint8_t)m->u.hello.serial[i]);
        }
        put_u32(p, &o, m->u.hello.capabilities);
        put_u8(p, &o, m->u.hello.joint_count);
        put_u16(p, &o, m->u.hello.sample_rate_hz);
        put_u16(p, &o, m->u.hello.heartbeat_period_ms);
        break;
    case SP_MSG_HEARTBEAT:
        put_u8(p, &o, m->u.heartbeat.state);
        put_u8(p, &o, m->u.heartbeat.reserved);
        put_u16(p, &o, m->u.heartbeat.rx_crc_errors);
        put_u16(p, &o, m->u.heartbeat.rx_seq_gaps);
        break;
    case SP_MSG_GET_INFO:
    case SP_MSG_CLEAR_FAULTS:
    case SP_MSG_TARE:
        break;
    case SP_MSG_FT_SAMPLE:
        put_f32(p, &o, m->u.ft_sample.fx);
        put_f32(p, &o, m->u.ft_sample.fy);
        put_f32(p, &o, m->u.ft_sample.fz);
        put_f32(p, &o, m->u.ft_sample.tx);
        put_f32(p, &o, m->u.ft_sample.ty);
        put_f32(p, &o, m->u.ft_sample.tz);
        put_u16(p, &o, m->u.ft_sample.status);
        break;
    case SP_MSG_JOINT_STATE:
        if (m->u.joint_state.joint_count < 1u || m->u.joint_state.joint_count > SP_MAX_JOINTS) {
            *st = SP_ERR_INVALID_ARGUMENT;
            return 0;
        }
        put_u8(p, &o, m->u.joint_state.joint_count);
        put_u16(p, &o, m->u.joint_state.status);
        for (i = 0; i < m->u.joint_state.joint_count; i++) {
            put_f32(p, &o, m->u.joint_state.joints[i].position);
            put_f32(p, &o, m->u.joint_state.joints[i].velocity);
            put_f32(p, &o, m->u.joint_state.joints[i].current);
            put_u8(p, &o, m->u.joint_state.joints[i].flags);
        }
        break;
    case SP_MSG_ESTOP_STATE:
        if (m->u.estop_state.engaged > 1u) {
            *st = SP_ERR_INVALID_ARGUMENT;
            return 0;
        }
        put_u8(p, &o, m->u.estop_state.engaged);
        put_u8(p, &o, m->u.estop_state.source);
        break;
    case SP_MSG_FAULT_REPORT:
        put_u16(p, &o, m->u.fault_report.code);
        put_u8(p, &o, m->u.fault_report.axis);
        put_u8(p, &o, m->u.fault_report.severity);
        put_f32(p, &o, m->u.fault_report.value);
        put_f32(p, &o, m->u.fault_report.limit);
        break;
    case SP_MSG_ACK:
        put_u16(p, &o, m->u.ack.acked_seq);
        put_u8(p, &o, m->u.ack.acked_type);
        break;
    case SP_MSG_NACK:
        put_u16(p, &o, m->u.nack.acked_seq);
        put_u8(p, &o, m->u.nack.acked_type);
        put_u16(p, &o, m->u.nack.error);
        break;
    case SP_MSG_JOINT_COMMAND:
        if (m->u.joint_command.joint_count < 1u || m->u.joint_command.joint_count > SP_MAX_JOINTS) {
            *st = SP_ERR_INVALID_ARGUMENT;
            return 0;
        }
        put_u8(p, &o, m->u.joint_command.joint_count);
        for (i = 0; i < m->u.joint_command.joint_count; i++) {
            put_f32(p, &o, m->u.joint_command.joints[i].position);
            put_f32(p, &o, m->u.joint_command.joints[i].max_velocity);
            put_f32(p, &o, m->u.joint_command.joints[i].max_current);
        }
        break;
    case SP_MSG_SET_DRIVES:
        if (m->u.set_drives.enable > 1u) {
            *st = SP_ERR_INVALID_ARGUMENT;
            return 0;
        }
        put_u8(p, &o, m->u.set_drives.enable);
        break;
    case SP_MSG_STOP:
        put_u8(p, &o, m->u.stop.category);
        break;
    default:
        *st = SP_ERR_INVALID_ARGUMENT;
        return 0;
    }
    return o;
}

/* Decodes a payload whose length is already known to match the header. */
static sp_status decode_payload(uint8_t type, const uint8_t *p, size_t len, sp_message *m)
{
    size_t o = 0;
    unsigned i;
    uint8_t n;

    if (type == SP_MSG_JOINT_STATE || type == SP_MSG_JOINT_COMMAND) {
        if (len < 1u) {
            return SP_ERR_INVALID_PAYLOAD;
        }
        n = p[0];
        if (n < 1u || n > SP_MAX_JOINTS || len != sp_payload_size(type, n)) {
            return SP_ERR_INVALID_PAYLOAD;
        }
    } else {
        n = 0;
        if (len != sp_payload_size(type, 0)) {
            return SP_ERR_INVALID_PAYLOAD;
        }
    }
    /* domains checked at decode (PROTOCOL.md §1.3) */
    if ((type == SP_MSG_HELLO && p[0] != 1u && p[0] != 2u) ||
        (type == SP_MSG_ESTOP_STATE && p[0] > 1u) ||
        (type == SP_MSG_SET_DRIVES && p[0] > 1u)) {
        return SP_ERR_INVALID_PAYLOAD;
    }

    switch (type) {
    case SP_MSG_HELLO:
        m->u.hello.kind = get_u8(p, &o);
        m->u.hello.protocol_version = get_u8(p, &o);
        m->u.hello.fw_major = get_u8(p, &o);
        m->u.hello.fw_minor = get_u8(p, &o);
        m->u.hello.fw_patch = get_u8(p, &o);
        for (i = 0; i < 16u; i++) {
            m->u.hello.serial[i] = (char)get_u8(p, &o);
        }
        m->u.hello.capabilities = get_u32(p, &o);
        m->u.hello.joint_count = get_u8(p, &o);
        m->u.hello.sample_rate_hz = get_u16(p, &o);
        m->u.hello.heartbeat_period_ms = get_u16(p, &o);
        break;
    case SP_MSG_HEARTBEAT:
        m->u.heartbeat.state = get_u8(p, &o);
        m->u.heartbeat.reserved = get_u8(p, &o);
        m->u.heartbeat.rx_crc_errors = get_u16(p, &o);
        m->u.heartbeat.rx_seq_gaps = get_u16(p, &o);
        break;
    case SP_MSG_FT_SAMPLE:
        m->u.ft_sample.fx = get_f32(p, &o);
        m->u.ft_sample.fy = get_f32(p, &o);
        m->u.ft_sample.fz = get_f32(p, &o);
        m->u.ft_sample.tx = get_f32(p, &o);
        m->u.ft_sample.ty = get_f32(p, &o);
        m->u.ft_sample.tz = get_f32(p, &o);
        m->u.ft_sample.status = get_u16(p, &o);
        break;
    case SP_MSG_JOINT_STATE:
        m->u.joint_state.joint_count = get_u8(p, &o);
        m->u.joint_state.status = get_u16(p, &o);
        for (i = 0; i < n; i++) {
            m->u.joint_state.joints[i].position = get_f32(p, &o);
            m->u.joint_state.joints[i].velocity = get_f32(p, &o);
            m->u.joint_state.joints[i].current = get_f32(p, &o);
            m->u.joint_state.joints[i].flags = get_u8(p, &o);
        }
        break;
    case SP_MSG_ESTOP_STATE:
        m->u.estop_state.engaged = get_u8(p, &o);
        m->u.estop_state.source = get_u8(p, &o);
        break;
    case SP_MSG_FAULT_REPORT:
        m->u.fault_report.code = get_u16(p, &o);
        m->u.fault_report.axis = get_u8(p, &o);
        m->u.fault_report.severity = get_u8(p, &o);
        m->u.fault_report.value = get_f32(p, &o);
        m->u.fault_report.limit = get_f32(p, &o);
        break;
    case SP_MSG_ACK:
        m->u.ack.acked_seq = get_u16(p, &o);
        m->u.ack.acked_type = get_u8(p, &o);
        break;
    case SP_MSG_NACK:
        m->u.nack.acked_seq = get_u16(p, &o);
        m->u.nack.acked_type = get_u8(p, &o);
        m->u.nack.error = get_u16(p, &o);
        break;
    case SP_MSG_JOINT_COMMAND:
        m->u.joint_command.joint_count = get_u8(p, &o);
        for (i = 0; i < n; i++) {
            m->u.joint_command.joints[i].position = get_f32(p, &o);
            m->u.joint_command.joints[i].max_velocity = get_f32(p, &o);
            m->u.joint_command.joints[i].max_current = get_f32(p, &o);
        }
        break;
    case SP_MSG_SET_DRIVES:
        m->u.set_drives.enable = get_u8(p, &o);
        break;
    case SP_MSG_STOP:
        m->u.stop.category = get_u8(p, &o);
        break;
    default: /* GET_INFO, CLEAR_FAULTS, TARE */
        break;
    }
    return SP_OK;
}

/* ---- Frames ---------------------------------------------------------------------------- */

sp_status sp_encode_raw(uint8_t type, uint16_t seq, uint64_t timestamp_us, const uint8_t *payload,
                        size_t payload_len, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t frame[SP_MAX_DECODED];
    size_t o = 0;
    size_t n = 0;
    sp_status st;

    if ((payload == NULL && payload_len > 0u) || out == NULL || out_len == NULL ||
        payload_len > SP_MAX_PAYLOAD) {
        return SP_ERR_INVALID_ARGUMENT;
    }
    put_u8(frame, &o, (uint8_t)SP_PROTOCOL_VERSION);
    put_u8(frame, &o, type);
    put_u16(frame, &o, seq);
    put_u64(frame, &o, timestamp_us);
    put_u16(frame, &o, (uint16_t)payload_len);
    if (payload_len > 0u) {
        memcpy(&frame[o], payload, payload_len);
        o += payload_len;
    }
    put_u32(frame, &o, sp_crc32c(frame, o));

    st = sp_cobs_encode(frame, o, out, cap, &n);
    if (st != SP_OK) {
        return st;
    }
    if (n >= cap) {
        return SP_ERR_BUFFER_TOO_SMALL;
    }
    out[n++] = 0u;
    *out_len = n;
    return SP_OK;
}

sp_status sp_encode(const sp_message *msg, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t payload[SP_MAX_PAYLOAD];
    size_t len;
    sp_status st;

    if (msg == NULL || out == NULL || out_len == NULL) {
        return SP_ERR_INVALID_ARGUMENT;
    }
    len = encode_payload(msg, payload, &st);
    if (st != SP_OK) {
        return st;
    }
    return sp_encode_raw(msg->type, msg->seq, msg->timestamp_us, payload, len, out, cap, out_len);
}

/* Checks of §1.3 after COBS decoding. */
static sp_status decode_raw(const uint8_t *raw, size_t len, sp_message *msg)
{
    size_t o = 0;
    uint32_t stored;
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint64_t timestamp_us;
    uint16_t length;
    size_t crc_at;
    sp_status st;

    if (len < SP_HEADER_SIZE + SP_CRC_SIZE) {
        return SP_ERR_TRUNCATED;
    }
    crc_at = len - SP_CRC_SIZE;
    o = crc_at;
    stored = get_u32(raw, &o);
    if (sp_crc32c(raw, crc_at) != stored) {
        return SP_ERR_CRC_MISMATCH;
    }
    o = 0;
    version = get_u8(raw, &o);
    type = get_u8(raw, &o);
    seq = get_u16(raw, &o);
    timestamp_us = get_u64(raw, &o);
    length = get_u16(raw, &o);
    if (version != SP_PROTOCOL_VERSION) {
        return SP_ERR_UNSUPPORTED_VERSION;
    }
    if (length > SP_MAX_PAYLOAD || (size_t)length != crc_at - SP_HEADER_SIZE) {
        return SP_ERR_LENGTH_MISMATCH;
    }
    if (!sp_msg_type_known(type)) {
        return SP_ERR_UNKNOWN_TYPE;
    }
    /* decode into a scratch message so *msg is written only on success */
    {
        sp_message m;
        memset(&m, 0, sizeof m);
        m.type = type;
        m.seq = seq;
        m.timestamp_us = timestamp_us;
        st = decode_payload(type, &raw[SP_HEADER_SIZE], length, &m);
        if (st == SP_OK) {
            *msg = m;
        }
    }
    return st;
}

sp_status sp_decode_frame(const uint8_t *cobs_bytes, size_t len, sp_message *msg)
{
    uint8_t raw[SP_RX_BUFFER_SIZE];
    size_t n = 0;
    sp_status st;

    if ((cobs_bytes == NULL && len > 0u) || msg == NULL) {
        return SP_ERR_INVALID_ARGUMENT;
    }
    if (len > SP_MAX_ENCODED) {
        return SP_ERR_OVERSIZED;
    }
    st = sp_cobs_decode(cobs_bytes, len, raw, sizeof raw, &n);
    if (st != SP_OK) {
        return SP_ERR_MALFORMED_COBS; /* cannot be too small: decoded <= encoded */
    }
    return decode_raw(raw, n, msg);
}

/* ---- Streaming receiver ------------------------------------------------------------------ */

static void count(uint32_t *c)
{
    if (*c != UINT32_MAX) {
        (*c)++;
    }
}

void sp_receiver_init(sp_receiver *rx)
{
    if (rx != NULL) {
        memset(rx, 0, sizeof *rx);
    }
}

void sp_receiver_reset(sp_receiver *rx)
{
    if (rx != NULL) {
        rx->len = 0;
        rx->discarding = false;
    }
}

static void count_status(sp_rx_counters *c, sp_status st)
{
    switch (st) {
    case SP_OK: count(&c->frames_ok); break;
    case SP_ERR_OVERSIZED: count(&c->oversized); break;
    case SP_ERR_MALFORMED_COBS: count(&c->malformed_cobs); break;
    case SP_ERR_TRUNCATED: count(&c->truncated); break;
    case SP_ERR_CRC_MISMATCH: count(&c->crc_mismatch); break;
    case SP_ERR_UNSUPPORTED_VERSION: count(&c->unsupported_version); break;
    case SP_ERR_LENGTH_MISMATCH: count(&c->length_mismatch); break;
    case SP_ERR_UNKNOWN_TYPE: count(&c->unknown_type); break;
    case SP_ERR_INVALID_PAYLOAD: count(&c->invalid_payload); break;
    default: break;
    }
}

sp_status sp_receiver_push(sp_receiver *rx, uint8_t byte, sp_message *msg)
{
    sp_status st;
    size_t n = 0;

    if (rx == NULL || msg == NULL) {
        return SP_ERR_INVALID_ARGUMENT;
    }
    if (rx->len > SP_RX_BUFFER_SIZE) { /* corrupted object: never index past the buffer */
        rx->len = 0;
        rx->discarding = true;
    }
    if (byte != 0u) {
        if (rx->discarding) {
            return SP_NEED_MORE;
        }
        if (rx->len == SP_RX_BUFFER_SIZE) { /* the 261st byte without a delimiter */
            rx->len = 0;
            rx->discarding = true;
            count_status(&rx->counters, SP_ERR_OVERSIZED);
            return SP_ERR_OVERSIZED;
        }
        rx->buf[rx->len++] = byte;
        return SP_NEED_MORE;
    }

    /* delimiter */
    if (rx->discarding || rx->len == 0u) {
        rx->discarding = false;
        rx->len = 0;
        return SP_NEED_MORE; /* end of a dropped run, or an empty frame */
    }
    st = sp_cobs_decode(rx->buf, rx->len, rx->buf, sizeof rx->buf, &n); /* in place */
    rx->len = 0;
    st = (st == SP_OK) ? decode_raw(rx->buf, n, msg) : SP_ERR_MALFORMED_COBS;
    count_status(&rx->counters, st);
    return st;
}

/* ---- Sequence tracking --------------------------------------------------------------------- */

void sp_seq_tracker_init(sp_seq_tracker *t)
{
    if (t != NULL) {
        memset(t, 0, sizeof *t);
    }
}

static void add_sat(uint32_t *c, uint32_t v)
{
    *c = (*c > UINT32_MAX - v) ? UINT32_MAX : *c + v;
}

sp_seq_result sp_seq_tracker_update(sp_seq_tracker *t, uint16_t seq, uint8_t type, uint16_t *lost_out)
{
    sp_seq_result r;
    uint16_t diff;

    if (lost_out != NULL) {
        *lost_out = 0;
    }
    if (t == NULL) {
        return SP_SEQ_FIRST;
    }
    if (!t->have_expected || type == SP_MSG_HELLO) {
        r = SP_SEQ_FIRST;
    } else {
        diff = (uint16_t)(seq - t->expected); /* (s - e) mod 65536 */
        if (diff == 0u) {
            r = SP_SEQ_IN_ORDER;
        } else if (diff < 32768u) {
            r = SP_SEQ_GAP;
            add_sat(&t->lost, diff);
            if (lost_out != NULL) {
                *lost_out = diff;
            }
        } else {
            r = SP_SEQ_RESET;
            add_sat(&t->resets, 1u);
        }
    }
    t->have_expected = true;
    t->expected = (uint16_t)(seq + 1u);
    return r;
}

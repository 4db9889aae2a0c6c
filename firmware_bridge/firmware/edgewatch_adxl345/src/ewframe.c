/* ewframe: see ewframe.h. C99, no dynamic memory. */
#include "ewframe.h"

#include <string.h>

/* Nibble table: 64 bytes of flash instead of 1 KiB, fast enough for a UART. */
static const uint32_t crc_nibble[16] = {
    0x00000000UL, 0x1DB71064UL, 0x3B6E20C8UL, 0x26D930ACUL, 0x76DC4190UL, 0x6B6B51F4UL,
    0x4DB26158UL, 0x5005713CUL, 0xEDB88320UL, 0xF00F9344UL, 0xD6D6A3E8UL, 0xCB61B38CUL,
    0x9B64C2B0UL, 0x86D3D2D4UL, 0xA00AE278UL, 0xBDBDF21CUL,
};

uint32_t ew_crc32(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFUL;
    size_t i;
    for (i = 0; i < len; i++) {
        crc = crc_nibble[(crc ^ data[i]) & 0x0Fu] ^ (crc >> 4);
        crc = crc_nibble[(crc ^ (uint32_t)(data[i] >> 4)) & 0x0Fu] ^ (crc >> 4);
    }
    return crc ^ 0xFFFFFFFFUL;
}

size_t ew_cobs_encode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t r, w = 1, code_at = 0;
    uint8_t code = 1;
    int lazy = 0; /* a 0xFF block just closed: open the next one only if needed */
    for (r = 0; r < len; r++) {
        if (lazy) {
            code_at = w++;
            code = 1;
            lazy = 0;
        }
        if (in[r] == 0) {
            out[code_at] = code;
            code_at = w++;
            code = 1;
        } else {
            out[w++] = in[r];
            if (++code == 0xFF) {
                out[code_at] = code;
                lazy = 1;
            }
        }
    }
    if (!lazy) {
        out[code_at] = code;
    }
    return w;
}

void ew_init(ew_encoder_t *enc)
{
    memset(enc, 0, sizeof *enc);
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    put_u32(p, bits);
}

/* Write the header for a frame of `payload_len` bytes; 0 if it cannot fit. */
static size_t begin(ew_encoder_t *enc, uint8_t type, uint64_t time_us, size_t payload_len)
{
    uint8_t *p = enc->raw;
    if (payload_len > EW_MAX_FRAME_LEN - EW_HEADER_LEN - EW_CRC_LEN) {
        return 0;
    }
    p[0] = EW_PROTOCOL_VERSION;
    p[1] = type;
    put_u16(p + 2, enc->seq);
    put_u32(p + 4, (uint32_t)time_us);
    put_u32(p + 8, (uint32_t)(time_us >> 32));
    return EW_HEADER_LEN;
}

/* Append the CRC, stuff the frame between two delimiters, advance seq. */
static size_t finish(ew_encoder_t *enc, size_t len)
{
    size_t n;
    put_u32(enc->raw + len, ew_crc32(enc->raw, len));
    len += EW_CRC_LEN;
    enc->wire[0] = 0;
    n = ew_cobs_encode(enc->raw, len, enc->wire + 1);
    enc->wire[n + 1] = 0;
    enc->seq = (uint16_t)(enc->seq + 1u);
    return n + 2;
}

static size_t put_str8(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (uint8_t)n;
    memcpy(p + 1, s, n);
    return n + 1;
}

size_t ew_hello(ew_encoder_t *enc, uint64_t time_us, const ew_hello_t *h)
{
    size_t need = 10u + 1u + strlen(h->device_id) + 1u + strlen(h->firmware);
    size_t len, i;
    uint8_t *p;
    if (h->n_channels == 0 || strlen(h->device_id) > 255u || strlen(h->firmware) > 255u) {
        return 0;
    }
    for (i = 0; i < h->n_channels; i++) {
        if (strlen(h->names[i]) > 255u || strlen(h->units[i]) > 255u) {
            return 0;
        }
        need += 2u + strlen(h->names[i]) + strlen(h->units[i]) + 4u;
    }
    len = begin(enc, EW_HELLO, time_us, need);
    if (len == 0) {
        return 0;
    }
    p = enc->raw + len;
    put_u32(p, h->boot_id);
    put_f32(p + 4, h->sample_rate_hz);
    p[8] = h->sample_format;
    p[9] = h->n_channels;
    p += 10;
    p += put_str8(p, h->device_id);
    p += put_str8(p, h->firmware);
    for (i = 0; i < h->n_channels; i++) {
        p += put_str8(p, h->names[i]);
        p += put_str8(p, h->units[i]);
        put_f32(p, h->scales[i]);
        p += 4;
    }
    return finish(enc, (size_t)(p - enc->raw));
}

static size_t samples_header(ew_encoder_t *enc, uint64_t time_us, uint8_t n_channels,
                             uint16_t n_samples, uint8_t format, size_t value_size)
{
    size_t len;
    if (n_channels == 0 || n_samples == 0) {
        return 0;
    }
    len = begin(enc, EW_SAMPLES, time_us, 4u + (size_t)n_channels * n_samples * value_size);
    if (len == 0) {
        return 0;
    }
    enc->raw[len] = n_channels;
    enc->raw[len + 1] = format;
    put_u16(enc->raw + len + 2, n_samples);
    return len + 4u;
}

size_t ew_samples_i16(ew_encoder_t *enc, uint64_t time_us, uint8_t n_channels,
                      uint16_t n_samples, const int16_t *values)
{
    size_t len = samples_header(enc, time_us, n_channels, n_samples, EW_INT16, 2u);
    size_t i, n = (size_t)n_channels * n_samples;
    if (len == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        put_u16(enc->raw + len, (uint16_t)values[i]);
        len += 2u;
    }
    return finish(enc, len);
}

size_t ew_samples_f32(ew_encoder_t *enc, uint64_t time_us, uint8_t n_channels,
                      uint16_t n_samples, const float *values)
{
    size_t len = samples_header(enc, time_us, n_channels, n_samples, EW_FLOAT32, 4u);
    size_t i, n = (size_t)n_channels * n_samples;
    if (len == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        put_f32(enc->raw + len, values[i]);
        len += 4u;
    }
    return finish(enc, len);
}

size_t ew_heartbeat(ew_encoder_t *enc, uint64_t time_us)
{
    size_t len = begin(enc, EW_HEARTBEAT, time_us, 0);
    return finish(enc, len);
}

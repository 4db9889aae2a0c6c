/*
 * ewframe: portable C99 encoder of the edgewatch serial protocol, version 1.
 *
 * No malloc, no stdio: every frame is built in the caller's ew_encoder_t and
 * the result is a pointer/length pair ready for Serial.write(). The Python
 * decoder (firmware_bridge/protocol.py) decodes these bytes exactly; the
 * golden vectors in tests/vectors/frames.json pin both sides.
 *
 * Assumes IEEE-754 binary32 `float` (true on AVR, ARM Cortex-M, Xtensa, x86).
 */
#ifndef EWFRAME_H
#define EWFRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EW_PROTOCOL_VERSION 1u

/* Largest unencoded frame (header + payload + CRC). Override with -D to save
 * RAM on small boards; the gateway accepts up to 4096 by default. */
#ifndef EW_MAX_FRAME_LEN
#define EW_MAX_FRAME_LEN 512u
#endif

#define EW_HEADER_LEN 12u
#define EW_CRC_LEN 4u
/* leading 0x00 + worst-case COBS + trailing 0x00 */
#define EW_MAX_WIRE_LEN (EW_MAX_FRAME_LEN + EW_MAX_FRAME_LEN / 254u + 3u)

enum ew_frame_type { EW_HELLO = 1, EW_SAMPLES = 2, EW_HEARTBEAT = 3 };
enum ew_sample_format { EW_INT16 = 1, EW_FLOAT32 = 2 };

typedef struct {
    uint32_t boot_id;          /* new random value at every boot */
    float sample_rate_hz;      /* nominal rate of the samples */
    uint8_t sample_format;     /* enum ew_sample_format */
    uint8_t n_channels;
    const char *device_id;     /* UTF-8, at most 255 bytes each */
    const char *firmware;
    const char *const *names;  /* n_channels entries */
    const char *const *units;
    const float *scales;       /* engineering units per int16 count */
} ew_hello_t;

typedef struct {
    uint16_t seq;                      /* sequence number of the next frame */
    uint8_t raw[EW_MAX_FRAME_LEN];     /* frame under construction */
    uint8_t wire[EW_MAX_WIRE_LEN];     /* the bytes to send */
} ew_encoder_t;

/* CRC-32 (IEEE 802.3 / zlib): ew_crc32("123456789", 9) == 0xCBF43926. */
uint32_t ew_crc32(const uint8_t *data, size_t len);

/* Canonical COBS; `out` must hold len + len / 254 + 1 bytes. Returns the length. */
size_t ew_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);

void ew_init(ew_encoder_t *enc);

/* Each encoder returns the length of enc->wire, or 0 if the frame would not
 * fit EW_MAX_FRAME_LEN or an argument is invalid (nothing is sent, seq is kept). */
size_t ew_hello(ew_encoder_t *enc, uint64_t time_us, const ew_hello_t *hello);
size_t ew_samples_i16(ew_encoder_t *enc, uint64_t time_us, uint8_t n_channels,
                      uint16_t n_samples, const int16_t *values);
size_t ew_samples_f32(ew_encoder_t *enc, uint64_t time_us, uint8_t n_channels,
                      uint16_t n_samples, const float *values);
size_t ew_heartbeat(ew_encoder_t *enc, uint64_t time_us);

#ifdef __cplusplus
}
#endif

#endif /* EWFRAME_H */

/* Host unit tests of the C encoder: make -C firmware_bridge/firmware test */
#include <stdio.h>
#include <string.h>

#include "../edgewatch_adxl345/src/ewframe.h"

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* Reference COBS decoder, only for the round trip below. */
static size_t cobs_decode(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t r = 0, w = 0, i;
    while (r < len) {
        uint8_t code = in[r++];
        for (i = 1; i < code; i++) {
            out[w++] = in[r++];
        }
        if (code != 0xFF && r < len) {
            out[w++] = 0;
        }
    }
    return w;
}

static void test_crc(void)
{
    CHECK(ew_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926UL);
    CHECK(ew_crc32((const uint8_t *)"", 0) == 0x00000000UL);
}

static void test_cobs_vectors(void)
{
    static const uint8_t zero1[1] = {0};
    static const uint8_t zero2[2] = {0, 0};
    static const uint8_t mixed[4] = {0x11, 0x22, 0x00, 0x33};
    uint8_t out[600];
    size_t n;

    n = ew_cobs_encode(zero1, 0, out);
    CHECK(n == 1 && out[0] == 0x01);
    n = ew_cobs_encode(zero1, 1, out);
    CHECK(n == 2 && out[0] == 0x01 && out[1] == 0x01);
    n = ew_cobs_encode(zero2, 2, out);
    CHECK(n == 3 && out[0] == 1 && out[1] == 1 && out[2] == 1);
    n = ew_cobs_encode(mixed, 4, out);
    CHECK(n == 5 && out[0] == 3 && out[1] == 0x11 && out[2] == 0x22 && out[3] == 2 && out[4] == 0x33);
}

static void test_cobs_round_trip_all_lengths(void)
{
    uint8_t in[600], enc[700], dec[700];
    size_t len, i, n, m;
    for (len = 0; len < 600; len++) {
        for (i = 0; i < len; i++) {
            in[i] = (uint8_t)((i * 7 + len) % 5 == 0 ? 0 : (i % 251) + 1);
        }
        n = ew_cobs_encode(in, len, enc);
        CHECK(n <= len + len / 254 + 1);
        CHECK(memchr(enc, 0, n) == NULL);
        m = cobs_decode(enc, n, dec);
        CHECK(m == len && memcmp(in, dec, len) == 0);
    }
}

static void test_frames(void)
{
    static ew_encoder_t enc;
    static int16_t big[EW_MAX_FRAME_LEN];
    size_t n;

    ew_init(&enc);
    n = ew_heartbeat(&enc, 42u);
    CHECK(n > 2 && enc.wire[0] == 0 && enc.wire[n - 1] == 0);
    CHECK(memchr(enc.wire + 1, 0, n - 2) == NULL);
    CHECK(enc.seq == 1);

    /* Too many samples for the buffer: refused, nothing consumed. */
    n = ew_samples_i16(&enc, 0, 1, (uint16_t)EW_MAX_FRAME_LEN, big);
    CHECK(n == 0 && enc.seq == 1);
    n = ew_samples_i16(&enc, 0, 0, 1, big);
    CHECK(n == 0);

    enc.seq = 65535u;
    n = ew_heartbeat(&enc, 0);
    CHECK(n > 0 && enc.seq == 0);
}

int main(void)
{
    test_crc();
    test_cobs_vectors();
    test_cobs_round_trip_all_lengths();
    test_frames();
    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("all C tests passed\n");
    return 0;
}

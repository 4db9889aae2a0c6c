/* Prints the golden frames, one "name hex" line each, for the Python tests to
 * compare with tests/vectors/frames.json and with the Python encoder. */
#include <stdio.h>

#include "../edgewatch_adxl345/src/ewframe.h"

static ew_encoder_t enc; /* static: the encoder never needs the stack */

static void emit(const char *name, const uint8_t *p, size_t n)
{
    size_t i;
    printf("%s ", name);
    for (i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

int main(void)
{
    static const char *const names[3] = {"ax", "ay", "az"};
    static const char *const units[3] = {"g", "g", "g"};
    static const float scales[3] = {0.0039f, 0.0039f, 0.0039f};
    static const int16_t i16[12] = {0, -1, 32767, -32768, 256, 1, 255, -256, 12, 0, 0, 7};
    static const float f32[6] = {1.5f, -2.25f, 0.0f, 0.001f, 3.14159f, 100.0f};
    static int16_t ramp[200];
    static uint8_t cobs[600];
    static uint8_t ones[255];
    ew_hello_t hello;
    size_t n, i;

    ew_init(&enc);
    n = ew_heartbeat(&enc, 0);
    emit("heartbeat_zero", enc.wire, n);

    enc.seq = 65535u;
    n = ew_heartbeat(&enc, ((uint64_t)1 << 40) + 5u);
    emit("heartbeat_wrap", enc.wire, n);

    hello.boot_id = 0x12345678UL;
    hello.sample_rate_hz = 1600.0f;
    hello.sample_format = EW_INT16;
    hello.n_channels = 3;
    hello.device_id = "adxl345-1";
    hello.firmware = "1.0.0";
    hello.names = names;
    hello.units = units;
    hello.scales = scales;
    enc.seq = 0;
    n = ew_hello(&enc, 1000u, &hello);
    emit("hello_adxl345", enc.wire, n);

    enc.seq = 1;
    n = ew_samples_i16(&enc, 2000u, 3, 4, i16);
    emit("samples_i16", enc.wire, n);

    enc.seq = 2;
    n = ew_samples_f32(&enc, 3000u, 2, 3, f32);
    emit("samples_f32", enc.wire, n);

    for (i = 0; i < 200; i++) {
        ramp[i] = (int16_t)((i + 1) * 257);
    }
    enc.seq = 3;
    n = ew_samples_i16(&enc, 4000u, 1, 200, ramp);
    emit("samples_i16_long", enc.wire, n);

    for (i = 0; i < sizeof ones; i++) {
        ones[i] = 1;
    }
    n = ew_cobs_encode(ones, 254, cobs);
    emit("cobs_254_ones", cobs, n);
    n = ew_cobs_encode(ones, 255, cobs);
    emit("cobs_255_ones", cobs, n);
    return 0;
}

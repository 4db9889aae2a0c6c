/*
 * edgewatch reference sketch: ADXL345 3-axis accelerometer -> edgewatch binary protocol.
 *
 * Wiring: I2C (SDA/SCL, address 0x53) by default; define EW_USE_SPI for SPI (CS on EW_CS_PIN).
 * Rate: EW_RATE_HZ, one of 100, 200, 400, 800, 1600, 3200 (ADXL345 output data rates).
 * Serial: EW_BAUD (921600 on ESP32/STM32; use 500000 or less on AVR boards).
 * Frames: EW_PER_FRAME samples per SAMPLES frame, a HELLO every second, a HEARTBEAT
 * once a second while the sensor is missing (with an "ERR" free text never mixed in:
 * binary mode sends frames only).
 */
#include <Arduino.h>
#include <Wire.h>
#include <SPI.h>

#include "src/ewframe.h"

#ifndef EW_RATE_HZ
#define EW_RATE_HZ 800
#endif
#ifndef EW_BAUD
#define EW_BAUD 921600
#endif
#ifndef EW_PER_FRAME
#define EW_PER_FRAME 16
#endif
#ifndef EW_CS_PIN
#define EW_CS_PIN 10
#endif

#define ADXL_ADDR 0x53
#define REG_DEVID 0x00
#define REG_BW_RATE 0x2C
#define REG_POWER_CTL 0x2D
#define REG_DATA_FORMAT 0x31
#define REG_DATAX0 0x32

static ew_encoder_t enc;                       /* static: no heap, no big stack frames */
static int16_t block[EW_PER_FRAME * 3];
static uint16_t n_in_block;
static uint64_t block_t_us;
static uint32_t last_micros;
static uint64_t micros_hi;                      /* extends micros() to 64 bits */
static uint64_t next_sample_us, next_hello_us;
static bool sensor_ok;

static const char *const NAMES[3] = {"ax", "ay", "az"};
static const char *const UNITS[3] = {"g", "g", "g"};
static const float SCALES[3] = {0.0039f, 0.0039f, 0.0039f}; /* full resolution: 3.9 mg/LSB */
static ew_hello_t hello = {0, (float)EW_RATE_HZ, EW_INT16, 3, "adxl345", "edgewatch-ref 1.0.0",
                           NAMES, UNITS, SCALES};

static uint64_t now_us(void) {
  uint32_t m = micros();
  if (m < last_micros) micros_hi += (uint64_t)1 << 32;
  last_micros = m;
  return micros_hi | m;
}

static void write_reg(uint8_t reg, uint8_t value) {
#ifdef EW_USE_SPI
  digitalWrite(EW_CS_PIN, LOW);
  SPI.transfer(reg & 0x3F);
  SPI.transfer(value);
  digitalWrite(EW_CS_PIN, HIGH);
#else
  Wire.beginTransmission(ADXL_ADDR);
  Wire.write(reg);
  Wire.write(value);
  Wire.endTransmission();
#endif
}

static bool read_regs(uint8_t reg, uint8_t *out, uint8_t n) {
#ifdef EW_USE_SPI
  digitalWrite(EW_CS_PIN, LOW);
  SPI.transfer(0x80 | (n > 1 ? 0x40 : 0) | (reg & 0x3F));
  for (uint8_t i = 0; i < n; i++) out[i] = SPI.transfer(0x00);
  digitalWrite(EW_CS_PIN, HIGH);
  return true;
#else
  Wire.beginTransmission(ADXL_ADDR);
  Wire.write(reg);
  if (Wire.endTransmission(false) != 0) return false;
  if (Wire.requestFrom((uint8_t)ADXL_ADDR, n) != n) return false;
  for (uint8_t i = 0; i < n; i++) out[i] = Wire.read();
  return true;
#endif
}

static uint8_t rate_code(uint16_t hz) {
  switch (hz) {
    case 100: return 0x0A; case 200: return 0x0B; case 400: return 0x0C;
    case 800: return 0x0D; case 1600: return 0x0E; default: return 0x0F; /* 3200 */
  }
}

static bool sensor_begin(void) {
  uint8_t id = 0;
#ifdef EW_USE_SPI
  pinMode(EW_CS_PIN, OUTPUT);
  digitalWrite(EW_CS_PIN, HIGH);
  SPI.begin();
  SPI.beginTransaction(SPISettings(5000000, MSBFIRST, SPI_MODE3));
#else
  Wire.begin();
  Wire.setClock(400000);
#endif
  if (!read_regs(REG_DEVID, &id, 1) || id != 0xE5) return false;
  write_reg(REG_BW_RATE, rate_code(EW_RATE_HZ));
  write_reg(REG_DATA_FORMAT, 0x0B);   /* full resolution, +/-16 g */
  write_reg(REG_POWER_CTL, 0x08);     /* measure */
  return true;
}

static void send(size_t n) {
  if (n) Serial.write(enc.wire, n);
}

void setup() {
  Serial.begin(EW_BAUD);
  ew_init(&enc);
#if defined(ESP32)
  hello.boot_id = esp_random();
#else
  randomSeed(analogRead(A0) ^ micros());
  hello.boot_id = ((uint32_t)random(0x10000) << 16) ^ (uint32_t)random(0x10000) ^ micros();
#endif
  sensor_ok = sensor_begin();
  uint64_t t = now_us();
  send(ew_hello(&enc, t, &hello));
  next_hello_us = t + 1000000ULL;
  next_sample_us = t;
}

void loop() {
  uint64_t t = now_us();
  if (t >= next_hello_us) {
    send(ew_hello(&enc, t, &hello));
    if (!sensor_ok) {
      send(ew_heartbeat(&enc, t));
      sensor_ok = sensor_begin();  /* a cable may have been re-seated */
    }
    next_hello_us += 1000000ULL;
  }
  if (!sensor_ok || t < next_sample_us) return;
  uint8_t raw[6];
  if (!read_regs(REG_DATAX0, raw, 6)) {
    sensor_ok = false;
    n_in_block = 0;             /* drop the partial block: its timing is broken */
    return;
  }
  if (n_in_block == 0) block_t_us = next_sample_us;  /* nominal time of the first sample */
  for (uint8_t c = 0; c < 3; c++) {
    block[n_in_block * 3 + c] = (int16_t)((uint16_t)raw[2 * c] | ((uint16_t)raw[2 * c + 1] << 8));
  }
  next_sample_us += 1000000ULL / EW_RATE_HZ;
  if (++n_in_block == EW_PER_FRAME) {
    send(ew_samples_i16(&enc, block_t_us, 3, n_in_block, block));
    n_in_block = 0;
  }
}

// Proof that libusb-1.0 drives an emulated USB device under umockdev (USB-EMULATION.md):
// enumeration by VID/PID, control transfers (GET_INFO, SET_IMAGING, a STALL), bulk-IN frames
// (one synchronous, then a stream with several asynchronous transfers in flight), a corrupted
// frame, and unplug. Run: umockdev-wrapper ./usb-emulation-probe [frames]
//
// The replay route: `usb-emulation-probe --write-capture DIR` writes DIR/probe.umockdev and
// DIR/probe.pcap; `umockdev-run -d DIR/probe.umockdev -p PROBE_SYSPATH=DIR/probe.pcap --
// usb-emulation-probe --replayed` then does only what the capture holds (GET_INFO,
// START_STREAMING, one bulk-IN transfer).
#include "capture.h"
#include "emulated_probe.h"

#include <libusb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TRANSFER_LENGTH = ((MAX_FRAME_BYTES + 1 + 511) / 512) * 512, IN_FLIGHT = 4 };

static int failures = 0;
static int side = 256;  // frame width and height the host asks for

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) { printf("ok    "); } else { printf("FAIL  "); failures++; } \
        printf(__VA_ARGS__);                                               \
        printf("\n");                                                      \
    } while (0)

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

// USB-PROBE.md §4.3, reduced to one frame per transfer: NULL when valid, else the error name.
static const char *validate_frame(const uint8_t *b, int length) {
    if (length < FRAME_HEADER_LENGTH) return "truncated";
    if (le32(b) != FRAME_MAGIC) return "bad_magic";
    if (b[4] != 1) return "unsupported_version";
    uint32_t payload = le32(b + 32), width = b[24] | b[25] << 8, height = b[26] | b[27] << 8;
    if (b[5] != FRAME_HEADER_LENGTH || b[28] != 8 || payload != width * height) return "bad_header";
    if ((uint32_t)length != FRAME_HEADER_LENGTH + payload) return length < (int)(FRAME_HEADER_LENGTH + payload) ? "truncated" : "oversized";
    uint32_t crc = crc32c(crc32c(0, b, 60), b + FRAME_HEADER_LENGTH, payload);
    return crc == le32(b + 60) ? NULL : "crc_mismatch";
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

// --- asynchronous stream -------------------------------------------------------------------------

typedef struct {
    int wanted, received, valid, crc_mismatch, other_errors, in_flight, no_device;
    uint64_t expected, dropped, bytes;
} Stream;

static void LIBUSB_CALL on_frame(struct libusb_transfer *t) {
    Stream *s = t->user_data;
    s->in_flight--;
    if (t->status == LIBUSB_TRANSFER_NO_DEVICE) { s->no_device++; return; }
    if (t->status != LIBUSB_TRANSFER_COMPLETED) { s->other_errors++; return; }
    s->received++;
    s->bytes += (uint64_t)t->actual_length;
    const char *error = validate_frame(t->buffer, t->actual_length);
    if (!error) {
        uint64_t number = le64(t->buffer + 8);
        if (number > s->expected) s->dropped += number - s->expected;
        s->expected = number + 1;
        s->valid++;
    } else if (!strcmp(error, "crc_mismatch")) {
        s->crc_mismatch++;
    } else {
        s->other_errors++;
    }
    if (s->received + s->in_flight < s->wanted && libusb_submit_transfer(t) == 0) s->in_flight++;
}

static void run_stream(libusb_context *ctx, libusb_device_handle *h, EmulatedProbe *probe, int frames,
                       uint64_t expected) {
    Stream s = {.wanted = frames, .expected = expected};
    struct libusb_transfer *transfers[IN_FLIGHT];
    for (int i = 0; i < IN_FLIGHT; i++) {
        transfers[i] = libusb_alloc_transfer(0);
        libusb_fill_bulk_transfer(transfers[i], h, 0x81, malloc(TRANSFER_LENGTH), TRANSFER_LENGTH, on_frame, &s, 0);
        transfers[i]->flags = LIBUSB_TRANSFER_FREE_BUFFER;
    }
    emulated_probe_corrupt_next_frame(probe);  // the first frame of the stream arrives corrupted
    double start = seconds();
    for (int i = 0; i < IN_FLIGHT; i++)
        if (libusb_submit_transfer(transfers[i]) == 0) s.in_flight++;
    while (s.in_flight > 0) {
        struct timeval tv = {1, 0};
        if (libusb_handle_events_timeout_completed(ctx, &tv, NULL) < 0) break;
    }
    double elapsed = seconds() - start;
    for (int i = 0; i < IN_FLIGHT; i++) libusb_free_transfer(transfers[i]);
    CHECK(s.valid == frames - 1, "async stream: %d transfers, %d frames intact (%d in flight at a time)",
          s.received, s.valid, IN_FLIGHT);
    CHECK(s.crc_mismatch == 1 && s.other_errors == 0, "corrupted frame rejected: crc_mismatch=%d other errors=%d",
          s.crc_mismatch, s.other_errors);
    CHECK(s.dropped == 1, "the rejected frame shows as a gap in frame numbers: dropped=%llu (USB-PROBE.md 4.4)",
          (unsigned long long)s.dropped);
    printf("      throughput through umockdev: %.0f frames/s, %.1f MB/s (%d frames of %d bytes in %.3f s)\n",
           s.received / elapsed, s.bytes / elapsed / 1e6, s.received, FRAME_HEADER_LENGTH + side * side, elapsed);
}

// --- unplug --------------------------------------------------------------------------------------

static int left_events = 0;

static int LIBUSB_CALL on_hotplug(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event event, void *data) {
    (void)ctx; (void)dev; (void)data;
    if (event == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT) left_events++;
    return 0;
}

static void run_unplug(libusb_context *ctx, libusb_device_handle *h, EmulatedProbe *probe) {
    libusb_hotplug_callback_handle hotplug;
    int r = libusb_hotplug_register_callback(ctx, LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, 0, PROBE_VID, PROBE_PID,
                                             LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, NULL, &hotplug);
    CHECK(r == 0, "hot-plug callback registered (%s)", libusb_error_name(r));
    // A transfer in flight when the device goes: the probe is not streaming, so it waits.
    uint8_t stop_ok = libusb_control_transfer(h, 0x41, REQ_STOP_STREAMING, 0, 0, NULL, 0, 1000) == 0;
    Stream s = {.wanted = 1};
    struct libusb_transfer *t = libusb_alloc_transfer(0);
    libusb_fill_bulk_transfer(t, h, 0x81, malloc(TRANSFER_LENGTH), TRANSFER_LENGTH, on_frame, &s, 0);
    t->flags = LIBUSB_TRANSFER_FREE_BUFFER;
    if (libusb_submit_transfer(t) == 0) s.in_flight++;
    emulated_probe_unplug(probe);
    double deadline = seconds() + 3;
    while ((s.in_flight > 0 || left_events == 0) && seconds() < deadline) {
        struct timeval tv = {0, 100000};
        libusb_handle_events_timeout_completed(ctx, &tv, NULL);
    }
    CHECK(stop_ok && s.no_device == 1, "transfer in flight at unplug ends with LIBUSB_TRANSFER_NO_DEVICE (%d)",
          s.no_device);
    CHECK(left_events == 1, "hot-plug DEVICE_LEFT event delivered (%d)", left_events);
    uint8_t info[255];
    r = libusb_control_transfer(h, 0xC1, REQ_GET_INFO, 0, 0, info, sizeof info, 1000);
    CHECK(r == LIBUSB_ERROR_NO_DEVICE, "control transfer after unplug: %s", libusb_error_name(r));
    libusb_free_transfer(t);
    libusb_hotplug_deregister_callback(ctx, hotplug);
}

// --- main ----------------------------------------------------------------------------------------

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--write-capture")) {
        char *message = NULL;
        if (probe_write_capture(argv[2], TRANSFER_LENGTH, &message) != 0) {
            fprintf(stderr, "%s\n", message);
            return 1;
        }
        return 0;
    }
    gboolean replayed = argc > 1 && !strcmp(argv[1], "--replayed");
    int frames = argc > 1 && !replayed ? atoi(argv[1]) : 300;
    side = getenv("PROBE_SIDE") ? atoi(getenv("PROBE_SIDE")) : 256;
    // umockdev_in_mock_environment() is true only once a testbed exists (UMOCKDEV_DIR is set):
    // what must be there before is the preload library.
    const char *preload = getenv("LD_PRELOAD");
    if (!preload || !strstr(preload, "umockdev")) {
        fprintf(stderr, "not in a umockdev environment: run under `umockdev-wrapper %s`\n", argv[0]);
        return 2;
    }
    UMockdevTestbed *testbed = NULL;
    EmulatedProbe *probe = NULL;
    if (!replayed) {  // under umockdev-run --pcap the testbed and the device come from the command line
        testbed = umockdev_testbed_new();
        char *message = NULL;
        probe = emulated_probe_plug(testbed, &message);
        if (!probe) {
            fprintf(stderr, "%s\n", message);
            return 1;
        }
    }

    libusb_context *ctx = NULL;
    int r = libusb_init(&ctx);
    CHECK(r == 0, "libusb_init: %s", libusb_error_name(r));
    if (r) return 1;
    libusb_device **list = NULL;
    ssize_t count = libusb_get_device_list(ctx, &list);
    libusb_device *found = NULL;
    for (ssize_t i = 0; i < count; i++) {
        struct libusb_device_descriptor d;
        if (libusb_get_device_descriptor(list[i], &d) == 0 && d.idVendor == PROBE_VID && d.idProduct == PROBE_PID)
            found = list[i];
    }
    CHECK(found != NULL, "enumerated %zd device(s); %04x:%04x %s", count, PROBE_VID, PROBE_PID,
          found ? "found" : "missing");
    if (!found) return 1;
    printf("      bus %u address %u speed %d (3 = high)\n", libusb_get_bus_number(found),
           libusb_get_device_address(found), libusb_get_device_speed(found));
    struct libusb_config_descriptor *config = NULL;
    r = libusb_get_active_config_descriptor(found, &config);
    CHECK(r == 0 && config->bNumInterfaces == 1 && config->interface[0].altsetting[0].bInterfaceClass == 0xFF &&
          config->interface[0].altsetting[0].endpoint[0].bEndpointAddress == 0x81 &&
          config->interface[0].altsetting[0].endpoint[0].wMaxPacketSize == 512,
          "config descriptor: vendor interface, bulk EP 0x81, 512-byte packets (%s)", libusb_error_name(r));
    if (config) libusb_free_config_descriptor(config);

    libusb_device_handle *h = NULL;
    r = libusb_open(found, &h);
    CHECK(r == 0, "libusb_open %s: %s", PROBE_DEVNODE, libusb_error_name(r));
    libusb_free_device_list(list, 1);
    if (r) return 1;
    r = libusb_claim_interface(h, 0);
    CHECK(r == 0, "claim interface 0: %s", libusb_error_name(r));

    uint8_t info[255] = {0};
    r = libusb_control_transfer(h, 0xC1, REQ_GET_INFO, 0, 0, info, sizeof info, 1000);
    CHECK(r == PROBE_INFO_LENGTH && info[0] == 1 && !strcmp((char *)info + 8, PROBE_SERIAL),
          "GET_INFO: %d bytes, info_version %u, serial \"%.16s\", max_frame_bytes %u", r, info[0],
          (char *)info + 8, r >= 32 ? le32(info + 28) : 0);

    if (!replayed) {
        uint8_t bad[12] = {10, 0};  // depth 10 mm: below the 40 mm minimum
        r = libusb_control_transfer(h, 0x41, REQ_SET_IMAGING, 0, 0, bad, sizeof bad, 1000);
        uint8_t status[64] = {0};
        int sr = libusb_control_transfer(h, 0xC1, REQ_GET_STATUS, 0, 0, status, sizeof status, 1000);
        CHECK(r == LIBUSB_ERROR_PIPE && sr == PROBE_STATUS_LENGTH && status[3] == 3,
              "SET_IMAGING out of range: %s, GET_STATUS last_error %u (3 = out_of_range)", libusb_error_name(r), status[3]);

        // 160 mm, 8 dB, 60 frames/s, side × side pixels (128, 256 or 512: PROBE_SIDE, default 256)
        uint8_t settings[12] = {160, 0, 0x20, 0x03, 0x70, 0x17, side & 0xFF, side >> 8, side & 0xFF, side >> 8, 7, 0};
        r = libusb_control_transfer(h, 0x41, REQ_SET_IMAGING, 0, 0, settings, sizeof settings, 1000);
        CHECK(r == 12, "SET_IMAGING 160 mm / 8 dB / 60 fps / %dx%d: %s", side, side,
              r < 0 ? libusb_error_name(r) : "12 bytes");
    }
    r = libusb_control_transfer(h, 0x41, REQ_START_STREAMING, 0, 0, NULL, 0, 1000);
    CHECK(r == 0, "START_STREAMING: %s", libusb_error_name(r));

    uint8_t *frame = malloc(TRANSFER_LENGTH);
    int actual = 0;
    r = libusb_bulk_transfer(h, 0x81, frame, TRANSFER_LENGTH, &actual, 1000);
    const char *error = r == 0 ? validate_frame(frame, actual) : "transfer failed";
    CHECK(r == 0 && !error, "bulk IN (sync): %s, %d bytes, frame %llu, %ux%u, settings_seq %u, CRC-32C %s",
          libusb_error_name(r), actual, (unsigned long long)le64(frame + 8), frame[24] | frame[25] << 8,
          frame[26] | frame[27] << 8, frame[30] | frame[31] << 8, error ? error : "ok");
    if (!replayed)
        CHECK((frame[36] | frame[37] << 8) == 160 && (frame[38] | frame[39] << 8) == 800 &&
              (frame[40] | frame[41] << 8) == 6000, "frame header carries the settings in effect: depth %u mm, "
              "gain %d cdB, rate %u cfps", frame[36] | frame[37] << 8, (int16_t)(frame[38] | frame[39] << 8),
              frame[40] | frame[41] << 8);
    printf("      first pixels from the emulator: %u %u %u %u\n", frame[64], frame[65], frame[66], frame[67]);
    uint64_t next = le64(frame + 8) + 1;
    free(frame);

    if (!replayed) {
        run_stream(ctx, h, probe, frames, next);
        run_unplug(ctx, h, probe);
        EmulatedProbeCounters c = emulated_probe_counters(probe);
        printf("      emulator saw %u ioctls: %u SUBMITURB, %u REAPURB(NDELAY) with a URB + %u empty, %u DISCARDURB, "
               "%u control, %u stalled, %u frames, %u unknown (last 0x%lx)\n",
               c.ioctls, c.submits, c.reaps, c.reaps_empty, c.discards, c.controls, c.stalls, c.frames_sent,
               c.unknown_ioctls, c.last_unknown_request);
    } else {
        libusb_release_interface(h, 0);
    }
    libusb_close(h);
    libusb_exit(ctx);
    if (testbed) g_object_unref(testbed);
    printf(failures ? "usb-emulation-probe: %d check(s) FAILED\n" : "usb-emulation-probe: all checks passed\n", failures);
    return failures ? 1 : 0;
}

// An emulated Sono ultrasound probe (firmware-protocol/USB-PROBE.md) in a umockdev testbed:
// a sysfs record that libusb enumerates, and a usbfs ioctl handler that answers the URBs libusb
// submits on /dev/bus/usb/001/002. Test-bench only.
#ifndef SONO_EMULATED_PROBE_H
#define SONO_EMULATED_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <umockdev.h>

#define PROBE_VID 0x1209
#define PROBE_PID 0x5310
#define PROBE_SERIAL "PRB-0001"
#define PROBE_DEVNODE "/dev/bus/usb/001/002"
#define PROBE_SYSPATH "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1"

// USB-PROBE.md §2 and §4.2.
enum {
    REQ_GET_INFO = 0x01,
    REQ_SET_IMAGING = 0x02,
    REQ_START_STREAMING = 0x03,
    REQ_STOP_STREAMING = 0x04,
    REQ_GET_STATUS = 0x05,
    PROBE_INFO_LENGTH = 80,
    PROBE_STATUS_LENGTH = 32,
    FRAME_HEADER_LENGTH = 64,
    FRAME_MAGIC = 0x46504E53,  // "SNPF"
    MAX_FRAME_BYTES = FRAME_HEADER_LENGTH + 512 * 512,
};

typedef struct EmulatedProbe EmulatedProbe;

// What the emulated device saw, for the host-side checks.
typedef struct {
    unsigned ioctls, submits, reaps, reaps_empty, discards, controls, stalls, frames_sent;
    unsigned unknown_ioctls;
    unsigned long last_unknown_request;
} EmulatedProbeCounters;

// Adds the device to `testbed` and attaches the usbfs handler to its node. On failure returns
// NULL and sets `*error` (a message to free with g_free).
EmulatedProbe *emulated_probe_plug(UMockdevTestbed *testbed, char **error);

// USB disconnect: every URB in flight completes with -ENODEV, every later ioctl fails with ENODEV,
// and the device leaves sysfs (umockdev sends the "remove" uevent libusb's hot-plug monitor reads).
void emulated_probe_unplug(EmulatedProbe *probe);

// Makes the next bulk-IN frame carry a wrong CRC (a corrupted frame).
void emulated_probe_corrupt_next_frame(EmulatedProbe *probe);

EmulatedProbeCounters emulated_probe_counters(EmulatedProbe *probe);

uint32_t crc32c(uint32_t crc, const uint8_t *bytes, size_t count);

// The probe's sysfs record (umockdev-record format), to free with g_free.
char *probe_sysfs_record(void);

// GET_INFO's ProbeInfo (PROBE_INFO_LENGTH bytes).
size_t probe_make_info(uint8_t *out);

// The imaging settings a frame is made with (USB-PROBE.md §3.2).
typedef struct {
    uint16_t width, height, settings_seq, depth_mm;
    int16_t gain_cdb;
    uint16_t rate_cfps;
} ProbeFrameSettings;

// Frame `number` as the probe sends it (header with CRC, then a test pattern); `out` must hold
// FRAME_HEADER_LENGTH + width × height bytes. Returns the frame length.
size_t probe_make_frame(uint64_t number, const ProbeFrameSettings *settings, uint8_t *out);

#endif

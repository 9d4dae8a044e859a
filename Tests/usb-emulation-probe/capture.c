// Writes a usbmon capture of the probe (pcap, link type DLT_USB_LINUX_MMAPPED = 220) and its
// sysfs record, for `umockdev-run -d probe.umockdev -p <syspath>=probe.pcap`: the replay route of
// USB-EMULATION.md §2.2. The capture holds exactly what `usb-emulation-probe --replayed` does:
// GET_INFO, START_STREAMING, one bulk-IN transfer of TRANSFER_LENGTH bytes answered with frame 0.
#include "capture.h"

#include "emulated_probe.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v) { p[0] = v & 0xFF; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

typedef struct {
    FILE *file;
    uint64_t time_us;
} Capture;

// One usbmon event: the 64-byte "mmapped" header, then `data_len` bytes.
static void event(Capture *c, uint64_t id, char type, uint8_t transfer, uint8_t endpoint, const uint8_t *setup,
                  int32_t status, uint32_t urb_len, const uint8_t *data, uint32_t data_len) {
    uint8_t h[64] = {0};
    put64(h, id);
    h[8] = (uint8_t)type;
    h[9] = transfer;
    h[10] = endpoint;
    h[11] = 2;                 // device address: the record's devnum
    put16(h + 12, 1);          // bus: the record's busnum
    h[14] = setup ? 0 : '-';   // 0: setup packet present
    h[15] = data_len ? 0 : '<';  // 0: data present
    c->time_us += 1000;
    put64(h + 16, c->time_us / 1000000);
    put32(h + 24, (uint32_t)(c->time_us % 1000000));
    put32(h + 28, (uint32_t)status);
    put32(h + 32, urb_len);
    put32(h + 36, data_len);
    if (setup) memcpy(h + 40, setup, 8);
    uint8_t record[16];
    put32(record, (uint32_t)(c->time_us / 1000000));
    put32(record + 4, (uint32_t)(c->time_us % 1000000));
    put32(record + 8, 64 + data_len);
    put32(record + 12, 64 + data_len);
    fwrite(record, 1, sizeof record, c->file);
    fwrite(h, 1, sizeof h, c->file);
    if (data_len) fwrite(data, 1, data_len, c->file);
}

int probe_write_capture(const char *directory, uint32_t transfer_length, char **error) {
    char *record = probe_sysfs_record();
    char *record_path = g_build_filename(directory, "probe.umockdev", NULL);
    GError *gerror = NULL;
    gboolean written = g_file_set_contents(record_path, record, -1, &gerror);
    g_free(record);
    g_free(record_path);
    if (!written) {
        *error = g_strdup(gerror->message);
        g_error_free(gerror);
        return -1;
    }
    char *pcap_path = g_build_filename(directory, "probe.pcap", NULL);
    Capture c = {fopen(pcap_path, "wb"), 1000000};
    if (!c.file) {
        *error = g_strdup_printf("cannot write %s", pcap_path);
        g_free(pcap_path);
        return -1;
    }
    g_free(pcap_path);
    uint8_t global[24] = {0};
    put32(global, 0xA1B2C3D4);  // classic pcap, microsecond timestamps
    put16(global + 4, 2);
    put16(global + 6, 4);
    put32(global + 16, 1 << 20);  // snapshot length
    put32(global + 20, 220);      // DLT_USB_LINUX_MMAPPED
    fwrite(global, 1, sizeof global, c.file);

    const uint8_t get_info[8] = {0xC1, REQ_GET_INFO, 0, 0, 0, 0, 255, 0};
    uint8_t info[PROBE_INFO_LENGTH];
    probe_make_info(info);
    event(&c, 1, 'S', 2, 0x80, get_info, -115 /* -EINPROGRESS, as usbmon logs a submit */, 255, NULL, 0);
    event(&c, 1, 'C', 2, 0x80, NULL, 0, PROBE_INFO_LENGTH, info, PROBE_INFO_LENGTH);

    const uint8_t start[8] = {0x41, REQ_START_STREAMING, 0, 0, 0, 0, 0, 0};
    event(&c, 2, 'S', 2, 0x00, start, -115, 0, NULL, 0);
    event(&c, 2, 'C', 2, 0x00, NULL, 0, 0, NULL, 0);

    uint8_t *frame = g_malloc(FRAME_HEADER_LENGTH + 256 * 256);
    const ProbeFrameSettings settings = {256, 256, 0, 160, 0, 6000};
    size_t length = probe_make_frame(0, &settings, frame);
    event(&c, 3, 'S', 3, 0x81, NULL, -115, transfer_length, NULL, 0);
    event(&c, 3, 'C', 3, 0x81, NULL, 0, (uint32_t)length, frame, (uint32_t)length);
    g_free(frame);
    return fclose(c.file) == 0 ? 0 : -1;
}

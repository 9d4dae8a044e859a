// The device side: see emulated_probe.h. usbfs semantics follow the kernel's
// drivers/usb/core/devio.c as libusb's linux_usbfs.c uses them; the URB bookkeeping follows
// umockdev's own usbmon replayer (src/umockdev-pcap.vala, IoctlUsbPcapHandler).
#include "emulated_probe.h"

#include <errno.h>
#include <linux/usbdevice_fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

// One submitted URB, held until the host reaps it.
typedef struct {
    UMockdevIoctlData *urb;     // the client's struct usbdevfs_urb (local copy, synced back on reap)
    UMockdevIoctlData *buffer;  // its transfer buffer, NULL for zero length
    int status;                 // 0, or -errno as the kernel reports it (-EPIPE stall, -ENODEV gone)
    int actual_length;
} Urb;

struct EmulatedProbe {
    UMockdevTestbed *testbed;
    UMockdevIoctlBase *handler;
    GMutex lock;             // the handler runs on umockdev's worker thread, the test on its own
    GQueue waiting_bulk;     // bulk-IN URBs waiting for a frame (not streaming)
    GQueue reapable;         // completed URBs in completion order
    gboolean streaming, unplugged, corrupt_next;
    uint64_t frame_number, settings_seq;
    uint16_t width, height, depth_mm, rate_cfps;
    int16_t gain_cdb;
    uint8_t last_error;
    EmulatedProbeCounters counters;
};

static const uint16_t geometries[3][2] = {{128, 128}, {256, 256}, {512, 512}};

// Device, configuration, interface and endpoint descriptors (USB-PROBE.md §1): what the kernel
// exposes as the binary sysfs attribute "descriptors" and libusb parses during enumeration.
static const uint8_t descriptors[] = {
    0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40,              // device: USB 2.0, EP0 64
    PROBE_VID & 0xFF, PROBE_VID >> 8, PROBE_PID & 0xFF, PROBE_PID >> 8,
    0x00, 0x01, 0x01, 0x02, 0x03, 0x01,                          // bcdDevice 1.00, strings, 1 config
    0x09, 0x02, 0x19, 0x00, 0x01, 0x01, 0x00, 0x80, 0xFA,        // config 1, 25 bytes, 500 mA
    0x09, 0x04, 0x00, 0x00, 0x01, 0xFF, 0x01, 0x01, 0x00,        // interface 0: vendor, 1 endpoint
    0x07, 0x05, 0x81, 0x02, 0x00, 0x02, 0x00,                    // EP 0x81 bulk IN, 512 bytes
};

uint32_t crc32c(uint32_t crc, const uint8_t *bytes, size_t count) {
    static uint32_t table[256];
    static gsize ready = 0;
    if (g_once_init_enter(&ready)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        g_once_init_leave(&ready, 1);
    }
    crc = ~crc;
    while (count--) crc = table[(crc ^ *bytes++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v & 0xFF; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void urb_free(Urb *urb) {
    if (urb->buffer) g_object_unref(urb->buffer);
    g_object_unref(urb->urb);
    g_free(urb);
}

static struct usbdevfs_urb *urb_struct(Urb *urb) { return (struct usbdevfs_urb *)urb->urb->data; }

// Writes `count` bytes into the URB's buffer at `offset` (marks it for sync-back on reap).
static void urb_write(Urb *urb, size_t offset, const uint8_t *bytes, size_t count) {
    if (count == 0 || !urb->buffer) return;
    umockdev_ioctl_data_update(urb->buffer, offset, (guint8 *)bytes, (gint)count);
}

// --- the probe's behaviour ---------------------------------------------------------------------

size_t probe_make_info(uint8_t *out) {
    memset(out, 0, PROBE_INFO_LENGTH);
    out[0] = 1; out[1] = PROBE_INFO_LENGTH; out[2] = 1;
    out[4] = 1; out[5] = 0; out[6] = 0;
    memcpy(out + 8, PROBE_SERIAL, strlen(PROBE_SERIAL));
    put32(out + 24, 0x07);                      // gain, depth, frame rate
    put32(out + 28, MAX_FRAME_BYTES);
    put16(out + 32, 40); put16(out + 34, 300);  // depth mm
    put16(out + 36, (uint16_t)-2000); put16(out + 38, 4000);  // gain −20…+40 dB
    put16(out + 40, 100); put16(out + 42, 12000);             // 1…120 frames/s
    put16(out + 44, 8000);                      // 80° sector
    out[46] = 8; out[47] = 3;
    for (int i = 0; i < 3; i++) { put16(out + 48 + 4 * i, geometries[i][0]); put16(out + 50 + 4 * i, geometries[i][1]); }
    return PROBE_INFO_LENGTH;
}

static size_t make_status(EmulatedProbe *p, uint8_t *out) {
    memset(out, 0, PROBE_STATUS_LENGTH);
    out[0] = 1; out[1] = PROBE_STATUS_LENGTH; out[2] = p->streaming ? 1 : 0; out[3] = p->last_error;
    put16(out + 4, (uint16_t)p->settings_seq);
    put16(out + 6, 0x7FFF);
    put64(out + 8, p->frame_number); put64(out + 16, p->frame_number);
    p->last_error = 0;
    return PROBE_STATUS_LENGTH;
}

// SET_IMAGING: 0 when accepted, else the USB-PROBE.md §2 last_error code.
static uint8_t apply_imaging(EmulatedProbe *p, const uint8_t *s) {
    uint16_t depth = get16(s), rate = get16(s + 4), width = get16(s + 6), height = get16(s + 8);
    int16_t gain = (int16_t)get16(s + 2);
    if (depth < 40 || depth > 300 || gain < -2000 || gain > 4000 || rate < 100 || rate > 12000) return 3;
    int known = 0;
    for (int i = 0; i < 3; i++) known |= geometries[i][0] == width && geometries[i][1] == height;
    if (!known) return 4;
    p->depth_mm = depth; p->gain_cdb = gain; p->rate_cfps = rate; p->width = width; p->height = height;
    p->settings_seq = get16(s + 10);
    return 0;
}

// Executes a control URB (setup packet in its first 8 bytes) and completes it.
static void run_control(EmulatedProbe *p, Urb *urb) {
    struct usbdevfs_urb *u = urb_struct(urb);
    p->counters.controls++;
    if (!urb->buffer || u->buffer_length < 8) { urb->status = -EINVAL; return; }
    const uint8_t *setup = urb->buffer->data;
    uint8_t type = setup[0], request = setup[1];
    uint16_t length = get16(setup + 6);
    uint8_t reply[PROBE_INFO_LENGTH];
    size_t reply_length = 0;
    uint8_t error = 0;
    if (type == 0xC1 && request == REQ_GET_INFO) {
        if (length < PROBE_INFO_LENGTH) error = 2; else reply_length = probe_make_info(reply);
    } else if (type == 0xC1 && request == REQ_GET_STATUS) {
        if (length < PROBE_STATUS_LENGTH) error = 2; else reply_length = make_status(p, reply);
    } else if (type == 0x41 && request == REQ_SET_IMAGING) {
        error = length != 12 || u->buffer_length < 20 ? 2 : apply_imaging(p, setup + 8);
        if (!error) urb->actual_length = 12;
    } else if (type == 0x41 && request == REQ_START_STREAMING && length == 0) {
        p->streaming = TRUE; p->frame_number = 0;
    } else if (type == 0x41 && request == REQ_STOP_STREAMING && length == 0) {
        p->streaming = FALSE;
    } else {
        error = 1;
    }
    if (error) {  // protocol STALL: the kernel reports -EPIPE, libusb LIBUSB_ERROR_PIPE
        p->last_error = error;
        p->counters.stalls++;
        urb->status = -EPIPE;
        urb->actual_length = 0;
        return;
    }
    if (reply_length) {
        size_t n = reply_length < length ? reply_length : length;
        urb_write(urb, 8, reply, n);
        urb->actual_length = (int)n;
    }
}

size_t probe_make_frame(uint64_t number, const ProbeFrameSettings *settings, uint8_t *out) {
    uint16_t width = settings->width, height = settings->height;
    size_t payload = (size_t)width * height;
    uint8_t *h = out;
    memset(h, 0, FRAME_HEADER_LENGTH);
    put32(h, FRAME_MAGIC); h[4] = 1; h[5] = FRAME_HEADER_LENGTH;
    put64(h + 8, number);
    uint16_t rate = settings->rate_cfps ? settings->rate_cfps : 6000;
    put64(h + 16, 1000000 + number * 100000000 / rate);  // acquired at the frame rate since 1 s after boot
    put16(h + 24, width); put16(h + 26, height); h[28] = 8; h[29] = 1;
    put16(h + 30, settings->settings_seq); put32(h + 32, (uint32_t)payload);
    put16(h + 36, settings->depth_mm); put16(h + 38, (uint16_t)settings->gain_cdb); put16(h + 40, rate);
    put16(h + 42, 8000);
    for (size_t y = 0; y < height; y++)
        for (size_t x = 0; x < width; x++) out[FRAME_HEADER_LENGTH + y * width + x] = (uint8_t)(x + y + number);
    put32(h + 60, crc32c(crc32c(0, out, 60), out + FRAME_HEADER_LENGTH, payload));
    return FRAME_HEADER_LENGTH + payload;
}

// Fills a bulk-IN URB with the next frame (USB-PROBE.md §4: one frame per transfer).
static void send_frame(EmulatedProbe *p, Urb *urb) {
    struct usbdevfs_urb *u = urb_struct(urb);
    size_t total = FRAME_HEADER_LENGTH + (size_t)p->width * p->height;
    if ((size_t)u->buffer_length < total) {  // host buffer smaller than the frame: babble
        urb->status = -EOVERFLOW;
        return;
    }
    uint8_t *frame = g_malloc(total);
    ProbeFrameSettings settings = {p->width, p->height, (uint16_t)p->settings_seq, p->depth_mm, p->gain_cdb,
                                   p->rate_cfps};
    probe_make_frame(p->frame_number, &settings, frame);
    if (p->corrupt_next) {  // flip one pixel bit after the CRC was computed
        frame[FRAME_HEADER_LENGTH + 5] ^= 0x01;
        p->corrupt_next = FALSE;
    }
    urb_write(urb, 0, frame, total);
    g_free(frame);
    urb->actual_length = (int)total;
    p->frame_number++;
    p->counters.frames_sent++;
}

// --- usbfs ioctls --------------------------------------------------------------------------------

static void complete_ioctl(UMockdevIoctlClient *client, long result, int error) {
    umockdev_ioctl_client_complete(client, result, error);
}

static gboolean handle_submit(EmulatedProbe *p, UMockdevIoctlClient *client, UMockdevIoctlData *arg) {
    GError *error = NULL;
    UMockdevIoctlData *data = umockdev_ioctl_data_resolve(arg, 0, sizeof(struct usbdevfs_urb), &error);
    if (!data) {
        g_clear_error(&error);
        complete_ioctl(client, -1, EFAULT);
        return TRUE;
    }
    Urb *urb = g_new0(Urb, 1);
    urb->urb = data;
    struct usbdevfs_urb *u = urb_struct(urb);
    if (u->buffer_length > 0) {
        urb->buffer = umockdev_ioctl_data_resolve(data, offsetof(struct usbdevfs_urb, buffer),
                                                  (gsize)u->buffer_length, &error);
        if (!urb->buffer) {
            g_clear_error(&error);
            urb_free(urb);
            complete_ioctl(client, -1, EFAULT);
            return TRUE;
        }
    }
    p->counters.submits++;
    if (u->type == USBDEVFS_URB_TYPE_CONTROL && u->endpoint == 0) {
        run_control(p, urb);
        g_queue_push_tail(&p->reapable, urb);
    } else if (u->type == USBDEVFS_URB_TYPE_BULK && u->endpoint == 0x81) {
        if (p->streaming) {
            send_frame(p, urb);
            g_queue_push_tail(&p->reapable, urb);
        } else {
            g_queue_push_tail(&p->waiting_bulk, urb);
        }
    } else {  // no such endpoint on this device
        urb_free(urb);
        complete_ioctl(client, -1, ENOENT);
        return TRUE;
    }
    complete_ioctl(client, 0, 0);
    return TRUE;
}

static gboolean handle_reap(EmulatedProbe *p, UMockdevIoctlClient *client, UMockdevIoctlData *arg) {
    // Streaming started since these were submitted: they get frames now.
    while (p->streaming && !g_queue_is_empty(&p->waiting_bulk)) {
        Urb *urb = g_queue_pop_head(&p->waiting_bulk);
        send_frame(p, urb);
        g_queue_push_tail(&p->reapable, urb);
    }
    Urb *urb = g_queue_pop_head(&p->reapable);
    if (!urb) {
        p->counters.reaps_empty++;
        complete_ioctl(client, -1, p->unplugged ? ENODEV : EAGAIN);
        return TRUE;
    }
    GError *error = NULL;
    // The argument is a `void **` the kernel fills with the address of the reaped URB.
    UMockdevIoctlData *slot = umockdev_ioctl_data_resolve(arg, 0, sizeof(void *), &error);
    if (!slot) {
        g_clear_error(&error);
        g_queue_push_head(&p->reapable, urb);
        complete_ioctl(client, -1, EFAULT);
        return TRUE;
    }
    int status = urb->status, actual = urb->actual_length;
    umockdev_ioctl_data_update(urb->urb, offsetof(struct usbdevfs_urb, status), (guint8 *)&status, sizeof status);
    umockdev_ioctl_data_update(urb->urb, offsetof(struct usbdevfs_urb, actual_length), (guint8 *)&actual,
                               sizeof actual);
    umockdev_ioctl_data_set_ptr(slot, 0, urb->urb);  // `slot` now owns a reference to the URB data
    g_object_unref(slot);
    p->counters.reaps++;
    urb_free(urb);
    complete_ioctl(client, 0, 0);
    return TRUE;
}

static gboolean handle_discard(EmulatedProbe *p, UMockdevIoctlClient *client, UMockdevIoctlData *arg) {
    // The argument is the URB's own address in the client.
    gulong address = *(gulong *)arg->data;
    p->counters.discards++;
    for (GList *l = p->waiting_bulk.head; l; l = l->next) {
        Urb *urb = l->data;
        if (urb->urb->client_addr == address) {
            g_queue_delete_link(&p->waiting_bulk, l);
            urb->status = -ENOENT;  // what the kernel reports for an unlinked URB
            urb->actual_length = 0;
            g_queue_push_tail(&p->reapable, urb);
            complete_ioctl(client, 0, 0);
            return TRUE;
        }
    }
    complete_ioctl(client, -1, EINVAL);  // already completed: libusb then reaps it normally
    return TRUE;
}

static gboolean handle_ioctl(UMockdevIoctlBase *handler, UMockdevIoctlClient *client, gpointer user_data) {
    (void)handler;
    EmulatedProbe *p = user_data;
    gulong request = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData *arg = umockdev_ioctl_client_get_arg(client);
    g_mutex_lock(&p->lock);
    p->counters.ioctls++;
    gboolean handled = TRUE;
    if (p->unplugged && request != USBDEVFS_REAPURB && request != USBDEVFS_REAPURBNDELAY) {
        complete_ioctl(client, -1, ENODEV);
    } else if (request == USBDEVFS_GET_CAPABILITIES) {
        GError *error = NULL;
        UMockdevIoctlData *data = umockdev_ioctl_data_resolve(arg, 0, sizeof(uint32_t), &error);
        if (data) {
            // One URB per bulk transfer of any length, as on an xHCI controller.
            uint32_t caps = USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_CONTINUATION |
                            USBDEVFS_CAP_NO_PACKET_SIZE_LIM | USBDEVFS_CAP_BULK_SCATTER_GATHER |
                            USBDEVFS_CAP_REAP_AFTER_DISCONNECT;
            umockdev_ioctl_data_update(data, 0, (guint8 *)&caps, sizeof caps);
            g_object_unref(data);
            complete_ioctl(client, 0, 0);
        } else {
            g_clear_error(&error);
            complete_ioctl(client, -1, EFAULT);
        }
    } else if (request == USBDEVFS_CLAIMINTERFACE || request == USBDEVFS_RELEASEINTERFACE ||
               request == USBDEVFS_CLEAR_HALT || request == USBDEVFS_RESETEP ||
               request == USBDEVFS_SETINTERFACE || request == USBDEVFS_SETCONFIGURATION ||
               request == USBDEVFS_DISCONNECT_CLAIM) {
        complete_ioctl(client, 0, 0);
    } else if (request == USBDEVFS_GETDRIVER) {
        complete_ioctl(client, -1, ENODATA);  // no kernel driver bound to the interface
    } else if (request == USBDEVFS_SUBMITURB) {
        handle_submit(p, client, arg);
    } else if (request == USBDEVFS_REAPURB || request == USBDEVFS_REAPURBNDELAY) {
        handle_reap(p, client, arg);
    } else if (request == USBDEVFS_DISCARDURB) {
        handle_discard(p, client, arg);
    } else {
        p->counters.unknown_ioctls++;
        p->counters.last_unknown_request = request;
        complete_ioctl(client, -1, ENOTTY);
    }
    g_mutex_unlock(&p->lock);
    return handled;
}

// --- plugging ------------------------------------------------------------------------------------

char *probe_sysfs_record(void) {
    GString *hex = g_string_new(NULL);
    for (size_t i = 0; i < sizeof descriptors; i++) g_string_append_printf(hex, "%02X", descriptors[i]);
    // The sysfs record of a real high-speed device, as umockdev-record writes it. "N:" with
    // contents makes the /dev node (reading a usbfs node returns the descriptors); "H:" is a
    // binary attribute. libusb (udev backend) lists SUBSYSTEM=usb, DEVTYPE=usb_device, reads
    // busnum/devnum/speed/descriptors/bConfigurationValue and opens DEVNAME.
    char *record = g_strdup_printf(
        "P: /devices/pci0000:00/0000:00:14.0/usb1/1-1\n"
        "N: bus/usb/001/002=%s\n"
        "E: DEVNAME=" PROBE_DEVNODE "\n"
        "E: DEVTYPE=usb_device\n"
        "E: DRIVER=usb\n"
        "E: PRODUCT=1209/5310/100\n"
        "E: TYPE=0/0/0\n"
        "E: BUSNUM=001\n"
        "E: DEVNUM=002\n"
        "E: MAJOR=189\n"
        "E: MINOR=1\n"
        "E: SUBSYSTEM=usb\n"
        "A: busnum=1\\n\n"
        "A: devnum=2\\n\n"
        "A: speed=480\\n\n"
        "A: bConfigurationValue=1\\n\n"
        "A: bNumConfigurations=1\\n\n"
        "A: bNumInterfaces= 1\\n\n"
        "A: idVendor=1209\\n\n"
        "A: idProduct=5310\\n\n"
        "A: manufacturer=Sono\\n\n"
        "A: product=Sono ultrasound probe\\n\n"
        "A: serial=" PROBE_SERIAL "\\n\n"
        "A: dev=189:1\\n\n"
        "H: descriptors=%s\n",
        hex->str, hex->str);
    g_string_free(hex, TRUE);
    return record;
}

EmulatedProbe *emulated_probe_plug(UMockdevTestbed *testbed, char **message) {
    char *record = probe_sysfs_record();
    GError *error = NULL;
    gboolean added = umockdev_testbed_add_from_string(testbed, record, &error);
    g_free(record);
    if (!added) {
        *message = g_strdup_printf("cannot add the probe's sysfs record: %s", error->message);
        g_error_free(error);
        return NULL;
    }
    EmulatedProbe *p = g_new0(EmulatedProbe, 1);
    p->testbed = testbed;
    g_mutex_init(&p->lock);
    g_queue_init(&p->waiting_bulk);
    g_queue_init(&p->reapable);
    p->width = 256; p->height = 256; p->depth_mm = 160; p->rate_cfps = 6000;
    p->handler = umockdev_ioctl_base_new();
    g_signal_connect(p->handler, "handle-ioctl", G_CALLBACK(handle_ioctl), p);
    if (!umockdev_testbed_attach_ioctl(testbed, PROBE_DEVNODE, p->handler, &error)) {
        *message = g_strdup_printf("cannot attach the usbfs handler to " PROBE_DEVNODE ": %s", error->message);
        g_error_free(error);
        return NULL;
    }
    return p;
}

void emulated_probe_unplug(EmulatedProbe *p) {
    g_mutex_lock(&p->lock);
    p->unplugged = TRUE;
    p->streaming = FALSE;
    while (!g_queue_is_empty(&p->waiting_bulk)) {
        Urb *urb = g_queue_pop_head(&p->waiting_bulk);
        urb->status = -ENODEV;  // what devio.c reports for URBs killed by a disconnect
        urb->actual_length = 0;
        g_queue_push_tail(&p->reapable, urb);
    }
    g_mutex_unlock(&p->lock);
    // remove_device only deletes the sysfs tree; the "remove" uevent libusb's udev monitor
    // waits for must be sent first, while the device's properties (DEVNAME) still exist.
    umockdev_testbed_uevent(p->testbed, PROBE_SYSPATH, "remove");
    umockdev_testbed_remove_device(p->testbed, PROBE_SYSPATH);
}

void emulated_probe_corrupt_next_frame(EmulatedProbe *p) {
    g_mutex_lock(&p->lock);
    p->corrupt_next = TRUE;
    g_mutex_unlock(&p->lock);
}

EmulatedProbeCounters emulated_probe_counters(EmulatedProbe *p) {
    g_mutex_lock(&p->lock);
    EmulatedProbeCounters c = p->counters;
    g_mutex_unlock(&p->lock);
    return c;
}

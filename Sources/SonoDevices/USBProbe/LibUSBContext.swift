internal import CLibUSB
import Foundation
import SonoSystem
import Synchronization

/// One libusb context and the thread that handles its events: every asynchronous transfer's
/// callback and every hot-plug callback runs on that thread ("sono-usb-events"). Synchronous
/// libusb calls (control transfers) may be made from any other thread meanwhile; libusb lets
/// them wait on the event thread's progress.
final class LibUSBContext: @unchecked Sendable {
    // @unchecked: `context` is fixed after init and libusb contexts are thread-safe.
    let context: OpaquePointer
    private let running = Atomic<Bool>(true)
    private let stopped = DispatchSemaphore(value: 0)
    /// `paused`: the event thread must stay out of libusb; `handling`: it is inside it.
    private let pause = NSCondition()
    private var paused = false
    private var handling = false

    init() throws(USBError) {
        var context: OpaquePointer?
        let result = libusb_init(&context)
        guard result == 0, let context else {
            throw .unavailable("libusb_init: \(USBError.name(of: result)) (is /dev/bus/usb present? inside a "
                + "container, pass the USB bus through)")
        }
        self.context = context
        let thread = Thread { [self] in
            ThreadScheduling.nameCurrentThread("sono-usb-events")
            while running.load(ordering: .acquiring) {
                pause.lock()
                while paused, running.load(ordering: .acquiring) { pause.wait() }
                handling = true
                pause.unlock()
                var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
                _ = libusb_handle_events_timeout_completed(self.context, &timeout, nil)
                pause.lock()
                handling = false
                pause.broadcast()
                pause.unlock()
            }
            stopped.signal()
        }
        thread.qualityOfService = .userInitiated
        thread.start()
    }

    /// Runs `body` while the event thread stays out of libusb, so that only `body`'s own
    /// synchronous calls handle events, in their order. Opening and starting a probe run this
    /// way: a usbmon capture replayed by umockdev (`umockdev-run --pcap`) answers requests
    /// strictly in the capture's order and skips control records that are not pending when an
    /// event handler looks, which a free-running event thread would do between two requests.
    func withEventThreadPaused<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pause.lock()
        paused = true
        while handling {
            libusb_interrupt_event_handler(context)
            _ = pause.wait(until: Date(timeIntervalSinceNow: 0.01))
        }
        pause.unlock()
        defer {
            pause.lock()
            paused = false
            pause.broadcast()
            pause.unlock()
        }
        return try body()
    }

    /// Stops the event thread and closes libusb. Every device handle must be closed first. The
    /// event thread keeps the context alive until this is called.
    func close() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        pause.lock()
        pause.broadcast()
        pause.unlock()
        libusb_interrupt_event_handler(context)
        stopped.wait()
        libusb_exit(context)
    }

    var hasHotplug: Bool { libusb_has_capability(UInt32(LIBUSB_CAP_HAS_HOTPLUG.rawValue)) != 0 }
}

/// A libusb hot-plug registration for one VID:PID; `handler` runs on the event thread and must
/// only hand the event on (no libusb calls that wait).
final class HotplugWatch: @unchecked Sendable {
    // @unchecked: `handle` is written once in init, before libusb can call back, and read by `deinit` alone.
    enum Event: Sendable { case arrived, left }

    private let context: LibUSBContext
    private var handle: libusb_hotplug_callback_handle = 0
    private let box: Unmanaged<Box>

    final class Box {
        let handler: @Sendable (Event) -> Void
        init(_ handler: @escaping @Sendable (Event) -> Void) { self.handler = handler }
    }

    /// nil when this libusb has no hot-plug support (the owner then polls).
    init?(context: LibUSBContext, vendorID: UInt16, productID: UInt16, handler: @escaping @Sendable (Event) -> Void) {
        guard context.hasHotplug else { return nil }
        self.context = context
        box = Unmanaged.passRetained(Box(handler))
        let callback: libusb_hotplug_callback_fn = { _, _, event, userData in
            guard let userData else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(userData).takeUnretainedValue()
            box.handler(event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? .arrived : .left)
            return 0  // stay registered
        }
        let events = Int32(LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED.rawValue | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT.rawValue)
        let result = libusb_hotplug_register_callback(context.context, events, 0, Int32(vendorID), Int32(productID),
                                                      LIBUSB_HOTPLUG_MATCH_ANY, callback, box.toOpaque(), &handle)
        // On failure the box is released by deinit, which runs for a class whose failable init
        // returns nil after initialising every property.
        guard result == 0 else { return nil }
    }

    /// Stops the callbacks. libusb may still be running one on its event thread, so the
    /// handler's box lives until this object goes, which its owner lets happen only after the
    /// context's event thread has stopped.
    func deregister() {
        libusb_hotplug_deregister_callback(context.context, handle)
    }

    deinit { box.release() }
}

import Foundation
import NIOSSL
import SonoSystem
#if canImport(Glibc)
import Glibc
#endif

/// The console's HTTPS: `[console] tls_certificate` and `tls_key` read once at start into one
/// server context (BoringSSL, through swift-nio-ssl), TLS 1.2 or later. Every problem stops the
/// console at start with the file and what to do, never the first browser that connects.
enum ConsoleTLS {
    /// A PEM chain or key is a few KiB; a larger file is not one.
    static let largestFile = 1 << 20

    /// Reads the certificate chain and key and checks they belong together.
    ///
    /// - Parameter peopleGroups: groups whose members are people, not services: the control
    ///   socket's and the operators'. A key its group lets them read is refused (a site's own
    ///   key group, Debian's `ssl-cert` for one, is fine).
    /// - Throws: `StartupError.console` when a file cannot be read, is over 1 MiB or is not PEM,
    ///   the chain is empty, the leaf has expired, the key is readable by every user or by one of
    ///   `peopleGroups`, or the key does not match the leaf certificate.
    static func serverContext(certificateFile: String, keyFile: String, peopleGroups: [String] = [],
                              now: Date = Date()) throws(StartupError) -> NIOSSLContext {
        let certificateBytes = try read(certificateFile, key: "console.tls_certificate")
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMBytes(certificateBytes) } catch {
            throw .console("console.tls_certificate \(certificateFile) is not a PEM certificate chain (-----BEGIN CERTIFICATE-----): \(error)")
        }
        guard let leaf = chain.first else {
            throw .console("console.tls_certificate \(certificateFile) holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)")
        }
        let expires = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        guard expires > now else {
            throw .console("console.tls_certificate \(certificateFile) expired at \(expires) (browsers would refuse it): issue a new one")
        }
        let keyBytes = try read(keyFile, key: "console.tls_key")
        try checkKeyIsPrivate(keyFile, peopleGroups: peopleGroups)
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem) } catch {
            throw .console("console.tls_key \(keyFile) is not an unencrypted PEM private key (sonod cannot ask for a passphrase): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw .console("console.tls_key \(keyFile) does not fit console.tls_certificate \(certificateFile) "
                + "(the key must be the certificate's own): \(error)")
        }
    }

    /// Like sshd with a host key: a key that every user, or a group of people, can read is no
    /// longer the console's secret.
    private static func checkKeyIsPrivate(_ path: String, peopleGroups: [String]) throws(StartupError) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }  // read just now; a race is caught by the read's own error
        let mode = info.st_mode & 0o777
        if mode & 0o004 != 0 {
            throw .console("console.tls_key \(path) is readable by every user (mode \(String(mode, radix: 8))): "
                + "chmod 600 it, owned by sonod's user")
        }
        if mode & 0o040 != 0, let group = peopleGroups.first(where: { UserDatabase.groupID(named: $0) == UInt32(info.st_gid) }) {
            throw .console("console.tls_key \(path) is readable by group \(group), whose members are people using the "
                + "control socket or the console (mode \(String(mode, radix: 8))): chmod 600 it, owned by sonod's user")
        }
    }

    private static func read(_ path: String, key: String) throws(StartupError) -> [UInt8] {
        do { return try FileContents.read(path: path, limitBytes: largestFile) } catch {
            switch error {
            case .tooLarge: throw .console("\(key) \(path) is larger than 1 MiB: not a PEM certificate or key")
            case .system(let errno): throw .console("cannot read \(key) \(path): \(errno)")
            }
        }
    }
}

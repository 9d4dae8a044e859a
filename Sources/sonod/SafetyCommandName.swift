import SonoMotion

/// The interlock commands sonod issues itself (on behalf of its command line).
enum SafetyCommandName: String {
    case enable, enableMotion = "enable_motion"
    var command: SafetyCommand { self == .enable ? .enable : .enableMotion }
}

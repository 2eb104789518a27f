fn main() -> std::process::ExitCode {
    fpgate::app::run()
}

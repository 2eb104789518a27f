fn main() {
    std::process::exit(fpgate::cli::run());
}

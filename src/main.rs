// yara-x allocates per scanned file (module outputs); measured faster than
// glibc's malloc (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fpgate::app::run()
}

fn main() {
    std::process::exit(nightfox::cli::main());
}

//! Bakes the libtorch folder into the binaries' rpath, so that `cargo test`, `cargo run` and the
//! installed binary find libtorch without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Applies to every binary, test and example of this package.
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        // Nothing in our code references libtorch_cuda's symbols, so with --as-needed the linker
        // drops it and CUDA silently becomes unavailable. Force libtorch (which pulls in
        // libtorch_cuda) to stay.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,-ltorch,--as-needed");
        // Cross-building a CUDA binary against the CPU install (libtorch_cuda's cuBLAS/cuDNN
        // are then absent here) for a machine that has them: resolve those at load time.
        println!("cargo:rerun-if-env-changed=NAS_CUDA_LINK_UNCHECKED");
        if std::env::var_os("NAS_CUDA_LINK_UNCHECKED").is_some() {
            println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
        }
    }
}

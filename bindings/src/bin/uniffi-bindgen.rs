//! UniFFI's bindings generator, as this crate's binary (the version that
//! matches the library's scaffolding).

fn main() {
    uniffi::uniffi_bindgen_main()
}

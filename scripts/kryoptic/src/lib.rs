//! The kryoptic shared object: the three PKCS#11 entry points of the `kryoptic` crate
//! (`C_GetFunctionList`, `C_GetInterface`, `C_GetInterfaceList`), exported from a cdylib built
//! against `kryoptic-lib` with the features Debian bookworm can build (see Cargo.toml).
//! Same code as kryoptic 1.5.4's `src/lib.rs` (Apache-2.0, Simo Sorce), without the FIPS
//! provider entry point.

use kryoptic_lib::fns::general::{fn_get_function_list, fn_get_interface, fn_get_interface_list};
use kryoptic_lib::pkcs11::*;

/// `C_GetFunctionList`.
#[unsafe(no_mangle)]
pub extern "C" fn C_GetFunctionList(fnlist: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    fn_get_function_list(fnlist)
}

/// `C_GetInterface`.
#[unsafe(no_mangle)]
pub extern "C" fn C_GetInterface(
    interface_name: CK_UTF8CHAR_PTR,
    version: CK_VERSION_PTR,
    interface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    fn_get_interface(interface_name, version, interface, flags)
}

/// `C_GetInterfaceList`.
#[unsafe(no_mangle)]
pub extern "C" fn C_GetInterfaceList(
    interfaces_list: CK_INTERFACE_PTR,
    count: CK_ULONG_PTR,
) -> CK_RV {
    fn_get_interface_list(interfaces_list, count)
}

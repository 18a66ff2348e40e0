//! SCAFFOLD: the C ABI.

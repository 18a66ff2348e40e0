//! SCAFFOLD: the pool core.

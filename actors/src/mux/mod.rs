//! Packaging encoded media into the output container.

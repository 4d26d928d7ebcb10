//! What operators write: the tenants file (and the admin API's tenant bodies, the same schema) and the catalog of
//! WASI builds. Raw serde structs, validated once into types the rest of catwalk can trust; an error names the
//! tenant and the field, never a value.

pub mod catalog;
pub mod tenants;

//! `sqlx::migrate!` embeds the migration files at compile time; a proc macro cannot tell Cargo
//! to watch them on stable Rust, so this does.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

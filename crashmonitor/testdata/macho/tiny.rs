//! A tiny crate for macho.rs's tests, compiled for x86_64-apple-darwin to an object file
//! without the target's standard library (none is installed here): `no_core`, with the
//! few lang items rustc needs declared by hand. See build.sh.
#![feature(no_core, lang_items)]
#![no_core]
#![crate_type = "lib"]
#![crate_name = "tiny"]
#![allow(internal_features)]

#[lang = "pointee_sized"]
pub trait PointeeSized {}
#[lang = "meta_sized"]
pub trait MetaSized: PointeeSized {}
#[lang = "sized"]
pub trait Sized: MetaSized {}
#[lang = "copy"]
pub trait Copy {}
impl Copy for u32 {}

#[inline(never)]
pub fn helper(x: u32) -> u32 {
    x
}

pub struct Thing;

impl Thing {
    #[inline(never)]
    pub fn crash_here(p: *mut u32) -> u32 {
        helper(unsafe { *p })
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn tiny_entry(p: *mut u32) -> u32 {
    Thing::crash_here(p)
}

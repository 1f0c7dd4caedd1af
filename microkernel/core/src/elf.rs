//! Checks a user ELF image must pass before the kernel maps it, and symbol lookup for reports.
//!
//! [`plan`] turns an image into a [`LoadPlan`]: the entry point and the loadable segments, each
//! checked to be an x86-64 executable whose segments lie inside the user image area, do not share
//! pages, are not both writable and executable, and whose file bytes lie inside the image. The
//! kernel then only copies bytes; it never trusts a field it has not checked here.

use axolotl_abi::{
    ServerVersion, MAX_LAYOUTS, PAGE_SIZE, USER_BASE, USER_STACK_SIZE, USER_STACK_TOP, VERSION_MAGIC,
    VERSION_SECTION,
};
use heapless::Vec;
use xmas_elf::program::{ProgramHeader, Type};
use xmas_elf::ElfFile;

/// Most loadable segments an image may have.
pub const MAX_SEGMENTS: usize = 8;
/// Highest address (exclusive) an image may occupy: below the stack and its guard page.
pub const IMAGE_END: u64 = USER_STACK_TOP - USER_STACK_SIZE - PAGE_SIZE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub mem_size: u64,
    pub file_offset: u64,
    pub file_size: u64,
    pub writable: bool,
    pub executable: bool,
}

impl Segment {
    /// First page and one-past-last page the segment touches.
    pub fn pages(&self) -> (u64, u64) {
        (self.vaddr & !(PAGE_SIZE - 1), (self.vaddr + self.mem_size).div_ceil(PAGE_SIZE) * PAGE_SIZE)
    }

    /// What page `page` (one of [`pages`](Self::pages)) gets from the file: where in the page
    /// the file's bytes start, and which bytes of the image they are. A page of pure bss gets
    /// none (an empty range at 0, not one past the file's end: a bss larger than what follows
    /// its segment in the file made the loader refuse the image).
    pub fn file_bytes_in(&self, page: u64) -> (usize, core::ops::Range<usize>) {
        let lo = page.max(self.vaddr);
        let hi = (page + PAGE_SIZE).min(self.vaddr + self.file_size);
        if hi <= lo {
            return (0, 0..0);
        }
        let from = (self.file_offset + lo - self.vaddr) as usize;
        ((lo - page) as usize, from..from + (hi - lo) as usize)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    pub entry: u64,
    pub segments: Vec<Segment, MAX_SEGMENTS>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not a well-formed ELF file.
    Malformed,
    /// Not a 64-bit little-endian x86-64 executable.
    WrongKind,
    NoSegments,
    TooManySegments,
    /// A segment reaches outside `[USER_BASE, IMAGE_END)`.
    SegmentOutside,
    /// Two segments share a page.
    SegmentsOverlap,
    /// A segment's file bytes lie beyond the end of the image, or exceed its memory size.
    FileRange,
    /// A segment is both writable and executable.
    WritableExecutable,
    /// The entry point is not inside an executable segment.
    BadEntry,
}

fn segment(ph: &ProgramHeader<'_>, image_len: u64) -> Result<Segment, ElfError> {
    let seg = Segment {
        vaddr: ph.virtual_addr(),
        mem_size: ph.mem_size(),
        file_offset: ph.offset(),
        file_size: ph.file_size(),
        writable: ph.flags().is_write(),
        executable: ph.flags().is_execute(),
    };
    let end = seg.vaddr.checked_add(seg.mem_size).ok_or(ElfError::SegmentOutside)?;
    if seg.vaddr < USER_BASE || end > IMAGE_END {
        return Err(ElfError::SegmentOutside);
    }
    let file_end = seg.file_offset.checked_add(seg.file_size).ok_or(ElfError::FileRange)?;
    if file_end > image_len || seg.file_size > seg.mem_size {
        return Err(ElfError::FileRange);
    }
    if seg.writable && seg.executable {
        return Err(ElfError::WritableExecutable);
    }
    Ok(seg)
}

/// A little-endian field of `N` bytes at `at`, if the image holds it.
fn field<const N: usize>(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; N] = bytes.get(at..at.checked_add(N)?)?.try_into().ok()?;
    let mut w = [0u8; 8];
    w[..N].copy_from_slice(&b);
    Some(u64::from_le_bytes(w))
}

/// Sizes of an ELF64 program header and section header.
const PH_SIZE: u64 = 56;
const SH_SIZE: u64 = 64;

/// A table of `count` entries of `size` bytes at `offset`: inside the image, 8-byte aligned,
/// entries of the ELF64 size (or no entries at all).
fn table_inside(len: usize, offset: u64, size: u64, count: u64, want: u64) -> bool {
    count == 0
        || (size == want
            && offset.is_multiple_of(8)
            && count
                .checked_mul(size)
                .and_then(|n| n.checked_add(offset))
                .is_some_and(|end| end <= len as u64))
}

/// Whether the image's program and section header tables lie inside it, aligned, with ELF64
/// entry sizes: the ELF parser indexes them without checking (a table beyond the end, or
/// misaligned, would panic it), and a server's new version (`task_update`) comes from a
/// client, not from the boot image.
fn tables_inside(bytes: &[u8]) -> bool {
    let get = |at, n| match n {
        2 => field::<2>(bytes, at),
        _ => field::<8>(bytes, at),
    };
    let (Some(phoff), Some(shoff), Some(phsize), Some(phnum), Some(shsize), Some(shnum), Some(shstr)) =
        (get(0x20, 8), get(0x28, 8), get(0x36, 2), get(0x38, 2), get(0x3a, 2), get(0x3c, 2), get(0x3e, 2))
    else {
        return false;
    };
    table_inside(bytes.len(), phoff, phsize, phnum, PH_SIZE)
        && table_inside(bytes.len(), shoff, shsize, shnum, SH_SIZE)
        && (shnum == 0 || shstr < shnum)
}

/// Check an image and list what to load.
pub fn plan(bytes: &[u8]) -> Result<LoadPlan, ElfError> {
    if !tables_inside(bytes) {
        return Err(ElfError::Malformed);
    }
    let elf = ElfFile::new(bytes).map_err(|_| ElfError::Malformed)?;
    let h = &elf.header;
    let kind_ok = h.pt1.class() == xmas_elf::header::Class::SixtyFour
        && h.pt1.data() == xmas_elf::header::Data::LittleEndian
        && h.pt2.machine().as_machine() == xmas_elf::header::Machine::X86_64
        && h.pt2.type_().as_type() == xmas_elf::header::Type::Executable;
    if !kind_ok {
        return Err(ElfError::WrongKind);
    }
    let mut segments: Vec<Segment, MAX_SEGMENTS> = Vec::new();
    for ph in elf.program_iter() {
        if ph.get_type().map_err(|_| ElfError::Malformed)? != Type::Load || ph.mem_size() == 0 {
            continue;
        }
        let seg = segment(&ph, bytes.len() as u64)?;
        let (start, end) = seg.pages();
        if segments.iter().any(|o| {
            let (os, oe) = o.pages();
            start < oe && os < end
        }) {
            return Err(ElfError::SegmentsOverlap);
        }
        segments.push(seg).map_err(|_| ElfError::TooManySegments)?;
    }
    if segments.is_empty() {
        return Err(ElfError::NoSegments);
    }
    let entry = h.pt2.entry_point();
    if !segments.iter().any(|s| s.executable && entry >= s.vaddr && entry < s.vaddr + s.mem_size) {
        return Err(ElfError::BadEntry);
    }
    Ok(LoadPlan { entry, segments })
}

/// What the image declares of itself in its [`VERSION_SECTION`] (`userlib::version!`): `None`
/// if it has no such section, or one of the wrong size or without the magic. Read field by
/// field with every offset checked (not through the ELF parser, whose section accessors slice
/// without checking): the image may be a client's (`task_update`).
pub fn server_version(bytes: &[u8]) -> Option<ServerVersion> {
    if !tables_inside(bytes) {
        return None;
    }
    let (shoff, shnum, shstr) =
        (field::<8>(bytes, 0x28)?, field::<2>(bytes, 0x3c)?, field::<2>(bytes, 0x3e)?);
    // Section `i`'s name offset, file offset and size.
    let section = |i: u64| {
        let at = usize::try_from(shoff + i * SH_SIZE).ok()?;
        Some((field::<4>(bytes, at)?, field::<8>(bytes, at + 0x18)?, field::<8>(bytes, at + 0x20)?))
    };
    let contents = |offset: u64, size: u64| {
        let start = usize::try_from(offset).ok()?;
        bytes.get(start..start.checked_add(usize::try_from(size).ok()?)?)
    };
    let (_, names_at, names_len) = section(shstr)?;
    let names = contents(names_at, names_len)?;
    let want = VERSION_SECTION.as_bytes();
    let data = (0..shnum).find_map(|i| {
        let (name, offset, size) = section(i)?;
        let name = names.get(usize::try_from(name).ok()?..)?;
        let named = name.starts_with(want) && name.get(want.len()) == Some(&0);
        named.then(|| contents(offset, size)).flatten()
    })?;
    if data.len() != size_of::<ServerVersion>() {
        return None;
    }
    let v: ServerVersion = bytemuck::pod_read_unaligned(data);
    (v.magic == VERSION_MAGIC && v.count as usize <= MAX_LAYOUTS).then_some(v)
}

/// The symbol (a function, or a static) containing `addr`, with the offset into it (mangled;
/// the kernel demangles). Read like [`server_version`], with every offset checked: the image
/// may be a client's (`task_update`), and a fault or audit report names its symbols too.
pub fn symbolize(bytes: &[u8], addr: u64) -> Option<(&str, u64)> {
    if !tables_inside(bytes) {
        return None;
    }
    let (shoff, shnum) = (field::<8>(bytes, 0x28)?, field::<2>(bytes, 0x3c)?);
    // Section `i`'s type, file offset, size and link (for a symbol table: its names' section).
    let section = |i: u64| {
        let at = usize::try_from(shoff.checked_add(i.checked_mul(SH_SIZE)?)?).ok()?;
        let kind = field::<4>(bytes, at + 4)?;
        Some((
            kind,
            field::<8>(bytes, at + 0x18)?,
            field::<8>(bytes, at + 0x20)?,
            field::<4>(bytes, at + 0x28)?,
        ))
    };
    let contents = |offset: u64, size: u64| {
        let start = usize::try_from(offset).ok()?;
        bytes.get(start..start.checked_add(usize::try_from(size).ok()?)?)
    };
    (0..shnum).find_map(|i| {
        let (kind, offset, size, link) = section(i)?;
        if kind != SHT_SYMTAB && kind != SHT_DYNSYM {
            return None;
        }
        let symbols = contents(offset, size)?;
        let (_, names_at, names_len, _) = section(link).filter(|_| link < shnum)?;
        let names = contents(names_at, names_len)?;
        symbols.chunks_exact(SYM_SIZE).find_map(|sym| {
            let (name, start, len) = (field::<4>(sym, 0)?, field::<8>(sym, 8)?, field::<8>(sym, 16)?);
            if addr < start || addr >= start.saturating_add(len.max(1)) {
                return None;
            }
            let name = names.get(usize::try_from(name).ok()?..)?;
            let name = &name[..name.iter().position(|&b| b == 0)?];
            Some((core::str::from_utf8(name).ok()?, addr - start))
        })
    })
}

/// Section types of symbol tables, and the size of an ELF64 symbol.
const SHT_SYMTAB: u64 = 2;
const SHT_DYNSYM: u64 = 11;
const SYM_SIZE: usize = 24;

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec as StdVec;
    use xmas_elf::sections::SectionData;
    use xmas_elf::symbol_table::Entry;

    /// A minimal ELF64 executable: header plus program headers `(vaddr, memsz, filesz, flags)`.
    fn image(entry: u64, segs: &[(u64, u64, u64, u32)], machine: u16, kind: u16) -> StdVec<u8> {
        let phoff = 64u64;
        let data_off = phoff + 56 * segs.len() as u64;
        let mut b = StdVec::new();
        b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&machine.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&entry.to_le_bytes());
        b.extend_from_slice(&phoff.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes()); // no section headers
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&64u16.to_le_bytes());
        b.extend_from_slice(&56u16.to_le_bytes());
        b.extend_from_slice(&(segs.len() as u16).to_le_bytes());
        b.extend_from_slice(&64u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        let mut file_total = 0;
        for &(vaddr, memsz, filesz, flags) in segs {
            b.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            b.extend_from_slice(&flags.to_le_bytes());
            b.extend_from_slice(&(data_off + file_total).to_le_bytes());
            b.extend_from_slice(&vaddr.to_le_bytes());
            b.extend_from_slice(&vaddr.to_le_bytes());
            b.extend_from_slice(&filesz.to_le_bytes());
            b.extend_from_slice(&memsz.to_le_bytes());
            b.extend_from_slice(&4096u64.to_le_bytes());
            file_total += filesz;
        }
        b.resize((data_off + file_total) as usize, 0xcc);
        b
    }

    const X: u32 = 1;
    const W: u32 = 2;
    const R: u32 = 4;
    const X86_64: u16 = 62;
    const EXEC: u16 = 2;

    /// `img` with a section table appended: a name table and one section per `(name, bytes)`.
    fn with_sections(mut img: StdVec<u8>, sections: &[(&str, &[u8])]) -> StdVec<u8> {
        let mut names = StdVec::from([0u8]);
        let mut placed = StdVec::new();
        for (name, data) in sections {
            placed.push((names.len() as u32, img.len() as u64, data.len() as u64));
            names.extend_from_slice(name.as_bytes());
            names.push(0);
            img.extend_from_slice(data);
        }
        let names_at = img.len() as u64;
        img.extend_from_slice(&names);
        while !img.len().is_multiple_of(8) {
            img.push(0);
        }
        let shoff = img.len() as u64;
        let mut header = |name: u32, offset: u64, size: u64| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&1u32.to_le_bytes()); // PROGBITS
            h[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            img.extend_from_slice(&h);
        };
        header(0, 0, 0);
        for &(name, offset, size) in &placed {
            header(name, offset, size);
        }
        header(0, names_at, names.len() as u64);
        let count = placed.len() as u16 + 2;
        img[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        img[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        img[0x3c..0x3e].copy_from_slice(&count.to_le_bytes());
        img[0x3e..0x40].copy_from_slice(&(count - 1).to_le_bytes());
        img
    }

    #[test]
    fn a_version_is_read_and_a_bent_table_is_refused_not_followed() {
        let base = image(USER_BASE, &[(USER_BASE, 0x1000, 0x10, R | X)], X86_64, EXEC);
        let v = ServerVersion::new("fs", 2, &[(0xF5, 3), (0xF5, 4)]);
        let img =
            with_sections(base.clone(), &[(".text", b"code"), (VERSION_SECTION, bytemuck::bytes_of(&v))]);
        assert!(plan(&img).is_ok());
        assert_eq!(server_version(&img), Some(v));
        assert!(v.reads(0xF5, 4) && !v.reads(0xF5, 5) && v.server() == "fs");
        assert_eq!(server_version(&base), None, "no section table");
        let other = with_sections(base.clone(), &[(".axolotl.versions", bytemuck::bytes_of(&v))]);
        assert_eq!(server_version(&other), None, "a name that only starts alike");
        let short = with_sections(base.clone(), &[(VERSION_SECTION, &bytemuck::bytes_of(&v)[..8])]);
        assert_eq!(server_version(&short), None, "the wrong size");
        // Every field of the tables bent: refused or None, never a panic.
        for at in [0x20, 0x28, 0x36, 0x38, 0x3a, 0x3c, 0x3e] {
            for bad in [1u64, 0xffff, u64::MAX, img.len() as u64, 0x7fff_ffff_ffff_fff8] {
                let mut b = img.clone();
                let n = if at >= 0x36 { 2 } else { 8 };
                b[at..at + n].copy_from_slice(&bad.to_le_bytes()[..n]);
                let _ = plan(&b);
                let _ = server_version(&b);
            }
        }
        // Section entries bent: name, offset and size past the end.
        let shoff = u64::from_le_bytes(img[0x28..0x30].try_into().unwrap()) as usize;
        for (field, bad) in
            [(0, u32::MAX as u64), (0x18, u64::MAX), (0x20, u64::MAX), (0x20, img.len() as u64)]
        {
            for entry in 0..4 {
                let mut b = img.clone();
                let at = shoff + entry * 64 + field;
                let n = if field == 0 { 4 } else { 8 };
                b[at..at + n].copy_from_slice(&bad.to_le_bytes()[..n]);
                let _ = server_version(&b);
            }
        }
    }

    #[test]
    fn accepts_a_plain_image() {
        let img = image(
            USER_BASE,
            &[(USER_BASE, 0x1000, 0x10, R | X), (USER_BASE + 0x1000, 0x2000, 8, R | W)],
            X86_64,
            EXEC,
        );
        let p = plan(&img).unwrap();
        assert_eq!(p.entry, USER_BASE);
        assert_eq!(p.segments.len(), 2);
        assert!(p.segments[1].writable && !p.segments[1].executable);
        assert_eq!(p.segments[1].pages(), (USER_BASE + 0x1000, USER_BASE + 0x3000));
    }

    /// Each page of a segment gets its share of the file, and a page of pure bss none, however
    /// far past the file's end it lies (the fs server's 41 KiB cache, once in .bss after the
    /// last byte of the file, was refused).
    #[test]
    fn a_page_gets_its_file_bytes_and_bss_pages_none() {
        let seg = Segment {
            vaddr: USER_BASE + 0x1010,
            mem_size: 0xc000,
            file_offset: 0x3010,
            file_size: 0x1100,
            writable: true,
            executable: false,
        };
        assert_eq!(seg.file_bytes_in(USER_BASE + 0x1000), (0x10, 0x3010..0x4000), "from its start");
        assert_eq!(seg.file_bytes_in(USER_BASE + 0x2000), (0, 0x4000..0x4110), "the rest, then bss");
        for page in (USER_BASE + 0x3000..USER_BASE + 0xd000).step_by(0x1000) {
            assert_eq!(seg.file_bytes_in(page), (0, 0..0), "{page:#x}: pure bss");
        }
    }

    #[test]
    fn rejects_what_is_not_an_x86_64_executable() {
        assert_eq!(plan(b"not an elf"), Err(ElfError::Malformed));
        let seg = [(USER_BASE, 0x1000, 0x10, R | X)];
        assert_eq!(plan(&image(USER_BASE, &seg, 40, EXEC)), Err(ElfError::WrongKind));
        assert_eq!(plan(&image(USER_BASE, &seg, X86_64, 3)), Err(ElfError::WrongKind));
        assert_eq!(plan(&image(USER_BASE, &[], X86_64, EXEC)), Err(ElfError::NoSegments));
    }

    #[test]
    fn rejects_segments_outside_the_user_image_area() {
        for vaddr in [0x10_0000, USER_BASE - 0x1000, IMAGE_END, u64::MAX - 0xfff] {
            let img = image(vaddr, &[(vaddr, 0x1000, 0, R | X)], X86_64, EXEC);
            assert_eq!(plan(&img), Err(ElfError::SegmentOutside), "vaddr {vaddr:#x}");
        }
        // Reaching into the stack from below.
        let img = image(USER_BASE, &[(USER_BASE, IMAGE_END - USER_BASE + 1, 0, R | X)], X86_64, EXEC);
        assert_eq!(plan(&img), Err(ElfError::SegmentOutside));
    }

    #[test]
    fn rejects_overlap_wx_bad_file_ranges_and_bad_entry() {
        let overlap = [(USER_BASE, 0x1000, 0, R | X), (USER_BASE + 0x800, 0x1000, 0, R | W)];
        assert_eq!(plan(&image(USER_BASE, &overlap, X86_64, EXEC)), Err(ElfError::SegmentsOverlap));
        let wx = [(USER_BASE, 0x1000, 0, R | W | X)];
        assert_eq!(plan(&image(USER_BASE, &wx, X86_64, EXEC)), Err(ElfError::WritableExecutable));
        let mut img = image(USER_BASE, &[(USER_BASE, 0x1000, 0x100, R | X)], X86_64, EXEC);
        img.truncate(img.len() - 1);
        assert_eq!(plan(&img), Err(ElfError::FileRange));
        let filesz_over_memsz = [(USER_BASE, 0x10, 0x20, R | X)];
        assert_eq!(plan(&image(USER_BASE, &filesz_over_memsz, X86_64, EXEC)), Err(ElfError::FileRange));
        let data_only = [(USER_BASE, 0x1000, 0, R | W)];
        assert_eq!(plan(&image(USER_BASE, &data_only, X86_64, EXEC)), Err(ElfError::BadEntry));
        let code = [(USER_BASE, 0x1000, 0, R | X)];
        assert_eq!(plan(&image(USER_BASE + 0x1000, &code, X86_64, EXEC)), Err(ElfError::BadEntry));
    }

    #[test]
    fn too_many_segments() {
        let segs: StdVec<_> = (0..9).map(|i| (USER_BASE + i * 0x1000, 0x1000, 0, R | X)).collect();
        assert_eq!(plan(&image(USER_BASE, &segs, X86_64, EXEC)), Err(ElfError::TooManySegments));
    }

    #[test]
    fn symbolize_without_symbols_is_none() {
        let img = image(USER_BASE, &[(USER_BASE, 0x1000, 0x10, R | X)], X86_64, EXEC);
        assert_eq!(symbolize(&img, USER_BASE), None);
        assert_eq!(symbolize(b"junk", 0), None);
    }

    #[test]
    fn symbolize_finds_functions_in_a_real_binary() {
        // This test binary itself is an ELF with a symbol table.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // The test binary is position independent: find the symbol's link address by name.
        let elf = ElfFile::new(&me).unwrap();
        let mut found = None;
        for section in elf.section_iter() {
            if let Ok(SectionData::SymbolTable64(symbols)) = section.get_data(&elf) {
                for s in symbols {
                    if s.get_name(&elf).is_ok_and(|n| n.contains("symbolize_finds_functions")) && s.size() > 0
                    {
                        found = Some(s.value());
                    }
                }
            }
        }
        let start = found.expect("test binary has symbols");
        let (name, off) = symbolize(&me, start + 1).unwrap();
        assert!(name.contains("symbolize_finds_functions"), "{name}");
        assert_eq!(off, 1);
    }

    /// An update's image comes from a client: a symbol table pointing anywhere gets `None` or a
    /// name, never a panic.
    #[test]
    fn symbolize_survives_broken_tables() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let shoff = u64::from_le_bytes(me[0x28..0x30].try_into().unwrap()) as usize;
        let shnum = u16::from_le_bytes(me[0x3c..0x3e].try_into().unwrap()) as usize;
        for cut in (0..me.len()).step_by(me.len() / 17 + 1) {
            let _ = symbolize(&me[..cut], 0x1000);
        }
        // Each section header's type, offset, size and link bent in turn.
        for i in 0..shnum {
            for (field, value) in [(4, 2u64), (4, 11), (0x18, u64::MAX), (0x20, u64::MAX - 8), (0x28, 0xffff)]
            {
                let mut bent = me.clone();
                let at = shoff + i * 64 + field;
                let n = if field == 4 || field == 0x28 { 4 } else { 8 };
                bent[at..at + n].copy_from_slice(&value.to_le_bytes()[..n]);
                let _ = symbolize(&bent, 0x1000);
            }
        }
    }
}

//! Checks a built binary against its target: ELF class, byte order, machine, and
//! fully static linking (no program interpreter, no dynamic section, so also no
//! static-pie, which crashes at start on tier-3 musl targets).

use object::elf;
use object::read::elf::{ElfFile, FileHeader, ProgramHeader};
use object::{Endianness, Object};
use std::path::Path;

use crate::targets::{ElfClass, ElfSpec, Endian, Machine};

/// What the ELF header of a binary says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfInfo {
    /// Class, byte order and machine.
    pub spec: ElfSpec,
    /// Has a `PT_INTERP` segment (needs a dynamic loader).
    pub interp: bool,
    /// Has a `PT_DYNAMIC` segment (dynamic or static-pie).
    pub dynamic: bool,
}

impl ElfInfo {
    /// Fully static: no loader, no relocation at start.
    pub fn is_static(&self) -> bool {
        !self.interp && !self.dynamic
    }
}

/// Reads the ELF identification of `data`.
pub fn inspect(data: &[u8]) -> anyhow::Result<ElfInfo> {
    let kind = object::FileKind::parse(data)?;
    match kind {
        object::FileKind::Elf32 => {
            inspect_as::<elf::FileHeader32<Endianness>>(data, ElfClass::Elf32)
        }
        object::FileKind::Elf64 => {
            inspect_as::<elf::FileHeader64<Endianness>>(data, ElfClass::Elf64)
        }
        other => anyhow::bail!("not an ELF file ({other:?})"),
    }
}

fn inspect_as<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    class: ElfClass,
) -> anyhow::Result<ElfInfo> {
    let file = ElfFile::<H>::parse(data)?;
    let endian = file.endian();
    let machine = match file.elf_header().e_machine(endian) {
        elf::EM_MIPS => Machine::Mips,
        elf::EM_PPC => Machine::PowerPc,
        elf::EM_ARM => Machine::Arm,
        elf::EM_X86_64 => Machine::X86_64,
        elf::EM_AARCH64 => Machine::Aarch64,
        other => anyhow::bail!("ELF machine {other} is not one braid targets"),
    };
    let mut interp = false;
    let mut dynamic = false;
    for ph in file.elf_program_headers() {
        match ph.p_type(endian) {
            elf::PT_INTERP => interp = true,
            elf::PT_DYNAMIC => dynamic = true,
            _ => {}
        }
    }
    Ok(ElfInfo {
        spec: ElfSpec {
            class,
            endian: if file.is_little_endian() {
                Endian::Little
            } else {
                Endian::Big
            },
            machine,
        },
        interp,
        dynamic,
    })
}

/// Bytes an ELF occupies in memory once loaded: the sum of its `PT_LOAD`
/// segments' sizes (for a kernel, text through bss). Not the span between the
/// lowest and highest address: ARM kernels load their vectors far from the rest.
pub fn memory_size(data: &[u8]) -> anyhow::Result<u64> {
    fn total<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> anyhow::Result<u64> {
        let file = ElfFile::<H>::parse(data)?;
        let e = file.endian();
        Ok(file
            .elf_program_headers()
            .iter()
            .filter(|p| p.p_type(e) == elf::PT_LOAD)
            .map(|p| -> u64 { p.p_memsz(e).into() })
            .sum())
    }
    match object::FileKind::parse(data)? {
        object::FileKind::Elf32 => total::<elf::FileHeader32<Endianness>>(data),
        object::FileKind::Elf64 => total::<elf::FileHeader64<Endianness>>(data),
        other => anyhow::bail!("not an ELF file ({other:?})"),
    }
}

/// Checks that the binary at `path` is static and matches `expected`.
pub fn check_binary(path: &Path, expected: &ElfSpec) -> anyhow::Result<ElfInfo> {
    let data = std::fs::read(path)?;
    let info = inspect(&data).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(
        info.spec == *expected,
        "{}: is {}, expected {}",
        path.display(),
        info.spec,
        expected
    );
    anyhow::ensure!(
        info.is_static(),
        "{}: not fully static (interpreter: {}, dynamic section: {}); is +crt-static missing?",
        path.display(),
        info.interp,
        info.dynamic
    );
    Ok(info)
}

/// Disassembles `path` with `objdump` and fails if any instruction's mnemonic
/// starts with one of `forbidden` (e.g. FPU instructions on an FPU-less core).
pub fn check_instructions(path: &Path, objdump: &Path, forbidden: &[String]) -> anyhow::Result<()> {
    if forbidden.is_empty() {
        return Ok(());
    }
    let out = std::process::Command::new(objdump)
        .arg("-d")
        .arg(path)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", objdump.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} -d {} failed: {}",
        objdump.display(),
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let found = forbidden_in_disassembly(&String::from_utf8_lossy(&out.stdout), forbidden);
    anyhow::ensure!(
        found.is_empty(),
        "{}: contains instructions this CPU cannot execute: {}",
        path.display(),
        found
            .iter()
            .map(|(m, n)| format!("{m} ({n}x)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Counts the mnemonics in objdump output that start with a forbidden prefix.
fn forbidden_in_disassembly(text: &str, forbidden: &[String]) -> Vec<(String, usize)> {
    let mut found = std::collections::BTreeMap::<&str, usize>::new();
    for line in text.lines() {
        // "  4003a0:\t27bdffe0 \taddiu\tsp,sp,-32"
        let Some(mnemonic) = line
            .split('\t')
            .nth(2)
            .and_then(|f| f.split_whitespace().next())
        else {
            continue;
        };
        if forbidden.iter().any(|p| mnemonic.starts_with(p.as_str())) {
            *found.entry(mnemonic).or_default() += 1;
        }
    }
    found.into_iter().map(|(m, n)| (m.to_string(), n)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn forbidden_mnemonics_are_found() {
        let text = "  400000:\t27bdffe0 \taddiu\tsp,sp,-32\n  400004:\tc4200000 \tlwc1\t$f0,0(at)\n  400008:\t46000000 \tadd.s\t$f0,$f0,$f0\n  40000c:\tc4200000 \tlwc1\t$f2,4(at)\nDisassembly of section .text:\n";
        let forbidden = vec!["lwc1".to_string(), "add.".to_string()];
        assert_eq!(
            super::forbidden_in_disassembly(text, &forbidden),
            vec![("add.s".to_string(), 1), ("lwc1".to_string(), 2)]
        );
        assert!(super::forbidden_in_disassembly(text, &["fadd".to_string()]).is_empty());
    }

    use super::*;

    #[test]
    fn host_binary_is_recognised() {
        // The test binary itself: x86-64 (or whatever the host is), little-endian.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = inspect(&me).unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(info.spec.machine, Machine::X86_64);
            assert_eq!(info.spec.class, ElfClass::Elf64);
            assert_eq!(info.spec.endian, Endian::Little);
        }
        // Host test binaries link glibc dynamically.
        assert!(info.interp && !info.is_static());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(inspect(b"#!/bin/sh\n").is_err());
        assert!(inspect(&[0x7f, b'E', b'L', b'F', 1, 2]).is_err());
    }

    /// A minimal 52-byte ELF32 big-endian MIPS header with no program headers,
    /// written by hand from the ELF specification.
    #[test]
    fn handmade_big_endian_mips_header() {
        let mut h = [0u8; 52];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 1; // ELFCLASS32
        h[5] = 2; // ELFDATA2MSB
        h[6] = 1; // EV_CURRENT
        h[16..18].copy_from_slice(&2u16.to_be_bytes()); // ET_EXEC
        h[18..20].copy_from_slice(&8u16.to_be_bytes()); // EM_MIPS
        h[20..24].copy_from_slice(&1u32.to_be_bytes()); // e_version
        h[40..42].copy_from_slice(&52u16.to_be_bytes()); // e_ehsize
        let info = inspect(&h).unwrap();
        assert_eq!(
            info.spec,
            ElfSpec {
                class: ElfClass::Elf32,
                endian: Endian::Big,
                machine: Machine::Mips
            }
        );
        assert!(info.is_static());
    }
}

//! The Multiboot2 header and the 32-bit entry that brings the CPU into long mode, for both
//! kernels.
//!
//! GRUB enters `_start` in 32-bit protected mode with paging off, `eax` = the Multiboot2 magic
//! and `ebx` = the boot information's physical address. The trampoline identity-maps the first
//! GiB with 2 MiB pages (only for the first steps: each kernel then builds its real tables with
//! per-section permissions), enables PAE and the kernel's CR4 and EFER bits, long mode and
//! paging with write protection, loads a minimal 64-bit GDT (code 0x08, data 0x10) and calls
//! `entry(magic, info)` on the kernel's boot stack. It clobbers everything; nothing returns.
//!
//! It is a macro, expanded once by each kernel's crate, so that the header and `_start` are
//! linked into the kernel that asks for them and into nothing else that uses this crate.

/// The Multiboot2 magic GRUB passes in `eax`.
pub const MULTIBOOT2_MAGIC: u32 = 0x36d7_6289;

/// Emit the Multiboot2 header and `_start` for this kernel:
///
/// ```ignore
/// extern "C" { static __kstack_top: u8; }
/// x86::multiboot2_trampoline!(
///     entry = kmain,             // extern "C" fn(magic: u32, info: u32) -> !
///     stack_top = __kstack_top,  // the boot stack's top, from the linker script
///     cr4 = 0,                   // CR4 bits besides PAE (which long mode needs)
///     efer = EferFlags::NO_EXECUTE_ENABLE.bits() as u32, // EFER bits besides long mode
/// );
/// ```
#[macro_export]
macro_rules! multiboot2_trampoline {
    (entry = $entry:path, stack_top = $stack:path, cr4 = $cr4:expr, efer = $efer:expr $(,)?) => {
        ::core::arch::global_asm!(
            r#"
    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long 0xe85250d6                              /* magic */
    .long 0                                       /* architecture: i386 protected mode */
    .long mb2_header_end - mb2_header
    .long -(0xe85250d6 + (mb2_header_end - mb2_header))
    .balign 8
    .short 0, 0                                   /* end tag */
    .long 8
mb2_header_end:

    .section .boot.text, "ax"
    .code32
    .global _start
_start:
    cli
    mov %eax, %edi                                /* keep magic and info for the entry */
    mov %ebx, %esi

    /* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] -> 2 MiB page i */
    mov $boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $0x3, %eax
    mov %eax, boot_pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                                /* present | writable | 2 MiB */
    mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jne 1b

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or ${cr4}, %eax
    mov %eax, %cr4
    mov $0xC0000080, %ecx                         /* EFER */
    rdmsr
    or ${efer}, %eax
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16) | 1), %eax         /* paging, write-protect, protected mode */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $boot_long_mode

    .code64
boot_long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov ${stack}, %rsp
    mov %edi, %edi                                /* zero-extend magic and info */
    mov %esi, %esi
    xor %ebp, %ebp
    call {entry}
2:  hlt
    jmp 2b

    .section .rodata
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                      /* 0x08: 64-bit kernel code */
    .quad 0x00cf92000000ffff                      /* 0x10: kernel data */
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss
    .balign 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096
    .text
"#,
            entry = sym $entry,
            stack = sym $stack,
            // CR4.PAE and EFER.LME: long mode needs both.
            cr4 = const (1u32 << 5) | ($cr4),
            efer = const (1u32 << 8) | ($efer),
            options(att_syntax)
        );
    };
}

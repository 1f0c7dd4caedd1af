//! The Multiboot2 header and the 32-bit entry that brings the CPU into long mode.
//!
//! GRUB enters `_start` in 32-bit protected mode with paging off, `eax` = the Multiboot2 magic
//! and `ebx` = the boot information's physical address. We identity-map the first GiB with
//! 2 MiB pages (only for the first steps: `mem::paging` builds the real tables with per-section
//! permissions), enable PAE, long mode and no-execute, load a 64-bit GDT and call
//! `libos_kernel_entry(magic, info)` on the guarded boot stack. Clobbers everything.

core::arch::global_asm!(
    r#"
    .section .multiboot2, "a"
    .balign 8
los_mb2_header:
    .long 0xe85250d6
    .long 0
    .long los_mb2_header_end - los_mb2_header
    .long -(0xe85250d6 + (los_mb2_header_end - los_mb2_header))
    .balign 8
    .short 0, 0
    .long 8
los_mb2_header_end:

    .section .boot.text, "ax"
    .code32
    .global _start
_start:
    cli
    mov %eax, %edi
    mov %ebx, %esi
    mov $los_boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, los_boot_pml4
    mov $los_boot_pd, %eax
    or $0x3, %eax
    mov %eax, los_boot_pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, los_boot_pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jne 1b
    mov $los_boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $((1 << 5) | (1 << 9) | (1 << 10)), %eax   /* PAE, OSFXSR, OSXMMEXCPT */
    mov %eax, %cr4
    mov $0xC0000080, %ecx
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax              /* long mode, no-execute */
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16) | 1), %eax         /* paging, write-protect, protected mode */
    mov %eax, %cr0
    lgdt los_boot_gdt_ptr
    ljmp $0x08, $los_long_mode

    .code64
los_long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $__boot_stack_top, %rsp
    mov %edi, %edi
    mov %esi, %esi
    xor %ebp, %ebp
    call libos_kernel_entry
2:  hlt
    jmp 2b

    .section .rodata
    .balign 8
los_boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
los_boot_gdt_end:
los_boot_gdt_ptr:
    .short los_boot_gdt_end - los_boot_gdt - 1
    .long los_boot_gdt

    .section .bss
    .balign 4096
los_boot_pml4: .skip 4096
los_boot_pdpt: .skip 4096
los_boot_pd:   .skip 4096
    "#,
    options(att_syntax)
);

//! The Multiboot2 header and the 32-bit entry that brings the CPU into long mode.
//!
//! GRUB enters `_start` in 32-bit protected mode with paging off, `eax` = the Multiboot2 magic and
//! `ebx` = the physical address of the boot information. We identity-map the first GiB with 2 MiB
//! pages (enough to run the Rust code, which then builds the real tables), enable PAE, long mode
//! and no-execute, load a minimal 64-bit GDT and jump to `kmain(magic, info)` on the guarded
//! kernel stack. Clobbers everything; nothing returns here.

core::arch::global_asm!(
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
    mov %eax, %edi                                /* keep magic and info for kmain */
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
    or $(1 << 5), %eax                            /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx                         /* EFER: long mode, no-execute, syscall */
    rdmsr
    or $((1 << 8) | (1 << 11) | (1 << 0)), %eax
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16) | 1), %eax         /* paging, write-protect, protected mode */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_entry

    .code64
long_mode_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $__kstack_top, %rsp
    mov %edi, %edi                                /* zero-extend magic and info */
    mov %esi, %esi
    xor %ebp, %ebp
    call kmain
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
    "#,
    options(att_syntax)
);

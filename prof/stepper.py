"""Shared gdb-side helpers: attach, break, single-step and record a trace.

A trace file has one line per gdb `stepi`: `pc rcx rdx rsp rax [cr3]` in hex. Under QEMU's gdb stub a
`stepi` on a `rep`-prefixed string instruction runs ONE iteration (the pc stays on the
instruction while rcx counts down), which is also how -icount counts it; `analyse.py` checks
that and counts iterations from rcx either way.
"""
import gdb, os, re, time

OUT = os.environ.get("PROF_OUT", ".")
REL = os.environ.get("PROF_REL", ".")
PORT = os.environ.get("PROF_GDB_PORT", "12340")


def reg(name):
    return int(gdb.parse_and_eval("$" + name)) & 0xFFFFFFFFFFFFFFFF


def attach(elf):
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    gdb.execute("set print frame-info short-location")
    gdb.execute(f"file {elf}")
    gdb.execute(f"target remote :{PORT}")


def read_u64(addr):
    inf = gdb.selected_inferior()
    return int.from_bytes(bytes(inf.read_memory(addr, 8)), "little")


def step_until(stop, out_path, limit=2_000_000, with_cr3=False):
    """stepi until stop(pc, rsp) is true, writing `pc rcx rdx rsp rax [cr3]` per step (the state
    BEFORE each step, i.e. the instruction about to execute). Returns the number of steps."""
    n = 0
    t0 = time.time()
    with open(out_path, "w") as f:
        while n < limit:
            pc = reg("pc")
            rsp = reg("rsp")
            if stop(pc, rsp):
                break
            line = f"{pc:x} {reg('rcx'):x} {reg('rdx'):x} {rsp:x} {reg('rax'):x}"
            if with_cr3:
                line += f" {reg('cr3'):x}"
            f.write(line + "\n")
            gdb.execute("stepi", to_string=True)
            n += 1
            if n % 20000 == 0:
                print(f"[prof] {n} steps, {time.time() - t0:.0f} s", flush=True)
    print(f"[prof] {n} steps in {time.time() - t0:.1f} s -> {out_path}")
    return n


def disasm(elf, start, length):
    import subprocess
    return subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", "-w", elf,
                           f"--start-address={start:#x}", f"--stop-address={start + length:#x}"],
                          capture_output=True, text=True).stdout


def nm(elf, name):
    import subprocess
    out = subprocess.run(["nm", "-C", elf], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise SystemExit(f"no {name} in {elf}")


class Symbols:
    """`nm` of one ELF: the function an address lies in."""

    def __init__(self, elf):
        import bisect, subprocess
        self.bisect = bisect
        out = subprocess.run(["nm", "-C", "--defined-only", elf], capture_output=True, text=True).stdout
        syms = []
        for line in out.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1] in "TtWw":
                syms.append((int(parts[0], 16), parts[2]))
        syms.sort()
        self.addrs = [a for a, _ in syms]
        self.names = [n for _, n in syms]

    def of(self, pc):
        i = self.bisect.bisect_right(self.addrs, pc) - 1
        return self.names[i] if i >= 0 else "?"


def rdtsc_insn(elf, rdtsc_fn):
    """The address of `rdtsc_fn` and of the rdtsc instruction in it."""
    import re
    r = nm(elf, rdtsc_fn)
    insn = re.search(r"^\s+([0-9a-f]+):\s+rdtsc\s*$", disasm(elf, r, 0x20), re.M)
    return r, int(insn.group(1), 16)


def learn_sites(elf, rdtsc_fn, sites, rows, with_cr3=False):
    """The opening rdtsc call site of each of the first `rows` timed loops of the shell's `bench`.

    Every row times its operation between two calls of `rdtsc_fn` (`measure`, `measure_span`,
    `time_reads`), in the order the bench runs them. A hardware breakpoint on the entry of
    `rdtsc_fn` sees each call; only calls from a function whose name matches the regex `sites`
    count (and, with_cr3, only from the address space that made the first such call: the
    shell's). Those come in pairs, the opening and the closing call of one sample; the N-th
    distinct opening call site is row N's. The stops at closing calls disturb those samples
    (QEMU's clock moves on while gdb holds the CPU), so this runs on a boot of its own, and
    the boot that traces stops only at the traced row's opening site. Returns
    [[opening site, closing site, samples seen], ...]."""
    entry, _ = rdtsc_insn(elf, rdtsc_fn)
    syms = Symbols(elf)
    rx = re.compile(sites)
    bp = gdb.Breakpoint(f"*{entry:#x}", type=gdb.BP_HARDWARE_BREAKPOINT)
    seen = []
    opening = True
    cr3 = None
    while not (len(seen) == rows and seen[-1][1] is not None):
        gdb.execute("continue")
        if reg("pc") != entry:
            continue
        site = read_u64(reg("rsp")) - 5
        here = reg("cr3") & ~0xFFF
        if not rx.search(syms.of(site)) or (with_cr3 and cr3 is not None and here != cr3):
            continue
        if cr3 is None:
            cr3 = here
        if not opening:
            seen[-1][1] = site
            opening = True
            continue
        opening = False
        if not seen or seen[-1][0] != site:
            if any(s[0] == site for s in seen):
                raise SystemExit(f"[prof] the opening call at {site:#x} came back after another row's")
            seen.append([site, None, 0])
            print(f"[prof] row {len(seen) - 1}: opening rdtsc call at {site:#x} in {syms.of(site)}")
        seen[-1][2] += 1
    bp.delete()
    return seen


def trace_row(elf, rdtsc_fn, site, skip, out_path, with_cr3=False):
    """Trace the SKIP+1-th sample of the timed loop whose opening `call rdtsc_fn` is at `site`
    (learn_sites): a hardware breakpoint there (before the timestamp is read: no stop falls in
    a sample) counts the samples; then `stepi` to the rdtsc instruction and record every
    instruction from it (included) to the closing rdtsc instruction (excluded: the same
    instruction at the same rsp, in the same address space): exactly the span t1 - t0, one
    line per instruction in `out_path`. Breakpoints are on virtual addresses, and on the
    microkernel every server is linked where the shell is: a hit counts only where the code at
    the site is the ELF's. Returns (steps, cr3)."""
    entry, insn = rdtsc_insn(elf, rdtsc_fn)
    code = elf_bytes(elf, site, 16)
    bp = gdb.Breakpoint(f"*{site:#x}", type=gdb.BP_HARDWARE_BREAKPOINT)
    hits = 0
    while hits <= skip:
        gdb.execute("continue")
        if reg("pc") == site and bytes(gdb.selected_inferior().read_memory(site, 16)) == code:
            hits += 1
    bp.delete()
    cr3 = reg("cr3") & ~0xFFF
    print(f"[prof] tracing sample #{hits} of the loop timed from {site:#x}")
    while reg("pc") != insn:
        gdb.execute("stepi", to_string=True)
    rsp = reg("rsp")
    first = [True]

    def closing(pc, sp):
        if first[0]:
            first[0] = False
            return False
        return pc == insn and sp == rsp and (not with_cr3 or reg("cr3") & ~0xFFF == cr3)

    return step_until(closing, out_path, with_cr3=with_cr3), cr3


def elf_bytes(elf, addr, n):
    """`n` bytes of `elf`'s loaded image at virtual address `addr` (from its program headers)."""
    import struct
    data = open(elf, "rb").read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        ptype, _, off, vaddr, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if ptype == 1 and vaddr <= addr and addr + n <= vaddr + filesz:
            return data[off + addr - vaddr: off + addr - vaddr + n]
    raise SystemExit(f"[prof] {addr:#x} is in no loaded segment of {elf}")


def finish(tag, row, steps):
    """Write the counts, and let the guest run on (detach) so that it prints its rows."""
    with open(os.path.join(OUT, f"{tag}_sample.txt"), "w") as f:
        f.write(f"row {row}\nspan {steps}\n")
    gdb.execute("delete")
    gdb.execute("detach")

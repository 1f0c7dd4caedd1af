"""Shared gdb-side helpers: attach, break, single-step and record a trace.

A trace file has one line per gdb `stepi`: `pc rcx rdx rsp [cr3]` in hex. Under QEMU's gdb stub a
`stepi` on a `rep`-prefixed string instruction runs ONE iteration (the pc stays on the
instruction while rcx counts down), which is also how -icount counts it; `analyse.py` checks
that and counts iterations from rcx either way.
"""
import gdb, os, time

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
    """stepi until stop(pc, rsp) is true, writing `pc rcx rdx rsp [cr3]` per step (the state BEFORE each
    step, i.e. the instruction about to execute). Returns the number of steps."""
    n = 0
    t0 = time.time()
    with open(out_path, "w") as f:
        while n < limit:
            pc = reg("pc")
            rsp = reg("rsp")
            if stop(pc, rsp):
                break
            rcx = reg("rcx")
            rdx = reg("rdx")
            if with_cr3:
                f.write(f"{pc:x} {rcx:x} {rdx:x} {rsp:x} {reg('cr3'):x}\n")
            else:
                f.write(f"{pc:x} {rcx:x} {rdx:x} {rsp:x}\n")
            gdb.execute("stepi", to_string=True)
            n += 1
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


def timed_site(elf, caller, rdtsc_fn, target_fn, which=0):
    """In function `caller` of `elf`: the `which`-th call of `target_fn` that comes right after
    a call of `rdtsc_fn` (a timed call). Returns (address of that `call rdtsc_fn` instruction,
    address of the rdtsc instruction in rdtsc_fn, address of target_fn, return address of the
    timed call)."""
    import re
    lo = nm(elf, caller)
    dis = disasm(elf, lo, 0x1000)
    insns = re.findall(r"^\s+([0-9a-f]+):\s+(.*)$", dis, re.M)
    found = []
    last_rdtsc = None
    for i, (a, text) in enumerate(insns):
        m = re.match(r"call\s+[0-9a-f]+ <(.+)>$", text)
        if not m:
            continue
        if m.group(1) == rdtsc_fn:
            last_rdtsc = int(a, 16)
        elif m.group(1) == target_fn and last_rdtsc is not None:
            found.append((last_rdtsc, int(insns[i + 1][0], 16)))
            last_rdtsc = None
        else:
            last_rdtsc = None
    print(f"[prof] timed calls of {target_fn} in {caller}: " + ", ".join(f"rdtsc call at {c:#x}, returns to {r:#x}" for c, r in found) + f"; using #{which}")
    call, ret = found[which]
    r = nm(elf, rdtsc_fn)
    insn = re.search(r"^\s+([0-9a-f]+):\s+rdtsc\s*$", disasm(elf, r, 0x20), re.M)
    return call, int(insn.group(1), 16), nm(elf, target_fn), ret


def trace_timed(elf, caller, rdtsc_fn, target_fn, skip, out_path, with_cr3=False, which=0):
    """Stop at the `call rdtsc` that starts the timed span (before the timestamp is read, so the
    stop costs the span nothing) the SKIP+1-th time, step to its rdtsc instruction, step (not
    recorded) to the measured call, record it instruction by instruction until it returns, then
    step (not recorded) to the rdtsc that ends the span. Returns (pre, steps, post, cr3): the
    span t1 - t0 is pre + steps + post instructions (from the first rdtsc, included, to the
    second, excluded). Single-stepping still disturbs this one sample's TSC (QEMU moves its
    virtual clock on when the stopped CPU resumes), never the others'."""
    call, rdtsc_insn, entry, ret = timed_site(elf, caller, rdtsc_fn, target_fn, which)
    bp = gdb.Breakpoint(f"*{call:#x}", type=gdb.BP_HARDWARE_BREAKPOINT)
    hits = 0
    while hits <= skip:
        gdb.execute("continue")
        if reg("pc") == call:
            hits += 1
    bp.delete()
    cr3 = reg("cr3")
    while reg("pc") != rdtsc_insn:
        gdb.execute("stepi", to_string=True)
    pre = 0
    while reg("pc") != entry:
        gdb.execute("stepi", to_string=True)
        pre += 1
    entry_rsp = reg("rsp")
    print(f"[prof] timed span #{hits}: {pre} instructions from rdtsc to the call")
    steps = step_until(lambda pc, sp: pc == ret and sp == entry_rsp + 8 and (not with_cr3 or reg("cr3") == cr3),
                       out_path, with_cr3=with_cr3)
    post = 0
    while reg("pc") != rdtsc_insn:
        gdb.execute("stepi", to_string=True)
        post += 1
    span = pre + steps + post
    print(f"[prof] span t1 - t0 = {pre} + {steps} + {post} = {span} instructions")
    return pre, steps, post, cr3


def finish(name, pre, steps, post):
    """Write the counts, and let the guest run on (detach) so that it prints its rows."""
    with open(os.path.join(OUT, f"{name}_sample.txt"), "w") as f:
        f.write(f"pre {pre}\nsteps {steps}\npost {post}\nspan {pre + steps + post}\n")
    gdb.execute("delete")
    gdb.execute("detach")

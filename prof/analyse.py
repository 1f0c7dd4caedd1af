#!/usr/bin/env python3
"""Turn a single-step trace (prof/out/TAG_trace.txt, written by trace_row.py) into a profile.

    prof/analyse.py mk.null_call  > prof/out/mk_null_call_report.txt   (any row of rows.py)
    prof/analyse.py libos         > prof/out/los_fs_read_report.txt    (a personality: its fs_read)
    prof/analyse.py microkernel   > prof/out/mk_fs_read_report.txt

Each trace line is the machine state before one `stepi`: `pc rcx rdx rsp rax [cr3]`. One step is
one instruction as -icount counts it (a `rep` string instruction steps once per iteration, plus
once more with rcx = 0, which is also what -icount counts: QEMU turns off its repz jump
optimisation under icount).

Symbols: the outermost function (the ELF symbol, `nm`) and the inline chain with source lines
(`addr2line -i`); which ELF an address belongs to is decided per step by `image_of` (libos: one
ELF; microkernel: the kernel above its link base, else the task whose address space is current,
by CR3, see `mk_images`).

A shadow call stack per stack region (call pushes, ret pops; tail calls need nothing since the
current function is read from the pc) gives inclusive counts, a call tree, the callers of
memcpy/memset and the phases.
"""
import bisect, collections, os, re, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rows as ROWS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "prof", "out")
REL = os.path.join(ROOT, "target", "os", "cargo", "x86_64-unknown-none", "release")


class Image:
    """One ELF: symbols, disassembly, source lines."""

    def __init__(self, name, path):
        self.name, self.path = name, path
        self.syms = []  # (addr, size, name)
        out = subprocess.run(["nm", "-C", "-S", "--defined-only", path], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split(" ", 3)
            if len(parts) == 4 and len(parts[2]) == 1 and parts[2] in "TtWw":
                self.syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
            elif len(parts) >= 3 and len(parts[1]) == 1 and parts[1] in "TtWw":
                self.syms.append((int(parts[0], 16), 0, line.split(" ", 2)[2]))
        self.syms.sort()
        self.addrs = [s[0] for s in self.syms]
        self.insn = {}  # addr -> (next addr, text)
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", "-w", path],
                             capture_output=True, text=True).stdout
        prev = None
        for line in out.splitlines():
            m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
            if m:
                a = int(m.group(1), 16)
                if prev is not None:
                    self.insn[prev[0]] = (a, prev[1])
                prev = (a, m.group(2).strip())
            elif line.strip() == "" or line.endswith(">:"):
                if prev is not None:
                    self.insn[prev[0]] = (None, prev[1])
                prev = None
        if prev is not None:
            self.insn[prev[0]] = (None, prev[1])
        self.lines = {}

    def sym(self, pc):
        i = bisect.bisect_right(self.addrs, pc) - 1
        if i >= 0:
            a, size, n = self.syms[i]
            if pc < a + max(size, 1) or size == 0:
                return n
        return f"?{pc:#x}"

    def resolve(self, pcs):
        """addr2line -i for every pc: [(function, file:line), ...] innermost first."""
        pcs = sorted(set(pcs) - set(self.lines))
        if not pcs:
            return
        p = subprocess.run(["addr2line", "-i", "-f", "-C", "-a", "-e", self.path],
                           input="\n".join(f"{a:#x}" for a in pcs), capture_output=True, text=True)
        cur = None
        lines = p.stdout.splitlines()
        i = 0
        while i < len(lines):
            l = lines[i]
            if re.match(r"^0x[0-9a-f]+$", l):
                cur = int(l, 16)
                self.lines[cur] = []
                i += 1
                continue
            fn = l
            loc = lines[i + 1] if i + 1 < len(lines) else "??:0"
            loc = re.sub(r"^/rustc/[0-9a-f]+/", "rustc/", loc)
            loc = loc.replace(ROOT + "/", "")
            loc = re.sub(r"^.*/\.cargo/registry/src/[^/]+/", "crates/", loc)
            loc = re.sub(r" \(discriminator \d+\)", "", loc)
            self.lines[cur].append((fn, loc))
            i += 2


def short(fn, n=110):
    fn = re.sub(r"::h[0-9a-f]{16}$", "", fn)
    return fn if len(fn) <= n else fn[: n - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Which image an address belongs to.

def libos_images():
    img = Image("libos", os.path.join(REL, "axolotl-libos"))
    return (lambda pc, cr3: img), [img]


def mk_images(rows, tag):
    """The kernel, and for each CR3 seen in the trace the server ELF whose instruction starts
    cover the user pcs run under it best (the shell's CR3 is also written by trace_row.py)."""
    kernel = Image("kernel", os.path.join(REL, "axolotl-kernel"))
    names = sorted(f for f in os.listdir(REL) if not f.startswith(("axolotl", "lib", "."))
                   and "." not in f and os.path.isfile(os.path.join(REL, f))
                   and open(os.path.join(REL, f), "rb").read(4) == b"\x7fELF")
    klo, khi = kernel.addrs[0], max(a + sz for a, sz, _ in kernel.syms)
    is_kernel = lambda pc: klo <= pc < khi or pc >= 0xFFFF800000000000
    user = collections.defaultdict(set)
    for pc, _, _, _, _, cr3 in rows:
        if not is_kernel(pc):
            user[cr3 & ~0xFFF].add(pc)
    known = {}
    path = os.path.join(OUT, f"{tag}_cr3.txt")
    if os.path.exists(path):
        for line in open(path):
            n, c = line.split()
            known[int(c, 16)] = n
    cache = {}
    def image(n):
        if n not in cache:
            cache[n] = Image(n, os.path.join(REL, n))
        return cache[n]
    by_cr3 = {}
    for cr3, pcs in user.items():
        if cr3 in known:
            by_cr3[cr3] = image(known[cr3])
            continue
        score = {n: sum(pc in image(n).insn for pc in pcs) / len(pcs) for n in names}
        best = max(score, key=score.get)
        print(f"[analyse] cr3 {cr3:#x}: {best} ({100 * score[best]:.0f}% of {len(pcs)} pcs are its instruction starts)",
              file=sys.stderr)
        by_cr3[cr3] = image(best)

    def image_of(pc, cr3):
        return kernel if is_kernel(pc) else by_cr3.get(cr3 & ~0xFFF, kernel)
    return image_of, [kernel] + list(dict.fromkeys(by_cr3.values()))


# ---------------------------------------------------------------------------------------------

# Phase rules: (task or None, regex on a function name, phase[, unless[, within]]). For each step
# the function names of its context (callers' call sites with their inline frames, then its own
# inline frames; each name is `function@file:line`) are tried from the innermost outwards; the
# first name that some rule matches decides. A rule with `unless` does not apply when a name of
# the context matches that regex, one with `within` only when one does. Generic helpers (mem*,
# core::, heapless) match no rule, so a copy counts in its user's phase; a step no rule takes
# counts as `TASK: other (CRATE)`.
HARNESS = "bench harness: rdtsc calls and the timing loop (its base is subtracted from the row)"


def rdtsc_lines():
    """A regex for the source lines of the shells' bench code that read the TSC: their
    instructions, and those of the rdtsc functions, are the timing harness."""
    alts = [r"userlib::sys::rdtsc@", r"libos_kernel::sched::rdtsc@"]
    for f in ("servers/shell/src/bench.rs", "libos/cells/shell/src/bench.rs"):
        for i, line in enumerate(open(os.path.join(ROOT, f)), 1):
            if "rdtsc()" in line:
                alts.append(re.escape(f"@{f}:{i}") + "$")
    return "(" + "|".join(alts) + ")"


RDTSC = rdtsc_lines()
FS_CORE_RULES = [
    (r"^fs_core::journal", "fs-core: journal (images into slots, header, home blocks, flushes)"),
    (r"^fs_core::tx", "fs-core: change set (Tx: cached metadata, bitmap, commit)"),
    (r"^fs_core::path", "fs-core: path lookup (components, directory entries)"),
    (r"^fs_core::disk", "fs-core: disk reads (inodes, file blocks, directories)"),
    (r"^fs_core::volume", "fs-core: volume (mounted device, dispatch to disk/tx)"),
    (r"^fs_core::layout", "fs-core: on-disk layout (encode/decode inodes, entries, bitmap)"),
    (r"^fs_core::", "fs-core: other (fd table, inode, read/write/seek)"),
]
# The libos kernel's part of a channel round trip (Endpoint::call/recv/reply and the switches).
LOS_KERNEL_RULES = [
    (None, r"^libos_kernel::mem::paging::open", "libos kernel: switch: open the incoming task's slots (paging::open)"),
    (None, r"^libos_kernel::mem::heap::switch_to", "libos kernel: switch: the incoming task's heap"),
    (None, r"^(algo::bitmap|<?libos_kernel::mem::heap|__rustc::__rust_(alloc|realloc|dealloc)|alloc::raw_vec)", "heap: allocations (Vec growth, frees: the libos heap's first-fit bitmap)", r"^libos_kernel::sched::switch@"),
    (None, r"^libos_kernel::sched::(switch|pick)", "libos kernel: switch: scheduler (save frame, handoff, state)"),
    (None, r"^(los_trap_common|libos_kernel_trap|los_trap_return|los_isr_yield|libos_kernel::trap::|libos_kernel::arch::cpu::yield_now)", "libos kernel: trap: yield (int 0x81), entry, dispatch, return"),
    (None, r"^libos_kernel::mem::protect", "libos kernel: protection: lift it for the answer's copy (unprotected)"),
    (None, r"^libos_kernel::state::Kernel::(cur|task|wake)", "libos kernel: task table (Kernel::cur/task/wake)"),
    (None, r"^libos_kernel::chan::inside", "libos kernel: channel: buffer range checks (inside)"),
    (None, r"^libos_kernel::chan::kernel_call", "libos kernel: channel call (endpoint, buffers, checks, queue, handoff; wait for the answer)"),
    (None, r"^libos_kernel::chan::kernel_recv", "libos kernel: channel recv (endpoint, dequeue, copy the request)"),
    (None, r"^libos_kernel::chan::(kernel_reply|serving)", "libos kernel: channel reply (serving check, buffers, copy the answer, handoff)"),
    (None, r"^libos_kernel::sched::block_on", "libos kernel: block_on (condition, state, yield)"),
    (None, r"^libos_kernel::chan::", "libos kernel: channel stubs (Endpoint, CheckedEndpoint)"),
]
LOS_RULES = [
    ("shell", r"^algo::seal::seal", "cell call: algo::seal (the lap's seal checked, and made again)", None, r"^cell_timer::lap@"),
    ("shell", RDTSC, HARNESS),
    ("shell", r"^(libos_kernel::kept::Kept<T>::get|cell_fs::Fs::call_with@libos/cells/fs/src/lib.rs:322$)", "client: load the session copies (Kept::get, volatile)"),
    ("shell", r"^libos_kernel::kept::Kept<T>::set", "client: store the new session (Kept::set)"),
    ("ramdisk", r"^libos_kernel::mem::mapped::MappedPages::(read|write|sane)", "block store: ramdisk server (MappedPages read/write)"),
] + LOS_KERNEL_RULES + [
    (None, r"^cell_ramdisk::start", "block store: ramdisk server (recv/dispatch/reply)"),
    (None, r"^algo::mirror::tag", "cache/checksum: mirror tag of each block read or written"),
    (None, r"^(algo::mirror::Mirror|cell_ramdisk::Blocks|<cell_ramdisk::Blocks)", "block store client: Mirror read/write (copies)"),
    (None, r"^(<cell_fs::twice::Held|cell_fs::twice::Held|algo::mirror::Vouched|fs_core::cache::Shelf)", "twice: Held device (block cache, writes held)"),
    (None, r"^algo::seal", "cache/checksum: a block's seal checked against the store's tag (cache hits, blocks read)", None,
     r"^(fs_core::cache::Shelf|algo::mirror::Vouched|<cell_ramdisk::Blocks|cell_ramdisk::Blocks)"),
    (None, r"^(fs_core::session::SmallClientState::check|algo::seal|cell_fs::server::check|cell_fs::server::sealed|cell_fs::server::seal_in)", "session state check/seal", r"^(algo::mirror::tag|cell_fs::Op::digest)"),
] + [(None, rx, ph) for rx, ph in FS_CORE_RULES] + [
    (None, r"^cell_fs::server::handle", "fs-core: other (fd table, inode, read/write/seek)"),
    (None, r"^cell_fs::twice::agree", "twice: compare the two runs"),
    (None, r"^cell_fs::twice", "twice: run setup, copies of state/result"),
    (None, r"^cell_fs::Op::digest", "request digest (client and server)"),
    ("fs", r"^cell_fs::server", "fs server: dispatch (recv in place, build/answer, reply)"),
    ("shell", r"^cell_fs::Answer::agrees|^<cell_fs::Out as|^cell_fs::bytes", "client: compare the two answers"),
    ("shell", r"^cell_fs::(exchange|Fs|Request)", "client stub: Fs::op/call_with/exchange (request, answer)"),
    ("shell", r"^cell_timer::lap@", "cell call: timer::lap (seal checked, count, sealed again)", r"^algo::seal"),
    ("shell", r"^cell_timer::", "cell call: timer cell"),
    ("shell", r"^(cell_shell::bench::|<cell_shell::Shell as shellcmd::personality::Shell>::bench|libos_kernel::control::without_preemption)", "client: the row's closure (call, result check)"),
    ("echo", r"^cell_shell::bench::start_echo", "echo task: its loop (recv, add one, reply)"),
]
# Tried only when no rule above names any frame of the context: wrappers that enclose other work.
LOS_WEAK_RULES = [
    (None, r"^libos_kernel::sync::", "libos kernel: critical sections (sync: enter/leave, depth)"),
]
# Which task a libos stack region is: the first rule matching a function run on it (S0, where the
# trace starts, is the shell's).
LOS_TASK_RULES = [(r"^cell_fs::server|^cell_fs::twice::Run", "fs"), (r"^cell_ramdisk", "ramdisk"),
                  (r"^cell_shell::bench::start_echo", "echo"), (r"^cell_console", "console"),
                  (r"^cell_virtio_blk", "virtio-blk")]
MK_RULES = [
    ("fs", r"^(ssr::Region<T>::seal|<ssr::Region<T> as core::ops::drop::Drop>::drop)", "session: SSR seal at the end (checksum + backup copy)"),
    ("fs", r"^(fs_core::session::ClientState::check|<fs::SsrState as ssr::Layout>::check)", "session: ClientState::check (ranges, cwd UTF-8)"),
    ("fs", r"^ssr::", "session: SSR open/verify (header, checksum)", r"^ssr::Region<T>::seal"),
    ("fs", r"^fs_core::cache::checksum", "cache/checksum: block cache hit check (checksum of the 512-byte block)"),
    ("fs", r"^(<fs_core::cache::Cached|fs_core::cache)", "cache/checksum: block cache lookup, copy out/in"),
] + [("fs", rx, ph) for rx, ph in FS_CORE_RULES] + [
    ("fs", r"^(block_api::|<block_api::)", "fs -> ramdisk: block client stub (block_api: request, answer copy)"),
    ("fs", r"(postcard::de|Deserialize|userlib::msg::decode)", "server: decode (postcard: the request; ramdisk's answers)"),
    ("fs", r"(postcard::ser|Serialize|userlib::msg::encode)", "server: encode (postcard: the answer; block requests to ramdisk)"),
    ("fs", r"^userlib::", "server: IPC stub (reply_recv, payload_into copy)"),
    ("fs", r"^fs::Server::handle", "server: dispatch (Server::handle)"),
    ("fs", r"^fs::main", "server: loop (badge, label, dispatch)"),
    ("ramdisk", r"(postcard|Serialize|Deserialize|userlib::msg)", "ramdisk: decode request / encode answer (postcard)"),
    ("ramdisk", r"^userlib::", "ramdisk: IPC stub (reply_recv, payload copies)"),
    ("ramdisk", r"^(block_api::|<block_api::)", "ramdisk: block protocol loop (block_api::serve: dispatch)"),
    ("ramdisk", r"^ramdisk::", "ramdisk: the store (copy a block in/out, flush)"),
    ("bench", r"^ssr::checksum", "server: SSR checksum verified", r"^(ssr::Region<T>::seal|<ssr::Region<T> as core::ops::drop::Drop>::drop)"),
    ("bench", r"^(ssr::Region<T>::seal|<ssr::Region<T> as core::ops::drop::Drop>::drop)", "server: SSR sealed again (checksum recomputed and stored)"),
    ("bench", r"^ssr::Region<T>::(state|get)", "server: the counter (state().value += 1, get)"),
    ("bench", r"^ssr::", "server: SSR opened (split, header checks: magic, kind, version, length)", r"^(ssr::Region<T>::seal|<ssr::Region<T> as core::ops::drop::Drop>::drop)"),
    ("bench", r"^bench::main@servers/bench/src/main.rs:(39|40)$", "server: the counter (state().value += 1, get)"),
    ("bench", r"^userlib::", "server: reply_recv stub (syscall, result)"),
    ("bench", r"^bench::main", "server: loop and dispatch (label, badge, answer)"),
    ("shell", RDTSC, HARNESS),
    ("shell", r"(userlib::msg::encode|postcard::ser|Serialize)", "client: encode request (postcard)"),
    ("shell", r"(postcard::de|Deserialize|userlib::msg::decode)", "client: decode reply (postcard)"),
    ("shell", r"^fs_api::Fs::read::\{\{closure\}\}", "client: decode reply + copy the data out"),
    ("shell", r"^userlib::", "client: IPC stub (call, syscall, result; copy from the IPC buffer)"),
    ("shell", r"^fs_api::", "client: fs_api stub (Fs::op)"),
    ("shell", r"^shell::bench::", "client: the row's closure (call, result check)"),
    ("shell", r"^<shell::Shell as shellcmd::personality::Shell>::bench", "client: the row's closure (call, result check)"),
]

# ---------------------------------------------------------------------------------------------
# The microkernel's kernel entries: each run of kernel instructions (a "visit") is the syscall
# in rax at its first step (or a trap), and each of its instructions one part of the path, in
# the shape of README's table "Where the instructions of `mk.ssr_call` go".

KPARTS = [
    "entry stub",
    "Rust entry (prologue, lock, current task)",
    "shape check + capability lookup",
    "the other side can take it now",
    "endpoint queue",
    "SSR window",
    "bookkeeping",
    "message transfer",
    "switch (current, rsp0, CR3, unlock)",
    "exit stub",
]
FASTPATH_LINES = {
    # microkernel/kernel/src/fastpath.rs: `call`, `call_on` and `reply_recv`, line -> part (by
    # ranges).
    "call": [(72, 93, 2)],
    "call_on": [(96, 100, 2), (101, 109, 3), (110, 110, 5), (111, 112, 3), (113, 113, 4), (114, 116, 5),
                (117, 122, 6), (123, 123, 7), (124, 132, 6)],
    "reply_recv": [(135, 139, 2), (140, 158, 3), (159, 160, 5), (161, 161, 4), (162, 163, 7), (164, 177, 6)],
}


def sysnos():
    """Sysno numbers to names, from the ABI's source."""
    src = open(os.path.join(ROOT, "microkernel", "abi", "src", "lib.rs")).read()
    body = src[src.index("pub enum Sysno"):]
    body = body[: body.index("\n}")]
    return {int(n): name for name, n in re.findall(r"^\s+(\w+) = (\d+),", body, re.M)}


def kernel_part(sym, chain):
    """The part of the kernel path one instruction is (KPARTS), from its ELF symbol and its
    inline chain (innermost first); None when only its neighbours can tell (no line)."""
    if sym == "syscall_entry":
        return KPARTS[0]
    if sym in ("sysret_to_user_asm", "sysret_ipc_asm", "return_to_user_asm"):
        return KPARTS[9]
    for fn, loc in chain:
        line = loc.rpartition(":")[2]
        line = int(line) if line.isdigit() else None
        if re.search(r"axolotl_kernel::ssr::|set_user_page|map_user_page|clear_user_page|write_user_entry|invlpg", fn):
            return KPARTS[5]
        if "send_message" in fn:
            return KPARTS[7]
        if re.search(r"Queue::(pop_front|push_back|remove)", fn):
            return KPARTS[4]
        if re.search(r"Queue::front|RunQueues::any_in|fastpath::may_run_now", fn):
            return KPARTS[3]
        if re.search(r"CSpace::slot", fn):
            return KPARTS[2]
        for name, table in FASTPATH_LINES.items():
            if fn.endswith(f"fastpath::{name}"):
                if line is None:
                    return None
                for lo, hi, part in table:
                    if lo <= line <= hi:
                        return KPARTS[part]
        if fn.endswith("fastpath::try_ipc"):
            return KPARTS[2]
        if re.search(r"spin::mutex.*(try_lock|::lock)|KernelCell::enter|HeldFlag::take", fn):
            return KPARTS[1]
        if re.search(r"SpinMutexGuard|MutexGuard|KernelGuard|HeldFlag::give_back", fn):
            return KPARTS[8]
        if re.search(r"sched::<impl .*>::(activate|activate_other|charge)|paging::load_cr3|AddressSpace|gdt::set_rsp0|trap::frame_end|trap::sysret_to_user|trap::sysret_ipc", fn):
            return KPARTS[8]
        if fn == "syscall_from_user":
            if line is None:
                return None
            return KPARTS[1] if line <= 21 else KPARTS[2] if line == 22 else KPARTS[8]
        if fn.startswith("axolotl_kernel::syscall") or fn.startswith("axolotl_kernel::traps::slow_syscall"):
            return "general path: " + short(re.sub(r"<impl [^>]*>::", "", fn), 60)
    for fn, loc in chain:
        if fn.startswith(("axolotl_kernel::", "axolotl_kcore::")):
            return "general path: " + short(re.sub(r"<impl [^>]*>::", "", fn), 60)
    return None


# ---------------------------------------------------------------------------------------------

def load(path):
    rows = []
    for line in open(path):
        p = line.split()
        pc, rcx, rdx, rsp, rax = (int(x, 16) for x in p[:5])
        cr3 = int(p[5], 16) if len(p) > 5 else 0
        rows.append((pc, rcx, rdx, rsp, rax, cr3))
    return rows


def region_of(rsp, cr3):
    # libos: every stack is a MappedPages in a 1 MiB slot; microkernel: user stacks per
    # address space, kernel stacks apart.
    return (cr3 if rsp < 0xFFFF800000000000 else 0, rsp >> 20)


def main():
    arg = sys.argv[1] if len(sys.argv) > 1 else "libos"
    if arg in ROWS.PERSONALITIES:
        personality, row = arg, ROWS.PERSONALITIES[arg]["short"] + ".fs_read"
    else:
        personality, row = ROWS.personality_of(arg), arg
    tag = ROWS.tag(row)
    trace = os.path.join(OUT, f"{tag}_trace.txt")
    rows = load(trace)
    image_of, images = libos_images() if personality == "libos" else mk_images(rows, tag)
    n = len(rows)
    imgs = [image_of(r[0], r[5]) for r in rows]
    for im in images:
        im.resolve([r[0] for r, i in zip(rows, imgs) if i is im])

    def where(k):
        return imgs[k], rows[k][0]

    def outer(k):
        im, pc = where(k)
        return f"{im.name}:{short(im.sym(pc), 90)}" if len(images) > 1 else short(im.sym(pc), 100)

    def inner(k):
        im, pc = where(k)
        ch = im.lines.get(pc) or [("??", "??:0")]
        return short(ch[0][0], 90), ch[0][1]

    # --- shadow stacks -----------------------------------------------------------------------
    stacks = collections.defaultdict(list)  # region -> [(call-site step index)]
    labels = {}
    path_of = []  # per step: tuple of call-site step indexes (outermost first)
    region_seq = []
    for k, (pc, rcx, rdx, rsp, rax, cr3) in enumerate(rows):
        reg = region_of(rsp, cr3)
        if reg not in labels:
            labels[reg] = f"S{len(labels)}"
        st = stacks[reg]
        path_of.append((labels[reg], tuple(st)))
        region_seq.append(labels[reg])
        im = imgs[k]
        nxt, text = im.insn.get(pc, (None, "?"))
        op = text.split()[0] if text else "?"
        if op.startswith("call"):
            st.append(k)
        elif op.startswith("ret"):
            if st:
                # Pop to the frame whose return address is where we go (skips frames that
                # left by a stack switch).
                tgt = rows[k + 1][0] if k + 1 < n else None
                for j in range(len(st) - 1, -1, -1):
                    c = st[j]
                    if imgs[c].insn.get(rows[c][0], (None,))[0] == tgt:
                        del st[j:]
                        break
                else:
                    st.pop()

    # --- tasks -----------------------------------------------------------------------------------
    if personality == "libos":
        seen_on = collections.defaultdict(set)
        for k in range(n):
            seen_on[region_seq[k]].add(where(k)[0].sym(rows[k][0]))
        region_task = {}
        for lab, syms in seen_on.items():
            name = "shell" if lab == "S0" else None
            for rx, t in LOS_TASK_RULES:
                if name is None and any(re.search(rx, s) for s in syms):
                    name = t
            region_task[lab] = name or f"task on stack {lab}"
        task_of = lambda k: region_task[region_seq[k]]
    else:
        task_of = lambda k: imgs[k].name

    # --- exclusive -----------------------------------------------------------------------------
    def table(title, counter, top=25, total=n):
        print(f"\n## {title}\n")
        print(f"{'instr':>7} {'%':>5}  what")
        for key, c in counter.most_common(top):
            print(f"{c:7d} {100.0 * c / total:5.1f}  {key}")
        rest = sum(counter.values()) - sum(c for _, c in counter.most_common(top))
        if rest:
            print(f"{rest:7d} {100.0 * rest / total:5.1f}  (the other {len(counter) - top})")

    print(f"# {row} ({personality}): {n} instructions traced ({os.path.relpath(trace, ROOT)})")
    sample = os.path.join(OUT, f"{tag}_sample.txt")
    if os.path.exists(sample):
        c = dict(l.split(None, 1) for l in open(sample))
        c = {k: v.strip() for k, v in c.items()}
        if "traced_row" in c and row.endswith(".timing_loop"):
            print(f"span t1 - t0 = {c['span']} instructions (first rdtsc included, second excluded): the timing loop, "
                  f"which the same boot printed as {c['base']} (every row is printed less it)")
        elif "traced_row" in c:
            ok = "equals" if c["traced_row"] == c["row_min"] else "DOES NOT equal"
            print(f"span t1 - t0 = {c['span']} instructions (first rdtsc included, second excluded); less the "
                  f"{c['base']}-tick timing loop = {c['traced_row']}, which {ok} the same boot's row: min={c['row_min']} "
                  f"median={c['row_median']} p99={c['row_p99']} (the traced sample's own TSC is disturbed by the stepping)")
    if personality == "libos":
        print("tasks by stack region: " + ", ".join(f"{lab} = {t}" for lab, t in region_task.items()))
    reps = collections.Counter()
    for k in range(n):
        im, pc = where(k)
        t = im.insn.get(pc, (None, ""))[1]
        if t.startswith("rep"):
            reps[t.split()[0] + " " + t.split()[1] if len(t.split()) > 1 else t] += 1
    print(f"rep string instruction steps (one per iteration + 1): {sum(reps.values())} {dict(reps)}")

    # --- kernel entries (microkernel): computed before the phases, which use their parts --------------------------------------------------------------
    if personality == "microkernel":
        names = sysnos()
        visits = []  # [start, end, column]
        k = 0
        while k < n:
            if imgs[k].name != "kernel":
                k += 1
                continue
            j = k
            while j < n and imgs[j].name == "kernel":
                j += 1
            first = imgs[k].sym(rows[k][0])
            by = imgs[k - 1].name if k > 0 else "?"
            if first == "syscall_entry":
                what = names.get(rows[k][4], f"syscall {rows[k][4]}")
            else:
                what = f"trap ({first})"
            fast = any(any(re.search(r"fastpath::(call|reply_recv)$", f) for f, _ in (imgs[i].lines.get(rows[i][0]) or []))
                       for i in range(k, j))
            slow = any("slow_syscall" in imgs[c].sym(rows[c][0]) or "axolotl_kernel::syscall" in imgs[c].sym(rows[c][0])
                       for i in range(k, j) for c in list(path_of[i][1]) + [i])
            to = imgs[j].name if j < n else "?"
            kind = "fastpath" if fast and not slow else "general path"
            visits.append((k, j, f"{by}: {what} ({kind})", to))
            k = j
        part = {}
        for k0, k1, _, _ in visits:
            prev = None
            for i in range(k0, k1):
                im = imgs[i]
                p = kernel_part(im.sym(rows[i][0]), im.lines.get(rows[i][0]) or [])
                part[i] = p = p or prev or "other"
                prev = p
    # --- phases ------------------------------------------------------------------------------------
    rules = LOS_RULES if personality == "libos" else MK_RULES
    def context(k):
        """Function names from the outermost known frame to the innermost inlined one."""
        lab, path = path_of[k]
        names = []
        for c in list(path) + [k]:
            im, pc = where(c)
            ch = im.lines.get(pc) or [(im.sym(pc), "")]
            names += [f"{f}@{l}" for f, l in reversed(ch)]
        return names
    phase_of = []
    for k in range(n):
        task = task_of(k)
        if task == "kernel":
            phase_of.append(f"kernel: {part[k]}")
            continue
        names = context(k)
        got = None
        for name in reversed(names):
            for rule in rules:
                t, rx, ph = rule[:3]
                unless = rule[3] if len(rule) > 3 else None
                within = rule[4] if len(rule) > 4 else None
                if ((t is None or t == task) and re.search(rx, name)
                        and not (unless and any(re.search(unless, x) for x in names))
                        and not (within and not any(re.search(within, x) for x in names))):
                    got = ph
                    break
            if got:
                break
        for name in ([] if got else reversed(names)):
            for rule in (LOS_WEAK_RULES if personality == "libos" else []):
                if (rule[0] is None or rule[0] == task) and re.search(rule[1], name):
                    got = rule[2]
                    break
            if got:
                break
        if not got:
            crate = re.sub(r"^<", "", where(k)[0].sym(rows[k][0])).split("::")[0]
            got = "libos kernel: other" if re.match(r"^(libos_kernel|los_)", crate) else f"{task}: other ({crate})"
        phase_of.append(got)
    ph = collections.Counter(phase_of)
    memph = collections.Counter(p for k, p in enumerate(phase_of)
                                if re.match(r"^(memcpy|memset|memcmp|bcmp|memmove|compiler_builtins::mem)", where(k)[0].sym(rows[k][0])))
    print("\n## Phases (first matching rule from the innermost inlined frame outwards; mem* = of which in memcpy/memset/memcmp)\n")
    print(f"{'instr':>7} {'%':>5} {'mem*':>6}  phase")
    for p, c in sorted(ph.items(), key=lambda x: -x[1]):
        print(f"{c:7d} {100.0 * c / n:5.1f} {memph[p]:6d}  {p}")
    print(f"{n:7d} 100.0 {sum(memph.values()):6d}  total")
    # phases by task (libos: a block fetch, both its sides, apart)
    def group(k):
        lab, path = path_of[k]
        if personality == "libos":
            if task_of(k) == "ramdisk" or any(re.search(r"Blocks::(read|write)", where(c)[0].sym(rows[c][0])) for c in path):
                return "block fetches/stores (fs -> ramdisk and back)"
        return task_of(k)
    print("\n## Phases by task\n")
    gp = collections.Counter((group(k), phase_of[k]) for k in range(n))
    gt = collections.Counter(group(k) for k in range(n))
    for g, c in sorted(gt.items(), key=lambda x: -x[1]):
        print(f"{c:7d} {100.0 * c / n:5.1f}  {g}")
        for (g2, p), cc in sorted(gp.items(), key=lambda x: -x[1]):
            if g2 == g:
                print(f"{cc:13d}  {p}")

    if personality == "microkernel":
        print("\n## Kernel entries in order (each run of kernel instructions: who entered, why, which path, who runs after)\n")
        print(f"{'step':>6} {'instr':>6}  entry")
        for k0, k1, col, to in visits:
            print(f"{k0:6d} {k1 - k0:6d}  {col} -> {to}")
        cols = list(dict.fromkeys(col for _, _, col, _ in visits))
        counts = collections.Counter((col, part[i]) for k0, k1, col, _ in visits for i in range(k0, k1))
        nvis = collections.Counter(col for _, _, col, _ in visits)
        allparts = KPARTS + sorted(set(p for _, p in counts) - set(KPARTS))
        print("\n## Kernel parts per kind of entry (instructions summed over the entries of each kind; README's table's shape)\n")
        head = [f"{c} x{nvis[c]}" for c in cols]
        print("| part | " + " | ".join(head) + " | all |")
        print("|---|" + "---:|" * (len(cols) + 1))
        for p in allparts:
            vals = [counts[(c, p)] for c in cols]
            if sum(vals):
                print(f"| {p} | " + " | ".join(str(v) for v in vals) + f" | {sum(vals)} |")
        tot = [sum(counts[(c, p)] for p in allparts) for c in cols]
        print("| **kernel** | " + " | ".join(f"**{v}**" for v in tot) + f" | **{sum(tot)}** |")
        user = n - sum(tot)
        print(f"\nkernel {sum(tot)} + user {user} = {n} instructions traced")

    # --- channel calls (libos) ------------------------------------------------------------------------
    if personality == "libos":
        entries = collections.Counter()
        for k in range(n):
            im, pc = where(k)
            sym = im.sym(pc)
            if sym.startswith("libos_kernel::chan::kernel_") and im.addrs[bisect.bisect_right(im.addrs, pc) - 1] == pc:
                entries[(task_of(k), sym.split("::")[-1])] += 1
        if entries:
            print("\n## Channel operations (entries into the libos kernel's kernel_call/recv/reply, by task)\n")
            for (t, what), c in sorted(entries.items()):
                print(f"{c:7d}  {t}: {what}")

    # --- by the client's operation (a row that times two, e.g. write + seek) -------------------------
    op_of = []
    op = "(the shell outside file operations)"
    for k in range(n):
        if task_of(k) == "shell":
            for name in context(k):
                m = re.match(r"^(fs_api|cell_fs)::Fs::(\w+)@", name)
                if m:
                    op = f"{m.group(1)}::Fs::{m.group(2)}"
                    break
            else:
                op = "(the shell outside file operations)"
        op_of.append(op)
    ops = collections.Counter(op_of)
    if len([o for o in ops if not o.startswith("(")]) > 0:
        print("\n## By the client's operation (each step counted in the file operation the shell is in: the servers' and the kernel's steps in the one the shell waits in)\n")
        byop = collections.defaultdict(collections.Counter)
        for k in range(n):
            byop[op_of[k]][phase_of[k]] += 1
        for o, c in ops.items():
            print(f"{c:7d}  {o}")
            for p2, cc in byop[o].most_common(12):
                print(f"{cc:13d}  {p2}")

    # --- tables by function ------------------------------------------------------------------------
    table("Self instructions by function (ELF symbol, inlined code counted in its caller)",
          collections.Counter(outer(k) for k in range(n)))
    GENERIC = re.compile(r"^(core::|<core::|<\*const|<\*mut|<u\d+|<usize|<i\d+|<bool|<\[|<\(|compiler_builtins::|alloc::|<alloc::|<&|bytemuck::|<bytemuck|heapless::|<heapless|<T as core|<A as core)")
    def meaningful(k):
        im, pc = where(k)
        for f, _ in (im.lines.get(pc) or []):
            if not GENERIC.match(f):
                return short(f, 95)
        return short(im.sym(pc), 95)
    table("Self instructions by function, inlined functions apart (innermost frame that is not a core/compiler-builtins helper)",
          collections.Counter((where(k)[0].name + ":" if len(images) > 1 else "") + meaningful(k) for k in range(n)), top=30)
    table("Self instructions by innermost (inlined) function",
          collections.Counter(inner(k)[0] for k in range(n)), top=40)
    table("Self instructions by source line (innermost)",
          collections.Counter(f"{inner(k)[1]}  [{inner(k)[0][:60]}]" for k in range(n)), top=40)

    # --- inclusive -----------------------------------------------------------------------------
    incl = collections.Counter()
    tree = collections.Counter()
    for k in range(n):
        lab, path = path_of[k]
        fns = [lab] + [outer(c) for c in path] + [outer(k)]
        for f in set(fns[1:]):
            incl[f] += 1
        for d in range(1, len(fns) + 1):
            tree[tuple(fns[:d])] += 1
    table("Inclusive instructions by function (shadow call stack)", incl, top=40)

    print("\n## Call tree (inclusive; nodes >= 0.5%)\n")
    kids = collections.defaultdict(list)
    for p, c in tree.items():
        kids[p[:-1]].append((c, p))
    def show(p, depth):
        for c, q in sorted(kids.get(p, []), reverse=True):
            if c >= n * 0.005:
                print(f"{c:7d} {'  ' * depth}{q[-1]}")
                show(q, depth + 1)
    show((), 0)

    # --- mem* calls ----------------------------------------------------------------------------
    print("\n## Calls of memcpy / memset / memcmp and of the checksums (bytes = rdx at entry, the size for mem*; instr = inclusive per group)\n")
    calls = []
    for k in range(n):
        im, pc = where(k)
        s = im.sym(pc)
        if s in ("memcpy", "memset", "memcmp", "memmove", "bcmp", "algo::seal::seal", "algo::mirror::tag", "fs_core::cache::checksum") and im.addrs[bisect.bisect_right(im.addrs, pc) - 1] == pc:
            # count steps until we leave the function (to a pc outside it)
            j = k + 1
            steps = 1
            depth = len(path_of[k][1])
            while j < n and not (path_of[j][0] == path_of[k][0] and len(path_of[j][1]) < depth):
                steps += path_of[j][0] == path_of[k][0]
                j += 1
            lab, path = path_of[k]
            site = path[-1] if path else None
            if site is not None:
                cim, cpc = where(site)
                chain = cim.lines.get(cpc) or []
                if not chain:
                    cim.resolve([cpc])
                    chain = cim.lines.get(cpc) or []
                # the first two frames that are not core/compiler-builtins helpers, and the caller's own symbol
                own = [(f, l) for f, l in chain if not re.match(r"^(core::|<core::|<\*|<T as|<A as|<&|<u\d|<usize|compiler_builtins)", f)][:2]
                who = " <- ".join(f"{short(f, 70)} ({l})" for f, l in own) or f"{short(chain[0][0], 60)} ({chain[0][1]})"
                if not own or short(own[-1][0], 200) != short(cim.sym(cpc), 200):
                    who += f" <- [{short(cim.sym(cpc), 60)}]"
                caller = outer(site)
            else:
                who, caller = "?", "?"
            calls.append((s, rows[k][2], steps, caller, who, k))
    agg = collections.defaultdict(lambda: [0, 0, 0])
    for s, size, steps, caller, who, k in calls:
        if not s.startswith("mem"):
            size = 0
        a = agg[(s, size, who)]
        a[0] += 1
        a[1] += steps
    print(f"{'calls':>5} {'instr':>6} {'bytes':>6}  fn      call site (innermost inline frames)")
    for (s, size, who), (cnt, steps, _) in sorted(agg.items(), key=lambda x: -x[1][1]):
        print(f"{cnt:5d} {steps:6d} {size:6d}  {s.split('::')[-1]:8s} {who}")
    for f in sorted(set(c[0] for c in calls)):
        tot = sum(x[2] for x in calls if x[0] == f)
        cnt = sum(1 for x in calls if x[0] == f)
        print(f"total in {f}: {cnt} calls, {tot} instructions ({100.0 * tot / n:.1f}%)")

    # --- timeline: stack regions in order --------------------------------------------------------
    print("\n## Timeline: runs on each stack region (S0 = the caller's), with the outermost function seen first\n")
    start = 0
    for k in range(1, n + 1):
        if k == n or region_seq[k] != region_seq[start]:
            lab, path = path_of[start]
            first = outer(path[0]) if path else outer(start)
            print(f"{start:6d} +{k - start:6d}  {region_seq[start]:4s} {task_of(start):10s} {first}")
            start = k

    # top functions within each phase
    print("\n## Self instructions by function within each phase (top 6)\n")
    byp = collections.defaultdict(collections.Counter)
    for k in range(n):
        byp[phase_of[k]][outer(k)] += 1
    for p, c in sorted(ph.items(), key=lambda x: -x[1]):
        print(f"{c:7d}  {p}")
        for f, cc in byp[p].most_common(6):
            print(f"{cc:13d}  {f}")

    # dump per-step attribution
    with open(os.path.join(OUT, f"{tag}_steps.tsv"), "w") as f:
        for k in range(n):
            lab, path = path_of[k]
            im, pc = where(k)
            chain = " < ".join(f"{short(fn, 50)}@{l}" for fn, l in (im.lines.get(pc) or []))
            kp = part.get(k, "") if personality == "microkernel" else ""
            f.write("\t".join([str(k), f"{rows[k][0]:x}", lab, task_of(k), phase_of[k], kp,
                               " > ".join(outer(c) for c in path), outer(k), inner(k)[0], inner(k)[1], chain]) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Turn a single-step trace (prof/out/*_trace.txt, written by trace_*.py) into a profile.

    prof/analyse.py libos        > prof/out/los_report.txt
    prof/analyse.py microkernel  > prof/out/mk_report.txt

Each trace line is the machine state before one `stepi`: `pc rcx rdx rsp [cr3]`. One step is
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


def mk_images(rows):
    """The kernel, and for each CR3 seen in the trace the server ELF whose instruction starts
    cover the user pcs run under it best (the shell's CR3 is also written by trace_mk.py)."""
    kernel = Image("kernel", os.path.join(REL, "axolotl-kernel"))
    names = sorted(f for f in os.listdir(REL) if not f.startswith(("axolotl", "lib", "."))
                   and "." not in f and os.path.isfile(os.path.join(REL, f))
                   and open(os.path.join(REL, f), "rb").read(4) == b"\x7fELF")
    klo, khi = kernel.addrs[0], max(a + sz for a, sz, _ in kernel.syms)
    is_kernel = lambda pc: klo <= pc < khi or pc >= 0xFFFF800000000000
    user = collections.defaultdict(set)
    for pc, _, _, _, cr3 in rows:
        if not is_kernel(pc):
            user[cr3 & ~0xFFF].add(pc)
    known = {}
    path = os.path.join(OUT, "mk_cr3.txt")
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

# Phase rules: (task or None, regex on a function name, phase). For each step the function
# names of its context (callers' call sites with their inline frames, then its own inline
# frames) are tried from the innermost outwards; the first name that some rule matches decides.
# Generic helpers (mem*, core::, heapless) match no rule, so a copy counts in its user's phase.
LOS_RULES = [
    ("shell", r"^(libos_kernel::kept::Kept<T>::get|cell_fs::Fs::call_with@libos/cells/fs/src/lib.rs:322$)", "client: load the session copies (Kept::get, volatile)"),
    ("shell", r"^libos_kernel::kept::Kept<T>::set", "client: store the new session (Kept::set)"),
    ("ramdisk", r"^libos_kernel::mem::mapped::MappedPages::(read|sane)", "block store: ramdisk server (MappedPages::read)"),
    (None, r"^(libos_kernel|los_trap|libos_kernel_trap)", "IPC: libos kernel (call/recv/reply, switch, trap)"),
    (None, r"^cell_ramdisk::start", "block store: ramdisk server (recv/dispatch/reply)"),
    (None, r"^algo::mirror::tag", "cache/checksum: mirror tag of each block read"),
    (None, r"^(algo::mirror::Mirror|cell_ramdisk::Blocks|<cell_ramdisk::Blocks)", "block store client: Mirror::read_vouched (copies)"),
    (None, r"^(<cell_fs::twice::Held|cell_fs::twice::Held|algo::mirror::Vouched|fs_core::cache::Shelf)", "twice: Held device (block cache)"),
    (None, r"^(fs_core::session::SmallClientState::check|algo::seal|cell_fs::server::check|cell_fs::server::sealed|cell_fs::server::seal_in)", "session state check/seal", r"^(algo::mirror::tag|cell_fs::Op::digest)"),
    (None, r"^fs_core::", "fs-core: read path (inode, read_at)"),
    (None, r"^cell_fs::server::handle", "fs-core: read path (inode, read_at)"),
    (None, r"^cell_fs::twice::agree", "twice: compare the two runs"),
    (None, r"^cell_fs::twice", "twice: run setup, copies of state/result"),
    (None, r"^cell_fs::Op::digest", "request digest (client and server)"),
    ("fs", r"^cell_fs::server", "fs server: dispatch (recv in place, build/answer, reply)"),
    ("shell", r"^cell_fs::Answer::agrees|^<cell_fs::Out as|^cell_fs::bytes", "client: compare the two answers"),
    ("shell", r"^cell_fs::(exchange|Fs|Request)", "client stub: Fs::read/call_with/exchange (request, answer)"),
]
LOS_TASKS = {"S0": "shell", "S1": "fs", "S2": "ramdisk"}
MK_RULES = [
    ("fs", r"^(ssr::Region<T>::seal|<ssr::Region<T> as core::ops::drop::Drop>::drop)", "session: SSR seal at the end (checksum + backup copy)"),
    ("fs", r"^(fs_core::session::ClientState::check|<fs::SsrState as ssr::Layout>::check)", "session: ClientState::check (ranges, cwd UTF-8)"),
    ("fs", r"^ssr::", "session: SSR open/verify (header, checksum)", r"^ssr::Region<T>::seal"),
    ("fs", r"^fs_core::cache::checksum", "cache/checksum: block cache hit check (checksum of the 512-byte block)"),
    ("fs", r"^(<fs_core::cache::Cached|fs_core::cache)", "cache/checksum: block cache lookup + copy out"),
    ("fs", r"^fs_core::", "fs-core: read path (fd, inode, read_at)"),
    ("fs", r"(postcard::de|Deserialize|userlib::msg::decode)", "server: decode request (postcard)"),
    ("fs", r"(postcard::ser|Serialize|userlib::msg::encode)", "reply: encode response (postcard)"),
    ("fs", r"^userlib::", "server: IPC stub (reply_recv, payload_into copy)"),
    ("fs", r"^fs::Server::handle", "server: dispatch (Server::handle)"),
    ("fs", r"^fs::main", "server: loop (badge, label, dispatch)"),
    ("shell", r"(userlib::msg::encode|postcard::ser|Serialize)", "client: encode request (postcard)"),
    ("shell", r"(postcard::de|Deserialize|userlib::msg::decode)", "client: decode reply (postcard)"),
    ("shell", r"^fs_api::Fs::read::\{\{closure\}\}", "client: decode reply + copy the data out"),
    ("shell", r"^userlib::", "client: IPC stub (call_with, syscall, copy from the IPC buffer)"),
    ("shell", r"^fs_api::", "client: Fs::read stub"),
    ("kernel", r"^axolotl_kernel::ipc", "kernel: message copy (send_message)"),
    ("kernel", r"^axolotl_kernel::ssr", "kernel: SSR window map/unmap"),
    ("kernel", r"^(axolotl_kernel::sched|axolotl_kernel::paging)", "kernel: switch (CR3, rsp0, current)"),
    ("kernel", r"^(axolotl_kernel::fastpath|axolotl_kcore)", "kernel: IPC fastpath (caps, badge, queues)"),
    ("kernel", r"^(syscall_entry|sysret_to_user_asm|syscall_from_user|axolotl_kernel::arch)", "kernel: syscall entry/exit"),
]
PHASES = {"libos": (LOS_RULES, LOS_TASKS), "microkernel": (MK_RULES, lambda row, im: im.name)}


def load(path):
    rows = []
    for line in open(path):
        p = line.split()
        pc, rcx, rdx, rsp = (int(x, 16) for x in p[:4])
        cr3 = int(p[4], 16) if len(p) > 4 else 0
        rows.append((pc, rcx, rdx, rsp, cr3))
    return rows


def region_of(rsp, cr3):
    # libos: every stack is a MappedPages in a 1 MiB slot; microkernel: user stacks per
    # address space, kernel stacks apart.
    return (cr3 if rsp < 0xFFFF800000000000 else 0, rsp >> 20)


def main():
    personality = sys.argv[1] if len(sys.argv) > 1 else "libos"
    trace = os.path.join(OUT, "los_trace.txt" if personality == "libos" else "mk_trace.txt")
    rows = load(trace)
    image_of, images = libos_images() if personality == "libos" else mk_images(rows)
    n = len(rows)
    imgs = [image_of(pc, cr3) for pc, _, _, _, cr3 in rows]
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
    for k, (pc, rcx, rdx, rsp, cr3) in enumerate(rows):
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

    # --- exclusive -----------------------------------------------------------------------------
    def table(title, counter, top=25, total=n):
        print(f"\n## {title}\n")
        print(f"{'instr':>7} {'%':>5}  what")
        for key, c in counter.most_common(top):
            print(f"{c:7d} {100.0 * c / total:5.1f}  {key}")
        rest = sum(counter.values()) - sum(c for _, c in counter.most_common(top))
        if rest:
            print(f"{rest:7d} {100.0 * rest / total:5.1f}  (the other {len(counter) - top})")

    print(f"# {personality}: {n} instructions traced ({trace})")
    sample = os.path.join(OUT, ("los" if personality == "libos" else "mk") + "_sample.txt")
    if os.path.exists(sample):
        c = dict(l.split() for l in open(sample))
        if "traced_row" in c:
            print(f"span t1 - t0 = {c['pre']} (rdtsc to the call) + {c['steps']} (the call) + {c['post']} (back to rdtsc) = {c['span']}; "
                  f"less the {c['base']}-tick timing loop = {c['traced_row']}; the same boot's row: min={c['row_min']} "
                  f"median={c['row_median']} p99={c['row_p99']} (p99: the traced sample's TSC is disturbed by the stepping)")
    reps = collections.Counter()
    for k in range(n):
        im, pc = where(k)
        t = im.insn.get(pc, (None, ""))[1]
        if t.startswith("rep"):
            reps[t.split()[0] + " " + t.split()[1] if len(t.split()) > 1 else t] += 1
    print(f"rep string instruction steps (one per iteration + 1): {sum(reps.values())} {dict(reps)}")

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
            print(f"{start:6d} +{k - start:6d}  {region_seq[start]}  {first}")
            start = k

    # --- phases ------------------------------------------------------------------------------------
    rules, task_names = PHASES[personality]
    def context(k):
        """Function names from the outermost known frame to the innermost inlined one."""
        lab, path = path_of[k]
        names = []
        for c in list(path) + [k]:
            im, pc = where(c)
            ch = im.lines.get(pc) or [(im.sym(pc), "")]
            names += [f"{f}@{l}" for f, l in reversed(ch)]
        return names
    def task_of(k):
        return task_names.get(path_of[k][0], path_of[k][0]) if callable(task_names) is False else task_names(k)
    phase_of = []
    for k in range(n):
        task = task_of(k) if not callable(task_names) else task_names(rows[k], imgs[k])
        names = context(k)
        got = None
        for name in reversed(names):
            for rule in rules:
                t, rx, ph = rule[:3]
                unless = rule[3] if len(rule) > 3 else None
                if (t is None or t == task) and re.search(rx, name) and not (unless and any(re.search(unless, x) for x in names)):
                    got = ph
                    break
            if got:
                break
        phase_of.append(got or f"{task}: other")
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
            if lab == "S2" or any("Blocks::read_vouched" in where(c)[0].sym(rows[c][0]) for c in path):
                return "block fetches (fs -> ramdisk and back)"
            return LOS_TASKS.get(lab, lab)
        return imgs[k].name
    print("\n## Phases by task\n")
    gp = collections.Counter((group(k), phase_of[k]) for k in range(n))
    gt = collections.Counter(group(k) for k in range(n))
    for g, c in sorted(gt.items(), key=lambda x: -x[1]):
        print(f"{c:7d} {100.0 * c / n:5.1f}  {g}")
        for (g2, p), cc in sorted(gp.items(), key=lambda x: -x[1]):
            if g2 == g:
                print(f"{cc:13d}  {p}")

    # top functions within each phase
    print("\n## Self instructions by function within each phase (top 6)\n")
    byp = collections.defaultdict(collections.Counter)
    for k in range(n):
        byp[phase_of[k]][outer(k)] += 1
    for p, c in sorted(ph.items(), key=lambda x: -x[1]):
        print(f"{c:7d}  {p}")
        for f, cc in byp[p].most_common(6):
            print(f"{cc:13d}  {f}")

    # dump per-step attribution for phase classification
    with open(os.path.join(OUT, f"{'los' if personality == 'libos' else 'mk'}_steps.tsv"), "w") as f:
        for k in range(n):
            lab, path = path_of[k]
            im, pc = where(k)
            chain = " < ".join(f"{short(f, 50)}@{l}" for f, l in (im.lines.get(pc) or []))
            f.write("\t".join([str(k), f"{rows[k][0]:x}", lab, phase_of[k], " > ".join(outer(c) for c in path), outer(k),
                               inner(k)[0], inner(k)[1], chain]) + "\n")


if __name__ == "__main__":
    main()

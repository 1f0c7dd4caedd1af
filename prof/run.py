#!/usr/bin/env python3
"""Boot Axolotl under QEMU TCG -icount with the gdb stub, type `bench N` on the serial line,
and let the gdb batch script trace_row.py single-step one sample of a row.

    prof/run.py libos                    # los.fs_read   -> prof/out/los_fs_read_trace.txt
    prof/run.py microkernel              # mk.fs_read    -> prof/out/mk_fs_read_trace.txt
    prof/run.py microkernel mk.null_call # mk.null_call  -> prof/out/mk_null_call_trace.txt

The rows are listed in rows.py. PROF_N (default 10, at most 4000) is the N of `bench N`, PROF_SKIP
(default 3, below N) the samples of the row let run before the traced one.

Two boots: the first (only when the ELF is newer than prof/out/PERSONALITY_sites.txt) learns
where each timed loop of `bench` opens its span (gdb stops at every rdtsc call, which disturbs
the samples, so that boot is stopped when it knows); the second stops only at the traced row's
opening call, traces, detaches, and reads the rows the guest prints.

Needs `cargo os build` first (the ISO and the select-*.img written by one `cargo os run`).
The QEMU command line is the one of images/src/qemu/machine.rs (no disk, -icount), with the
serial console on a Unix socket instead of stdio and `-S -gdb tcp::PORT`.
"""
import os, re, socket, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rows

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "prof", "out")
REL = os.path.join(ROOT, "target", "os", "cargo", "x86_64-unknown-none", "release")


def select_disk(personality):
    path = os.path.join(ROOT, "target", "os", f"select-{personality}.img")
    block = f"# GRUB Environment Block\npersonality={personality}\n".encode()
    block += b"#" * (1024 - len(block))
    if not os.path.exists(path) or open(path, "rb").read() != block:
        with open(path, "wb") as f:
            f.write(block)
    return path


def boot(personality, row, mode, command, console_path):
    """One boot with gdb running trace_row.py in `mode`; returns (gdb's exit code, console text)."""
    port = int(os.environ.get("PROF_GDB_PORT", "12340"))
    sock_path = os.path.join(OUT, f"serial-{personality}.sock")
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    iso = os.path.join(ROOT, "target", "os", "axolotl.iso")
    qemu = [
        "qemu-system-x86_64",
        "-drive", f"file={iso},if=none,id=cd0,media=cdrom,readonly=on,format=raw",
        "-device", "ide-cd,drive=cd0,bus=ide.1,unit=0,bootindex=0",
        "-m", "256M", "-no-reboot", "-accel", "tcg", "-cpu", "max",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-display", "none", "-monitor", "none",
        "-chardev", f"socket,id=ser,path={sock_path},server=on,wait=on",
        "-serial", "chardev:ser",
        "-S", "-gdb", f"tcp::{port}",
        "-icount", "shift=0,align=off,sleep=off", "-rtc", "clock=vm",
        "-drive", f"file={select_disk(personality)},if=none,id=select,format=raw,snapshot=on",
        "-device", "ide-hd,drive=select,bus=ide.0,unit=0,bootindex=1",
    ]
    probe = socket.socket()
    if probe.connect_ex(("127.0.0.1", port)) == 0:
        sys.exit(f"[prof] port {port} is taken (another QEMU's gdb stub?): set PROF_GDB_PORT")
    probe.close()
    q = subprocess.Popen(qemu)
    for _ in range(100):
        if os.path.exists(sock_path):
            break
        time.sleep(0.05)
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    console = open(console_path, "wb")

    script = os.path.join(ROOT, "prof", "trace_row.py")
    env = dict(os.environ, PROF_GDB_PORT=str(port), PROF_REL=REL, PROF_OUT=OUT, PROF_DIR=os.path.join(ROOT, "prof"),
               PROF_ROW=row, PROF_MODE=mode)
    gdb = subprocess.Popen(["gdb", "-nx", "-batch", "-x", script], env=env)

    def typist():
        buf = b""
        typed = False
        while True:
            try:
                d = s.recv(4096)
            except OSError:
                return
            if not d:
                return
            console.write(d)
            console.flush()
            buf += d
            if not typed and b"axolotl> " in buf:
                typed = True
                time.sleep(0.2)
                s.sendall(command.encode() + b"\r")

    t = threading.Thread(target=typist, daemon=True)
    t.start()
    # The shell refusing the command (or the bench failing) leaves gdb waiting for a breakpoint
    # that never comes: stop it then.
    while gdb.poll() is None:
        text = open(console.name, "rb").read().decode(errors="replace")
        if command in text and "error" in text.split(command)[-1]:
            print(f"[prof] the guest said: {text.split(command)[-1].strip()[:200]}")
            gdb.terminate()
            break
        time.sleep(0.5)
    rc = gdb.wait()
    # gdb detached (trace): the guest runs on and prints its rows; wait for the last one.
    deadline = time.time() + 600
    text = ""
    while mode == "trace" and time.time() < deadline and q.poll() is None:
        text = open(console.name, "rb").read().decode(errors="replace")
        if "before the kernel" in text or "error" in text.split(command)[-1]:
            break
        time.sleep(0.5)
    q.terminate()
    try:
        q.wait(timeout=10)
    except subprocess.TimeoutExpired:
        q.kill()
    s.close()
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    print(f"[prof] {mode} boot: gdb exited {rc}; console in {console.name}")
    return rc, open(console.name, "rb").read().decode(errors="replace")


def main():
    personality = sys.argv[1] if len(sys.argv) > 1 else "libos"
    p = rows.PERSONALITIES[personality]
    row = sys.argv[2] if len(sys.argv) > 2 else f"{p['short']}.fs_read"
    if rows.personality_of(row) != personality:
        sys.exit(f"[prof] {row} is not a {personality} row")
    tag = rows.tag(row)
    n = int(os.environ.get("PROF_N", "10"))
    if not 10 <= n <= 4000 or int(os.environ.get("PROF_SKIP", "3")) >= n:
        sys.exit("[prof] PROF_N must be 10..4000 (the shell's `bench N`), PROF_SKIP below it")
    command = f"bench {n}"
    os.makedirs(OUT, exist_ok=True)
    for stale in ("trace", "sample", "cr3"):
        if os.path.exists(os.path.join(OUT, f"{tag}_{stale}.txt")):
            os.unlink(os.path.join(OUT, f"{tag}_{stale}.txt"))

    sites = os.path.join(OUT, f"{personality}_sites.txt")
    elf = os.path.join(REL, p["elf"])
    if not os.path.exists(sites) or os.path.getmtime(sites) < os.path.getmtime(elf):
        if os.path.exists(sites):
            os.unlink(sites)
        boot(personality, row, "learn", command, os.path.join(OUT, f"console-{personality}-learn.txt"))
        if not os.path.exists(sites) or len(open(sites).readlines()) != len(p["rows"]):
            sys.exit("[prof] the timed loops of bench were not all found: see the log")
    print("[prof] timed loops: " + "; ".join(" at ".join(l.split()[:2]) for l in open(sites)))

    rc, text = boot(personality, row, "trace", command, os.path.join(OUT, f"console-{tag}.txt"))
    base = re.search(r"less the (\d+)-tick timing loop", text)
    printed = re.search(rf"bench: {re.escape(row)} n=\d+ min=(\d+) median=(\d+) p99=(\d+)", text)
    sample = os.path.join(OUT, f"{tag}_sample.txt")
    counts = dict(l.split(None, 1) for l in open(sample)) if rc == 0 and os.path.exists(sample) else {}
    loop = row.endswith(".timing_loop")  # printed as no row: the base of every row
    if base and (printed or loop) and "span" in counts:
        span, b = int(counts["span"]), int(base.group(1))
        m = [b, b, b] if loop else [int(x) for x in printed.groups()]
        traced = span if loop else span - b
        print(f"[prof] {row}: row min={m[0]} median={m[1]} p99={m[2]}; traced span {span}"
              + ("" if loop else f" - timing loop {b} = {traced}")
              + ("" if traced == m[0] else "  (NOT the row's min)"))
        with open(sample, "a") as f:
            f.write(f"base {b}\nrow_min {m[0]}\nrow_median {m[1]}\nrow_p99 {m[2]}\ntraced_row {traced}\n")
    else:
        print("[prof] the row was not printed, or nothing was traced: see the console and the gdb log")
        rc = rc or 1
    sys.exit(rc)


if __name__ == "__main__":
    main()

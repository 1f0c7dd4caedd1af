#!/usr/bin/env python3
"""Boot Axolotl under QEMU TCG -icount with the gdb stub, type a shell command on the serial
line, and let a gdb batch script (trace_*.py) single-step the measured operation.

    prof/run.py libos        # los.fs_read  -> prof/out/los_trace.txt
    prof/run.py microkernel  # mk.fs_read   -> prof/out/mk_trace.txt

Needs `cargo os build` first (the ISO and the select-*.img written by one `cargo os run`).
The QEMU command line is the one of images/src/qemu/machine.rs (no disk, -icount), with the
serial console on a Unix socket instead of stdio and `-S -gdb tcp::PORT`.
"""
import os, socket, subprocess, sys, threading, time

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


def main():
    personality = sys.argv[1] if len(sys.argv) > 1 else "libos"
    command = sys.argv[2] if len(sys.argv) > 2 else "bench 10"
    port = int(os.environ.get("PROF_GDB_PORT", "12340"))
    os.makedirs(OUT, exist_ok=True)
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
    console = open(os.path.join(OUT, f"console-{personality}.txt"), "wb")

    script = os.path.join(ROOT, "prof", "trace_los.py" if personality == "libos" else "trace_mk.py")
    env = dict(os.environ, PROF_GDB_PORT=str(port), PROF_REL=REL, PROF_OUT=OUT, PROF_DIR=os.path.join(ROOT, "prof"))
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
    rc = gdb.wait()
    # gdb detached: the guest runs on and prints its rows; wait for the last one.
    deadline = time.time() + 600
    text = ""
    while time.time() < deadline and q.poll() is None:
        text = open(console.name, "rb").read().decode(errors="replace")
        if "before the kernel" in text or "error" in text.split("bench 10")[-1]:
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
    print(f"[prof] gdb exited {rc}; console in {console.name}")
    import re
    short = "los" if personality == "libos" else "mk"
    base = re.search(r"less the (\d+)-tick timing loop", text)
    row = re.search(rf"bench: {short}\.fs_read n=\d+ min=(\d+) median=(\d+) p99=(\d+)", text)
    counts = dict(l.split() for l in open(os.path.join(OUT, f"{short}_sample.txt")))
    if base and row:
        span, b = int(counts["span"]), int(base.group(1))
        print(f"[prof] {short}.fs_read: row min={row.group(1)} median={row.group(2)} p99={row.group(3)}; "
              f"traced: call {counts['steps']} + span around it {int(counts['pre']) + int(counts['post'])} "
              f"- timing loop {b} = {span - b}")
        with open(os.path.join(OUT, f"{short}_sample.txt"), "a") as f:
            f.write(f"base {b}\nrow_min {row.group(1)}\nrow_median {row.group(2)}\nrow_p99 {row.group(3)}\ntraced_row {span - b}\n")
    else:
        print("[prof] the row was not printed: see the console")
    sys.exit(rc)


if __name__ == "__main__":
    main()

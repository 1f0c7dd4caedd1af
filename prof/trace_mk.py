"""gdb batch script (run by prof/run.py microkernel): trace one `mk.fs_read` sample.

The shell's `bench` (servers/shell/src/bench.rs, `fs_read`) times `fs.read(fd, &mut buf)`
between two `userlib::sys::rdtsc()` (measure_span). This stops at the first rdtsc of the SKIP+1-th
timed read of the RAM-disk row (the first call of `fs_api::Fs::read` right after an rdtsc in the
closure; the `bench disk` row's comes later), records `fs_api::Fs::read` instruction by
instruction through the kernel and the fs server, with CR3 (prof/out/mk_trace.txt), and counts
the span around it. The shell's CR3 goes to prof/out/mk_cr3.txt; analyse.py matches the other
CR3s to ELFs. Breakpoints are on virtual addresses: the timed call site is told apart by the
return address on the stack (shell and fs are both linked at 0x40000000).
"""
import gdb, os, sys

sys.path.insert(0, os.environ["PROF_DIR"])
import stepper

SKIP = int(os.environ.get("PROF_SKIP", "3"))
shell = os.path.join(stepper.REL, "shell")
stepper.attach(shell)
pre, steps, post, cr3 = stepper.trace_timed(shell, "shell::bench::fs_read::{{closure}}::{{closure}}",
                                            "userlib::sys::rdtsc", "fs_api::Fs::read", SKIP,
                                            os.path.join(stepper.OUT, "mk_trace.txt"), with_cr3=True)
with open(os.path.join(stepper.OUT, "mk_cr3.txt"), "w") as f:
    f.write(f"shell {cr3 & ~0xFFF:x}\n")
stepper.finish("mk", pre, steps, post)

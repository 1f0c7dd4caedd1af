"""gdb batch script (run by prof/run.py libos): trace one `los.fs_read` sample.

`time_reads` in libos/cells/shell/src/bench.rs times `fs.read(fd, &mut buf)` between two
`libos_kernel::sched::rdtsc()`. This stops at the first rdtsc of the SKIP+1-th timed read (the
row's loop without `on_disk`, the second in the code), records `cell_fs::Fs::read` instruction by instruction
(prof/out/los_trace.txt) and counts the instructions of the span around it.
"""
import gdb, os, sys

sys.path.insert(0, os.environ["PROF_DIR"])
import stepper

SKIP = int(os.environ.get("PROF_SKIP", "3"))
elf = os.path.join(stepper.REL, "axolotl-libos")
stepper.attach(elf)
pre, steps, post, _ = stepper.trace_timed(elf, "cell_shell::bench::time_reads", "libos_kernel::sched::rdtsc",
                                          "cell_fs::Fs::read", SKIP, os.path.join(stepper.OUT, "los_trace.txt"),
                                          which=1)  # the second loop: the row's (not on_disk)
stepper.finish("los", pre, steps, post)

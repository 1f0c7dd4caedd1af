//! The file commands over the shell's file system session: `ls [PATH]`, `cat PATH`,
//! `write PATH TEXT`, `append PATH TEXT`, `mkdir PATH`, `rm PATH`, `cd PATH`, `pwd`, `fsck`,
//! which has the file server check its disk, and `format [--force]`, which erases it.

use crate::personality::{Console, Files, Shell, Status};
// Open, read, write, mkdir: the operations the campaign's workloads use too.
use campaign::Files as _;
use fs_core::{mode, Report, KIND_DIR, PATH_MAX};

/// Longest text `write` and `append` take, with its newline: the rest of a whole line.
const TEXT_MAX: usize = crate::LINE_MAX + 1;

/// Run file command `cmd` (one of the eight above) with the rest of the line `rest`: a path,
/// then for `write` and `append` the text. Failures print `error: CMD: PATH: WHY`.
pub(crate) fn run<S: Shell>(shell: &mut S, cmd: &str, rest: &str) -> Status {
    let (path, text) = match rest.split_once(char::is_whitespace) {
        Some((p, t)) => (p, t.trim_start()),
        None => (rest, ""),
    };
    // Every argument is accounted for: a path (none for pwd, optional for ls), and for write and
    // append a text, which is required; anything more is a usage error, not silently ignored.
    let takes_text = cmd == "write" || cmd == "append";
    let fits = match cmd {
        "pwd" => rest.is_empty(),
        "ls" => text.is_empty(),
        _ if takes_text => !path.is_empty() && !text.is_empty(),
        _ => !path.is_empty() && text.is_empty(),
    };
    if !fits {
        let usage = match cmd {
            "pwd" => "",
            "ls" => " [PATH]",
            _ if takes_text => " PATH TEXT",
            _ => " PATH",
        };
        return shell.console().fail(format_args!("usage: {}{}", cmd, usage));
    }
    // `ls` alone lists the current directory, and says so if that fails.
    let path = if cmd == "ls" && path.is_empty() { "." } else { path };
    if text.len() >= TEXT_MAX {
        return shell.console().fail(format_args!(
            "{}: {}: text longer than {} bytes",
            cmd,
            path,
            TEXT_MAX - 1
        ));
    }
    let (con, fs) = shell.files();
    let fs = match fs {
        Ok(fs) => fs,
        Err(why) => return con.fail(format_args!("{}", why)),
    };
    let result = match cmd {
        "ls" => ls(con, fs, path),
        "cat" => cat(con, fs, path),
        "write" => put(fs, path, text, false),
        "append" => put(fs, path, text, true),
        "mkdir" => fs.mkdir(path),
        "rm" => fs.remove(path),
        "cd" => fs.chdir(path),
        _ => pwd(con, fs),
    };
    match result {
        Ok(()) => 0,
        Err(e) => con.fail(format_args!("{}: {}: {}", cmd, path, e)),
    }
}

/// One line per entry: the size right-aligned in 8 columns (`-` for a directory), two spaces,
/// the name (with a `/` after a directory's).
fn ls<F: Files>(con: &impl Console, fs: &mut F, path: &str) -> Result<(), F::Error> {
    let (kind, _) = fs.stat(path)?;
    if kind != KIND_DIR {
        return Err(F::NOT_A_DIRECTORY);
    }
    let mut i = 0;
    while let Some(e) = fs.entry(path, i)? {
        if e.kind == KIND_DIR {
            con.println(format_args!("{:>8}  {}/", "-", e.name()));
        } else {
            con.println(format_args!("{:>8}  {}", e.size, e.name()));
        }
        i += 1;
    }
    Ok(())
}

/// Print the file as it is read, a chunk at a time; a chunk that is not UTF-8 is shown as
/// `<N bytes of binary data>`. The output ends with a newline even if the file does not.
fn cat<F: Files>(con: &impl Console, fs: &mut F, path: &str) -> Result<(), F::Error> {
    let fd = fs.open(path, mode::READ)?;
    // At least either client's largest read (2048 bytes over IPC caps it at 1024 here, as the
    // microkernel shell always read; the libos cell reads 256), so the chunks, and with them
    // where binary data is reported, stay what each personality printed before.
    let mut buf = [0u8; 1024];
    let mut last = b'\n';
    let result = loop {
        match fs.read(fd, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                last = buf[n - 1];
                match core::str::from_utf8(&buf[..n]) {
                    Ok(text) => con.print(format_args!("{}", text)),
                    Err(_) => con.print(format_args!("<{} bytes of binary data>", n)),
                }
            }
            Err(e) => break Err(e),
        }
    };
    if last != b'\n' {
        con.print(format_args!("\n"));
    }
    let _ = fs.close(fd);
    result
}

/// Make `text` and a newline the contents of `path` (with `append`, add them), creating the
/// file and the directories it needs, so that a failed command leaves nothing behind.
///
/// The file system does the file in one request, all or nothing, when the text fits one
/// (always over the microkernel's IPC; the libos cell's requests carry less, see
/// [`Files::PUT_MAX`]): a longer text goes in pieces, the first making or replacing the file
/// and the rest appended, and if a later piece fails a file this command made is removed
/// again (one that was there keeps what reached it). The directories come first, a request
/// each, and are removed again if the file then cannot be written.
fn put<F: Files>(fs: &mut F, path: &str, text: &str, append: bool) -> Result<(), F::Error> {
    let mut buf = [0u8; TEXT_MAX];
    buf[..text.len()].copy_from_slice(text.as_bytes());
    buf[text.len()] = b'\n';
    let data = &buf[..text.len() + 1];
    let (first, rest) = data.split_at(data.len().min(F::PUT_MAX));
    // Only in pieces is there a file to undo: did this command make it?
    let made_file = !rest.is_empty() && fs.stat(path).is_err();
    let mut made_dir = None;
    let mut result = fs.put(path, first, append);
    if matches!(&result, Err(e) if F::not_found(e)) {
        result = make_parents(fs, path, &mut made_dir).and_then(|()| fs.put(path, first, append));
    }
    for piece in rest.chunks(F::PUT_MAX) {
        if result.is_err() {
            break;
        }
        result = fs.put(path, piece, true);
    }
    if result.is_err() {
        if made_file {
            let _ = fs.remove(path);
        }
        for (i, _) in path.rmatch_indices('/').filter(|&(i, _)| made_dir.is_some_and(|first| i >= first)) {
            let _ = fs.remove(&path[..i]);
        }
    }
    result
}

/// Make every directory on `path` before its last `/` that is not there yet. `made` learns the
/// first one this made: once one had to be made, so did each below it.
fn make_parents<F: Files>(fs: &mut F, path: &str, made: &mut Option<usize>) -> Result<(), F::Error> {
    for (i, _) in path.match_indices('/').filter(|&(i, _)| i > 0) {
        match fs.mkdir(&path[..i]) {
            Ok(()) => {
                made.get_or_insert(i);
            }
            Err(e) if F::exists(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `fsck`: the file server checks its disk. Clean: one line with what is in use. Otherwise a
/// line per problem listed, a line for any not listed, and the count as the error.
pub(crate) fn fsck<S: Shell>(shell: &mut S, rest: &str) -> Status {
    if !rest.is_empty() {
        return shell.console().fail(format_args!("usage: fsck"));
    }
    let (con, fs) = shell.files();
    let report = match fs.map(|fs| fs.fsck()) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return con.fail(format_args!("fsck: {}", e)),
        Err(why) => return con.fail(format_args!("{}", why)),
    };
    let usage = Usage(&report);
    if report.is_clean() {
        con.println(format_args!("fsck: clean: {}", usage));
        return 0;
    }
    for p in report.problems() {
        con.println(format_args!("fsck: {}", p));
    }
    let unlisted = report.found as usize - report.problems().count();
    if unlisted > 0 {
        con.println(format_args!("fsck: and {} more", unlisted));
    }
    let plural = if report.found == 1 { "" } else { "s" };
    con.fail(format_args!("fsck: {} problem{}: {}", report.found, plural, usage))
}

/// `format [--force]`: the file server writes an empty file system over its disk. It does so
/// for a disk it refused (one that holds something else) and for one whose file system is
/// empty; one that holds files or directories takes `--force`, and without it the command says
/// how many there are.
pub(crate) fn format<S: Shell>(shell: &mut S, rest: &str) -> Status {
    let force = match rest {
        "" => false,
        "--force" => true,
        _ => return shell.console().fail(format_args!("usage: format [--force]")),
    };
    let (con, fs) = shell.files();
    let fs = match fs {
        Ok(fs) => fs,
        Err(why) => return con.fail(format_args!("{}", why)),
    };
    match fs.format(force) {
        Ok(()) => {
            con.println(format_args!("format: the disk now holds an empty file system"));
            0
        }
        Err(e) if S::Files::holds_files(&e) => match fs.fsck() {
            // The root is not one of the files.
            Ok(r) => {
                let n = r.inodes.saturating_sub(1);
                let (files, them) =
                    if n == 1 { ("file or directory", "it") } else { ("files and directories", "them") };
                con.fail(format_args!(
                    "format: the disk holds an Axolotl file system with {} {}; `format --force` erases {}",
                    n, files, them
                ))
            }
            Err(_) => con.fail(format_args!("format: {}", e)),
        },
        Err(e) => con.fail(format_args!("format: {}", e)),
    }
}

/// What a report says is in use: `N of M inodes, B of T blocks in use`.
struct Usage<'r>(&'r Report);

impl core::fmt::Display for Usage<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let r = self.0;
        write!(
            f,
            "{} of {} inodes, {} of {} blocks in use",
            r.inodes, r.inodes_total, r.blocks, r.blocks_total
        )
    }
}

fn pwd<F: Files>(con: &impl Console, fs: &mut F) -> Result<(), F::Error> {
    let mut buf = [0u8; PATH_MAX];
    fs.cwd(&mut buf).map(|p| con.println(format_args!("{}", p)))
}

//! The file commands over the shell's file system session: `ls [PATH]`, `cat PATH`,
//! `write PATH TEXT`, `append PATH TEXT`, `mkdir PATH`, `rm PATH`, `cd PATH` and `pwd`.

use crate::personality::{Console, Files, Shell, Status};
// Open, read, write, mkdir: the operations the campaign's workloads use too.
use campaign::Files as _;
use fs_core::{mode, KIND_DIR, PATH_MAX};

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
    let (con, fs) = shell.files();
    let fs = match fs {
        Ok(fs) => fs,
        Err(why) => return con.fail(format_args!("{}", why)),
    };
    let result = match cmd {
        "ls" => ls(con, fs, if path.is_empty() { "." } else { path }),
        "cat" => cat(con, fs, path),
        "write" => put(fs, path, text, mode::WRITE | mode::CREATE | mode::TRUNCATE),
        "append" => put(fs, path, text, mode::WRITE | mode::APPEND | mode::CREATE),
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

/// Write `text` and a newline to `path` with open mode `m`, creating missing directories.
fn put<F: Files>(fs: &mut F, path: &str, text: &str, m: u8) -> Result<(), F::Error> {
    let fd = match fs.open(path, m) {
        Err(e) if F::not_found(&e) => {
            make_parents(fs, path)?;
            fs.open(path, m)?
        }
        other => other?,
    };
    let mut result = fs.write(fd, text.as_bytes());
    if result.is_ok() {
        result = fs.write(fd, b"\n");
    }
    let _ = fs.close(fd);
    result
}

/// Make every directory on `path` before its last `/` that is not there yet.
fn make_parents<F: Files>(fs: &mut F, path: &str) -> Result<(), F::Error> {
    for (i, b) in path.bytes().enumerate() {
        if b == b'/' && i > 0 {
            match fs.mkdir(&path[..i]) {
                Err(e) if !F::exists(&e) => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

fn pwd<F: Files>(con: &impl Console, fs: &mut F) -> Result<(), F::Error> {
    let mut buf = [0u8; PATH_MAX];
    fs.cwd(&mut buf).map(|p| con.println(format_args!("{}", p)))
}

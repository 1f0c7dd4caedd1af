//! Mounting and formatting: what a device already holds decides what the file system may do
//! with it, and a device that holds something else is never written unless a person says so.
//!
//! ```text
//!  what the device holds                               mount                 attach (restart)
//!  our superblock: magic, version, this size           journal redone,       journal redone,
//!                                                      mounted               mounted
//!  zeros in every block the file system would use      formatted, mounted    error (Disk)
//!  our magic, another version or size                  refused: OtherFormat  refused
//!  anything else                                       refused: Foreign      refused
//! ```
//! A refused device is left exactly as it was: not one block is written. It stays refused
//! until [`Volume::format`]; a file server holds it that way and answers every other request
//! with the reason. Formatting a mounted file system that holds files takes `force`.

use crate::disk::{Disk, Load};
use crate::layout::*;
use crate::{BlockDevice, FsError, Result};

/// A device as a file server holds it: mounted, or refused and left alone until formatted.
pub struct Volume<D: BlockDevice> {
    disk: Disk<D>,
    /// Blocks on the device; the file system spans at most [`MAX_BLOCKS`] of them.
    device_blocks: u32,
    /// Why the device is not mounted, if it is not.
    refused: Option<FsError>,
    /// The operation the journal held and mounting redid (its sequence number), and what
    /// `fsck` found right after.
    redone: Option<(u64, crate::Report)>,
}

/// What a device holds, as mounting sees it.
enum Holds {
    Ours,
    Blank,
    /// Something it must not touch, and which error says so.
    Other(FsError),
}

/// How many times [`Volume::attach`] looks before it believes the device is not ours: a
/// restarted server must not take one bent read of the superblock for a foreign disk.
const ATTACH_LOOKS: u32 = 3;

impl<D: BlockDevice> Volume<D> {
    /// Mount the file system on `dev`, formatting it first if the device is blank; a device
    /// that holds anything else is refused (see the module comment) and nothing is written
    /// to it. Also says whether it was formatted. `Err` only if the device failed (or is too
    /// small to hold the format).
    pub fn mount(dev: D) -> Result<(Volume<D>, bool)> {
        let (disk, device_blocks) = Disk::open(dev)?;
        let mut v = Volume { disk, device_blocks, refused: None, redone: None };
        match v.disk.holds()? {
            Holds::Ours => {
                v.recover()?;
                Ok((v, false))
            }
            Holds::Blank => {
                v.disk.format()?;
                Ok((v, true))
            }
            Holds::Other(why) => {
                v.refused = Some(why);
                Ok((v, false))
            }
        }
    }

    /// Like [`mount`](Self::mount) but never formats: what a restarted file server uses. A
    /// blank device is an error here, not a disk to format (the first incarnation formatted
    /// it, so what reads as blank now is a device that answers wrongly); one that holds
    /// something else is refused, as the first incarnation refused it.
    pub fn attach(dev: D) -> Result<Volume<D>> {
        let (disk, device_blocks) = Disk::open(dev)?;
        let mut v = Volume { disk, device_blocks, refused: None, redone: None };
        for _ in 0..ATTACH_LOOKS {
            match v.disk.holds()? {
                Holds::Ours => {
                    v.recover()?;
                    return Ok(v);
                }
                Holds::Blank => return Err(FsError::Disk),
                Holds::Other(why) => v.refused = Some(why),
            }
        }
        Ok(v)
    }

    /// The mounted file system, or why there is none.
    pub fn disk(&self) -> Result<&Disk<D>> {
        match self.refused {
            None => Ok(&self.disk),
            Some(why) => Err(why),
        }
    }

    /// Redo the journal's operation if it was cut short; then check the whole file system.
    fn recover(&mut self) -> Result<()> {
        if let Some(seq) = self.disk.replay()? {
            self.redone = Some((seq, crate::fsck(&self.disk)?));
        }
        Ok(())
    }

    /// The operation mounting redid from the journal (its sequence number), if it had to: the
    /// last one before the machine stopped, cut short after it was durable, made whole again;
    /// and what `fsck` found right after (clean, unless something else is wrong).
    pub fn redone(&self) -> Option<&(u64, crate::Report)> {
        self.redone.as_ref()
    }

    /// Why the device was refused, if it was.
    pub fn refused(&self) -> Option<FsError> {
        self.refused
    }

    /// Blocks on the device.
    pub fn device_blocks(&self) -> u32 {
        self.device_blocks
    }

    /// Blocks the file system spans (or would span): the device's, at most [`MAX_BLOCKS`].
    pub fn blocks(&self) -> u32 {
        self.disk.blocks()
    }

    /// Write an empty file system over whatever the device holds, and mount it. A refused
    /// device is formatted when asked; a mounted file system with files in it only with
    /// `force` (`HoldsFiles` otherwise, and nothing is written). Every session's open files
    /// go stale: reading or writing one gives `BadFd` (see [`Disk::format`]).
    pub fn format(&mut self, force: bool) -> Result<()> {
        if self.refused.is_none() && !force && self.disk.files()? > 0 {
            return Err(FsError::HoldsFiles);
        }
        self.disk.format()?;
        self.refused = None;
        Ok(())
    }

    /// The mounted file system, or why there is none.
    fn into_disk(self) -> Result<Disk<D>> {
        match self.refused {
            None => Ok(self.disk),
            Some(why) => Err(why),
        }
    }
}

impl<D: BlockDevice> Disk<D> {
    /// Mount the file system on `dev`, formatting a blank device (see [`Volume::mount`]); a
    /// device that holds anything else is an error (`Foreign`, `OtherFormat`) and is not
    /// written. Also says whether it was formatted.
    pub fn mount(dev: D) -> Result<(Disk<D>, bool)> {
        let (v, formatted) = Volume::mount(dev)?;
        Ok((v.into_disk()?, formatted))
    }

    /// Attach to a device that already holds this file system; never formats (see
    /// [`Volume::attach`]).
    pub fn attach(dev: D) -> Result<Disk<D>> {
        Volume::attach(dev)?.into_disk()
    }

    /// What the device holds. Reads the superblock, and only if it is not ours every block
    /// the file system would use, up to the first that is not zero.
    fn holds(&self) -> Result<Holds> {
        let mut block = [0u8; BLOCK_SIZE];
        self.load(0, &mut block)?;
        let sb: Super = bytemuck::pod_read_unaligned(&block[..16]);
        if sb.magic == SUPER_MAGIC {
            let ours = sb.version == VERSION && sb.blocks == self.blocks();
            return Ok(if ours { Holds::Ours } else { Holds::Other(FsError::OtherFormat) });
        }
        for b in 0..self.blocks() {
            self.load(b, &mut block)?;
            if block.iter().any(|&byte| byte != 0) {
                return Ok(Holds::Other(FsError::Foreign));
            }
        }
        Ok(Holds::Blank)
    }

    /// Files and directories on the disk, the root not counted.
    fn files(&self) -> Result<u32> {
        let mut block = [0u8; BLOCK_SIZE];
        let mut n = 0;
        for t in 0..INODE_BLOCKS {
            self.load(INODE_START + t, &mut block)?;
            let first = (t as usize * INODES_PER_BLOCK) as u16;
            n += (first..first + INODES_PER_BLOCK as u16)
                .filter(|&i| i > ROOT && Inode::from_block(&block, i).kind != 0)
                .count() as u32;
        }
        Ok(n)
    }

    /// Write an empty file system: an empty root, every other inode free, no data block in
    /// use. Whatever the inode table held, each inode's generation moves on from it, so a
    /// descriptor opened before (recorded in a session that outlives this) never matches a
    /// file made after. Everything is read before anything is written; the superblock is
    /// cleared first and written last, so a format cut short leaves a device that is refused
    /// (or blank), never one that mounts half old and half new.
    fn format(&self) -> Result<()> {
        let mut generations = [0u16; INODES as usize];
        let mut block = [0u8; BLOCK_SIZE];
        for t in 0..INODE_BLOCKS {
            self.load(INODE_START + t, &mut block)?;
            for k in 0..INODES_PER_BLOCK {
                let i = t as usize * INODES_PER_BLOCK + k;
                generations[i] = Inode::from_block(&block, i as u16).generation;
            }
        }
        self.write(0, &[0u8; BLOCK_SIZE])?;
        for t in 0..INODE_BLOCKS {
            let mut table = [0u8; BLOCK_SIZE];
            for k in 0..INODES_PER_BLOCK {
                let i = t as usize * INODES_PER_BLOCK + k;
                if i == 0 {
                    continue; // never used: stays all zeros
                }
                let kind = if i == ROOT as usize { KIND_DIR } else { 0 };
                let inode = Inode { kind, generation: generations[i].wrapping_add(1), ..Default::default() };
                table[k * 64..(k + 1) * 64].copy_from_slice(bytemuck::bytes_of(&inode));
            }
            self.write(INODE_START + t, &table)?;
        }
        let mut bitmap = [0u8; BLOCK_SIZE];
        for b in 0..DATA_START {
            set_bit(&mut bitmap, b, true);
        }
        self.write(BITMAP_BLOCK, &bitmap)?;
        self.clear_journal()?;
        // All of it on the medium before the superblock says it is a file system.
        if !self.device_flush() {
            return Err(FsError::Disk);
        }
        let sb = Super { magic: SUPER_MAGIC, version: VERSION, blocks: self.blocks(), inodes: INODES as u32 };
        let mut first = [0u8; BLOCK_SIZE];
        first[..16].copy_from_slice(bytemuck::bytes_of(&sb));
        self.write(0, &first)?;
        if !self.device_flush() {
            return Err(FsError::Disk);
        }
        self.seq_after(0);
        Ok(())
    }
}

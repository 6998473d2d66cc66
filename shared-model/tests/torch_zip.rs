//! `torch.save` files as PyTorch writes them, beyond the one fixture: archive names of every
//! length (a 21-character one was refused as "Invalid Central Directory header") and open_clip's
//! training-checkpoint nesting (`{"state_dict": ..., "epoch": N}`). The files are rewritten from
//! `tests/fixtures/vit_quickgelu.pt` (written by torch 2.15) with PyTorch's own zip layout, so no
//! PyTorch is needed to run this.

use std::path::{Path, PathBuf};

use clip_model::import::{keys, pytorch_ignored_objects, read_pytorch_file, RawTensor};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The records (name, data) of a zip without zip64 offsets, from its central directory.
fn records(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let end = zip.windows(4).rposition(|w| w == b"PK\x05\x06").expect("an end record");
    let (count, mut at) = (u16_at(zip, end + 10), u32_at(zip, end + 16));
    let mut out = Vec::new();
    for _ in 0..count {
        assert_eq!(&zip[at..at + 4], b"PK\x01\x02");
        let (size, name_len, extra, comment, offset) =
            (u32_at(zip, at + 20), u16_at(zip, at + 28), u16_at(zip, at + 30), u16_at(zip, at + 32), u32_at(zip, at + 42));
        let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
        let data = offset + 30 + u16_at(zip, offset + 26) + u16_at(zip, offset + 28);
        out.push((name, zip[data..data + size].to_vec()));
        at += 46 + name_len + extra + comment;
    }
    out
}

/// A zip laid out as PyTorch's `PyTorchStreamWriter` (miniz) writes one: each record's data
/// aligned to 64 bytes by an `FB` extra field of `Z` padding in its local header, sizes and CRC
/// in a data descriptor after the data (flags 0x0808), then the central directory, a zip64 end
/// record, its locator and the end record.
fn torch_zip(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in records {
        let offset = out.len();
        let padding = (64 - (offset + 30 + name.len() + 4) % 64) % 64;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let (crc, size) = (crc.sum(), data.len() as u32);
        out.extend(0x0403_4b50u32.to_le_bytes());
        for v in [0u16, 0x0808, 0, 0, 0] {
            out.extend(v.to_le_bytes());
        }
        out.extend([0u8; 12]);
        out.extend((name.len() as u16).to_le_bytes());
        out.extend((4 + padding as u16).to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(b"FB");
        out.extend((padding as u16).to_le_bytes());
        out.extend(std::iter::repeat_n(b'Z', padding));
        assert_eq!(out.len() % 64, 0);
        out.extend(data);
        for v in [0x0807_4b50u32, crc, size, size] {
            out.extend(v.to_le_bytes());
        }
        central.extend(0x0201_4b50u32.to_le_bytes());
        for v in [0u16, 0, 0x0808, 0, 0, 0] {
            central.extend(v.to_le_bytes());
        }
        for v in [crc, size, size] {
            central.extend(v.to_le_bytes());
        }
        for v in [name.len() as u16, 0, 0, 0, 0] {
            central.extend(v.to_le_bytes());
        }
        central.extend(0u32.to_le_bytes());
        central.extend((offset as u32).to_le_bytes());
        central.extend(name.as_bytes());
    }
    let (cd_offset, cd_size, n) = (out.len() as u64, central.len() as u64, records.len() as u64);
    out.extend(central);
    let zip64_end = out.len() as u64;
    out.extend(0x0606_4b50u32.to_le_bytes());
    out.extend(44u64.to_le_bytes());
    out.extend(0x031eu16.to_le_bytes());
    out.extend(0x002du16.to_le_bytes());
    out.extend([0u8; 8]);
    for v in [n, n, cd_size, cd_offset] {
        out.extend(v.to_le_bytes());
    }
    out.extend(0x0706_4b50u32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(zip64_end.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((n as u16).to_le_bytes());
    out.extend((n as u16).to_le_bytes());
    out.extend((cd_size as u32).to_le_bytes());
    out.extend((cd_offset as u32).to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// The fixture's records under another archive name, with `pickle` applied to `data.pkl`.
fn rewritten(archive: &str, pickle: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let original = std::fs::read(fixture("vit_quickgelu.pt")).unwrap();
    let records: Vec<(String, Vec<u8>)> = records(&original)
        .into_iter()
        .map(|(name, data)| {
            let (_, rest) = name.split_once('/').unwrap();
            let data = if rest == "data.pkl" { pickle(&data) } else { data };
            (format!("{archive}/{rest}"), data)
        })
        .collect();
    torch_zip(&records)
}

fn read(dir: &Path, file: &str, bytes: &[u8]) -> Vec<RawTensor> {
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    read_pytorch_file(&path).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn same(a: Vec<RawTensor>, b: Vec<RawTensor>) {
    let (a, b) = (keys::to_module_paths(a).unwrap(), keys::to_module_paths(b).unwrap());
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
        assert!(a.data == b.data, "{}", a.name);
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-burn-torch-zip-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn archive_names_of_every_length_load() {
    let dir = scratch("names");
    let reference = read_pytorch_file(&fixture("vit_quickgelu.pt")).unwrap();
    // The writer reproduces the fixture byte for byte under its own name.
    let original = std::fs::read(fixture("vit_quickgelu.pt")).unwrap();
    assert!(rewritten("vit_quickgelu", |p| p.to_vec()) == original, "the writer does not lay out the zip as PyTorch does");
    for len in 1..=72 {
        let name: String = "abcdefghijklmnopqrstuvwxyz".chars().cycle().take(len).collect();
        same(read(&dir, &format!("{name}.pt"), &rewritten(&name, |p| p.to_vec())), reference.clone());
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `torch.save({"state_dict": model.state_dict(), "epoch": 3})`: the pickle's dict of tensors
/// becomes the value of a one-entry dict, with an int beside it.
#[test]
fn a_training_checkpoints_state_dict_loads() {
    let dir = scratch("nested");
    let nest = |pickle: &[u8]| {
        assert!(pickle.starts_with(b"\x80\x02") && pickle.ends_with(b"."));
        let key = |k: &str| [&[b'X'][..], &(k.len() as u32).to_le_bytes(), k.as_bytes()].concat();
        [&b"\x80\x02}"[..], &key("state_dict"), &pickle[2..pickle.len() - 1], b"s", &key("epoch"), b"K\x03s."].concat()
    };
    let nested = read(&dir, "checkpoint.pt", &rewritten("checkpoint", nest));
    assert!(nested.iter().all(|t| t.name.starts_with("state_dict.")), "{:?}", nested.iter().map(|t| &t.name).collect::<Vec<_>>());
    same(nested, read_pytorch_file(&fixture("vit_quickgelu.pt")).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

/// A pickle that calls `os.system("ls")` beside the tensors: parsed, never run, the tensors
/// load, and the call is named for the CLI's note.
#[test]
fn an_unknown_global_is_parsed_not_run_and_named() {
    let dir = scratch("global");
    let evil = |pickle: &[u8]| {
        let body = &pickle[..pickle.len() - 1];
        [body, b"X\x04\x00\x00\x00evilcos\nsystem\nX\x02\x00\x00\x00ls\x85Rs."].concat()
    };
    let path = dir.join("evil.pt");
    std::fs::write(&path, rewritten("evil", evil)).unwrap();
    same(read_pytorch_file(&path).unwrap(), read_pytorch_file(&fixture("vit_quickgelu.pt")).unwrap());
    assert_eq!(pytorch_ignored_objects(&path).unwrap(), ["os.system"]);
    assert!(pytorch_ignored_objects(&fixture("vit_quickgelu.pt")).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

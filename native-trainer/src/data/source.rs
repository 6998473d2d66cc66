//! Where training pairs come from: webdataset tar shards (brace patterns, as img2dataset writes
//! them) or a CSV/TSV table of image paths and captions (open_clip's `--csv-*` flags). A source
//! yields raw samples (undecoded bytes + caption) pass after pass, in an order that depends only
//! on the seed and the pass number.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::output::Skipped;
use crate::rng::Rng;

/// Image file extensions a webdataset sample may use.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// The largest tar member read (an image or caption); a larger one makes its sample a skipped one.
pub const MAX_MEMBER_BYTES: u64 = 64 << 20;

/// The most shard paths a pattern may expand to (DataComp's 12.8B pairs are 1.28M shards).
pub const MAX_SHARDS: usize = 4_000_000;

/// The image of a raw sample: bytes from a shard, or a file named by a table.
#[derive(Debug, Clone)]
pub enum ImageRef {
    Bytes(Vec<u8>),
    /// A table's path; a relative one is looked for in the working directory, then `beside`
    /// (the table's directory). Resolved when read, so opening a table of millions of rows
    /// touches none of its files.
    File { path: PathBuf, beside: Option<PathBuf> },
}

impl ImageRef {
    /// The image's bytes (a file is read now).
    pub fn read(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Self::Bytes(bytes) => Ok(std::borrow::Cow::Borrowed(bytes)),
            Self::File { path, beside } => match (std::fs::read(path), beside) {
                (Err(e), Some(beside)) if e.kind() == std::io::ErrorKind::NotFound => std::fs::read(beside),
                (read, _) => read,
            }
            .map(std::borrow::Cow::Owned),
        }
    }
}

/// One undecoded sample; `problem` is set when it cannot be used (reported, then skipped).
#[derive(Debug, Clone)]
pub struct RawSample {
    pub key: String,
    pub image: Option<ImageRef>,
    pub caption: Option<String>,
    pub problem: Option<String>,
}

impl RawSample {
    fn broken(key: String, problem: String) -> Self {
        Self { key, image: None, caption: None, problem: Some(problem) }
    }
}

/// The columns and separator of a CSV/TSV table (open_clip's defaults: `filepath`, `title`, tab).
#[derive(Debug, Clone)]
pub struct TableFormat {
    pub img_key: String,
    pub caption_key: String,
    pub separator: u8,
}

impl Default for TableFormat {
    fn default() -> Self {
        Self { img_key: "filepath".into(), caption_key: "title".into(), separator: b'\t' }
    }
}

#[derive(Debug)]
pub enum Source {
    Shards(Vec<PathBuf>),
    /// Rows (image path as written, caption) and the table's directory.
    Table { rows: Vec<(PathBuf, String)>, dir: PathBuf },
}

impl Source {
    /// `spec`: a `.csv`/`.tsv` file, or tar shard patterns (`dir/shard-{0000..0099}.tar`,
    /// several joined with `::`).
    pub fn open(spec: &str, table: &TableFormat) -> Result<Self> {
        let lower = spec.to_ascii_lowercase();
        if lower.ends_with(".csv") || lower.ends_with(".tsv") {
            let path = Path::new(spec);
            let rows = read_table(path, table)?;
            return Ok(Self::Table { rows, dir: path.parent().unwrap_or(Path::new(".")).to_path_buf() });
        }
        let mut shards = Vec::new();
        for pattern in spec.split("::") {
            shards.extend(expand_braces(pattern, MAX_SHARDS - shards.len())?.into_iter().map(PathBuf::from));
        }
        if shards.is_empty() {
            bail!("no shards in {spec:?}");
        }
        let existing = shards.iter().filter(|p| p.is_file()).count();
        if existing == 0 {
            bail!("none of the {} shards of {spec:?} exists (first: {})", shards.len(), shards[0].display());
        }
        Ok(Self::Shards(shards))
    }

    /// The number of samples when known without reading the data (tables).
    pub fn known_len(&self) -> Option<usize> {
        match self {
            Self::Table { rows, .. } => Some(rows.len()),
            Self::Shards(_) => None,
        }
    }

    /// Pass number `pass` over the data, in its seeded order (shards or rows shuffled): calls
    /// `emit` with each sample until it returns `false`. Returns whether the pass ran to its end.
    pub fn pass(&self, seed: u64, pass: u64, emit: &mut dyn FnMut(RawSample) -> bool) -> bool {
        let mut rng = Rng::stream(seed, &[pass, 0x5348_4152]);
        match self {
            Self::Shards(shards) => {
                let mut order: Vec<&PathBuf> = shards.iter().collect();
                rng.shuffle(&mut order);
                order.into_iter().all(|path| read_shard(path, emit))
            }
            Self::Table { rows, dir } => {
                let mut order: Vec<usize> = (0..rows.len()).collect();
                rng.shuffle(&mut order);
                order.into_iter().all(|i| {
                    let (path, caption) = &rows[i];
                    emit(RawSample {
                        key: path.display().to_string(),
                        image: Some(ImageRef::File { path: path.clone(), beside: path.is_relative().then(|| dir.join(path)) }),
                        caption: Some(caption.clone()),
                        problem: None,
                    })
                })
            }
        }
    }
}

/// Expands shell-style braces: `{0000..0099}` (zero padding kept) and `{a,b,c}`, nested or
/// several per pattern; more than `limit` paths is an error, found before they are made.
pub fn expand_braces(pattern: &str, limit: usize) -> Result<Vec<String>> {
    // The product of the groups' sizes first (`{0..999}{0..999}{0..99}`); nested groups are
    // bounded as they expand.
    let mut planned: u128 = 1;
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|i| open + i) else { break };
        let body = &rest[open + 1..close];
        let size = match body.split_once("..").map(|(a, b)| (a.parse::<u64>(), b.parse::<u64>())) {
            Some((Ok(a), Ok(b))) => u128::from(b.saturating_sub(a)) + 1,
            _ => body.split(',').count() as u128,
        };
        planned = planned.saturating_mul(size);
        if planned > limit as u128 {
            bail!("{pattern:?} expands to more than {limit} paths");
        }
        rest = &rest[close + 1..];
    }
    let mut out = Vec::new();
    expand_into(pattern, pattern, limit, &mut out)?;
    Ok(out)
}

fn expand_into(whole: &str, pattern: &str, limit: usize, out: &mut Vec<String>) -> Result<()> {
    let Some(open) = pattern.find('{') else {
        if out.len() >= limit {
            bail!("{whole:?} expands to more than {limit} paths");
        }
        out.push(pattern.to_string());
        return Ok(());
    };
    let close = pattern[open..].find('}').map(|i| open + i).with_context(|| format!("unclosed '{{' in {pattern:?}"))?;
    let (head, body, tail) = (&pattern[..open], &pattern[open + 1..close], &pattern[close + 1..]);
    let choices: Vec<String> = if let Some((a, b)) = body.split_once("..") {
        let (start, end): (u64, u64) = (
            a.parse().with_context(|| format!("bad range start {a:?} in {pattern:?}"))?,
            b.parse().with_context(|| format!("bad range end {b:?} in {pattern:?}"))?,
        );
        if end < start {
            bail!("empty range {{{body}}} in {pattern:?}");
        }
        if end - start >= limit as u64 {
            bail!("{whole:?} expands to more than {limit} paths");
        }
        let width = if a.starts_with('0') && a.len() > 1 { a.len() } else { 0 };
        (start..=end).map(|i| format!("{i:0width$}")).collect()
    } else {
        body.split(',').map(str::to_string).collect()
    };
    for choice in choices {
        expand_into(whole, &format!("{head}{choice}{tail}"), limit, out)?;
    }
    Ok(())
}

/// A CSV/TSV table, one row per line (quotes are honoured within a line: a quote left open
/// cannot swallow the lines after it). A row that is short, not UTF-8 or badly quoted is
/// skipped and reported; the header must be right.
fn read_table(path: &Path, format: &TableFormat) -> Result<Vec<(PathBuf, String)>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .filter(|(_, l)| !l.is_empty());
    let Some((_, header)) = lines.next() else { bail!("{}: empty table", path.display()) };
    let headers = table_row(header, format.separator).map_err(|e| anyhow::anyhow!("{}: header: {e}", path.display()))?;
    let column = |key: &str| {
        headers.iter().position(|h| h == key).with_context(|| {
            format!("{}: no column {key:?} (columns: {headers:?}; see --csv-img-key, --csv-caption-key, --csv-separator)", path.display())
        })
    };
    let (img, cap) = (column(&format.img_key)?, column(&format.caption_key)?);
    let mut rows = Vec::new();
    let mut skipped = Skipped::new(path.display().to_string(), "rows");
    for (i, line) in lines {
        match table_row(line, format.separator) {
            Ok(mut fields) if fields.len() > img.max(cap) => {
                let caption = std::mem::take(&mut fields[cap]);
                rows.push((PathBuf::from(std::mem::take(&mut fields[img])), caption));
            }
            Ok(fields) => skipped.add(format!("line {}: {} columns, {} needed", i + 1, fields.len(), img.max(cap) + 1)),
            Err(e) => skipped.add(format!("line {}: {e}", i + 1)),
        }
    }
    skipped.report();
    if rows.is_empty() {
        bail!("{}: no usable rows", path.display());
    }
    Ok(rows)
}

/// The fields of one line of a table.
fn table_row(line: &[u8], separator: u8) -> std::result::Result<Vec<String>, String> {
    // A line after it shows whether a quote was left open: it would become part of the row.
    let input = [line, b"\n."].concat();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(separator).from_reader(&input[..]);
    let (mut record, mut next) = (csv::ByteRecord::new(), csv::ByteRecord::new());
    reader.read_byte_record(&mut record).map_err(|e| e.to_string())?;
    if !reader.read_byte_record(&mut next).map_err(|e| e.to_string())? {
        return Err("a quoted field is not closed on its line".into());
    }
    record.iter().map(|field| String::from_utf8(field.to_vec()).map_err(|_| "not valid UTF-8".to_string())).collect()
}

/// Streams the samples of one tar shard to `emit`: entries sharing a key (the name up to the
/// first dot of its basename) form a sample. A missing or damaged shard becomes one broken
/// sample (reported and skipped). Returns `false` when `emit` asked to stop.
fn read_shard(path: &Path, emit: &mut dyn FnMut(RawSample) -> bool) -> bool {
    let shard = path.display().to_string();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return emit(RawSample::broken(shard, format!("missing shard: {e}"))),
    };
    if file.metadata().is_ok_and(|m| m.len() == 0) {
        return emit(RawSample::broken(shard, "empty shard (0 bytes)".into()));
    }
    let mut archive = tar::Archive::new(BufReader::new(file));
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => return emit(RawSample::broken(shard, format!("unreadable shard: {e}"))),
    };
    let mut current: Option<(String, Vec<(String, Result<Vec<u8>, String>)>)> = None;
    for entry in entries {
        let parsed = entry.map_err(|e| format!("corrupt tar entry: {e}")).and_then(|mut entry| {
            if !entry.header().entry_type().is_file() {
                return Ok(None);
            }
            let name = entry.path().map_err(|e| format!("bad entry name: {e}"))?.to_string_lossy().into_owned();
            let (dir, base) = name.rsplit_once('/').map(|(d, b)| (format!("{d}/"), b.to_string())).unwrap_or((String::new(), name.clone()));
            let Some((stem, ext)) = base.split_once('.') else { return Ok(None) };
            let size = entry.size();
            let bytes = if size > MAX_MEMBER_BYTES {
                // Its data is skipped (or the shard ends there, if the size is a lie).
                Err(format!("{name}: {size} bytes, over the {MAX_MEMBER_BYTES} a member may have"))
            } else {
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes).map_err(|e| format!("{name}: truncated entry: {e}"))?;
                Ok(bytes)
            };
            Ok(Some((format!("{dir}{stem}"), ext.to_ascii_lowercase(), bytes)))
        });
        match parsed {
            Ok(None) => {}
            Ok(Some((key, ext, bytes))) => {
                if current.as_ref().is_some_and(|(k, _)| *k != key) {
                    let (k, parts) = current.take().expect("checked");
                    if !emit(assemble(format!("{shard}:{k}"), parts)) {
                        return false;
                    }
                }
                current.get_or_insert_with(|| (key, Vec::new())).1.push((ext, bytes));
            }
            Err(problem) => {
                // A damaged archive: what came before is used, the rest of the shard is skipped.
                if let Some((k, parts)) = current.take() {
                    if !emit(assemble(format!("{shard}:{k}"), parts)) {
                        return false;
                    }
                }
                return emit(RawSample::broken(shard, problem));
            }
        }
    }
    match current {
        Some((k, parts)) => emit(assemble(format!("{shard}:{k}"), parts)),
        None => true,
    }
}

/// A sample from its webdataset entries: the first image extension, the caption from `txt`
/// or from the `caption`/`text` field of `json`; broken if one of its members could not be read.
fn assemble(key: String, parts: Vec<(String, Result<Vec<u8>, String>)>) -> RawSample {
    let parts = match parts.into_iter().map(|(ext, bytes)| bytes.map(|b| (ext, b))).collect::<Result<Vec<_>, _>>() {
        Ok(parts) => parts,
        Err(problem) => return RawSample::broken(key, problem),
    };
    let image = parts.iter().find(|(ext, _)| IMAGE_EXTENSIONS.contains(&ext.as_str())).map(|(_, b)| b.clone());
    let text = parts.iter().find(|(ext, _)| ext == "txt").map(|(_, b)| String::from_utf8_lossy(b).trim().to_string());
    let caption = text.or_else(|| {
        let json = parts.iter().find(|(ext, _)| ext == "json")?;
        let value: serde_json::Value = serde_json::from_slice(&json.1).ok()?;
        value.get("caption").or_else(|| value.get("text"))?.as_str().map(str::to_string)
    });
    match (image, caption) {
        (Some(image), Some(caption)) => RawSample { key, image: Some(ImageRef::Bytes(image)), caption: Some(caption), problem: None },
        (None, _) => RawSample::broken(key, "no jpg/png/webp image".into()),
        (_, None) => RawSample::broken(key, "no caption (txt, or json with \"caption\")".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relative path is read from the working directory when it is there, else beside the
    /// table; opening the table reads no image, and a missing one fails only when read.
    #[test]
    fn table_paths_resolve_when_read() {
        let dir = std::env::temp_dir().join(format!("clip-burn-table-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("images")).unwrap();
        std::fs::write(dir.join("images/a.png"), b"beside the table").unwrap();
        let cwd_file = format!("clip-burn-table-{}-cwd.png", std::process::id());
        std::fs::write(&cwd_file, b"in the working directory").unwrap();
        let table = dir.join("t.csv");
        std::fs::write(&table, format!("filepath\ttitle\nimages/a.png\ta\n{cwd_file}\tb\nimages/missing.png\tc\n")).unwrap();
        let format = TableFormat { img_key: "filepath".into(), caption_key: "title".into(), separator: b'\t' };
        let source = Source::open(table.to_str().unwrap(), &format).unwrap();
        assert_eq!(source.known_len(), Some(3));
        let mut read = Vec::new();
        source.pass(0, 0, &mut |s| {
            read.push((s.caption.unwrap(), s.image.unwrap().read().map(|b| b.into_owned())));
            true
        });
        read.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(read[0].1.as_deref().unwrap(), b"beside the table");
        assert_eq!(read[1].1.as_deref().unwrap(), b"in the working directory");
        assert_eq!(read[2].1.as_ref().unwrap_err().kind(), std::io::ErrorKind::NotFound);
        std::fs::remove_file(&cwd_file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn braces_expand_like_webdataset() {
        assert_eq!(expand_braces("a-{008..011}.tar", 10).unwrap(), ["a-008.tar", "a-009.tar", "a-010.tar", "a-011.tar"]);
        assert_eq!(expand_braces("{x,y}/{1..2}", 10).unwrap(), ["x/1", "x/2", "y/1", "y/2"]);
        assert_eq!(expand_braces("plain.tar", 10).unwrap(), ["plain.tar"]);
        assert!(expand_braces("a{1..", 10).is_err());
        assert!(expand_braces("a{3..1}", 10).is_err());
    }

    /// Patterns that would expand to billions of paths fail at once, before they are made.
    #[test]
    fn brace_expansion_is_bounded() {
        assert_eq!(expand_braces("{1..4}{1..4}", 16).unwrap().len(), 16);
        for pattern in ["x-{0..999999999}.tar", "{0..999}{0..999}{0..99}", "{0..18446744073709551615}"] {
            let started = std::time::Instant::now();
            let err = expand_braces(pattern, MAX_SHARDS).unwrap_err().to_string();
            assert!(err.contains("more than 4000000 paths"), "{err}");
            assert!(started.elapsed().as_secs() < 20, "{pattern}");
        }
        assert!(expand_braces("{1..4}{1..4}", 15).is_err());
    }
}

//! Where training pairs come from: webdataset tar shards (brace patterns, as img2dataset writes
//! them) or a CSV/TSV table of image paths and captions (open_clip's `--csv-*` flags). A source
//! yields raw samples (undecoded bytes + caption) pass after pass, in an order that depends only
//! on the seed and the pass number.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::rng::Rng;

/// Image file extensions a webdataset sample may use.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

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
            shards.extend(expand_braces(pattern)?.into_iter().map(PathBuf::from));
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
/// several per pattern.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_string()]);
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
        let width = if a.starts_with('0') && a.len() > 1 { a.len() } else { 0 };
        (start..=end).map(|i| format!("{i:0width$}")).collect()
    } else {
        body.split(',').map(str::to_string).collect()
    };
    let mut out = Vec::new();
    for choice in choices {
        out.extend(expand_braces(&format!("{head}{choice}{tail}"))?);
    }
    Ok(out)
}

fn read_table(path: &Path, format: &TableFormat) -> Result<Vec<(PathBuf, String)>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(format.separator)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("{}", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}", path.display()))?.clone();
    let column = |key: &str| {
        headers.iter().position(|h| h == key).with_context(|| {
            let seen: Vec<&str> = headers.iter().collect();
            format!("{}: no column {key:?} (columns: {seen:?}; see --csv-img-key, --csv-caption-key, --csv-separator)", path.display())
        })
    };
    let (img, cap) = (column(&format.img_key)?, column(&format.caption_key)?);
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), line + 2))?;
        let (Some(file), Some(caption)) = (record.get(img), record.get(cap)) else {
            bail!("{}: row {} has too few columns", path.display(), line + 2);
        };
        rows.push((PathBuf::from(file), caption.to_string()));
    }
    if rows.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(rows)
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
    let mut archive = tar::Archive::new(BufReader::new(file));
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => return emit(RawSample::broken(shard, format!("unreadable shard: {e}"))),
    };
    let mut current: Option<(String, Vec<(String, Vec<u8>)>)> = None;
    for entry in entries {
        let parsed = entry.map_err(|e| format!("corrupt tar entry: {e}")).and_then(|mut entry| {
            if !entry.header().entry_type().is_file() {
                return Ok(None);
            }
            let name = entry.path().map_err(|e| format!("bad entry name: {e}"))?.to_string_lossy().into_owned();
            let (dir, base) = name.rsplit_once('/').map(|(d, b)| (format!("{d}/"), b.to_string())).unwrap_or((String::new(), name.clone()));
            let Some((stem, ext)) = base.split_once('.') else { return Ok(None) };
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(|e| format!("{name}: truncated entry: {e}"))?;
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
/// or from the `caption`/`text` field of `json`.
fn assemble(key: String, parts: Vec<(String, Vec<u8>)>) -> RawSample {
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
        assert_eq!(expand_braces("a-{008..011}.tar").unwrap(), ["a-008.tar", "a-009.tar", "a-010.tar", "a-011.tar"]);
        assert_eq!(expand_braces("{x,y}/{1..2}").unwrap(), ["x/1", "x/2", "y/1", "y/2"]);
        assert_eq!(expand_braces("plain.tar").unwrap(), ["plain.tar"]);
        assert!(expand_braces("a{1..").is_err());
        assert!(expand_braces("a{3..1}").is_err());
    }
}

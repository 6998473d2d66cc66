//! Hostile input through the `clip-burn` binary: a size written in the input is bounded before
//! it is believed, a bad flag value is a usage error (exit 2, one line), any other failure exits
//! 1 with one line, a closed stdout ends the process quietly, and a bad sample, row or image is
//! skipped, counted and reported on one printable line (README, "Untrusted input").

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name).display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clip-burn-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clip-burn"));
    cmd.args(["--device", "cpu"]).args(args);
    cmd
}

fn clip_burn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    command(args).output().expect("run clip-burn")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit `code`, `needle` in stderr, one line (a usage error may add a one-line hint), no panic.
fn fails(out: Output, code: i32, needle: &str) {
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "expected exit {code} with {needle:?}: {err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    let lines = err.trim_end().lines().count();
    assert!(lines == 1 || (code == 2 && lines == 2), "{lines} lines: {err}");
    assert!(!err.contains("internal error") && !err.contains("panicked"), "{err}");
}

/// Every line of a report is printable: no control character but the line breaks.
fn printable(text: &str) {
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "control characters in {text:?}");
}

fn tiny_model() -> (String, String) {
    (fixture("vit_quickgelu.json"), fixture("vit_quickgelu.safetensors"))
}

#[test]
fn bad_flag_values_are_usage_errors_that_name_the_flag() {
    let dir = scratch("flags");
    let (cfg, w) = tiny_model();
    let csv = dir.join("t.csv");
    std::fs::write(&csv, format!("filepath\ttitle\n{}\ta cat\n", fixture("images/chelsea.jpg"))).unwrap();
    let csv = csv.display().to_string();
    let shard = dir.join("s.tar");
    std::fs::write(&shard, [0u8; 1024]).unwrap();
    let out_dir = dir.join("out").display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--device", "tpu", "tokenize", "a"], "--device"),
        (vec!["--device", "cuda:x", "tokenize", "a"], "--device"),
        (vec!["tokenize", "--context-length", "0", "a"], "--context-length"),
        (vec!["embed", "--model", &cfg, "--weights", &w, "--text", "a", "--batch", "0"], "--batch"),
        (vec!["embed", "--model", &cfg, "--weights", &w], "nothing to embed"),
        (vec!["synth", "--out", &out_dir, "--image-size", "100000"], "--image-size"),
        (vec!["launch", "--nproc-per-node", "0", "--", "tokenize", "a"], "--nproc-per-node"),
        (vec!["bench", "train", "--model", "ViT-B-32", "--synthetic", "--batch", "0"], "--batch"),
        (vec!["eval", "retrieval", "--model", &cfg, "--weights", &w, "--data", &csv, "--num-samples", "0"], "--num-samples"),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, needle) in cases {
        fails(clip_burn(&args), 2, needle);
    }
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--model", &cfg, "--train-data", &csv, "--logs", &out_dir];
        args.extend(extra);
        clip_burn(&args)
    };
    for (flag, value) in [
        ("--batch-size", "1"),
        ("--accum-freq", "0"),
        ("--workers", "0"),
        ("--beta1", "1.5"),
        ("--beta2", "-0.1"),
        ("--lr", "-1"),
        ("--wd", "-5"),
        ("--eps", "0"),
        ("--grad-clip-norm", "-1"),
        ("--steps", "0"),
        ("--epochs", "0"),
        ("--save-frequency", "0"),
        ("--csv-separator", "ab"),
        ("--lr", "NaN"),
    ] {
        fails(train(&[flag, value]), 2, flag);
    }
    // Nothing was trained, so nothing was written.
    assert!(!dir.join("out/final.bpk").exists());
    let shards = format!("{}/s.tar", dir.display());
    fails(clip_burn(&["train", "--model", &cfg, "--train-data", &shards, "--logs", &out_dir]), 2, "--train-num-samples");
    // A --config file that is not TOML: where, on one line.
    let toml = dir.join("run.toml");
    std::fs::write(&toml, "lr = = 1\n").unwrap();
    fails(clip_burn(&["train", "--config", toml.to_str().unwrap()]), 2, "line 1");
    // An argument that is not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"a\xffb");
    fails(clip_burn(&[std::ffi::OsStr::new("tokenize"), bad]), 2, "not valid UTF-8");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_full_disk_is_an_error_and_a_closed_pipe_is_quiet() {
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = command(&["tokenize", "a"]).stdout(full).output().unwrap();
    fails(out, 1, "writing to stdout");

    // More output than a pipe holds, its reader gone: the process ends quietly, as `yes | head` does.
    let texts: Vec<String> = (0..3000).map(|i| format!("text number {i} of a long list of texts")).collect();
    let mut child = command(&[&["tokenize".to_string()][..], &texts[..]].concat()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn sizes_written_in_the_input_are_bounded_before_they_are_believed() {
    let dir = scratch("sizes");
    let (cfg, w) = tiny_model();
    let retrieval = |data: &str| clip_burn(&["eval", "retrieval", "--model", &cfg, "--weights", &w, "--data", data]);
    for pattern in ["x-{0..999999999}.tar", "{0..999}{0..999}{0..99}.tar"] {
        fails(retrieval(&format!("{}/{pattern}", dir.display())), 1, "expands to more than");
    }
    // Model configs with sizes that would be allocated from.
    let base: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    for (tower, key, value) in [
        ("text_cfg", "vocab_size", 1_000_000_000_000u64),
        ("text_cfg", "context_length", 1_000_000),
        ("text_cfg", "width", 1 << 40),
        ("vision_cfg", "width", 1 << 20),
        ("vision_cfg", "image_size", 100_000),
    ] {
        let mut config = base.clone();
        config[tower][key] = value.into();
        let path = dir.join(format!("{key}.json"));
        std::fs::write(&path, config.to_string()).unwrap();
        fails(clip_burn(&["embed", "--model", path.to_str().unwrap(), "--weights", &w, "--text", "a"]), 1, key);
    }
    // A config within the limits but far larger than the file's weights: refused before the
    // model is built.
    let mut big = base.clone();
    big["text_cfg"]["vocab_size"] = 1_000_000.into();
    big["text_cfg"]["width"] = 4096.into();
    big["text_cfg"]["heads"] = 64.into();
    let path = dir.join("big.json");
    std::fs::write(&path, big.to_string()).unwrap();
    fails(clip_burn(&["embed", "--model", path.to_str().unwrap(), "--weights", &w, "--text", "a"]), 1, "parameters, the file holds");

    // A tar member whose header claims 2^62 bytes, after a good pair: the pair is used, the
    // member's sample and the rest of the shard are skipped and reported.
    let shard = dir.join("lying.tar");
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, "0.png", &std::fs::read(fixture("images/astronaut.png")).unwrap());
    append(&mut tar, "0.txt", b"an astronaut");
    let mut header = tar::Header::new_gnu();
    header.set_path("1.png").unwrap();
    header.set_size(1 << 62);
    header.set_mode(0o644);
    header.set_cksum();
    let mut bytes = tar.into_inner().unwrap();
    bytes.truncate(bytes.len() - 1024); // the end-of-archive blocks
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&shard, bytes).unwrap();
    let out = retrieval(shard.to_str().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("skipped 2 pairs") && err.contains("over the"), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pairs"], 1);
    std::fs::remove_dir_all(&dir).ok();
}

fn append(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, name, data).unwrap();
}

/// A copy of the tiny model's safetensors file with `edit` applied to its header text and data.
fn tampered(dir: &Path, name: &str, edit: impl FnOnce(&mut String, &mut [u8], &serde_json::Value)) -> String {
    let bytes = std::fs::read(tiny_model().1).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&header).unwrap();
    let mut data = bytes[8 + n..].to_vec();
    edit(&mut header, &mut data, &parsed);
    assert_eq!(header.len(), n, "the edit must keep the header's length");
    let path = dir.join(name);
    std::fs::write(&path, [&bytes[..8], header.as_bytes(), &data].concat()).unwrap();
    path.display().to_string()
}

#[test]
fn weights_must_be_finite_floats() {
    let dir = scratch("weights");
    let cfg = tiny_model().0;
    let embed = |weights: &str| clip_burn(&["embed", "--model", &cfg, "--weights", weights, "--text", "a"]);
    for (value, word) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let path = tampered(&dir, "nan.safetensors", |_, data, header| {
            let start = header["ln_final.weight"]["data_offsets"][0].as_u64().unwrap() as usize;
            data[start + 8..start + 12].copy_from_slice(&value.to_le_bytes());
        });
        fails(embed(&path), 1, "ln_final.weight: element 2 is");
        assert!(stderr(&embed(&path)).contains(word));
    }
    let path = tampered(&dir, "int.safetensors", |header, _, _| {
        let at = header.find("\"ln_final.weight\":{\"dtype\":\"F32\"").expect("the key in the header") + "\"ln_final.weight\":{\"dtype\":\"".len();
        header.replace_range(at..at + 3, "I32");
    });
    fails(embed(&path), 1, "ln_final.weight: stored as integers");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_rows_and_shards_are_skipped_and_reported_on_one_line() {
    let dir = scratch("data");
    let (cfg, w) = tiny_model();
    let retrieval = |data: &str| clip_burn(&["eval", "retrieval", "--model", &cfg, "--weights", &w, "--data", data]);
    let (a, b) = (fixture("images/astronaut.png"), fixture("images/chelsea.jpg"));
    let mut table = format!("filepath\ttitle\n{a}\tan astronaut\n\"{b}\ta quote left open\nonly-one-column\n").into_bytes();
    table.extend_from_slice(b"\xff\xfe.png\tnot utf-8\n");
    table.extend_from_slice(format!("{b}\ta cat\n{}\ta missing file\n", dir.join("missing.png").display()).as_bytes());
    let csv = dir.join("t.csv");
    std::fs::write(&csv, table).unwrap();
    let out = retrieval(csv.to_str().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    printable(&err);
    // Three bad rows when the table is read; the missing file when the pairs are read.
    assert!(err.contains("skipped 3 rows") && err.contains("not closed") && err.contains("1 columns") && err.contains("UTF-8"), "{err}");
    assert!(err.contains("retrieval data: skipped 1 pairs") && err.contains("missing.png"), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pairs"], 2);

    // An empty shard and a garbage one beside a good one.
    std::fs::write(dir.join("a.tar"), b"").unwrap();
    let mut garbage = vec![0x1bu8; 600];
    let text = b"\n\x1b[31mnot a tar\x07\r\n\x00";
    garbage[..text.len()].copy_from_slice(text);
    std::fs::write(dir.join("b.tar"), garbage).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, "0.png", &std::fs::read(&a).unwrap());
    append(&mut tar, "0.txt", b"an astronaut");
    std::fs::write(dir.join("c.tar"), tar.into_inner().unwrap()).unwrap();
    let out = retrieval(&format!("{}/{{a,b,c}}.tar", dir.display()));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    printable(&err);
    assert!(err.contains("empty shard (0 bytes)"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // Zero-shot on a folder with an unreadable picture: scored without it, and said.
    let folder = dir.join("zs");
    for (class, image) in [("cat", &b), ("astronaut", &a)] {
        std::fs::create_dir_all(folder.join(class)).unwrap();
        std::fs::copy(image, folder.join(class).join("0.png")).unwrap();
    }
    std::fs::write(folder.join("cat/broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = clip_burn(&["eval", "zero-shot", "--model", &cfg, "--weights", &w, "--data", folder.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    printable(&err);
    assert!(err.contains("skipped 1 images") && err.contains("broken.png"), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["images"].as_u64(), json["skipped"].as_u64()), (Some(2), Some(1)));

    // classnames.txt holding the folders' names in another order: matched by name, with a note.
    std::fs::write(folder.join("classnames.txt"), "cat\nastronaut\n").unwrap();
    let out = clip_burn(&["eval", "zero-shot", "--model", &cfg, "--weights", &w, "--data", folder.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("paired with its own name"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}

/// A picture of a few hundred bytes whose shortest side is 1 pixel: only the crop is computed.
#[test]
fn an_extreme_aspect_ratio_costs_the_crop() {
    let dir = scratch("aspect");
    let (cfg, w) = tiny_model();
    let path = dir.join("tall.png");
    let mut png = Vec::new();
    image::ImageEncoder::write_image(image::codecs::png::PngEncoder::new(&mut png), &vec![90u8; 3 * 65535], 1, 65535, image::ExtendedColorType::Rgb8).unwrap();
    std::fs::File::create(&path).unwrap().write_all(&png).unwrap();
    let out = clip_burn(&["embed", "--model", &cfg, "--weights", &w, "--image", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}

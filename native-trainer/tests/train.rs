//! `synth -> train -> eval -> plot` end to end on a tiny model, and the crash test: a run killed
//! with SIGKILL and resumed with `--resume latest` logs the same loss curve as an uninterrupted
//! run, and every checkpoint on disk is complete whenever the kill lands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn clip_burn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clip-burn")).arg("--device").arg("cpu").args(args).output().expect("run clip-burn")
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "failed: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    out
}

/// A fresh directory for one test of this run. A run keeps its directories (a failure can be
/// looked at); the next run removes those of runs that have exited (a few hundred MB each).
fn scratch(name: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_exited_runs);
    let dir = std::env::temp_dir().join(format!("clip-burn-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes `clip-burn-train-<pid>-*` directories whose process is gone (Linux: `/proc/<pid>`).
fn remove_exited_runs() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix("clip-burn-train-").and_then(|rest| rest.split('-').next()).and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// One small synth data set shared by the tests of this file.
fn data() -> &'static Path {
    static DATA: OnceLock<PathBuf> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = scratch("data");
        ok(clip_burn(&[
            "synth", "--out", dir.to_str().unwrap(), "--train-samples", "600", "--val-samples", "40",
            "--eval-per-class", "3", "--image-size", "32", "--shard-size", "200",
        ]));
        dir
    })
}

const MODEL: &str = r#"{"embed_dim": 32, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
 "text_cfg": {"context_length": 16, "width": 32, "heads": 2, "layers": 1}}"#;

fn model_file(dir: &Path) -> String {
    let path = dir.join("model.json");
    std::fs::write(&path, MODEL).unwrap();
    path.display().to_string()
}

fn train_args(dir: &Path, logs: &str, steps: &str) -> Vec<String> {
    let shards = format!("{}/wds/train-{{0000..0002}}.tar", data().display());
    [
        "train", "--model", &model_file(dir), "--train-data", &shards, "--train-num-samples", "600", "--batch-size", "16",
        "--steps", steps, "--warmup", "5", "--lr", "1e-3", "--save-frequency", "4", "--workers", "2", "--logs", logs,
        "--shuffle-buffer", "50",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// (step, loss) of each training line of metrics.jsonl.
fn losses(logs: &Path) -> Vec<(u64, f64)> {
    parse_losses(&std::fs::read_to_string(logs.join("metrics.jsonl")).unwrap())
}

/// [`losses`] of a run still writing: the complete lines only (a line that crosses a page
/// boundary can be read half written).
fn losses_so_far(logs: &Path) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(logs.join("metrics.jsonl")).unwrap_or_default();
    parse_losses(&text[..text.rfind('\n').map_or(0, |i| i + 1)])
}

fn parse_losses(text: &str) -> Vec<(u64, f64)> {
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((v.get("step")?.as_u64()?, v.get("loss")?.as_f64()?))
        })
        .collect()
}

#[test]
fn synth_writes_every_format() {
    let data = data();
    for file in ["wds/train-0000.tar", "wds/train-0002.tar", "csv/train.csv", "val/val.csv", "zero-shot/classnames.txt", "zero-shot/templates.txt", "info.json"] {
        assert!(data.join(file).is_file(), "{file}");
    }
    let rows = std::fs::read_to_string(data.join("csv/train.csv")).unwrap();
    assert_eq!(rows.lines().count(), 601);
    assert!(rows.starts_with("filepath\ttitle\n"));
    let classes = std::fs::read_to_string(data.join("zero-shot/classnames.txt")).unwrap();
    assert_eq!(classes.lines().count(), 16);
    let folders = std::fs::read_dir(data.join("zero-shot")).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count();
    assert_eq!(folders, 16);
    // The same seed gives the same bytes.
    let again = scratch("synth-again");
    ok(clip_burn(&["synth", "--out", again.to_str().unwrap(), "--train-samples", "600", "--val-samples", "40", "--eval-per-class", "3", "--image-size", "32", "--shard-size", "200", "--formats", "wds"]));
    assert_eq!(std::fs::read(again.join("wds/train-0001.tar")).unwrap(), std::fs::read(data.join("wds/train-0001.tar")).unwrap());
    assert!(!again.join("csv").exists());
}

#[test]
fn training_learns_evaluates_and_plots() {
    let dir = scratch("learn");
    let logs = dir.join("logs");
    let mut args = train_args(&dir, logs.to_str().unwrap(), "40");
    let zs = data().join("zero-shot");
    let val = data().join("val/val.csv");
    args.extend(["--zeroshot-data".into(), zs.display().to_string(), "--val-data".into(), val.display().to_string(), "--val-frequency".into(), "20".into()]);
    let out = ok(clip_burn(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("zero_shot_top1"), "{stderr}");
    let curve = losses(&logs);
    assert_eq!(curve.len(), 40);
    let first: f64 = curve[..5].iter().map(|c| c.1).sum::<f64>() / 5.0;
    let last: f64 = curve[35..].iter().map(|c| c.1).sum::<f64>() / 5.0;
    assert!(last < first - 0.2, "the loss did not fall: {first:.3} -> {last:.3}");
    let text = std::fs::read_to_string(logs.join("metrics.jsonl")).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("zero_shot_top1") && l.contains("image_to_text_r1")).count(), 2);

    // The checkpoint and the final weights are weight files for the other commands.
    let weights = logs.join("final.bpk");
    let zero_shot = ok(clip_burn(&["eval", "zero-shot", "--weights", weights.to_str().unwrap(), "--data", zs.to_str().unwrap()]));
    let result: serde_json::Value = serde_json::from_slice(&zero_shot.stdout).unwrap();
    assert_eq!(result["images"], 48);
    assert_eq!(result["classes"], 16);
    let ckpt = logs.join("checkpoints/step-00000040.bpk");
    let retrieval = ok(clip_burn(&["eval", "retrieval", "--weights", ckpt.to_str().unwrap(), "--data", val.to_str().unwrap()]));
    let result: serde_json::Value = serde_json::from_slice(&retrieval.stdout).unwrap();
    assert_eq!(result["pairs"], 40);
    for way in ["image_to_text", "text_to_image"] {
        let r: Vec<f64> = [1, 5, 10].iter().map(|k| result[format!("{way}_r{k}")].as_f64().unwrap()).collect();
        assert!(0.0 <= r[0] && r[0] <= r[1] && r[1] <= r[2] && r[2] <= 1.0, "{way}: {r:?}");
    }

    let png = dir.join("curves.png");
    ok(clip_burn(&["plot", logs.to_str().unwrap(), "--out", png.to_str().unwrap()]));
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (1200, 900));
}

/// One unreadable picture in `--zeroshot-data`: skipped and reported at each evaluation; the
/// run still writes its checkpoint and final weights (an evaluation never costs the weights).
#[test]
fn an_unreadable_evaluation_picture_costs_no_weights() {
    let dir = scratch("bad-eval");
    let zs = dir.join("zero-shot");
    for file in walk(&data().join("zero-shot")) {
        let to = zs.join(file.strip_prefix(data().join("zero-shot")).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, &to).unwrap();
    }
    let mut classes: Vec<PathBuf> = std::fs::read_dir(&zs).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    classes.sort();
    std::fs::write(classes[0].join("9999.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let logs = dir.join("logs");
    let mut args = train_args(&dir, logs.to_str().unwrap(), "2");
    args.extend(["--zeroshot-data".into(), zs.display().to_string()]);
    let out = ok(clip_burn(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 1 images") && stderr.contains("9999.png"), "{stderr}");
    assert!(logs.join("final.bpk").is_file() && logs.join("checkpoints/step-00000002.bpk").is_file());
    let metrics = std::fs::read_to_string(logs.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().filter(|l| l.contains("zero_shot_top1")).count(), 1, "{metrics}");
}

#[test]
fn a_killed_run_resumes_onto_the_same_curve() {
    let dir = scratch("resume");
    let reference = dir.join("reference");
    ok(clip_burn(&train_args(&dir, reference.to_str().unwrap(), "24").iter().map(String::as_str).collect::<Vec<_>>()));
    let expected = losses(&reference);
    assert_eq!(expected.len(), 24);

    // Kill it (SIGKILL: no chance to clean up) a few times at different moments, resuming each time.
    let logs = dir.join("killed");
    let args = train_args(&dir, logs.to_str().unwrap(), "24");
    let mut kills = 0;
    for wait_for_step in [6u64, 13, 18] {
        let mut run_args: Vec<&str> = args.iter().map(String::as_str).collect();
        if kills > 0 {
            run_args.extend(["--resume", "latest"]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_clip-burn"))
            .args(["--device", "cpu"])
            .args(&run_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            let steps = losses_so_far(&logs).last().map_or(0, |l| l.0);
            if steps >= wait_for_step || child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(300), "training too slow");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        kills += 1;
        // Every checkpoint file present is complete: it loads as weights.
        for entry in std::fs::read_dir(logs.join("checkpoints")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "bpk") {
                let bytes = std::fs::read(&path).unwrap();
                clip_model::import::load_bytes(None, bytes, &burn::tensor::Device::flex())
                    .unwrap_or_else(|e| panic!("{} is not a complete checkpoint: {e}", path.display()));
            }
        }
    }
    let mut run_args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_args.extend(["--resume", "latest"]);
    let out = ok(clip_burn(&run_args));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming from"));
    let resumed = losses(&logs);
    assert_eq!(resumed.iter().map(|l| l.0).collect::<Vec<_>>(), (1..=24).collect::<Vec<_>>(), "one line per step");
    for ((step, a), (_, b)) in expected.iter().zip(&resumed) {
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "step {step}: uninterrupted {a} vs resumed {b}");
    }
}

#[test]
fn bad_settings_are_clear_errors() {
    let dir = scratch("errors");
    let out = clip_burn(&["train", "--model", &model_file(&dir), "--train-data", "/nonexistent/shard-{00..03}.tar", "--train-num-samples", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none of the 4 shards"), "{err}");
    let shards = format!("{}/wds/train-{{0000..0002}}.tar", data().display());
    let out = clip_burn(&["train", "--model", &model_file(&dir), "--train-data", &shards]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--train-num-samples is needed"));
    let csv = data().join("csv/train.csv");
    let out = clip_burn(&["train", "--model", &model_file(&dir), "--train-data", csv.to_str().unwrap(), "--csv-caption-key", "caption"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column \"caption\""), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn csv_and_toml_config_train_the_same_way() {
    let dir = scratch("toml");
    let csv = data().join("csv/train.csv");
    let toml = dir.join("run.toml");
    std::fs::write(
        &toml,
        format!(
            "model = {:?}\ntrain_data = {:?}\nbatch_size = 16\nsteps = 3\nwarmup = 1\nlogs = {:?}\n",
            model_file(&dir),
            csv.display().to_string(),
            dir.join("logs").display().to_string()
        ),
    )
    .unwrap();
    ok(clip_burn(&["train", "--config", toml.to_str().unwrap(), "--steps", "4"]));
    assert_eq!(losses(&dir.join("logs")).len(), 4, "the command line's --steps wins over the file's");
}

#[test]
fn pretrained_weights_with_a_locked_image_tower() {
    let dir = scratch("lock");
    let first = dir.join("first");
    ok(clip_burn(&train_args(&dir, first.to_str().unwrap(), "2").iter().map(String::as_str).collect::<Vec<_>>()));
    let start = first.join("final.bpk");
    let second = dir.join("second");
    let mut args = train_args(&dir, second.to_str().unwrap(), "3");
    args.extend(["--pretrained".into(), start.display().to_string(), "--lock-image".into(), "--seed".into(), "9".into()]);
    ok(clip_burn(&args.iter().map(String::as_str).collect::<Vec<_>>()));

    let device = burn::tensor::Device::flex();
    let load = |p: &Path| clip_model::import::load_file(None, p, &device).unwrap();
    let (before, after) = (load(&start), load(&second.join("final.bpk")));
    let params = |m: &clip_model::Clip, visual: bool| -> Vec<f32> {
        let t = if visual {
            match &m.visual {
                clip_model::vision::VisionTower::Vit(v) => v.proj.val(),
                clip_model::vision::VisionTower::ResNet(_) => unreachable!(),
            }
        } else {
            m.text.text_projection.val()
        };
        t.into_data().try_to_vec::<f32>().unwrap()
    };
    assert_eq!(params(&before, true), params(&after, true), "the image tower moved");
    assert_ne!(params(&before, false), params(&after, false), "the text tower did not train");
}

#[test]
fn bench_train_reports_throughput_and_memory() {
    let dir = scratch("bench");
    let out = ok(clip_burn(&["bench", "train", "--model", &model_file(&dir), "--batch", "8", "--steps", "3", "--warmup-steps", "1", "--lr", "1e-3", "--synthetic", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["samples_per_s"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["step_ms"].as_f64().unwrap() > 0.0);
    assert!(report["first_step_s"].as_f64().unwrap() > 0.0);
    assert!(report["peak_memory_bytes"].as_u64().unwrap() > 1 << 20, "{report}");
    // One loss per step, warm-up included; the batch is the same each step, so the loss falls.
    let losses: Vec<f64> = report["losses"].as_array().unwrap().iter().map(|l| l.as_f64().unwrap()).collect();
    assert_eq!(losses.len(), 4, "{report}");
    assert!(losses[3] < losses[0], "{losses:?}");
    let out = clip_burn(&["bench", "train", "--model", &model_file(&dir)]);
    assert_eq!(out.status.code(), Some(2), "--synthetic is required");
}

/// `bench matmul` on the device the test run names (lavapipe's cubecl kernels under
/// scripts/test.sh, else the CPU): every layout of a training step agrees with the CPU's product,
/// and each shape is timed.
#[test]
fn bench_matmul_checks_every_layout_on_the_test_device() {
    let device = std::env::var("CLIP_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let bench_with = |routine: Option<&str>, extra: &[&str]| {
        let mut args = vec!["--device", device.as_str(), "bench", "matmul", "--dtype", "f32", "--steps", "2"];
        args.extend(extra);
        let mut command = Command::new(env!("CARGO_BIN_EXE_clip-burn"));
        command.args(&args).env_remove("CUBEK_MATMUL");
        if let Some(routine) = routine {
            command.env("CUBEK_MATMUL", routine);
        }
        command.output().unwrap()
    };
    let bench = |extra: &[&str]| bench_with(None, extra);
    let out = ok(bench(&["--shape", "64x32x48", "--shape", "3x16x8x4", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9, "{report}");
    assert!(checks.iter().all(|c| c["ok"] == true && c["max_abs_reference"].as_f64().unwrap() > 1.0), "{report}");
    let timings = report["timings"].as_array().unwrap();
    assert_eq!(timings[1]["shape"], serde_json::json!([3, 16, 8, 4]));
    assert!(timings.iter().all(|t| t["tflops"].as_f64().unwrap() > 0.0), "{report}");
    let out = bench(&["--shape", "64x0x8"]);
    assert!(out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains("every size must be positive"));
    for (shape, error) in [("64x8", "expected MxKxN or BxMxKxN"), ("4x4xfour", "expected MxKxN"), ("100000x100000x2", "over 2^31 elements")] {
        let out = bench(&["--shape", shape]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() == Some(2) && stderr.contains(error) && !stderr.contains("panicked"), "{shape}: {stderr}");
    }
    // `CUBEK_MATMUL=cublas` is a known name, and off CUDA it changes nothing: cubek's kernels run.
    let out = ok(bench_with(Some("cublas"), &["--shape", "8x8x8", "--json"]));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("is not one of"), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["routine"], "cublas");
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true), "{report}");
}

/// `bench allreduce` on the device the test run names: a one-rank job's all-reduce through the
/// transport (TCP here; NCCL on CUDA in tests/gpu/train.sh) and through host memory, both exact
/// on a buffer written by a kernel just before, then timed; NCCL off CUDA is refused by name.
#[test]
fn bench_allreduce_checks_both_paths_on_the_test_device() {
    let device = std::env::var("CLIP_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let bench = |extra: &[&str]| {
        let mut args = vec!["--device", device.as_str(), "bench", "allreduce", "--steps", "2"];
        args.extend(extra);
        Command::new(env!("CARGO_BIN_EXE_clip-burn")).args(&args).output().unwrap()
    };
    let out = ok(bench(&["--values", "300007", "--dist-backend", "tcp", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["values"], 300007);
    assert_eq!(report["transport"], "tcp");
    assert!(report["transport_ms"].as_f64().unwrap() > 0.0 && report["through_host_ms"].as_f64().unwrap() > 0.0, "{report}");
    for (extra, code, error) in [
        (vec!["--values", "0"], 2, "--values"),
        (vec!["--values", "3000000000"], 2, "must be from 1 to 2147483647"),
        (vec!["--dist-backend", "nccl"], 1, "needs --device cuda"),
    ] {
        let out = bench(&extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() == Some(code) && stderr.contains(error) && !stderr.contains("panicked"), "{extra:?}: {stderr}");
    }
}

/// `clip-burn launch` starts two processes (TCP between them, each half the batch): the loss
/// curve is the one of a single process with the whole batch, also with `--accum-freq` and, for
/// a ResNet, with `--use-bn-sync` (without it, another curve); a
/// checkpoint holds both data positions and resumes onto the same curve with two processes, and
/// is refused with one.
#[test]
fn two_processes_train_like_one_with_the_whole_batch() {
    let dir = scratch("dist");
    let port = (31_000 + std::process::id() % 2000).to_string();
    let run = |logs: &Path, processes: usize, extra: &[&str]| -> Output {
        let mut args = train_args(&dir, logs.to_str().unwrap(), "6");
        let at = args.iter().position(|a| a == "--batch-size").unwrap();
        args[at + 1] = (16 / processes).to_string();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut argv: Vec<String> = Vec::new();
        if processes > 1 {
            argv.extend(["launch", "--nproc-per-node", &processes.to_string(), "--master-port", &port, "--", "--device", "cpu"].map(String::from));
        }
        argv.extend(args);
        clip_burn(&argv.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (one, two) = (dir.join("one"), dir.join("two"));
    ok(run(&one, 1, &[]));
    let out = ok(run(&two, 2, &[]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("x 2 processes"));
    let (a, b) = (losses(&one), losses(&two));
    assert_eq!(a.len(), 6);
    assert_eq!(b.len(), 6, "only rank 0 writes metrics");
    for ((step, x), (_, y)) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4 * x, "step {step}: one process {x}, two {y}");
    }
    clip_model::import::load_file(None, &two.join("final.bpk"), &burn::tensor::Device::flex()).unwrap();

    // Two micro-batches a step: one process of 8 + 8 samples, two of 4 + 4 each (the later
    // --batch-size wins).
    let (one_accum, two_accum) = (dir.join("one-accum"), dir.join("two-accum"));
    ok(run(&one_accum, 1, &["--accum-freq", "2", "--batch-size", "8"]));
    ok(run(&two_accum, 2, &["--accum-freq", "2", "--batch-size", "4"]));
    let (a, b) = (losses(&one_accum), losses(&two_accum));
    assert_eq!((a.len(), b.len()), (6, 6));
    for ((step, x), (_, y)) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4 * x, "--accum-freq 2, step {step}: one process {x}, two {y}");
    }

    // A ResNet's BatchNorm: per process by default (another curve: 7% off at the first step),
    // the global batch's with --use-bn-sync: the first loss is the one process's, and the curve
    // stays on it within 1e-2 (the gradients agree up to f32 rounding, which a ReLU after a
    // BatchNorm can amplify, dist.rs's test, and Adam step by step: 1e-6, 1e-5, 1e-5, 3e-4
    // relative here).
    let resnet = dir.join("resnet.json");
    std::fs::write(
        &resnet,
        r#"{"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": [1,1,1,1], "width": 8, "head_width": 8},
            "text_cfg": {"context_length": 16, "width": 32, "heads": 2, "layers": 1}}"#,
    )
    .unwrap();
    let rn = ["--model", resnet.to_str().unwrap(), "--steps", "4", "--lr", "1e-4"];
    let (one_rn, synced, per_rank) = (dir.join("one-rn"), dir.join("two-rn-synced"), dir.join("two-rn"));
    ok(run(&one_rn, 1, &rn));
    ok(run(&synced, 2, &[&rn[..], &["--use-bn-sync"]].concat()));
    ok(run(&per_rank, 2, &rn));
    let (a, b, c) = (losses(&one_rn), losses(&synced), losses(&per_rank));
    assert_eq!((a.len(), b.len(), c.len()), (4, 4, 4));
    assert!((a[0].1 - b[0].1).abs() < 1e-5 * a[0].1, "ResNet --use-bn-sync, first step: one process {:?}, two {:?}", a[0], b[0]);
    assert!((a[0].1 - c[0].1).abs() > 1e-2 * a[0].1, "ResNet without --use-bn-sync, first step: one process {:?}, two {:?}", a[0], c[0]);
    for ((step, x), (_, y)) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-2 * x, "ResNet --use-bn-sync, step {step}: one process {x}, two {y}");
    }

    let checkpoint = two.join("checkpoints/step-00000004.bpk");
    let resumed = dir.join("resumed");
    ok(run(&resumed, 2, &["--resume", checkpoint.to_str().unwrap()]));
    let c = losses(&resumed);
    assert_eq!(c.iter().map(|l| l.0).collect::<Vec<_>>(), [5, 6]);
    for ((step, x), (_, y)) in b[4..].iter().zip(&c) {
        assert!((x - y).abs() < 1e-5 * x, "step {step}: {x} then {y} resumed");
    }
    let out = run(&dir.join("refused"), 1, &["--resume", checkpoint.to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("written by 2 processes"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `--grad-checkpointing` keeps one block's activations instead of all: on a deep, narrow model
/// (activations dominate) the process's peak memory drops. Mixed precision runs through the CLI.
#[test]
fn grad_checkpointing_lowers_peak_memory() {
    let dir = scratch("checkpointing");
    let deep = dir.join("deep.json");
    std::fs::write(
        &deep,
        r#"{"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 12, "width": 64, "head_width": 16, "patch_size": 8},
            "text_cfg": {"context_length": 32, "width": 64, "heads": 4, "layers": 12}}"#,
    )
    .unwrap();
    let peak = |extra: &[&str]| -> (u64, serde_json::Value) {
        let mut args = vec!["bench", "train", "--model", deep.to_str().unwrap(), "--batch", "64", "--steps", "1", "--warmup-steps", "1", "--synthetic", "--json"];
        args.extend(extra);
        let out = ok(clip_burn(&args));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (report["peak_memory_bytes"].as_u64().unwrap(), report)
    };
    let (plain, _) = peak(&[]);
    let (checkpointed, report) = peak(&["--grad-checkpointing"]);
    assert_eq!(report["grad_checkpointing"], true);
    eprintln!("peak memory: {plain} bytes plain, {checkpointed} with --grad-checkpointing");
    assert!((checkpointed as f64) < 0.75 * plain as f64, "{checkpointed} vs {plain}");
    let (_, report) = peak(&["--grad-checkpointing", "--precision", "amp_bf16"]);
    assert_eq!(report["precision"], "amp_bf16");
    let out = clip_burn(&["bench", "train", "--model", deep.to_str().unwrap(), "--synthetic", "--precision", "fp8"]);
    assert_eq!(out.status.code(), Some(2), "an unknown precision is a usage error");
}

/// Training on the device the test run names (`CLIP_TEST_DEVICE=wgpu` in scripts/test.sh: burn's
/// cubecl stack on lavapipe, the code path CUDA shares), else the CPU: a few steps, finite losses,
/// weights that load.
#[test]
fn training_runs_on_the_test_device() {
    let device = std::env::var("CLIP_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let dir = scratch(&format!("device-{device}"));
    let logs = dir.join("logs");
    let shards = format!("{}/wds/train-0000.tar", data().display());
    let args = [
        "--device", &device, "train", "--model", &model_file(&dir), "--train-data", &shards, "--train-num-samples", "200",
        "--batch-size", "8", "--steps", "3", "--warmup", "1", "--logs", logs.to_str().unwrap(),
    ];
    let kernel_cache = dir.join("kernel-cache");
    let out = Command::new(env!("CARGO_BIN_EXE_clip-burn")).args(args).env("CLIP_BURN_CACHE", &kernel_cache).output().unwrap();
    let out = ok(out);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("on {device}")));
    if device != "cpu" {
        // cubecl's autotune results and kernels persist where clip-burn points it.
        let files = walk(&kernel_cache.join("cubecl"));
        assert!(!files.is_empty(), "nothing cached under {}", kernel_cache.display());
    }
    let curve = losses(&logs);
    assert_eq!(curve.len(), 3);
    assert!(curve.iter().all(|(_, l)| l.is_finite() && *l > 0.0), "{curve:?}");
    clip_model::import::load_file(None, &logs.join("final.bpk"), &burn::tensor::Device::flex()).unwrap();

    // The same steps with per-block recomputation (and, on the CPU, mixed bf16 precision; a
    // Vulkan CPU driver has no bf16) give the same first loss: the forward pass is the same.
    let logs2 = dir.join("logs-checkpointing");
    let mut args2 = args.to_vec();
    let logs2_str = logs2.to_str().unwrap().to_string();
    *args2.last_mut().unwrap() = &logs2_str;
    args2.push("--grad-checkpointing");
    if device == "cpu" {
        args2.extend(["--precision", "amp_bf16"]);
    }
    ok(Command::new(env!("CARGO_BIN_EXE_clip-burn")).args(&args2).output().unwrap());
    let curve2 = losses(&logs2);
    assert_eq!(curve2.len(), 3);
    let tolerance = if device == "cpu" { 0.02 } else { 1e-3 };
    assert!((curve2[0].1 - curve[0].1).abs() < tolerance * curve[0].1, "{curve2:?} vs {curve:?}");
    clip_model::import::load_file(None, &logs2.join("final.bpk"), &burn::tensor::Device::flex()).unwrap();
}

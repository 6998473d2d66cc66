"""Tests of scripts/vendored.py on a scratch git repository with one vendored crate."""
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "vendored.py"

LOCK = """version = 4

[[package]]
name = "foo"
version = "0.1.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "00"

[[package]]
name = "foo"
version = "0.1.0"
dependencies = [
 "bar",
]
"""


class Vendored(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)
        crate = self.root / "vendor" / "foo"
        (crate / "src").mkdir(parents=True)
        (crate / "Cargo.toml").write_text('[package]\nname = "foo"\nversion = "0.1.0"\nedition = "2021"\n')
        (crate / "src" / "lib.rs").write_text("pub fn f() {}\n")
        (self.root / ".gitignore").write_text("target/\n")
        (self.root / "Cargo.lock").write_text(LOCK)
        subprocess.run(["git", "init", "-q"], cwd=self.root, check=True)
        subprocess.run(["git", "add", "-A"], cwd=self.root, check=True)
        self.crate = crate

    def tearDown(self):
        self.dir.cleanup()

    def run_script(self, command):
        return subprocess.run(
            [sys.executable, str(SCRIPT), command], env={**os.environ, "VENDORED_ROOT": str(self.root)},
            capture_output=True, text=True,
        )

    def version(self):
        return next(line for line in (self.crate / "Cargo.toml").read_text().splitlines() if line.startswith("version"))

    def test_stamp_check_settle(self):
        self.assertNotEqual(self.run_script("check").returncode, 0, "an unstamped crate passed the check")
        self.assertEqual(self.run_script("stamp").returncode, 0)
        stamped = self.version()
        self.assertRegex(stamped, r'^version = "0\.1\.0\+clip\.[0-9a-f]{12}"$')
        lock = (self.root / "Cargo.lock").read_text()
        # The path entry (no source line) carries the stamp; the registry entry keeps its version.
        self.assertIn('name = "foo"\nversion = "0.1.0"\nsource = "registry', lock)
        self.assertIn(f'name = "foo"\n{stamped}\ndependencies', lock)
        self.assertEqual(self.run_script("check").returncode, 0)

        # An edit, or a new file git would track, makes the stamp stale; an ignored file does not.
        lib = self.crate / "src" / "lib.rs"
        lib.write_text("pub fn f() { let _ = 1; }\n")
        failed = self.run_script("check")
        self.assertNotEqual(failed.returncode, 0)
        self.assertIn("foo", failed.stderr)
        self.assertNotEqual(self.run_script("settle").returncode, 0, "settle passed a stale stamp")
        lib.write_text("pub fn f() {}\n")
        self.assertEqual(self.run_script("check").returncode, 0, "the stamp depends on more than the content")
        (self.crate / "src" / "new.rs").write_text("\n")
        self.assertNotEqual(self.run_script("check").returncode, 0)
        (self.crate / "src" / "new.rs").unlink()
        (self.crate / "target").mkdir()
        (self.crate / "target" / "out").write_text("build output\n")
        self.assertEqual(self.run_script("check").returncode, 0)

        # Restamping the same content gives the same version; settle sets the file times.
        self.assertEqual(self.run_script("stamp").returncode, 0)
        self.assertEqual(self.version(), stamped)
        self.assertEqual(self.run_script("settle").returncode, 0)
        for f in [self.crate / "Cargo.toml", lib]:
            self.assertEqual(f.stat().st_mtime, 946684800)


if __name__ == "__main__":
    unittest.main()

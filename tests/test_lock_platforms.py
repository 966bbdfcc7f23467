"""requirements.lock resolves, at its own pins, for Linux x86-64, Linux aarch64 and macOS arm64 (uv, via the registry)."""

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
UV = Path(sys.executable).with_name("uv")
PYPI = "https://pypi.org/simple/"
CUDA_WHEEL = re.compile(r"^(nvidia-|cuda-|triton$)")
# Platform -> whether its plan has CUDA wheels: PyPI's torch is a CUDA build on Linux aarch64 too.
PLATFORMS = {"x86_64-manylinux_2_28": True, "aarch64-manylinux_2_28": True, "aarch64-apple-darwin": False}
# torch 2.14.1 has macOS wheels for 14.0 and later only; uv assumes 13.0 unless told.
MACOS_TARGET = "14.0"

pytestmark = pytest.mark.skipif(not UV.exists(), reason=f"no uv next to {sys.executable}")


def reachable(url: str) -> bool:
    """Whether url answers within a few seconds."""
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
        return True
    except OSError:
        return False


def run_uv(args: list[str]) -> subprocess.CompletedProcess:
    """Runs uv with args; output merged into stdout."""
    env = {**os.environ, "MACOSX_DEPLOYMENT_TARGET": MACOS_TARGET}
    return subprocess.run([str(UV), *args], capture_output=True, text=True, env=env, timeout=600,
                          stdin=subprocess.DEVNULL, check=False, cwd=ROOT)


def run_uv_cached(args: list[str], index: str) -> subprocess.CompletedProcess:
    """Runs uv offline first (its cache usually suffices), then online; skips when index is unreachable."""
    done = run_uv([*args, "--offline"])
    if done.returncode == 0:
        return done
    if not reachable(index):
        pytest.skip(f"{index} unreachable and uv's cache cannot resolve offline: {done.stderr.strip()[-300:]}")
    return run_uv(args)


def dry_run(platform: str, requirements: list[str], tmp_path: Path) -> list[str]:
    """Runs an install dry run for platform into an empty target; the plan's lines."""
    args = ["pip", "install", "--dry-run", "--python", sys.executable, "--target", str(tmp_path / "target"),
            "--python-platform", platform, "--python-version", "3.11", *requirements]
    index = requirements[requirements.index("--index-url") + 1] if "--index-url" in requirements else PYPI
    done = run_uv_cached(args, index)
    assert done.returncode == 0, f"uv {' '.join(args)}\n{done.stdout}{done.stderr}"
    return done.stderr.splitlines()


def planned(lines: list[str]) -> dict[str, str]:
    """Package -> version of the `+ name==version` lines of a uv plan."""
    return dict(m.groups() for m in (re.match(r"^ \+ (\S+)==(\S+)", line) for line in lines) if m)


def lock_pins(text: str) -> dict[str, str]:
    """Package -> pinned version in a lock."""
    return dict(re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", text, re.MULTILINE))


def lock_via(text: str) -> dict[str, set[str]]:
    """Package -> the packages its `# via` annotation names."""
    via, name = {}, None
    for line in text.splitlines():
        if m := re.match(r"^([A-Za-z0-9._-]+)==", line):
            name = m.group(1)
            via[name] = set()
        elif name and (m := re.match(r"^\s+#\s+(?:via\s+)?(\S+)", line)) and m.group(1) != "via":
            via[name].add(m.group(1))
    return via


@pytest.mark.parametrize("platform", PLATFORMS)
def test_lock_resolves_at_its_pins(platform, tmp_path):
    """The lock installs on platform with exactly its pins; CUDA wheels only where PyPI's torch needs them."""
    plan = planned(dry_run(platform, ["-r", str(LOCK)], tmp_path))
    pins = lock_pins(LOCK.read_text())
    assert plan["torch"] == pins["torch"] and plan["torchvision"] == pins["torchvision"]
    assert {name: v for name, v in plan.items() if pins.get(name) != v} == {}, "plan differs from the lock's pins"
    assert any(CUDA_WHEEL.match(name) for name in plan) == PLATFORMS[platform]


def cpu_lock(tmp_path: Path) -> str:
    """The lock `make install TORCH=cpu` syncs, made by the Makefile's own rule."""
    path = tmp_path / "requirements-cpu.lock"
    subprocess.run(["make", "-s", "-C", str(ROOT), f"CPU_LOCK={path}", str(path)], check=True,
                   capture_output=True, timeout=60)
    return path.read_text()


def test_cpu_lock_drops_only_what_torch_needs(tmp_path):
    """TORCH=cpu drops the CUDA wheels and torch/torchvision, and nothing another locked package needs."""
    full, cpu = LOCK.read_text(), cpu_lock(tmp_path)
    dropped = set(lock_pins(full)) - set(lock_pins(cpu))
    assert {name for name in dropped if not CUDA_WHEEL.match(name)} == {"torch", "torchvision"}
    needed_elsewhere = {name: via - dropped for name, via in lock_via(full).items()
                        if name in dropped - {"torch", "torchvision"} and via - dropped}
    assert needed_elsewhere == {}


def test_cpu_index_has_the_locked_torch(tmp_path):
    """The PyTorch CPU index serves the locked torch and torchvision for Linux x86-64 (TORCH=cpu)."""
    index = re.search(r"^TORCH_CPU_INDEX\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    pins = lock_pins(LOCK.read_text())
    wanted = [f"{name}=={pins[name]}" for name in ("torch", "torchvision")]
    plan = planned(dry_run("x86_64-manylinux_2_28", ["--no-deps", "--index-url", index, *wanted], tmp_path))
    assert {name: v.split("+")[0] for name, v in plan.items()} == {"torch": pins["torch"],
                                                                   "torchvision": pins["torchvision"]}

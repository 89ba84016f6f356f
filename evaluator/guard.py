"""The worker's runtime guard: a PEP 578 audit hook armed after the worker's setup, before candidate code loads.

The static screen refuses most escapes by reading the source; this is the layer under it, for
candidate code that got past the screen. After `arm`, the interpreter refuses (PermissionError
"archlab runtime guard: ...") what no evaluation needs: writing or creating files, reading files
outside the Python installation, the project and the candidate, sockets, processes, signals to
other processes, ctypes, frame and interpreter introspection, tracing and new audit hooks. New
code objects (exec/compile/marshal) and imports outside the candidate's allowlist are refused
while untrusted code is on the stack: the candidate file, or code it generated. Code generation
by a few stdlib modules (dataclasses, collections.namedtuple, typing) stays allowed, as do
imports made by torch and the stdlib themselves (torch imports lazily).

The hook's state lives in its closure; there is no switch to turn it off. Audit hooks cannot
see everything: in Python 3.11 setting an attribute of a class (`torch.Tensor.argmax = ...`) or
of a module, `os.write` on an open descriptor, an import of a module already loaded and starting
a thread raise no event. The worker covers those with `integrity` (checked after every forward
of the backbone), a sealed result and `os._exit`.

The compile profile (`CompileProfile`, only when the worker compiles the model with torch.compile)
relaxes these, each only while every frame on the stack is trusted code (the candidate's own
frames never are): starting a process whose executable resolves to one of the compilers resolved
before arming (never a shell, never the interpreter), forking this process (inductor's pool of
compile workers: a forked child keeps this hook, the seccomp filter and the limits), file changes
and writes under the compile cache directory inside the work directory (and opening /dev/null, where
compilers' output goes), setting a cache variable to a path in the cache or any variable to the value
it already has, killing a compiler it started (the compile deadline interrupts it), and trusting the
Python code inductor generates there (it is written only by trusted code, under the same rule).
Everything else stays refused.
"""
from __future__ import annotations

import os
import sys
import sysconfig
import threading
from types import FrameType
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TypeVar

PREFIX = "archlab runtime guard"
T = TypeVar("T")

# Refused after arming, whoever asks: nothing the harness does after arming needs them.
ALWAYS_REFUSED: dict[str, str] = {
    "subprocess.Popen": "a candidate may not start processes",
    "os.system": "a candidate may not start processes",
    "os.exec": "a candidate may not start processes",
    "os.posix_spawn": "a candidate may not start processes",
    "os.spawn": "a candidate may not start processes",
    "os.fork": "a candidate may not start processes",
    "os.forkpty": "a candidate may not start processes",
    "pty.spawn": "a candidate may not start processes",
    "os.killpg": "a candidate may not signal other processes",
    "sys.addaudithook": "the guard's audit hook is the only one",
    "sys.settrace": "tracing reaches every frame of the harness",
    "sys.setprofile": "profiling hooks reach every frame of the harness",
    "sys._current_frames": "frames of other threads reach the harness's locals",
    "sys._current_exceptions": "exceptions of other threads reach the harness's frames",
    "gc.get_objects": "the garbage collector's lists reach every object of the harness",
    "gc.get_referrers": "the garbage collector's lists reach every object of the harness",
    "gc.get_referents": "the garbage collector's lists reach every object of the harness",
    "mmap.__new__": "memory maps reach files and raw memory",
    "builtins.input": "nothing answers inside the sandbox",
    "builtins.breakpoint": "nothing answers inside the sandbox",
    "resource.setrlimit": "limits belong to the sandbox",
    "resource.prlimit": "limits belong to the sandbox",
}
ALWAYS_REFUSED_PREFIXES: dict[str, str] = {
    "socket.": "a candidate may not open network connections",
    "ctypes.": "ctypes reaches raw memory and native code",
    "shutil.": "a candidate may not change files",
}
FILE_CHANGES = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod",
                          "os.chown", "os.utime", "os.chdir", "os.chflags", "os.mkfifo", "os.mknod", "os.setxattr",
                          "os.removexattr", "os.putenv", "os.unsetenv", "os.add_dll_directory"})
# Refused while untrusted code is on the stack (the harness itself may still do them).
REFUSED_FROM_CANDIDATE: dict[str, str] = {
    "sys._getframe": "frames reach the harness's locals",
    "object.__getattr__": "frames reach the harness's locals",
    "function.__new__": "it builds functions from code the screen never saw",
    "code.__new__": "it builds code objects the screen never saw",
    "os.truncate": "a candidate may not change files",
    "os.listdir": "a candidate may not list directories",
    "os.scandir": "a candidate may not list directories",
    "glob.glob": "a candidate may not list directories",
    "pickle.find_class": "unpickling runs arbitrary callables",
}
NEW_CODE = frozenset({"compile", "exec", "marshal.loads", "marshal.load"})
# Modules whose own calls may generate code, read a frame's module name or a generated function's
# attributes for a candidate: what they build is fixed by them, not by the candidate.
CODE_GENERATORS = frozenset({"dataclasses", "collections", "typing", "enum"})
IMPORT_MACHINERY = ("importlib", "<frozen importlib")
# Audited attributes that lead to no frame (inspect.signature reads them): the rest are frames.
HARMLESS_ATTRIBUTES = frozenset({"__code__", "__defaults__", "__kwdefaults__", "gi_code", "cr_code", "ag_code"})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class GuardRefusal(PermissionError):
    """Raised inside the candidate's call; `describe_failure` turns it into a reason with the line."""


@dataclass(frozen=True)
class CompileProfile:
    """What torch.compile needs after arming: its cache directory and the compilers it may run (real paths)."""

    cache_dir: Path
    executables: frozenset[str]


@dataclass(frozen=True)
class GuardStatus:
    active: bool
    detail: str


def trusted_roots() -> tuple[str, ...]:
    """Directories whose Python files are trusted code: the installation, site-packages and the harness."""
    paths = sysconfig.get_paths()
    project = Path(__file__).resolve().parent.parent
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots |= {str(project / "evaluator"), str(project / "sandbox")}
    real = {os.path.realpath(r) for r in roots}
    return tuple(sorted(r + os.sep for r in real if r != os.sep))  # never the whole file system


def arm(candidate: Path, allowed_imports: Iterable[str], readable: Iterable[Path] = (),
        then: Callable[[], T] = lambda: None, compile_profile: CompileProfile | None = None) -> tuple[GuardStatus, T]:
    """Install the audit hook for the rest of this process; irreversible by design.

    `then` runs right after, with the harness's own calls still unrestricted (the seccomp filter is
    loaded through ctypes and verifies itself with a socket); its value is returned.
    `compile_profile` allows what torch.compile needs (see the module's docstring), nothing more.
    """
    candidate_file = os.path.realpath(candidate)
    cache = os.path.realpath(compile_profile.cache_dir) + os.sep if compile_profile else None
    code_roots = trusted_roots() + ((cache,) if cache else ())
    project = str(Path(__file__).resolve().parent.parent)
    read_roots = code_roots + tuple(os.path.realpath(p) + os.sep for p in (project, *readable)
                                    if os.path.realpath(p) != os.sep)
    allowed = frozenset(allowed_imports)
    armer = _frames(sys._getframe(1))  # the frames that armed the guard are the harness, whatever their file
    armer_ids = frozenset(id(f) for f in armer)  # `armer` keeps them alive, so their ids stay theirs
    getframe, get_ident = sys._getframe, threading.get_ident
    inside: set[int] = set()          # threads now inside the hook: its own sys._getframe must pass
    trust: dict[str, bool] = {}       # co_filename -> trusted, cached
    setting_up = [True]               # only ever goes from True to False
    # Compiling, code torch generates from strings ("<string>", "<eval_with_key>.N") is trusted: after arming only
    # trusted code may compile strings, and the code generators a candidate may use run its own frames beside it.
    generated = ("<frozen ", "<") if compile_profile else ("<frozen ",)

    def trusted_file(filename: str) -> bool:
        known = trust.get(filename)
        if known is None:
            real = os.path.realpath(filename) if filename.startswith(os.sep) else filename
            known = filename.startswith(generated) or (real != candidate_file and real.startswith(code_roots))
            trust[filename] = known
        return known

    def stack() -> list[tuple[str, str, bool]]:
        """(module name, file name, trusted) of each Python frame, innermost first, the hook's own excluded."""
        frames, frame = [], getframe(1)
        while frame is not None and frame.f_code in hook_codes:  # the hook's own frames
            frame = frame.f_back
        while frame is not None:
            filename = frame.f_code.co_filename
            frames.append((frame.f_globals.get("__name__", ""), filename,
                           id(frame) in armer_ids or trusted_file(filename)))
            frame = frame.f_back
        return frames

    def refuse(event: str, why: str) -> None:
        raise GuardRefusal(f"{PREFIX}: {event} is refused: {why}")

    def check(event: str, args: tuple) -> None:
        if setting_up[0] and _all_trusted(stack()):
            return
        if compile_profile is not None and _compiler_may(event, args, compile_profile, cache):
            untrusted = [filename for _, filename, trusted in stack() if not trusted]
            if not untrusted:
                return
            # Refused below as without the profile; the reason names the frames that kept the profile from applying.
            check_without_profile(event, args, lambda what, why: refuse(
                what, f"{why} (the compile profile allows it only with trusted code on the stack; untrusted: "
                f"{', '.join(dict.fromkeys(untrusted))})"))
            return
        if compile_profile is not None and event in PROCESS_EVENTS:
            refuse(f"{event}({_show(args[:1])})", "the compile profile runs only the compilers found when the guard "
                   "was armed: " + ", ".join(sorted(compile_profile.executables)))
        check_without_profile(event, args, refuse)

    def check_without_profile(event: str, args: tuple, refuse: Callable[[str, str], None]) -> None:
        if event in ALWAYS_REFUSED:
            refuse(event, ALWAYS_REFUSED[event])
        if event in FILE_CHANGES:
            refuse(f"{event}({_show(args[:1])})", "a candidate may not change files or the environment")
        for prefix, why in ALWAYS_REFUSED_PREFIXES.items():
            if event.startswith(prefix):
                refuse(event, why)
        if event == "open":
            _check_open(args, read_roots, candidate_file, refuse)
        elif event == "os.kill" and args[0] != os.getpid():  # os.getpid: a forked compile worker is itself
            refuse(f"os.kill({args[0]}, {args[1]})", "a candidate may not signal other processes")
        elif event in REFUSED_FROM_CANDIDATE or event in NEW_CODE or event == "import":
            frames = stack()
            if _all_trusted(frames):
                return
            caller = frames[0][0] if frames else ""
            if event == "import":
                _check_import(args[0], frames, allowed, refuse)
            elif event in NEW_CODE:
                if caller.startswith(IMPORT_MACHINERY) or caller.split(".")[0] in CODE_GENERATORS:
                    return
                refuse(event, "candidate code may not compile or run code the screen never saw; "
                       "write it in the candidate file")
            elif event in ("sys._getframe", "object.__getattr__") and caller.split(".")[0] in CODE_GENERATORS:
                return
            elif event == "object.__getattr__" and args[1] in HARMLESS_ATTRIBUTES:
                return
            else:
                what = f"{event}({_show(args[1:2])})" if event == "object.__getattr__" else event
                refuse(what, REFUSED_FROM_CANDIDATE[event])

    def hook(event: str, args: tuple) -> None:
        me = get_ident()
        if me in inside:
            return
        inside.add(me)
        try:
            check(event, args)
        finally:
            inside.discard(me)

    hook_codes = frozenset(f.__code__ for f in (check, check_without_profile, hook))
    sys.addaudithook(hook)
    try:
        after = then()
    finally:
        setting_up[0] = False
    detail = f"audit hook armed: reads under {len(read_roots)} roots, no writes"
    if compile_profile is not None:
        detail += (f"; compile profile: trusted code may run {len(compile_profile.executables)} compilers and write "
                   f"under {compile_profile.cache_dir}")
    return GuardStatus(True, detail), after


CACHE_VARIABLES = frozenset({"TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"})
INDUCTOR_VARIABLES = frozenset({"_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR"})
PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn"})
CACHE_CHANGES = frozenset({"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod", "os.utime", "os.link",
                           "os.symlink", "open", "shutil.copyfile", "shutil.copymode", "shutil.rmtree"})


def _compiler_may(event: str, args: tuple, profile: CompileProfile, cache: str) -> bool:
    """Whether the compile profile allows this event, provided only trusted code is on the stack."""
    if event in PROCESS_EVENTS:
        executable, env = args[0], (args[3] if event == "subprocess.Popen" else args[2])
        return _resolved(executable, env) in profile.executables
    if event == "os.fork":  # inductor's compile workers; the child inherits this hook and the seccomp filter
        return True
    if event == "os.putenv":  # inductor re-sets its cache variables and passes a pointer to its extensions;
        key, value = (os.fsdecode(a) for a in args[:2])  # a compile worker re-sets what the worker passes it
        return ((key in CACHE_VARIABLES and _under(value, cache)) or key in INDUCTOR_VARIABLES
                or os.environ.get(key) == value)
    if event == "open" and isinstance(args[0], int):  # a compiler's output pipe, or a file mkstemp made in the cache
        target = _descriptor_path(args[0])
        return target.startswith("pipe:") or _under(target, cache)
    if event == "os.kill":  # the compile deadline interrupts subprocess.run, which then kills the compiler it started
        return _is_child(args[0])
    if event == "open" and args[0] in (os.devnull, os.fsencode(os.devnull)):  # a compiler's output, thrown away
        return True
    if event in CACHE_CHANGES:
        paths = [a for a in (args[:2] if event in ("os.rename", "os.link", "os.symlink", "shutil.copyfile")
                             else args[:1]) if isinstance(a, (str, bytes, os.PathLike))]
        return bool(paths) and all(_under(os.fsdecode(p), cache) for p in paths)
    return False


def _is_child(pid: object) -> bool:
    """Whether `pid` is a process this one started (its parent, field 4 of /proc/PID/stat, is this process)."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError, TypeError):
        return False


def _under(path: str, directory: str) -> bool:
    return bool(path) and (os.path.realpath(path) + os.sep).startswith(directory)


def _descriptor_path(descriptor: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:
        return ""


def _resolved(executable: object, env: object) -> str:
    """The real path a process start would run: absolute paths as they are, bare names through PATH."""
    if not isinstance(executable, (str, bytes, os.PathLike)):
        return ""
    name = os.fsdecode(executable)
    if os.sep not in name:
        path = (env or {}).get("PATH") if isinstance(env, dict) else None
        found = _which(name, path or os.environ.get("PATH", os.defpath))
        if found is None:
            return ""
        name = found
    return os.path.realpath(name)


def _which(name: str, path: str) -> str | None:
    """shutil.which without importing shutil into the hook (its own calls would be audited)."""
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _all_trusted(frames: list[tuple[str, str, bool]]) -> bool:
    return all(trusted for _, _, trusted in frames)


def _check_open(args: tuple, read_roots: tuple[str, ...], candidate_file: str, refuse: Callable) -> None:
    path, mode, flags = (tuple(args) + (None, None))[:3]
    if not isinstance(path, (str, bytes, os.PathLike)):
        refuse(f"open({path!r})", "a candidate may not open file descriptors")
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
    if writing:
        refuse(f"open({_show((path,))}, {mode or flags!r})", "nothing may write files while a candidate is loaded")
    real = os.path.realpath(os.fsdecode(path))
    if real != candidate_file and not (real + os.sep).startswith(read_roots) and not real.startswith(read_roots):
        refuse(f"open({_show((path,))})", "a candidate may read only the Python installation, the project "
               "and its own file")


def _check_import(name: str, frames: list[tuple[str, str, bool]], allowed: frozenset[str],
                  refuse: Callable) -> None:
    """Allowed: the candidate's allowlist, or an import made by trusted code (torch's lazy imports)."""
    if name.split(".")[0] in allowed:
        return
    importer = next((trusted for module, filename, trusted in frames
                     if not module.startswith(IMPORT_MACHINERY) and not filename.startswith("<frozen importlib")),
                    False)
    if importer:
        return
    refuse(f"import of {name!r}", f"candidates may import only {', '.join(sorted(allowed))}")


def _frames(frame: FrameType | None) -> tuple[FrameType, ...]:
    found = []
    while frame is not None:
        found.append(frame)
        frame = frame.f_back
    return tuple(found)


def _show(args: tuple) -> str:
    return ", ".join(repr(a)[:120] for a in args)

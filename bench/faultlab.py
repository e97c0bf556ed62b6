"""A fault lab: PostgreSQL and actsearch workers on separate hosts of this machine, and the
faults of a real cluster injected one scenario at a time.

Hosts are Linux network namespaces (each worker also gets its own UTS namespace, so its
hostname, and with it its trials' ``worker`` attribute, is its own: a worker's trial is found
lost by its heartbeat, as on a real cluster, not by its pid). A router namespace joins the
database's host and each worker's host by veth links on 10.213.0.0/16, addresses that exist
only inside these namespaces. A cut drops a worker's packets in the router without a word
(policy-routing blackhole rules, both directions), as a real partition does: nothing resets
the connection, so a client without timeouts would wait in a read for ever. The lab reaches
the server itself through its Unix socket, outside every network.

Everything the lab makes (namespaces, links, the server, the workers) is removed by
``Lab.close()``, which ``with Lab(...)`` calls, and which also runs at exit for a lab still
open. Used by ``bench/faults.py`` (a table of every scenario) and ``tests/test_faults.py``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from workers import SPACE as WORKERS_SPACE  # noqa: E402 (bench/workers.py, beside this file)

from actsearch.engine.record import FINISHED, TrialRecord  # noqa: E402
from actsearch.engine.storage import make_storage  # noqa: E402
from actsearch.engine.study import open_study  # noqa: E402
from actsearch.schema.space import parse_space  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

# bench/workers.py's tiny synthetic space with longer trials (about 1.5 s each on a 2-core
# CPU, 1.1 s of it training): long enough to be cut off half a second into a trial, short
# enough that a scenario of 8 trials on two workers takes well under a minute.
SPACE = {**WORKERS_SPACE, "name": "faultlab", "description": "synthetic space for the fault lab",
         "data": {"name": "synthetic", "samples": 4000},
         "train": {**WORKERS_SPACE["train"], "epochs": 80}, "budget": {"trials": 8}}


@dataclass(frozen=True)
class Timing:
    """The workers' fault settings: short, so that every scenario runs in well under a minute.

    ``grace`` leaves room for a cut shorter than it (``short_cut``) plus a dead link's
    ``storage_timeout`` plus a heartbeat interval, so the short cut never fails a trial.
    """

    heartbeat: int = 1
    grace: int = 10
    storage_timeout: float = 2.0
    patience: float = 120.0
    short_cut: float = 4.0


class LabError(RuntimeError):
    """The lab cannot be built here (not root, no ip, no PostgreSQL); says what is missing."""


def missing() -> str | None:
    """Why this machine cannot host the lab, or None when it can."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "runuser", "bash"):
        if shutil.which(tool) is None:
            return f"no {tool!r} on PATH (iproute2 / util-linux)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "no PostgreSQL driver: pip install 'actsearch[postgres]'"
    return None


_OPEN: set[Lab] = set()  # labs not yet closed, closed at exit
_LAB_NUMBERS = itertools.count()


@atexit.register
def _close_open_labs() -> None:
    for lab in list(_OPEN):
        lab.close()


def _run(*argv: str, check: bool = True, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {done.returncode}: "
                       f"{(done.stderr or done.stdout).strip()[-400:]}")
    return done


def _end(procs: list[subprocess.Popen[bytes]]) -> None:
    """Kill the processes still running (a stopped one is continued first, so it can end)."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)


class Lab:
    """A database host, a router and ``workers`` worker hosts, with a PostgreSQL server.

    Args:
        workers: Worker hosts (each runs one ``actsearch worker`` per scenario).
        timing: Heartbeats, grace period and storage timeouts of the workers.
    """

    def __init__(self, workers: int = 2, timing: Timing = Timing()) -> None:
        self.workers, self.timing = workers, timing
        # Unique per lab (a process may hold two); short: a link's name has 15 characters.
        tag = f"asf{os.getpid() % 100000}{next(_LAB_NUMBERS)}"
        self.tag = tag
        self.db_ns, self.router_ns = f"{tag}-db", f"{tag}-rt"
        self.worker_ns = [f"{tag}-w{i}" for i in range(workers)]
        self.hosts = [f"{tag}-host{i}" for i in range(workers)]  # the workers' hostnames
        self.db_ip = "10.213.0.2"
        self.dir = Path()  # made by start()
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.cuts: set[int] = set()
        self.url = self.admin_url = ""
        self._server_up = False

    # --- building and removing ----------------------------------------------------------

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Make the hosts and links, start PostgreSQL on the database host."""
        why = missing()
        if why is not None:
            raise LabError(why)
        _OPEN.add(self)
        self.dir = Path(tempfile.mkdtemp(prefix="actsearch-faultlab-"))
        os.chmod(self.dir, 0o755)  # the server runs as the postgres user
        try:
            self._network()
            self._server()
        except BaseException:
            self.close()
            raise

    def _network(self) -> None:
        for ns in (self.db_ns, self.router_ns, *self.worker_ns):
            _run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "netns", "exec", self.router_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # Link k joins host ns to the router on 10.213.k.0/24: .1 the router, .2 the host.
        for k, ns in enumerate((self.db_ns, *self.worker_ns)):
            host_end, router_end = f"{self.tag}h{k}", f"{self.tag}r{k}"
            _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", router_end)
            _run("ip", "link", "set", host_end, "netns", ns)
            _run("ip", "link", "set", router_end, "netns", self.router_ns)
            _run("ip", "-n", ns, "addr", "add", f"10.213.{k}.2/24", "dev", host_end)
            _run("ip", "-n", self.router_ns, "addr", "add", f"10.213.{k}.1/24", "dev",
                 router_end)
            _run("ip", "-n", ns, "link", "set", host_end, "up")
            _run("ip", "-n", self.router_ns, "link", "set", router_end, "up")
            _run("ip", "-n", ns, "route", "add", "default", "via", f"10.213.{k}.1")

    def _server(self) -> None:
        env = {**os.environ, "PG_LISTEN": self.db_ip, "PG_ALLOW": "10.213.0.0/16"}
        started = _run("ip", "netns", "exec", self.db_ns, "bash",
                       str(REPO / ".ci" / "postgres.sh"), "start", str(self.dir / "pg"),
                       env=env, timeout=300)
        self._server_up = True
        self.url = started.stdout.strip().splitlines()[-1]
        port = self.url.rsplit(":", 1)[1].split("/", 1)[0]
        password = self.url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        # The lab's own view of the study: the Unix socket, which no cut or link reaches.
        self.admin_url = (f"postgresql://postgres:{password}@/actsearch"
                          f"?host={self.dir / 'pg'}&port={port}")

    def close(self) -> None:
        """Remove everything the lab made: workers, the server, namespaces and links."""
        _end(self.procs)
        if self._server_up:
            self.stop_db()
        self._kill_server_leftovers()
        for ns in reversed(self.namespaces):  # its veth ends go with it
            _run("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()
        if self.dir != Path():
            shutil.rmtree(self.dir, ignore_errors=True)
        _OPEN.discard(self)

    def _kill_server_leftovers(self) -> None:
        """The postmaster, if ``pg_ctl stop`` could not end it (its pid from its pid file)."""
        pidfile = self.dir / "pg" / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError, ProcessLookupError):
            os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGKILL)

    # --- faults ---------------------------------------------------------------------------

    def cut(self, worker: int) -> None:
        """Drop every packet between worker host ``worker`` and the rest, silently."""
        self._blackhole("add", worker)
        self.cuts.add(worker)

    def heal(self, worker: int) -> None:
        """Undo ``cut``."""
        self._blackhole("del", worker)
        self.cuts.discard(worker)

    def _blackhole(self, action: str, worker: int) -> None:
        # The router's policy rules, both ways: a dropped packet gets no answer (no ICMP, no
        # reset), as in a real partition.
        for direction in ("from", "to"):
            _run("ip", "netns", "exec", self.router_ns, "ip", "rule", action, direction,
                 f"10.213.{worker + 1}.2", "blackhole")

    def stop_db(self) -> None:
        """Stop PostgreSQL (fast: open sessions are ended, as in a restart or failover)."""
        _run("bash", str(REPO / ".ci" / "postgres.sh"), "stop", str(self.dir / "pg"),
             check=False)
        self._server_up = False

    def start_db(self) -> None:
        """Start the stopped server again, in its namespace, as it was."""
        _run("ip", "netns", "exec", self.db_ns, "bash", str(REPO / ".ci" / "postgres.sh"),
             "up", str(self.dir / "pg"))
        self._server_up = True

    # --- workers --------------------------------------------------------------------------

    def start_worker(self, index: int, study: str, trials: int, log: Path,
                     patience: float | None = None) -> subprocess.Popen[bytes]:
        """``actsearch worker`` on worker host ``index`` (its own hostname), output to ``log``;
        ``patience`` replaces the timing's.

        The process is the worker itself (each wrapper execs the next), so its pid is the one
        in its trials' ``worker`` attribute and the one signals reach.
        """
        t = self.timing
        patience = t.patience if patience is None else patience
        argv = ["ip", "netns", "exec", self.worker_ns[index],
                "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.hosts[index],
                sys.executable, "-m", "actsearch", "worker", "--storage", self.url,
                "--study", study, "--trials", str(trials), "--device", "cpu", "--threads", "1",
                "--worker-index", str(index), "--heartbeat-interval", str(t.heartbeat),
                "--grace-period", str(t.grace), "--storage-timeout", str(t.storage_timeout),
                "--storage-patience", str(patience)]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=self.dir)
        self.procs.append(proc)
        return proc

    def new_study(self, name: str) -> optuna.Study:
        """A new study of ``SPACE``, through the lab's own view of the server (its Unix
        socket, which no cut reaches)."""
        t = self.timing
        storage = make_storage(self.admin_url, heartbeat_interval=t.heartbeat,
                               grace_period=t.grace, timeout=t.storage_timeout,
                               patience=t.patience)
        study, _ = open_study(parse_space(SPACE, "faultlab"), name, storage)
        return study


# --- scenarios ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one scenario left in its study, and whatever broke a promise (``problems``)."""

    scenario: str
    asked: int
    finished: int = 0
    rerun: int = 0  # trials running when the fault hit that failed and were run again
    lost: int = 0
    duplicated: int = 0
    left: int = 0  # trials left RUNNING or WAITING (counted as lost too)
    exits: list[int] = field(default_factory=list)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)

    def row(self) -> list[str]:
        exits = " ".join("killed" if c == -signal.SIGKILL else str(c) for c in self.exits)
        return [self.scenario, str(self.asked), str(self.finished), str(self.rerun),
                str(self.lost), str(self.duplicated), str(self.left), exits,
                f"{self.seconds:.0f} s"]


HEADER = ["scenario", "asked", "finished", "failed and rerun", "lost", "duplicated",
          "left running", "worker exits", "wall time"]


@dataclass(frozen=True)
class Scenario:
    """A fault, hitting worker 0 while it runs a trial.

    ``inject(lab, study, hit, worker0)`` makes the fault and undoes it. ``rerun``: whether the
    trials it hits must be failed and run again (True), must finish where they ran (False),
    or either (None). ``lines``: what worker 0's output must say.
    """

    name: str
    what: str
    inject: Callable[[Lab, Any, list[int], subprocess.Popen[bytes]], None]
    rerun: bool | None
    lines: tuple[str, ...] = ()
    killed: bool = False  # worker 0 ends by the fault itself
    hits_all: bool = False  # the fault hits every running trial, not only worker 0's


def _past_grace(lab: Lab, study: Any, hit: list[int], undo: Callable[[], None]) -> None:
    """Undo the fault once the storage holds the trials ``hit`` as failed (another worker's
    heartbeat check failed them, after the grace period), and a second more."""
    deadline = time.monotonic() + 6 * lab.timing.grace
    while time.monotonic() < deadline:
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        if all(states.get(n) == TrialState.FAIL for n in hit):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    undo()


def _long_cut(lab: Lab, study: Any, hit: list[int],
              worker0: subprocess.Popen[bytes]) -> None:
    lab.cut(0)
    _past_grace(lab, study, hit, lambda: lab.heal(0))


def _short_cut(lab: Lab, study: Any, hit: list[int],
               worker0: subprocess.Popen[bytes]) -> None:
    lab.cut(0)
    time.sleep(lab.timing.short_cut)
    lab.heal(0)


def _restart(lab: Lab, study: Any, hit: list[int],
             worker0: subprocess.Popen[bytes]) -> None:
    lab.stop_db()
    time.sleep(2.0)
    lab.start_db()


def _kill(lab: Lab, study: Any, hit: list[int],
          worker0: subprocess.Popen[bytes]) -> None:
    worker0.kill()


def _stop(lab: Lab, study: Any, hit: list[int],
          worker0: subprocess.Popen[bytes]) -> None:
    worker0.send_signal(signal.SIGSTOP)
    _past_grace(lab, study, hit, lambda: worker0.send_signal(signal.SIGCONT))


DROPPED = "dropping this worker's result"
OUTAGE = "unreachable, retrying for up to"
BACK = "reachable again after"

SCENARIOS = [
    Scenario("cut past grace", "worker 0's host cut off mid-trial until its trial is failed "
             "elsewhere, then reconnected", _long_cut, True, (OUTAGE, BACK, DROPPED)),
    Scenario("cut within grace", "worker 0's host cut off mid-trial for less than the grace "
             "period", _short_cut, False),
    Scenario("database restart", "PostgreSQL stopped mid-trial and started again 2 s later",
             _restart, None, (OUTAGE, BACK), hits_all=True),
    Scenario("SIGKILL", "worker 0 killed mid-trial", _kill, True, killed=True),
    Scenario("SIGSTOP past grace", "worker 0 stopped mid-trial until its trial is failed "
             "elsewhere, then continued", _stop, True, (DROPPED,)),
]


def wait_mid_trial(study: Any, lab: Lab, proc: subprocess.Popen[bytes],
                   seconds: float = 180) -> list[int]:
    """Wait until worker 0 is half a second into a trial; that trial's number."""
    owner = f"{lab.hosts[0]}:{proc.pid}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"worker 0 exited ({proc.returncode}) before the fault")
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if (t.user_attrs.get("worker") == owner and t.datetime_start is not None
                    and time.time() - t.datetime_start.timestamp() > 0.5):
                return [t.number]
        time.sleep(0.1)
    raise LabError(f"worker 0 ran no trial within {seconds:.0f} s")


def run_scenario(lab: Lab, scenario: Scenario, trials: int = 8, run: int = 0) -> Outcome:
    """Run one scenario on a fresh study of ``trials`` trials; check what it left."""
    name = f"{scenario.name.replace(' ', '-')}-{os.getpid()}-{run}"
    study = lab.new_study(name)
    outcome = Outcome(scenario.name, trials)
    logs = [lab.dir / f"{name}-w{i}.log" for i in range(lab.workers)]
    start = time.monotonic()
    procs = [lab.start_worker(i, name, trials, logs[i]) for i in range(lab.workers)]
    try:
        hit = wait_mid_trial(study, lab, procs[0])
        if scenario.hits_all:
            hit = [t.number for t in study.get_trials(deepcopy=False,
                                                      states=(TrialState.RUNNING,))]
        scenario.inject(lab, study, hit, procs[0])
        for proc in procs:
            try:
                proc.wait(timeout=240)
            except subprocess.TimeoutExpired:
                outcome.problems.append(f"a worker did not end within 240 s (pid {proc.pid})")
    finally:  # a scenario that broke leaves nothing running into the next one
        for worker in list(lab.cuts):
            lab.heal(worker)
        _end(procs)
    outcome.seconds = time.monotonic() - start
    outcome.exits = [p.returncode for p in procs]
    outcome.logs = {f"worker {i}": log.read_text(errors="replace") for i, log in
                    enumerate(logs)}
    _check(outcome, scenario, study, hit)
    return outcome


@dataclass(frozen=True)
class Tally:
    """What a study holds against the trials asked of it (bench/workers.py counts so too)."""

    finished: int
    left: list[int]  # trials left RUNNING or WAITING
    lost: int  # asked trials missing, plus those left
    duplicated: int  # a trial number twice, plus each extra finish of one retry chain
    root: dict[int, int]  # each trial's retry chain: the number of the first failed trial
    chains: dict[int, list[int]]  # a chain's finished trials, by its root


def tally(trials: list[Any], asked: int) -> Tally:
    """Count finished, left, lost and duplicated trials; a retry chain is a failed trial and
    its reruns, each naming the one it retries (``failed_trial``, as Optuna links them)."""
    finished = sum(t.state in FINISHED for t in trials)
    left = [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    numbers = [t.number for t in trials]
    root: dict[int, int] = {}
    for t in sorted(trials, key=lambda t: t.number):
        parent = t.system_attrs.get("failed_trial")
        root[t.number] = root.get(parent, parent) if parent is not None else t.number
    chains: dict[int, list[int]] = {}
    for t in trials:
        if t.state in FINISHED:
            chains.setdefault(root[t.number], []).append(t.number)
    duplicated = (len(numbers) - len(set(numbers))
                  + sum(len(n) - 1 for n in chains.values()))
    return Tally(finished, left, max(0, asked - finished) + len(left), duplicated, root, chains)


def _check(outcome: Outcome, scenario: Scenario, study: Any, hit: list[int]) -> None:
    """Count finished, rerun, lost and duplicated trials; list every broken promise."""
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    problems = outcome.problems
    counts = tally(trials, outcome.asked)
    outcome.finished, outcome.left = counts.finished, len(counts.left)
    outcome.duplicated, lost = counts.duplicated, counts.lost
    root, chains = counts.root, counts.chains
    if outcome.finished != outcome.asked:
        problems.append(f"{outcome.finished} finished trials, asked {outcome.asked}")
    if counts.left:
        problems.append(f"trials left RUNNING or WAITING: {counts.left}")
    doubled = {r: n for r, n in chains.items() if len(n) > 1}
    if doubled:
        problems.append(f"retry chains finished more than once: {doubled}")
    retried = {t.system_attrs.get("failed_trial") for t in trials}
    for number in hit:
        t = by_number[number]
        if t.state in FINISHED:
            if scenario.rerun is True:
                problems.append(f"trial {number} finished where the fault hit it; expected it "
                                f"failed and rerun")
            continue
        if t.state != TrialState.FAIL:
            continue  # counted as left above
        # The reason: its error attr, or (failed by the heartbeat check, which writes none)
        # "no heartbeat", as the report counts it: a FAIL that was retried.
        if not (TrialRecord.from_frozen(t).error or number in retried):
            problems.append(f"trial {number} failed without a reason")
        rerun = [n for n in chains.get(root[number], []) if n > number]
        if not rerun:
            lost += 1
            problems.append(f"trial {number} failed and was not run again to the end")
            continue
        outcome.rerun += 1
        if scenario.rerun is False:
            problems.append(f"trial {number} failed although the fault was shorter than the "
                            f"grace period")
    outcome.lost = lost
    for i, code in enumerate(outcome.exits):
        if i == 0 and scenario.killed:
            continue
        if code != 0:
            problems.append(f"worker {i} exited {code}")
    for i, text in enumerate(outcome.logs.values()):
        if "Traceback" in text:
            problems.append(f"worker {i} printed a traceback")
    said = outcome.logs["worker 0"]
    for line in scenario.lines:
        if line not in said:
            problems.append(f"worker 0 never said {line!r}")
    if DROPPED in scenario.lines and said.count(DROPPED) != len(hit):
        problems.append(f"worker 0 said {DROPPED!r} {said.count(DROPPED)} times, expected "
                        f"{len(hit)}")


def run_all(scenarios: list[Scenario] | None = None, trials: int = 8, workers: int = 2,
            timing: Timing = Timing(), each: Callable[[Outcome], None] | None = None
            ) -> list[Outcome]:
    """Every scenario (default ``SCENARIOS``) in one lab; ``each`` sees each outcome."""
    outcomes = []
    with Lab(workers, timing) as lab:
        for run, scenario in enumerate(scenarios or SCENARIOS):
            outcome = run_scenario(lab, scenario, trials, run)
            outcomes.append(outcome)
            if each is not None:
                each(outcome)
    return outcomes


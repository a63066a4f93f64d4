"""docs/cluster.md's recipes, run as written: each command is read from the docs' text and
run with only its addresses and ports substituted (a free port for 8786, 127.0.0.1 for the
hosts; the SSH host is an alias of 127.0.0.1). The oracle of every map is an uninterrupted
run in this process (test_cluster.reference); the oracle of "secure by default" is the
list of sockets the started processes listen on."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from rsdl_qgis.api import serve_model
from rsdl_qgis.engine.cluster import connect
from rsdl_qgis.errors import ParameterError
from tests.conftest import ROOT
from tests.unit.test_cluster import Log, fcn_job, reference

pytestmark = [pytest.mark.tensorflow, pytest.mark.filterwarnings("ignore")]
DOCS = os.path.join(ROOT, "docs", "cluster.md")


def section(heading):
    """The text of docs/cluster.md under `heading`, to the next heading."""
    text = open(DOCS, encoding="utf-8").read()
    start = text.index(heading + "\n")
    end = re.compile(r"^#{2,3} ", re.M).search(text, start + len(heading))
    return text[start:end.start() if end else len(text)]


def blocks(heading, lang="sh"):
    """The code blocks of a section, each a list of its lines (comments dropped)."""
    out = []
    for body in re.findall(rf"```{lang}\n(.*?)```", section(heading), re.S):
        out.append([ln for ln in body.splitlines() if ln.strip() and not ln.startswith("#")])
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def commands(tmp_path):
    """The commands `make install` writes (cluster_cli.py install), in a folder put first
    on PATH; the environment to run them in (HOME a fresh folder, no PYTHONPATH)."""
    import distributed
    deps = os.path.dirname(os.path.dirname(distributed.__file__))
    bindir = tmp_path / "bin"
    subprocess.run([sys.executable, os.path.join(ROOT, "rsdl_qgis", "cluster_cli.py"),
                    "install", "--bin", str(bindir), "--deps", deps], check=True,
                   capture_output=True)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PATH=f"{bindir}{os.pathsep}{env['PATH']}", HOME=str(home))
    return env


class Started:
    """Shell commands started in the background, stopped (their process groups) at the
    end; their output kept in files."""

    def __init__(self, env, cwd):
        self.env, self.cwd, self.procs = env, cwd, []

    def start(self, line):
        n = len(self.procs)
        log = open(os.path.join(self.cwd, f"proc{n}.log"), "w")
        p = subprocess.Popen(["bash", "-c", line], env=self.env, cwd=self.cwd,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((p, log))
        return p

    def output(self, i):
        with open(os.path.join(self.cwd, f"proc{i}.log")) as fh:
            return fh.read()

    def stop(self):
        for p, log in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
            log.close()


@pytest.fixture()
def started(commands, tmp_path):
    s = Started(commands, str(tmp_path))
    yield s
    s.stop()


def wait_for_port(port, timeout=60, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the command ended ({proc.returncode}) before it listened")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port}")


def listening(pids):
    """The addresses the processes `pids` and their children listen on (TCP)."""
    import psutil
    procs = []
    for pid in pids:
        try:
            top = psutil.Process(pid)
            procs += [top] + top.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    out = set()
    for p in procs:
        try:
            conns = p.net_connections(kind="tcp") if hasattr(p, "net_connections") \
                else p.connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        out |= {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}
    return out


def serve_on(address, tmp_path, name="out"):
    """fcn_job on the cluster at `address`: (the map's bytes, the oracle's, the log)."""
    job = fcn_job(tmp_path / name / "out.tif")
    ref = reference(job, tmp_path / name)
    log = Log()
    serve_model(job, log, scheduler=address, resume=False)
    return (tmp_path / name / "out.tif").read_bytes(), ref, log.text()


def test_recipe_1_one_machine_as_written(started, tmp_path):
    """Recipe 1: `rsdl-scheduler --port 8786` and `rsdl-worker tcp://127.0.0.1:8786`;
    the map is the in-process run's, and every socket they open is on 127.0.0.1."""
    [lines] = blocks("### Recipe 1: one machine, a scheduler and workers")[:1]
    assert lines == ["rsdl-scheduler --port 8786", "rsdl-worker tcp://127.0.0.1:8786"]
    port = free_port()
    sched = started.start(lines[0].replace("8786", str(port)))
    wait_for_port(port, proc=sched)
    worker = started.start(lines[1].replace("8786", str(port)))
    got, ref, log = serve_on(f"tcp://127.0.0.1:{port}", tmp_path)
    assert got == ref
    assert "1 worker(s), 1 thread(s)" in log
    assert listening([sched.pid, worker.pid]) == {"127.0.0.1"}
    assert "--host 127.0.0.1" in started.output(1)       # the worker says what it runs


def test_a_plain_dask_scheduler_without_the_plugin_is_one_line(started, tmp_path):
    """Dask's own scheduler, with the dependency folder only: refused before any chunk,
    naming SCHEDULER and the command that works (it used to read "a bug in rsdl_qgis")."""
    import distributed
    port = free_port()
    deps = os.path.dirname(os.path.dirname(distributed.__file__))
    started.env = dict(started.env, PYTHONPATH=deps)
    sched = started.start(f"{sys.executable} -m distributed.cli.dask_scheduler --host "
                          f"127.0.0.1 --port {port} --no-dashboard")
    wait_for_port(port, proc=sched)
    started.env = {k: v for k, v in started.env.items() if k != "PYTHONPATH"}
    started.start(f"rsdl-worker tcp://127.0.0.1:{port}")
    job = fcn_job(tmp_path / "out.tif")
    with pytest.raises(ParameterError) as e:
        serve_model(job, Log(), scheduler=f"tcp://127.0.0.1:{port}")
    msg = str(e.value)
    assert e.value.param == "SCHEDULER" and "\n" not in msg
    assert "cannot import rsdl_qgis" in msg and "rsdl-scheduler" in msg
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("address, words", [
    ("tcp://no-such-host.invalid:8786", "unknown host 'no-such-host.invalid'"),
    ("tls://127.0.0.1:8786", "holds no TLS certificate"),
    ("http://127.0.0.1:8786", "is not a Dask scheduler address"),
    ("tcp://127.0.0.1:{port}", "cannot reach the Dask scheduler"),
])
def test_a_bad_address_is_one_line_naming_scheduler_in_seconds(address, words):
    address = address.format(port=free_port())
    start = time.monotonic()
    with pytest.raises(ParameterError) as e:
        connect(address, timeout=3)
    assert e.value.param == "SCHEDULER" and words in str(e.value)
    assert "\n" not in str(e.value) and "bug" not in str(e.value)
    assert time.monotonic() - start < 10


def test_tls_as_documented(started, tmp_path, monkeypatch):
    """The certificates made by the docs' openssl lines and the Dask configuration they
    show: rsdl-scheduler and rsdl-worker then speak TLS by themselves, a tls:// run gives
    the in-process map, and tcp:// to the same scheduler is refused in one line."""
    import dask
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (make test-system installs it)")
    home = started.env["HOME"]
    for body in re.findall(r"```sh\n(.*?)```", section("### TLS"), re.S):
        subprocess.run(["bash", "-ec", body], check=True, env=started.env, cwd=home,
                       capture_output=True)
    conf = os.path.join(home, ".config", "dask")
    assert oct(os.stat(os.path.join(home, ".rsdl-tls", "node.key")).st_mode)[-3:] == "600"
    monkeypatch.setenv("HOME", home)
    dask.config.refresh(paths=dask.config.paths + [conf])
    try:
        port = free_port()
        sched = started.start(f"rsdl-scheduler --port {port}")
        wait_for_port(port, proc=sched)
        started.start(f"rsdl-worker tls://127.0.0.1:{port}")
        got, ref, log = serve_on(f"tls://127.0.0.1:{port}", tmp_path)
        assert got == ref and "1 worker(s)" in log
        assert f"tls://127.0.0.1:{port}" in started.output(0)
        with pytest.raises(ParameterError) as e:
            connect(f"tcp://127.0.0.1:{port}", timeout=3)
        assert e.value.param == "SCHEDULER" and "\n" not in str(e.value)
        # rsdl-slurm's jobs get the certificates too: their workers speak TLS
        out = subprocess.run(["bash", "-c", "rsdl-slurm --print-script --jobs 1 --port 0"],
                             env=started.env, cwd=home, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        [line] = [ln for ln in out.stdout.splitlines() if "dask_worker" in ln]
        assert "tls://127.0.0.1:" in line and "--tls-ca-file" in line
        assert os.path.join(home, ".rsdl-tls", "node.pem") in line
    finally:
        monkeypatch.undo()
        dask.config.refresh()


# --- SLURM ------------------------------------------------------------------------------

SLURM_CONF = """\
ClusterName=rsdltest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs=16 RealMemory=64000 Gres=gpu:2 State=UNKNOWN
PartitionName=gpu Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture()
def slurm(tmp_path):
    """A one-node SLURM on this machine's loopback (Debian's slurm-wlm and munge), its
    node declared with 16 cores, 64 GB and two GPUs (a GPU is a name to SLURM: the jobs
    run on the CPU); yields the environment that reaches it."""
    tools = ["munged", "slurmctld", "slurmd", "sbatch", "squeue"]
    missing = [t for t in tools if not shutil.which(t) and
               not os.path.exists(f"/usr/sbin/{t}")]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)}): make test-system "
                    "installs slurm-wlm and munge")
    if os.geteuid() != 0:
        pytest.skip("a one-node SLURM is started as root (slurmd runs the jobs)")
    d = tmp_path / "slurm"
    (d / "state").mkdir(parents=True)
    (d / "spool").mkdir()
    host = socket.gethostname()
    (d / "slurm.conf").write_text(SLURM_CONF.format(host=host, d=d, ctld_port=free_port(),
                                                    d_port=free_port()))
    (d / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null\n"
                                 f"NodeName={host} Name=gpu File=/dev/zero\n")
    sbin = lambda t: shutil.which(t) or f"/usr/sbin/{t}"   # noqa: E731
    version = subprocess.run([sbin("slurmd"), "-V"], capture_output=True,
                             text=True).stdout.split()       # "slurm-wlm 24.11.5"
    major = tuple(int(x) for x in version[-1].split(".")[:2]) if version else (0, 0)
    if major >= (23, 11):
        # slurmd >= 23.11 starts a cgroup plugin even for task/none and proctrack/pgid;
        # a chroot or container has no cgroup file system for it (Debian 13's 24.11)
        (d / "cgroup.conf").write_text("CgroupPlugin=disabled\n")
    shutil.copy("/etc/munge/munge.key", d / "munge.key")
    os.chmod(d / "munge.key", 0o600)
    env = dict(os.environ, SLURM_CONF=str(d / "slurm.conf"))
    subprocess.run([sbin("munged"), f"--socket={d}/munge.sock", f"--key-file={d}/munge.key",
                    f"--pid-file={d}/munged.pid", f"--log-file={d}/munged.log",
                    f"--seed-file={d}/munge.seed", "--force"], check=True, env=env)
    try:
        subprocess.run([sbin("slurmctld"), "-f", str(d / "slurm.conf")], check=True, env=env)
        subprocess.run([sbin("slurmd"), "-f", str(d / "slurm.conf")], check=True, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True,
                                 text=True).stdout.strip()
            if out == "idle":
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the one-node SLURM did not start: {out}; see {d}/slurmctld.log")
        yield env
    finally:
        stop_slurm(d, env)


def stop_slurm(d, env):
    """Cancel the jobs, wait for the queue to empty, stop the daemons, and kill whatever
    of this SLURM is left (a job's slurmstepd outlived its slurmd on SLURM 24.11)."""
    import psutil
    subprocess.run(["scancel", "-u", str(os.geteuid())], env=env, capture_output=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and subprocess.run(
            ["squeue", "-h"], env=env, capture_output=True, text=True).stdout.strip():
        time.sleep(0.5)
    for pid_file in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
        try:
            os.kill(int((d / pid_file).read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
    ours = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        text = " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")
        if str(d) in text and p.pid != os.getpid():
            ours.append(p)
    _gone, alive = psutil.wait_procs(ours, timeout=10)
    for p in alive:
        p.kill()


def test_recipe_3_slurm_as_written(slurm, commands, tmp_path):
    """`rsdl-slurm` as the docs write it (its --host and --port substituted) against a
    real SLURM: 2 jobs of one single-thread worker, the in-process map, sockets on
    127.0.0.1 only, and after SIGTERM no job is left in the queue."""
    [[line]] = blocks("### Recipe 3: a SLURM cluster")[:1]
    assert line.startswith("rsdl-slurm ") and "--host 10.1.0.5" in line
    port = free_port()
    s = Started(dict(commands, SLURM_CONF=slurm["SLURM_CONF"]), str(tmp_path))
    try:
        proc = s.start(line.replace("10.1.0.5", "127.0.0.1").replace("8786", str(port)))
        wait_for_port(port, proc=proc)
        deadline = time.monotonic() + 30
        while "SCHEDULER = " not in s.output(0) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"SCHEDULER = tcp://127.0.0.1:{port}" in s.output(0)
        from distributed import Client
        with Client(f"tcp://127.0.0.1:{port}", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
        queue = subprocess.run(["squeue", "-h", "-o", "%T %b %C"], env=s.env,
                               capture_output=True, text=True).stdout.split("\n")
        # SLURM 22.05 writes the GPU request gres:gpu:1, 24.11 gres/gpu:1
        assert sorted(q.replace("gres/", "gres:") for q in queue if q) == \
            ["RUNNING gres:gpu:1 8"] * 2
        got, ref, log = serve_on(f"tcp://127.0.0.1:{port}", tmp_path)
        assert got == ref and "2 worker(s), 2 thread(s)" in log
        import psutil
        jobs = [p.pid for p in psutil.process_iter(["cmdline"])
                if "distributed.cli.dask_worker" in " ".join(p.info["cmdline"] or [])
                and f":{port}" in " ".join(p.info["cmdline"] or [])]
        assert len(jobs) == 2                           # the two SLURM jobs' workers
        assert listening([proc.pid] + jobs) == {"127.0.0.1"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "cancelling the SLURM jobs" in s.output(0)
        deadline = time.monotonic() + 30
        left = ["?"]
        while left and time.monotonic() < deadline:
            left = subprocess.run(["squeue", "-h"], env=s.env, capture_output=True,
                                  text=True).stdout.split()
            time.sleep(0.5)
        assert not left, "SLURM jobs left behind after SIGTERM"
    finally:
        s.stop()


# --- SSH tunnel ---------------------------------------------------------------------------

def test_recipe_2_ssh_tunnel_on_loopback(started, tmp_path):
    """Recipe 2's tunnel, with `gpu-server` an SSH alias of this machine's sshd on a free
    port (its own keys in a temporary folder): the run goes through the tunnel to a
    scheduler and worker that listen on 127.0.0.1 only."""
    sshd, ssh = "/usr/sbin/sshd", shutil.which("ssh")
    if not (os.path.exists(sshd) and ssh and shutil.which("ssh-keygen")):
        pytest.skip("sshd is not at hand (make test-system installs openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("a test sshd is started as root")
    server, laptop = blocks("### Recipe 2: QGIS on a laptop, a GPU server does the work, "
                            "over SSH")[:2]
    assert server == ["rsdl-scheduler --port 8786",
                      "CUDA_VISIBLE_DEVICES=0 rsdl-worker tcp://127.0.0.1:8786"]
    [tunnel] = laptop
    d = tmp_path / "ssh"
    d.mkdir(mode=0o700)
    for key in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True)
    shutil.copy(d / "user.pub", d / "authorized_keys")
    ssh_port, remote, local = free_port(), free_port(), free_port()
    (d / "sshd_config").write_text(
        f"Port {ssh_port}\nListenAddress 127.0.0.1\nHostKey {d}/host\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nStrictModes no\nUsePAM no\nAllowTcpForwarding yes\n"
        f"PidFile {d}/sshd.pid\n")
    (d / "ssh_config").write_text(
        f"Host gpu-server\n  HostName 127.0.0.1\n  Port {ssh_port}\n  User root\n"
        f"  IdentityFile {d}/user\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile {d}/known_hosts\n  BatchMode yes\n")
    os.makedirs("/run/sshd", exist_ok=True)
    daemon = started.start(f"{sshd} -D -e -f {d}/sshd_config")
    wait_for_port(ssh_port, proc=daemon)
    sched = started.start(server[0].replace("8786", str(remote)))
    wait_for_port(remote, proc=sched)
    worker = started.start(server[1].replace("8786", str(remote)))
    tunnel = tunnel.replace("8786:127.0.0.1:8786", f"{local}:127.0.0.1:{remote}")
    started.start(tunnel.replace("ssh ", f"ssh -F {d}/ssh_config ", 1))
    wait_for_port(local)
    got, ref, log = serve_on(f"tcp://127.0.0.1:{local}", tmp_path)
    assert got == ref and "1 worker(s)" in log
    assert listening([sched.pid, worker.pid]) == {"127.0.0.1"}


def test_rsdl_slurm_job_script_runs_single_thread_workers():
    """--print-script: the job script a SLURM job runs, without SLURM: one single-thread
    worker per job, the plugin importable, the scheduler's address."""
    import distributed
    deps = os.path.dirname(os.path.dirname(distributed.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([deps, ROOT]))
    out = subprocess.run([sys.executable, "-m", "rsdl_qgis.cluster_cli", "slurm", "--jobs",
                          "2", "--gpus", "1", "--port", "0", "--print-script"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    script = out.stdout
    assert "#SBATCH --gres=gpu:1" in script and f"PYTHONPATH={deps}" in script
    worker_line = [ln for ln in script.splitlines() if "distributed.cli.dask_worker" in ln][0]
    assert worker_line.split("--nthreads")[-1].split()[0] == "1"
    assert "127.0.0.1:0" in worker_line.split("--dashboard-address")[-1]
    # the worker listens on its node's address towards the scheduler, found on the node
    assert '--host "$RSDL_HOST"' in worker_line
    assert "RSDL_HOST=$(" in script and "rsdl_qgis.cluster_cli towards 127.0.0.1" in script


def test_rsdl_slurm_keeps_its_dashboard_on_this_machine():
    """With --host on another interface (127.0.0.2 here), the scheduler listens there and
    its HTTP dashboard stays on 127.0.0.1 (Dask would put it on --host too)."""
    import psutil

    from rsdl_qgis.cluster_cli import slurm_cluster, slurm_parser

    def sockets():
        me = psutil.Process()
        conns = me.net_connections(kind="tcp") if hasattr(me, "net_connections") \
            else me.connections(kind="tcp")
        return {c.laddr for c in conns if c.status == psutil.CONN_LISTEN}

    before = sockets()        # what else this test process listens on (other fixtures)
    cluster = slurm_cluster(slurm_parser().parse_args(["--jobs", "0", "--port", "0",
                                                       "--host", "127.0.0.2"]))
    try:
        new = sockets() - before
        assert sorted(a.ip for a in new) == ["127.0.0.1", "127.0.0.2"]
        assert cluster.scheduler_address.startswith("tcp://127.0.0.2:")
    finally:
        cluster.close()


def test_commands_from_a_plugin_installed_by_the_plugin_manager(tmp_path):
    """The docs' line for a plugin in a QGIS profile (as the plugin manager unzips it),
    its dependencies where the plugin menu installs them, run as written with HOME a
    fresh folder: it needs no --deps, writes the commands into ~/.local/bin, and the
    rsdl-scheduler and rsdl-worker it writes import the plugin (connect checks both)."""
    import distributed

    from rsdl_qgis.deps import host_tag
    [[line]] = blocks("### The three commands")[:1]
    assert line.endswith("rsdl_qgis/cluster_cli.py install")
    deps = os.path.dirname(os.path.dirname(distributed.__file__))
    home = tmp_path / "home"
    root = home / ".local" / "share" / "QGIS" / "QGIS3"
    plugin = root / "profiles" / "default" / "python" / "plugins" / "rsdl_qgis"
    shutil.copytree(os.path.join(ROOT, "rsdl_qgis"), plugin,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "rsdl_qgis" / "python-deps").mkdir(parents=True)
    os.symlink(deps, root / "rsdl_qgis" / "python-deps" / host_tag())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HOME"] = str(home)
    out = subprocess.run(["bash", "-c", line.replace("python3 ", f"{sys.executable} ", 1)],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    bindir = home / ".local" / "bin"
    script = (bindir / "rsdl-scheduler").read_text()
    assert str(root / "rsdl_qgis" / "python-deps" / host_tag()) in script
    s = Started(env, str(tmp_path))
    try:
        port = free_port()
        sched = s.start(f"{bindir}/rsdl-scheduler --port {port}")
        wait_for_port(port, proc=sched)
        s.start(f"{bindir}/rsdl-worker tcp://127.0.0.1:{port}")
        connect(f"tcp://127.0.0.1:{port}", timeout=30).close()
    finally:
        s.stop()
    # elsewhere (a source tree) the dependency folder must be given
    out = subprocess.run([sys.executable, os.path.join(ROOT, "rsdl_qgis", "cluster_cli.py"),
                          "install", "--bin", str(tmp_path / "bin")], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--deps: give the plugin's dependency folder" in out.stderr
